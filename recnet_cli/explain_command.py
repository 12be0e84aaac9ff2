"""What `recnet explain` does: checks its sheet's place, reads the photo (and its reference), runs the model
on it and draws the contact sheet. A problem ends the command (``console.fail``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from recnet_cli import console
from recnet_cli.batch import unattributable_outputs
from recnet_cli.console import fail
from recnet_cli.imaging import PhotoFileError, faults_fail_alone, shown_in_srgb, write_rgb8
from recnet_cli.inputs import Source
from recnet_cli.options import Precision, refuse_unwritable_output
from recnet_cli.outputs import Job, output_taken_as_folder, sheet_problem, sheet_target
from recnet_cli.runner import (
    ModelChoice,
    notice_unattributable,
    open_models,
    read_with_reference,
    refuse_device_list,
)


def explain_photo(
    image: Path,
    reference: Path | None,
    output: str | None,
    model: str | None,
    device: str,
    tile: str,
    keep_colour: bool,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Writes the contact sheet of ``image`` (with ``reference``'s distances) at ``output`` or beside it."""
    refuse_unwritable_output(output)
    # A mistake in the options exits 2, before a sheet that cannot be written there exits 1, as correct's
    # photo does.
    choice = ModelChoice(model, device, Precision.fp32, tile, keep_colour=keep_colour)
    refuse_device_list(device)
    choice.refuse_setup_problems()
    if image.is_dir():
        raise fail(f"{image}: a folder; explain takes one photo (correct and mask take folders)")
    target = sheet_target(image, output)
    named = target == Path(output or "")
    where = partial(
        sheet_problem,
        target,
        [image] if reference is None else [image, reference],
        named=named,
        overwrite=overwrite,
    )
    if problem := where(create=False):
        raise fail(problem, 1)
    if (as_folder := output_taken_as_folder([Source(image, Path(image.name))], output)) and not quiet:
        console.notice(as_folder)
    notice_unattributable(overwrite, unattributable_outputs([Job(image, target, named=named)]), quiet)
    photo, truth = read_with_reference(image, reference, quiet)
    (corrector,), loaded = open_models(choice, quiet=quiet, one_device=True)
    corrector.half_precision_advice = False  # explain has no --precision
    from recnet_cli.engine import PhotoRunError
    from recnet_cli.metrics import UnscorableError
    from recnet_cli.viz.sheet import contact_sheet, explain

    try:
        shown = partial(shown_in_srgb, photo)  # the sheet carries no colour profile: sRGB's colours
        pixels = photo.pixels_to_correct
        explained = explain(corrector, pixels, truth, grey=photo.grayscale, shown=shown, alpha=photo.alpha)
        subtitle = f"model {loaded.source}   device {corrector.device}" + (
            f"   reference {reference.name}" if reference is not None else ""
        )
        sheet = contact_sheet(explained, f"recnet explain: {image.name}", subtitle)
        # Its folder is made once the sheet is drawn, so that nothing failing before (the photo, the model,
        # a reference of another size) leaves an empty folder behind; a file saved at its name meanwhile
        # is seen.
        if problem := where(create=True):
            raise fail(problem, 1)
        with faults_fail_alone(image):
            write_rgb8(target, sheet, overwrite=overwrite)
    except PhotoFileError as exc:
        raise fail(str(exc), 1) from None
    except PhotoRunError as exc:
        raise fail(f"{image}: {exc}", 1) from None
    except UnscorableError as exc:  # a photo too small to score
        raise fail(f"{reference or image}: {exc}", 1) from None
    if not quiet:
        console.notice(f"wrote {target}")
