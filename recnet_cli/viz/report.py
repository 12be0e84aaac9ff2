"""The HTML report of ``recnet correct FOLDER -o OUT --report``: ``OUT/report.html``.

One self-contained page (inline CSS and JavaScript, no network) with a card per corrected photo: a
before/after slider, a toggle for the exposure mask and the exposure numbers before and after. The
pictures it shows are downscaled JPEG previews in ``OUT/.recnet-report/``, linked relatively, so the
report loads fast and still works when OUT is moved or copied. The page shows every photo in OUT that a run
with ``--report`` corrected, from the cards those runs kept beside the previews: each shard of a batch
writes the whole batch's page. Opened with ``?test=1`` the page checks itself (cards, slider, mask toggle,
images) and writes the result as JSON into ``<pre id="selftest">``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import html
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, astuple, dataclass, replace
from pathlib import Path
from urllib.parse import quote

import numpy as np

from recnet_cli.batch import Summary
from recnet_cli.files import describe_os_error, file_kind
from recnet_cli.imaging import (
    ImageWriteError,
    atomic_output,
    fit_size,
    kept_from_overwrite,
    mark_written,
    write_rgb8,
)
from recnet_cli.imaging.pixels import BT601_LUMA, over_checkerboard, quantise

REPORT_NAME = "report.html"
_LONGEST_PREVIEW_STEM = 200  # bytes of an output's name in its previews' names (255 at most in all)
PREVIEW_FOLDER = ".recnet-report"
LOCK_NAME = ".lock"  # in PREVIEW_FOLDER: runs that write one report take turns on it
_GENERATOR = b'<meta name="generator" content="recnet">'
NOT_A_REPORT = (
    "exists and is not a recnet report (not even --overwrite replaces it): move it, or choose another -o"
)
PREVIEW_LONG_SIDE = 1280
CLIPPED_LEVEL = 250  # any channel at or above this (of 255): a clipped highlight
CRUSHED_LEVEL = 5  # luma at or below this (of 255): a crushed shadow
BT601_PER_MILLE = tuple(round(weight * 1000) for weight in BT601_LUMA)  # luma in thousandths of a level


@dataclass(frozen=True)
class ExposureStats:
    clipped: float  # share of pixels with any channel >= 250/255
    crushed: float  # share of pixels with luma <= 5/255
    mean_luma: float  # mean luma, 0 (black) to 1 (white)


def exposure_stats(rgb: np.ndarray, alpha: np.ndarray | None = None) -> ExposureStats:
    """Clipped highlights, crushed shadows and mean luminance of an H x W x 3 float image in [0, 1], of the
    pixels its ``alpha`` (H x W) leaves visible, if any."""
    pixels = quantise(rgb, 8)
    if alpha is not None and (visible := alpha > 0).any():
        pixels = pixels[visible]  # what lies under full transparency shows nowhere
    # in whole numbers: float32's luma of a grey at level 5 can come out as 5.0000005, which is not crushed
    per_mille = pixels.astype(np.int32) @ np.asarray(BT601_PER_MILLE, np.int32)
    return ExposureStats(
        clipped=float((pixels >= CLIPPED_LEVEL).any(axis=-1).mean()),
        crushed=float((per_mille <= CRUSHED_LEVEL * 1000).mean()),
        mean_luma=float(per_mille.mean() / 255_000),
    )


@dataclass(frozen=True)
class ReportedRun:
    """How a run corrected its photos, as its report's summary says it: the model as people read it, the
    device, the strength every photo got (or "auto"), their colours, and the run's shard of the batch."""

    model: str
    device: str
    strength: float | str = 1.0
    keep_colour: bool = True
    shard: str | None = None  # None: the whole batch


