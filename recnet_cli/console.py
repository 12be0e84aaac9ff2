"""What the commands show a person: progress, one-line errors and summaries on stderr (``err``); plans,
tables and results on stdout (``out``)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console, Group
from rich.markup import escape
from rich.padding import Padding
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from recnet_cli.batch import Outcome, Summary
from recnet_cli.entry import INTERRUPTED, ignore_further_stops, stopped_unfinished
from recnet_cli.outputs import Job
from recnet_cli.wording import counted, duration, listed, plural, visible

if TYPE_CHECKING:  # these need PyTorch, which the commands import only when they run
    from recnet_cli.evaluate import EvalReport
    from recnet_cli.train.calibration import GroupScore
    from recnet_cli.train.loop import Progress as TrainingReport
    from recnet_cli.weights import ModelEntry


class WholeWrites(io.RawIOBase):
    """A file descriptor that takes each write whole or raises: the system may take part of one (4 KB of
    8 to a nearly full disk), and Python's buffered writer then drops the rest without an error. After a
    failure it takes nothing more: the buffer would send its part already written again, as the stream is
    flushed on closing."""

    def __init__(self, descriptor: int) -> None:
        super().__init__()
        self.descriptor = descriptor
        self.failed = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.descriptor

    def isatty(self) -> bool:
        return os.isatty(self.descriptor)

    def write(self, data: bytes) -> int:  # type: ignore[override]
        remaining = memoryview(data).cast("B")
        try:
            while remaining and not self.failed:
                remaining = remaining[os.write(self.descriptor, remaining) :]
        except OSError:
            self.failed = True
            raise
        return len(data)


def write_stdout_whole() -> None:
    """Makes ``sys.stdout`` write all it is given or raise (see ``WholeWrites``) where it is a file or a
    pipe, so that a --json summary cut short by a full disk is an error, not a truncated file and exit 0;
    a terminal keeps Python's stream (on Windows, the console's own). A character its encoding lacks (a
    photo named 東京.jpg, written to a file in Windows' cp1252) is written as an escape, not a traceback."""
    stream = sys.stdout
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture)
        return
    errors = getattr(stream, "errors", None)
    errors = "backslashreplace" if errors in (None, "strict") else errors
    if stream.isatty():
        if isinstance(stream, io.TextIOWrapper):  # not a stand-in of another program's making
            stream.reconfigure(errors=errors)
        return
    stream.flush()
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(WholeWrites(descriptor)),
        encoding=stream.encoding,
        errors=errors,
        line_buffering=stream.line_buffering,
        write_through=stream.write_through,
    )


class GoingOnConsole(Console):
    """Rich's console, but one whose reader has gone (``recnet train ... 2>&1 | head -1``) ends nothing: what
    it says from then on goes nowhere, and the batch or the training run goes on. (Rich ends the program,
    exit 1: a training run lost its steps since its last checkpoint, a batch its other photos.)"""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        try:
            stream = self.file.fileno()
        except (AttributeError, OSError, ValueError):  # a stream with no descriptor
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream)  # so that Python's last flush of it raises nothing either
        finally:
            os.close(devnull)


