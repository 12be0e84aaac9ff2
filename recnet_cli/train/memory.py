"""The host memory a training step on the CPU takes, checked before the first step: Linux ends a process
that overfills the memory without a word (and may end others with it), so a batch and crop that cannot fit
are refused while the run can still say why."""

from __future__ import annotations

import torch

from recnet_cli.hostmemory import available_host_memory
from recnet_cli.wording import counted, gibibytes

# Bytes a step takes per crop pixel for each channel of each block (the activations the backward pass
# keeps, with its working buffers), and per crop pixel whatever the network's size: fitted to the growth of
# the peak RSS over one step (forward, paper losses, backward, Adam) with PyTorch 2.13 on a 2-core Intel
# Xeon, from 1 x 256^2 to 8 x 384^2, 4 to 16 channels, 3 to 7 blocks, float32 and bf16 autocast, with and
# without ECR (benchmarks/bench_train_memory.py, results/train-memory-*.md). The bundled model's size took
# 8,400-10,100 bytes a crop pixel in float32 (runs differ by up to 15%), and 8 x 384^2, the default,
# 9.7-9.9 GiB; these constants give 10,000 bytes and 11.0 GiB, and over all the settings 0.93-1.23 times
# what was measured.
STEP_BYTES_PER_CHANNEL_BLOCK = {torch.float32: 240, torch.bfloat16: 125}
STEP_BYTES_PER_PIXEL = 400
# The most the estimate was over a measured step: a step is refused only where even the estimate over
# this is more than the memory available, so that no run that fits is refused (one that just does not fit
# may go on and be ended).
ESTIMATE_OVER_MEASURED = 1.25


def step_bytes(crops: int, crop: int, channels: int, blocks: int, dtype: torch.dtype) -> int:
    """About what a CPU training step on ``crops`` square crops takes in host memory."""
    per_pixel = channels * blocks * STEP_BYTES_PER_CHANNEL_BLOCK[dtype] + STEP_BYTES_PER_PIXEL
    return crops * crop * crop * per_pixel


def step_memory_problem(
    crops: int, crop: int, channels: int, blocks: int, dtype: torch.dtype, resuming: bool
) -> str | None:
    """Why ``crops`` crops of ``crop`` pixels cannot be trained on in this process's host memory; None where
    they may fit, or where the memory available is unknown (not Linux)."""
    available = available_host_memory()
    needed = step_bytes(crops, crop, channels, blocks, dtype)
    if available is None or needed / ESTIMATE_OVER_MEASURED <= available:
        return None
    advice = (
        "free some memory (close other programs), or resume the run on a machine with more"
        if resuming
        else "try a smaller --batch or --crop"
    )
    return (
        f"not enough memory to train at this batch and crop size: a step on {counted(crops, 'crop')} of "
        f"{crop} px takes about {gibibytes(needed)} on the CPU, more than the {gibibytes(available)} "
        f"available; {advice}"
    )
