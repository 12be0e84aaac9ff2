"""What RECNet's blocks (five in the paper's model) do to a photo, as pictures: feature magnitudes and
feature errors.

Features come from the reference ``RECNet.forward_with_intermediates`` on a copy of the photo
downscaled to ``FEATURE_LONG_SIDE`` pixels on its long side (the figures are small anyway, and the
reference path keeps every block's features in memory at once). Block k's input is block k-1's output;
block 1's input is the extracted features.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from recnet_cli.engine import EDGE_PAD, with_border
from recnet_cli.imaging import fit_size
from recnet_cli.imaging.pixels import luma, quantise
from recnet_cli.metrics import UnscorableError, psnr, ssim
from recnet_cli.model import RECNet
from recnet_cli.viz import draw

FEATURE_LONG_SIDE = 512
TILE = 228  # long side of one heat map in the figures
FIGURE_WIDTH = 1340
TEXT = 0.55
SMALL_TEXT = 0.47
TITLE_TEXT = 0.8


@dataclass
class Features:
    """One photo's features at the reduced size: ``stages[0]`` is the extracted features, ``stages[k]``
    block k's output (each h x w x C float32)."""

    mask: np.ndarray  # h x w, 1 = under-exposed
    stages: list[np.ndarray]

    @property
    def blocks(self) -> int:
        return len(self.stages) - 1


@torch.inference_mode()
def extract_features(model: RECNet, rgb: np.ndarray, long_side: int = FEATURE_LONG_SIDE) -> Features:
    """Every block's features for an H x W x 3 float photo in [0, 1], computed on a downscaled copy with the
    mirrored border that correcting gives a photo (``engine.with_border``), so its mask is the one shown."""
    # Of two pixels at least: one pixel has no spread for the instance norms to divide by.
    small = fit_size(rgb, min_side=2, max_side=long_side)
    parameter = next(model.parameters())
    results = model.forward_with_intermediates(with_border(small, parameter.device).to(parameter.dtype))
    inside = (0, slice(None), slice(EDGE_PAD, -EDGE_PAD), slice(EDGE_PAD, -EDGE_PAD))
    names = ["extract"] + [f"block{k}" for k in range(1, model.num_blocks + 1)]
    stages = [results[name][inside].permute(1, 2, 0).float().cpu().numpy() for name in names]
    return Features(mask=results["mask"][inside][0].float().cpu().numpy(), stages=stages)


def magnitude(features: np.ndarray) -> np.ndarray:
    """Per-pixel L2 norm over the channels."""
    return np.linalg.norm(features, axis=-1)


def missing_region(mask: np.ndarray) -> str | None:
    """Why the under/over distance is undefined (one region is empty), or None."""
    if not (mask > 0.5).any():
        return "no under-exposed pixels (mask > 0.5): the under/over distance is undefined"
    if not (mask < 0.5).any():
        return "no over-exposed pixels (mask < 0.5): the under/over distance is undefined"
    return None


def region_distances(features: Features) -> list[float]:
    """For each stage, the L2 distance between the mean feature of the under-exposed region (mask > 0.5)
    and that of the over-exposed region (mask < 0.5). Both regions must be non-empty."""
    under, over = features.mask > 0.5, features.mask < 0.5
    return [float(np.linalg.norm(stage[under].mean(0) - stage[over].mean(0))) for stage in features.stages]


def robust_top(maps: list[np.ndarray]) -> float:
    """The 99.5th percentile of all values: one outlier pixel must not wash out the colour scale."""
    return float(np.percentile(np.concatenate([m.ravel() for m in maps]), 99.5)) or 1e-6


def heat_tile(values: np.ndarray, top: float, colour_map: int = cv2.COLORMAP_VIRIDIS) -> np.ndarray:
    return draw.fit_box(draw.sequential(values, top, colour_map), TILE, TILE)


def labelled_grid(rows: list[tuple[str, list[np.ndarray]]], column_titles: list[str]) -> np.ndarray:
    """Tiles in rows, a label left of each row and a title above each column."""
    gap = 8
    label_width = 150
    # As wide as the widest tile or title: a tall, thin photo's tiles are narrower than their titles.
    tile_width = max(
        *(tile.shape[1] for _, tiles in rows for tile in tiles),
        *(draw.text_size(title, TEXT)[0] + 2 * draw.text_margin(TEXT) for title in column_titles),
    )
    header = draw.hstack(
        [draw.blank(1, label_width)] + [draw.text_lines([t], tile_width, TEXT) for t in column_titles], gap
    )
    lines = [header]
    for label, tiles in rows:
        name = draw.text_lines(label.split("\n"), label_width, TEXT)
        height = max(name.shape[0], *(tile.shape[0] for tile in tiles))  # a panorama's tiles are low
        name = draw.pad(name, height, label_width)
        lines.append(draw.hstack([name] + [draw.pad(t, height, tile_width) for t in tiles], gap))
    return draw.vstack(lines, gap)


