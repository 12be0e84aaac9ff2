"""Fast RECNet inference: the reference function, reorganised for speed and for exact tiling.

Every function reads the parameters of a reference ``RECNet`` module; nothing is copied out of it.
The reorganisation is algebra on the reference forward (``recnet.py``), exact up to float rounding:

- The five blocks' 31x31 mask blurs run as one FFT convolution, and blur(1 - M) = blur(1) - blur(M), where
  blur(1) under zero padding is the sum of the kernel taps that land inside the image (``inside_sum``).
- mid = F·m and mid·attention = F·s with s = m·sigmoid(...) one scalar per pixel; the mean and max over
  channels of F·m are m·mean(F) and m·max(F) (m·min(F) where m < 0). The instance-norm sums of F·s and
  (F·s)² are small matrix products of the pixels' F and s, one per image row, added up in float64.
- The three tails (3x3) and fuse_1, fuse_2 and alpha (all linear) fold into one 3x3 conv, 3C → C. The
  instance norms' gains fold into its weight, and their shifts enter through one more input channel of
  ones (zero-padded like the normed maps), so the normed maps themselves are never formed.
- dw3 and dw5 on project_in's output run as one 5x5 depthwise conv (3x3 kernels zero-padded) on a
  projection with duplicated rows; the grouped local convs as a depthwise conv plus a sum of channel pairs.
- project_out, project_ch, the channel attention (per pixel a CxC matrix) and fuse1/fuse2 fold into two
  1x1 convs: (Fn, L1, L2) → 2C, which needs no whole-image statistic, and (q3, q5) → 2C, whose weight
  holds the attention (one per image). Tiles compute the first before the attention is known.
- ``dualprocess.cat`` over the five block outputs is a sum of per-block 1x1 convs, added up block by block.

The whole-image statistics (instance norms, attention Gram matrices, refine's global mean) are split into
a local part that sums over a region and an apply part, so ``recnet_cli.tiling`` can sum them over tiles.
Feature maps are channels_last, which makes these few-channel convolutions several times faster on CPUs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recnet_cli.model.recnet import (
    MixedScaleRestoration,
    RECNet,
    Refine,
    RegionAwareDeExposure,
    RegionAwareMixedBlock,
    finish,
)


@dataclass(frozen=True)
class Window:
    """A rectangle of the image, rows [top, bottom) and columns [left, right), and the image's size."""

    top: int
    left: int
    bottom: int
    right: int
    image_height: int
    image_width: int

    @classmethod
    def whole(cls, height: int, width: int) -> Window:
        return cls(0, 0, height, width, height, width)

    @property
    def rows(self) -> slice:
        return slice(self.top, self.bottom)

    @property
    def cols(self) -> slice:
        return slice(self.left, self.right)

    @property
    def area(self) -> int:
        return (self.bottom - self.top) * (self.right - self.left)

    def grown(self, halo: int) -> Window:
        """This window with ``halo`` more pixels on each side, clipped to the image."""
        return Window(
            max(self.top - halo, 0),
            max(self.left - halo, 0),
            min(self.bottom + halo, self.image_height),
            min(self.right + halo, self.image_width),
            self.image_height,
            self.image_width,
        )

    def locate(self, inner: Window) -> tuple[slice, slice]:
        """Where ``inner`` lies in a tensor that covers this window."""
        return (
            slice(inner.top - self.top, inner.bottom - self.top),
            slice(inner.left - self.left, inner.right - self.left),
        )


def nhwc(x: Tensor) -> Tensor:
    """A (B, C, H, W) channels_last tensor seen as (B, H, W, C) (no copy)."""
    return x.permute(0, 2, 3, 1)


