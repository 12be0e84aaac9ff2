"""The exposure mask as a picture a person can read."""

from __future__ import annotations

import numpy as np

from recnet_cli.imaging.pixels import luma, over_checkerboard, quantise
from recnet_cli.viz import draw
from recnet_cli.viz.draw import BLUE, VERMILLION

UNDER_COLOUR = np.array(BLUE, dtype=np.float32) / 255
OVER_COLOUR = np.array(VERMILLION, dtype=np.float32) / 255
DIMMING = 0.45
LEGEND_INK = (235, 235, 235)
LEGEND_FONT_SCALE = 0.5  # the labels' text scale, at the legend's scale 1
LEGEND_LEAST_FONT = 10  # pixels: smaller labels are smudges
LEGEND_LEAST_SCALE = LEGEND_LEAST_FONT / (LEGEND_FONT_SCALE * draw.PIXELS_PER_SCALE)
LEGEND_MOST_SHARE = (1 / 3, 1 / 2)  # of the picture's height and width: it would hide the mask


def exposure_tint(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel tint colour and strength from the under-exposure mask (1 under, 0 over, 0.5 unsure)."""
    under = np.clip(2 * mask - 1, 0, 1)
    over = np.clip(1 - 2 * mask, 0, 1)
    strength = np.maximum(under, over)
    colour = under[..., None] * UNDER_COLOUR + over[..., None] * OVER_COLOUR
    colour = colour / np.maximum(strength, 1e-6)[..., None]
    return colour, strength


def mask_overlay(
    photo: np.ndarray, mask: np.ndarray, legend: bool = True, alpha: np.ndarray | None = None
) -> np.ndarray:
    """The photo dimmed to grey, tinted blue where under-exposed and orange where over-exposed; where the
    photo's ``alpha`` (H x W codes) makes it transparent, over a checkerboard.

    ``photo`` is H x W x 3 float in [0, 1], ``mask`` H x W in [0, 1]; returns H x W x 3 uint8 RGB.
    """
    grey = luma(photo)[..., None]
    base = np.repeat(grey * DIMMING + (1 - DIMMING) * 0.15, 3, axis=2)
    colour, strength = exposure_tint(mask.astype(np.float32))
    tint = 0.75 * strength[..., None]
    picture = base * (1 - tint) + colour * (0.35 + 0.65 * grey) * tint
    image = quantise(over_checkerboard(picture, alpha), 8)
    return draw_legend(image) if legend else image


def draw_legend(image: np.ndarray) -> np.ndarray:
    """A small key in the bottom-left corner: a colour bar from over- to under-exposed; none on a picture
    too small to hold it legibly and still show the mask (``LEGEND_MOST_SHARE``)."""
    height, width = image.shape[:2]
    scale = max(min(width, height) / 900, LEGEND_LEAST_SCALE)
    bar_w, bar_h = int(260 * scale), int(16 * scale)
    pad = int(10 * scale)
    font_scale = LEGEND_FONT_SCALE * scale
    text_h = draw.text_size("Ag", font_scale)[1]
    box_w, box_h = bar_w + 2 * pad, bar_h + text_h + 3 * pad
    if box_h > height * LEGEND_MOST_SHARE[0] or box_w > width * LEGEND_MOST_SHARE[1]:
        return image
    out = image.copy()
    top = height - box_h
    out[top:, :box_w] = (out[top:, :box_w] * 0.3).astype(np.uint8)
    ramp = np.linspace(0, 1, bar_w, dtype=np.float32)
    colour, strength = exposure_tint(ramp)
    grey = np.float32(0.2)
    bar = grey * (1 - strength[:, None]) + colour * strength[:, None]
    out[top + pad : top + pad + bar_h, pad : pad + bar_w] = quantise(bar, 8)[None]
    baseline = top + 2 * pad + bar_h + text_h
    for label, share in (("over", 0.0), ("ok", 0.5), ("under", 1.0)):  # left, centred and right under the bar
        left = pad + round((bar_w - draw.text_size(label, font_scale)[0]) * share)
        draw.put_text(out, label, (left, baseline), font_scale, LEGEND_INK)
    return out
