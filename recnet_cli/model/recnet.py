"""RECNet as the authors' released code computes it: the plain reference forward.

Module and parameter names follow the authors' code exactly, so their state_dict loads as is.
``../shared/RECNET-ARCHITECTURE.md`` (beside the repository) describes the function it computes. A block
runs as ``forward_with_intermediates`` drives it: ``norm.fuse_branches`` on its blurred masks, then
``combine``, so that the fast path can supply the masks of all blocks at once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BranchMasks = tuple[Tensor, Tensor, Tensor]
BlurredMasks = Callable[["RECNet", Tensor], list[BranchMasks]]

BLUR_SIZE = 31
BLUR_SIGMA = 3.0


def gaussian_1d(
    size: int, sigma: float, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64
) -> Tensor:
    """A normalised 1-D Gaussian of ``size`` taps around the middle one, made on ``device`` whatever the
    default device is (on ``meta``, where ``load_weights`` builds a model for its shapes, PyTorch makes
    ``arange`` in Python code that loads TorchDynamo, 1.2 s of every command's start)."""
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def gaussian_kernel() -> Tensor:
    """The blur's initial normalised 2-D Gaussian, of shape (1, 1, BLUR_SIZE, BLUR_SIZE)."""
    g = gaussian_1d(BLUR_SIZE, BLUR_SIGMA)
    return torch.outer(g, g).to(torch.float32)[None, None]


class LearnableBlur(nn.Module):
    """The 31x31 mask blur: a freely trained kernel initialised as a Gaussian, zero padding."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = nn.Parameter(gaussian_kernel().to(torch.get_default_device()))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.kernel, padding=self.kernel.shape[-1] // 2)


class RegionAwareDeExposure(nn.Module):
    """Splits features by the blurred under/over-exposure masks, normalises each, fuses (``norm``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor([0.5]))
        self.IN = nn.InstanceNorm2d(channels, affine=True)
        self.CFR_branches = nn.ModuleList(nn.Conv2d(3, 1, 3, padding=1, bias=False) for _ in range(3))
        self.CFR_tails = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(3)
        )
        self.blur = LearnableBlur()
        self.fuse_1 = nn.Conv2d(2 * channels, channels, 1)
        self.fuse_2 = nn.Conv2d(2 * channels, channels, 1)

    def branch_masks(self, mask: Tensor) -> BranchMasks:
        """The three branch masks: blurred under-exposure, blurred over-exposure, all ones."""
        return self.blur(mask), self.blur(1 - mask), torch.ones_like(mask)

    def fuse_branches(self, features: Tensor, masks: BranchMasks) -> Tensor:
        ys = []
        for m, branch, tail in zip(masks, self.CFR_branches, self.CFR_tails, strict=True):
            mid = features * m
            descriptor = torch.cat([mid.mean(1, keepdim=True), mid.amax(1, keepdim=True), m], dim=1)
            attention = torch.sigmoid(branch(descriptor))
            ys.append(tail(self.IN(mid * attention)))
        under, over, whole = ys
        fused_under = self.fuse_1(torch.cat([under, whole], dim=1))
        fused_over = self.fuse_2(torch.cat([over, whole], dim=1))
        return (1 - self.alpha) * fused_under + self.alpha * fused_over


class MixedScaleRestoration(nn.Module):
    """Local mixed-scale convolutions and a two-head channel self-attention (``mssa``)."""

    heads = 2

    def __init__(self, channels: int) -> None:
        super().__init__()
        c, c2 = channels, 2 * channels
        self.temperature = nn.Parameter(torch.ones(self.heads, 1, 1))
        self.conv3x3_q = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.conv5x5_q = nn.Conv2d(c, c, 5, padding=2, groups=c)
        self.project_ch = nn.Conv2d(c2, c, 1)
        self.project_in = nn.Conv2d(c, c2, 1)
        self.dwconv3x3 = nn.Conv2d(c2, c2, 3, padding=1, groups=c2)
        self.dwconv5x5 = nn.Conv2d(c2, c2, 5, padding=2, groups=c2)
        self.dwconv3x3_1 = nn.Conv2d(c2, c, 3, padding=1, groups=c)
        self.dwconv5x5_1 = nn.Conv2d(c2, c, 5, padding=2, groups=c)
        self.project_out = nn.Conv2d(c2, c, 1)

    def channel_attention(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """softmax(q kᵀ · temperature) v per head, over the flattened pixels."""
        b, c, h, w = q.shape
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in (q, k, v))
        attention = torch.softmax((q @ k.transpose(-2, -1)) * self.temperature, dim=-1)
        return (attention @ v).reshape(b, c, h, w)

    def forward(self, normed: Tensor, block_input: Tensor) -> tuple[Tensor, Tensor]:
        """Returns the (local, global) paths."""
        projected = self.project_in(normed)
        k3, v3 = F.relu(self.dwconv3x3(projected)).chunk(2, dim=1)
        k5, v5 = F.relu(self.dwconv5x5(projected)).chunk(2, dim=1)
        local_1 = F.relu(self.dwconv3x3_1(torch.cat([k3, k5], dim=1)))
        local_2 = F.relu(self.dwconv5x5_1(torch.cat([v3, v5], dim=1)))
        local = self.project_out(torch.cat([local_1, local_2], dim=1))

        q3 = F.relu(self.conv3x3_q(block_input))
        q5 = F.relu(self.conv5x5_q(block_input))
        out3 = self.channel_attention(k3, v3, q3)
        out5 = self.channel_attention(k5, v5, q5)
        return local, self.project_ch(torch.cat([out3, out5], dim=1))


