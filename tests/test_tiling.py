"""Exact tiling: tiled inference reproduces whole-image inference; the engine's tile settings."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from random_models import random_image, random_model

from recnet_cli import engine
from recnet_cli.engine import CPU_TILE, GPU_TILE, Corrector, auto_tile, map_storage, tiled_on_device_bytes
from recnet_cli.model import RECNet
from recnet_cli.model.fast import fast_forward
from recnet_cli.options import parse_tile
from recnet_cli.tiling import (
    MIN_TILE,
    Moments,
    Spill,
    TiledRunner,
    full_maps_bytes,
    map_sizes,
    maps_to_spill,
    pinned_maps_bytes,
    spans,
    strips,
    tiles,
)

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model() -> RECNet:
    return random_model(seed=2)


def tiled(model: RECNet, image: torch.Tensor, tile: int) -> tuple[torch.Tensor, torch.Tensor]:
    return TiledRunner(model, CPU, torch.float32, tile).run(image)


@pytest.mark.parametrize(
    ("height", "width", "tile"),
    [
        (301, 457, 128),
        (301, 457, 200),
        (301, 457, 256),
        (150, 170, 1024),  # one tile larger than the image
        (129, 257, 128),  # tiles about half the size asked for
        (1, 300, 128),
        (300, 1, 128),
        (1, 40000, 128),  # thinner than a tile: windows as long as a tile's area allows
        (40, 3000, 128),
        (3000, 40, 128),
    ],
)
def test_tiled_matches_whole_image(model: RECNet, height: int, width: int, tile: int) -> None:
    image = random_image(1, height, width)
    expected_output, expected_mask = fast_forward(model, image)
    output, mask = tiled(model, image, tile)
    assert output.shape == expected_output.shape and mask.shape == expected_mask.shape
    assert (output - expected_output).abs().max() <= 1e-4
    assert (mask - expected_mask).abs().max() <= 1e-4


@pytest.mark.parametrize("windows", [tiles, strips])
def test_tiles_and_strips_cover_every_pixel_once(windows: object) -> None:
    coverage = np.zeros((301, 457), dtype=int)
    for window in windows(301, 457, 128):  # type: ignore[operator]
        coverage[window.rows, window.cols] += 1
    assert (coverage == 1).all()


def test_tiles_are_split_evenly_and_no_larger_than_asked() -> None:
    assert spans(1171, 448) == [(0, 390), (390, 780), (780, 1171)]  # not 448, 448 and a thin 275
    assert spans(896, 448) == [(0, 448), (448, 896)]
    assert spans(100, 448) == [(0, 100)]
    windows = list(tiles(882, 1171, 448))
    assert len(windows) == 6
    assert {(w.bottom - w.top, w.right - w.left) for w in windows} == {(441, 390), (441, 391)}


@pytest.mark.parametrize(("height", "width"), [(82, 20032), (20032, 82), (100, 448)])
def test_tiles_of_an_image_thinner_than_a_tile_span_it_and_take_about_a_tiles_area(
    height: int, width: int
) -> None:
    windows = list(tiles(height, width, 448))
    thin, long = min(height, width), max(height, width)
    assert len(windows) == -(-long // (448 * 448 // thin))  # 9 for 82 px, where squares would take 45
    for window in windows:
        rows, cols = window.bottom - window.top, window.right - window.left
        assert min(rows, cols) == thin and rows * cols <= 448 * 448


def test_strips_span_the_width_with_near_equal_heights_and_about_a_tiles_area() -> None:
    assert [w.bottom for w in strips(301, 200, 128)] == [75, 150, 225, 301]  # 128 * 128 // 200 = 81 rows
    assert [w.bottom - w.top for w in strips(3000, 4000, 1024)] == [250] * 12  # 262 rows at most
    assert {(w.left, w.right) for w in strips(301, 200, 128)} == {(0, 200)}
    # 128 * 128 // 1000 = 16 rows; never fewer than the largest halo, however wide the image
    assert [(w.top, w.bottom) for w in strips(100, 1000, 128)] == [
        (0, 16),
        (16, 33),
        (33, 50),
        (50, 66),
        (66, 83),
        (83, 100),
    ]
    assert [(w.top, w.bottom) for w in strips(10, 5000, 128)] == [(0, 10)]
    assert [w.bottom - w.top for w in strips(240, 5000, 128)] == [16] * 15  # 3 rows of area, 16 of halo


def test_strips_of_an_image_wider_than_a_tile_s_area_are_as_thin_as_the_largest_halo() -> None:
    # 128 * 128 // 20000 = 0 rows of area
    assert [w.bottom - w.top for w in strips(100, 20000, 128)] == [16, 17, 17, 16, 17, 17]


@pytest.mark.parametrize(("height", "width", "tile"), [(301, 457, 128), (129, 2000, 128), (40, 3000, 256)])
def test_strips_match_whole_image(model: RECNet, height: int, width: int, tile: int) -> None:
    image = random_image(1, height, width)
    expected_output, expected_mask = fast_forward(model, image)
    runner = TiledRunner(model, CPU, torch.float32, tile, strips=True)
    output, mask = runner.run(image)
    assert len(runner.windows) > 1 and all(w.right - w.left == width for w in runner.windows)
    assert (output - expected_output).abs().max() <= 1e-4
    assert (mask - expected_mask).abs().max() <= 1e-4


def test_moments_merged_over_parts_equal_the_whole() -> None:
    data = torch.randn(1000, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 3 + 10
    moments = Moments()
    for part in data.split([100, 1, 499, 400]):
        variance, mean = torch.var_mean(part, dim=0, correction=0)
        moments.add(part.shape[0], mean, variance)
    variance, mean = torch.var_mean(data, dim=0, correction=0)
    assert torch.allclose(moments.mean, mean, atol=1e-12)
    assert torch.allclose(moments.variance(), variance, atol=1e-12)


def test_small_tiles_are_refused(model: RECNet) -> None:
    with pytest.raises(ValueError, match="tile"):
        Corrector(model, CPU, tile=64)
    with pytest.raises(ValueError, match="tile"):
        TiledRunner(model, CPU, torch.float32, 100)


def test_the_tile_option_takes_exactly_the_sizes_the_tiles_take(model: RECNet) -> None:
    assert parse_tile(str(MIN_TILE)) == MIN_TILE
    TiledRunner(model, CPU, torch.float32, MIN_TILE)
    with pytest.raises(typer.Exit):
        parse_tile(str(MIN_TILE - 1))


@pytest.mark.parametrize(("text", "setting"), [("auto", "auto"), ("0", 0), ("448", 448)])
def test_the_tile_option_takes_auto_the_whole_image_and_sizes(text: str, setting: int | str) -> None:
    assert parse_tile(text) == setting


def test_corrector_gives_the_same_photo_whole_tiled_and_auto(model: RECNet) -> None:
    rgb = random_image(1, 131, 203)[0].permute(1, 2, 0).numpy()
    results = [Corrector(model, CPU, tile=tile).correct(rgb) for tile in (0, 128, "auto")]
    for result in results:
        assert result.image.shape == (131, 203, 3) and result.image.dtype == np.float32
        assert result.mask.shape == (131, 203) and result.mask.dtype == np.float32
        assert np.abs(result.image - results[0].image).max() <= 1e-4
        assert np.abs(result.mask - results[0].mask).max() <= 1e-4


def test_tiled_correction_reports_its_progress_tile_by_tile(model: RECNet) -> None:
    rgb = random_image(1, 200, 300)[0].permute(1, 2, 0).numpy()
    reports: list[float] = []
    tiled = Corrector(model, CPU, tile=128).correct(rgb, progress=reports.append)
    passes = 3 + 3 * len(model.dualprocess.blocks)  # extraction, three per block, refine's two
    assert len(reports) == passes * 2 * 3  # 2 x 3 tiles of at most 128 x 128
    assert all(earlier < later for earlier, later in itertools.pairwise(reports))
    assert reports[-1] == 1.0
    assert np.array_equal(tiled.image, Corrector(model, CPU, tile=128).correct(rgb).image)


def test_auto_tiles_large_images_on_the_cpu() -> None:
    assert auto_tile(CPU, torch.float32, 300, 400) == 0
    assert auto_tile(CPU, torch.float32, 612 + 16, 816 + 16) == 0  # half a megapixel, with the border
    assert auto_tile(CPU, torch.float32, 866 + 16, 1155 + 16) == CPU_TILE  # 1 MP: faster in tiles
    assert auto_tile(CPU, torch.float32, 6000, 4000) == CPU_TILE


def test_auto_runs_whole_images_on_other_devices_within_4_gib_and_gpu_tiles_beyond() -> None:
    mps = torch.device("mps")
    assert auto_tile(mps, torch.float32, 2000, 2000) == 0  # 4.0 GB
    assert auto_tile(mps, torch.float32, 2100, 2100) == GPU_TILE  # 4.4 GB
    assert auto_tile(mps, torch.float16, 2100, 2100) == 0


def test_a_gpu_budget_holds_what_takes_all_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = torch.device("cuda:0")
    budget = {"bytes": 1000 * 2000 * 3000}  # the whole 6 MP image in fp32
    monkeypatch.setattr(engine, "gpu_memory_budget", lambda device: budget["bytes"])
    assert auto_tile(gpu, torch.float32, 2000, 3000) == 0
    assert auto_tile(gpu, torch.float32, 2000, 3001) == GPU_TILE
    budget["bytes"] = tiled_on_device_bytes(8, 3000, 4000, torch.float32, 2048)
    assert map_storage(gpu, torch.float32, 3000, 4000, 2048, 8) == gpu
    budget["bytes"] -= 1
    assert map_storage(gpu, torch.float32, 3000, 4000, 2048, 8) == CPU


def test_tiles_keep_full_size_maps_on_a_gpu_only_where_they_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = torch.device("cuda:1")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (10 * 2**30, 16 * 2**30))
    # 12 MP in fp32: 8 channels -> 39 values per pixel (156 B) + the float32 image (12 B) + one tile's work
    needed = tiled_on_device_bytes(8, 3000, 4000, torch.float32, 2048)
    assert needed == 168 * 3000 * 4000 + 1000 * 2080 * 2080
    assert map_storage(gpu, torch.float32, 3000, 4000, 2048, 8) == gpu  # 6.4 GB of the 8 GiB budget
    assert map_storage(gpu, torch.float32, 6000, 8000, 2048, 8) == CPU  # 48 MP needs 12 GB
    assert map_storage(gpu, torch.float16, 6000, 8000, 2048, 8) == gpu  # half as much in fp16
    assert map_storage(CPU, torch.float32, 300, 400, 2048, 8) == CPU


def test_a_thin_photo_s_maps_stay_on_a_gpu_only_where_its_long_tiles_fit_beside_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 216 x 30016 (a panorama strip with its border): tiles of 216 x 15008, not 216 x 2048
    gpu = torch.device("cuda:0")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (4 * 2**30, 16 * 2**30))
    assert tiled_on_device_bytes(8, 216, 30016, torch.float32, 2048) == (
        168 * 216 * 30016 + 1000 * 216 * (15008 + 32)  # the maps, 1.1 GB, and a long tile's work, 3.2 GB
    )
    assert map_storage(gpu, torch.float32, 216, 30016, 2048, 8) == CPU
    assert map_storage(gpu, torch.float16, 216, 30016, 2048, 8) == gpu  # half as much in fp16


def test_a_gpu_s_budget_counts_the_memory_pytorch_holds_free_for_the_next_photo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # After a photo, PyTorch's allocator keeps its memory (the driver counts it as used): the next photo
    # of the same size must still run whole, not in tiles because the driver says less is free.
    gpu = torch.device("cuda:0")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (4 * 2**30, 16 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 2**30)
    reserved = {"bytes": 10 * 2**30}
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: reserved["bytes"])
    # 6 MP whole in fp32: 1000 B/px, 6 GB, within 80% of 4 + 9 GiB, not of 4 GiB
    assert auto_tile(gpu, torch.float32, 2000, 3000) == 0
    assert map_storage(gpu, torch.float32, 4000, 6000, 2048, 8) == gpu  # 24 MP's maps 4 GB, a tile 4.3
    reserved["bytes"] = 2**30  # nothing cached
    assert auto_tile(gpu, torch.float32, 2000, 3000) == GPU_TILE
    assert map_storage(gpu, torch.float32, 4000, 6000, 2048, 8) == CPU


def test_tiled_matches_whole_image_in_float64() -> None:
    model = random_model(seed=3).double()
    image = random_image(1, 190, 267, dtype=torch.float64)
    expected_output, expected_mask = fast_forward(model, image)
    output, mask = TiledRunner(model, CPU, torch.float64, 128).run(image)
    assert (output - expected_output).abs().max() <= 1e-9
    assert (mask - expected_mask).abs().max() <= 1e-9


def test_maps_fall_back_to_ordinary_memory_when_pinning_is_refused(
    model: RECNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = random_image(1, 150, 170)
    expected_output, _ = fast_forward(model, image)
    allocate = torch.empty

    def refusing_to_pin(*args: object, pin_memory: bool = False, **kwargs: object) -> torch.Tensor:
        if pin_memory:
            raise RuntimeError("cannot pin that much memory")
        return allocate(*args, **kwargs)

    monkeypatch.setattr(torch, "empty", refusing_to_pin)
    runner = TiledRunner(model, CPU, torch.float32, 128, strips=True)
    runner.pinned = True  # as on a GPU with its maps in host memory
    output, _ = runner.run(image)
    assert not runner.pinned
    assert (output - expected_output).abs().max() <= 1e-4


MP = 10**6


@pytest.mark.parametrize(
    ("excess", "spilled"),
    [
        (0, set()),
        (1, {"output"}),  # 12 B/px written and read once, where the mask (4 B/px) is read by every block
        (12 * MP + 1, {"output", "mask"}),
        # 56 B/px, less read and written than the attention-free share alone (64 B/px, twice a block)
        (50 * MP, {"merged", "output", "scales"}),
        (66 * MP, {"attention_free", "output"}),  # the merged map, scales, mask and output hold 60 B/px
        (156 * MP, {"attention_free", "features", "merged", "mask", "output", "scales"}),  # all of them
        (10**12, {"attention_free", "features", "merged", "mask", "output", "scales"}),  # more than there is
    ],
)
def test_maps_that_go_to_files_are_enough_of_them_and_the_least_read_and_written(
    excess: int, spilled: set[str]
) -> None:
    assert maps_to_spill(8, 5, MP, torch.float32, excess) == spilled
    sizes = map_sizes(8, MP, torch.float32)
    assert sum(sizes.values()) + 12 * MP == full_maps_bytes(8, 1000, 1000, torch.float32)  # and the image


def test_for_a_one_block_model_files_take_the_maps_least_read_and_written_in_that_block() -> None:
    # 40 B/px: the attention-free share (64 B/px, touched twice) rather than the merged map (32 B/px, four
    # times) and the scales (12 B/px, twice)
    assert maps_to_spill(8, 1, MP, torch.float32, 40 * MP) == {"attention_free"}


def test_pinned_maps_are_counted_as_the_pinned_allocator_rounds_them() -> None:
    # 8 channels of 64 x 64 float32 pixels: maps of 8, 8, 16, 3, 1 and 3 channels at 16 KiB each
    sizes = sorted(map_sizes(8, 64 * 64, torch.float32).values())
    assert sizes == [2**14, 3 * 2**14, 3 * 2**14, 2**17, 2**17, 2**18]
    rounded = 2**14 + 2 * 2**16 + 2 * 2**17 + 2**18  # each 48 KiB map takes 64 KiB
    image = 3 * 4 * 64 * 64
    assert pinned_maps_bytes(8, 64, 64, torch.float32) == rounded + image
    assert full_maps_bytes(8, 64, 64, torch.float32) == sum(sizes) + image


@pytest.mark.parametrize(("pin", "pinned"), [(True, True), (False, False)])
def test_host_maps_for_a_cuda_device_are_pinned_and_read_in_strips_unless_told_not_to_pin(
    model: RECNet, pin: bool, pinned: bool
) -> None:
    runner = TiledRunner(model, torch.device("cuda"), torch.float16, 128, pin=pin)
    assert (runner.pinned, runner.strips) == (pinned, pinned)
    assert not TiledRunner(model, CPU, torch.float32, 128, pin=pin).pinned


@pytest.mark.parametrize("maps", ["in files", "on the gpu"])
def test_maps_in_files_or_on_the_gpu_are_neither_pinned_nor_read_in_strips(
    model: RECNet, tmp_path: Path, maps: str
) -> None:
    gpu = torch.device("cuda")
    where = {"spill": Spill(frozenset({"output"}), tmp_path)} if maps == "in files" else {"storage": gpu}
    runner = TiledRunner(model, gpu, torch.float16, 128, **where)
    assert (runner.pinned, runner.strips) == (False, False)


def test_only_the_maps_a_spill_names_go_to_files(model: RECNet, tmp_path: Path) -> None:
    runner = TiledRunner(model, CPU, torch.float32, 128, spill=Spill(frozenset({"output"}), tmp_path))
    output, mask = runner.run(random_image(1, 140, 150))
    assert output.untyped_storage().filename is not None
    assert mask.untyped_storage().filename is None
