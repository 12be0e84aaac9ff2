"""The contact sheet of ``recnet explain``: one picture that shows what the model did and why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recnet_cli.engine import Corrector
from recnet_cli.imaging.pixels import as_written, over_checkerboard, quantise
from recnet_cli.viz import draw
from recnet_cli.viz.features import (
    FIGURE_WIDTH,
    TEXT,
    TITLE_TEXT,
    extract_features,
    feature_error_figure,
    feature_figure,
)
from recnet_cli.viz.mask import mask_overlay

PANEL_GAP = 12
PANEL_WIDTH = (FIGURE_WIDTH - 2 * PANEL_GAP) // 3
# A landscape photo fills its panel's width; a portrait one may be taller than wide, not a thumbnail
PHOTO_HEIGHT = round(PANEL_WIDTH * 1.25)
FRAME = (190, 190, 190)


@dataclass
class Explained:
    """Everything a contact sheet shows, as pictures (H x W x 3 uint8)."""

    photo: np.ndarray
    corrected: np.ndarray
    mask: np.ndarray
    features: np.ndarray
    errors: np.ndarray | None = None
    strength: float = 1.0  # the share of the model's correction in ``corrected``
    keep_colour: bool = True  # ``corrected`` is the correction's lightness in the photo's colours


def explain(
    corrector: Corrector,
    photo: np.ndarray,
    reference: np.ndarray | None = None,
    grey: bool = False,
    shown: Callable[[np.ndarray], np.ndarray] = lambda pixels: pixels,
    alpha: np.ndarray | None = None,
) -> Explained:
    """Corrects a photo and draws its figures; ``reference`` (same size) adds the error figure. A ``grey``
    photo's correction is shown as ``recnet correct`` writes it in a format with a grey mode: its luma.
    ``shown`` turns the photo's colours and its correction's into sRGB's, in which the pictures are drawn;
    where the photo's ``alpha`` makes it transparent, they show a checkerboard."""
    result = corrector.correct(photo)
    corrected = as_written(result.image, grey)
    features = extract_features(corrector.model, photo)
    errors = None
    if reference is not None:
        reference_features = extract_features(corrector.model, reference)
        errors = feature_error_figure(features, reference_features, corrected, reference)
    photo_shown = shown(photo)
    return Explained(
        photo=quantise(over_checkerboard(photo_shown, alpha), 8),
        corrected=quantise(over_checkerboard(shown(corrected), alpha), 8),
        mask=mask_overlay(photo_shown, result.mask, legend=False, alpha=alpha),
        features=feature_figure(features),
        strength=result.strength,
        keep_colour=corrector.keep_colour or grey,  # a grey photo's correction is in its colours: grey
        errors=errors,
    )


def contact_sheet(explained: Explained, title: str, subtitle: str) -> np.ndarray:
    """Input, corrected and mask side by side, then the feature figure and, with a reference, the errors."""
    captions = (
        ["1. Input", ""],
        ["2. Corrected by RECNet", strength_caption(explained.strength, explained.keep_colour)],
        ["3. Exposure mask seen by the model", "blue: under-exposed, orange: over-exposed"],
    )
    pictures = (explained.photo, explained.corrected, explained.mask)
    photos = draw.hstack([photo_panel(p, c) for p, c in zip(pictures, captions, strict=True)], PANEL_GAP)
    sections = [
        draw.text_lines([title], FIGURE_WIDTH, TITLE_TEXT),
        draw.text_lines([subtitle], FIGURE_WIDTH, TEXT, draw.MUTED),
        photos,
        section_heading("4. Inside the network"),
        explained.features,
    ]
    if explained.errors is not None:
        sections += [section_heading("5. Against the reference"), explained.errors]
    return draw.border(draw.vstack(sections, 10), 16)


def strength_caption(strength: float, keep_colour: bool) -> str:
    """How much of the correction the sheet shows, and whose colours: the photo's or the model's."""
    amount = (
        "the full correction (strength 1)" if strength == 1 else f"strength {strength:g} of the correction"
    )
    return amount + (", the photo's colours" if keep_colour else ", the model's colours")


def photo_panel(picture: np.ndarray, caption: list[str]) -> np.ndarray:
    """A photo fitted into a third of the sheet's width, captioned above, in a hairline frame: a blown-out
    sky would have no edge against the paper."""
    box = draw.border(draw.fit_box(picture, PANEL_WIDTH - 2, PHOTO_HEIGHT - 2), 1, FRAME)
    return draw.vstack(
        [draw.text_lines(caption, PANEL_WIDTH, TEXT), draw.pad(box, box.shape[0], PANEL_WIDTH)]
    )


def section_heading(text: str) -> np.ndarray:
    heading = draw.text_lines([text], FIGURE_WIDTH, TITLE_TEXT * 0.85)
    heading[-2:, :] = draw.MUTED
    return heading