class RegionAwareMixedBlock(nn.Module):
    """One RMB: de-exposure normalisation, mixed-scale restoration, residual post convs."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = RegionAwareDeExposure(channels)
        self.mssa = MixedScaleRestoration(channels)
        self.fuse1 = nn.Conv2d(2 * channels, channels, 1)
        self.fuse2 = nn.Conv2d(2 * channels, channels, 1)
        self.post = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 3, padding=1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def combine(self, features: Tensor, normed: Tensor) -> Tensor:
        """The block's output from its input and the de-exposure branch's result."""
        local, global_ = self.mssa(normed, features)
        f1 = self.fuse1(torch.cat([normed, local], dim=1))
        f2 = self.fuse2(torch.cat([normed, global_], dim=1))
        return features + self.post(torch.cat([f1, f2], dim=1))


class ChannelAttention(nn.Module):
    """``refine.process.0``: adds one learned constant per channel from the global mean."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.process = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.channel_offset(self.process(x).mean(dim=(2, 3), keepdim=True))

    def channel_offset(self, pooled: Tensor) -> Tensor:
        """z · p: the per-channel constant added to the input, from the pooled processed features."""
        return self.conv_du(pooled) * pooled


class Refine(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(channels, channels, 3, padding=1)
        self.process = nn.Sequential(ChannelAttention(channels))
        self.conv_last = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_last(self.process(self.conv_in(x)))


class DualProcess(nn.Module):
    def __init__(self, channels: int, blocks: int) -> None:
        super().__init__()
        for i in range(1, blocks + 1):
            self.add_module(f"conv{i}", RegionAwareMixedBlock(channels))
        self.cat = nn.Conv2d(blocks * channels, channels, 1)
        self.refine = Refine(channels)

    @property
    def blocks(self) -> list[RegionAwareMixedBlock]:
        return [m for m in self.children() if isinstance(m, RegionAwareMixedBlock)]


class MaskPredictor(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()

        def conv(out: int) -> nn.Conv2d:
            return nn.Conv2d(channels, out, 3, padding=1, padding_mode="replicate")

        self.net_convs = nn.Sequential(
            conv(channels),
            nn.ReLU(),
            conv(channels),
            nn.ReLU(),
            conv(channels),
            nn.ReLU(),
            conv(1),
            nn.Sigmoid(),
        )

    def forward(self, features: Tensor) -> Tensor:
        return self.net_convs(features)


def width_problem(channels: int) -> str | None:
    """Why RECNet cannot be ``channels`` wide: its attention splits them between two heads, and its
    channel attention reduces them by four."""
    if channels < 4 or channels % MixedScaleRestoration.heads:
        return f"RECNet needs an even number of channels, at least 4, not {channels}"
    return None


class RECNet(nn.Module):
    """RECNet (``InteractNet`` in the authors' code). Input RGB in [0, 1], shape (B, 3, H, W)."""

    def __init__(self, channels: int = 8, blocks: int = 5) -> None:
        if problem := width_problem(channels):
            raise ValueError(problem)
        super().__init__()
        self.channels = channels
        self.extract = nn.Conv2d(3, channels, 3, padding=1)
        self.learned_mask = MaskPredictor(channels)
        self.dualprocess = DualProcess(channels, blocks)

    @property
    def num_blocks(self) -> int:
        return len(self.dualprocess.blocks)

    def forward(self, image: Tensor) -> Tensor:
        return self.forward_with_intermediates(image)["output"]

    def forward_with_intermediates(
        self, image: Tensor, blurred_masks: BlurredMasks | None = None
    ) -> dict[str, Tensor]:
        """Output, mask and every block's features (names as in the golden reference file).

        ``blurred_masks(model, mask)`` may compute all blocks' branch masks at once (the same values as
        each block's own ``norm.branch_masks``, only faster); by default each block blurs on its own.
        """
        extracted = self.extract(image)
        mask = self.learned_mask(extracted)
        blocks = self.dualprocess.blocks
        if blurred_masks is None:
            masks = [block.norm.branch_masks(mask) for block in blocks]
        else:
            masks = blurred_masks(self, mask)
        results = {"extract": extracted, "mask": mask}
        features = extracted
        block_outputs = []
        for i, (block, block_masks) in enumerate(zip(blocks, masks, strict=True), start=1):
            features = block.combine(features, block.norm.fuse_branches(features, block_masks))
            results[f"block{i}"] = features
            block_outputs.append(features)
        merged = self.dualprocess.cat(torch.cat(block_outputs, dim=1))
        results["output"] = finish(self.dualprocess.refine(merged))
        return results


def finish(refined: Tensor) -> Tensor:
    """The authors' final step: a tiny offset, then clamp to [0, 1]."""
    return torch.clamp(refined + 1e-5, 0, 1)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
