"""Times a folder of photos through `recnet correct`, against the JPEG codec alone and the model alone.

Makes N JPEGs of the chosen size (the example photos, enlarged), then measures, in images per second:
- codec: decoding each photo and encoding and writing the result, with metadata, one after another
  (the command's writer threads also finish each correction: its strength and blend, and on a CPU or
  for a photo in tiles its colours);
- host: the command's host side alone, as a GPU lane runs it on this machine: decoding, finishing each
  correction and writing it, several photos at once in threads, with no model (how fast a GPU batch
  could go here if the GPU took no time); on a GPU, also with a compute step that only waits the
  model's time a photo, the GIL let go: how fast the lane could go if launching the model cost the host
  nothing;
- model: the model alone on decoded pixels (what the command's compute thread does: on a GPU, with the
  photo's colours given there);
- pipeline: the command's stages (read, model, finish and write) in this process, as a lane runs them,
  each timed: the compute thread's time in the model, waiting for reads and idle; each photo's reading,
  finishing and writing; on a GPU, its time on each photo and idle between photos (CUDA events), and
  how often PyTorch's pinned host memory pool grew, and what that cost (where PyTorch counts it);
- recnet correct: the whole command on the folder (its batch time, without loading the model), run first.
When reading and writing overlap the compute, the command runs near the slower of codec and model,
not at their sum; on a GPU, where each lane decodes and encodes several photos at once (threads), it
can beat the codec's one-photo-at-a-time figure. Writes benchmarks/results/folder-<device>.md and .json.

    python benchmarks/bench_folder.py --device cuda --mp 12 --count 24
    python benchmarks/bench_folder.py --device cpu --mp 2 --count 6
    python benchmarks/bench_folder.py --device cuda --fused --name fused-

On a GPU the command lagged the model (1.5x its time on an H200 on 2026-12-04). The likeliest cause: the
compute thread's kernel launches, hundreds a photo in the eager path, each take the GIL, which Pillow's
JPEG encoder held in the writer threads throughout each photo (``bench_gil.py`` measures it; JPEGs are
encoded by OpenCV since). ``--fused`` launches far fewer kernels, and ``--switch-interval S`` runs the
command and the pipeline with Python's GIL switch interval at S seconds (5 ms by default), to tell what
remains; the pipeline's timings say where the time goes (a starved GPU, a slow compute thread).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import torch
from bench_inference import EXAMPLE_PHOTOS, add_name_option, device_description, synchronize, write_tables

from recnet_cli.batch import Lane, gpu_lane_depth, run_jobs
from recnet_cli.devices import pick_devices, pick_dtype
from recnet_cli.engine import HOST, Corrector, PendingCorrection, correctors_for
from recnet_cli.imaging import Photo, read_photo, write_photo
from recnet_cli.outputs import Job
from recnet_cli.weights import load_model, strength_calibration


def make_photos(folder: Path, count: int, megapixels: float) -> list[Path]:
    """``count`` JPEGs of about ``megapixels``, enlarged from the example photos (EXIF-free copies)."""
    examples = sorted(EXAMPLE_PHOTOS.glob("*.jpg"))
    paths = []
    for index in range(count):
        image = cv2.imread(str(examples[index % len(examples)]))
        scale = math.sqrt(megapixels * 1e6 / (image.shape[0] * image.shape[1]))
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        path = folder / f"photo-{index:03d}.jpg"
        cv2.imwrite(
            str(path), cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), [cv2.IMWRITE_JPEG_QUALITY, 92]
        )
        paths.append(path)
    return paths


def codec_seconds(paths: list[Path], scratch: Path) -> float:
    """Decoding, then encoding and writing each photo as the command does, without the model."""
    start = time.perf_counter()
    for path in paths:
        photo = read_photo(path)
        write_photo(scratch / path.name, photo.pixels, like=photo, quality=95)
    return time.perf_counter() - start


def host_corrector() -> Corrector:
    """The bundled model's corrector in host memory, with ``--strength auto`` and the photo's colours: what
    finishes the stand-in corrections (``stand_in_correction``) as the command finishes its own."""
    loaded = load_model(None)
    calibration = strength_calibration(loaded)
    return Corrector(loaded.model, HOST, strength="auto", calibration=calibration, keep_colour=True)


def stand_in_correction(corrector: Corrector, photo: Photo) -> PendingCorrection:
    """A correction of ``photo`` with the photo standing in for the model's output (and its green channel
    for the mask), in the photo's colours already, as a GPU puts a whole image in them before the copy back:
    finishing it is the host's same work. The photo is copied, as a GPU lane's compute thread copies each
    photo into pinned memory."""
    pixels = torch.from_numpy(photo.pixels.copy())
    return PendingCorrection(
        corrector, photo.pixels, pixels, pixels[..., 1].contiguous(), colour_kept_on_device=True
    )


def host_seconds(paths: list[Path], scratch: Path, depth: int, model_wait: float = 0.0) -> float:
    """The command's host side alone, as a GPU lane runs it on whole images: ``depth`` photos read ahead and
    written behind in threads, each correction finished (its strength under ``--strength auto``, the blend;
    its colours came from the GPU) and written as the command does. Each photo stands in for its model
    output: the host's work is the same. With ``model_wait`` the compute step first waits that many seconds
    with the GIL let go, as the compute thread waits for a GPU's forward, but for launching it."""
    corrector = host_corrector()

    def compute(job: Job, photo: Photo) -> PendingCorrection:
        time.sleep(model_wait)
        return stand_in_correction(corrector, photo)

    def write(job: Job, photo: Photo, pending: PendingCorrection) -> float:
        write_photo(job.target, pending.result().image, like=photo, quality=95)
        return photo.megapixels

    jobs = [Job(path, scratch / path.name) for path in paths]
    start = time.perf_counter()
    summary = run_jobs(jobs, [Lane(lambda job: read_photo(job.source), compute, write, depth)])
    if summary.failed:
        raise SystemExit(f"the host stage failed: {summary.outcomes}")
    return time.perf_counter() - start


