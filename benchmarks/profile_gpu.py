"""Where the GPU time goes: timings after same-shape warm-ups, and torch.profiler tables by kernel.

bench_inference.py times one run per size in a fresh process (first-run costs included); this script
warms each shape up first, times repeats, and profiles one run of the fast path (whole and tiled), the
reference forward and a training step, so the next optimisation targets the kernels that cost most.

    python benchmarks/profile_gpu.py --mp 12 > profile.txt
    python benchmarks/profile_gpu.py --mp 12 --compiled --precisions fp32,fp16   # torch.compile
    python benchmarks/profile_gpu.py --mp 12 --fused --precisions fp16,fp32      # the Triton kernels
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import numpy as np
import torch
from bench_inference import (
    EXAMPLE_PHOTOS,
    device_description,
    eight_bit_gaps,
    half_precision_agreement,
    image_shape,
    synchronize,
)
from bench_training import training_step

from recnet_cli.devices import DTYPES, describe_peak_memory, peak_memory_bytes, reset_peak_memory
from recnet_cli.engine import CompiledForward, Corrector
from recnet_cli.model import RECNet
from recnet_cli.model.fast import EAGER, fast_forward
from recnet_cli.weights import load_model


def timed(device: torch.device, function: Callable[[], object], repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` synchronised runs, after two warm-up runs."""
    seconds = []
    for index in range(repeats + 2):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        if index >= 2:
            seconds.append(time.perf_counter() - start)
    return seconds


def profile(device: torch.device, title: str, function: Callable[[], object], rows: int = 25) -> None:
    """Prints ``function``'s kernels and operators by GPU time, for one run."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    activities += [torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else []
    with torch.profiler.profile(activities=activities) as profiler:
        function()
        synchronize(device)
    averages = profiler.key_averages()
    keys = (
        ("self_device_time_total", "self_cuda_time_total")
        if device.type == "cuda"
        else ("self_cpu_time_total",)
    )
    for key in keys:
        try:
            table = averages.table(sort_by=key, row_limit=rows, max_name_column_width=70)
            break
        except (AttributeError, KeyError, ValueError):
            continue
    print(f"\n## {title}\n\n{table}", flush=True)


def report(device: torch.device, label: str, seconds: list[float], megapixels: float) -> None:
    best, median = min(seconds), sorted(seconds)[len(seconds) // 2]
    print(
        f"{label}: best {best * 1000:.1f} ms, median {median * 1000:.1f} ms, "
        f"{megapixels / best:.1f} MP/s, {describe_peak_memory(device, peak_memory_bytes(device))}",
        flush=True,
    )


def inference(device: torch.device, model: RECNet, megapixels: float, precisions: list[str]) -> None:
    height, width = image_shape(megapixels)
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0)).to(device)
    print(f"# Inference, {height} x {width} ({megapixels} MP), bundled model", flush=True)
    for precision in precisions:
        dtype = DTYPES[precision]
        reset_peak_memory(device)
        run = lambda: fast_forward(model, image.to(dtype))  # noqa: E731, B023
        report(device, f"fast whole {precision}", timed(device, run, 3), megapixels)
        profile(device, f"fast whole {precision}", run)
    with torch.inference_mode():
        reset_peak_memory(device)
        report(device, "reference fp32", timed(device, lambda: model(image), 2), megapixels)
        profile(device, "reference fp32", lambda: model(image))
    # The same photo as the command hands it over (host pixels in and out), whole and in tiles: the
    # difference from the rows above is the copies and conversions around the model.
    pixels = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
    whole = Corrector(model, device, torch.float32, tile=0)
    reset_peak_memory(device)
    report(device, "Corrector whole fp32", timed(device, lambda: whole.correct(pixels), 2), megapixels)
    profile(device, "Corrector whole fp32", lambda: whole.correct(pixels))
    small = min(megapixels, 2.0)
    pixels = np.ascontiguousarray(pixels[: image_shape(small)[0], : image_shape(small)[1]])
    tiled = Corrector(model, device, torch.float32, tile=1024)
    label = f"Corrector tiled 1024 fp32 at {small} MP"
    reset_peak_memory(device)
    report(device, label, timed(device, lambda: tiled.correct(pixels), 1), small)
    profile(device, label, lambda: tiled.correct(pixels))


def compiled_inference(device: torch.device, model: RECNet, megapixels: float, precisions: list[str]) -> None:
    """The whole-image path through torch.compile against the uncompiled one: compile time, warm
    timings, and the largest difference between their outputs."""
    height, width = image_shape(megapixels)
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0)).to(device)
    print(f"# torch.compile, {height} x {width} ({megapixels} MP), bundled model", flush=True)
    for precision in precisions:
        typed = image.to(DTYPES[precision])
        compiled = CompiledForward()
        synchronize(device)
        start = time.perf_counter()
        output = compiled(model, typed)[0]
        synchronize(device)
        if compiled.failure:
            print(f"compiled {precision}: compiling failed ({compiled.failure})", flush=True)
            continue
        print(f"compiled {precision}: first call (compiling) {time.perf_counter() - start:.1f} s", flush=True)
        difference = (output.float() - fast_forward(model, typed)[0].float()).abs().max()
        print(f"compiled {precision}: largest difference from uncompiled {float(difference):.2e}", flush=True)
        for label, forward in (("uncompiled", fast_forward), ("compiled", compiled)):
            run = functools.partial(forward, model, typed)
            reset_peak_memory(device)
            report(device, f"{label} whole {precision}", timed(device, run, 3), megapixels)
        profile(device, f"compiled whole {precision}", functools.partial(compiled, model, typed))


def eight_bit_agreement(output: torch.Tensor, expected: torch.Tensor) -> str:
    """How many 8-bit output values are within one level of ``expected``'s, and the largest gap."""
    gap = eight_bit_gaps(*(x.float().cpu().numpy() for x in (expected, output)))
    return f"{(gap <= 1).mean() * 100:.3f}% within one level, largest {int(gap.max())} levels"


