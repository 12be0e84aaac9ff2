"""How much host memory one CPU training step takes, measured, beside the estimate `recnet train` checks
before its first step (``recnet_cli.train.memory.step_bytes``): the estimate should be at or a little over
each measurement. Linux only (it resets the peak RSS through /proc/self/clear_refs).

Each setting runs in its own process: a step of 1 x 64^2 warms up (Adam's state, thread pools), the peak RSS
is reset, and one step (forward, paper losses, backward, Adam) at the setting is measured as the growth of
the peak RSS over the RSS before it. Writes benchmarks/results/<name>train-memory-<cpu>.md and .json.

    python benchmarks/bench_train_memory.py                          # 11 settings, 3 minutes on 2 cores
    python benchmarks/bench_train_memory.py --settings 1x512x8x5xbf16   # BATCHxCROPxCHANNELSxBLOCKSxPRECISION
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import torch
from bench_inference import add_name_option, device_description, write_tables

from recnet_cli.devices import DTYPES, keep_freed_host_memory
from recnet_cli.model import RECNet
from recnet_cli.train.loop import ForwardWithMask
from recnet_cli.train.losses import ExposureContrastiveLoss, RecnetLoss, VGG16Features
from recnet_cli.train.memory import step_bytes

# batch x crop x channels x blocks x precision (x ecr): the bundled model's size at several batches and
# crops (8 x 384 is recnet train's default), then narrower, wider, shallower and deeper networks, bf16
# autocast, and ECR (untrained VGG16).
SETTINGS = (
    "1x256x8x5xfp32,1x384x8x5xfp32,4x256x8x5xfp32,8x384x8x5xfp32,1x384x4x5xfp32,1x384x16x5xfp32,"
    "1x384x8x3xfp32,1x384x8x7xfp32,1x384x8x5xbf16,1x384x16x5xbf16,1x384x8x5xfp32xecr"
)
GIB = 2**30


def rss_line(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) * 1024


def measure(setting: str) -> dict:
    """One step at ``setting``, in this process: the growth of the peak RSS over the RSS before it."""
    batch, crop, channels, blocks, precision, *extra = setting.split("x")
    batch, crop, channels, blocks = int(batch), int(crop), int(channels), int(blocks)
    dtype = DTYPES[precision]
    keep_freed_host_memory()  # as recnet train does on the CPU
    torch.manual_seed(0)
    model = RECNet(channels, blocks)
    network = ForwardWithMask(model)
    contrastive = ExposureContrastiveLoss(VGG16Features(), authors_form=False) if "ecr" in extra else None
    loss = RecnetLoss("paper", contrastive)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(crops: int, size: int) -> None:
        inputs, targets = torch.rand(crops, 3, size, size), torch.rand(crops, 3, size, size)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            output, mask = network(inputs)
        terms = loss(output, mask, inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()

    step(1, 64)
    Path("/proc/self/clear_refs").write_text("5")  # the peak RSS (VmHWM) starts again from the RSS
    before = rss_line("VmRSS")
    step(batch, crop)
    measured = rss_line("VmHWM") - before
    estimate = step_bytes(batch, crop, channels, blocks, dtype)
    pixels = batch * crop * crop
    return {
        "setting": setting,
        "measured_bytes": measured,
        "measured_bytes_per_pixel": measured / pixels,
        "estimate_bytes": estimate,
        "estimate_over_measured": estimate / measured,
    }


def table(rows: list[dict], device_text: str) -> str:
    lines = [
        f"# Host memory of one CPU training step on {device_text}",
        "",
        f"torch {torch.__version__}; batch x crop x channels x blocks x precision (x ECR on an untrained "
        "VGG16); measured: the growth of the peak RSS over one step after a warm-up step; estimate: "
        "`recnet_cli.train.memory.step_bytes`, which `recnet train` checks against the memory available.",
        "",
        "| setting | measured GiB | bytes a crop pixel | estimate GiB | estimate / measured |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['setting']} | {row['measured_bytes'] / GIB:.2f} "
            f"| {row['measured_bytes_per_pixel']:,.0f} | {row['estimate_bytes'] / GIB:.2f} "
            f"| {row['estimate_over_measured']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--settings", default=SETTINGS, help="comma-separated BATCHxCROPxCHANNELSxBLOCKSxPRECISION[xecr]"
    )
    add_name_option(parser)
    parser.add_argument("--single", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(measure(args.single)))
        return
    rows = []
    for setting in args.settings.split(","):
        command = [sys.executable, __file__, "--single", setting]
        completed = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(completed.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    device_text = device_description(torch.device("cpu"))
    markdown = table(rows, device_text)
    summary = {"torch": torch.__version__, "rows": rows}
    write_tables(f"{args.name}train-memory-", device_text, summary, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
