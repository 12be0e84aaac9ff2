"""The fast whole-image path computes the reference forward (recnet.py) on random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from random_models import random_image, random_model

from recnet_cli.model import RECNet
from recnet_cli.model.fast import Window, blur, every_blocks_branch_masks, fast_forward, fft_size, inside_sum


@pytest.fixture(scope="module")
def model() -> RECNet:
    return random_model()


def reference(model: RECNet, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        results = model.forward_with_intermediates(image)
    return results["output"], results["mask"]


@pytest.mark.parametrize(
    ("batch", "height", "width"), [(1, 64, 64), (2, 37, 53), (1, 5, 3), (1, 1, 40), (1, 33, 1)]
)
def test_fast_path_matches_reference_in_float32(model: RECNet, batch: int, height: int, width: int) -> None:
    image = random_image(batch, height, width)
    expected_output, expected_mask = reference(model, image)
    output, mask = fast_forward(model, image)
    assert output.shape == expected_output.shape and mask.shape == expected_mask.shape
    assert (output - expected_output).abs().max() <= 1e-4
    assert (mask - expected_mask).abs().max() <= 1e-4


def test_random_model_output_is_not_just_clamped(model: RECNet) -> None:
    output, _ = reference(model, random_image(1, 64, 64))
    assert ((output > 0) & (output < 1)).float().mean() > 0.2


def test_fast_path_matches_reference_in_float64() -> None:
    model = random_model(seed=1).double()
    image = random_image(1, 41, 67, dtype=torch.float64)
    expected_output, expected_mask = reference(model, image)
    output, mask = fast_forward(model, image)
    assert (output - expected_output).abs().max() <= 1e-9
    assert (mask - expected_mask).abs().max() <= 1e-9


def test_bfloat16_stays_close_to_float32(model: RECNet) -> None:
    image = random_image(1, 48, 40)
    expected, _ = fast_forward(model, image)
    output, _ = fast_forward(model, image.bfloat16())
    assert output.dtype == torch.bfloat16
    # bfloat16 keeps 8 significant bits, so each layer rounds its features by up to 0.4%, and the random
    # weights amplify that over the five blocks: measured 0.0036 mean and 0.029 largest (about 1 and 7
    # levels of 8 bits) on this model and image, 0.0026-0.0044 and 0.029-0.069 on seeds 0-2
    error = (output.float() - expected).abs()
    assert error.mean() <= 0.006 and error.max() <= 0.05


def test_fft_blur_matches_zero_padded_convolution() -> None:
    generator = torch.Generator().manual_seed(3)
    mask = torch.rand(2, 1, 23, 40, generator=generator, dtype=torch.float64)
    kernels = torch.rand(3, 1, 31, 31, generator=generator, dtype=torch.float64)
    assert torch.allclose(blur(mask, kernels), F.conv2d(mask, kernels, padding=15), atol=1e-12)


def test_inside_sum_is_the_blur_of_ones_seen_through_a_window() -> None:
    kernels = torch.rand(2, 1, 31, 31, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    whole = F.conv2d(torch.ones(1, 1, 50, 70, dtype=torch.float64), kernels, padding=15)
    window = Window(10, 35, 48, 70, 50, 70)
    expected = whole[:, :, window.rows, window.cols]
    assert torch.allclose(inside_sum(kernels, window), expected, atol=1e-12)


def test_window_grows_within_the_image_and_locates_inner_windows() -> None:
    tile = Window(0, 100, 128, 228, 300, 229)
    grown = tile.grown(6)
    assert grown == Window(0, 94, 134, 229, 300, 229)
    assert grown.locate(tile) == (slice(0, 128), slice(6, 134))


@pytest.mark.parametrize(("n", "expected"), [(1, 1), (7, 8), (31, 32), (1054, 1080), (1125, 1125)])
def test_fft_size_is_the_next_5_smooth_number(n: int, expected: int) -> None:
    assert fft_size(n) == expected


@pytest.mark.parametrize("case", ["photo", "rand"])
def test_fast_path_matches_the_authors_golden_values(case: str) -> None:
    golden = np.load(Path(__file__).parent / "data" / "recnet-reference.npz")
    state = {name.removeprefix("param/"): torch.from_numpy(golden[name]) for name in golden.files}
    model = RECNet().double()
    model.load_state_dict({name: value for name, value in state.items() if "/" not in name})
    output, mask = fast_forward(model, torch.from_numpy(golden[f"{case}/input"]))
    assert (output - torch.from_numpy(golden[f"{case}/output"])).abs().max() <= 1e-9
    assert (mask - torch.from_numpy(golden[f"{case}/mask"])).abs().max() <= 1e-9


def test_reference_with_every_blocks_branch_masks_hook_matches_values_and_gradients() -> None:
    image = random_image(1, 40, 52)
    outputs, kernel_grads = [], []
    for hook in (None, every_blocks_branch_masks):
        model = random_model(seed=4)
        output = model.forward_with_intermediates(image, hook)["output"]
        output.square().sum().backward()
        outputs.append(output.detach())
        kernel_grads.append(torch.cat([b.norm.blur.kernel.grad for b in model.dualprocess.blocks]))
    assert (outputs[0] - outputs[1]).abs().max() <= 1e-4
    expected, grads = kernel_grads
    assert (grads - expected).abs().max() <= 1e-5 * expected.abs().max()