# (pixels per program, warps, tile width; 0: runs across rows[, how deep the convolutions' matrix products
# are made: TAPS_DEPTH]) of the fused kernels that --fused times. Each one compiles the kernels again
# (about 7 s on the H200): BLOCK 64 and 8 warps, slower on 2026-12-04, are timed once each.
FUSED_CONFIGS = "128x4x0,128x4x16,128x4x32,128x8x0,256x4x0,256x4x16,64x4x0,128x4x0x32"


def fused_inference(
    device: torch.device, model: RECNet, megapixels: float, precisions: list[str], configs: str
) -> None:
    """The blocks through the fused Triton kernels against the eager stages: first call (kernel
    compilation), agreement with eager float32, warm timings for each of ``configs`` (as in
    FUSED_CONFIGS), the fused and eager stages each captured as one CUDA graph, and a profile at the
    default configuration."""
    from recnet_cli.model import triton_stages

    height, width = image_shape(megapixels)
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0)).to(device)
    print(f"# Fused Triton stages, {height} x {width} ({megapixels} MP), bundled model", flush=True)
    expected = fast_forward(model, image)[0]
    for precision in precisions:
        typed = image.to(DTYPES[precision])
        fused = functools.partial(fast_forward, model, typed, triton_stages.STAGES)
        synchronize(device)
        start = time.perf_counter()
        output = fused()[0]
        synchronize(device)
        print(f"fused {precision}: first call {time.perf_counter() - start:.1f} s", flush=True)
        print(f"fused {precision} vs eager fp32: {eight_bit_agreement(output, expected)}", flush=True)
        eager = fast_forward(model, typed)[0]
        print(f"eager {precision} vs eager fp32: {eight_bit_agreement(eager, expected)}", flush=True)
        del output, eager
        # An earlier version of the kernels (gpu-session.sh check) may have no TILE_WIDTH or TAPS_DEPTH,
        # and ignores them.
        settings = ("BLOCK", "WARPS", "TILE_WIDTH", "TAPS_DEPTH")
        default = {name: getattr(triton_stages, name, None) for name in settings}
        for config in configs.split(","):
            chosen = dict(zip(settings, (int(x) for x in config.split("x")), strict=False))
            for name, value in {**default, **chosen}.items():
                setattr(triton_stages, name, value)
            reset_peak_memory(device)
            tile_width = chosen["TILE_WIDTH"]
            layout = f"tiles {tile_width} wide" if tile_width else "runs across rows"
            label = f"fused whole {precision}, BLOCK {chosen['BLOCK']}, {chosen['WARPS']} warps, {layout}"
            if "TAPS_DEPTH" in chosen:
                label += f", convolutions' products {chosen['TAPS_DEPTH']} deep"
            report(device, label, timed(device, fused, 3), megapixels)
        for name, value in default.items():
            setattr(triton_stages, name, value)
        run = functools.partial(fast_forward, model, typed, EAGER)
        reset_peak_memory(device)
        report(device, f"eager whole {precision}", timed(device, run, 3), megapixels)
        profile(device, f"fused whole {precision}", fused)
        # Last of this precision's runs: a capture that fails may leave the device unusable.
        for label, forward in (("fused", fused), ("eager", run)):
            report_as_graph(device, f"{label} whole {precision}", forward, megapixels)


