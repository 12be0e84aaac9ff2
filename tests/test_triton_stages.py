"""The fused Triton stages compute what the eager stages compute: on a CUDA GPU when there is one, else in
Triton's interpreter on CPU tensors (slow, so the images are small)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")  # in its interpreter when there is no GPU (see conftest.py)

from random_models import random_image, random_model

from recnet_cli.model import RECNet, fast, triton_stages
from recnet_cli.tiling import TiledRunner

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
pytestmark = pytest.mark.usefixtures("exact_float32")  # on a GPU the eager stages are float32 as well
COMPILE_SCRIPT = Path(__file__).parents[1] / "benchmarks" / "compile_triton_kernels.py"


@pytest.fixture(scope="module")
def model() -> RECNet:
    return random_model(seed=5).to(DEVICE)


def block_inputs(model: RECNet, batch: int, height: int, width: int, dtype: torch.dtype) -> dict[str, object]:
    """The first block's inputs and every eager stage's output, for one random image batch."""
    image = random_image(batch, height, width).to(DEVICE, dtype)
    with torch.inference_mode():
        features, mask = fast.extract_and_mask(model, fast.channels_last(image))
        kernels = fast.blur_kernels(model)[:1]
        under, over = fast.branch_masks(mask, kernels, fast.Window.whole(height, width))
        block = model.dualprocess.blocks[0]
        scales = fast.branch_scales(block.norm, features, under, over)
        moments = fast.branch_moments(features, scales)
        normed = fast.normalize(block.norm, features, scales, *moments)
        mixed = fast.mixed_scale_features(block.mssa, normed)
        attention = fast.attention_weights(block.mssa, fast.attention_grams(mixed))
        share = fast.attention_free_share(block, normed, mixed)
        output = fast.block_output(block, features, share, attention)
        first = fast.merge(model, 0, features, None)  # the first block's share, with the bias
        merged = fast.merge(model, 1, output, first)
    return dict(locals())


@pytest.fixture(scope="module")
def wide_model() -> RECNet:
    return random_model(seed=6, channels=16).to(DEVICE)


@pytest.mark.parametrize(
    ("model_name", "batch", "height", "width", "program_pixels", "tile_width"),
    [
        ("model", 2, 37, 29, None, 0),
        ("model", 1, 3, 70, None, 0),
        ("model", 1, 40, 1, None, 0),
        # programs clear of the image's edge, which the kernels run without bounds checks, beside ones
        # that are not, some of which end a pixel short of clear: runs of 128 pixels in rows of 224 (a
        # 3x3 window's margin), and tiles of 8 rows of 16 in rows of 49 (a 5x5 window's)
        ("model", 1, 7, 224, 128, 0),
        ("model", 2, 20, 49, 128, 16),
        ("wide_model", 2, 19, 23, None, 0),
    ],
)
def test_each_fused_stage_matches_the_eager_stage_in_float32(
    model_name: str,
    batch: int,
    height: int,
    width: int,
    program_pixels: int | None,
    tile_width: int,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if program_pixels is not None:
        monkeypatch.setattr(triton_stages, "BLOCK", program_pixels)
    monkeypatch.setattr(triton_stages, "TILE_WIDTH", tile_width)
    model = request.getfixturevalue(model_name)
    x = block_inputs(model, batch, height, width, torch.float32)
    block = x["block"]
    with torch.inference_mode():
        stages = {
            "first": triton_stages.merge(model, 0, x["features"], None),
            "merged": triton_stages.merge(model, 1, x["output"], x["first"]),
            "scales": triton_stages.branch_scales(block.norm, x["features"], x["under"], x["over"]),
            "normed": triton_stages.normalize(block.norm, x["features"], x["scales"], *x["moments"]),
            "mixed": triton_stages.mixed_scale_features(block.mssa, x["normed"]),
            "share": triton_stages.attention_free_share(block, x["normed"], x["mixed"]),
            "output": triton_stages.block_output(block, x["features"], x["share"], x["attention"]),
        }
    for name, result in stages.items():
        expected = x[name]
        assert result.shape == expected.shape, name
        assert result.is_contiguous(memory_format=torch.channels_last), name
        assert (result - expected).abs().max() <= 1e-5 * max(1.0, expected.abs().max().item()), name


def test_stages_match_with_products_padded_to_16_channels_deep(
    model: RECNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Triton before 3.8 (the H200 machine has 3.6) compiles no float32 product less than 16 deep: the
    # 8-channel products are padded with zeros there
    monkeypatch.setattr(triton_stages, "PRODUCT_DEPTH", 16)
    x = block_inputs(model, 1, 37, 29, torch.float32)
    block = x["block"]
    with torch.inference_mode():
        stages = {
            "share": triton_stages.attention_free_share(block, x["normed"], x["mixed"]),
            "output": triton_stages.block_output(block, x["features"], x["share"], x["attention"]),
        }
    for name, result in stages.items():
        expected = x[name]
        assert (result - expected).abs().max() <= 1e-5 * max(1.0, expected.abs().max().item()), name


@pytest.mark.parametrize("interior", [(slice(None), slice(None)), (slice(2, -3), slice(1, -2))])
def test_pixel_sums_match_the_eager_ones(model: RECNet, interior: tuple[slice, slice]) -> None:
    """The moments and Gram matrices from the sums kernel, over whole maps and over a tile's interior (a
    strided view), which takes more than one program's run of pixels."""
    x = block_inputs(model, 2, 67, 71, torch.float32)
    features, scales, mixed = (
        x[name][:, :, interior[0], interior[1]] for name in ("features", "scales", "mixed")
    )
    expected = [*fast.branch_moments(features, scales), fast.attention_grams(mixed)]
    sums = triton_stages.pixel_sums
    results = [*fast.branch_moments(features, scales, sums), fast.attention_grams(mixed, sums)]
    for result, wanted in zip(results, expected, strict=True):
        assert result.dtype == wanted.dtype == torch.float64
        assert (result - wanted).abs().max() <= 1e-6 * max(1.0, wanted.abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("squares", [False, True])
@pytest.mark.parametrize(("m", "n"), [(3, 8), (3, 16), (16, 16)])
def test_both_forms_of_the_sums_kernel_match_the_exact_sums(
    m: int, n: int, squares: bool, dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few channels (3 x 8) add each pixel's outer product, more take matrix products (on a GPU in one
    TF32 pass for 16-bit maps, whose products TF32 holds exactly); with and without the sums of the
    squares' products. All sum in float32, 16 pixels a program's thread in turn and then the threads'
    sums, with as many threads as on a GPU (the tests' interpreter otherwise runs programs of 4096, which
    add 4096 in turn): each sum is within a few float32 steps of the exact one, on the scale of the sum of
    its terms' sizes (random maps' sums cancel out)."""
    assert triton_stages.sums_outer_products(m, n) == ((m, n) == (3, 8))
    monkeypatch.setattr(triton_stages, "BLOCK", 128)
    torch.manual_seed(m * n)
    maps = (torch.randn(2, c, 53, 47, device=DEVICE).to(dtype) for c in (m, n))
    left, right = (fast.channels_last(x) for x in maps)
    exact = fast.pixel_sums(left.double(), right.double(), squares)
    sizes = fast.pixel_sums(left.double().abs(), right.double().abs(), squares)
    result = triton_stages.pixel_sums(left, right, squares)
    assert result.shape == exact.shape == ((2, 2, m, n) if squares else (2, m, n))
    assert ((result - exact).abs() / sizes).max() <= 8 * torch.finfo(torch.float32).eps


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "padding_mode"), [(3, 8, "zeros"), (8, 1, "replicate"), (8, 3, "zeros")]
)
def test_layer_convolutions_match_the_eager_ones(
    in_channels: int, out_channels: int, padding_mode: str
) -> None:
    torch.manual_seed(in_channels * out_channels)
    layer = torch.nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode=padding_mode).to(DEVICE)
    x = fast.channels_last(torch.randn(2, in_channels, 9, 13, device=DEVICE))
    with torch.inference_mode():
        expected = fast.conv(layer, x)
        result = triton_stages.layer_conv(layer, x)
    assert result.shape == expected.shape
    assert (result - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("taps_depth", [8, 16, 32, 64])
def test_fused_forward_matches_the_reference_forward(
    model: RECNet, taps_depth: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the convolutions' taps one, two, four or more to a matrix product."""
    monkeypatch.setattr(triton_stages, "TAPS_DEPTH", taps_depth)
    image = random_image(1, 45, 38).to(DEVICE)
    with torch.inference_mode():
        expected = model(image)
    output, _ = fast.fast_forward(model, image, triton_stages.STAGES)
    assert (output - expected).abs().max() <= 1e-4


