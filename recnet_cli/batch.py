"""Batch plumbing shared by the commands: finding inputs, naming outputs, running jobs, counting."""

from __future__ import annotations

import errno
import glob
import os
import stat
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from recnet_cli.files import (
    describe_os_error,
    file_kind,
    input_file_problem,
    nearest_existing,
    special_file_kind,
    special_input,
)
from recnet_cli.hostmemory import available_host_memory
from recnet_cli.imaging import (
    HEIF_EXTENSIONS,
    IMAGE_EXTENSIONS,
    OUTPUT_CHOICES,
    READABLE,
    OutputExistsError,
    conversion_needed,
    enable_heif,
    names_unsupported_image,
)

# What recnet names the files it writes beside a photo: <stem><suffix>.<ext> (correct: _recnet, mask:
# _mask; explain writes <stem>_explain.png), and companions <output stem>_<tag>.png.
CORRECT_SUFFIX, MASK_SUFFIX, EXPLAIN_SUFFIX = "_recnet", "_mask", "_explain"
COMPANION_TAGS = ("mask", "features", "raw")
# What ``-`` (standard input or output, to other tools) is told; a file named ``-`` is read as any other.
NO_STANDARD_STREAMS = "recnet reads and writes photo files, not standard input or output"
T = TypeVar("T")

# Write errors that every later write would meet too (disk full, over quota, read-only): they stop a batch.
BATCH_STOPPING_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)})


def stops_writing(error: BaseException) -> bool:
    """Whether every later write would fail as this one did (``BATCH_STOPPING_ERRNOS``)."""
    return getattr(error, "errno", None) in BATCH_STOPPING_ERRNOS


# Photos a GPU lane reads ahead and writes behind, one thread and about one core each (a CPU lane: one).
# On this project's 2-core EPYC one thread takes 0.15-0.23 s to decode a 12 MP JPEG and 0.34 s to finish
# its correction (strength, blend) and encode and write it, against the 60 ms an H200 is to take for the
# model; so a lane wants six, where the cores allow.
GPU_LANE_DEPTHS = range(3, 7)
# Host memory that a photo read ahead and one written behind hold together on a GPU lane, per pixel:
# float32 RGB when decoded (12 B/px, 15 while decoding), and up to 43 while being finished (the photo, the
# model's output and mask, the blend, the 8-bit copy) as tracemalloc counts them for a 24 MP JPEG, plus
# the encoder's buffers, plus up to 16 more because the output and mask (16 B/px) are copied back into
# pinned memory, which PyTorch's caching host allocator hands out in powers of two. (A 16-bit output takes
# about 12 more: the share below leaves room.) A lane holds that for each step of its depth, and one more
# for the photo the GPU is on.
IN_FLIGHT_BYTES_PER_PIXEL = 80
# The share of the host memory available when a batch starts that its photos in flight may take.
IN_FLIGHT_MEMORY_SHARE = 0.5


def gpu_lane_depth(
    lanes: int, megapixels: float = 0.0, cores: int | None = None, memory: int | None = None
) -> int:
    """How far a GPU lane reads ahead and writes behind, in a batch of ``lanes`` lanes (GPU or CPU): the
    cores this process may use (``usable_cores`` unless given) shared out among them, a reader and a writer
    per photo in flight, within ``GPU_LANE_DEPTHS``; less (down to 1) where photos of ``megapixels`` (the
    batch's largest) would overfill their share of the host memory available (``available_host_memory``
    unless given)."""
    share = (cores or usable_cores()) // (2 * lanes)
    depth = min(max(share, GPU_LANE_DEPTHS.start), GPU_LANE_DEPTHS.stop - 1)
    if megapixels <= 0:
        return depth
    memory = available_host_memory() if memory is None else memory
    if memory is None:
        return depth
    steps = memory * IN_FLIGHT_MEMORY_SHARE / (lanes * megapixels * 1e6 * IN_FLIGHT_BYTES_PER_PIXEL)
    return max(1, min(depth, int(steps) - 1))  # one step's worth is the photo on the device


