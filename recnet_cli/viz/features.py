"""What RECNet's blocks (five in the paper's model) do to a photo, as pictures: feature magnitudes and
feature errors.

Features come from the reference ``RECNet.forward_with_intermediates``, with the fast path's blur of the
mask (one FFT for all blocks: the reference's own 31x31 convolutions took most of ``explain``'s time), on
a copy of the photo downscaled to ``FEATURE_LONG_SIDE`` pixels on its long side (the figures are small
anyway, and the reference path keeps every block's features in memory at once). Block k's input is block
k-1's output; block 1's input is the extracted features, so the figures show the extracted features and
each block's output.
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
from recnet_cli.model.fast import every_blocks_branch_masks
from recnet_cli.viz import draw

FEATURE_LONG_SIDE = 512
TILE = 228  # a heat map's size: as wide as the figure's row allows, up to twice this (``heat_row``)
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
    bordered = with_border(small, parameter.device).to(parameter.dtype)
    results = model.forward_with_intermediates(bordered, blurred_masks=every_blocks_branch_masks)
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


def heat_row(
    maps: list[np.ndarray], titles: list[str], top: float, colour_map: int = cv2.COLORMAP_VIRIDIS
) -> np.ndarray:
    """Titled heat maps on one colour scale, in one row across the figure: as large as that allows, and a
    portrait photo's taller than they are wide, so they fill it too."""
    gap = 8
    side = min(2 * TILE, (FIGURE_WIDTH - gap * (len(maps) - 1)) // len(maps))
    tiles = [
        draw.titled(
            draw.fit_box(draw.sequential(values, top, colour_map), side, round(side * 1.5)), title, TEXT
        )
        for values, title in zip(maps, titles, strict=True)
    ]
    return draw.hstack(tiles, gap)


def stage_names(blocks: int) -> list[str]:
    """The features' stages as the figures name them: as extracted, then after each of the blocks."""
    return ["extracted"] + [f"after block {k}" for k in range(1, blocks + 1)]


def distance_chart(features: Features) -> np.ndarray:
    """The under/over distance per stage as bars, with whether this photo bears out the paper's claim that
    the blocks bring them closer, or the reason it is undefined."""
    under_share = (features.mask > 0.5).mean()
    title = (
        f"Distance between the mean features of the under-exposed region (mask > 0.5: {under_share:.0%} of "
        "the photo) and the over-exposed one (mask < 0.5)"
    )
    claim = (
        "The paper's claim: each block brings the two regions' features closer (bars shrink left to right)"
    )
    problem = missing_region(features.mask)
    if problem:
        heading = draw.text_lines([title, claim], FIGURE_WIDTH, TEXT)
        return draw.vstack(
            [heading, draw.text_lines([f"Not shown: {problem}."], FIGURE_WIDTH, TEXT, draw.MUTED)]
        )
    distances = region_distances(features)
    heading = draw.text_lines([title, claim, bears_out(distances)], FIGURE_WIDTH, TEXT)
    chart = draw.bar_chart(distances, stage_names(features.blocks), FIGURE_WIDTH, 230, SMALL_TEXT)
    return draw.vstack([heading, chart])


def bears_out(distances: list[float]) -> str:
    """What the distances say of the claim in this photo: how much closer or further apart the last block
    leaves the regions than they were extracted."""
    first, last = distances[0], distances[-1]
    if abs(last - first) <= 0.005 * first or last == first:
        verdict = "as far apart as extracted"
    elif first == 0:
        verdict = "further apart than extracted"
    else:
        change = last / first - 1
        verdict = f"{abs(change):.0%} {'closer' if change < 0 else 'further apart'} than extracted"
    return f"In this photo: {first:.3g} extracted, {last:.3g} after block {len(distances) - 1}: {verdict}"


def feature_figure(features: Features, heading: str | None = None) -> np.ndarray:
    """Heat maps of the feature magnitude as extracted and after each block, and the under/over distance
    chart; under a ``heading`` (the photo's name) where given: a figure of its own, not a contact sheet's
    part."""
    magnitudes = [magnitude(stage) for stage in features.stages]
    top = robust_top(magnitudes)
    maps = heat_row(magnitudes, stage_names(features.blocks), top)
    height, width = features.mask.shape
    channels = features.stages[0].shape[-1]
    title = draw.text_lines(
        [
            f"Feature magnitude |f| (L2 norm over the {channels} channels) as extracted and after each block",
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
        f"|f|, one colour scale shared by all {len(magnitudes)} maps",
    )
    headed = [draw.text_lines([heading], FIGURE_WIDTH, TITLE_TEXT)] if heading else []
    return draw.border(draw.vstack([*headed, title, maps, bar, distance_chart(features)], 12), 12)


def signed_error_limit(difference: np.ndarray) -> float:
    """The colour-scale limit for the signed error: the 99th percentile of its size, at least 0.02."""
    return max(float(np.percentile(np.abs(difference), 99)), 0.02)


def reference_size_problem(photo: tuple[int, ...], reference: tuple[int, ...]) -> str | None:
    """Why a reference of the array shape ``reference`` cannot be compared with a photo of ``photo``'s."""
    if photo[:2] == reference[:2]:
        return None
    return (
        f"the reference is {reference[1]} x {reference[0]} pixels but the photo is {photo[1]} x {photo[0]}: "
        "they must be the same size"
    )


def feature_error_figure(
    photo: Features, reference: Features, corrected: np.ndarray, reference_rgb: np.ndarray
) -> np.ndarray:
    """Per block, how far the photo's features are from the reference's; and the output's error.

    ``corrected`` and ``reference_rgb`` are the full-size H x W x 3 float images in [0, 1]; PSNR and SSIM
    are computed on them at 8 bits.
    """
    if problem := reference_size_problem(corrected.shape, reference_rgb.shape):
        raise UnscorableError(problem)
    distances = [magnitude(p - r) for p, r in zip(photo.stages[1:], reference.stages[1:], strict=True)]
    top = robust_top(distances)
    titles = [f"block {k}: mean {d.mean():.3g}" for k, d in enumerate(distances, start=1)]
    tiles = heat_row(distances, titles, top, cv2.COLORMAP_CIVIDIS)
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
    return draw.border(draw.vstack([title, tiles, bar, image_error(corrected, reference_rgb)], 12), 12)


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