def test_fused_stages_tile_exactly(model: RECNet) -> None:
    image = random_image(1, 131, 37)  # two tiles, one above the other
    whole, _ = fast.fast_forward(model, image.to(DEVICE))
    runner = TiledRunner(model, DEVICE, torch.float32, 128, storage=DEVICE, stages=triton_stages.STAGES)
    tiled, _ = runner.run(image)
    assert (tiled - whole).abs().max() <= 1e-4


def test_half_precision_maps_stay_close_to_float32(model: RECNet) -> None:
    image = random_image(1, 33, 41).to(DEVICE)
    expected, _ = fast.fast_forward(model, image)
    output, _ = fast.fast_forward(model, image.half(), triton_stages.STAGES)
    assert output.dtype == torch.float16
    assert (output.float() - expected).abs().max() <= 0.01


def test_models_the_kernels_cannot_run_are_named() -> None:
    assert triton_stages.unsupported_reason(RECNet(channels=8)) is None
    assert triton_stages.unsupported_reason(RECNet(channels=16)) is None
    assert "12" in triton_stages.unsupported_reason(RECNet(channels=12))
    assert "4" in triton_stages.unsupported_reason(RECNet(channels=4))


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the tests above compile and run the kernels")
def test_kernels_compile_for_hopper_gpus_without_spills() -> None:
    """Ahead-of-time compilation for sm_90 (H100, H200) catches what the interpreter lets through."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("RECNET_TRITON")}
    result = subprocess.run(
        [sys.executable, str(COMPILE_SCRIPT), "--precisions", "fp16"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines() if line.startswith("| _")]
    assert {row[0].strip() for row in rows} == {
        name for name in vars(triton_stages) if name.startswith("_") and name.endswith("_kernel")
    }
    assert all(int(row[-2]) == 0 for row in rows), result.stdout  # no spill bytes
