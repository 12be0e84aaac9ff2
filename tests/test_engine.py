"""The Corrector: the strength setting (how much of the correction reaches the photo), compiling, running
out of memory, the mirrored border, and corrections finished in other threads."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import types
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import numpy_out_of_memory, torch_out_of_memory
from random_models import random_image, random_model
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from recnet_cli import device_pixels, engine
from recnet_cli.autostrength import FEATURE_COUNT, StrengthCalibration, exposure_features
from recnet_cli.device_pixels import mirror_border, mirrored_indices
from recnet_cli.engine import (
    CPU_TILE,
    CPU_WHOLE_IMAGE_BUDGET,
    EDGE_PAD,
    MAP_MEMORY_SHARE,
    CompiledForward,
    Corrector,
    PhotoOutOfMemoryError,
    TileSetting,
    blend,
    whole_image_bytes,
    with_border,
)
from recnet_cli.imaging import pixels
from recnet_cli.imaging.pixels import COLOUR_GAIN_FLOOR, MOST_COLOUR_GAIN, lightness_only
from recnet_cli.model.fast import fast_forward
from recnet_cli.tiling import TiledRunner, full_maps_bytes, map_sizes, pinned_maps_bytes

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return random_image(4, 70, 90)[0].permute(1, 2, 0).numpy()


def test_strength_moves_the_photo_part_of_the_way_to_the_correction(photo: np.ndarray) -> None:
    model = random_model(seed=6)
    full = Corrector(model, CPU).correct(photo)
    half = Corrector(model, CPU, strength=0.5).correct(photo)
    none = Corrector(model, CPU, strength=0.0).correct(photo)
    assert np.abs(full.image - photo).max() > 0.05  # the model does change this photo
    assert np.allclose(none.image, photo, atol=1e-6)
    assert np.allclose(half.image, (photo + full.image) / 2, atol=1e-6)
    assert half.image.dtype == np.float32
    assert np.array_equal(half.mask, full.mask)  # the mask is the model's, whatever the strength


@pytest.mark.parametrize("tile", [0, 128])
def test_a_correction_is_the_reference_forward_of_the_photo_with_its_mirrored_border_cropped_off(
    tile: int,
) -> None:
    # every other engine test compares one Corrector with another: a border cropped a pixel off passed
    photo = random_image(1, 150, 131)[0].permute(1, 2, 0).numpy()
    model = random_model(seed=8)
    pad = engine.EDGE_PAD
    bordered = np.pad(photo, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    with torch.no_grad():
        reference = model.forward_with_intermediates(torch.from_numpy(bordered).permute(2, 0, 1)[None])
    expected = reference["output"][0].permute(1, 2, 0).numpy()[pad:-pad, pad:-pad]
    result = Corrector(model, CPU, tile=tile).correct(photo)
    assert result.image.shape == photo.shape
    assert np.abs(result.image - expected).max() <= 1e-4
    assert np.abs(result.mask - reference["mask"][0, 0].numpy()[pad:-pad, pad:-pad]).max() <= 1e-4


def test_keep_colour_puts_the_corrections_lightness_in_the_photos_colours(photo: np.ndarray) -> None:
    model = random_model(seed=6)
    plain_full = Corrector(model, CPU).correct(photo).image
    assert np.array_equal(
        Corrector(model, CPU, keep_colour=True).correct(photo).image, lightness_only(photo, plain_full)
    )
    for strength in (1.0, 0.5):
        plain = Corrector(model, CPU, strength=strength).correct(photo)
        kept = Corrector(model, CPU, strength=strength, keep_colour=True).correct(photo)
        full = Corrector(model, CPU, keep_colour=True).correct(photo).image
        assert np.allclose(kept.image, photo + strength * (full - photo), atol=1e-6)
        assert np.array_equal(kept.mask, plain.mask) and kept.strength == plain.strength
        assert np.abs(kept.image - plain.image).max() > 0.02  # the random model's colours differ
    # the photo's lightness in the correction's place, before the strength: strength 0 is the photo
    none = Corrector(model, CPU, strength=0.0, keep_colour=True).correct(photo)
    assert np.array_equal(none.image, photo)


def test_auto_strength_is_predicted_from_the_correction_in_the_colours_it_is_written_in(
    photo: np.ndarray,
) -> None:
    # as `recnet calibrate` fits it: on corrections as the command makes them, where the photo's colours
    # clip a little of the lightness away
    model = random_model(seed=6)
    full = Corrector(model, CPU).correct(photo).image
    kept = lightness_only(photo, full)
    model_colours, photo_colours = exposure_features(photo, full), exposure_features(photo, kept)
    # 0.5 from the model's colours; from the photo's, the further the more their statistics differ
    weights = tuple(np.sign(photo_colours - model_colours))
    calibration = StrengthCalibration(tuple(model_colours), (1e-3,) * FEATURE_COUNT, weights, 0.0)
    assert calibration.predict(photo, full) == 0.5 and calibration.predict(photo, kept) > 0.9
    corrector = Corrector(model, CPU, strength="auto", calibration=calibration, keep_colour=True)
    assert corrector.correct(photo).strength == calibration.predict(photo, kept)


def test_blend_stays_in_range() -> None:
    original = np.array([0.0, 1.0, 0.5], dtype=np.float32)
    corrected = np.array([1.0, 0.0, 0.5], dtype=np.float32)
    assert np.array_equal(blend(original, corrected, 0.25), np.array([0.25, 0.75, 0.5], dtype=np.float32))
    assert blend(original, corrected, 1.0) is corrected


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_strength_outside_zero_to_one_is_refused(strength: float) -> None:
    with pytest.raises(ValueError, match="strength must be between 0 and 1"):
        Corrector(random_model(seed=6), CPU, strength=strength)


@pytest.mark.skipif(
    not any(shutil.which(name) for name in ("c++", "g++", "clang++")),
    reason="torch.compile needs a C++ compiler",
)
def test_compiled_whole_image_path_matches_the_uncompiled_one(photo: np.ndarray) -> None:
    model = random_model(seed=7)
    expected = Corrector(model, CPU, tile=0).correct(photo)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always", append=True)  # as python -W always would
        compiled = Corrector(model, CPU, tile=0, compiled=True)
        result = compiled.correct(photo)
    # PyTorch's modules warn about each other while compiling (torch.jit.script_method is deprecated...):
    # hidden, for the process, not around each call (which is not thread-safe; each GPU lane is a thread).
    assert [str(warning.message) for warning in shown] == []
    assert isinstance(compiled.whole_image, CompiledForward)
    assert compiled.whole_image.failure is None  # it did compile
    assert np.abs(result.image - expected.image).max() <= 1e-5
    assert np.abs(result.mask - expected.mask).max() <= 1e-5


def test_a_failing_compiler_falls_back_to_the_uncompiled_path(
    photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_compiler(*args: object) -> None:
        raise RuntimeError("no compiler here\nmore detail")

    monkeypatch.setattr(torch, "compile", lambda function, **options: broken_compiler)
    model = random_model(seed=7)
    compiled = Corrector(model, CPU, tile=0, compiled=True)
    result = compiled.correct(photo)
    assert compiled.whole_image.failure == "RuntimeError: no compiler here"
    assert np.array_equal(result.image, Corrector(model, CPU, tile=0).correct(photo).image)


def test_a_compiled_forward_out_of_memory_fails_the_photo_and_keeps_compiling(
    photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Out of memory in the compiled forward turned compiling off for every later photo
    runs: list[str] = []

    def short_of_memory_once(model: object, image: torch.Tensor) -> object:
        runs.append("compiled")
        if len(runs) == 1:
            torch_out_of_memory()
        return fast_forward(model, image)

    monkeypatch.setattr(torch, "compile", lambda function, **options: short_of_memory_once)
    compiled = Corrector(random_model(seed=7), CPU, tile=0, compiled=True)
    with pytest.raises(PhotoOutOfMemoryError):
        compiled.correct(photo)
    assert compiled.whole_image.failure is None
    compiled.correct(photo)
    assert runs == ["compiled", "compiled"]


@pytest.mark.parametrize("exhausted", [numpy_out_of_memory, torch_out_of_memory])
@pytest.mark.parametrize(
    ("tile", "advice"),
    [
        (0, "try --tile 1024"),
        # Tiles keep the full-size maps in host memory, (4 x 8 + 7) x 4 + 12 = 168 B/px: a smaller tile
        # would not help.
        (128, "its feature maps alone take 0.0 GiB at any --tile; free some memory (close other programs)"),
    ],
)
def test_running_out_of_memory_is_that_photo_s_error_with_advice(
    photo: np.ndarray, exhausted: Callable[..., None], tile: int, advice: str
) -> None:
    corrector = Corrector(random_model(seed=8), CPU, tile=tile)
    corrector.whole_image = exhausted  # the whole-image path
    corrector.stages = replace(corrector.stages, conv=exhausted)  # the tiled one
    with pytest.raises(PhotoOutOfMemoryError) as raised:
        corrector.correct(photo)
    assert str(raised.value).startswith(f"not enough memory for this 0.0 MP photo: {advice}")


def test_half_precision_is_advised_on_the_gpu_only_where_the_command_offers_it() -> None:
    corrector = Corrector(random_model(seed=8), CPU)
    corrector.device = torch.device("cuda")  # as one on a GPU would say it; nothing runs there
    photo = np.empty((3000, 4000, 3), np.float32)
    advice = "not enough GPU memory for this 12.0 MP photo: try --tile 1024"
    assert str(corrector.out_of_memory(photo, on_host=False)) == f"{advice} or --precision fp16"
    corrector.half_precision_advice = False  # explain, which runs in float32 and has no --precision
    assert str(corrector.out_of_memory(photo, on_host=False)) == advice


@pytest.mark.parametrize(
    ("tile", "dtype", "on_host", "message"),
    [
        (
            448,
            torch.float32,
            False,
            "GPU memory for this 12.0 MP photo: try a smaller --tile than 448 or --precision fp16",
        ),
        (0, torch.float16, False, "GPU memory for this 12.0 MP photo: try --tile 1024"),
        (0, torch.float32, True, "memory for this 12.0 MP photo: try --tile 1024"),  # host memory, on a GPU
    ],
)
def test_out_of_memory_advice_on_a_gpu_fits_the_tile_the_precision_and_the_memory_that_ran_out(
    tile: int, dtype: torch.dtype, on_host: bool, message: str
) -> None:
    corrector = Corrector(random_model(seed=8), CPU, dtype, tile=tile)
    corrector.device = torch.device("cuda")  # as one on a GPU would say it; nothing runs there
    photo = np.empty((3000, 4000, 3), np.float32)
    assert str(corrector.out_of_memory(photo, on_host=on_host)) == f"not enough {message}"


@pytest.mark.parametrize(
    ("dtype", "advice"),
    [
        (torch.float16, "its values overflow fp16's range: try --precision fp32"),
        (torch.bfloat16, "its values overflow bf16's range: try --precision fp32"),
        (torch.float32, "its weights make it overflow on this photo: try another model"),
    ],
)
def test_an_output_that_is_not_a_number_is_said_with_what_to_try_at_each_precision(
    dtype: torch.dtype, advice: str
) -> None:
    error = Corrector(random_model(seed=8), CPU, dtype).not_a_number("output")
    assert str(error) == f"the model's output is not a number (NaN): {advice}"


def test_the_feature_maps_a_photo_needs_are_in_the_advice() -> None:
    corrector = Corrector(random_model(seed=8), CPU, tile=448)
    error = corrector.out_of_memory(np.empty((8660, 11547, 3), np.float32), on_host=True)
    # 168 B/px (8 channels in float32) over 8676 x 11563 pixels with the mirrored border: 15.7 GiB.
    assert "100.0 MP photo: its feature maps alone take 15.7 GiB at any --tile" in str(error)


def test_other_runtime_errors_are_not_taken_for_running_out_of_memory(photo: np.ndarray) -> None:
    corrector = Corrector(random_model(seed=8), CPU, tile=0)

    def broken(*args: object) -> None:
        raise RuntimeError("Expected all tensors to be on the same device")

    corrector.whole_image = broken
    with pytest.raises(RuntimeError, match="same device"):
        corrector.correct(photo)


@pytest.mark.parametrize("height", [1, 2, 7, 8, 9, 17, 40])
@pytest.mark.parametrize("width", [1, 5, 8, 16, 23])
def test_the_mirrored_border_is_numpy_s_symmetric_padding(height: int, width: int) -> None:
    # mirror_border makes the border on the GPU, with_border with NumPy on the CPU: the same pixels.
    rgb = np.random.default_rng(height * 100 + width).random((height, width, 3), dtype=np.float32)
    expected = np.pad(rgb, ((EDGE_PAD, EDGE_PAD), (EDGE_PAD, EDGE_PAD), (0, 0)), mode="symmetric")
    assert np.array_equal(mirror_border(torch.from_numpy(rgb), EDGE_PAD).numpy(), expected)
    assert np.array_equal(with_border(rgb, CPU)[0].permute(1, 2, 0).numpy(), expected)


@pytest.mark.parametrize("size", [1, 2, 3, 8, 9, 20])
def test_mirrored_indices_without_the_edge_repeated_are_numpy_s_reflect_padding(size: int) -> None:
    row = np.arange(size)
    expected = np.pad(row, 8, mode="reflect")
    assert np.array_equal(mirrored_indices(size, 8, CPU, edge_repeated=False).numpy(), expected)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (2, 3), (7, 5), (17, 40), (61, 47)])
def test_keep_colour_on_the_device_is_keep_colour_on_the_host(height: int, width: int) -> None:
    # what the GPU does before the copy back, PyTorch's convolutions standing for OpenCV's Gaussian
    rng = np.random.default_rng(height * 100 + width)
    photo = rng.random((height, width, 3), dtype=np.float32)
    photo[::3] *= 0.01  # crushed rows, lifted more than MOST_COLOUR_GAIN times
    corrected = np.clip(photo * 1.7 + rng.normal(0.1, 0.1, photo.shape), 0, 1).astype(np.float32)
    gains = (pixels.luma(corrected) + COLOUR_GAIN_FLOOR) / (pixels.luma(photo) + COLOUR_GAIN_FLOOR)
    assert gains.max() > MOST_COLOUR_GAIN
    expected = lightness_only(photo, corrected)
    photo_chw, corrected_chw = (torch.from_numpy(rgb).permute(2, 0, 1) for rgb in (photo, corrected))
    kept = device_pixels.lightness_only(photo_chw, corrected_chw)
    assert kept.dtype == torch.float32
    assert np.abs(kept.permute(1, 2, 0).numpy() - expected).max() <= 1e-6
    # the correction as a half-precision model made it
    half = device_pixels.lightness_only(photo_chw, corrected_chw.half())
    rounded = corrected.astype(np.float16).astype(np.float32)
    assert np.abs(half.permute(1, 2, 0).numpy() - lightness_only(photo, rounded)).max() <= 1e-6


class CopiesFromHost(TorchDispatchMode):
    """Notes each operation that takes a tensor in host memory into one on another device."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        operands, results = (tree_flatten(values)[0] for values in ((args, kwargs or {}), result))
        if any(isinstance(t, torch.Tensor) and t.device.type == "cpu" and t.dim() for t in operands) and any(
            isinstance(t, torch.Tensor) and t.device.type != "cpu" for t in results
        ):
            self.seen.append(str(func))
        return result


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_a_whole_images_device_work_reads_nothing_from_host_memory(dtype: torch.dtype) -> None:
    # On a GPU, a copy from pageable host memory waits for all the work queued: the border, the model and the
    # colours must make what they need where the photo is (tests/test_cuda.py checks it on a GPU; here the
    # meta device stands in for one: a copy from the CPU to it is seen as the operation that made it).
    model = random_model().to("meta", dtype)
    image = torch.empty(3, 37, 53, device="meta")
    with CopiesFromHost() as mode:
        bordered = device_pixels.mirror_border(image.permute(1, 2, 0), 8).permute(2, 0, 1)[None]
        corrected, _ = fast_forward(model, bordered.to(dtype))
        kept = device_pixels.lightness_only(image, corrected[0, :, 8:-8, 8:-8])
    assert kept.shape == image.shape and mode.seen == []


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_whole_image_kept_in_the_photos_colours_on_the_device_is_the_hosts_correction(
    photo: np.ndarray, monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype
) -> None:
    # On a GPU a whole image gets its colours there, before the copy back, and only there (here the CPU
    # stands in for it), from the photo in float32 as on the host, not as a half-precision model sees it.
    model = random_model(seed=6)
    on_host = Corrector(model, CPU, dtype, keep_colour=True).start(photo)
    monkeypatch.setattr(engine, "colours_on_device", lambda device: True)
    on_device = Corrector(model, CPU, dtype, keep_colour=True).start(photo)
    tiled = Corrector(model, CPU, dtype, tile=128, keep_colour=True).start(photo)  # tiles: on the host
    assert on_device.colour_kept_on_device and not on_host.colour_kept_on_device
    assert not tiled.colour_kept_on_device
    assert np.abs(on_device.result().image - on_host.result().image).max() <= 1e-5
    assert not Corrector(model, CPU).start(photo).colour_kept_on_device  # the model's colours asked for


