"""Running a batch's jobs and counting their outcomes: lanes that read ahead and write behind, one per
device, outputs kept or refused, and the summary (inputs are found by ``inputs``, outputs named by
``outputs``)."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from recnet_cli.files import input_file_problem
from recnet_cli.hostmemory import available_host_memory
from recnet_cli.imaging import OutputExistsError, kept_from_overwrite, written_by_recnet
from recnet_cli.inputs import Unmatched
from recnet_cli.outputs import Job, folder_problem
from recnet_cli.wording import counted, listed

# Write errors that every later write would meet too (disk full, over quota, read-only): they stop a batch.
BATCH_STOPPING_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)})


def stops_writing(error: BaseException) -> bool:
    """Whether every later write would fail as this one did (``BATCH_STOPPING_ERRNOS``)."""
    return getattr(error, "errno", None) in BATCH_STOPPING_ERRNOS


# Photos a GPU lane reads ahead and writes behind, one thread and about one core each (a CPU lane: one).
# On this project's 2-core EPYC one thread takes 0.15-0.23 s to decode a 12 MP JPEG and 0.34 s to finish
# its correction (strength, blend) and encode and write it, 0.6 s with the photo's colours (the default),
# against the 60 ms an H200 is to take for the model; so a lane wants six, where the cores allow.
GPU_LANE_DEPTHS = range(3, 7)
# Host memory that a photo read ahead and one written behind hold together on a GPU lane, per pixel:
# float32 RGB when decoded (12 B/px, 15 while decoding), and up to 55 while being finished (the photo, the
# model's output and mask, the colour kept from the photo (12 B/px more at its peak), the blend, the 8-bit
# copy) as tracemalloc counts them for a 24 MP JPEG, plus the encoder's buffers, plus up to 16 more
# because the output and mask (16 B/px) are copied back into pinned memory, which PyTorch's caching host
# allocator hands out in powers of two. (A 16-bit output takes about 12 more: the share below leaves
# room.) A lane holds that for each step of its depth, and one more for the photo the GPU is on.
IN_FLIGHT_BYTES_PER_PIXEL = 92
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


# "not run": after an error that stops the batch, or an interruption; "planned": in a dry run
Status = Literal["done", "skipped", "failed", "not run", "planned"]


@dataclass
class Outcome:
    job: Job
    status: Status
    reason: str = ""
    seconds: float = 0.0
    megapixels: float = 0.0
    stops_batch: bool = False  # failed with an error that every later job would meet too (a full disk)
    lacking: tuple[Path, ...] = ()  # skipped: the companions its kept output was written without


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    missing: list[Unmatched] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False  # Ctrl-C or SIGTERM stopped the batch
    passed_over: list[Path] = field(default_factory=list)  # images recnet wrote on an earlier run
    left_out: list[Path] = field(default_factory=list)  # photo files it cannot read (RAW) in folders
    overwrite: bool = False  # the batch ran with --overwrite (see ``how_to_go_on``)

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    def take_inputs_without_jobs(self, found: Summary) -> None:
        """Takes over the inputs that gave no job in ``found``: those missing, passed over and left out."""
        self.missing, self.passed_over, self.left_out = found.missing, found.passed_over, found.left_out

    @property
    def failed(self) -> int:
        return self.count("failed") + len(self.missing)

    def how_to_go_on(self) -> str:
        """How to finish a batch that stopped part way: --skip-existing (in place of its --overwrite); or,
        where photos it did not finish still have outputs from before it (an --overwrite run's), the same
        command again, since --skip-existing would keep those as they were."""
        unfinished = (o for o in self.outcomes if o.status == "not run" or o.stops_batch)
        if earlier := [str(o.job.target) for o in unfinished if os.path.lexists(o.job.target)]:
            were = "as it was" if len(earlier) == 1 else "as they were"
            kept = f"{counted(len(earlier), 'output')} from before it {were}: {listed(earlier)}"
            return f"run the same command again to do the rest (--skip-existing would keep {kept})"
        instead = " in place of --overwrite" if self.overwrite else ""
        return f"run the same command with --skip-existing{instead} to do the rest"

    def as_dict(self) -> dict:
        return {
            "done": self.count("done"),
            "skipped": self.count("skipped"),
            "failed": self.failed,
            "not_run": self.count("not run"),
            "interrupted": self.interrupted,
            "passed_over": [str(path) for path in self.passed_over],
            "left_out": [str(path) for path in self.left_out],
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


@dataclass(frozen=True)
class Lane:
    """One device's way through the jobs, each job in three steps. Reading the next inputs and writing the
    last outputs run in background threads, overlapping the compute in between (decoding and encoding
    photos take as long as a GPU's forward pass). Compute keeps the device busy and nothing else: host
    work that can wait for the write (finishing a correction) belongs there."""

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
    lanes: Sequence[Lane],
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
    A job's outputs and folder are looked at again before its photo is corrected: an output another run
    wrote meanwhile, or a folder made read-only, fails or skips the job without correcting the photo for
    nothing, and a folder removed is made again.
    An output that appears while the batch runs counts as one that was there before: the writers keep it
    without ``overwrite`` (OutputExistsError), and the job is failed, or skipped, as ``existing_output`` says;
    with ``overwrite``, one that recnet did not write is looked for again just before the job writes.
    """
    summary = Summary(overwrite=overwrite)
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
    if lanes:
        settings = dict(record=record, handled=handled, overwrite=overwrite, skip_existing=skip_existing)
        run_lanes(lanes, partial(run_lane, queue=queue, **settings), queue)
    else:  # no model was loaded, no job being planned
        for job in runnable:  # an input that cannot be read fails as planned; one runnable since, not run
            record(
                input_outcome(job)
                or Outcome(job, "not run", "its output was removed as the batch began: run the command again")
            )
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


def run_lanes(lanes: Sequence[Lane], run: Callable[[Lane], None], queue: JobQueue) -> None:
    """Runs the queue's jobs through ``lanes`` (``run`` runs one): one in this thread, several in threads of
    their own."""
    if len(lanes) == 1:
        run(lanes[0])
        return
    with ThreadPoolExecutor(len(lanes), "recnet-lane") as pool:
        futures = [pool.submit(run, lane) for lane in lanes]
        try:
            for future in as_completed(futures):
                future.result()
        finally:
            queue.close()  # on an unexpected error or Ctrl-C, the other lanes stop after their job


def run_lane(
    stages: Lane,
    queue: JobQueue,
    record: Callable[[Outcome], None],
    handled: tuple[type[Exception], ...],
    overwrite: bool,
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
            write = partial(stages.write, job, data, computed)
            outcome = finished(job, started, write, handled, overwrite, skip_existing)
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
                # Looked at again: an output another run wrote meanwhile (two runs with --skip-existing on
                # one folder corrected each photo twice), a folder made read-only or removed (made again)
                refused = refusal(job, overwrite, skip_existing) or output_folder_problem(job)
                if refused is not None:
                    settle_writes(keep=0)
                    record(refused)
                    continue
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
    part way left, which ``skip_existing`` writes again where recnet's mark tells them (see
    ``replaces_companions``), or a user's files: only ``overwrite`` replaces those. Even ``overwrite``
    replaces only what recnet wrote, and the file -o names (see ``foreign``).
    """
    if job.problem:
        return Outcome(job, "failed", job.problem)
    existing = [path for path in job.outputs if os.path.lexists(path)]  # a dangling link is kept too
    if not existing:
        return None
    if skip_existing and job.target not in existing and all(map(left_by_recnet, existing)):
        return None  # pictures recnet wrote, as it left them, for a photo it did not write
    if not overwrite:
        return existing_output(job, existing[0], skip_existing)
    for path in existing:
        if why := foreign(job, path):
            return Outcome(job, "failed", f"output {path} exists, and {why}: not replacing it; {ELSEWHERE}")
    return None


ELSEWHERE = "move it away, or write elsewhere (-o, --suffix)"


def left_by_recnet(path: Path) -> bool:
    """Whether ``path`` is a file recnet wrote, as it left it: its mark tells (``written_by_recnet``), and
    nothing keeps it even from --overwrite (a link, a read-only file)."""
    return written_by_recnet(path) is True and kept_from_overwrite(path) is None


def replaces_companions(overwrite: bool, skip_existing: bool) -> bool:
    """Whether a job that runs writes over its companions (the pictures beside its photo) where they exist:
    with ``overwrite``, and with ``skip_existing``, which runs a job with companions in place only where
    they are what recnet left of it (see ``refusal``)."""
    return overwrite or skip_existing


def foreign(job: Job, path: Path) -> str | None:
    """Why ``path``, an output of ``job`` that exists, is one --overwrite must not replace
    (``kept_from_overwrite``: a file of the user's, a link, one made read-only); None for recnet's own, and
    for the file -o names."""
    return None if job.named and path == job.target else kept_from_overwrite(path)


def unattributable_outputs(jobs: list[Job]) -> list[Path]:
    """The existing outputs --overwrite would replace without knowing whether recnet wrote them
    (``unattributable``), but for the file -o names."""
    return [
        path
        for job in jobs
        if job.problem is None
        for path in job.outputs
        if not (job.named and path == job.target) and unattributable(path)
    ]


def unattributable(path: Path) -> bool:
    """Whether ``path`` is a file --overwrite replaces without knowing whether recnet wrote it: where no marks
    can be kept or read (``written_by_recnet`` is None), any but a link or a read-only file."""
    return os.path.isfile(path) and written_by_recnet(path) is None and kept_from_overwrite(path) is None


def existing_output(job: Job, path: Path, skip_existing: bool) -> Outcome:
    """The outcome of a job whose output ``path`` exists and is kept (see ``refusal``)."""
    why = foreign(job, path)
    if path == job.target and skip_existing:
        # a photo of the user's is not one that --overwrite would write again with the companions lacking
        lacking = () if why else tuple(path for path in job.companions if not os.path.lexists(path))
        reason = f"output exists, without {', '.join(map(str, lacking))}" if lacking else "output exists"
        return Outcome(job, "skipped", reason, lacking=lacking)
    if why:
        remedy = "use --skip-existing, " if path == job.target else ""
        return Outcome(job, "failed", f"output {path} exists, and {why}: {remedy}{ELSEWHERE}")
    if path != job.target:
        return Outcome(job, "failed", f"output {path} exists, but not {job.target} (use --overwrite)")
    return Outcome(job, "failed", f"output {path} exists (use --overwrite or --skip-existing)")


def output_folder_problem(job: Job, *, create: bool = True) -> Outcome | None:
    """The failed outcome when the job's output folder cannot be made or written in (see
    ``folder_problem``), found before the photo is corrected for nothing."""
    problem = folder_problem(job.target.parent, create=create)
    return Outcome(job, "failed", problem) if problem else None


def plan_outcomes(jobs: Sequence[Job], overwrite: bool, skip_existing: bool) -> Summary:
    """What a run would do with ``jobs``, without doing it or reading a photo: "planned", "skipped" or
    "failed" each."""
    return Summary([plan_outcome(job, overwrite, skip_existing) for job in jobs])


def plan_outcome(job: Job, overwrite: bool, skip_existing: bool) -> Outcome:
    """What a run would do with one job (see ``plan_outcomes``); a planned one names the files there that
    it would replace."""
    return (
        refusal(job, overwrite, skip_existing)
        or output_folder_problem(job, create=False)
        or input_outcome(job)
        or Outcome(job, "planned", replaced_line([path for path in job.outputs if os.path.lexists(path)]))
    )


def replaced_line(paths: Sequence[Path]) -> str:
    """``replaces out/a.jpg``: what a planned job would write over; empty where it writes only new files."""
    return f"replaces {', '.join(map(str, paths))}" if paths else ""


def input_outcome(job: Job) -> Outcome | None:
    """The failed outcome of a job whose input the file system says cannot be read (see
    ``input_file_problem``), else None."""
    problem = input_file_problem(job.source)
    return Outcome(job, "failed", problem) if problem else None


def interrupted_summary(
    jobs: Sequence[Job], outcomes: Iterable[Outcome], seconds: float, overwrite: bool = False
) -> Summary:
    """The summary of a batch (run with ``overwrite`` or not) stopped part way: ``outcomes`` in the order of
    ``jobs``, each job without one "not run"."""
    by_job = {outcome.job: outcome for outcome in outcomes}
    ordered = [by_job.get(job) or Outcome(job, "not run", "interrupted") for job in jobs]
    return Summary(ordered, seconds=seconds, interrupted=True, overwrite=overwrite)


def finished(
    job: Job,
    started: float,
    write: Callable[[], float],
    handled: tuple[type[Exception], ...],
    overwrite: bool,
    skip_existing: bool,
) -> Outcome:
    """The outcome of a job once its last step, ``write``, returns the megapixels processed (or raises); an
    output that turned out to exist is as one that existed before the batch (see ``refusal``)."""
    # A file of the user's may have been saved at an output since the batch started
    if replaces_companions(overwrite, skip_existing) and (kept := refusal(job, overwrite, skip_existing)):
        return kept
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