def usable_cores() -> int:
    """The cores this process may run on (a scheduler's share of a node, not the whole node, on Linux)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Source:
    """An input image and its path relative to the folder it was found in (for mirroring); ``aliases``: other
    names it was given under (links to it, or it a link), corrected once under ``path``."""

    path: Path
    relative: Path
    from_folder: bool = False
    aliases: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path
    problem: str | None = None  # set when the job must not run (e.g. it would overwrite its input)
    companions: tuple[Path, ...] = ()  # extra files written beside the target (mask pictures)
    # Outputs that are images found among the inputs, passed over as recnet's earlier outputs, that do not
    # bear recnet's mark (imaging.written_by_recnet): a user's own photos, which --overwrite must not replace
    unmarked: tuple[Path, ...] = ()

    @property
    def outputs(self) -> tuple[Path, ...]:
        return (self.target, *self.companions)


@dataclass
class Outcome:
    job: Job
    # "done", "skipped", "failed", "not run" (after an error that stops the batch) or "planned" (dry run)
    status: str
    reason: str = ""
    seconds: float = 0.0
    megapixels: float = 0.0
    stops_batch: bool = False  # failed with an error that every later job would meet too (a full disk)
    lacking: tuple[Path, ...] = ()  # skipped: the companions its kept output was written without


@dataclass(frozen=True)
class Unmatched:
    """An input that gave no image: a missing path, an empty folder, a pattern that matched none."""

    input: str
    reason: str

    def __str__(self) -> str:
        return f"{self.input or repr(self.input)}: {self.reason}"


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    missing: list[Unmatched] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False  # Ctrl-C or SIGTERM stopped the batch
    passed_over: list[Path] = field(default_factory=list)  # images recnet wrote on an earlier run

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    def take_inputs_without_jobs(self, found: Summary) -> None:
        """Takes over the inputs that gave no job in ``found``: those missing and those passed over."""
        self.missing, self.passed_over = found.missing, found.passed_over

    @property
    def failed(self) -> int:
        return self.count("failed") + len(self.missing)

    def as_dict(self) -> dict:
        return {
            "done": self.count("done"),
            "skipped": self.count("skipped"),
            "failed": self.failed,
            "not_run": self.count("not run"),
            "interrupted": self.interrupted,
            "passed_over": [str(path) for path in self.passed_over],
            "seconds": round(self.seconds, 3),
            "files": [
                {
                    "input": str(o.job.source),
                    "output": str(o.job.target),
                    "companions": [str(path) for path in o.job.companions],  # --save-mask, --raw...
                    "status": o.status,
                    "reason": o.reason,
                    "seconds": round(o.seconds, 3),
                    "megapixels": round(o.megapixels, 3),
                }
                for o in self.outcomes
            ]
            + [
                {
                    "input": m.input,
                    "output": None,
                    "companions": [],
                    "status": "failed",
                    "reason": m.reason,
                    "seconds": 0.0,
                    "megapixels": 0.0,
                }
                for m in self.missing
            ],
        }


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def visible_files(folder: Path, recursive: bool = False) -> list[Path]:
    """The files in ``folder`` (and with ``recursive`` in its sub-folders, linked ones too, each folder
    once), sorted, leaving out hidden files and everything in hidden folders (such as a report's
    ``.recnet-report/``); folders that cannot be read give nothing."""
    files: list[Path] = []
    walked: set[tuple[int, int] | Path] = set()
    for root, folders, names in os.walk(folder, followlinks=True):
        identity = file_identity(Path(root))
        if identity in walked:  # a link back to a folder above, or a second link to one
            folders.clear()
            continue
        walked.add(identity)
        # In name order, so that of two links to one folder the same is walked every time (--shard)
        folders[:] = sorted(name for name in folders if not name.startswith(".")) if recursive else []
        files.extend(Path(root, name) for name in names if not name.startswith("."))
    return sorted(path for path in files if path.is_file())


def find_sources(inputs: Sequence[str], recursive: bool = False) -> tuple[list[Source], list[Unmatched]]:
    """Expands files, folders and globs into images; also returns the inputs that gave none, and why."""
    sources: list[Source] = []
    missing: list[Unmatched] = []
    for text in inputs:
        path = Path(text)
        if not text:  # Path("") is the current folder
            found, reason = [], "an empty name is no file or folder"
        elif os.path.isdir(path):  # os.path's tests say False for a name too long; Path's raise
            files = visible_files(path, recursive)
            found = [Source(p, p.relative_to(path), from_folder=True) for p in files if is_image(p)]
            # Only then: the hint walks the sub-folders, a photo library's whole tree
            reason = "" if found else "no images in this folder" + folder_hint(path, files, recursive)
        elif os.path.exists(path):
            found = [Source(path, Path(path.name))]
        elif glob.has_magic(text):
            # recursive: ** matches any depth of sub-folders, with or without -r
            files = [p for p in sorted(map(Path, glob.glob(text, recursive=True))) if p.is_file()]
            base = pattern_base(path)
            found = [Source(p, pattern_relative(p, base), from_folder=True) for p in files if is_image(p)]
            reason = "no images match this pattern" + other_files(files)
        elif text == "-":
            found, reason = [], f"{NO_STANDARD_STREAMS}; save the photo to a file first"
        else:
            found, reason = [], "no such file or folder"
        if not found:
            missing.append(Unmatched(text, reason))
        sources.extend(found)
    return unique_sources(sources), missing


def pattern_base(pattern: Path) -> Path:
    """The folder a glob pattern starts from: its parts before the first with a wildcard."""
    fixed = []
    for part in pattern.parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed)


def pattern_relative(path: Path, base: Path) -> Path:
    """A pattern's match below the pattern's fixed start, which an output folder mirrors (its name alone
    where the pattern climbs with ``..``)."""
    relative = path.relative_to(base)
    return Path(path.name) if ".." in relative.parts else relative


def folder_hint(folder: Path, files: Sequence[Path], recursive: bool) -> str:
    """Why a folder gave no image: its images are in sub-folders, or its files are of other types."""
    if not recursive and images_below(folder):
        return " (its sub-folders have some: add --recursive)"
    return other_files(files)


def images_below(folder: Path) -> int:
    """The images in ``folder``'s sub-folders, at any depth (not those in the folder itself)."""
    return sum(is_image(path) and path.parent != folder for path in visible_files(folder, recursive=True))


