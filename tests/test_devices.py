"""Choosing devices and precisions from what the user typed."""

import pytest
import torch

from recnet_cli.devices import DeviceError, pick_device, pick_devices, pick_dtype
from recnet_cli.engine import correctors_for
from recnet_cli.model import RECNet


def test_auto_picks_the_cpu_here_and_names_are_parsed() -> None:
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert pick_device("auto").type == expected
    assert pick_devices("cpu") == [torch.device("cpu")]
    assert pick_devices("cpu, cpu") == [torch.device("cpu")] * 2


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("gpu", "unknown device"),
        ("cpu,,cpu", "name each device"),
        ("auto,cpu", "no 'auto' in a list"),
    ],
)
def test_bad_device_names_are_refused_with_a_reason(spec: str, reason: str) -> None:
    with pytest.raises(DeviceError, match=reason):
        pick_devices(spec)


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="this machine has two GPUs")
def test_gpus_that_are_not_there_are_refused() -> None:
    with pytest.raises(DeviceError, match=r"cuda:[01]"):
        pick_devices("cuda:0,cuda:1")


def test_precisions() -> None:
    cpu = torch.device("cpu")
    assert pick_dtype("auto", cpu) == torch.float32
    assert pick_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(DeviceError, match="fp16 is not supported on the CPU"):
        pick_dtype("fp16", cpu)
    with pytest.raises(DeviceError, match="unknown precision"):
        pick_dtype("fp8", cpu)


def test_each_device_gets_its_own_copy_of_the_model() -> None:
    model = RECNet(channels=4, blocks=1)
    cpu = torch.device("cpu")
    first, second = correctors_for(model, [cpu, cpu], [torch.float32, torch.bfloat16], tile=0)
    assert first.model is model and second.model is not model
    assert (first.dtype, second.dtype) == (torch.float32, torch.bfloat16)
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