# soft_wrap: a line piped to a log or another program stays one line, whatever its length (Rich would
# otherwise wrap it at 80 columns when the stream is not a terminal).
err = GoingOnConsole(stderr=True, highlight=False, soft_wrap=True)
out = GoingOnConsole(highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """One line, naming the file and the reason; never a traceback. (Messages are plain text: a file
    named ``IMG [best].jpg`` must not be read as Rich markup.)"""
    err.print(Text.assemble(("error:", "bold red"), " ", visible(message)))


def fail(message: str, code: int = 2) -> typer.Exit:
    """Prints a one-line error and returns the exit to raise."""
    error(message)
    return typer.Exit(code)


def notice(message: str) -> None:
    err.print(Text.assemble(("note:", "yellow"), " ", visible(message)))


@contextlib.contextmanager
def reported_if_stopped(command: str, about: dict, as_json: bool, unfinished: str = "") -> Iterator[None]:
    """A stop (Ctrl-C, SIGTERM) in the block ends ``command`` with its note (and ``unfinished``: what was
    left undone) and, with ``as_json``, ``about`` (its model as given or loaded, and so on) marked
    interrupted; exit 130, as a stop ends ``eval``."""
    try:
        yield
    except KeyboardInterrupt:
        ignore_further_stops()
        notice(stopped_unfinished(command) + unfinished)
        if as_json:
            typer.echo(json.dumps(about | {"interrupted": True}, indent=2))
        raise typer.Exit(INTERRUPTED) from None


def done(headline: str, details: str) -> None:
    """A finished run's line: ``headline`` in green, then ``details``, both plain text."""
    err.print(Text.assemble((headline, "green"), visible(details)))


def notice_aliases(pairs: list[tuple[Path, Path]]) -> None:
    """Says which inputs were other names (links) for files given too, each corrected once."""
    if len(pairs) == 1:
        ((alias, path),) = pairs
        notice(f"{alias}: the same file as {path} (by a link), corrected once, as {path}")
        return
    shown = listed([f"{alias} is {path}" for alias, path in pairs])
    notice(
        f"{len(pairs)} inputs are the same files as others given (by links), corrected once under the other "
        f"names: {shown}"
    )


def strength_range(strengths: list[float]) -> str:
    """'0.31' for one photo; '0.14 to 0.99, mean 0.55' for several; '0.89 for each of the 3 photos' for
    several that got one share."""
    if len(strengths) == 1:
        return f"{strengths[0]:.2f}"
    if min(strengths) == max(strengths):
        return f"{strengths[0]:.2f} for each of the {len(strengths)} photos"
    # fmean adds exactly, so that a mean on a rounding tie prints the same on every Python: sum() adds
    # naively before 3.12, and the examples' 0.13, 0.89, 0.99 and 0.57 made mean 0.64 on 3.11, 0.65 on 3.13
    return f"{min(strengths):.2f} to {max(strengths):.2f}, mean {statistics.fmean(strengths):.2f}"


def notice_stopping(signal_name: str) -> None:
    """What a training run says on its first Ctrl-C or SIGTERM."""
    again = "Ctrl-C again stops at once" if signal_name == "Ctrl-C" else "a second signal stops at once"
    notice(f"{signal_name}: stopping after this step, with a checkpoint ({again})")


# Where stderr is no terminal, a counting bar or training writes a line as the first item (a pair, a photo,
# a step) ends this many seconds or more after its last line
LOG_INTERVAL = 60.0


def shows_progress(quiet: bool) -> bool:
    """Whether progress bars and spinners are drawn: not with --quiet, nor where stderr is not a terminal
    that can redraw (TERM=dumb cannot), so each photo gets a line instead; not in a log file with
    FORCE_COLOR either, which asks for colours, not redrawn bars. Rich's TTY_INTERACTIVE=0 or 1 decides."""
    if quiet:
        return False
    if os.environ.get("TTY_INTERACTIVE") in ("0", "1"):
        return err.is_interactive
    return err.is_interactive and err.file.isatty()


class Eta(ProgressColumn):
    """``ETA 0:01:23``, and ``ETA -:--:--`` until there is one (also before the total is known). Where Rich
    has no recent speed (none measured yet, or its samples cleared when a skipped photo changed the total),
    the run's average pace so far stands in."""

    max_refresh = 0.5

    def render(self, task: Task) -> Text:
        remaining = task.time_remaining
        if remaining is None and task.total and task.completed and task.elapsed:
            remaining = (task.total - task.completed) * task.elapsed / task.completed
        if task.total is None or remaining is None:
            return Text("ETA -:--:--", style="progress.remaining")
        minutes, seconds = divmod(int(remaining), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"ETA {hours:d}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


def progress_bar(*counts: ProgressColumn, quiet: bool, bar: BarColumn | None = None) -> Progress:
    """A bar (``bar``, or one 40 wide) with ``counts`` beside it, then the elapsed time and an ETA (on
    stderr)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        bar or BarColumn(),
        *counts,
        TimeElapsedColumn(),
        Eta(),
        console=err,
        disable=not shows_progress(quiet),
    )


class MegapixelRate(ProgressColumn):
    """Megapixels per second over the batch so far."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:5.2f} MP/s", style="cyan")


class BatchProgress:
    """A progress bar over a batch's megapixels (images done, MP/s, ETA) that also prints each failure.
    Where stderr is no terminal (a log file, a batch job), a line per corrected photo stands in for the bar.

    The bar counts megapixels, not images, so a batch that mixes small and large photos gets a true ETA.
    ``expected`` holds each photo's size as its file header gives it; a photo that turns out another
    size, or is skipped or fails, corrects the total when its outcome arrives. Photos being corrected
    move the bar as their tiles finish (``photo_progress``, from any thread)."""

    def __init__(self, images: int, expected: Mapping[Job, float], label: str, quiet: bool = False) -> None:
        self.progress = progress_bar(
            TextColumn("{task.fields[done]}/{task.fields[images]} images"), MegapixelRate(), quiet=quiet
        )
        self.expected = dict(expected)
        self.task = self.progress.add_task(label, total=sum(self.expected.values()), done=0, images=images)
        self.lock = threading.Lock()
        self.moved: dict[Job, float] = {}  # megapixels the photos in progress have moved the bar
        self.log_each = not quiet and not shows_progress(quiet)

    def __enter__(self) -> BatchProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def photo_progress(self, job: Job, megapixels: float, fraction: float) -> None:
        """Moves the bar to ``fraction`` of the way through ``job``'s photo of ``megapixels``."""
        with self.lock:
            moved = fraction * megapixels
            self.progress.update(self.task, advance=moved - self.moved.get(job, 0.0))
            self.moved[job] = moved

    def update(self, outcome: Outcome) -> None:
        """Counts a finished job: a done photo fills its share of the bar; any other keeps what it moved
        and leaves the total. The last one fills the bar, whatever the sums of megapixels round to."""
        with self.lock:
            task = self.progress.tasks[0]
            moved = self.moved.pop(outcome.job, 0.0)
            counted = outcome.megapixels if outcome.status == "done" else moved
            total = task.total + counted - self.expected.get(outcome.job, 0.0)
            done = task.fields["done"] + 1
            last = done == task.fields["images"]
            completed = total if last else task.completed + counted - moved
            self.progress.update(self.task, completed=completed, total=total, done=done)
            count = f"{task.fields['done']}/{task.fields['images']}"
        if outcome.status == "failed":
            error(f"{outcome.job.source}: {outcome.reason}")
        elif self.log_each and outcome.status == "done":
            line = f"{count} {outcome.job.source} -> {outcome.job.target} ({outcome.seconds:.1f} s)"
            err.print(visible(line), markup=False)


@contextlib.contextmanager
def counting(total: int, label: str, noun: str, quiet: bool = False) -> Iterator[Callable[[], None]]:
    """A plain bar over ``total`` items (count, elapsed time, ETA); yields the function that counts one.
    Where stderr is no terminal (a log file), a line saying how many there are, then one as an item ends
    ``LOG_INTERVAL`` seconds or more after the last, stand in: a job's log shows it going on."""
    progress = progress_bar(MofNCompleteColumn(), TextColumn(plural(noun, 2)), quiet=quiet)
    task = progress.add_task(label, total=total)
    logged = not quiet and progress.disable
    if logged:
        err.print(visible(f"{label} {counted(total, noun)}"), markup=False)
    started = last_line = time.monotonic()

    def count_one() -> None:
        nonlocal last_line
        progress.advance(task)
        now = time.monotonic()
        if logged and now - last_line >= LOG_INTERVAL:
            last_line = now
            done = int(progress.tasks[0].completed)
            line = f"{label}: {done}/{counted(total, noun)} in {duration(now - started)}"
            err.print(visible(line), markup=False)

    with progress:
        yield count_one


def print_summary(summary: Summary, verb: str, quiet: bool = False) -> None:
    for unmatched in summary.missing:
        error(str(unmatched))
    if quiet and not summary.failed:
        return
    megapixels = sum(o.megapixels for o in summary.outcomes)
    rate = f", {megapixels / summary.seconds:.2f} MP/s" if summary.seconds > 0 and megapixels else ""
    style = "red" if summary.failed else "green"
    not_run = [o for o in summary.outcomes if o.status == "not run"]
    counts = f"skipped {summary.count('skipped')}, failed {summary.failed}"
    counts += f", not run {len(not_run)}" if not_run else ""
    err.print(f"[{style}]{verb} {summary.count('done')}[/], {counts} in {summary.seconds:.1f} s{rate}")
    if not_run:
        error(f"{not_run[0].reason}; once that is fixed, {summary.how_to_go_on()}")
    notice_lacking([o for o in summary.outcomes if o.lacking])


def notice_lacking(skipped: list[Outcome]) -> None:
    """Says that photos were skipped whose kept outputs lack pictures this run asks for (--save-mask given
    only on a later run), which --skip-existing does not add."""
    if skipped:
        photos = "1 photo was" if len(skipped) == 1 else f"{len(skipped)} photos were"
        notice(
            f"{photos} skipped whose output was written without the pictures asked for now (such as "
            f"{skipped[0].lacking[0]}); --overwrite writes them again, with those pictures"
        )


def print_plan(
    summary: Summary, verb: str, quiet: bool, report: tuple[Path, Path] | None = None, on_stdout: bool = True
) -> None:
    """A dry run: each input and what it would write on stdout, then the ``report`` page and previews'
    folder (with --report), problems on stderr, then the counts (with ``quiet``, where one would fail).
    Not ``on_stdout`` (--json, which says it all there), only what goes to stderr."""
    for outcome in summary.outcomes:
        if outcome.status == "failed":
            error(f"{outcome.job.source}: {outcome.reason}")
            continue
        if not on_stdout:
            continue
        written = ", ".join(str(path) for path in outcome.job.outputs)
        # why it is skipped, or which files there it replaces
        reason = f"skipped: {outcome.reason}" if outcome.status == "skipped" else outcome.reason
        said = f" ({reason})" if reason else ""
        out.print(visible(f"{outcome.job.source} -> {written}{said}"), markup=False)
    if report is not None and on_stdout:
        page, previews = report
        out.print(visible(f"report -> {page}, {previews}{os.sep}"), markup=False)
    for unmatched in summary.missing:
        error(str(unmatched))
    if quiet and not summary.failed:
        return
    err.print(
        f"dry run: would {verb} {summary.count('planned')}, skip {summary.count('skipped')}, "
        f"fail {summary.failed}; nothing was read or written",
        markup=False,
    )


@contextlib.contextmanager
def status(message: str, quiet: bool = False) -> Iterator[None]:
    """A spinner while something slow happens (loading a model), silent when not a terminal."""
    if not shows_progress(quiet):
        yield
        return
    with err.status(message):
        yield


# The training bar's columns but its bar, status and times: "Training", the steps (the status leaves room
# for them) and the spaces between the six columns
_TRAINING_BAR_FIXED = len("Training") + 5
_LEAST_BAR, _WIDEST_BAR = 10, 40


class TrainingProgress:
    """A progress bar over training steps: loss, images/s, the last validation scores, time and ETA. On a
    narrow terminal the bar narrows, and the status says less, so that the line keeps its steps and ETA.
    Where stderr is no terminal, a line every 5% of the steps (or after ``LOG_INTERVAL`` seconds, if
    sooner) and at each validation stands in."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar = BarColumn(bar_width=_WIDEST_BAR)
        self.progress = progress_bar(
            MofNCompleteColumn(), TextColumn("{task.fields[status]}"), quiet=quiet, bar=self.bar
        )
        self.task = self.progress.add_task("Training", total=None, status="starting…")
        self.last_logged = 0  # the step of the last line logged, and when it was
        self.last_line = time.monotonic()

    def __enter__(self) -> TrainingProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, report: TrainingReport) -> None:
        statuses = training_statuses(report)
        task = self.progress.tasks[0]
        timers = (column for column in self.progress.columns if isinstance(column, (TimeElapsedColumn, Eta)))
        times = sum(column.render(task).cell_len for column in timers)  # "41:00:00" too
        room = err.width - _TRAINING_BAR_FIXED - times - 2 * len(str(report.steps)) - 1
        status = next((text for text in statuses if len(text) + _LEAST_BAR <= room), statuses[-1])
        self.bar.bar_width = max(_LEAST_BAR, min(_WIDEST_BAR, room - len(status)))
        self.progress.update(self.task, total=report.steps, completed=report.step, status=status)
        # a line at every 5% of the steps (hours, on a CPU; at 10, 20... of 200, after a resume too), and at
        # the step ending LOG_INTERVAL after the last
        now, every = time.monotonic(), max(report.steps // 20, 1)
        due = report.step // every > self.last_logged // every
        due = due or now - self.last_line >= LOG_INTERVAL
        if self.progress.disable and not self.quiet and (due or report.validated):
            line = statuses[0] if report.validated else training_statuses(replace(report, val=None))[0]
            err.print(f"step {report.step}/{report.steps}: {line}")
        if due:
            self.last_logged, self.last_line = report.step, now


def training_statuses(report: TrainingReport) -> list[str]:
    """What the training bar says beside it, from the most (loss, speed, learning rate and the last
    validation's scores against the input's) to the least (the loss)."""
    loss, speed = f"loss {report.losses['total']:.4f}", f"{report.images_per_second:.1f} img/s"
    val = report.val
    if val is None:
        return [f"{loss} | {speed} | lr {report.lr:.2e}", f"{loss} | {speed}", loss]
    scores = f"val {val.psnr:.2f} dB / {val.ssim:.3f}"
    return [
        f"{loss} | {speed} | lr {report.lr:.2e} | {scores} (input {val.identity_psnr:.2f} dB)",
        f"{loss} | {speed} | {scores}",
        f"{loss} | val {val.psnr:.2f} dB",
        loss,
    ]


def timing_line(timing: Mapping[str, object], megapixels: float, memory: str) -> str:
    """``recnet bench``'s line for ``engine.time_correction``'s ``timing``: the size, device and settings,
    the times, and ``memory`` (the peak, in words; empty where unknown)."""
    settings = [str(timing["precision"])] + [name for name in ("compiled", "fused") if timing[name]]
    settings.append(f"tile {timing['tile']}" if timing["tile"] else "whole image")
    if not timing["keep_colour"]:  # named where it is not the default, as eval's title does
        settings.append("the model's colours")
    return (
        f"{timing['width']}x{timing['height']} ({megapixels:g} MP) on {timing['device']}, "
        f"{', '.join(settings)}: best {timing['best_seconds']:.3f} s "
        f"({timing['megapixels_per_second']:.2f} MP/s), median {timing['median_seconds']:.3f} s"
        + (memory and f", {memory}")
    )


# The least width of the models table's other columns (where and size whole, about 20 wide), borders and
# padding included
_MODEL_DETAILS_WIDTH = 62


def models_table(entries: list[ModelEntry], width: int) -> Table:
    """The ``recnet models`` table, a damaged model's row in red. The name is what --model takes, on one
    line: where it leaves the other columns too little of the ``width``, each model's details go on lines
    under its name instead (a Hub name pinned to a commit is over 60 characters), and only a name wider than
    the terminal folds."""
    table = Table(title="RECNet models")
    rows = [[escape(visible(cell)) for cell in entry.row()] for entry in entries]  # plain text, not markup
    name_width = max(len(row[0]) for row in rows)
    stacked = name_width + _MODEL_DETAILS_WIDTH > width
    if stacked:
        table.add_column("name, then where, size and about", overflow="fold")
    else:
        table.add_column("name", no_wrap=True, min_width=name_width)
        table.add_column("where", no_wrap=True)
        table.add_column("size", no_wrap=True)
        table.add_column("about", min_width=20)
    for entry, (name, *details) in zip(entries, rows, strict=True):
        style = "red" if entry.problem else None
        if stacked:
            table.add_row(
                Group(name, Padding(" | ".join(details), (0, 0, 0, 2))), style=style, end_section=True
            )
        else:
            table.add_row(name, *details, style=style)
    return table


def print_scores(report: EvalReport, model: str, amount: float | str, keep_colour: bool) -> None:
    """``recnet eval``'s table: each pair's scores and strength (automatic strength), means in the footer;
    its title names a setting other than the defaults (a strength given, the model's colours)."""
    count = len(report.scores)
    title = f"{model} on {counted(count, 'pair')}" + (f", strength {amount:g}" if amount != "auto" else "")
    if not keep_colour:
        title += ", the model's colours"
    table = Table(title=escape(title), show_footer=True)
    table.add_column("image", footer="mean")
    for name, mean in (
        ("PSNR dB", report.mean("psnr")),
        ("SSIM", report.mean("ssim")),
        ("input PSNR", report.mean("identity_psnr")),
        ("input SSIM", report.mean("identity_ssim")),
    ):
        table.add_column(name, justify="right", footer=f"{mean:.4f}" if "SSIM" in name else f"{mean:.2f}")
    if amount == "auto":
        table.add_column("strength", justify="right", footer=f"{report.mean('strength'):.2f}")
    for s in report.scores:
        scores = (f"{s.psnr:.2f}", f"{s.ssim:.4f}", f"{s.identity_psnr:.2f}", f"{s.identity_ssim:.4f}")
        table.add_row(escape(s.input.name), *scores, *([f"{s.strength:.2f}"] if amount == "auto" else []))
    from recnet_cli.metrics import MAX_PSNR  # PyTorch, which eval has imported by now

    if any(psnr > MAX_PSNR for s in report.scores for psnr in (s.psnr, s.identity_psnr)):
        table.caption = (
            f"a PSNR above {MAX_PSNR:g} dB (inf: identical to the ground truth) counts as {MAX_PSNR:g} "
            "in the mean"
        )
    out.print(table)


def print_held_out_scores(scores: Mapping[str, GroupScore]) -> None:
    """``recnet calibrate``'s table: each group's held-out pairs, uncorrected, fully corrected and at auto."""
    table = Table(title="held-out pairs: mean PSNR dB")
    for column in ("pairs of", "count", "input", "full correction", "auto", "mean strength"):
        table.add_column(column, justify="left" if column == "pairs of" else "right")
    for regime, score in scores.items():
        numbers = (score.input_psnr, score.full_psnr, score.auto_psnr)
        table.add_row(regime, str(score.pairs), *(f"{n:.2f}" for n in numbers), f"{score.mean_strength:.2f}")
    out.print(table)
