"""Training losses: the paper's and the authors' code's combinations, and the exposure contrastive
regularisation (ECR) on ImageNet VGG16 features.

Presets (weights as in the paper and in the authors' ``train_Enhance.yml``):
- ``paper``: 1.0 · MSE + 1.0 · colour + 0.25 · BCE(M, Y_gt > Y_in) + 0.1 · ECR
- ``authors-code``: 1.0 · L1 + 0.1 · (1 - SSIM) + 1.0 · colour + 0.25 · BCE + 0.1 · ECR
Colour is 1 - cosine similarity between the output's and the ground truth's RGB vectors, per pixel,
averaged. Y is BT.601 luma; M is the network's under-exposure mask.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recnet_cli.imaging import BT601_LUMA
from recnet_cli.metrics import ssim_tensor
from recnet_cli.weights import WeightsError
from recnet_cli.weights.formats import (
    check_state_dict,
    describe_keys,
    is_safetensors,
    read_checkpoint,
    read_safetensors,
)

COLOUR_WEIGHT = 1.0
MASK_WEIGHT = 0.25
ECR_WEIGHT = 0.1
ECR_POOL = 4
ECR_EPS = 1e-8
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
VGG16_FILE = "vgg16-397923af.pth"
VGG16_URL = f"https://download.pytorch.org/models/{VGG16_FILE}"  # where torchvision downloads it from
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VggWeightsError(ValueError):
    """The ImageNet VGG16 weights the ECR term needs are missing or unusable."""


@dataclass(frozen=True)
class LossPreset:
    name: str
    pixel: Callable[[Tensor, Tensor], Tensor]
    ssim_weight: float
    authors_ecr: bool


PRESETS = {
    "paper": LossPreset("paper", F.mse_loss, 0.0, authors_ecr=False),
    "authors-code": LossPreset("authors-code", F.l1_loss, 0.1, authors_ecr=True),
}


def get_preset(name: str) -> LossPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown loss preset {name!r} (choose one of {', '.join(PRESETS)})")
    return PRESETS[name]


class VGG16Features(nn.Module):
    """VGG16 ``features[:23]`` (conv1_1 to relu4_3) with torchvision's layer indices, frozen."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU()]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