def channels_last(x: Tensor) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def statistics_dtype(dtype: torch.dtype) -> torch.dtype:
    """Sums over the image run in float32 (float64 when computing in float64)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def accumulation_dtype(device: torch.device) -> torch.dtype:
    """float64 for sums whose variance formula cancels; MPS has no float64, so float32 there."""
    return torch.float32 if device.type == "mps" else torch.float64


def conv(layer: nn.Conv2d, x: Tensor) -> Tensor:
    """``layer(x)`` in the dtype of ``x`` (the module's weights may be float32)."""
    weight = layer.weight.to(x.dtype)
    bias = None if layer.bias is None else layer.bias.to(x.dtype)
    padding = layer.padding
    if layer.padding_mode == "replicate":
        pad_h, pad_w = layer.padding
        x = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="replicate")
        padding = 0
    return F.conv2d(x, weight, bias, padding=padding, groups=layer.groups)


def pointwise(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """A 1x1 convolution with a (out, in) weight matrix."""
    return F.conv2d(x, weight[:, :, None, None].to(x.dtype), None if bias is None else bias.to(x.dtype))


LayerConv = Callable[[nn.Conv2d, Tensor], Tensor]


def extract_and_mask(model: RECNet, image: Tensor, convolve: LayerConv = conv) -> tuple[Tensor, Tensor]:
    """F0 = extract(image) and the under-exposure mask M."""
    features = convolve(model.extract, image)
    mask = features
    for layer in model.learned_mask.net_convs:
        mask = convolve(layer, mask) if isinstance(layer, nn.Conv2d) else layer(mask)
    return features, mask


def blur_kernels(model: RECNet) -> Tensor:
    """All blocks' 31x31 mask-blur kernels, (blocks, 1, 31, 31)."""
    return torch.cat([block.norm.blur.kernel for block in model.dualprocess.blocks])


def fft_size(n: int) -> int:
    """The smallest m >= n with no prime factor above 5 (fast FFT lengths)."""
    m = n
    while True:
        rest = m
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return m
        m += 1


def blur(mask: Tensor, kernels: Tensor) -> Tensor:
    """Zero-padded cross-correlation of a (B, 1, H, W) mask with (K, 1, k, k) kernels: (B, K, H, W).

    By FFT on CPU and CUDA, by direct convolution elsewhere (MPS)."""
    size = kernels.shape[-1]
    work_dtype = statistics_dtype(mask.dtype)
    mask, kernels = mask.to(work_dtype), kernels.to(work_dtype)
    if mask.device.type not in ("cpu", "cuda"):
        return F.conv2d(mask, kernels, padding=size // 2)
    height, width = mask.shape[-2:]
    shape = (fft_size(height + size - 1), fft_size(width + size - 1))
    flipped = kernels.flip(-2, -1).transpose(0, 1)
    spectrum = torch.fft.rfft2(mask, s=shape) * torch.fft.rfft2(flipped, s=shape)
    full = torch.fft.irfft2(spectrum, s=shape)
    return full[..., size // 2 : size // 2 + height, size // 2 : size // 2 + width]


def inside_sum(kernels: Tensor, window: Window) -> Tensor:
    """blur(ones) for each (K, 1, k, k) kernel over ``window``: the sum of the taps inside the image."""
    size = kernels.shape[-1]
    offsets = torch.arange(size, device=kernels.device) - size // 2

    def inside(start: int, stop: int, limit: int) -> Tensor:
        positions = torch.arange(start, stop, device=kernels.device)[:, None] + offsets
        return ((positions >= 0) & (positions < limit)).to(kernels.dtype)

    rows = inside(window.top, window.bottom, window.image_height)
    cols = inside(window.left, window.right, window.image_width)
    return (rows @ kernels[:, 0] @ cols.T)[None]


Blur = Callable[[Tensor, Tensor], Tensor]


def branch_masks(mask: Tensor, kernels: Tensor, window: Window, blur: Blur = blur) -> tuple[Tensor, Tensor]:
    """blur(M) and blur(1 - M) for each kernel, in the dtype of ``mask``."""
    under = blur(mask, kernels)
    over = inside_sum(kernels.to(under.dtype), window) - under
    return under.to(mask.dtype), over.to(mask.dtype)


def every_blocks_branch_masks(model: RECNet, mask: Tensor) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Each block's (blur(M), blur(1 - M), ones) from one FFT: the reference's ``blurred_masks`` hook.

    Differentiable, so training can use it too: ``model.forward_with_intermediates(image, this)``."""
    height, width = mask.shape[-2:]
    unders, overs = branch_masks(mask, blur_kernels(model), Window.whole(height, width))
    ones = torch.ones_like(mask)
    return [(unders[:, i : i + 1], overs[:, i : i + 1], ones) for i in range(unders.shape[1])]


def branch_scales(norm: RegionAwareDeExposure, features: Tensor, under: Tensor, over: Tensor) -> Tensor:
    """Per pixel and branch (under, over, whole) the scalar s with mid·attention = F·s: (B, 3, H, W)."""
    # Channels_last (B, 9, H, W), branch-major: (m·mean, peak, m) for each branch mask m.
    descriptors = empty_map(features, 9)
    by_branch = nhwc(descriptors).unflatten(-1, (3, 3))
    masks = by_branch[..., 2]
    masks[..., 0], masks[..., 1], masks[..., 2] = under[:, 0], over[:, 0], 1
    # The peak of F·m over the channels: m·max(F) where m >= 0, else m·min(F) (aminmax is slower on CPUs).
    low, high = nhwc(features.amin(1, keepdim=True)), nhwc(features.amax(1, keepdim=True))
    torch.mul(masks, nhwc(features.mean(1, keepdim=True)), out=by_branch[..., 0])
    torch.mul(masks, torch.where(masks >= 0, high, low), out=by_branch[..., 1])
    # The three branch convs (groups of 3 descriptors) as one dense conv with a block-diagonal weight:
    # the same sums (the other taps are zero), and about twice as fast as the grouped conv on CPUs.
    branches = torch.cat([branch.weight for branch in norm.CFR_branches]).to(features.dtype)
    eye = torch.eye(3, dtype=branches.dtype, device=branches.device)
    weight = (eye[:, :, None, None, None] * branches[None]).flatten(1, 2)
    scales = F.conv2d(descriptors, weight, padding=1).sigmoid_()
    nhwc(scales).mul_(masks)
    return scales


def branch_inputs(features: Tensor, scales: Tensor) -> Tensor:
    """The three branches' instance-norm inputs F·s (3C channels, branch-major), then a channel of ones:
    (B, 3C + 1, H, W), channels_last. The ones carry the norms' shift through the tails' conv."""
    channels = features.shape[1]
    inputs = empty_map(features, 3 * channels + 1)
    for branch in range(3):
        part = slice(branch * channels, (branch + 1) * channels)
        torch.mul(features, scales[:, branch : branch + 1], out=inputs[:, part])
    inputs[:, -1] = 1
    return inputs


def pixel_sums(left: Tensor, right: Tensor, squares: bool = False) -> Tensor:
    """The sum over the pixels of leftᵀ·right for channels_last maps of m and n channels: (B, m, n); with
    ``squares`` that and the sum of their squares' products, (B, 2, m, n), from one pass over the maps.

    One small matrix product per image row in float32 (or wider), added up over the rows in float64 (not on
    MPS): fast for so few channels, and a tile's interior is used in place (a strided view, no copy)."""
    work, total = statistics_dtype(left.dtype), accumulation_dtype(left.device)
    left, right = nhwc(left).to(work), nhwc(right).to(work)
    sums = (left.transpose(2, 3) @ right).sum(1, dtype=total)
    if not squares:
        return sums
    return torch.stack([sums, (left.square().transpose(2, 3) @ right.square()).sum(1, dtype=total)], 1)


PixelSums = Callable[[Tensor, Tensor, bool], Tensor]


def branch_moments(features: Tensor, scales: Tensor, sums: PixelSums = pixel_sums) -> tuple[Tensor, Tensor]:
    """Mean and variance over the pixels of each branch's F·s: (B, 3C) each, float64 (not on MPS).

    The sums of F·s and (F·s)² are matrix products of the pixels' s and F (and of their squares)."""
    mean, squares = sums(scales, features, True).flatten(2).unbind(1)
    count = features.shape[-2] * features.shape[-1]
    mean, squares = mean / count, squares / count
    return mean, (squares - mean.square()).clamp_min(0)


def folded_tails(norm: RegionAwareDeExposure) -> tuple[Tensor, Tensor]:
    """The three tails followed by fuse_1, fuse_2 and alpha, as one 3x3 conv weight (C, 3C, 3, 3) and bias."""
    alpha = norm.alpha
    channels = norm.fuse_1.weight.shape[0]
    under_fuse, over_fuse = norm.fuse_1.weight[:, :, 0, 0], norm.fuse_2.weight[:, :, 0, 0]
    mixes = (
        (1 - alpha) * under_fuse[:, :channels],
        alpha * over_fuse[:, :channels],
        (1 - alpha) * under_fuse[:, channels:] + alpha * over_fuse[:, channels:],
    )
    weight = torch.cat(
        [
            torch.einsum("om,mcij->ocij", mix, tail.weight)
            for mix, tail in zip(mixes, norm.CFR_tails, strict=True)
        ],
        dim=1,
    )
    return weight, (1 - alpha) * norm.fuse_1.bias + alpha * norm.fuse_2.bias


def instance_norm_affine(
    norm: RegionAwareDeExposure, mean: Tensor, variance: Tensor
) -> tuple[Tensor, Tensor]:
    """The branches' instance norms as gain·x + shift per image and channel, (B, 3C) each."""
    gain = norm.IN.weight.repeat(3) / torch.sqrt(variance + norm.IN.eps)
    return gain, norm.IN.bias.repeat(3) - mean * gain


def normalizing_weights(norm: RegionAwareDeExposure, mean: Tensor, variance: Tensor) -> tuple[Tensor, Tensor]:
    """The tails' conv of each image's instance-normed branch products gain·(F·s) + shift as a conv of
    ``branch_inputs``: F·s with the gain in the weight, and the shift's share through the channel of ones,
    zero outside the image as the shift's padding is. Weights (B, C, 3C + 1, 3, 3) in the statistics'
    precision, and the bias."""
    gain, shift = instance_norm_affine(norm, mean, variance)
    weight, bias = folded_tails(norm)
    weight = weight.to(gain.dtype)  # folded in the statistics' precision, not the weights' float32
    shift_weight = torch.einsum("ocij,bc->boij", weight, shift)[:, :, None]
    return torch.cat([weight * gain[:, None, :, None, None], shift_weight], dim=2), bias


def normalize(
    norm: RegionAwareDeExposure, features: Tensor, scales: Tensor, mean: Tensor, variance: Tensor
) -> Tensor:
    """The de-exposure output Fn from F, the branch scales and the branches' whole-image (mean, variance)."""
    weights, bias = normalizing_weights(norm, mean, variance)
    inputs = branch_inputs(features, scales)
    dtype, bias = features.dtype, bias.to(features.dtype)
    outputs = [
        F.conv2d(inputs[index : index + 1], image_weight.to(dtype), bias, padding=1)
        for index, image_weight in enumerate(weights)
    ]
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def as_5x5(weight: Tensor) -> Tensor:
    """A 3x3 or 5x5 kernel as 5x5 (zero taps around a 3x3): the same conv with padding 2."""
    margin = (5 - weight.shape[-1]) // 2
    return F.pad(weight, (margin, margin, margin, margin))


def mixed_scale_weights(mssa: MixedScaleRestoration) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """project_in as a (4C, C) matrix and bias, then dw3 and dw5 as one (4C, 1, 5, 5) depthwise conv and
    bias: the 4C channels ordered (k3, k5, v3, v5).

    project_in's k and v halves are each computed twice, so one 5x5 depthwise conv yields all four, in
    the order the local path's grouped convs read them: (k3, k5) then (v3, v5)."""
    channels = mssa.project_in.weight.shape[1]
    keys, values = slice(0, channels), slice(channels, 2 * channels)
    project = mssa.project_in.weight[:, :, 0, 0]
    small, large = mssa.dwconv3x3, mssa.dwconv5x5
    parts = ((small, keys), (large, keys), (small, values), (large, values))
    return (
        torch.cat([project[part] for _, part in parts]),
        torch.cat([mssa.project_in.bias[part] for _, part in parts]),
        torch.cat([as_5x5(layer.weight[part]) for layer, part in parts]),
        torch.cat([layer.bias[part] for layer, part in parts]),
    )


def mixed_scale_features(mssa: MixedScaleRestoration, normed: Tensor) -> Tensor:
    """ReLU(dw3(project_in(Fn))) and ReLU(dw5(...)), as 4C channels ordered (k3, k5, v3, v5)."""
    projection, projection_bias, depthwise, depthwise_bias = mixed_scale_weights(mssa)
    projected = pointwise(normed, projection, projection_bias)
    weight, bias = depthwise.to(normed.dtype), depthwise_bias.to(normed.dtype)
    return F.relu_(F.conv2d(projected, weight, bias, padding=2, groups=weight.shape[0]))


def attention_grams(mixed: Tensor, sums: PixelSums = pixel_sums) -> Tensor:
    """k vᵀ summed over the pixels for both scales: (B, 2, C, C), float64 (not on MPS)."""
    channels = mixed.shape[1] // 4
    products = sums(mixed[:, : 2 * channels], mixed[:, 2 * channels :], False)
    return torch.stack([products[:, :channels, :channels], products[:, channels:, channels:]], dim=1)


def attention_weights(mssa: MixedScaleRestoration, grams: Tensor) -> Tensor:
    """Per scale, the block-diagonal (B, 2, C, C) matrix of the heads' softmax(q kᵀ · temperature)."""
    batch, scales, channels = grams.shape[:3]
    heads, width = mssa.heads, channels // mssa.heads
    blocks = grams.reshape(batch, scales, heads, width, heads, width).diagonal(dim1=2, dim2=4)
    attention = torch.softmax(blocks.permute(0, 1, 4, 2, 3) * mssa.temperature.to(grams.dtype), dim=-1)
    matrix = grams.new_zeros(batch, scales, channels, channels)
    for head in range(heads):
        part = slice(head * width, (head + 1) * width)
        matrix[:, :, part, part] = attention[:, :, head]
    return matrix


def fusion_without_attention(block: RegionAwareMixedBlock) -> tuple[Tensor, Tensor]:
    """fuse1/fuse2's share from (Fn, L1, L2) as one (2C, 3C) matrix, with all of their biases.

    project_out folds into fuse1; the global path (its project_ch in fuse2) is ``fusion_of_attention``."""
    mssa = block.mssa
    channels = block.fuse1.weight.shape[0]
    fuse1, fuse2 = block.fuse1.weight[:, :, 0, 0], block.fuse2.weight[:, :, 0, 0]
    weight = fuse1.new_zeros(2 * channels, 3 * channels)
    weight[:channels, :channels] = fuse1[:, :channels]
    weight[:channels, channels:] = fuse1[:, channels:] @ mssa.project_out.weight[:, :, 0, 0]
    weight[channels:, :channels] = fuse2[:, :channels]
    bias = torch.cat(
        [
            block.fuse1.bias + fuse1[:, channels:] @ mssa.project_out.bias,
            block.fuse2.bias + fuse2[:, channels:] @ mssa.project_ch.bias,
        ]
    )
    return weight, bias


def fusion_of_attention(block: RegionAwareMixedBlock, attention: Tensor) -> Tensor:
    """fuse2's share from the queries (q3, q5) through the attention and project_ch: (B, 2C, 2C)."""
    channels = block.fuse2.weight.shape[0]
    fuse2 = block.fuse2.weight[:, channels:, 0, 0]
    project_ch = block.mssa.project_ch.weight[:, :, 0, 0]
    attention = attention.to(fuse2.dtype)
    batch = attention.shape[0]
    both_scales = fuse2.new_zeros(batch, 2 * channels, 2 * channels)
    both_scales[:, :channels, :channels] = attention[:, 0]
    both_scales[:, channels:, channels:] = attention[:, 1]
    weight = fuse2.new_zeros(batch, 2 * channels, 2 * channels)
    weight[:, channels:] = fuse2 @ project_ch @ both_scales
    return weight


def mix_channels(parts: Sequence[Tensor], weight: Tensor, start: Tensor) -> Tensor:
    """A 1x1 convolution of the channels of channels_last ``parts`` taken in turn, weight (out, in) or one
    per image (B, out, in), added to ``start``: a channels_last (B, out, H, W) map, or a bias (out). The
    parts are not gathered into one map: writing a map's channels between another's is slow on CPUs."""
    batch, _, height, width = parts[0].shape
    dtype = parts[0].dtype

    def flat(x: Tensor) -> Tensor:
        return nhwc(x).reshape(batch, height * width, -1)

    columns = weight.to(dtype).transpose(-2, -1).split([part.shape[1] for part in parts], dim=-2)
    start = (flat(start) if start.dim() == 4 else start).to(dtype)
    mixed = torch.baddbmm(start, flat(parts[0]), columns[0].expand(batch, -1, -1))
    for part, part_columns in zip(parts[1:], columns[1:], strict=True):
        mixed.baddbmm_(flat(part), part_columns.expand(batch, -1, -1))
    return mixed.reshape(batch, height, width, -1).permute(0, 3, 1, 2)


def empty_map(like: Tensor, channels: int) -> Tensor:
    """An uninitialised channels_last map of ``channels``, otherwise shaped and typed like ``like``."""
    batch, _, height, width = like.shape
    return torch.empty(
        batch,
        channels,
        height,
        width,
        dtype=like.dtype,
        device=like.device,
        memory_format=torch.channels_last,
    )


def local_path_weights(mssa: MixedScaleRestoration) -> tuple[Tensor, Tensor]:
    """The local path's grouped convs as a (4C, 1, 5, 5) per-channel weight on the mixed features and a
    (2C) bias: each of its 2C channels is the sum of a pair of mixed channels' convolutions."""
    layers = (mssa.dwconv3x3_1, mssa.dwconv5x5_1)
    weight = torch.cat([as_5x5(layer.weight) for layer in layers]).flatten(0, 1)[:, None]
    return weight, torch.cat([layer.bias for layer in layers])


def attention_free_share(block: RegionAwareMixedBlock, normed: Tensor, mixed: Tensor) -> Tensor:
    """What of fuse1/fuse2's output (2C channels) does not depend on the attention: the shares of Fn and
    the local path, and the biases. Tiles compute it before the whole-image attention is known."""
    dtype = normed.dtype
    # Convolve each mixed channel alone (the bias on the first of each pair), then add the pairs.
    local_weight, local_bias = local_path_weights(block.mssa)
    pair_bias = torch.stack([local_bias, torch.zeros_like(local_bias)], dim=1).flatten()
    per_channel = F.conv2d(
        mixed, local_weight.to(dtype), pair_bias.to(dtype), padding=2, groups=mixed.shape[1]
    )
    local = torch.add(per_channel[:, 0::2], per_channel[:, 1::2]).relu_()
    return mix_channels([normed, local], *fusion_without_attention(block))


def block_output(
    block: RegionAwareMixedBlock, features: Tensor, attention_free: Tensor, attention: Tensor
) -> Tensor:
    """The block's output from its input F, the fusion's attention-free share and the attention matrices."""
    mssa = block.mssa
    queries = [F.relu_(conv(layer, features)) for layer in (mssa.conv3x3_q, mssa.conv5x5_q)]
    fused = mix_channels(queries, fusion_of_attention(block, attention), attention_free)
    first, activation, last = block.post
    hidden = F.leaky_relu_(conv(first, fused), activation.negative_slope)
    return conv(last, hidden).add_(features)


def merge_weights(model: RECNet, index: int) -> tuple[Tensor, Tensor | None]:
    """Block ``index``'s share of ``dualprocess.cat``, a 1x1 conv of its output: the (out, C) weight, and
    the bias for the first block (None for the others)."""
    cat = model.dualprocess.cat
    columns = slice(index * model.channels, (index + 1) * model.channels)
    return cat.weight[:, columns, 0, 0], cat.bias if index == 0 else None


def merge(model: RECNet, index: int, output: Tensor, merged: Tensor | None) -> Tensor:
    """``dualprocess.cat`` of the blocks' outputs, built a block at a time: ``merged`` (the earlier blocks'
    shares, None before the first block) plus block ``index``'s share of its output."""
    share = pointwise(output, *merge_weights(model, index))
    return share if merged is None else share.add_(merged)


Merge = Callable[[RECNet, int, Tensor, Tensor | None], Tensor]


def refine_entry(refine: Refine, merged: Tensor, convolve: LayerConv = conv) -> Tensor:
    return convolve(refine.conv_in, merged)


def refine_processed(refine: Refine, entry: Tensor, convolve: LayerConv = conv) -> Tensor:
    """The channel attention's processed features, whose whole-image mean it needs."""
    first, _, last = refine.process[0].process
    return convolve(last, F.relu_(convolve(first, entry)))


def refine_output(refine: Refine, entry: Tensor, pooled: Tensor, convolve: LayerConv = conv) -> Tensor:
    """The final image from conv_in(merged) and the whole-image mean of the processed features (B, C)."""
    attention = refine.process[0]
    offset = attention.channel_offset(pooled.to(attention.conv_du[0].weight.dtype)[:, :, None, None])
    return finish(convolve(refine.conv_last, entry + offset.to(entry.dtype)))


def channel_sums(x: Tensor) -> Tensor:
    """Per-channel sums over the pixels, (B, C), float32 or wider."""
    return x.sum(dim=(2, 3), dtype=statistics_dtype(x.dtype))


@dataclass(frozen=True)
class Stages:
    """The per-pixel stages: the mask blur, each block's, the convolutions before and after the blocks,
    the sums over the pixels behind the blocks' whole-image statistics, and the merge of the blocks'
    outputs. The functions above, or fused kernels with the same signatures
    (``recnet_cli.model.triton_stages``)."""

    blur: Blur
    branch_scales: Callable[[RegionAwareDeExposure, Tensor, Tensor, Tensor], Tensor]
    normalize: Callable[[RegionAwareDeExposure, Tensor, Tensor, Tensor, Tensor], Tensor]
    mixed_scale_features: Callable[[MixedScaleRestoration, Tensor], Tensor]
    attention_free_share: Callable[[RegionAwareMixedBlock, Tensor, Tensor], Tensor]
    block_output: Callable[[RegionAwareMixedBlock, Tensor, Tensor, Tensor], Tensor]
    conv: LayerConv
    pixel_sums: PixelSums
    merge: Merge


EAGER = Stages(
    blur,
    branch_scales,
    normalize,
    mixed_scale_features,
    attention_free_share,
    block_output,
    conv,
    pixel_sums,
    merge,
)


def rmb(
    block: RegionAwareMixedBlock, features: Tensor, under: Tensor, over: Tensor, stages: Stages = EAGER
) -> Tensor:
    """One whole-image block."""
    scales = stages.branch_scales(block.norm, features, under, over)
    moments = branch_moments(features, scales, stages.pixel_sums)
    normed = stages.normalize(block.norm, features, scales, *moments)
    mixed = stages.mixed_scale_features(block.mssa, normed)
    attention = attention_weights(block.mssa, attention_grams(mixed, stages.pixel_sums))
    return stages.block_output(block, features, stages.attention_free_share(block, normed, mixed), attention)


@torch.inference_mode()
def fast_forward(model: RECNet, image: Tensor, stages: Stages = EAGER) -> tuple[Tensor, Tensor]:
    """(output, mask) for whole (B, 3, H, W) images, computed in the dtype of ``image``."""
    features, mask = extract_and_mask(model, channels_last(image), stages.conv)
    height, width = image.shape[-2:]
    kernels = blur_kernels(model)
    unders, overs = branch_masks(mask, kernels, Window.whole(height, width), stages.blur)
    merged = None
    for index, block in enumerate(model.dualprocess.blocks):
        under, over = unders[:, index : index + 1], overs[:, index : index + 1]
        features = rmb(block, features, under, over, stages)
        merged = stages.merge(model, index, features, merged)
    refine = model.dualprocess.refine
    entry = refine_entry(refine, merged, stages.conv)
    pooled = channel_sums(refine_processed(refine, entry, stages.conv)) / (height * width)
    return refine_output(refine, entry, pooled, stages.conv), mask