def bench_corrector(args: argparse.Namespace) -> Corrector:
    """The command's corrector on the first device of ``--device`` (what one device does), with its
    defaults ``--strength auto`` and ``--keep-colour``."""
    device = pick_devices(args.device)[0]
    loaded = load_model(None)
    (corrector,) = correctors_for(
        loaded.model,
        [device],
        [pick_dtype(args.precision, device)],
        "auto" if args.tile == "auto" else int(args.tile),
        strength="auto",
        fused=args.fused,
        calibration=strength_calibration(loaded),
        keep_colour=True,
    )
    return corrector


def model_seconds(paths: list[Path], args: argparse.Namespace) -> float:
    """The model alone, on decoded pixels, after one warm-up photo: what the command's compute thread
    does (``Corrector.start``: on a GPU, with the photo's colours given there to a whole image); the
    strength and blend, and on a CPU the colours, happen in its writer threads."""
    corrector = bench_corrector(args)
    photos = [read_photo(path).pixels for path in paths]
    corrector.correct(photos[0])
    synchronize(corrector.device)
    start = time.perf_counter()
    for pixels in photos:
        corrector.start(pixels)
    synchronize(corrector.device)
    return time.perf_counter() - start


@dataclass
class Trace:
    """When each stage of a pipeline ran, in ``time.perf_counter`` seconds: each photo's read (by its
    path), the compute thread's ``Corrector.start`` calls in order, the writer threads' wait for and
    finishing of each correction, and their writing; on a GPU, events recorded before and after each
    photo's queued work (the upload, the model, the copies back)."""

    reads: dict[Path, tuple[float, float]] = field(default_factory=dict)
    computes: list[tuple[Path, float, float]] = field(default_factory=list)
    finishes: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)
    gpu_marks: list[tuple[torch.cuda.Event, torch.cuda.Event]] = field(default_factory=list)


