"""Choosing devices and precisions from what the user typed."""

import platform
import re
import resource
from pathlib import Path

import pytest
import torch
from conftest import torch_out_of_memory
from random_models import random_image, random_model

from recnet_cli.devices import (
    DeviceError,
    describe_peak_memory,
    is_host_out_of_memory,
    is_out_of_memory,
    keep_freed_host_memory,
    peak_memory_bytes,
    pick_device,
    pick_devices,
    pick_dtype,
    precision_name,
    unused_gpu,
)
from recnet_cli.engine import correctors_for
from recnet_cli.model import RECNet
from recnet_cli.tiling import TiledRunner


def test_auto_picks_the_cpu_here_and_names_are_parsed() -> None:
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert pick_device("auto").type == expected
    assert pick_devices("cpu") == [torch.device("cpu")]
    assert pick_devices("cpu, cpu") == [torch.device("cpu")] * 2


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("gpu", "unknown device"),
        ("cpu:1", "the CPU is one device, with no number"),
        ("cpu,cpu:0", "the CPU is one device, with no number"),
        ("cpu,,cpu", "name each device"),
        ("auto,cpu", "no 'auto' in a list"),
        # devices PyTorch names, where the model would fail in a traceback
        ("xpu", "'xpu': recnet runs on the CPU, CUDA GPUs and Apple MPS"),
        ("meta", "'meta': recnet runs on the CPU, CUDA GPUs and Apple MPS"),
        ("cpu,hpu:0", "'hpu:0': recnet runs on the CPU, CUDA GPUs and Apple MPS"),
    ],
)
def test_bad_device_names_are_refused_with_a_reason(spec: str, reason: str) -> None:
    with pytest.raises(DeviceError, match=reason):
        pick_devices(spec)


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="this machine has two GPUs")
def test_gpus_that_are_not_there_are_refused() -> None:
    with pytest.raises(DeviceError, match=r"cuda:[01]"):
        pick_devices("cuda:0,cuda:1")


def test_a_gpu_number_one_past_the_last_is_refused_with_how_many_gpus_there_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On a one-GPU machine, --device cuda:1 must fail up front, not in a CUDA traceback mid-batch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(DeviceError, match=r"^device 'cuda:1' asked for, but only 1 GPU\(s\) exist$"):
        pick_device("cuda:1")


@pytest.mark.parametrize(
    ("cuda", "mps", "picked"), [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_picks_cuda_then_mps_then_the_cpu(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool, picked: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device("auto") == torch.device(picked)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (
            "cuda",
            "device 'cuda' asked for, but this PyTorch build sees no CUDA GPU: check the GPU's driver"
            " (nvidia-smi) and CUDA_VISIBLE_DEVICES",
        ),
        ("mps", "device 'mps' asked for, but Apple MPS is not available"),
    ],
)
def test_a_gpu_this_machine_lacks_is_refused_up_front(
    monkeypatch: pytest.MonkeyPatch, spec: str, reason: str
) -> None:
    monkeypatch.setattr(torch.version, "cuda", "12.8")  # a CUDA build, as on a GPU machine
    monkeypatch.setattr("sys.platform", "linux")  # not macOS, which has no CUDA build
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=f"^{re.escape(reason)}$"):
        pick_device(spec)


def test_cuda_asked_of_a_cpu_only_pytorch_says_to_install_a_cuda_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pip can take PyTorch's CPU build on a GPU machine: "sees no CUDA GPU" sent users to their driver
    monkeypatch.setattr("sys.platform", "linux")  # not macOS, which has no CUDA build
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch, "__version__", "2.13.0+cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    reason = (
        "device 'cuda:0' asked for, but this PyTorch (2.13.0+cpu) is a CPU-only build: install a CUDA build"
        " of PyTorch (see the README's Quick start)"
    )
    with pytest.raises(DeviceError, match=f"^{re.escape(reason)}$"):
        pick_device("cuda:0")


def test_cuda_asked_on_a_mac_says_to_use_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    # macOS has no CUDA build of PyTorch: "a CPU-only build: install a CUDA build" asked for the impossible
    monkeypatch.setattr("sys.platform", "darwin")
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    reason = (
        "device 'cuda' asked for, but PyTorch has no CUDA on macOS: use mps for the Mac's GPU (auto picks it"
        " where there is one)"
    )
    with pytest.raises(DeviceError, match=f"^{re.escape(reason)}$"):
        pick_device("cuda")


