"""Pixels between files and the model: codes of 8 or more bits as floats in [0, 1] and back, EXIF
orientations, and scaling."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

BT601_LUMA = (0.299, 0.587, 0.114)  # grey from RGB, as JPEG and Pillow's convert("L") weigh it
UNIT_FLOATS_8 = np.arange(256, dtype=np.float32) / 255  # each 8-bit code as a float in [0, 1]
ORIENTATIONS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of an H x W x 3 image, in its own units, as float32."""
    return rgb.astype(np.float32, copy=False) @ np.asarray(BT601_LUMA, np.float32)


# How far --keep-colour lets a pixel's colour grow with its lightness, and the lightness below which it
# grows less: a crushed shadow lifted tenfold would show its sensor noise as colour. The colour is also
# smoothed over this many pixels (a Gaussian's sigma), as the model smooths the noise of what it lifts:
# on the held-out synthetic pairs, unsmoothed colour cost 0.08 SSIM on under-exposed photos (0.683 against
# the model's 0.762), smoothed it scores 21.54 dB / 0.765 against the model's 21.11 / 0.762.
MOST_COLOUR_GAIN = 4.0
COLOUR_GAIN_FLOOR = 0.02
COLOUR_SMOOTHING = 2.0
COLOUR_SMOOTHING_RADIUS = round(4 * COLOUR_SMOOTHING)  # its reach each side, as OpenCV takes for floats


def lightness_only(photo: np.ndarray, corrected: np.ndarray) -> np.ndarray:
    """``corrected``'s luma with ``photo``'s colour (--keep-colour): each pixel's difference from its grey,
    grown as much as its luma grew (up to ``MOST_COLOUR_GAIN``), then smoothed (``COLOUR_SMOOTHING``), on
    the corrected luma. Hue and saturation stay the photo's, so the model's colour cast goes; clipped
    highlights, grey in the photo, stay grey."""
    photo_luma, corrected_luma = luma(photo)[..., None], luma(corrected)[..., None]
    gain = np.minimum(
        (corrected_luma + COLOUR_GAIN_FLOOR) / (photo_luma + COLOUR_GAIN_FLOOR), MOST_COLOUR_GAIN
    )
    result = np.subtract(photo, photo_luma, dtype=np.float32, order="C")  # in place from here: one array
    result *= gain  # then smoothed: smoothed first, a dark pixel lifted far would take a bright
    # neighbour's colour, grown 4 times (a grey beside red turned redder than the red)
    side = 2 * COLOUR_SMOOTHING_RADIUS + 1
    cv2.GaussianBlur(result, (side, side), COLOUR_SMOOTHING, dst=result)
    result += corrected_luma
    return np.clip(result, 0, 1, out=result)