@dataclass
class Card:
    """One corrected photo in the report; paths are relative to the report's folder."""

    output: str  # the output's path inside the report's folder, and the card's title
    before: str
    after: str
    mask: str
    before_stats: ExposureStats
    after_stats: ExposureStats
    strength: float  # the share of the model's correction the photo got
    stamp: list[int]  # the output's size and modification time (ns) when the card was made
    keep_colour: bool = False  # in the photo's colours; cards written before this field were in the model's

    @property
    def previews(self) -> tuple[str, str, str]:
        return self.before, self.after, self.mask

    @classmethod
    def from_dict(cls, fields: dict) -> Card:
        """A card read back from its JSON; raises ValueError (or TypeError, KeyError) for anything else."""
        stats = {key: ExposureStats(**fields[key]) for key in ("before_stats", "after_stats")}
        card = cls(**{**fields, **stats})
        links = (card.output, *card.previews)
        numbers = (card.strength, *astuple(card.before_stats), *astuple(card.after_stats))
        if not (
            all(isinstance(link, str) for link in links)
            and all(type(n) in (int, float) and math.isfinite(n) for n in numbers)
            and isinstance(card.stamp, list)
            and [type(n) for n in card.stamp] == [int, int]
            and isinstance(card.keep_colour, bool)
        ):
            raise ValueError("not a report card")
        return card