def traced_pipeline(paths: list[Path], scratch: Path, args: argparse.Namespace, depth: int) -> dict:
    """The command's pipeline in this process, traced: ``depth`` photos read ahead and written behind in
    threads (``run_jobs``, as a GPU lane runs), the model in between, with no warm-up (as the command has
    none). Says where its time went (``where_time_went``)."""
    corrector = bench_corrector(args)
    on_gpu = corrector.device.type == "cuda"
    trace = Trace()

    def read(job: Job) -> Photo:
        start = time.perf_counter()
        photo = read_photo(job.source)
        trace.reads[job.source] = (start, time.perf_counter())
        return photo

    def compute(job: Job, photo: Photo) -> PendingCorrection:
        marks = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) if on_gpu else ()
        start = time.perf_counter()
        if marks:
            marks[0].record()
        pending = corrector.start(photo.pixels)
        if marks:
            marks[1].record()
            trace.gpu_marks.append(marks)
        trace.computes.append((job.source, start, time.perf_counter()))
        return pending

    def write(job: Job, photo: Photo, pending: PendingCorrection) -> float:
        start = time.perf_counter()
        correction = pending.result()
        written = time.perf_counter()
        write_photo(job.target, correction.image, like=photo, quality=95)
        trace.finishes.append(written - start)
        trace.writes.append(time.perf_counter() - written)
        return photo.megapixels

    pinned_before = pinned_memory_stats(on_gpu)
    start = time.perf_counter()
    lane = Lane(read, compute, write, depth if on_gpu else 1)  # a CPU lane reads one photo ahead
    summary = run_jobs([Job(path, scratch / path.name) for path in paths], [lane])
    seconds = time.perf_counter() - start
    if summary.failed:
        raise SystemExit(f"the traced pipeline failed: {summary.outcomes}")
    synchronize(corrector.device)
    pinned = {key: value - pinned_before.get(key, 0) for key, value in pinned_memory_stats(on_gpu).items()}
    return {"seconds": seconds, **where_time_went(trace, start, seconds), **pinned}


def pinned_memory_stats(on_gpu: bool) -> dict[str, float]:
    """How often PyTorch's pinned host memory pool grew, and the seconds its CUDA calls took (where this
    PyTorch counts them)."""
    if not on_gpu or not hasattr(torch.cuda, "host_memory_stats"):
        return {}
    stats = torch.cuda.host_memory_stats()
    return {
        "pinned_allocations": stats.get("num_host_alloc", 0),
        "pinned_allocation_seconds": stats.get("host_alloc_time.total", 0) / 1e6,
    }


def second_half_rate(ends: list[float]) -> float | None:
    """Photos a second over the second half of the compute thread's ``ends`` of photos: the pace once the
    photos in flight have grown the pinned memory pool. (The compute thread keeps the pipeline's pace: it
    waits for the write of the photo ``depth`` back, which waits for the GPU.) None under four photos."""
    half = len(ends) // 2
    return (len(ends) - 1 - half) / (ends[-1] - ends[half]) if len(ends) >= 4 else None


