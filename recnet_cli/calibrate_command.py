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


def refuse_calibrating_in_place(output: Path, model_path: Path, source: str) -> None:
    """Ends the command where -o would write over the model being calibrated, or its cards: not even with
    --overwrite (a model and its calibration come apart)."""
    from recnet_cli.files import real_path
    from recnet_cli.weights import model_files

    being_calibrated = set(map(real_path, model_files(model_path)))
    if any(real_path(path) in being_calibrated for path in model_files(output)):
        raise fail(f"-o {output}: that is the model being calibrated ({source}); write to a new file")


def refuse_calibrating_a_local_model_in_place(output: Path, model: str | None) -> None:
    """``refuse_calibrating_in_place`` before anything else is asked, where ``--model`` is on this machine (a
    file, a bundled model, the default): -o naming it said "exists (use --overwrite)", which then was
    refused. A Hub model is asked once it is fetched."""
    from recnet_cli.weights import WeightsError
    from recnet_cli.weights.hub import parse_hub_ref
    from recnet_cli.weights.locate import resolve

    if model is not None and parse_hub_ref(model) is not None and not Path(model).exists():
        return
    try:
        location = resolve(model)
    except WeightsError:  # said as the model is loaded
        return
    refuse_calibrating_in_place(output, location.path, location.source)


def fitted_strength(
    corrector: Corrector, data: CalibrationData, source: str, size: int, quiet: bool
) -> tuple[StrengthCalibration, dict[str, GroupScore]]:
    """The calibration fitted on ``data`` and its held-out scores, with a progress bar of the pairs; a
    photo the model ``source`` cannot correct is named with it."""
    from recnet_cli.engine import PhotoOutOfMemoryError, PhotoRunError
    from recnet_cli.train.calibration import calibrate

    with console.counting(data.pairs, "Calibrating", "pair", quiet) as count_one:
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
        report = {"model": loaded.reference, "output": str(output), "interrupted": False}
        typer.echo(
            json.dumps(report | {"about": calibration.about, "held_out": rounded_scores(scores)}, indent=2)
        )
    elif not quiet:
        console.print_held_out_scores(scores)
    if not quiet and (note := data.few_pairs_note()):
        console.notice(note)
    if not (quiet or as_json):
        console.done("calibrated", f": {output} (fitted on {calibration.about})")
