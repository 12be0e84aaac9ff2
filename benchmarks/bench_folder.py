"""Times a folder of photos through `recnet correct`, against the JPEG codec alone and the model alone.

Makes N JPEGs of the chosen size (the example photos, enlarged), then measures, in images per second:
- codec: decoding each photo and encoding and writing the result, with metadata, one after another
  (the command's writer threads also finish each correction: its strength and blend);
- host: the command's host side alone, as a GPU lane runs it on this machine: decoding, finishing each
  correction and writing it, several photos at once in threads, with no model (how fast a GPU batch
  could go here if the GPU took no time);
- model: the model alone on decoded pixels (what the command's compute thread does);
- recnet correct: the whole command on the folder (its batch time, without loading the model).
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
command with Python's GIL switch interval at S seconds (5 ms by default), to tell what remains.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch
from bench_inference import EXAMPLE_PHOTOS, add_name_option, device_description, write_tables

from recnet_cli.batch import Stages, gpu_lane_depth, run_jobs
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


def stand_in_correction(corrector: Corrector, photo: Photo) -> PendingCorrection:
    """A correction of ``photo`` with the photo standing in for the model's output (and its green channel
    for the mask): finishing it is the host's same work. The photo is copied, as a GPU lane's compute thread
    copies each photo into pinned memory."""
    pixels = torch.from_numpy(photo.pixels.copy())
    return PendingCorrection(corrector, photo.pixels, pixels, pixels[..., 1].contiguous())


def host_seconds(paths: list[Path], scratch: Path, depth: int) -> float:
    """The command's host side alone, as a GPU lane runs it: ``depth`` photos read ahead and written
    behind in threads, each correction finished (its strength under ``--strength auto``, the blend) and
    written as the command does. Each photo stands in for its model output: the host's work is the same."""
    loaded = load_model(None)
    corrector = Corrector(loaded.model, HOST, strength="auto", calibration=strength_calibration(loaded))

    def compute(job: Job, photo: Photo) -> PendingCorrection:
        return stand_in_correction(corrector, photo)

    def write(job: Job, photo: Photo, pending: PendingCorrection) -> float:
        write_photo(job.target, pending.result().image, like=photo, quality=95)
        return photo.megapixels

    jobs = [Job(path, scratch / path.name) for path in paths]
    start = time.perf_counter()
    summary = run_jobs(jobs, [Stages(lambda job: read_photo(job.source), compute, write, depth)])
    if summary.failed:
        raise SystemExit(f"the host stage failed: {summary.outcomes}")
    return time.perf_counter() - start


def model_seconds(paths: list[Path], device: str, precision: str, tile: str, fused: bool) -> float:
    """The model alone, on decoded pixels, after one warm-up photo: what the command's compute thread
    does (``Corrector.start``); the strength and blend happen in its writer threads."""
    devices = pick_devices(device)
    (corrector,) = correctors_for(
        load_model(None).model,
        devices[:1],
        [pick_dtype(precision, devices[0])],
        "auto" if tile == "auto" else int(tile),
        fused=fused,
    )
    photos = [read_photo(path).pixels for path in paths]
    corrector.correct(photos[0])
    if devices[0].type == "cuda":
        torch.cuda.synchronize(devices[0])
    start = time.perf_counter()
    for pixels in photos:
        corrector.start(pixels)
    if devices[0].type == "cuda":
        torch.cuda.synchronize(devices[0])
    return time.perf_counter() - start


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

    with tempfile.TemporaryDirectory(prefix="recnet-bench-") as temporary:
        root = Path(temporary)
        (root / "in").mkdir()
        (root / "codec").mkdir()
        (root / "host").mkdir()
        paths = make_photos(root / "in", args.count, args.mp)
        depth = gpu_lane_depth(1, args.mp)
        # The model alone takes the first device of a list: it shows what one device does.
        seconds = {
            "codec": codec_seconds(paths, root / "codec"),
            f"host ({depth} photos in flight)": host_seconds(paths, root / "host", depth),
            "model": model_seconds(paths, args.device, args.precision, args.tile, args.fused),
            "recnet correct": command_seconds(root / "in", root / "out", args),
        }
    codec, _, model, command = seconds.values()
    first_device = pick_devices(args.device)[0]
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
        "writing alone, in threads as a GPU lane runs them; model: the model alone; recnet correct: the "
        "command's batch time (read-ahead and write-behind threads).",
        "",
        "| stage | seconds | images/s |",
        "|---|---|---|",
        *[f"| {r['stage']} | {r['seconds']:.1f} | {r['images_per_second']:.2f} |" for r in rows],
        "",
        f"Overlap: the command took {command / max(codec, model):.2f}x the slower stage and "
        f"{command / (codec + model):.2f}x their sum.",
    ]
    summary = {"device": device_text, "megapixels": args.mp, "count": args.count, "rows": rows}
    summary |= {"precision": args.precision, "fused": args.fused, "switch_interval": args.switch_interval}
    write_tables(args.name + "folder-", device_text, summary, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
