"""What `recnet calibrate` does around the fit: its failures as one-line errors, and its report. A problem
ends the command (``console.fail``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from recnet_cli import console
from recnet_cli.console import fail
from recnet_cli.files import error_line

if TYPE_CHECKING:  # these need PyTorch, which the commands import only when they run
    from recnet_cli.autostrength import StrengthCalibration
    from recnet_cli.engine import Corrector
    from recnet_cli.train.calibration import CalibrationData, GroupScore
    from recnet_cli.weights import LoadedModel


def fitted_strength(
    corrector: Corrector, data: CalibrationData, source: str, size: int, quiet: bool
) -> tuple[StrengthCalibration, dict[str, GroupScore]]:
    """The calibration fitted on ``data`` and its held-out scores, with a progress bar of the photos; a
    photo the model ``source`` cannot correct is named with it."""
    from recnet_cli.engine import PhotoOutOfMemoryError, PhotoRunError
    from recnet_cli.train.calibration import calibrate

    with console.counting(data.photos, "Calibrating", "photos", quiet) as count_one:
        try:
            return calibrate(corrector, data, count_one)
        except (ValueError, OSError) as exc:
            raise fail(error_line(exc)) from None
        except PhotoOutOfMemoryError:
            memory = "GPU memory" if corrector.device.type == "cuda" else "memory"
            message = f"not enough {memory} to calibrate at --size {size}: try a smaller --size"
            raise fail(message, 1) from None
        except PhotoRunError as exc:
            raise fail(f"{source}: {exc}", 1) from None


def report_calibration(
    loaded: LoadedModel,
    output: Path,
    data: CalibrationData,
    calibration: StrengthCalibration,
    scores: dict[str, GroupScore],
    as_json: bool,
    quiet: bool,
) -> None:
    """The held-out scores (a table, or JSON with what was fitted), a note on a fit on few pairs, and the
    closing line."""
    from recnet_cli.train.calibration import rounded_scores

    if as_json:
        report = {"model": loaded.reference, "output": str(output), "about": calibration.about}
        typer.echo(json.dumps(report | {"held_out": rounded_scores(scores)}, indent=2))
    elif not quiet:
        console.print_held_out_scores(scores)
    if not quiet and (note := data.few_pairs_note()):
        console.notice(note)
    if not (quiet or as_json):
        console.done("calibrated", f": {output} (fitted on {calibration.about})")