class ReportBuilder:
    """Collects the photos of a batch as they are corrected, then writes ``report.html``.

    Each card is kept beside its previews (``<preview>-card.json``), and the page shows every card in the
    folder that still shows its output as it is: this run's, and those that the batch's other shards and
    earlier runs into the folder (one that stopped, then went on with ``--skip-existing``) wrote.
    """

    def __init__(self, folder: Path, batch: Sequence[Path] = ()) -> None:
        """``batch``: the outputs of the whole batch, every shard's, in the order the jobs are planned."""
        self.folder = folder
        self.order: dict[str, int] = {}  # each output, by its card's name for it, and its place in the batch
        for place, target in enumerate(batch):
            self.order.setdefault(self.relative(target), place)

    def relative(self, target: Path) -> str:
        """An output's path inside the report's folder, as its card names it."""
        return Path(os.path.relpath(target, self.folder)).as_posix()

    def preview(self, target: Path, kind: str) -> Path:
        """Where a preview (or the card) of the output ``target`` goes, relative to the report's folder: its
        name and ``kind``, with a long name cut and told apart by a hash so that it still fits."""
        relative = Path(os.path.relpath(target, self.folder))
        name = relative.name
        if len(os.fsencode(name)) > _LONGEST_PREVIEW_STEM:
            cut = name
            while len(os.fsencode(cut)) > _LONGEST_PREVIEW_STEM - 13:  # whole characters, and the hash
                cut = cut[:-1]
            name = f"{cut}-{hashlib.sha1(os.fsencode(name)).hexdigest()[:12]}"
        return Path(PREVIEW_FOLDER) / relative.parent / f"{name}-{kind}"

    @contextlib.contextmanager
    def keeping(self, target: Path, card: Card) -> Iterator[None]:
        """Runs the block that writes the photo ``target`` after its previews were staged (``previews``):
        once the block has written it, the previews take their names and its card is saved. If anything
        fails before, the photo's earlier previews and card stay as they were, so that the page never shows
        one run's before beside another's after."""
        try:
            yield
            self.add(target, card)
        finally:
            self.discard(card)  # what is still staged: all of it if the photo failed, none once added

    def previews(
        self,
        target: Path,
        photo: np.ndarray,
        corrected: np.ndarray,
        mask_picture: np.ndarray,
        strength: float = 1.0,
        keep_colour: bool = True,
        alpha: np.ndarray | None = None,
    ) -> Card:
        """Writes the previews of one photo (float inputs in [0, 1], the mask picture as uint8; where the
        photo's ``alpha`` makes it transparent, over a checkerboard) under staged names (see ``staged``), and
        returns its card, to ``add`` once the photo is written or ``discard``."""
        pictures = {
            "before": quantise(over_checkerboard(photo, alpha), 8),
            "after": quantise(over_checkerboard(corrected, alpha), 8),
            "mask": mask_picture,
        }
        links = {kind: self.preview(target, f"{kind}.jpg") for kind in pictures}
        card = Card(
            output=self.relative(target),
            before_stats=exposure_stats(photo, alpha),
            after_stats=exposure_stats(corrected, alpha),
            strength=strength,
            stamp=[],
            keep_colour=keep_colour,
            **{kind: path.as_posix() for kind, path in links.items()},
        )
        try:
            for kind, path in links.items():
                final = self.folder / path
                make_folder_for(final)
                if final.is_dir() and not final.is_symlink():  # found now, not once the photo is written
                    in_the_way = IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
                    raise ImageWriteError(final, describe_os_error(in_the_way), errno.EISDIR)
                picture = fit_size(pictures[kind], max_side=PREVIEW_LONG_SIDE)
                write_rgb8(staged(final), picture, quality=85)
        except BaseException:
            self.discard(card)
            raise
        return card

    def add(self, target: Path, card: Card) -> None:
        """Puts the staged previews of a photo just written to ``target`` in place and saves its card,
        stamped with the photo."""
        for link in card.previews:
            final = self.folder / link
            try:
                os.replace(staged(final), final)
            except OSError as error:
                raise ImageWriteError(final, describe_os_error(error), error.errno) from error
        card = replace(card, stamp=output_stamp(target))
        with atomic_output(self.folder / self.preview(target, "card.json")) as file:
            file.write(json.dumps(asdict(card)).encode("ascii"))  # odd bytes escaped

    def discard(self, card: Card) -> None:
        """Removes the staged previews of a card not added (or not all of them put in place)."""
        for link in card.previews:
            with contextlib.suppress(OSError):
                staged(self.folder / link).unlink(missing_ok=True)

    def stored_card(self, path: Path) -> Card | None:
        """The card in ``path`` if recnet wrote it there for its output, and the output and previews are
        as it saw them (an output written again since, without a report, leaves its card out); else None.
        The card of an output that is gone is removed, with its previews (see ``remove_stale``)."""
        try:
            card = Card.from_dict(json.loads(path.read_bytes()))
        except (OSError, ValueError, TypeError, KeyError, OverflowError):  # none, or not a card
            return None
        target = self.folder / card.output
        files = [self.folder / link for link in card.previews]
        kinds = ("card.json", "before.jpg", "after.jpg", "mask.jpg")
        if card.output != self.relative(target) or [path, *files] != [
            self.folder / self.preview(target, kind) for kind in kinds
        ]:
            return None  # edited, or moved: not where recnet keeps its output's card, or not its previews
        try:
            current = card.stamp == output_stamp(target)
        except FileNotFoundError:
            remove_stale(path, files)
            return None
        except OSError:
            return None
        return card if current and all(file.is_file() for file in files) else None

    def stored_cards(self) -> dict[str, Card]:
        """The cards in the folder that show their output as it is (see ``stored_card``), by output: the
        batch's in the order of the batch, then the others by output."""
        cards = [
            card for path in card_files(self.folder / PREVIEW_FOLDER) if (card := self.stored_card(path))
        ]
        cards.sort(key=lambda card: (self.order.get(card.output, len(self.order)), card.output))
        return {card.output: card for card in cards}

    def write(self, summary: Summary, run: ReportedRun) -> Path:
        """Writes the report of a finished (or interrupted) batch, or of its part (``run.shard``), and
        returns its path. Runs that write one report take turns, each reading the cards anew: the last shard
        of a batch to finish writes the page with every shard's photos. A page there that recnet did not
        write (saved while the batch ran) is kept: ImageWriteError."""
        path = self.folder / REPORT_NAME
        lock = self.folder / PREVIEW_FOLDER / LOCK_NAME
        try:  # not made yet where no photo was corrected (a shard of a batch with none)
            make_folder_for(lock)
        except ImageWriteError as error:  # said of the page: the lock is recnet's, a name nobody knows
            why = f"cannot make {PREVIEW_FOLDER} beside it: {error.reason}"
            raise ImageWriteError(path, why, error.errno) from error
        with taking_turns(lock):
            if why := page_kept(path):
                raise ImageWriteError(path, why)
            page = self.page(summary, run)
            with atomic_output(path) as file:  # a name not in UTF-8 shows a ? for its odd bytes
                file.write(page.encode("utf-8", "replace"))
                mark_written(file)
        return path

    def page(self, summary: Summary, run: ReportedRun) -> str:
        """The page of every card in the folder (see ``write``), saying which photos this run corrected
        and which of the batch have no card."""
        cards = self.stored_cards()
        seconds = {self.relative(o.job.target): o.seconds for o in summary.outcomes if o.status == "done"}
        failed = {self.relative(o.job.target) for o in summary.outcomes if o.status == "failed"}
        told = failed | {self.relative(o.job.target) for o in summary.outcomes if o.status == "not run"}
        articles = [render_card(card, card_note(output, seconds, failed)) for output, card in cards.items()]
        missing = [output for output in self.order if output not in cards and output not in told]
        return render_report(summary, articles, missing, run)