def other_files(files: Sequence[Path]) -> str:
    """`` (3 other files: .nef, .txt; recnet reads ...)`` when ``files`` are there but none is an image."""
    counts = Counter(p.suffix.lower() or "no extension" for p in files if not p.name.startswith("."))
    if not counts:
        return ""
    total = sum(counts.values())
    kinds = ", ".join(kind for kind, _ in counts.most_common(3)) + (", ..." if len(counts) > 3 else "")
    return f" ({total} other file{'s' if total > 1 else ''}: {kinds}; {READABLE})"


def file_identity(path: Path) -> tuple[int, int] | Path:
    """What makes two names one file: its device and inode (a symbolic or a hard link shares them), or its
    resolved path where it cannot be read."""
    try:
        status = path.stat()
    except OSError:
        return path.resolve()
    return status.st_dev, status.st_ino


def unique_sources(sources: Iterable[Source]) -> list[Source]:
    """Each file once, under the first name it was given; a later different name for it (a symbolic or
    hard link) is kept among its ``aliases``."""
    first: dict[tuple[int, int] | Path, int] = {}
    unique: list[Source] = []
    for source in sources:
        key = file_identity(source.path)
        if key not in first:
            first[key] = len(unique)
            unique.append(source)
            continue
        kept = unique[first[key]]
        names = {os.path.abspath(path) for path in (kept.path, *kept.aliases)}
        if os.path.abspath(source.path) not in names:
            unique[first[key]] = replace(kept, aliases=(*kept.aliases, source.path))
    return unique


def side_path(target: Path, tag: str) -> Path:
    """A companion file beside an output: photo.jpg -> photo_<tag>.png."""
    return target.with_name(f"{target.stem}_{tag}.png")