def filled_where_hidden(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """``rgb`` with the pixels that ``alpha`` hides entirely (0) filled in smoothly from the visible ones
    around them, the visible ones as they are; as it is where nothing, or everything, is hidden. What lies
    under full transparency shows nowhere, but the model's statistics of the whole image see it: a cutout on
    a transparent black background came out washed out, on white darkened. The fill is a push-pull: a
    pyramid of the visible pixels' weighted means, each level filling in where the finer one knows little."""
    if alpha is None or (visible := alpha > 0).all() or not visible.any():
        return rgb
    weight = visible.astype(np.float32)
    known = rgb * weight[..., None]  # the visible pixels, weighted: their mean is known / weight
    levels = []
    while min(weight.shape) > 1:
        levels.append((known, weight))
        known, weight = cv2.pyrDown(known), cv2.pyrDown(weight)
    filled = known / np.maximum(weight, 1e-12)[..., None]
    for known, weight in reversed(levels):
        coarse = cv2.pyrUp(filled, dstsize=(weight.shape[1], weight.shape[0]))
        trust = np.clip(2 * weight, 0, 1)[..., None]  # half covered by visible pixels: their mean alone
        filled = coarse + (known / np.maximum(weight, 1e-12)[..., None] - coarse) * trust
    return np.where(visible[..., None], rgb, filled).astype(np.float32)


# How image editors show transparency: squares of two light greys, of 8 pixels and at least a 64th of the
# picture's long side, so that they still show where it is scaled down (report previews, explain sheets)
CHECKER_SQUARE = 8
CHECKER_SQUARES_ALONG = 64
CHECKER_GREYS = (0.8, 0.6)


def shows_through(alpha: np.ndarray | None) -> bool:
    """Whether an alpha channel (codes, full scale opaque) leaves any pixel less than opaque: many programs
    write one opaque all over. One pass over it, a few milliseconds for 24 MP."""
    return alpha is not None and alpha.min() < np.iinfo(alpha.dtype).max


def over_checkerboard(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """H x W x 3 floats in [0, 1] as an image editor shows a picture with ``alpha`` (H x W codes, full
    scale opaque): over a checkerboard of light greys, for the pictures recnet draws, which have none; as
    they are where nothing is transparent."""
    if alpha is None or not shows_through(alpha):
        return rgb
    opacity = (alpha.astype(np.float32) / np.iinfo(alpha.dtype).max)[..., None]
    square = max(CHECKER_SQUARE, max(alpha.shape) // CHECKER_SQUARES_ALONG)
    rows, cols = (np.arange(size) // square for size in alpha.shape)
    light, dark = CHECKER_GREYS
    board = np.where((rows[:, None] + cols[None, :]) % 2 == 0, light, dark).astype(np.float32)
    return (rgb * opacity + board[..., None] * (1 - opacity)).astype(np.float32)


def as_written(correction: np.ndarray, grayscale: bool) -> np.ndarray:
    """A photo's H x W x 3 correction as ``recnet correct`` writes it: a ``grayscale`` photo's is its luma,
    here in each channel."""
    return np.repeat(luma(correction)[..., None], 3, axis=2) if grayscale else correction


def fit_size(image: np.ndarray, min_side: int = 0, max_side: int = 0) -> np.ndarray:
    """Scales an image so its long side is at most ``max_side`` and its short side at least ``min_side``
    (0: no limit); the minimum wins when both cannot hold."""
    height, width = image.shape[:2]
    scale = 1.0
    if max_side and max(height, width) > max_side:
        scale = max_side / max(height, width)
    if min_side and min(height, width) * scale < min_side:
        scale = min_side / min(height, width)
    if scale == 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def unit_floats(codes: np.ndarray, peak: int) -> np.ndarray:
    """H x W x 3 float32 in [0, 1] from H x W x 1 or 3 codes of 0 to ``peak``: code / peak, each 8-bit code
    through a table (OpenCV's, 3x as fast as NumPy's conversion and division for the same floats)."""
    if codes.dtype == np.uint8:
        floats = cv2.LUT(np.ascontiguousarray(codes), UNIT_FLOATS_8).reshape(codes.shape)
    else:
        floats = codes.astype(np.float32) / peak
    return np.ascontiguousarray(np.broadcast_to(floats, (*codes.shape[:2], 3)))


def quantise(values: np.ndarray, depth: int) -> np.ndarray:
    """Round [0, 1] floats to the nearest code of ``depth`` bits (uint8 for 8 bits, else uint16), clipping
    the values outside (half-way values round to even)."""
    if depth == 8:  # values x 255 (+ values x 0) in one pass, rounded and saturated: 3x as fast as below
        values = np.ascontiguousarray(values)
        return cv2.addWeighted(values, 255, values, 0, 0, dtype=cv2.CV_8U).reshape(values.shape)
    codes = np.clip(values, 0.0, 1.0)
    np.multiply(codes, (1 << depth) - 1, out=codes)
    return np.rint(codes, out=codes).astype(np.uint16)


def alpha_at_depth(alpha: np.ndarray, depth: int) -> np.ndarray:
    """Alpha (uint8, or uint16 of 16 bits) unchanged when the output keeps its depth, else rounded to it."""
    if 8 * alpha.dtype.itemsize == depth:
        return alpha
    return quantise(alpha / np.float32(np.iinfo(alpha.dtype).max), depth)
