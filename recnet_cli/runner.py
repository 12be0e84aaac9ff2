"""What the commands that run the model share: loading it onto each device, and for correct and mask,
naming the outputs, running the batch under a progress bar and summing it up. A problem ends the
command with a one-line error (``console.fail``)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from recnet_cli import console
from recnet_cli.batch import (
    Lane,
    Outcome,
    Summary,
    gpu_lane_depth,
    interrupted_summary,
    plan_outcome,
    plan_outcomes,
    run_jobs,
)
from recnet_cli.console import fail
from recnet_cli.entry import INTERRUPTED, ignore_further_stops, stopped_unfinished
from recnet_cli.files import broken_link
from recnet_cli.imaging import (
    FORMAT_NAMES,
    QUALITY_FORMATS,
    Photo,
    PhotoFileError,
    check_output_size,
    check_pixels_fit,
    faults_fail_alone,
    format_for,
    hdr_curve,
    header_megapixels,
    header_size,
    read_photo,
)
from recnet_cli.inputs import Source, find_sources, left_out_note, take_shard
from recnet_cli.options import (
    normalise_extension,
    parse_tile,
    refuse_conflicting_format,
    refuse_empty_suffix,
    refuse_unwritable_output,
    shard_part,
)
from recnet_cli.outputs import (
    Job,
    earlier_outputs,
    misnamed_output_folder,
    output_taken_as_folder,
    passed_over_line,
    plan_jobs,
)
from recnet_cli.wording import counted, in_words, listed

# PyTorch takes 1.5 s to import on 2 CPU cores: imported where a model is loaded, not here (see cli.py).
if TYPE_CHECKING:
    import numpy as np
    import torch

    from recnet_cli.engine import Corrector, PendingCorrection
    from recnet_cli.tiling import Progress
    from recnet_cli.viz.report import ReportBuilder
    from recnet_cli.weights import LoadedModel


def open_models(
    choice: ModelChoice, *, quiet: bool, one_device: bool = False
) -> tuple[list[Corrector], LoadedModel]:
    """Loads the chosen model onto each chosen device (``one_device``: refuses a list), with its strength
    calibration for a strength of auto, or exits with a one-line error."""
    model, device, precision, strength = choice.model, choice.device, choice.precision, choice.strength
    if one_device:
        refuse_device_list(device)
    tile_size = parse_tile(choice.tile)
    with console.status("Loading model…", quiet):
        from recnet_cli.devices import DeviceError, unused_gpu
        from recnet_cli.engine import correctors_for
        from recnet_cli.weights import WeightsError, load_model, strength_calibration

        try:
            devices, dtypes = chosen_devices(device, precision)
            loaded = load_model(model)
            calibration = strength_calibration(loaded) if strength == "auto" else None
            correctors = correctors_for(
                loaded.model,
                devices,
                dtypes,
                tile=tile_size,
                strength=strength,
                compiled=choice.compiled,
                fused=choice.fused,
                calibration=calibration,
                keep_colour=choice.keep_colour,
            )
        except (DeviceError, WeightsError) as exc:
            raise fail(str(exc)) from None
    if strength == "auto" and calibration is None and not quiet:
        console.notice(
            f"{loaded.source} has no strength calibration: photos get the full correction "
            "(recnet calibrate fits one; --strength sets one amount for all)"
        )
    if device == "auto" and not quiet and (unused := unused_gpu()):
        console.notice(unused)
    if precision == "bf16" and any(c.device.type == "cpu" for c in correctors) and not quiet:
        console.notice(
            "bf16 on the CPU runs far slower than fp32 where the processor has no bf16 instructions "
            "(1 MP: 87 s against 2.6 s on a 2-core AMD EPYC); half precision pays on GPUs"
        )
    return correctors, loaded


def chosen_devices(device: str, precision: str) -> tuple[list[torch.device], list[torch.dtype]]:
    """The devices ``--device`` names, and the compute precision on each; raises a DeviceError."""
    from recnet_cli.devices import pick_devices, pick_dtype

    devices = pick_devices(device)
    return devices, [pick_dtype(precision, torch_device) for torch_device in devices]


@dataclass(frozen=True)
class ModelChoice:
    """The model options of a command, as typed: what ``open_models`` loads."""

    model: str | None
    device: str
    precision: str
    tile: str
    strength: float | str = 1.0
    fused: bool = False
    keep_colour: bool = True  # the photo's colours, as the commands default to
    compiled: bool = False  # the whole-image path through torch.compile (bench --compile)

    def refuse_setup_problems(self) -> None:
        """``refuse_setup_problems`` of these options."""
        refuse_setup_problems(self.model, self.device, self.precision, self.fused)


@dataclass(frozen=True)
class BatchMode:
    """How a batch command (correct, mask) runs, as its options say."""

    command: str
    overwrite: bool
    skip_existing: bool
    quiet: bool
    as_json: bool
    dry_run: bool


def open_models_if_needed(
    mode: BatchMode,
    jobs: list[Job],
    found: Summary,
    choice: ModelChoice,
    about: dict,
    report: tuple[Path, Path] | None = None,
    always: bool = False,
) -> tuple[list[Corrector], LoadedModel | None]:
    """``open_models`` for a batch, under ``summary_if_stopped``; but where every job would be skipped or
    refused before its photo is read (``plan_outcome``: a --skip-existing run again), none is loaded, nor
    fetched from the Hub, unless ``always``: the options are only checked, as --dry-run checks them. With
    --dry-run, the options are checked and the plan shown (``show_plan``, which exits)."""
    if mode.dry_run:
        choice.refuse_setup_problems()
        show_plan(mode, jobs, found, about, report)
    if not always and not any(
        plan_outcome(job, mode.overwrite, mode.skip_existing).status == "planned" for job in jobs
    ):
        choice.refuse_setup_problems()
        return [], None
    with summary_if_stopped(mode.command, jobs, found, mode.quiet, mode.as_json, about):
        return open_models(choice, quiet=mode.quiet)


def refuse_setup_problems(model: str | None, device: str, precision: str, fused: bool = False) -> None:
    """--dry-run: ends the command with the error a run would stop on at once, for a --device that is not
    there, a --precision or --fused it cannot take, or a --model given that names no model; no model is
    loaded, and PyTorch is imported only for options other than the default device and precision."""
    from recnet_cli.weights.locate import reference_problem

    if device not in ("auto", "cpu") or precision not in ("auto", "fp32") or fused:
        from recnet_cli.devices import DeviceError
        from recnet_cli.engine import fused_unavailable

        try:
            devices, _ = chosen_devices(device, precision)
        except DeviceError as exc:
            raise fail(str(exc)) from None
        if problem := next(filter(None, (fused_unavailable(each) for each in devices if fused)), None):
            raise fail(problem)
    if problem := model and reference_problem(model):
        raise fail(problem)


def refuse_device_list(device: str) -> None:
    """Ends a command that runs on one device when ``--device`` lists several."""
    if "," in device:
        raise fail(f"--device {device}: this command runs on one device (lists are for correct and mask)")


def device_names(correctors: list[Corrector]) -> str:
    return ",".join(str(corrector.device) for corrector in correctors)


def collect_jobs(
    mode: BatchMode,
    inputs: list[str],
    output: str | None,
    *,
    recursive: bool,
    suffix: str,
    folder_suffix: str,
    ext: str | None,
    shard: str | None,
    companions: Callable[[Path], tuple[Path, ...]],
    about: dict,
    default_ext: str | None = None,
) -> tuple[list[Job], Summary, list[Job]]:
    """Finds the inputs, passes over recnet's own earlier outputs among them (see ``earlier_outputs``), names
    every output (in the format of --ext, else ``default_ext``, else the input's; ``output``: -o as typed,
    with the trailing slash that makes it a folder; ``suffix`` beside its photo, ``folder_suffix`` in another
    folder) and takes this machine's shard. Returns the shard's jobs, the inputs that gave none (``missing``,
    ``passed_over``, ``left_out``) and the jobs of the whole batch, every shard's. When no input gives an
    image, says why (and prints the JSON summary for --json, with ``about``, and with --dry-run the plan's
    fields: see ``json_summary``) and exits before loading a model: 1, or 0 when every image found was passed
    over."""
    quiet = mode.quiet
    # A stop while the inputs are listed (seconds for a large folder on a network drive) is said as one
    # while the model loads: with --json, the summary, of no photo yet
    planned = {**plan_fields(0), **about} if mode.dry_run else about  # --json's for a dry run, stopped too
    with summary_if_stopped(mode.command, [], Summary(), quiet, mode.as_json, planned):
        refuse_unwritable_output(output)
        refuse_empty_suffix(suffix, output, ext or default_ext)
        extension = normalise_extension(ext)
        refuse_conflicting_format(output, extension)
        left_out: list[Path] = []
        sources, missing = find_sources(inputs, recursive, left_out)
        if left_out and not quiet:
            console.notice(left_out_note(left_out))
        passed_over = earlier_outputs(sources, output, suffix)
        earlier = set(passed_over)
        sources = [source for source in sources if source not in earlier]
        misnamed = misnamed_output_folder(sources, output, len(missing))
        if misnamed:
            raise fail(misnamed)
        if not quiet:
            notice_sources(sources, passed_over, output)
        found = Summary(
            missing=missing, passed_over=[source.path for source in passed_over], left_out=left_out
        )
        if not sources:
            for unmatched in missing:
                console.error(str(unmatched))
            if mode.as_json:
                ignore_further_stops()  # all there is to say: a stop must not cut it short
                typer.echo(json_summary(found, planned))
            raise typer.Exit(1 if missing else 0)
        extension = extension or default_ext
        # Named before sharding, so that two inputs claiming one output clash in every shard, as in one run.
        dead_links = [Path(unmatched.input) for unmatched in missing if broken_link(unmatched.input)]
        batch = plan_jobs(
            sources,
            output,
            suffix=suffix,
            folder_suffix=folder_suffix,
            extension=extension,
            companions=companions,
            dead_links=dead_links,
        )
        # Split by the outputs' names: the same however the inputs are named or ordered on each machine
        jobs = (
            batch
            if shard is None
            else take_shard(batch, shard_part(shard), key=lambda job: job.target.as_posix())
        )
        if shard is not None and not jobs and not quiet:  # fewer images than K: one each to shards 1 to K - 1
            part, total = shard_part(shard)
            count = len(batch)
            taken = "image found goes to shard 1" if count == 1 else f"images found go to shards 1 to {count}"
            console.notice(f"shard {part}/{total} has nothing to do: the {count} {taken}")
        return jobs, found, batch


def notice_sources(sources: list[Source], passed_over: list[Source], output: str | None) -> None:
    """Notes on the inputs found: an -o taken as a folder, photos found under several names, and recnet's
    earlier outputs passed over."""
    if as_folder := output_taken_as_folder(sources, output):
        console.notice(as_folder)
    if aliases := [(alias, source.path) for source in sources for alias in source.aliases]:
        console.notice_aliases(aliases)
    if passed_over:
        line = passed_over_line([source.path for source in passed_over], "mark, name or folder")
        console.notice(f"{line}; name a file on its own to include it")


def notice_quality_unused(quality: int | None, jobs: list[Job], quiet: bool) -> None:
    """Says that --quality does nothing when every output is in a lossless format (PNG, TIFF, BMP)."""
    formats = {format_for(job.target) for job in jobs if job.problem is None}  # others: no format to write
    if quality is not None and formats and not formats & QUALITY_FORMATS and not quiet:
        lossless = in_words(sorted(FORMAT_NAMES[name][0] for name in formats), "and")
        console.notice(f"--quality sets JPEG, WebP, AVIF and HEIF outputs: {lossless} outputs are lossless")


def notice_unattributable(overwrite: bool, paths: list[Path], quiet: bool) -> None:
    """Says which existing outputs (``unattributable``) --overwrite replaces without knowing whether recnet
    wrote them, before it does: there it cannot keep a photo of the user's that has an output's name."""
    if overwrite and paths and not quiet:
        where = (
            "their file system keeps no marks (FAT, exFAT, some network shares)"
            if hasattr(os, "getxattr")  # else written_by_recnet cannot ask any file system
            else "this system gives recnet no way to mark files"
        )
        it = "it" if len(paths) == 1 else "them"
        outputs = f"{counted(len(paths), 'existing output')} ({listed(list(map(str, paths)))})"
        console.notice(
            f"--overwrite replaces {outputs} without knowing whether recnet wrote {it}: {where}, so photos of"
            " yours with an output's name are replaced too"
        )


def notice_suffix_unused(typed: bool, jobs: list[Job], quiet: bool) -> None:
    """Says that a typed --suffix names nothing where -o names the output file itself."""
    if typed and any(job.named for job in jobs) and not quiet:
        console.notice("--suffix is not used: -o names the output file")


def report_fields(report: tuple[Path, Path]) -> dict[str, str]:
    """A --report run's page and previews' folder, as --json gives them."""
    page, previews = report
    return {"page": str(page), "previews": str(previews)}


def write_report(
    builder: ReportBuilder,
    summary: Summary,
    about: dict,
    corrector: Corrector,
    model: str,
    shard: str | None,
    planned: int,
    quiet: bool,
) -> bool:
    """Writes the --report page of a batch whose photos are written, naming the ``model`` as people read it
    and the strength the ``corrector`` gave (the full correction for auto without a calibration), says
    where, and adds it to ``about`` (what --json says); whether it was written. Why not is said in one line;
    a stop (waiting for another shard's page, or reading the cards) marks the batch interrupted, ``planned``
    its count of photos."""
    from recnet_cli.viz.report import ReportedRun, report_files

    try:
        run = ReportedRun(model, about["device"], corrector.strength_setting, corrector.keep_colour, shard)
        path = builder.write(summary, run)
    except PhotoFileError as exc:
        console.error(str(exc))
        return False
    except KeyboardInterrupt:
        ignore_further_stops()
        summary.interrupted = True
        console.notice(
            f"interrupted: {summary.count('done')} of {planned} written, but not the report; "
            "run the same command with --skip-existing to write it"
        )
        return False
    about["report"] = report_fields(report_files(builder.folder))
    if not quiet:
        console.notice(f"report: {path}")
    return True


def plan_fields(planned: int) -> dict:
    """What the --json of a --dry-run says first: that it is one, and how many photos it would do."""
    return {"dry_run": True, "planned": planned}


def show_plan(
    mode: BatchMode, jobs: list[Job], found: Summary, about: dict, report: tuple[Path, Path] | None = None
) -> NoReturn:
    """--dry-run: says what the run would do with each job, and where it would write the ``report`` (its
    page and previews' folder, with --report), then exits (1 if any would fail)."""
    summary = plan_outcomes(jobs, mode.overwrite, mode.skip_existing)
    summary.take_inputs_without_jobs(found)
    console.print_plan(summary, mode.command, mode.quiet, report, on_stdout=not mode.as_json)
    if mode.as_json:
        planned = {**plan_fields(summary.count("planned")), **about}
        if report is not None:
            planned["report"] = report_fields(report)
        typer.echo(json_summary(summary, planned))
    raise typer.Exit(1 if summary.failed else 0)


def run_batch(
    mode: BatchMode,
    jobs: list[Job],
    found: Summary,
    correctors: list[Corrector],
    compute: Callable[[Corrector, Photo, Progress], Any],
    write: Callable[[Job, Photo, Any], float],
    label: str,
) -> Summary:
    """Reads, computes (one lane per device) and writes every job under a progress bar (``label``), which
    each photo moves as its tiles finish; ``found`` holds the inputs that gave no job (``collect_jobs``)."""
    overwrite, skip_existing, quiet = mode.overwrite, mode.skip_existing, mode.quiet
    handled: tuple[type[Exception], ...] = (PhotoFileError,)
    if correctors:  # none where no photo is to be run (``open_models_if_needed``), nor PyTorch imported
        from recnet_cli.engine import PhotoRunError

        handled = (PhotoFileError, PhotoRunError)
    any_gpu = any(corrector.device.type == "cuda" for corrector in correctors)
    # The bar counts megapixels, for an ETA that holds when sizes vary, and GPU lanes read ahead as far as
    # the largest photo allows: each header, read before starting. A CPU lane reads one photo ahead: its
    # compute is far slower than reading, and photos it took early would keep the GPUs waiting at the end.
    # Every lane, a CPU lane too, takes its share of the cores and memory.
    sizes_needed = any_gpu or console.shows_progress(quiet)
    expected = {job: header_megapixels(job.source) for job in jobs} if sizes_needed else {}
    gpu_depth = gpu_lane_depth(len(correctors), max(expected.values(), default=0.0)) if any_gpu else 1
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    # Ctrl-C, and a scheduler's stop (the program, ``entry.run``, takes SIGTERM as Ctrl-C), end the batch:
    # the photos being written are finished, no temporary file is left, and the notice says how to go on.
    try:
        with console.BatchProgress(len(jobs), expected, label, quiet) as progress:

            def lane(corrector: Corrector) -> Lane:
                return Lane(
                    read=lambda job: read_job(job, quiet, corrector),
                    compute=lambda job, photo: compute(
                        corrector, photo, partial(progress.photo_progress, job, photo.megapixels)
                    ),
                    write=write,
                    depth=gpu_depth if corrector.device.type == "cuda" else 1,
                )

            def record(outcome: Outcome) -> None:
                outcomes.append(outcome)
                progress.update(outcome)

            summary = run_jobs(
                jobs,
                [lane(corrector) for corrector in correctors],
                overwrite=overwrite,
                skip_existing=skip_existing,
                on_outcome=record,
                handled=handled,
            )
    except KeyboardInterrupt:
        ignore_further_stops()  # a second Ctrl-C or SIGTERM must not cut the summary short
        summary = interrupted_summary(jobs, outcomes, time.perf_counter() - started, overwrite)
        console.notice(
            f"interrupted: {summary.count('done')} of {len(jobs)} written, none half-written; "
            f"{summary.how_to_go_on()}"
        )
    summary.take_inputs_without_jobs(found)
    return summary


@contextlib.contextmanager
def summary_if_stopped(
    command: str, jobs: list[Job], found: Summary, quiet: bool, as_json: bool, about: dict
) -> Iterator[None]:
    """A stop (Ctrl-C, SIGTERM) before the batch starts, as the model loads, ends ``command`` as one in the
    batch does: its note, then with ``as_json`` the summary, with every photo not run (exit 130)."""
    try:
        yield
    except KeyboardInterrupt:
        ignore_further_stops()
        console.notice(stopped_unfinished(command))
        summary = interrupted_summary(jobs, [], 0.0)
        summary.take_inputs_without_jobs(found)
        finish(summary, command, quiet, as_json, about)


def read_input(path: Path, quiet: bool) -> Photo:
    """``read_photo``, with a notice when the file holds more pictures than the one recnet reads, metadata
    too damaged to copy, or CMYK colours converted without their profile; a fault of recnet's in reading it
    is said as a PhotoFileError (``faults_fail_alone``)."""
    with faults_fail_alone(path):
        photo = read_photo(path)
        if not quiet:
            for notice in photo.reading_notices():
                console.notice(f"{path}: {notice}")
    return photo


def read_with_reference(image: Path, reference: Path | None, quiet: bool) -> tuple[Photo, np.ndarray | None]:
    """explain's photo, and its reference's pixels; one that cannot be read, or a reference of another size
    than the photo, ends the command (exit 1) before a model loads for nothing."""
    try:
        photo = read_input(image, quiet)
        truth = read_input(reference, quiet).pixels if reference is not None else None
    except PhotoFileError as exc:
        raise fail(str(exc), 1) from None
    from recnet_cli.viz.features import reference_size_problem

    if truth is not None and (problem := reference_size_problem(photo.pixels.shape, truth.shape)):
        raise fail(f"{reference}: {problem}", 1)
    return photo, truth


def read_job(job: Job, quiet: bool, corrector: Corrector) -> Photo:
    """The job's photo, once the ``corrector`` is known to have room for one of the size its header says
    (before minutes of decoding one too large), and its output's format to hold a picture that size (before
    the model runs for minutes on a panorama too wide for JPEG)."""
    with faults_fail_alone(job.source):
        if size := header_size(job.source):
            check_pixels_fit(job.source, *size)  # the pixels alone: no folder for the maps would help
    if size:
        corrector.check_room(*size)  # the device's: a GPU's failure here stops the batch
    photo = read_input(job.source, quiet)
    check_output_size(job.target, photo)
    return photo


def notice_run(source: Path, photo: Photo, pending: PendingCorrection) -> None:
    """Notes on how the model ran on ``photo``: as SDR on an HDR photo (PQ or HLG), and with its feature
    maps on disk where memory could not hold them."""
    if curve := hdr_curve(photo):
        console.notice(
            f"{source}: an HDR photo ({curve} curve); the model, trained on SDR photos, sees it as if it "
            "were SDR, so check the result"
        )
    if pending.spilled is not None:
        console.notice(
            f"{source}: too large for the memory available, so some of its feature maps were kept in files "
            f"in {pending.spilled.folder} while it ran (slower)"
        )


def finish(
    summary: Summary,
    verb: str,
    quiet: bool,
    as_json: bool,
    extra: dict,
    strengths: dict[str, float] | None = None,
    failed: bool = False,
) -> NoReturn:
    """Prints the summary (and JSON: ``json_summary``), then exits 1 if any file (or, with ``failed``,
    something else the command wrote) failed, or 130 if the batch was interrupted (whose notice
    ``run_batch`` printed)."""
    ignore_further_stops()  # the batch is over: a stop must not cut the JSON a slow reader takes short
    if not summary.interrupted:
        console.print_summary(summary, verb, quiet)
    if as_json:
        typer.echo(json_summary(summary, extra, strengths))
    raise typer.Exit(INTERRUPTED if summary.interrupted else 1 if summary.failed or failed else 0)


def json_summary(summary: Summary, about: dict, strengths: Mapping[str, float] | None = None) -> str:
    """A batch's --json record: ``about`` the run (the model, the device; for ``correct`` the strength),
    the counts and each file. Where ``about`` has a strength, so has each file: its own from ``strengths``,
    null for a photo not corrected (failed, skipped, planned by --dry-run)."""
    record = {**about, **summary.as_dict()}
    if "strength" in about:
        for entry in record["files"]:
            entry["strength"] = (strengths or {}).get(entry["input"])
    return json.dumps(record, indent=2)