OTHER_RUN = "corrected by another run"
FAILED_THIS_RUN = "corrected by an earlier run: this run failed on it (see Failed) and left that run's output"


def card_note(output: str, seconds: dict[str, float], failed: set[str]) -> str:
    """Which run corrected a card's output: this one (in ``seconds``), or another, one that this run failed
    on (in ``failed``) said as such, so that its earlier previews are not taken for this run's."""
    if output in seconds:
        return f"corrected in {seconds[output]:.2f} s"
    return FAILED_THIS_RUN if output in failed else OTHER_RUN


def staged(preview: Path) -> Path:
    """A hidden name beside ``preview`` for it while its photo is written (one that a run killed meanwhile
    leaves behind is written over by the next run)."""
    return preview.with_name(f".staged-{preview.name}")


def card_files(folder: Path) -> list[Path]:
    """The cards in the previews' folder ``folder`` and its sub-folders (not through links)."""
    return [
        Path(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.endswith("-card.json")
    ]


def remove_stale(card: Path, previews: Sequence[Path]) -> None:
    """Removes the card of an output that is gone, and then its previews, unless a preview is newer than
    the card: a run is correcting that photo again, and its card comes once its output is written."""
    with contextlib.suppress(OSError):  # gone meanwhile, or a folder recnet may not write in: left as it is
        written = card.stat().st_mtime_ns
        if any(preview.exists() and preview.stat().st_mtime_ns > written for preview in previews):
            return
        for file in (card, *previews):
            file.unlink(missing_ok=True)


@contextlib.contextmanager
def taking_turns(lock: Path) -> Iterator[None]:
    """Runs the block holding an exclusive lock on the file ``lock`` (made if need be), so that processes
    that write one report (the shards of a batch, on one machine or several that share the folder) take
    turns; without one where the system or the file system has no such locks (Windows, some cluster file
    systems)."""
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(ImportError, OSError):
            import fcntl

            fcntl.flock(stack.enter_context(open(lock, "a")), fcntl.LOCK_EX)
        yield


def make_folder_for(path: Path) -> None:
    """Makes the folder ``path`` goes in, and its parents; failing (a file, or a link to nothing, where a
    folder goes) is ``path``'s ImageWriteError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ImageWriteError(path, describe_os_error(error), error.errno) from error


def output_stamp(target: Path) -> list[int]:
    """The output's size and modification time in nanoseconds."""
    status = os.stat(target)
    return [status.st_size, status.st_mtime_ns]


def report_files(folder: Path) -> tuple[Path, Path]:
    """The report's page in ``folder`` and the folder of its previews and cards."""
    return folder / REPORT_NAME, folder / PREVIEW_FOLDER


def report_problem(folder: Path, targets: Sequence[Path] = ()) -> str | None:
    """Why ``report.html`` and its previews cannot go in ``folder``: a file where the previews' folder goes,
    a link where it or its sub-folder for one of the outputs ``targets`` goes, a folder where the page goes
    (or one that the outputs would make), or a report.html that recnet did not write (not even --overwrite
    replaces it); None when they can."""
    page, previews = report_files(folder)
    if os.path.lexists(folder) and not os.path.isdir(folder):
        return f"-o {folder} is {file_kind(folder)}, and --report needs a folder: choose another -o"
    if os.path.lexists(previews) and not os.path.isdir(previews):
        what = file_kind(previews)
        return f"{previews} is {what}, and the report's previews go in a folder of that name: move it"
    # The previews replace what is there: only in folders of recnet's own, not in those links lead to
    if linked := next(filter(os.path.islink, preview_folders(folder, targets)), None):
        return f"{linked} is a link to a folder, and the report's previews go in one of their own: move it"
    if os.path.isdir(page) or any(page in target.parents for target in targets):
        what = "a folder" if os.path.isdir(page) else "a folder the outputs go in"
        return f"{page} is {what}, and the report goes in a file of that name: choose another -o"
    if why := page_kept(page):
        return f"{page}: {why}"
    return None


def preview_folders(folder: Path, targets: Sequence[Path]) -> list[Path]:
    """The folders the previews of the outputs ``targets`` go in (``ReportBuilder.preview``), and those they
    are in up to the previews' folder in ``folder``, each once, outermost first."""
    previews, builder = report_files(folder)[1], ReportBuilder(folder)
    found = {previews: None}
    for target in targets:
        inside = (folder / builder.preview(target, "card")).parent.relative_to(previews).parts
        found.update((previews.joinpath(*inside[:depth]), None) for depth in range(1, len(inside) + 1))
    return list(found)


def page_kept(page: Path) -> str | None:
    """Why ``page``, where the report goes, is a file not even --overwrite replaces: it is not a recnet
    report (the user's, or another program's; one that cannot be read is taken for one), or it is one
    kept as outputs are (``kept_from_overwrite``: edited or copied since recnet wrote it, made read-only,
    a link); None for recnet's own page, or no file there."""
    if not (os.path.isfile(page) or os.path.islink(page)):
        return None
    try:
        with page.open("rb") as file:
            if _GENERATOR not in file.read(1024):
                return NOT_A_REPORT
    except OSError:
        return NOT_A_REPORT
    why = kept_from_overwrite(page)
    return why and f"exists, and {why}: move it, or choose another -o"


def render_report(summary: Summary, articles: Sequence[str], missing: Sequence[str], run: ReportedRun) -> str:
    """The whole HTML page: this run's summary, the ``articles`` of the photos in the folder, and the
    outputs of the batch that have none (``missing``)."""
    failures = [f"{o.job.source}: {o.reason}" for o in summary.outcomes if o.status == "failed"]
    failures += [str(unmatched) for unmatched in summary.missing]
    return PAGE.format(
        style=STYLE,
        script=SCRIPT,
        summary=render_summary(summary, run),
        failures=render_failures(failures),
        missing=render_missing(missing, run.shard),
        cards="\n".join(articles)
        or '<p class="empty">No photo in this folder was corrected with --report yet.</p>',
    )


def render_summary(summary: Summary, run: ReportedRun) -> str:
    counts = (
        f"<strong>{summary.count('done')}</strong> corrected, <strong>{summary.count('skipped')}</strong> "
        f"skipped (output existed), <strong>{summary.failed}</strong> failed"
    )
    if summary.count("not run"):
        counts += f", <strong>{summary.count('not run')}</strong> not run (the batch stopped)"
    when = time.strftime("%Y-%m-%d %H:%M")
    if run.strength == "auto":
        amount = "strength chosen photo by photo (auto; each card says how much)"
    elif run.strength == 1:
        amount = "full correction"
    else:
        amount = f"strength {run.strength:g} (part of the correction)"
    amount += ", the photos' own colours" if run.keep_colour else ", the model's colours (--model-colour)"
    this_run = f"This run, shard {html.escape(run.shard)} of the batch" if run.shard else "This run"
    return (
        f"<p>{this_run}: {counts} in {summary.seconds:.1f} s. The page shows every photo corrected into this "
        f"folder with <code>--report</code>, by this run or another (an earlier one, or another shard).</p>"
        f"<p class=muted>Model <code>{html.escape(run.model)}</code> on "
        f"<code>{html.escape(run.device)}</code>, {amount}. Each card says how its own photo was corrected. "
        f"Report written {when}.</p>"
    )


def render_missing(missing: Sequence[str], shard: str | None) -> str:
    """The outputs of the batch without a card (that this run did not fail), in a list that opens."""
    if not missing:
        return ""
    why = "not corrected yet by their shard, or failed there (its output says why), or " if shard else ""
    items = "".join(f"<li>{html.escape(output)}</li>" for output in missing)
    return (
        f'<details class="missing"><summary><strong>{len(missing)}</strong> of the batch\'s photos have no '
        f"card: {why}written without <code>--report</code> (or changed since)</summary><ul>{items}</ul>"
        "</details>"
    )


def render_failures(failures: list[str]) -> str:
    if not failures:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in failures)
    return f'<section class="failures"><h2>Failed</h2><ul>{items}</ul></section>'


