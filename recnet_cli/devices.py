"""Choosing the compute device and the numeric precision."""

from __future__ import annotations

import ctypes
import functools
import platform
import sys
from pathlib import Path

import torch

from recnet_cli.imaging import out_of_host_memory
from recnet_cli.wording import gibibytes

try:
    import resource
except ImportError:  # Windows
    resource = None

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
PRECISIONS = ("auto", *DTYPES)
AUTO_PRECISION = "fp32"  # what --precision auto is on every device: half precision is opt-in


# glibc mallopt parameters
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LARGEST_REUSED_BLOCK = 32 * 2**20  # glibc's ceiling for the mmap threshold on 64-bit systems
KEPT_FREE_MEMORY = 2**30


# What PyTorch's RuntimeErrors say when an allocation fails other than through torch.OutOfMemoryError: the
# CPU allocator ("can't allocate memory"), CUDA ("CUDA error: out of memory"), MPS ("MPS backend out of
# memory") and cuBLAS or cuDNN workspaces ("..._STATUS_ALLOC_FAILED"; cuDNN 9 also names the memory:
# "..._DEVICE_ALLOCATION_FAILED").
HOST_ALLOCATOR_MESSAGE = "can't allocate memory"
OUT_OF_MEMORY_MESSAGES = (HOST_ALLOCATOR_MESSAGE, "out of memory", "_ALLOC_FAILED", "_ALLOCATION_FAILED")


class DeviceError(ValueError):
    """A device or precision the user asked for is not usable here."""


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation that failed, on the host or on a device."""
    if isinstance(error, torch.OutOfMemoryError) or out_of_host_memory(error):
        return True
    return isinstance(error, RuntimeError) and any(text in str(error) for text in OUT_OF_MEMORY_MESSAGES)


def is_host_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation in host memory that failed (Python's, NumPy's, OpenCV's or
    PyTorch's)."""
    allocator = isinstance(error, RuntimeError) and HOST_ALLOCATOR_MESSAGE in str(error)
    return allocator or out_of_host_memory(error)


RUNS_ON = ("cpu", "cuda", "mps")  # the device types recnet's model runs on
DEVICE_FORMS = "use auto, cpu, cuda, cuda:N or mps"


def why_no_cuda() -> str:
    """Why PyTorch sees no CUDA GPU, with what to do: a CPU-only build (the common case, as pip may take
    one) needs another PyTorch; a CUDA build that finds no GPU, the driver or CUDA_VISIBLE_DEVICES. macOS
    has no CUDA build of PyTorch: its GPU is Apple's (mps)."""
    if sys.platform == "darwin":
        return "PyTorch has no CUDA on macOS: use mps for the Mac's GPU (auto picks it where there is one)"
    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return (
            f"this PyTorch ({torch.__version__}) is a CPU-only build: install a CUDA build of PyTorch"
            " (see the README's Quick start)"
        )
    return "this PyTorch build sees no CUDA GPU: check the GPU's driver (nvidia-smi) and CUDA_VISIBLE_DEVICES"


NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # a folder for each GPU the NVIDIA driver drives (Linux)


def unused_gpu() -> str | None:
    """Why ``auto`` picks the CPU on a machine whose NVIDIA driver drives a GPU (Linux), with what to do
    (``why_no_cuda``); None where it picks a GPU, or no GPU is seen."""
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        return None
    try:
        driven = any(NVIDIA_GPUS.iterdir())
    except OSError:  # no NVIDIA driver; not Linux
        return None
    return (
        f"the CPU runs the model, though this machine has an NVIDIA GPU: {why_no_cuda()}" if driven else None
    )


def pick_device(spec: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; anything else is a torch device string."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {spec!r} ({DEVICE_FORMS})") from exc
    if device.type not in RUNS_ON:  # xpu, meta, xla, hpu...: PyTorch names them, recnet does not run there
        raise DeviceError(
            f"device {spec!r}: recnet runs on the CPU, CUDA GPUs and Apple MPS ({DEVICE_FORMS})"
        )
    if device.type == "cpu" and device.index is not None:  # PyTorch takes cpu:N for the one CPU device
        raise DeviceError(f"device {spec!r}: the CPU is one device, with no number (use cpu)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {spec!r} asked for, but {why_no_cuda()}")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"device {spec!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {spec!r} asked for, but Apple MPS is not available")
    return device


def pick_devices(spec: str) -> list[torch.device]:
    """One device, or a comma-separated list (cuda:0,cuda:1) that a batch spreads its photos over."""
    names = [name.strip() for name in spec.split(",")]
    if len(names) == 1:
        return [pick_device(names[0])]
    if "" in names or "auto" in names:
        raise DeviceError(f"device list {spec!r}: name each device, e.g. cuda:0,cuda:1 (no 'auto' in a list)")
    return [pick_device(name) for name in names]


def precision_name(dtype: torch.dtype) -> str:
    """The --precision name of a compute dtype: "fp32", "fp16" or "bf16"."""
    return next(name for name, known in DTYPES.items() if known == dtype)


def pick_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The compute dtype for a --precision choice; 'auto' is ``AUTO_PRECISION``."""
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r} (choose one of {', '.join(PRECISIONS)})")
    if device.type == "cpu" and precision == "fp16":
        raise DeviceError("fp16 is not supported on the CPU; use --precision auto (fp32 there)")
    return DTYPES[AUTO_PRECISION if precision == "auto" else precision]


@functools.cache
def keep_freed_host_memory() -> None:
    """Make glibc's malloc reuse freed blocks of up to 32 MiB instead of returning them to the system.

    Otherwise every tile-sized tensor on the CPU costs fresh pages that the kernel must zero (half a
    million page faults per 2 MP photo, about 15% of the time). Does nothing outside glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(M_MMAP_THRESHOLD, LARGEST_REUSED_BLOCK)
    libc.mallopt(M_TRIM_THRESHOLD, KEPT_FREE_MEMORY)


def reset_peak_memory(device: torch.device) -> None:
    """Starts ``peak_memory_bytes`` afresh on a CUDA device (a process's peak RSS cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> int | None:
    """The most memory used so far: allocated on a CUDA device (since ``reset_peak_memory``), this
    process's peak resident memory for the CPU, None where neither is known (MPS, Windows)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    if device.type != "cpu" or resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS counts bytes, Linux KiB


def describe_peak_memory(device: torch.device, peak: int | None) -> str:
    """A ``peak_memory_bytes`` figure in words ("peak 1.25 GiB of GPU memory"), "" where it is not known."""
    where = "GPU memory" if device.type == "cuda" else "process memory"
    return "" if peak is None else f"peak {gibibytes(peak, 2)} of {where}"