def earlier_outputs(
    sources: Sequence[Source], output: str | os.PathLike[str] | None, suffix: str
) -> list[Source]:
    """The images found in folders or by patterns that recnet itself wrote, on an earlier run: those named
    as recnet names what it writes beside another image found there (photo_recnet.jpg, photo_mask.png,
    photo_recnet_mask.png or photo_explain.png beside photo.jpg; ``suffix`` is this run's), and those in
    an output folder inside the input folder. Files named one by one are never among them."""
    tags = ("", *(f"_{tag}" for tag in COMPANION_TAGS))
    endings = {name + tag for name in (suffix, CORRECT_SUFFIX, MASK_SUFFIX) for tag in tags if name + tag}
    endings.add(EXPLAIN_SUFFIX)
    stems = {(source.path.parent, source.path.stem) for source in sources}
    inner_output = Path(output).resolve() if output is not None and os.path.isdir(output) else None

    def looks_like_earlier_output(source: Source) -> bool:
        path = source.path
        # The folder (or pattern's fixed start) it was found in, ``relative`` being the rest of its path.
        root = Path(os.path.abspath(path)).parents[len(source.relative.parts) - 1].resolve()
        inside_output = inner_output is not None and inner_output in path.resolve().parents
        if inside_output and root in inner_output.parents:
            return True
        named_after = (path.stem[: -len(ending)] for ending in endings if path.stem.endswith(ending))
        return any((path.parent, stem) in stems for stem in named_after)

    return [source for source in sources if source.from_folder and looks_like_earlier_output(source)]


def names_folder(output: str | os.PathLike[str]) -> bool:
    """Whether -o names a folder whatever its extension: one that exists, or a name typed with a trailing
    slash (``fixed.jpg/``), as ``output`` keeps it when it is the text typed (a Path drops the slash)."""
    return os.path.basename(output) in ("", ".") or os.path.isdir(output)


def names_image_file(output: str | os.PathLike[str] | None) -> bool:
    """Whether -o names an image file: an image extension, and not a folder (see ``names_folder``)."""
    return output is not None and not names_folder(output) and Path(output).suffix.lower() in IMAGE_EXTENSIONS


def single_output_file(sources: Sequence[Source], output: str | os.PathLike[str] | None) -> bool:
    """Whether ``output`` is the output file itself: one file named as the input, -o naming an image."""
    return len(sources) == 1 and not sources[0].from_folder and names_image_file(output)


def misnamed_output_folder(sources: Sequence[Source], output: str | os.PathLike[str] | None) -> str | None:
    """Why -o cannot be the folder the outputs go in: named like an image file, while several images, or
    images from a folder or pattern, are written into a folder (an existing folder named like an image is
    used as it is); or a file (or device) that exists."""
    if output is None or single_output_file(sources, output) or not sources:
        return None
    if not names_image_file(output):
        if os.path.exists(output) and not os.path.isdir(output):
            return f"-o {output} is {file_kind(output)}, not a folder to put the outputs in"
        return None
    given = f"the inputs give {len(sources)} images" if len(sources) > 1 else "a folder or pattern is given"
    return (
        f"-o {output} names one image file, but {given}: name a folder, such as -o "
        f"{Path(output).with_suffix('')}"
    )


def output_taken_as_folder(sources: Sequence[Source], output: str | os.PathLike[str] | None) -> str | None:
    """For one photo and an -o that does not exist, with an extension but not an image's (a typo such as
    fixed.jgp) and no trailing slash (which says folder): that it is taken as a folder; else None."""
    if output is None or names_folder(output) or os.path.exists(output) or names_image_file(output):
        return None
    suffix = Path(output).suffix
    if not suffix or len(sources) != 1 or sources[0].from_folder:
        return None
    return f"-o {output}: {suffix} is not an image extension, so it is taken as a folder"


