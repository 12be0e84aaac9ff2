"""Regenerates examples/gallery/: every example corrected by the default model as `recnet correct` does
it (--strength auto), its mask, its `recnet explain` contact sheet (the full correction, with the ground
truth for synthetic pairs), and the grids the README shows.

    python examples/make_gallery.py            # after `pip install -e .`
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from recnet_cli.devices import pick_device
from recnet_cli.engine import Corrector
from recnet_cli.imaging import read_photo, write_photo, write_rgb8
from recnet_cli.imaging.pixels import quantise
from recnet_cli.metrics import psnr, ssim
from recnet_cli.viz import draw
from recnet_cli.viz.mask import mask_overlay
from recnet_cli.viz.sheet import contact_sheet, explain
from recnet_cli.weights import load_model, strength_calibration

EXAMPLES = Path(__file__).resolve().parent
GALLERY = EXAMPLES / "gallery"
ROW_HEIGHT = 360
CAPTION_SCALE = 0.55


def labelled(image: np.ndarray, label: str) -> np.ndarray:
    """The image scaled to the row height, with a caption above it."""
    return draw.captioned(image, label, ROW_HEIGHT, CAPTION_SCALE)


def write_sheet(
    corrector: Corrector, path: Path, photo: np.ndarray, reference: np.ndarray | None, model: str
) -> None:
    """The `recnet explain` contact sheet of one example, as <stem>_explain.jpg."""
    subtitle = f"model {model}" + ("   reference: the ground truth" if reference is not None else "")
    sheet = contact_sheet(explain(corrector, photo, reference), f"recnet explain: {path.name}", subtitle)
    write_rgb8(GALLERY / f"{path.stem}_explain.jpg", sheet, quality=92)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.parse_args()  # no options: --help says what it does before it writes over the gallery
    loaded = load_model(None)
    device = pick_device("auto")
    calibration = strength_calibration(loaded)
    corrector = Corrector(
        loaded.model, device, tile="auto", strength="auto", calibration=calibration, keep_colour=True
    )
    full = Corrector(loaded.model, device, tile="auto", keep_colour=True)  # what recnet explain shows
    GALLERY.mkdir(exist_ok=True)

    real_rows = []
    for path in sorted(EXAMPLES.glob("*.jpg")):
        photo = read_photo(path)
        result = corrector.correct(photo.pixels)
        write_photo(GALLERY / f"{path.stem}_recnet.jpg", result.image, like=photo)
        overlay = mask_overlay(photo.pixels, result.mask)
        write_rgb8(GALLERY / f"{path.stem}_mask.jpg", overlay, quality=90)
        write_sheet(full, path, photo.pixels, None, loaded.source)
        real_rows.append(
            [
                labelled(quantise(photo.pixels, 8), f"{path.name} (input)"),
                labelled(quantise(result.image, 8), f"recnet correct (strength {result.strength:g})"),
                labelled(overlay, "recnet mask (blue under, orange over)"),
            ]
        )
    write_rgb8(GALLERY / "real-photos.jpg", draw.grid(real_rows), quality=90)

    synthetic_rows = []
    for source in sorted((EXAMPLES / "synthetic").glob("*_input.png")):
        target = source.with_name(source.name.replace("_input", "_gt"))
        photo, truth = read_photo(source), quantise(read_photo(target).pixels, 8)
        result = corrector.correct(photo.pixels)
        corrected = quantise(result.image, 8)
        write_sheet(full, source, photo.pixels, read_photo(target).pixels, loaded.source)
        write_rgb8(GALLERY / source.name.replace("_input", "_recnet"), corrected)
        before, after = quantise(photo.pixels, 8), corrected
        synthetic_rows.append(
            [
                labelled(before, f"input: {psnr(before, truth):.1f} dB, SSIM {ssim(before, truth):.3f}"),
                labelled(
                    after,
                    f"recnet (strength {result.strength:g}): {psnr(after, truth):.1f} dB, "
                    f"SSIM {ssim(after, truth):.3f}",
                ),
                labelled(truth, "ground truth"),
            ]
        )
    if synthetic_rows:
        write_rgb8(GALLERY / "synthetic-pairs.jpg", draw.grid(synthetic_rows), quality=90)
    print(f"gallery written to {GALLERY} with {loaded.source}")


if __name__ == "__main__":
    main()