def render_card(card: Card, when: str) -> str:
    rows = "".join(
        f"<tr><th>{label}</th><td>{show(getattr(card.before_stats, field))}</td>"
        f"<td>{show(getattr(card.after_stats, field))}</td></tr>"
        for label, field in STAT_ROWS
    )
    return CARD.format(
        name=html.escape(card.output),
        output=link(card.output),
        before=link(card.before),
        after=link(card.after),
        mask=link(card.mask),
        rows=rows,
        strength=f"{card.strength:g}",
        colours="the photo's colours" if card.keep_colour else "the model's colours",
        when=when,
        blown=BLOWN_NOTE if recovered_clipping(card.before_stats, card.after_stats) else "",
    )


def recovered_clipping(before: ExposureStats, after: ExposureStats) -> bool:
    """Whether a photo had clipped highlights (``BLOWN_SHARE`` or more) that its correction shows less of."""
    return before.clipped >= BLOWN_SHARE and after.clipped < before.clipped


STAT_ROWS = (
    ("clipped highlights", "clipped"),
    ("crushed shadows", "crushed"),
    ("mean luminance", "mean_luma"),
)


def show(share: float) -> str:
    return f"{share * 100:.1f}%"


def link(relative: str) -> str:
    """A relative URL for an href/src attribute: percent-encoded (a name's bytes, UTF-8 or not), then
    HTML-escaped."""
    return html.escape(quote(os.fsencode(relative)), quote=True)