@pytest.mark.parametrize("tile", [0, 128])
def test_corrections_finished_later_in_other_threads_are_the_corrections(tile: int) -> None:
    # A batch starts the next photos while writer threads finish the earlier ones, in any order.
    model = random_model(seed=9)
    calibration = StrengthCalibration(
        (0.0,) * FEATURE_COUNT, (1.0,) * FEATURE_COUNT, (0.3,) * FEATURE_COUNT, -1
    )
    corrector = Corrector(model, CPU, tile=tile, strength="auto", calibration=calibration)
    photos = [
        random_image(1, 150 + 10 * index, 140)[0].permute(1, 2, 0).numpy() * exposure
        for index, exposure in enumerate((0.3, 0.7, 1.0))
    ]
    expected = [corrector.correct(photo) for photo in photos]
    pending = [corrector.start(photo) for photo in photos]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda started: started.result(), reversed(pending)))[::-1]
    assert len({result.strength for result in expected}) > 1  # each photo gets its own strength
    for result, wanted in zip(results, expected, strict=True):
        assert np.array_equal(result.image, wanted.image) and np.array_equal(result.mask, wanted.mask)
        assert result.strength == wanted.strength


def test_running_out_of_host_memory_while_finishing_is_that_photo_s_error(
    photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    corrector = Corrector(random_model(seed=8), CPU, tile=0, strength=0.5)
    pending = corrector.start(photo)

    def exhausted(*args: object) -> None:
        raise MemoryError

    monkeypatch.setattr("recnet_cli.engine.blend", exhausted)
    with pytest.raises(PhotoOutOfMemoryError) as raised:
        pending.result()
    # No --tile advice: the model has run, and the blend needs the same memory at any tile size.
    assert str(raised.value) == (
        "not enough memory left to finish this 0.0 MP photo: free some memory (close other programs) and "
        "try again"
    )


def leave_little_memory(monkeypatch: pytest.MonkeyPatch, folder: Path, available: int = 2**20) -> None:
    """From here on, ``available`` bytes of memory are available (too few for a photo's feature maps), and
    the temporary folder is ``folder``."""
    monkeypatch.setattr(engine, "available_host_memory", lambda: available)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


@pytest.fixture
def little_memory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    leave_little_memory(monkeypatch, tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("tile", "spilled_maps"),
    [
        (128, {"attention_free", "features", "merged", "mask", "output", "scales"}),
        ("auto", {"attention_free", "features", "merged", "mask", "output", "scales"}),
        (128, {"output"}),  # memory short of the maps' size by a little: the rest stay in memory
    ],
)
def test_feature_maps_memory_cannot_hold_go_to_the_temporary_folder_and_change_nothing(
    photo: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tile: TileSetting,
    spilled_maps: set[str],
) -> None:
    model = random_model(seed=6)
    larger = np.tile(photo, (11, 9, 1))  # 770 x 810: tiles under "auto" on the CPU too
    in_memory = Corrector(model, CPU, tile=tile).start(larger)
    maps = full_maps_bytes(model.channels, 770 + 2 * EDGE_PAD, 810 + 2 * EDGE_PAD, torch.float32)
    available = 2**20 if len(spilled_maps) > 1 else int((maps - 100) / MAP_MEMORY_SHARE)
    leave_little_memory(monkeypatch, tmp_path, available)
    spilled = Corrector(model, CPU, tile=tile).start(larger)
    assert in_memory.spilled is None
    assert spilled.spilled is not None and spilled.spilled.folder == tmp_path
    assert spilled.spilled.maps == spilled_maps
    assert np.array_equal(spilled.result().image, in_memory.result().image)
    assert list(tmp_path.iterdir()) == []  # the files went with the maps


def test_auto_tiles_a_photo_whose_whole_image_fits_the_budget_only_without_its_mirrored_border() -> None:
    # Were the border left out, such a photo would run whole and take more memory than the budget allows
    budget_pixels = CPU_WHOLE_IMAGE_BUDGET // whole_image_bytes(1, 1, torch.float32)
    height = 720
    width = budget_pixels // height  # 720 x 745 fits; 736 x 761 with the border does not
    assert whole_image_bytes(height, width, torch.float32) <= CPU_WHOLE_IMAGE_BUDGET
    bordered = (height + 2 * EDGE_PAD, width + 2 * EDGE_PAD)
    assert whole_image_bytes(*bordered, torch.float32) > CPU_WHOLE_IMAGE_BUDGET
    assert Corrector(random_model(seed=8), CPU, tile="auto").tile_for(height, width) == CPU_TILE


def test_the_largest_photo_run_whole_on_the_cpu_is_the_one_whose_bordered_image_fits_the_budget() -> None:
    budget_pixels = CPU_WHOLE_IMAGE_BUDGET // whole_image_bytes(1, 1, torch.float32)
    height = 720
    width = budget_pixels // (height + 2 * EDGE_PAD) - 2 * EDGE_PAD  # 713: 736 x 729 fits, 736 x 730 not
    corrector = Corrector(random_model(seed=8), CPU, tile="auto")
    assert (corrector.tile_for(height, width), corrector.tile_for(height, width + 1)) == (0, CPU_TILE)


def test_feature_maps_stay_in_memory_where_it_holds_them(photo: np.ndarray, tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "available_host_memory", lambda: 2**40)
        assert Corrector(random_model(seed=6), CPU, tile=128).start(photo).spilled is None
        patch.setattr(engine, "available_host_memory", lambda: None)  # unknown (not Linux): as before
        assert Corrector(random_model(seed=6), CPU, tile=128).start(photo).spilled is None


@pytest.mark.parametrize(("room", "pinned"), [("pinned", True), ("unpinned", False), ("unknown", True)])
def test_host_maps_are_pinned_only_where_memory_holds_them_as_the_pinned_allocator_rounds_them(
    photo: np.ndarray, monkeypatch: pytest.MonkeyPatch, room: str, pinned: bool
) -> None:
    model = random_model(seed=6)
    bordered = (photo.shape[0] + 2 * EDGE_PAD, photo.shape[1] + 2 * EDGE_PAD)
    maps = full_maps_bytes(model.channels, *bordered, torch.float32)
    rounded = pinned_maps_bytes(model.channels, *bordered, torch.float32)
    assert rounded > maps  # this size's maps take more room pinned
    available = {"pinned": rounded, "unpinned": maps, "unknown": None}[room]
    monkeypatch.setattr(
        engine, "available_host_memory", lambda: available and int(available / MAP_MEMORY_SHARE) + 1
    )
    told_to_pin: list[bool] = []

    class NotedRunner(TiledRunner):
        def __init__(self, *args: Any, pin: bool, **kwargs: Any) -> None:
            super().__init__(*args, pin=pin, **kwargs)
            told_to_pin.append(pin)

    monkeypatch.setattr(engine, "TiledRunner", NotedRunner)
    pending = Corrector(model, CPU, tile=128).start(photo)
    assert pending.spilled is None  # in memory, pinned or not
    assert told_to_pin == [pinned]


def test_a_temporary_folder_without_room_for_the_maps_is_that_photo_s_error(
    photo: np.ndarray, little_memory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: types.SimpleNamespace(free=1000))
    with pytest.raises(PhotoOutOfMemoryError) as raised:
        Corrector(random_model(seed=6), CPU, tile=128).start(photo)
    message = str(raised.value)
    assert message.startswith("not enough memory for this 0.0 MP photo: its feature maps take 0.0 GiB")
    assert (
        f"and {little_memory} has 0.0 GiB free, less than the 0.0 GiB of them that would go there: set TMPDIR"
        in message
    )
    assert list(little_memory.iterdir()) == []


def test_a_temporary_folder_with_just_room_for_the_maps_takes_them(
    photo: np.ndarray, little_memory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = random_model(seed=6)
    corrector = Corrector(model, CPU, tile=128)
    spill = corrector.spill_for(*photo.shape[:2])  # the test's own disk has room
    assert spill is not None and spill.folder == little_memory
    pixels = (photo.shape[0] + 2 * EDGE_PAD) * (photo.shape[1] + 2 * EDGE_PAD)
    needed = sum(map_sizes(model.channels, pixels, torch.float32)[name] for name in spill.maps)
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: types.SimpleNamespace(free=needed))
    assert corrector.spill_for(*photo.shape[:2]) == spill


@pytest.mark.parametrize("tile", [0, 128])
def test_room_for_the_feature_maps_is_checked_before_reading_only_where_tiles_need_them(
    photo: np.ndarray, little_memory: Path, monkeypatch: pytest.MonkeyPatch, tile: int
) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: types.SimpleNamespace(free=1000))
    corrector = Corrector(random_model(seed=6), CPU, tile=tile)
    refused = pytest.raises(PhotoOutOfMemoryError, match="set TMPDIR") if tile else contextlib.nullcontext()
    with refused:
        corrector.check_room(*photo.shape[:2])