def report_as_graph(
    device: torch.device, label: str, forward: Callable[[], object], megapixels: float
) -> None:
    """Times ``forward`` captured as one CUDA graph, replayed on the same input: what launching its kernels
    one by one from Python costs (the GPU idle between them), or why it could not be captured."""
    reset_peak_memory(device)
    try:
        side = torch.cuda.Stream(device)  # warmed up on a side stream, as capturing asks
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            forward()
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            forward()
    except Exception as error:  # an experiment: the timings before it stand
        print(f"{label} as one CUDA graph: not captured: {type(error).__name__}: {error}", flush=True)
        return
    report(device, f"{label} as one CUDA graph", timed(device, graph.replay, 3), megapixels)
    del graph
    torch.cuda.empty_cache()


def profile_training_step(device: torch.device, precision: str, batch: int, crop: int) -> None:
    """Times and profiles ``bench_training.py``'s fast step (paper losses without ECR, Adam)."""
    args = argparse.Namespace(batch=batch, crop=crop, ecr=False)
    step, batches = training_step("fast", device, precision, args, end_step=0)
    with batches:
        reset_peak_memory(device)
        label = f"\n# Training step {precision}, batch {batch} x {crop}^2"
        report(device, label, timed(device, lambda: step(0), 5), batch * crop**2 / 1e6)
        profile(device, f"training step {precision}", lambda: step(0), rows=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--mp", type=float, default=12.0)
    parser.add_argument("--precisions", default="fp32,bf16,fp16")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=384)
    parser.add_argument(
        "--compiled", action="store_true", help="only compare torch.compile with the uncompiled whole image"
    )
    parser.add_argument(
        "--fused", action="store_true", help="only compare the fused Triton stages with the eager ones"
    )
    parser.add_argument(
        "--configs",
        default=FUSED_CONFIGS,
        help="--fused: BLOCKxWARPSxTILE_WIDTH[xTAPS_DEPTH] settings to time",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    precisions = args.precisions.split(",")
    print(f"torch {torch.__version__} on {device_description(device)}", flush=True)
    model = load_model(None).model.to(device).eval()
    if args.compiled:
        compiled_inference(device, model, args.mp, precisions)
        return
    if args.fused:
        fused_inference(device, model, args.mp, precisions, args.configs)
        return
    inference(device, model, args.mp, precisions)
    profile_training_step(device, "bf16" if "bf16" in precisions else precisions[0], args.batch, args.crop)
    photos = sorted(EXAMPLE_PHOTOS.glob("*.jpg"))
    for precision in precisions[1:]:
        print(half_precision_agreement(device, precision, photos), flush=True)


if __name__ == "__main__":
    main()