def default_vgg_weights() -> Path:
    """Where torchvision keeps its ImageNet VGG16 download."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


def load_vgg16_features(path: Path | None = None) -> VGG16Features:
    """VGG16 features from a torchvision state dict (``features.N.*`` keys; a ``.pth``, or the same
    tensors as ``.safetensors``); never random weights."""
    given, path = path is not None, path or default_vgg_weights()
    if not path.is_file():
        what = "a folder, not a weights file" if path.is_dir() else "no such file"
        raise VggWeightsError(
            f"{path}: {what if given else 'no VGG16 weights'}; the ECR loss needs torchvision's ImageNet "
            f"{VGG16_FILE} ({VGG16_URL}: pass --vgg-weights PATH or place it at {default_vgg_weights()}), or "
            "train with --no-ecr"
        )
    label = str(path)
    try:  # as --model reads a file: a checkpoint's pickle never runs code, and says so when it would
        state = (
            read_safetensors(path, label)
            if is_safetensors(path)
            else read_checkpoint(path, label, "VGG16 checkpoint")
        )
    except WeightsError as exc:
        raise VggWeightsError(str(exc)) from exc
    if not isinstance(state, dict):
        raise VggWeightsError(f"{path}: not a VGG16 state dict (it holds a {type(state).__name__})")
    vgg = VGG16Features()
    expected = vgg.state_dict()
    found = {key: value for key, value in state.items() if key in expected and isinstance(value, Tensor)}
    try:  # torchvision's file holds the rest of VGG16 too (features.24 on, the classifier): not checked
        check_state_dict(expected, found, f"{path}: not a VGG16 state dict")
    except WeightsError as exc:
        others = [str(key) for key in state if key not in expected]
        held = f"; {describe_keys('it holds', others)}" if others and not found else ""
        raise VggWeightsError(f"{exc}{held}") from exc
    vgg.load_state_dict(found)
    return vgg


def luma(rgb: Tensor) -> Tensor:
    """BT.601 luma (the Y of YCbCr up to an offset and scale), (B, 1, H, W)."""
    weights = torch.tensor(BT601_LUMA, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * weights).sum(1, keepdim=True)


def colour_loss(output: Tensor, target: Tensor) -> Tensor:
    """1 - cosine similarity of the RGB vectors, averaged over pixels."""
    return (1 - F.cosine_similarity(output, target, dim=1, eps=ECR_EPS)).mean()


def mask_target(inputs: Tensor, target: Tensor) -> Tensor:
    """1 where the ground truth is brighter than the input (under-exposed), else 0."""
    return (luma(target) > luma(inputs)).to(inputs.dtype)


def cross_gram(a: Tensor, b: Tensor) -> Tensor:
    """(B, HW, HW) inner products of every position of ``a`` with every position of ``b``."""
    return a.flatten(2).transpose(1, 2) @ b.flatten(2)


class ExposureContrastiveLoss(nn.Module):
    """ECR (paper Eq. 6) on VGG16 relu4_3 features of masked, max-pooled images.

    Images and the under-exposure mask M are max-pooled by 4 (as the authors' code does); with
    m_u = pool(M), m_o = 1 - m_u and φ = VGG16 features[:23], for each region r in (u, o):
        a_r = φ(out · m_r) (anchor), p_r = φ(gt · m_r) (positive), n_r = φ(in · m_r) (negative)
    and, for the relation between the regions, the cross-Gram matrices
        G_a = a_uᵀ a_o,  G_p = p_uᵀ p_o,  G_n = n_uᵀ n_o.
    D is the mean absolute difference. The loss is R(a_u, p_u, n_u) + R(a_o, p_o, n_o) + R(G_a, G_p, G_n),
    where the paper's form is R(a, p, n) = D(a, p) / (D(a, n) + ε); the authors' code (``authors_form``)
    uses R = D(a, p) / (D(a, p) + D(n, p) + ε), feeds VGG unnormalised images and compares G_a with
    G_n rather than n with p for the Gram term. The paper form normalises images with ImageNet statistics.
    ε = 1e-8. M is not detached (as in the authors' code), so ECR also trains the mask predictor.
    """

    def __init__(self, vgg: VGG16Features, authors_form: bool) -> None:
        super().__init__()
        self.vgg = vgg
        self.authors_form = authors_form
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def fingerprint(self) -> str:
        """A digest of the VGG16 weights the loss compares features with, whatever file held them."""
        digest = hashlib.sha256()
        for name, tensor in self.vgg.state_dict().items():
            digest.update(name.encode() + tensor.detach().cpu().float().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def features(self, image: Tensor, region: Tensor) -> Tensor:
        masked = image * region
        return self.vgg(masked if self.authors_form else (masked - self.mean) / self.std)

    def ratio(
        self, anchor: Tensor, positive: Tensor, negative: Tensor, negative_to_positive: bool = True
    ) -> Tensor:
        to_positive = F.l1_loss(anchor, positive)
        if not self.authors_form:
            return to_positive / (F.l1_loss(anchor, negative) + ECR_EPS)
        to_negative = F.l1_loss(negative, positive) if negative_to_positive else F.l1_loss(anchor, negative)
        return to_positive / (to_positive + to_negative + ECR_EPS)

    def forward(self, output: Tensor, target: Tensor, inputs: Tensor, mask: Tensor) -> Tensor:
        output, target, inputs, under = (F.max_pool2d(t, ECR_POOL) for t in (output, target, inputs, mask))
        over = 1 - under
        a_u, p_u, n_u = (self.features(t, under) for t in (output, target, inputs))
        a_o, p_o, n_o = (self.features(t, over) for t in (output, target, inputs))
        grams = cross_gram(a_u, a_o), cross_gram(p_u, p_o), cross_gram(n_u, n_o)
        return (
            self.ratio(a_u, p_u, n_u)
            + self.ratio(a_o, p_o, n_o)
            + self.ratio(*grams, negative_to_positive=False)
        )


class RecnetLoss(nn.Module):
    """The weighted training loss of a preset; ``ecr`` None leaves the ECR term out."""

    def __init__(self, preset: str, ecr: ExposureContrastiveLoss | None) -> None:
        super().__init__()
        self.preset = get_preset(preset)
        self.ecr = ecr

    def forward(self, output: Tensor, mask: Tensor, inputs: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Weighted terms and their sum under ``total``; call outside autocast (float32)."""
        output, mask = output.float(), mask.float()
        terms = {
            "pixel": self.preset.pixel(output, target),
            "colour": COLOUR_WEIGHT * colour_loss(output, target),
            "mask": MASK_WEIGHT * F.binary_cross_entropy(mask, mask_target(inputs, target)),
        }
        if self.preset.ssim_weight:
            terms["ssim"] = self.preset.ssim_weight * (1 - ssim_tensor(output, target).mean())
        if self.ecr is not None:
            terms["ecr"] = ECR_WEIGHT * self.ecr(output, target, inputs, mask)
        terms["total"] = sum(terms.values())
        return terms


def build_loss(preset: str, ecr: bool, vgg_weights: Path | None) -> RecnetLoss:
    """The loss for a preset, loading VGG16 only when ECR is on."""
    contrastive = (
        ExposureContrastiveLoss(load_vgg16_features(vgg_weights), get_preset(preset).authors_ecr)
        if ecr
        else None
    )
    return RecnetLoss(preset, contrastive)