CARD = """<article class="card">
<h2><a href="{output}">{name}</a></h2>
<div class="compare">
<img class="before" src="{before}" alt="{name} before correction">
<img class="after" src="{after}" alt="{name} after correction">
<img class="mask" src="{mask}" alt="{name} exposure mask" hidden>
<div class="divider"></div>
</div>
<div class="controls">
<span>before</span>
<input type="range" min="0" max="100" value="50" aria-label="before/after split for {name}">
<span>after</span>
<label><input type="checkbox" class="mask-toggle"> exposure mask</label>
</div>
<table><tr><th></th><th>before</th><th>after</th></tr>{rows}</table>
<p class="muted">strength {strength}, {colours}, {when}</p>{blown}
</article>"""

# Under a card whose photo had clipped highlights that its correction no longer shows as clipped: the model
# darkens them, but the photo held no detail there to bring back
BLOWN_SHARE = 0.001
BLOWN_NOTE = (
    '\n<p class="muted blown">Clipped highlights hold little or no detail in the photo: fewer of them after '
    "correction means they were darkened, not that detail was brought back.</p>"
)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="recnet">
<title>recnet report</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>recnet report</h1>
{summary}
<p class="muted">Drag a slider to compare: the corrected photo is on the right of the line.
<em>Exposure mask</em>: blue where the model saw under-exposure, orange where it saw over-exposure.
Clipped highlights: share of pixels with a channel at 250/255 or more; crushed shadows: luminance at
5/255 or less; mean luminance: 0% black to 100% white. Previews are reduced copies; the file name opens
the full-size result.</p>
</header>
{failures}
{missing}
<main>
{cards}
</main>
<script>{script}</script>
</body>
</html>
"""

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; padding: 1.5rem; background: #f4f4f2; color: #222; }
header { max-width: 70rem; }
h1 { margin: 0 0 .4rem; font-size: 1.6rem; }
.muted { color: #666; font-size: .88rem; }
.failures { background: #fff3e8; border-left: 4px solid #d55e00; padding: .4rem 1rem; margin: 1rem 0; }
.failures h2 { font-size: 1rem; margin: .3rem 0; }
.missing { margin: .6rem 0; font-size: .88rem; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 400px), 1fr)); gap: 1.2rem;
  margin-top: 1rem; }
.card { background: #fff; border-radius: 8px; padding: .8rem; box-shadow: 0 1px 3px #0002; }
.card h2 { font-size: 1rem; margin: 0 0 .5rem; overflow-wrap: anywhere; }
.card h2 a { color: #0072b2; }
/* as large as the photo's shape allows in the card, and no larger than its preview: the slider's ends are
   the photo's edges */
.compare { position: relative; line-height: 0; width: fit-content; max-width: 100%; margin: 0 auto;
  user-select: none; }
.compare img { max-width: 100%; max-height: 70vh; display: block; }
.compare img[hidden] { display: none; }
.compare .after, .compare .mask { position: absolute; inset: 0; width: 100%; height: 100%; }
.divider { position: absolute; top: 0; bottom: 0; left: 50%; width: 2px; background: #fff;
  box-shadow: 0 0 3px #000; pointer-events: none; }
.mask:not([hidden]) ~ .divider { display: none; }  /* the mask: no slider */
code { white-space: nowrap; }
.controls { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem .8rem; margin: .5rem 0;
  font-size: .88rem; }
.controls label { white-space: nowrap; }
.controls input[type=range] { flex: 1; accent-color: #0072b2; }
table { border-collapse: collapse; width: 100%; font-size: .88rem; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: .15rem .4rem; border-bottom: 1px solid #eee; }
th:first-child { text-align: left; font-weight: normal; color: #444; }
#selftest { background: #fff; padding: .5rem; }
"""

