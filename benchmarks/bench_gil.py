"""How long a batch's host work holds Python's GIL, which a GPU lane's compute thread needs for every launch.

A thread issues small PyTorch operations without pause: each lets go of the GIL and takes it back, as
launching a CUDA kernel does. Meanwhile host threads do what a GPU lane's readers and writers do with real
photos: decode one, finish its correction (the strength under ``--strength auto``, the blend; the photo
stands in for the model's output) and encode and write it. Reports the operations' rate alone and beside
the host threads, the share of the time they waited over 1 ms for the GIL, and the lines the host
threads were at when such a wait ended: where they held the GIL, unless the line is one that lets go of it
(OpenCV, NumPy's arithmetic), where the wait was for a core. Keep --threads below the machine's cores
(OpenCV runs one thread here). Writes benchmarks/results/gil-<format>-<device>.md and .json.

    python benchmarks/bench_gil.py --format jpg --mp 12 --seconds 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import torch
from bench_folder import host_corrector, make_photos, stand_in_correction
from bench_inference import add_name_option, device_description, write_tables

from recnet_cli.engine import Corrector
from recnet_cli.imaging import read_photo, write_photo

STALL_SECONDS = 1e-3  # an operation that takes this long waited for the GIL
HOST_THREAD_NAME = "recnet-host"


def host_work(stage: str, source: Path, target: Path, corrector: Corrector, stop: threading.Event) -> int:
    """Reads the photo (``stage`` "read"), or finishes and writes it ("write"), again and again until
    ``stop``; returns how many times."""
    photo, times = read_photo(source), 0
    # what a writer thread is handed, finished afresh each time
    pending = stand_in_correction(corrector, photo) if stage == "write" else None
    while not stop.is_set():
        if pending is None:
            read_photo(source)
        else:
            write_photo(target, pending.result().image, like=photo, quality=95)
        times += 1
    return times


def where(frame_stack: list[traceback.FrameSummary]) -> str:
    """The innermost line of a stack, and the innermost line of recnet's own code beneath it."""
    innermost = frame_stack[-1]
    own = next((f for f in reversed(frame_stack) if "recnet_cli" in f.filename), innermost)
    line = f"{Path(innermost.filename).name}:{innermost.lineno} {innermost.name}"
    return line if own is innermost else f"{line} (from {Path(own.filename).name}:{own.lineno} {own.name})"


def launch_ops(seconds: float, host_threads: list[threading.Thread]) -> dict:
    """Issues small PyTorch operations for ``seconds``: their count, the time spent in ones over
    ``STALL_SECONDS`` and, for those, where ``host_threads`` were when each ended."""
    value = torch.zeros(16)
    idents = [thread.ident for thread in host_threads]
    operations, stalls, stalled = 0, 0, 0.0
    holders: Counter[str] = Counter()
    end = time.perf_counter() + seconds
    while (now := time.perf_counter()) < end:
        value.add_(1)
        took = time.perf_counter() - now
        operations += 1
        if took > STALL_SECONDS:
            stalls, stalled = stalls + 1, stalled + took
            frames = sys._current_frames()
            for ident in idents:
                if ident in frames:
                    holders[where(traceback.extract_stack(frames[ident]))] += 1
    return {"operations": operations, "stalls": stalls, "stalled_seconds": stalled, "holders": holders}


def beside_host_threads(
    stage: str, count: int, source: Path, target: Path, corrector: Corrector, seconds: float
) -> dict:
    """``launch_ops`` while ``count`` threads do ``stage`` of the host work, and the photos they did."""
    stop = threading.Event()
    with ThreadPoolExecutor(count, HOST_THREAD_NAME) as pool:
        futures = [pool.submit(host_work, stage, source, target, corrector, stop) for _ in range(count)]
        time.sleep(1.0)  # past each thread's first photo
        threads = [thread for thread in threading.enumerate() if thread.name.startswith(HOST_THREAD_NAME)]
        run = launch_ops(seconds, threads)
        stop.set()
        run["photos"] = sum(future.result() for future in futures)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", default="jpg", help="the outputs' format (an extension)")
    parser.add_argument("--mp", type=float, default=12.0, help="photo size in megapixels")
    parser.add_argument("--threads", type=int, default=1, help="host threads")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each measurement runs")
    parser.add_argument(
        "--switch-interval", type=float, help="Python's GIL switch interval, seconds (default Python's)"
    )
    add_name_option(parser)
    args = parser.parse_args()

    corrector = host_corrector()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    cv2.setNumThreads(1)  # OpenCV's own threads would take the operations' core: the waits are the GIL's
    with tempfile.TemporaryDirectory(prefix="recnet-gil-") as temporary:
        (source,) = make_photos(Path(temporary), 1, args.mp)
        target = Path(temporary) / f"out.{args.format}"
        runs = {"alone": launch_ops(args.seconds, [])}
        for stage in ("read", "write"):
            runs[stage] = beside_host_threads(stage, args.threads, source, target, corrector, args.seconds)

    device_text = device_description(torch.device("cpu"))
    rows, baseline = [], runs["alone"]["stalled_seconds"]
    for name, run in runs.items():
        photos = run.get("photos")
        excess = (run["stalled_seconds"] - baseline) / photos * 1000 if photos else None
        rows.append(
            {
                "work": name,
                "operations_per_second": run["operations"] / args.seconds,
                "waits": run["stalls"],
                "waiting_share": run["stalled_seconds"] / args.seconds,
                "photos": photos,
                "waiting_ms_per_photo": excess,
                "holders": dict(run["holders"].most_common(8)),
            }
        )
    lines = [
        f"# The GIL beside {args.threads} host thread(s) reading, or finishing and writing, {args.mp:g} MP "
        f"photos as {args.format}",
        "",
        f"{device_text}; Python {sys.version.split()[0]}, torch {torch.__version__}, "
        f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms, {args.seconds:g} s each. Waiting a "
        "photo: the operations' time in waits over 1 ms, less that of the operations alone, per photo the "
        "host threads did.",
        "",
        "| host work | operations/s | of alone | waits over 1 ms | time in them | photos | waiting a photo |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {row['work']} | {row['operations_per_second']:,.0f} | "
            f"{row['operations_per_second'] / rows[0]['operations_per_second']:.0%} | {row['waits']} | "
            f"{row['waiting_share']:.1%} | {row['photos'] or ''} | "
            + ("" if row["waiting_ms_per_photo"] is None else f"{row['waiting_ms_per_photo']:.1f} ms")
            + " |"
            for row in rows
        ],
    ]
    for row in rows[1:]:
        lines += ["", f"Where the {row['work']} threads were when a wait ended (waits):", ""]
        lines += [f"- {count}: `{line}`" for line, count in row["holders"].items()]
    summary = {"device": device_text, "format": args.format, "megapixels": args.mp, "threads": args.threads}
    summary |= {"seconds": args.seconds, "rows": rows}
    write_tables(f"{args.name}gil-{args.format}-", device_text, summary, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