@pytest.mark.parametrize(("tile", "maps_on_gpu"), [("auto", True), (448, False)])
def test_on_a_gpu_auto_tiles_keep_the_maps_there_where_they_fit_and_only_host_maps_go_to_files(
    photo: np.ndarray,
    little_memory: Path,
    monkeypatch: pytest.MonkeyPatch,
    tile: TileSetting,
    maps_on_gpu: bool,
) -> None:
    gpu = torch.device("cuda")
    monkeypatch.setattr(engine, "gpu_memory_budget", lambda device: 2**40)
    runs: list[tuple[torch.device, object]] = []

    class NotedRunner:
        def __init__(self, *args: Any, spill: object, **kwargs: Any) -> None:
            runs.append((args[4], spill))  # (model, device, dtype, tile, storage)

        def run(self, image: torch.Tensor, progress: object) -> tuple[torch.Tensor, torch.Tensor]:
            return image, image[:, :1]

    monkeypatch.setattr(engine, "TiledRunner", NotedRunner)
    corrector = Corrector(random_model(seed=6), CPU, tile=tile)
    corrector.device = gpu  # as one on a GPU would place its maps; nothing runs there
    corrector.run_tiled(photo, 448, None)
    ((storage, spill),) = runs
    assert storage == (gpu if maps_on_gpu else CPU)
    assert (spill is None) == maps_on_gpu  # host memory holds none of them