def plan_jobs(
    sources: Sequence[Source],
    output: str | os.PathLike[str] | None,
    *,
    suffix: str,
    extension: str | None = None,
    companions: Callable[[Path], tuple[Path, ...]] = lambda target: (),
    unmarked: Collection[Path] = (),
) -> list[Job]:
    """Names each source's output; marks jobs that would overwrite an input or another job's output, and
    outputs that are among ``unmarked`` (images passed over as recnet's that it did not write).

    One file and an ``output`` with an image extension (and no trailing slash): that file. Otherwise
    ``output`` is a folder that mirrors the inputs' sub-folders. Without ``output``, and where it puts an
    output in its input's own folder: ``<stem><suffix><ext>`` beside each input.
    """
    single_target = single_output_file(sources, output)
    inputs = {s.path.resolve() for s in sources}
    claims = Claims()
    unmarked_keys = {path.resolve() for path in unmarked}
    jobs = []
    for source in sources:
        if single_target:
            target = Path(output)
        else:
            ext = extension or source.path.suffix
            target = source.path.with_name(f"{source.path.stem}{suffix}{ext}")
            if output is not None:
                mirrored = Path(output, source.relative.with_name(f"{source.relative.stem}{ext}"))
                if mirrored.parent.resolve() != source.path.parent.resolve():
                    target = mirrored
        outputs = (target, *companions(target))
        problems = (
            conversion_needed(source.path),
            unread_format(source.path),
            input_kind_problem(source.path),
            unwritable_format(target),
            *(output_path_problem(path) for path in outputs),
            *(target_problem(path, source.path, inputs, claims) for path in outputs),
        )
        kept = tuple(path for path in outputs if path.resolve() in unmarked_keys) if unmarked_keys else ()
        jobs.append(Job(source.path, target, next((p for p in problems if p), None), outputs[1:], kept))
    return jobs


def unread_format(source: Path) -> str | None:
    """Why a file named as an input is not read, going by its name: an image format recnet does not read
    (.gif, .ico), so that it is not told to choose an output format first."""
    if not names_unsupported_image(source):
        return None
    return f"{source.suffix} files are not read ({READABLE}): convert it first"


def input_kind_problem(source: Path) -> str | None:
    """Why an input is no photo to read, by its kind: a device (/dev/null) or a FIFO; said before what its
    output's name lacks (``--ext`` for a name without an extension)."""
    try:
        return special_input(os.stat(source).st_mode)
    except (OSError, ValueError):  # said when it is read
        return None


def unwritable_format(target: Path) -> str | None:
    if target.suffix.lower() in HEIF_EXTENSIONS and (heif_broken := enable_heif()):
        return f"cannot write HEIF: {heif_broken}, or choose another format with --ext ({OUTPUT_CHOICES})"
    if target.suffix.lower() in IMAGE_EXTENSIONS:
        return None
    what = f"{target.suffix} files" if target.suffix else "a file without an extension"
    return f"cannot write {what}: choose the output format with --ext ({OUTPUT_CHOICES})"