def where_time_went(trace: Trace, start: float, seconds: float) -> dict[str, float]:
    """The compute thread's time in ``Corrector.start``, waiting for reads and otherwise idle; the first
    photo's compute (warm-up included) and the rate after it; the writer threads' mean times; on a GPU, the
    time from each photo's first queued work to its last, and idle between photos (from the events)."""
    computes = trace.computes
    gaps = [computes[0][1] - start] + [now[1] - before[2] for before, now in itertools.pairwise(computes)]
    read_waits = [
        min(gap, max(0.0, trace.reads[path][1] - (started - gap)))
        for gap, (path, started, _) in zip(gaps, computes, strict=True)
    ]
    steady = start + seconds - computes[0][2]
    times = {
        "compute_thread_in_start": sum(end - begin for _, begin, end in computes),
        "compute_thread_waiting_for_reads": sum(read_waits),
        "compute_thread_otherwise_idle": sum(gaps) - sum(read_waits),
        "after_last_compute": start + seconds - computes[-1][2],
        "first_photo_compute": computes[0][2] - computes[0][1],
        "images_per_second_after_first": (len(computes) - 1) / steady if len(computes) > 1 else None,
        "images_per_second_second_half": second_half_rate([end for _, _, end in computes]),
        "mean_read": sum(end - begin for begin, end in trace.reads.values()) / len(trace.reads),
        "mean_finish": sum(trace.finishes) / len(trace.finishes),
        "mean_write": sum(trace.writes) / len(trace.writes),
    }
    if trace.gpu_marks:
        marks = trace.gpu_marks
        times["gpu_busy"] = sum(begin.elapsed_time(end) for begin, end in marks) / 1e3
        times["gpu_idle_between_photos"] = (
            sum(before[1].elapsed_time(now[0]) for before, now in itertools.pairwise(marks)) / 1e3
        )
        times["gpu_first_photo"] = marks[0][0].elapsed_time(marks[0][1]) / 1e3
    return times


def command_seconds(folder: Path, output: Path, args: argparse.Namespace) -> float:
    """`recnet correct` on the folder: the batch's own time from its JSON summary."""
    command = [sys.executable, "-m", "recnet_cli"]
    if args.switch_interval:
        run = "import runpy, sys; sys.setswitchinterval(float(sys.argv.pop(1))); "
        run += "runpy.run_module('recnet_cli', run_name='__main__', alter_sys=True)"
        command = [sys.executable, "-c", run, str(args.switch_interval)]
    command += ["correct", str(folder), "-o", str(output), "--json", "--device", args.device]
    command += ["--precision", args.precision, "--tile", args.tile, "--quiet"]
    command += ["--fused"] if args.fused else []
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode:
        sys.exit(f"recnet correct exited {completed.returncode}: {completed.stderr.strip()[-2000:]}")
    return json.loads(completed.stdout)["seconds"]