SCRIPT = """
function wire(card) {
  const after = card.querySelector('.after'), divider = card.querySelector('.divider');
  const slider = card.querySelector('input[type=range]');
  const split = () => {
    after.style.clipPath = 'inset(0 0 0 ' + slider.value + '%)';
    divider.style.left = slider.value + '%';
  };
  slider.addEventListener('input', split);
  split();
  const toggle = card.querySelector('.mask-toggle'), mask = card.querySelector('.mask');
  toggle.addEventListener('change', () => { mask.hidden = !toggle.checked; });
}
document.querySelectorAll('.card').forEach(wire);

function selfTest() {
  const cards = document.querySelectorAll('.card');
  const result = {cards: cards.length, slider: 'no card', mask: 'no card'};
  result.broken_images = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
    .map(i => i.getAttribute('src'));
  if (cards.length) {
    const card = cards[0], after = card.querySelector('.after');
    const slider = card.querySelector('input[type=range]'), before = after.style.clipPath;
    slider.value = 20;
    slider.dispatchEvent(new Event('input'));
    const now = after.style.clipPath;
    result.slider = now !== before && now.includes('20%') ? 'ok' : 'clip stayed ' + now;
    const toggle = card.querySelector('.mask-toggle'), mask = card.querySelector('.mask');
    const shown = (element) => getComputedStyle(element).display !== 'none';
    const hiddenAtFirst = !shown(mask);
    toggle.click();
    const alone = !shown(card.querySelector('.divider'));
    result.mask = hiddenAtFirst && shown(mask) && alone ? 'ok'
      : 'mask visible before the toggle, hidden after, or under the line of the slider';
  }
  const out = document.createElement('pre');
  out.id = 'selftest';
  out.textContent = JSON.stringify(result);
  document.body.prepend(out);
}
if (new URLSearchParams(location.search).has('test')) window.addEventListener('load', selfTest);
"""
