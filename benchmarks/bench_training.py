"""Times RECNet training steps: the reference computation (the authors' 31x31 convolution blurs, NCHW,
float32) against ours (one FFT for all mask blurs, channels-last on CUDA, optional bf16 autocast), with
the same losses, batch and crop; and our full step with on-the-fly synthesis of the batch (made
ahead in a background thread, as ``recnet train`` does).

A step is forward, loss, backward and Adam. Each mode has its own peak memory: on the CPU it runs in
its own subprocess (process RSS), on CUDA in this process with the peak statistics reset. With --ecr
the ECR term runs on an untrained VGG16: its cost does not depend on the weights, and no ImageNet
weights are available here.
Writes benchmarks/results/<name>training-<device>.md and .json.

    python benchmarks/bench_training.py                       # batch 8 x 384^2, the issue's setting
    python benchmarks/bench_training.py --batch 4 --crop 128 --steps 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from bench_inference import (
    EXAMPLE_PHOTOS,
    add_name_option,
    device_description,
    isolated,
    synchronize,
    write_tables,
)

from recnet_cli.devices import DTYPES, peak_memory_bytes, reset_peak_memory
from recnet_cli.model import RECNet
from recnet_cli.train.data import PhotoSource, Prefetcher, load_photos
from recnet_cli.train.loop import ForwardWithMask
from recnet_cli.train.losses import ExposureContrastiveLoss, RecnetLoss, VGG16Features
from recnet_cli.train.synthesis import DegradationConfig

# The issue's figure for the authors' code on an H100: seconds per step at batch 8 x 384^2.
ISSUE_H100_SECONDS_PER_STEP = 0.445
MODES = ("reference", "fast", "fast+data")


class ReferenceForward(torch.nn.Module):
    """The plain forward with each block's own 31x31 convolution blurs, as the authors' code runs."""

    def __init__(self, model: RECNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        result = self.model.forward_with_intermediates(image)
        return result["output"], result["mask"]


def training_step(
    mode: str, device: torch.device, precision: str, args: argparse.Namespace, end_step: int
) -> tuple[Callable[[int], None], Prefetcher]:
    """``step(index)``: one training step of ``mode`` on a new model, and the batch maker to enter
    around the steps (fast+data makes batch ``index`` from photos; the other modes reuse one batch)."""
    dtype = DTYPES[precision]
    torch.manual_seed(0)
    model = RECNet().to(device)
    fast = mode != "reference"
    if fast and device.type == "cuda":
        model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    network = ForwardWithMask(model) if fast else ReferenceForward(model)
    contrastive = ExposureContrastiveLoss(VGG16Features(), authors_form=False) if args.ecr else None
    loss = RecnetLoss("paper", contrastive).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.99))
    photos = PhotoSource(
        load_photos(sorted(EXAMPLE_PHOTOS.glob("*.jpg")), args.crop, 1024), args.crop, 0, DegradationConfig()
    )
    fixed = photos.batch(0, range(args.batch), device)
    batches = Prefetcher(photos, range(args.batch), device, end_step)  # as the training loop does

    def step(index: int) -> None:
        inputs, targets = batches.batch(index) if mode == "fast+data" else fixed
        if fast and device.type == "cuda":
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            output, mask = network(inputs)
        terms = loss(output, mask, inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()

    return step, batches


def measure(mode: str, device_name: str, precision: str, args: argparse.Namespace) -> dict:
    """Times ``args.steps`` training steps after two warm-up steps, in this process."""
    device, steps = torch.device(device_name), args.steps
    step, batches = training_step(mode, device, precision, args, end_step=2 + steps)
    with batches:
        for index in range(2):
            step(index)
        synchronize(device)
        reset_peak_memory(device)
        start = time.perf_counter()
        for index in range(steps):
            step(2 + index)
        synchronize(device)
        seconds = (time.perf_counter() - start) / steps
    peak = peak_memory_bytes(device) / 2**20
    return {"seconds_per_step": seconds, "peak_mb": peak}


def measure_isolated(mode: str, device: str, precision: str, args: argparse.Namespace) -> dict:
    return isolated(
        device,
        lambda: measure(mode, device, precision, args),
        lambda: measure_in_subprocess(mode, device, precision, args),
    )


def measure_in_subprocess(mode: str, device: str, precision: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--single", mode, device, precision]
    command += ["--batch", str(args.batch), "--crop", str(args.crop), "--steps", str(args.steps)]
    command += ["--ecr"] if args.ecr else []
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        return {"error": (completed.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def table(rows: list[dict], device_text: str, args: argparse.Namespace) -> str:
    ecr = "with ECR (untrained VGG16, for timing)" if args.ecr else "without ECR"
    lines = [
        f"# RECNet training steps on {device_text}",
        "",
        f"torch {torch.__version__}; batch {args.batch} x {args.crop}^2, paper losses {ecr}, Adam; "
        f"mean of {args.steps} steps after 2 warm-up steps. Reference = the plain forward with the "
        "authors' per-block 31x31 convolution blurs, float32 NCHW. fast+data includes synthesising "
        "each batch from photos (crops, exposure model, noise, JPEG) in the loop's prefetch thread. "
        "Issue figure: authors' code on an H100, 445 ms per step at batch 8 x 384^2.",
        "",
        "| mode | precision | ms/step | steps/s | MP/s | x reference | x issue figure | peak MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['mode']} | {row['precision']} | failed: {row['error']} ||||||")
            continue
        ratios = ["" if row.get(key) is None else f"{row[key]:.1f}x" for key in ("vs_reference", "vs_issue")]
        lines.append(
            f"| {row['mode']} | {row['precision']} | {row['seconds_per_step'] * 1000:.0f} "
            f"| {1 / row['seconds_per_step']:.2f} | {row['megapixels_per_second']:.2f} | {ratios[0]} "
            f"| {ratios[1]} | {row['peak_mb']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precisions", default=None, help="default fp32 on CPU, fp32,bf16 on CUDA")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=384)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 20 CUDA, 3 CPU)")
    parser.add_argument("--ecr", action="store_true", help="include the ECR term (untrained VGG16)")
    add_name_option(parser)
    parser.add_argument("--single", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    args.steps = args.steps or (20 if device.type == "cuda" else 3)
    if args.single:
        mode, device_name, precision = args.single
        print(json.dumps(measure(mode, device_name, precision, args)))
        return

    precisions = (args.precisions or ("fp32,bf16" if device.type == "cuda" else "fp32")).split(",")
    megapixels = args.batch * args.crop**2 / 1e6
    rows, reference = [], None
    for mode in args.modes.split(","):
        for precision in precisions if mode != "reference" else ["fp32"]:
            row = {"mode": mode, "precision": precision} | measure_isolated(
                mode, args.device, precision, args
            )
            if "error" not in row:
                seconds = row["seconds_per_step"]
                row["megapixels_per_second"] = megapixels / seconds
                reference = seconds if mode == "reference" else reference
                row["vs_reference"] = None if reference is None else reference / seconds
                issue_applies = device.type == "cuda" and (args.batch, args.crop) == (8, 384)
                row["vs_issue"] = ISSUE_H100_SECONDS_PER_STEP / seconds if issue_applies else None
            rows.append(row)
            print(json.dumps(row), flush=True)
            write_results(device, rows, args)  # as it goes, so a run cut short leaves its table
    print(write_results(device, rows, args))


def write_results(device: torch.device, rows: list[dict], args: argparse.Namespace) -> str:
    """Writes benchmarks/results/<name>training-<device>.md and .json; returns the Markdown."""
    device_text = device_description(device)
    text = table(rows, device_text, args)
    summary = {"device": device_text, "batch": args.batch, "crop": args.crop, "ecr": args.ecr, "runs": rows}
    write_tables(args.name + "training-", device_text, summary, text)
    return text


if __name__ == "__main__":
    main()
