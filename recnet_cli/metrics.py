"""Image quality metrics: PSNR and SSIM on 8-bit RGB.

SSIM follows Wang et al. (2004) as scikit-image computes it with ``gaussian_weights=True, sigma=1.5,
use_sample_covariance=False``: an 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, per channel, and the
mean over the 'valid' region only (pixels at least 5 from every border, where the window fits inside the
image). One torch implementation serves evaluation (float64) and the training loss (differentiable).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from recnet_cli.model.recnet import gaussian_1d

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
MAX_PSNR = 100.0  # identical images (infinite PSNR) count as this where PSNRs are averaged


def gaussian_window(dtype: torch.dtype, device: torch.device) -> Tensor:
    """The normalised 1-D Gaussian used along each axis of the SSIM window."""
    return gaussian_1d(SSIM_WINDOW, SSIM_SIGMA, device=device, dtype=dtype)


class UnscorableError(ValueError):
    """Images that cannot be compared: of different sizes, or too small for SSIM's window."""


def local_mean(x: Tensor, window: Tensor) -> Tensor:
    """Separable Gaussian filter of every channel of (B, C, H, W), 'valid' region only."""
    channels = x.shape[1]
    rows = window.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    cols = window.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    return F.conv2d(F.conv2d(x, rows, groups=channels), cols, groups=channels)


def ssim_tensor(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """Mean SSIM per image of two (B, C, H, W) batches (H, W >= 11); differentiable."""
    height, width = x.shape[-2:]
    if min(height, width) < SSIM_WINDOW:
        raise UnscorableError(
            f"{width}x{height} pixels is too small to score: SSIM needs {SSIM_WINDOW} or more on each side"
        )
    window = gaussian_window(x.dtype, x.device)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = local_mean(x, window), local_mean(y, window)
    var_x = local_mean(x * x, window) - mu_x**2
    var_y = local_mean(y * y, window) - mu_y**2
    cov = local_mean(x * y, window) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3))


def psnr_tensor(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """PSNR in dB per image of two (B, C, H, W) batches; infinite for identical images."""
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(data_range**2 / mse)


def as_batch(image: np.ndarray) -> Tensor:
    """(H, W, 3) array in [0, 255] as a (1, 3, H, W) float64 tensor."""
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float64).transpose(2, 0, 1))[None]


def mean_psnr(values: Iterable[float]) -> float:
    """The mean of PSNRs in dB, an identical pair's infinite one counted as ``MAX_PSNR``."""
    return statistics.fmean(min(value, MAX_PSNR) for value in values)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two (H, W, 3) RGB images with values in [0, 255]."""
    return float(psnr_tensor(as_batch(a), as_batch(b), 255.0))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two (H, W, 3) RGB images with values in [0, 255], averaged over the channels."""
    return float(ssim_tensor(as_batch(a), as_batch(b), 255.0))


def quantised_scores(output: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """(PSNR, SSIM) per image of (B, 3, H, W) batches in [0, 1], both rounded to 8 bits first (on the CPU)."""
    out8 = torch.round(output.detach().cpu().double().clamp(0, 1) * 255)
    target8 = torch.round(target.detach().cpu().double().clamp(0, 1) * 255)
    return psnr_tensor(out8, target8, 255.0), ssim_tensor(out8, target8, 255.0)