def test_a_tmpdir_that_is_no_folder_is_named_where_the_maps_would_go(
    photo: np.ndarray, little_memory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python falls back to /tmp without a word, which may be memory itself (tmpfs): why TMPDIR was set
    (little_memory / "a-file").write_text("x")
    for named in (little_memory / "gone", little_memory / "a-file"):
        monkeypatch.setenv("TMPDIR", str(named))
        with pytest.raises(PhotoOutOfMemoryError) as raised:
            Corrector(random_model(seed=6), CPU, tile=128).start(photo)
        message = str(raised.value)
        assert (
            f", and TMPDIR={named}, where 0.0 GiB of them would go, is not a folder recnet can write in: "
            in (message)
        )
        assert message.endswith("set it to one with room")
    monkeypatch.setenv("TMPDIR", str(little_memory))
    assert Corrector(random_model(seed=6), CPU, tile=128).start(photo).spilled is not None


def test_a_disk_that_fills_up_while_the_maps_are_made_is_that_photo_s_error(
    photo: np.ndarray, little_memory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(descriptor: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full_disk)
    with pytest.raises(PhotoOutOfMemoryError, match=r"could not go to .+ instead: no space left on device$"):
        Corrector(random_model(seed=6), CPU, tile=128).start(photo)
    assert list(little_memory.iterdir()) == []