def output_path_problem(path: Path) -> str | None:
    """Why nothing can be written at ``path`` (a folder or a device there, a name too long), or None."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there yet (see ``folder_problem``)
        return None
    except OSError as exc:
        return f"output {path}: {describe_os_error(exc)}"
    if stat.S_ISDIR(mode):
        return f"output {path} is a folder"
    special = special_file_kind(mode)
    return None if special is None else f"output {path} is {special}, not a file; refusing to replace it"


@dataclass
class Claims:
    """The outputs of the jobs planned so far, and the folders they go in: each with the output (in the
    folder) and its input."""

    files: dict[Path, tuple[Path, Path]] = field(default_factory=dict)
    folders: dict[Path, tuple[Path, Path]] = field(default_factory=dict)


def target_problem(target: Path, source: Path, inputs: set[Path], claims: Claims) -> str | None:
    """Why ``target`` cannot be written: it is an input, or another job's output, or the folder of one, or
    inside one; else None, and it is claimed for ``source``."""
    key = target.resolve()
    if key in inputs:
        return f"output {target} is an input file; refusing to overwrite it"
    if key in claims.files:
        return f"output {target} would also be written for {claims.files[key][1]}"
    if key in claims.folders:
        inside, other = claims.folders[key]
        return f"output {target} would also be the folder of {inside}, the output of {other}"
    if outer := next((claims.files[folder] for folder in key.parents if folder in claims.files), None):
        return f"output {target} would go in {outer[0]}, which is the output of {outer[1]}"
    claims.files[key] = (target, source)
    for folder in key.parents:
        claims.folders.setdefault(folder, (target, source))
    return None


@dataclass(frozen=True)
class Stages:
    """A job in three steps. Reading the next inputs and writing the last outputs run in background
    threads, overlapping the compute in between (decoding and encoding photos take as long as a GPU's
    forward pass). Compute keeps the device busy and nothing else: host work that can wait for the
    write (finishing a correction) belongs there."""

    read: Callable[[Job], Any]
    compute: Callable[[Job, Any], Any]  # (job, what read returned)
    write: Callable[[Job, Any, Any], float]  # (job, read, computed) -> megapixels processed
    depth: int = 1  # inputs the lane reads ahead and outputs it writes behind (see ``run_lane``)


class JobQueue:
    """Hands jobs out one at a time to any number of lanes, until it is empty or closed."""

    def __init__(self, jobs: Iterable[Job]) -> None:
        self._jobs = iter(jobs)
        self._lock = threading.Lock()
        self._closed = False

    def take(self) -> Job | None:
        with self._lock:
            return None if self._closed else next(self._jobs, None)

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True


def run_jobs(
    jobs: Sequence[Job],
    lanes: Sequence[Stages],
    *,
    overwrite: bool = False,
    skip_existing: bool = False,
    on_outcome: Callable[[Outcome], None] = lambda outcome: None,
    handled: tuple[type[Exception], ...] = (),
) -> Summary:
    """Runs every job through one of ``lanes``; one failure never stops the batch.

    A lane is one device with its own model. Lanes take jobs from one queue, so a faster device takes
    more of them; the summary lists the outcomes in the order of ``jobs``. Each lane reads ahead and writes
    behind as far as its ``depth`` says (more overlap, more memory; see ``run_lane``). An error
    that every later job would meet too (a full disk) stops the batch: the jobs not started are "not run".
    An output that appears while the batch runs counts as one that was there before: the writers keep it
    without ``overwrite`` (OutputExistsError), and the job is failed, or skipped, as ``existing_output`` says.
    """
    summary = Summary()
    started = time.perf_counter()
    lock = threading.Lock()
    stopped_by: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        with lock:
            summary.outcomes.append(outcome)
            on_outcome(outcome)
            if outcome.stops_batch and not stopped_by:
                stopped_by.append(outcome)
                queue.close()

    runnable = []
    for job in jobs:
        refused = refusal(job, overwrite, skip_existing) or output_folder_problem(job)
        if refused is None:
            runnable.append(job)
        else:
            record(refused)
    queue = JobQueue(runnable)
    if len(lanes) == 1:
        run_lane(lanes[0], queue, record, handled, skip_existing)
    else:
        with ThreadPoolExecutor(len(lanes), "recnet-lane") as pool:
            futures = [pool.submit(run_lane, lane, queue, record, handled, skip_existing) for lane in lanes]
            try:
                for future in as_completed(futures):
                    future.result()
            finally:
                queue.close()  # on an unexpected error or Ctrl-C, the other lanes stop after their job
    if stopped_by:
        ran = {outcome.job for outcome in summary.outcomes}
        reason = f"the batch stopped: {stopped_by[0].reason}"
        for job in runnable:
            if job not in ran:
                record(Outcome(job, "not run", reason))
    order = {job: index for index, job in enumerate(jobs)}
    summary.outcomes.sort(key=lambda outcome: order[outcome.job])
    summary.seconds = time.perf_counter() - started
    return summary


def run_lane(
    stages: Stages,
    queue: JobQueue,
    record: Callable[[Outcome], None],
    handled: tuple[type[Exception], ...],
    skip_existing: bool,
) -> None:
    """Runs jobs from ``queue`` until it is empty, reading up to ``stages.depth`` inputs ahead and writing
    up to that many outputs behind in background threads (one per job in flight), so memory stays bounded.
    Outcomes are recorded in the order the lane took the jobs, each as soon as its write and the earlier
    ones have ended (in the writer's thread), not when the next photo's compute has."""
    depth = stages.depth
    reads: deque[tuple[Job, Future]] = deque()
    writes: deque[Future] = deque()
    recorded = threading.Event()  # the latest write's outcome is recorded (or the write raised)
    recorded.set()

    def write_and_record(
        job: Job, data: Any, computed: Any, started: float, earlier: threading.Event, own: threading.Event
    ) -> None:
        """Writes, then records the outcome once the earlier write's is recorded; sets ``own`` after."""
        try:
            outcome = finished(
                job, started, partial(stages.write, job, data, computed), handled, skip_existing
            )
            earlier.wait()  # at most ``depth`` writes run, each in its own thread
            record(outcome)
        finally:
            own.set()

    def settle_writes(keep: int) -> None:
        while len(writes) > keep:
            writes.popleft().result()  # raises what the outcome does not cover (an unexpected error)

    with (
        ThreadPoolExecutor(depth, "recnet-read") as reader,
        ThreadPoolExecutor(depth, "recnet-write") as writer,
    ):

        def read_ahead() -> None:
            while len(reads) < depth and (job := queue.take()) is not None:
                reads.append((job, reader.submit(stages.read, job)))

        try:
            read_ahead()
            while reads and not queue.closed:
                job, read = reads.popleft()
                read_ahead()
                job_started = time.perf_counter()
                try:
                    data = read.result()
                    computed = stages.compute(job, data)
                except handled as exc:
                    settle_writes(keep=0)
                    record(failure(job, exc, job_started))
                    continue
                settle_writes(keep=depth - 1)
                earlier, recorded = recorded, threading.Event()
                writes.append(
                    writer.submit(write_and_record, job, data, computed, job_started, earlier, recorded)
                )
        finally:
            settle_writes(keep=0)  # also on Ctrl-C or an unexpected error: finished photos are written


def refusal(job: Job, overwrite: bool, skip_existing: bool) -> Outcome | None:
    """The outcome of a job that must not run (refused, or its output exists), else None; touches nothing.

    Commands write a job's companions before its target, so a target that exists marks a finished job,
    which ``skip_existing`` passes over. Companions without their target may be what a run that stopped
    part way left, or a user's files: only ``overwrite`` replaces them, and not an image found among the
    inputs that recnet did not write (``Job.unmarked``).
    """
    if job.problem:
        return Outcome(job, "failed", job.problem)
    existing = [path for path in job.outputs if os.path.lexists(path)]  # a dangling link is kept too
    if not existing or (overwrite and not job.unmarked):
        return None
    if overwrite:
        return Outcome(job, "failed", f"{unmarked_reason(job.unmarked[0])}: not replacing it; {ELSEWHERE}")
    return existing_output(job, existing[0], skip_existing)


ELSEWHERE = "choose another -o, or move it away"


def unmarked_reason(path: Path) -> str:
    """Why an output that is an image found among the inputs, without recnet's mark, is not replaced."""
    mark = "a photo of yours, or a copy: it lacks recnet's mark"
    return f"output {path} exists, and recnet did not write it ({mark})"


def existing_output(job: Job, path: Path, skip_existing: bool) -> Outcome:
    """The outcome of a job whose output ``path`` exists and is kept (see ``refusal``)."""
    if path in job.unmarked and not skip_existing:
        return Outcome(job, "failed", f"{unmarked_reason(path)}: use --skip-existing, {ELSEWHERE}")
    if path != job.target:
        return Outcome(job, "failed", f"output {path} exists, but not {job.target} (use --overwrite)")
    if skip_existing:
        lacking = tuple(companion for companion in job.companions if not os.path.lexists(companion))
        reason = f"output exists, without {', '.join(map(str, lacking))}" if lacking else "output exists"
        return Outcome(job, "skipped", reason, lacking=lacking)
    return Outcome(job, "failed", f"output {path} exists (use --overwrite or --skip-existing)")


def output_folder_problem(job: Job, *, create: bool = True) -> Outcome | None:
    """The failed outcome when the job's output folder cannot be made or written in (see
    ``folder_problem``), found before the photo is corrected for nothing."""
    problem = folder_problem(job.target.parent, create=create)
    return Outcome(job, "failed", problem) if problem else None


def folder_problem(folder: Path, *, create: bool) -> str | None:
    """Why ``folder`` cannot take outputs (a file in the way, a read-only card or share, no permission), or
    None; with ``create``, makes it and its parents first, else checks the nearest one that exists."""
    if os.path.islink(folder) and not os.path.exists(folder):
        return f"cannot create folder {folder}: it is a link to nothing"
    nearest = nearest_existing(folder)
    if not nearest.is_dir():
        return f"cannot create folder {folder}: {nearest} is {file_kind(nearest)}"
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create folder {folder}: {describe_os_error(exc)}"
        nearest = folder
    if not os.access(nearest, os.W_OK | os.X_OK):
        read_only = hasattr(os, "statvfs") and os.statvfs(nearest).f_flag & os.ST_RDONLY
        why = "read-only file system" if read_only else "permission denied"
        return f"cannot {'write in' if nearest == folder else 'create'} folder {folder}: {why}"
    return None


def plan_outcomes(jobs: Sequence[Job], overwrite: bool, skip_existing: bool) -> Summary:
    """What a run would do with ``jobs``, without doing it or reading a photo: "planned", "skipped" or
    "failed" each."""
    return Summary(
        [
            refusal(job, overwrite, skip_existing)
            or output_folder_problem(job, create=False)
            or input_outcome(job)
            or Outcome(job, "planned")
            for job in jobs
        ]
    )


def input_outcome(job: Job) -> Outcome | None:
    """The failed outcome of a job whose input the file system says cannot be read (see
    ``input_file_problem``), else None."""
    problem = input_file_problem(job.source)
    return Outcome(job, "failed", problem) if problem else None


def interrupted_summary(jobs: Sequence[Job], outcomes: Iterable[Outcome], seconds: float) -> Summary:
    """The summary of a batch stopped part way: ``outcomes`` in the order of ``jobs``, each job without
    one "not run"."""
    by_job = {outcome.job: outcome for outcome in outcomes}
    ordered = [by_job.get(job) or Outcome(job, "not run", "interrupted") for job in jobs]
    return Summary(ordered, seconds=seconds, interrupted=True)


def finished(
    job: Job,
    started: float,
    write: Callable[[], float],
    handled: tuple[type[Exception], ...],
    skip_existing: bool,
) -> Outcome:
    """The outcome of a job once its last step, ``write``, returns the megapixels processed (or raises); an
    output that turned out to exist is as one that existed before the batch (``existing_output``)."""
    try:
        processed = write()
    except OutputExistsError as exc:  # made by someone else while the batch ran
        return existing_output(job, exc.path, skip_existing)
    except handled as exc:
        return failure(job, exc, started)
    return Outcome(job, "done", "", time.perf_counter() - started, processed)


def failure(job: Job, error: Exception, started: float) -> Outcome:
    reason = failure_reason(error, job.source)
    return Outcome(job, "failed", reason, time.perf_counter() - started, stops_batch=stops_writing(error))


def failure_reason(error: Exception, source: Path) -> str:
    """The error's message, less the input's name when it leads the message (reports name the input)."""
    path, reason = getattr(error, "path", None), getattr(error, "reason", None)
    if path is not None and reason is not None and Path(path) == source:
        return str(reason)
    return str(error)


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' (1 <= K <= N) as (K, N); raises ValueError with a one-line reason."""
    part, _, total = text.partition("/")
    # ASCII digits only: int() takes a full-width one, which a shard number typed by mistake should not be
    digits = all(number.isascii() and number.isdigit() for number in (part, total))
    if not (digits and 1 <= int(part) <= int(total)):
        raise ValueError(f"--shard {text}: use K/N with 1 <= K <= N, e.g. 2/8")
    return int(part), int(total)


def take_shard(items: Sequence[T], shard: tuple[int, int]) -> list[T]:
    """Every N-th item starting at the K-th: N machines given the same inputs split them with no overlap."""
    part, total = shard
    return list(items[part - 1 :: total])
