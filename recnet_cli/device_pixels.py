"""Pixel work done with PyTorch where a photo already is, on the model's device: the mirrored border the
model sees, and --keep-colour's colour transfer before the correction is copied back to host memory
(which leaves the host's threads the decoding, encoding and writing). Nothing here copies numbers from
host memory to the device: from pageable memory, that waits for all the work queued on a GPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recnet_cli.imaging.pixels import (
    BT601_LUMA,
    COLOUR_GAIN_FLOOR,
    COLOUR_SMOOTHING,
    COLOUR_SMOOTHING_RADIUS,
    MOST_COLOUR_GAIN,
)
from recnet_cli.model.recnet import gaussian_1d


def mirror_border(image: torch.Tensor, border: int) -> torch.Tensor:
    """(H, W, ...) with a ``border``-pixel mirrored border, the edge pixel repeated, as NumPy's "symmetric"
    padding does (for any size, even one under ``border``), on the image's device."""
    rows, cols = (mirrored_indices(size, border, image.device) for size in image.shape[:2])
    return image.index_select(0, rows).index_select(1, cols)


def mirrored_indices(
    size: int, border: int, device: torch.device, edge_repeated: bool = True
) -> torch.Tensor:
    """The indices a mirrored border reads from a row of ``size``, folding again where the border is wider
    than the row: with ``edge_repeated``, NumPy's "symmetric" padding (-1 reads 0); without, its "reflect",
    OpenCV's default border (-1 reads 1)."""
    period = 2 * size if edge_repeated else max(2 * size - 2, 1)
    folded = torch.arange(-border, size + border, device=device).remainder(period)
    return torch.where(folded < size, folded, period - int(edge_repeated) - folded)


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of a (3, H, W) image, (H, W)."""
    red, green, blue = BT601_LUMA
    return rgb[0] * red + rgb[1] * green + rgb[2] * blue


def lightness_only(photo: torch.Tensor, corrected: torch.Tensor) -> torch.Tensor:
    """``imaging.pixels.lightness_only`` for (3, H, W) images on their device, in float32 (the correction
    may be in half precision, as the model made it)."""
    photo = photo.float()
    photo_luma, corrected_luma = luma(photo), luma(corrected.float())  # a half correction: copied, then freed
    gain = (
        (corrected_luma + COLOUR_GAIN_FLOOR).div_(photo_luma + COLOUR_GAIN_FLOOR).clamp_(max=MOST_COLOUR_GAIN)
    )
    colour = (photo - photo_luma).mul_(gain)
    return smoothed(colour).add_(corrected_luma).clamp_(0, 1)


def smoothed(image: torch.Tensor) -> torch.Tensor:
    """A (C, H, W) float32 image through ``COLOUR_SMOOTHING``'s Gaussian, as ``cv2.GaussianBlur`` smooths
    it: OpenCV's taps, and its default border (on a GPU in TF32 where PyTorch lets cuDNN use it, as for the
    model's own convolutions: within about 1e-4)."""
    radius = COLOUR_SMOOTHING_RADIUS
    # made where the image is: taps made on the CPU would be a copy to the GPU, which waits for its queue
    kernel = gaussian_1d(2 * radius + 1, COLOUR_SMOOTHING, device=image.device, dtype=torch.float32)
    rows, cols = (
        mirrored_indices(size, radius, image.device, edge_repeated=False) for size in image.shape[1:]
    )
    across = F.conv2d(image.index_select(2, cols)[:, None], kernel.view(1, 1, 1, -1))  # channels as a batch
    return F.conv2d(across.index_select(2, rows), kernel.view(1, 1, -1, 1))[:, 0]
