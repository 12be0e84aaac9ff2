"""Times RECNet inference: the reference forward against the fast path, whole image and tiled.

Also checks each half precision against float32 with the bundled model on real photos (the examples by
default): half precision is acceptable only where at least 99.9% of the 8-bit output values are within
one level of float32's.

Each measurement has its own peak memory: on the CPU it runs in its own subprocess (process RSS), on
CUDA in this process with the peak statistics reset (peak allocated memory). Writes
benchmarks/results/<device>.md and .json.

    python benchmarks/bench_inference.py --sizes 1,12,24,45          # full run
    python benchmarks/bench_inference.py --sizes 1 --modes reference,whole,tiled
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from recnet_cli.devices import DTYPES, peak_memory_bytes, reset_peak_memory
from recnet_cli.engine import (
    CPU_TILE,
    GPU_TILE,
    Corrector,
    PhotoOutOfMemoryError,
    correctors_for,
    whole_image_bytes,
)
from recnet_cli.imaging import read_photo
from recnet_cli.imaging.pixels import quantise
from recnet_cli.model import RECNet
from recnet_cli.weights import load_model

RESULTS = Path(__file__).parent / "results"
# The issue's figures for the authors' code: seconds per megapixel.
ISSUE_CPU_SECONDS_PER_MP = 48.0
ISSUE_H100_FP32_SECONDS = {12: 1.42, 24: 2.83}
CPU_TIMING_SECONDS = 60  # timed CPU runs start only within this long of the first
HALF_PRECISION_AGREEMENT = 0.999  # share of 8-bit values within one level of float32's
EXAMPLE_PHOTOS = Path(__file__).parent.parent / "examples"


def image_shape(megapixels: float) -> tuple[int, int]:
    """A 3:4 photo of about this many megapixels."""
    height = round(math.sqrt(megapixels * 1e6 * 3 / 4))
    return height, round(height * 4 / 3)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(mode: str, megapixels: float, device_name: str, precision: str, tile: int) -> dict:
    """Times one mode (reference, whole, tiled, fused-whole or fused-tiled) at one size, in this process."""
    device, dtype = torch.device(device_name), DTYPES[precision]
    height, width = image_shape(megapixels)
    rgb = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
    model = RECNet().to(device).eval()
    layout = mode.removeprefix("fused-")
    fused = layout != mode
    corrector = Corrector(model, device, dtype, tile=tile if layout == "tiled" else 0, fused=fused)

    def run(image: np.ndarray) -> None:
        if mode == "reference":
            tensor = torch.from_numpy(image).permute(2, 0, 1)[None].to(device)
            with torch.inference_mode(), torch.autocast(device.type, dtype, enabled=dtype != torch.float32):
                model(tensor).float().cpu()
        else:
            corrector.correct(image)

    # Warm-up. On CUDA the first run at a shape pays for kernel choice, FFT plans and allocator growth
    # (about 1 s, measured on an H200), so it warms up at the full size and keeps the best of three runs;
    # on the CPU a large run takes minutes, so a small warm-up and the best of the runs (up to three) that
    # start within CPU_TIMING_SECONDS: a shared 2-core host varies by a third from one run to the next.
    cuda = device.type == "cuda"
    run(rgb if cuda else rgb[:256, :256])
    reset_peak_memory(device)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < 3 and (cuda or not times or time.perf_counter() - started < CPU_TIMING_SECONDS):
        synchronize(device)
        start = time.perf_counter()
        run(rgb)
        synchronize(device)
        times.append(time.perf_counter() - start)
    peak = peak_memory_bytes(device) / 2**20
    return {"seconds": min(times), "runs": len(times), "peak_mb": peak, "height": height, "width": width}


def measure_in_subprocess(mode: str, megapixels: float, device: str, precision: str, tile: int) -> dict:
    command = [sys.executable, __file__, "--single", mode, str(megapixels), device, precision, str(tile)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        return {"error": (completed.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure_isolated(mode: str, megapixels: float, device: str, precision: str, tile: int) -> dict:
    return isolated(
        device,
        lambda: measure(mode, megapixels, device, precision, tile),
        lambda: measure_in_subprocess(mode, megapixels, device, precision, tile),
    )


def isolated(device: str, here: Callable[[], dict], in_subprocess: Callable[[], dict]) -> dict:
    """A measurement with its own peak memory: in a subprocess on the CPU (peak RSS cannot be reset), in
    this process on CUDA (its peak statistics can, and a CUDA start-up per run costs more than the run)."""
    if torch.device(device).type != "cuda":
        return in_subprocess()
    try:
        return here()
    except (torch.OutOfMemoryError, PhotoOutOfMemoryError) as error:  # the reference's, or a Corrector's
        return {"error": str(error).splitlines()[0]}
    finally:
        torch.cuda.empty_cache()


def eight_bit_gaps(expected: np.ndarray, got: np.ndarray) -> np.ndarray:
    """How many 8-bit levels apart two float images in [0, 1] are, rounded as a saved file holds them."""
    return np.abs(quantise(expected, 8).astype(np.int16) - quantise(got, 8))


def half_precision_agreement(device: torch.device, precision: str, photos: list[Path]) -> dict:
    """How closely the bundled model's 8-bit output in ``precision`` follows float32's on ``photos``."""
    model = load_model(None).model
    reference, half = correctors_for(model, [device, device], [torch.float32, DTYPES[precision]], tile="auto")
    within = total = worst = 0
    for path in photos:
        pixels = read_photo(path).pixels
        difference = eight_bit_gaps(*(c.correct(pixels).image for c in (reference, half)))
        within += int((difference <= 1).sum())
        total += difference.size
        worst = max(worst, int(difference.max()))
    share = within / total
    return {
        "precision": precision,
        "photos": len(photos),
        "within_one_level": share,
        "max_levels": worst,
        "acceptable": share >= HALF_PRECISION_AGREEMENT,
    }


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model_names = re.findall(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    name = model_names[0] if model_names else platform.processor()
    # The vector unit PyTorch uses (AVX2, AVX512, ...): hosts with the same name differ (the reference ran
    # 7x slower per MP on an AVX2 "AMD EPYC" than on the one measured before it).
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{name} ({torch.get_num_threads()} threads, {capability})"


def issue_seconds_per_mp(device: torch.device, precision: str, megapixels: float) -> float | None:
    if device.type == "cpu":
        return ISSUE_CPU_SECONDS_PER_MP
    if precision == "fp32" and round(megapixels) in ISSUE_H100_FP32_SECONDS:
        return ISSUE_H100_FP32_SECONDS[round(megapixels)] / megapixels
    return None


def plan(args: argparse.Namespace, device: torch.device) -> list[tuple[str, float, str]]:
    """(mode, megapixels, precision) runs; the reference runs once, at --reference-mp."""
    runs = []
    limit_gb = args.whole_limit_gb
    if limit_gb is None:
        limit_gb = torch.cuda.mem_get_info(device)[0] * 0.8 / 2**30 if device.type == "cuda" else 8.0
    for precision in args.precisions:
        if "reference" in args.modes:
            runs.append(("reference", args.reference_mp, precision))
        for megapixels in args.sizes:
            height, width = image_shape(megapixels)
            whole_fits = whole_image_bytes(height, width, DTYPES[precision]) <= limit_gb * 2**30
            for mode in args.modes:  # in the order given
                if mode != "reference" and (whole_fits or mode.endswith("tiled")):
                    runs.append((mode, megapixels, precision))
    return runs


def table(rows: list[dict], agreements: list[dict], device_text: str) -> str:
    lines = [
        f"# RECNet inference on {device_text}",
        "",
        f"torch {torch.__version__}. Reference = the plain forward in recnet_cli/model/recnet.py, timed at",
        "one size; its per-MP figure is extrapolated to the others. Peak memory: process RSS on the CPU,",
        "torch.cuda.max_memory_allocated on CUDA. Issue figures: authors' code, CPU 48 s/MP,",
        "H100 fp32 12 MP 1.42 s and 24 MP 2.83 s. Times: through Corrector.correct (host image in and out);",
        "on CUDA the best of three after a warm-up at the same size; on the CPU, after a small warm-up, the",
        f"best of the runs (up to three) that start within {CPU_TIMING_SECONDS} s (runs: how many).",
        "",
        "| mode | precision | MP | H x W | seconds | runs | s/MP | MP/s | x reference | x issue figure "
        "| peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(
                f"| {row['mode']} | {row['precision']} | {row['mp']} | | failed: {row['error']} ||||||"
            )
            continue
        speedups = [row.get(key) for key in ("vs_reference", "vs_issue")]
        speedup_text = ["" if value is None else f"{value:.1f}x" for value in speedups]
        lines.append(
            f"| {row['mode']} | {row['precision']} | {row['mp']} | {row['height']} x {row['width']} "
            f"| {row['seconds']:.2f} | {row.get('runs', 1)} | {row['seconds_per_mp']:.2f} "
            f"| {1 / row['seconds_per_mp']:.2f} "
            f"| {speedup_text[0]} | {speedup_text[1]} | {row['peak_mb']:.0f} |"
        )
    if agreements:
        lines += [
            "",
            "Half precision against float32, bundled model, 8-bit outputs of real photos:",
            "",
            "| precision | photos | values within 1 level | largest difference | acceptable (>= 99.9%) |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {a['precision']} | {a['photos']} | {a['within_one_level']:.4%} | {a['max_levels']} levels "
            f"| {'yes' if a['acceptable'] else 'no: use fp32'} |"
            for a in agreements
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,12,24,45", help="megapixels, comma-separated")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precisions", default=None, help="default fp32 on CPU, fp32,fp16,bf16 on CUDA")
    parser.add_argument(
        "--modes",
        default="reference,whole,tiled",
        help="also fused-whole, fused-tiled (Triton kernels, CUDA)",
    )
    parser.add_argument(
        "--tile", type=int, default=None, help=f"tile size (default {CPU_TILE} CPU, {GPU_TILE} GPU)"
    )
    parser.add_argument("--reference-mp", type=float, default=1.0, help="the one size the reference runs at")
    parser.add_argument(
        "--whole-limit-gb", type=float, help="skip larger whole-image runs (CPU 8, GPU 80%% of free)"
    )
    parser.add_argument(
        "--photos", type=Path, default=EXAMPLE_PHOTOS, help="folder of JPEGs for the half-precision check"
    )
    add_name_option(parser)
    parser.add_argument("--single", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        mode, megapixels, device, precision, tile = args.single
        print(json.dumps(measure(mode, float(megapixels), device, precision, int(tile))))
        return

    device = torch.device(args.device)
    args.sizes = [float(size) for size in args.sizes.split(",")]
    args.modes = args.modes.split(",")
    args.precisions = (args.precisions or ("fp32,fp16,bf16" if device.type == "cuda" else "fp32")).split(",")
    tile = args.tile or (GPU_TILE if device.type == "cuda" else CPU_TILE)
    rows, reference_per_mp = [], {}
    for mode, megapixels, precision in plan(args, device):
        result = measure_isolated(mode, megapixels, args.device, precision, tile)
        row = {"mode": mode.replace("tiled", f"tiled {tile}"), "precision": precision, "mp": megapixels}
        row |= result
        if "error" not in result:
            row["seconds_per_mp"] = result["seconds"] / (result["height"] * result["width"] / 1e6)
            if mode == "reference":
                reference_per_mp[precision] = row["seconds_per_mp"]
            if precision in reference_per_mp:
                row["vs_reference"] = reference_per_mp[precision] / row["seconds_per_mp"]
            issue = issue_seconds_per_mp(device, precision, megapixels)
            row["vs_issue"] = None if issue is None else issue / row["seconds_per_mp"]
        rows.append(row)
        print(json.dumps(row), flush=True)
        write_results(args.name, device, rows, [])  # as it goes, so a run cut short still leaves its table

    photos = sorted(args.photos.glob("*.jpg"))
    agreements = [
        half_precision_agreement(device, precision, photos)
        for precision in args.precisions
        if precision != "fp32"
    ]
    print(write_results(args.name, device, rows, agreements))


def write_results(name: str, device: torch.device, rows: list[dict], agreements: list[dict]) -> str:
    """Writes benchmarks/results/<name><device>.md and .json; returns the Markdown."""
    device_text = device_description(device)
    text = table(rows, agreements, device_text)
    write_tables(name, device_text, {"device": device_text, "runs": rows, "half_precision": agreements}, text)
    return text


def add_name_option(parser: argparse.ArgumentParser) -> None:
    """``--name PREFIX``: a prefix for the results files, so that a trial leaves the committed tables be."""
    parser.add_argument(
        "--name", default="", help="prefix of the results files, so that several runs keep their own tables"
    )


def write_tables(prefix: str, device_text: str, summary: dict, markdown: str) -> None:
    """Writes benchmarks/results/<prefix><device>.json and .md."""
    slug = prefix + re.sub(r"[^a-z0-9]+", "-", device_text.lower()).strip("-")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{slug}.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS / f"{slug}.md").write_text(markdown)


if __name__ == "__main__":
    main()
