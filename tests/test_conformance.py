"""The model reproduces the authors' code: every golden array, float64 and float32."""

from pathlib import Path

import numpy as np
import pytest
import torch

from recnet_cli.model import RECNet, parameter_count

GOLDEN = Path(__file__).parent / "data" / "recnet-reference.npz"
STAGES = ["extract", "mask", "block1", "block2", "block3", "block4", "block5", "output"]
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as data:
        return {key: data[key] for key in data.files}


def golden_model(golden: dict[str, np.ndarray], dtype: torch.dtype) -> RECNet:
    model = RECNet().to(dtype)
    state = {
        key.removeprefix("param/"): torch.from_numpy(v)
        for key, v in golden.items()
        if key.startswith("param/")
    }
    model.load_state_dict(state, strict=True)
    return model.eval()


def test_parameter_count_matches_the_authors() -> None:
    assert parameter_count(RECNet()) == 38_975


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", ["photo", "rand"])
def test_every_stage_matches_the_golden_values(golden, case: str, dtype: torch.dtype) -> None:
    model = golden_model(golden, dtype)
    with torch.no_grad():
        result = model.forward_with_intermediates(torch.from_numpy(golden[f"{case}/input"]).to(dtype))
    for stage in STAGES:
        error = (result[stage].double() - torch.from_numpy(golden[f"{case}/{stage}"])).abs().max().item()
        assert error <= TOLERANCE[dtype], f"{case}/{stage}: max abs error {error:.3g}"


def test_golden_parameters_are_not_the_initialisation(golden) -> None:
    """Guards the test itself: the golden file must exercise trained-looking, non-default parameters."""
    fresh = RECNet().state_dict()
    alpha = golden["param/dualprocess.conv1.norm.alpha"]
    kernel = golden["param/dualprocess.conv1.norm.blur.kernel"]
    assert not np.allclose(alpha, fresh["dualprocess.conv1.norm.alpha"].numpy())
    assert not np.allclose(kernel, fresh["dualprocess.conv1.norm.blur.kernel"].numpy(), atol=1e-6)