@pytest.mark.parametrize("gpus", [[], ["0000:01:00.0"]])
@pytest.mark.parametrize("cuda", [False, True])
def test_auto_on_the_cpu_of_a_machine_with_an_nvidia_gpu_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cuda: bool, gpus: list[str]
) -> None:
    # A CPU-only PyTorch on a GPU machine ran each photo on the CPU (40 s where a GPU takes a second),
    # without a word: only --json named the device
    driver = tmp_path / "gpus"
    for gpu in gpus:
        (driver / gpu).mkdir(parents=True)
    monkeypatch.setattr("recnet_cli.devices.NVIDIA_GPUS", driver)
    monkeypatch.setattr("sys.platform", "linux")  # not macOS, which has no CUDA build
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch, "__version__", "2.13.0+cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    said = unused_gpu()
    if gpus and not cuda:
        assert said == (
            "the CPU runs the model, though this machine has an NVIDIA GPU: this PyTorch (2.13.0+cpu) is a"
            " CPU-only build: install a CUDA build of PyTorch (see the README's Quick start)"
        )
    else:
        assert said is None


def test_precisions() -> None:
    cpu = torch.device("cpu")
    assert pick_dtype("auto", cpu) == torch.float32
    assert pick_dtype("bf16", cpu) == torch.bfloat16
    assert pick_dtype("fp16", torch.device("cuda")) == torch.float16
    chosen = [precision_name(pick_dtype(name, cpu)) for name in ("auto", "fp32", "bf16")]
    assert chosen == ["fp32", "fp32", "bf16"]
    assert precision_name(torch.float16) == "fp16"
    with pytest.raises(DeviceError, match="fp16 is not supported on the CPU"):
        pick_dtype("fp16", cpu)
    with pytest.raises(DeviceError, match="unknown precision"):
        pick_dtype("fp8", cpu)


def test_auto_precision_on_a_gpu_is_float32() -> None:
    # Half precision is opt-in: a GPU under --precision auto must not quietly give fp16 (NaNs, banding)
    assert pick_dtype("auto", torch.device("cuda")) == torch.float32
    assert pick_dtype("auto", torch.device("cuda:0")) == torch.float32


def test_each_device_gets_its_own_copy_of_the_model() -> None:
    model = RECNet(channels=4, blocks=1)
    cpu = torch.device("cpu")
    first, second = correctors_for(model, [cpu, cpu], [torch.float32, torch.bfloat16], tile=0)
    assert first.model is model and second.model is not model
    assert (first.dtype, second.dtype) == (torch.float32, torch.bfloat16)
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc only")
def test_tiles_reuse_freed_host_memory_instead_of_fresh_pages() -> None:
    keep_freed_host_memory()
    runner = TiledRunner(random_model(seed=1), torch.device("cpu"), torch.float32, 384)
    image = random_image(1, 700, 700)
    runner.run(image)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    runner.run(image)
    # Without keep_freed_host_memory this run takes about 120,000 page faults (fresh pages per tile).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 20_000


def test_peak_memory_on_the_cpu_is_the_process_peak_in_bytes() -> None:
    held = torch.ones(256 * 2**20, dtype=torch.uint8)  # 256 MiB, every page written
    assert held.numel() <= peak_memory_bytes(torch.device("cpu")) < 64 * 2**30
    assert peak_memory_bytes(torch.device("meta")) is None


@pytest.mark.parametrize(
    ("device", "peak", "said"),
    [
        ("cuda:0", 5 * 2**28, "peak 1.25 GiB of GPU memory"),
        ("cpu", 5 * 2**28, "peak 1.25 GiB of process memory"),
        ("mps", None, ""),
    ],
)
def test_peak_memory_is_said_as_the_memory_it_counts(device: str, peak: int | None, said: str) -> None:
    assert describe_peak_memory(torch.device(device), peak) == said


@pytest.mark.parametrize(
    ("error", "out_of_memory", "on_host"),
    [
        (MemoryError(), True, True),
        (
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                "you tried to allocate 3210258816 bytes. Error code 12 (Cannot allocate memory)"
            ),
            True,
            True,
        ),
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB."), True, False),
        (RuntimeError("CUDA error: out of memory"), True, False),
        (RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), True, False),
        (RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED"), True, False),
        (RuntimeError("MPS backend out of memory (MPS allocated: 9.00 GB)"), True, False),
        (RuntimeError("Expected all tensors to be on the same device"), False, False),
        (ValueError("out of memory"), False, False),
        (ValueError("can't allocate memory"), False, False),
    ],
)
def test_failed_allocations_are_told_from_other_errors_and_the_host_s_from_a_device_s(
    error: BaseException, out_of_memory: bool, on_host: bool
) -> None:
    assert is_out_of_memory(error) is out_of_memory
    assert is_host_out_of_memory(error) is on_host


def test_pytorch_s_own_host_allocation_failure_is_recognised() -> None:
    with pytest.raises(RuntimeError) as raised:
        torch_out_of_memory()
    assert is_out_of_memory(raised.value) and is_host_out_of_memory(raised.value)