def distance_chart(features: Features) -> np.ndarray:
    """The under/over distance per stage as bars, or the reason it is undefined."""
    title = (
        "Distance between the mean features of the under-exposed (mask > 0.5) and over-exposed "
        "(mask < 0.5) regions"
    )
    subtitle = (
        "RECNet's claim: each block brings the two regions' features closer (bars shrink left to right)"
    )
    heading = draw.text_lines([title, subtitle], FIGURE_WIDTH, TEXT)
    problem = missing_region(features.mask)
    if problem:
        return draw.vstack(
            [heading, draw.text_lines([f"Not shown: {problem}."], FIGURE_WIDTH, TEXT, draw.MUTED)]
        )
    labels = ["extracted"] + [f"after block {k}" for k in range(1, features.blocks + 1)]
    chart = draw.bar_chart(region_distances(features), labels, FIGURE_WIDTH, 230, SMALL_TEXT)
    return draw.vstack([heading, chart])


def feature_figure(features: Features, heading: str | None = None) -> np.ndarray:
    """Heat maps of every block's input and output feature magnitude, and the under/over distance chart;
    under a ``heading`` (the photo's name) where given: a figure of its own, not a contact sheet's part."""
    magnitudes = [magnitude(stage) for stage in features.stages]
    top = robust_top(magnitudes)
    inputs = [heat_tile(m, top) for m in magnitudes[:-1]]
    outputs = [heat_tile(m, top) for m in magnitudes[1:]]
    columns = [f"block {k}" for k in range(1, features.blocks + 1)]
    maps = labelled_grid([("block input\n|f|", inputs), ("block output\n|f|", outputs)], columns)
    height, width = features.mask.shape
    channels = features.stages[0].shape[-1]
    title = draw.text_lines(
        [
            f"Feature magnitude |f| (L2 norm over the {channels} channels) entering and leaving each block",
            f"computed on a {width} x {height} copy of the photo; bright = strong features",
        ],
        FIGURE_WIDTH,
        TEXT,
    )
    bar = draw.colour_bar(
        lambda v: draw.sequential(v, top),
        0,
        top,
        620,
        SMALL_TEXT,
        f"|f|, one colour scale shared by all {2 * features.blocks} maps",
    )
    headed = [draw.text_lines([heading], FIGURE_WIDTH, TITLE_TEXT)] if heading else []
    return draw.border(draw.vstack([*headed, title, maps, bar, distance_chart(features)], 12), 12)


def signed_error_limit(difference: np.ndarray) -> float:
    """The colour-scale limit for the signed error: the 99th percentile of its size, at least 0.02."""
    return max(float(np.percentile(np.abs(difference), 99)), 0.02)


def feature_error_figure(
    photo: Features, reference: Features, corrected: np.ndarray, reference_rgb: np.ndarray
) -> np.ndarray:
    """Per block, how far the photo's features are from the reference's; and the output's error.

    ``corrected`` and ``reference_rgb`` are the full-size H x W x 3 float images in [0, 1]; PSNR and SSIM
    are computed on them at 8 bits.
    """
    if corrected.shape != reference_rgb.shape:
        raise UnscorableError(
            f"the reference is {reference_rgb.shape[1]} x {reference_rgb.shape[0]} pixels but the photo is "
            f"{corrected.shape[1]} x {corrected.shape[0]}: they must be the same size"
        )
    distances = [magnitude(p - r) for p, r in zip(photo.stages[1:], reference.stages[1:], strict=True)]
    top = robust_top(distances)
    tiles = [
        draw.titled(heat_tile(d, top, cv2.COLORMAP_CIVIDIS), f"block {k}: mean {d.mean():.3g}", SMALL_TEXT)
        for k, d in enumerate(distances, start=1)
    ]
    title = draw.text_lines(
        [
            "Feature error: per-pixel distance |f_photo - f_reference| after each block (one shared scale)",
            "the reference (ground truth) went through the same network; dark = the block's features "
            "already match the reference's",
        ],
        FIGURE_WIDTH,
        TEXT,
    )
    bar = draw.colour_bar(
        lambda v: draw.sequential(v, top, cv2.COLORMAP_CIVIDIS),
        0,
        top,
        620,
        SMALL_TEXT,
        "|f_photo - f_reference|",
    )
    return draw.border(
        draw.vstack([title, draw.hstack(tiles, 8), bar, image_error(corrected, reference_rgb)], 12), 12
    )


def image_error(corrected: np.ndarray, reference_rgb: np.ndarray) -> np.ndarray:
    """The signed luminance error of the output (blue: too dark, vermillion: too bright) with PSNR/SSIM."""
    difference = luma(fit_size(corrected, max_side=2 * TILE)) - luma(
        fit_size(reference_rgb, max_side=2 * TILE)
    )
    limit = signed_error_limit(difference)
    picture = draw.fit_box(draw.diverging(difference, limit), 2 * TILE, 2 * TILE)
    output, reference = quantise(corrected, 8), quantise(reference_rgb, 8)
    scores = f"PSNR {psnr(output, reference):.2f} dB   SSIM {ssim(output, reference):.4f}"
    notes = draw.text_lines(
        [
            "Output against the reference: luminance difference",
            "blue = still too dark, orange = still too bright,",
            "white = right",
            "",
            scores,
        ],
        FIGURE_WIDTH - picture.shape[1] - 20,
        TEXT,
    )
    bar = draw.colour_bar(
        lambda v: draw.diverging(v, limit),
        -limit,
        limit,
        620,
        SMALL_TEXT,
        "output luminance - reference (0 to 1)",
    )
    return draw.hstack([picture, draw.vstack([notes, bar], 12)], 20)