def pipeline_lines(pipeline: dict, count: int) -> list[str]:
    """Where the traced pipeline's time went, as markdown lines."""
    seconds = pipeline["seconds"]
    rate = pipeline["images_per_second_after_first"]
    lines = [
        f"Where the pipeline's {seconds:.2f} s went (photos {count}):",
        "",
        f"- compute thread: {pipeline['compute_thread_in_start']:.2f} s in `Corrector.start` (the first "
        f"photo {pipeline['first_photo_compute']:.2f} s), "
        f"{pipeline['compute_thread_waiting_for_reads']:.2f} s waiting for reads, "
        f"{pipeline['compute_thread_otherwise_idle']:.2f} s otherwise between photos (writes behind), "
        f"{pipeline['after_last_compute']:.2f} s after the last (the last writes)",
        f"- after the first photo: {rate:.2f} images/s" if rate else "- one photo: no rate after it",
        f"- over the second half of the photos: {pipeline['images_per_second_second_half']:.2f} images/s"
        if pipeline["images_per_second_second_half"]
        else "- too few photos for a rate over their second half",
        f"- each photo, in the reader and writer threads: reading {pipeline['mean_read']:.3f} s, waiting "
        f"for and finishing the correction {pipeline['mean_finish']:.3f} s, "
        f"writing {pipeline['mean_write']:.3f} s",
    ]
    if "gpu_busy" in pipeline:
        lines.append(
            f"- GPU: {pipeline['gpu_busy']:.2f} s from each photo's first queued work to its last, gaps "
            f"within included (the first photo {pipeline['gpu_first_photo']:.2f} s; against the model "
            f"alone, more means the GPU waited for launches), {pipeline['gpu_idle_between_photos']:.2f} s "
            "idle between photos"
        )
    if "pinned_allocations" in pipeline:
        lines.append(
            f"- pinned host memory: the pool grew {pipeline['pinned_allocations']:.0f} times, "
            f"{pipeline['pinned_allocation_seconds']:.2f} s in CUDA's allocation calls"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--tile", default="auto")
    parser.add_argument("--mp", type=float, default=12.0, help="photo size in megapixels")
    parser.add_argument("--count", type=int, default=16, help="number of photos")
    parser.add_argument("--fused", action="store_true", help="the model and the command with --fused")
    parser.add_argument(
        "--switch-interval", type=float, help="the command's GIL switch interval, seconds (default Python's)"
    )
    add_name_option(parser)
    args = parser.parse_args()
    first_device = pick_devices(args.device)[0]

    with tempfile.TemporaryDirectory(prefix="recnet-bench-") as temporary:
        root = Path(temporary)
        for folder in ("in", "codec", "host", "host-waiting", "pipeline"):
            (root / folder).mkdir()
        paths = make_photos(root / "in", args.count, args.mp)
        depth = gpu_lane_depth(1, args.mp)
        # The command first, before this process holds models and memory of its own.
        command = command_seconds(root / "in", root / "out", args)
        # The model alone takes the first device of a list: it shows what one device does.
        seconds = {
            "codec": codec_seconds(paths, root / "codec"),
            f"host ({depth} photos in flight)": host_seconds(paths, root / "host", depth),
        }
        # The pipeline before the model alone, whose photos would leave pinned memory in PyTorch's pool.
        default_interval = sys.getswitchinterval()
        sys.setswitchinterval(args.switch_interval or default_interval)
        try:
            pipeline = traced_pipeline(paths, root / "pipeline", args, depth)
        except Exception:  # a new measurement: the others still get written
            traceback.print_exc()
            pipeline = None
        sys.setswitchinterval(default_interval)
        seconds["model"] = model_seconds(paths, args)
        if first_device.type != "cpu":  # on a CPU the model holds the cores the host needs
            wait = seconds["model"] / args.count
            stage = f"host, waiting {wait * 1000:.0f} ms a photo for a stand-in model"
            seconds[stage] = host_seconds(paths, root / "host-waiting", depth, wait)
        if pipeline:
            seconds["pipeline (traced, in this process)"] = pipeline["seconds"]
        seconds["recnet correct"] = command
    codec, model = seconds["codec"], seconds["model"]
    device_text = device_description(first_device) + (f" x {args.device}" if "," in args.device else "")
    rows = [
        {"stage": stage, "seconds": value, "images_per_second": args.count / value}
        for stage, value in seconds.items()
    ]
    lines = [
        f"# A folder of {args.count} JPEGs of {args.mp:g} MP on {device_text}",
        "",
        f"torch {torch.__version__}; bundled model, precision {args.precision}, tile {args.tile}"
        + (", fused kernels" if args.fused else "")
        + (f", GIL switch interval {args.switch_interval * 1000:g} ms" if args.switch_interval else "")
        + ". "
        "codec: decode + encode/write one after another; host: the command's reading, finishing and "
        "writing alone, in threads as a GPU lane runs them; model: the model alone; host, waiting (on a "
        "GPU): the same with a compute step that waits the model's time with the GIL let go (what the lane "
        "could do if launching the model cost the host nothing); pipeline: the "
        "command's stages in this process, timed stage by stage (below); recnet correct: the command's "
        "batch time (read-ahead and write-behind threads).",
        "",
        "| stage | seconds | images/s |",
        "|---|---|---|",
        *[f"| {r['stage']} | {r['seconds']:.1f} | {r['images_per_second']:.2f} |" for r in rows],
        "",
        f"Overlap: the command took {command / max(codec, model):.2f}x the slower stage and "
        f"{command / (codec + model):.2f}x their sum.",
        "",
        *(pipeline_lines(pipeline, args.count) if pipeline else ["The traced pipeline failed (above)."]),
    ]
    summary = {"device": device_text, "megapixels": args.mp, "count": args.count, "rows": rows}
    summary |= {"precision": args.precision, "fused": args.fused, "switch_interval": args.switch_interval}
    summary["pipeline"] = pipeline
    write_tables(args.name + "folder-", device_text, summary, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
