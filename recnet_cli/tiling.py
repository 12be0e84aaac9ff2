"""Exact tiled RECNet inference: whole-image results with memory bounded by the tile size.

Full-resolution feature maps (C = 8 channels) stay in host memory, or on the GPU itself where they fit (then
nothing crosses the bus); tiles with enough halo to cover each stage's receptive field stream through the
device. Between a CUDA GPU and host memory (in RAM, not spilled to files) the tiles are full-width strips and
the host maps are pinned: a strip's rows are one contiguous block of a channels_last map, so each copy is one
direct transfer at the bus's speed, with no gathering of a tile's scattered rows through pageable memory.

A halo is real neighbouring pixels inside the image and the usual padding only at the true image
border, so every local operation sees exactly what it sees on the whole image. The whole-image
statistics are summed over the tiles before anything uses them:

- extraction: F0 and the mask M.
- per block, pass 1: the three branch scales from this block's blur(M) (stored) and the instance-norm
  moments of the branches; pass 2: Fn, the mixed-scale features and from them the attention Gram
  matrices k vᵀ and the attention-free share of the block's fusion (stored); pass 3: the block output
  from that share, the queries of F and the attention, and its share of ``dualprocess.cat`` added into
  the merged map.
- refine, pass 1: the global mean of the channel attention's features; pass 2: the output image.

Two passes per block would be the minimum (block b's pass 3 could also take block b+1's moments), but
pass 1 only computes few-channel maps (the blur, the branch scales), so merging would save little.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from recnet_cli.model import fast
from recnet_cli.model.fast import EAGER, Stages, Window
from recnet_cli.model.recnet import RECNet, RegionAwareMixedBlock

MIN_TILE = 128
EXTRACT_HALO = 5  # extract 3x3 + four 3x3 mask convs
DESCRIPTOR_HALO = 1  # the branch descriptors' 3x3 conv
BLUR_HALO = 15  # the 31x31 mask blur
MOMENTS_HALO = DESCRIPTOR_HALO + BLUR_HALO
NORMED_HALO = 5  # folded tails 3x3 + dw 5x5 on project_in + the local path's grouped 5x5
OUTPUT_HALO = 4  # the queries' 5x5 on F, then the two 3x3 post convs
POOL_HALO = 3  # refine conv_in + the channel attention's two 3x3 convs
FINAL_HALO = 2  # refine conv_in + conv_last
MIN_STRIP_ROWS = MOMENTS_HALO  # the widest images' strips: no thinner than the largest halo
FIXED_PASSES = 3  # extraction and refine's two passes; each block adds BLOCK_PASSES
BLOCK_PASSES = 3

Progress = Callable[[float], None]  # told the fraction of the work done, up to 1.0


def spans(length: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) spans of at most ``size`` covering ``length``, as equal as can be: a thin last span
    would cost about as much as a full one (each stage's halo, every op's fixed cost)."""
    return equal_spans(length, -(-length // size))


def equal_spans(length: int, count: int) -> list[tuple[int, int]]:
    """``count`` [start, stop) spans covering ``length``, their lengths differing by at most one."""
    return list(itertools.pairwise(length * index // count for index in range(count + 1)))


def tiles(height: int, width: int, size: int) -> Iterator[Window]:
    """Windows of at most size x size, of near-equal sizes, covering the image row by row; where the image
    is shorter or narrower than ``size``, each as long as that area allows (a 66 x 20016 strip in 7 windows
    of 448 px, not 45: half the time)."""
    columns = spans(width, max(size, size * size // min(height, size)))
    for top, bottom in spans(height, max(size, size * size // min(width, size))):
        for left, right in columns:
            yield Window(top, left, bottom, right, height, width)


def strips(height: int, width: int, size: int) -> Iterator[Window]:
    """Full-width windows of near-equal heights covering the image top down, each about size x size
    pixels at most, and at least ``MIN_STRIP_ROWS`` rows where the image has that many."""
    rows = max(size * size // width, MIN_STRIP_ROWS)
    count = max(1, min(-(-height // rows), height // MIN_STRIP_ROWS))
    for top, bottom in equal_spans(height, count):
        yield Window(top, 0, bottom, width, height, width)


@dataclass
class Moments:
    """Per-channel count, mean and sum of squared deviations, merged over tiles (Chan et al.), float64."""

    count: int = 0
    mean: Tensor | None = None
    squares: Tensor | None = None

    def add(self, count: int, mean: Tensor, variance: Tensor) -> None:
        mean, squares = mean.cpu().double(), variance.cpu().double() * count
        if self.mean is None or self.squares is None:
            self.count, self.mean, self.squares = count, mean, squares
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.squares = self.squares + squares + delta**2 * (self.count * count / total)
        self.count = total

    def variance(self) -> Tensor:
        assert self.squares is not None
        return self.squares / self.count


def map_channels(channels: int) -> dict[str, int]:
    """The channels of a tiled run's full-size maps, for a model of ``channels``: the blocks' features, the
    merged blocks' outputs, the fusion's attention-free share, the branch scales, the mask and the output."""
    return {
        "features": channels,
        "merged": channels,
        "attention_free": 2 * channels,
        "scales": 3,
        "mask": 1,
        "output": 3,
    }


# How often the tiles read or write each map: once or twice in all, then so many times per block. (The
# features: written by extraction, read by each block's three passes and rewritten by the last.)
MAP_TOUCHES = {
    "features": (1, 4),
    "merged": (2, 2),
    "attention_free": (0, 2),
    "scales": (0, 2),
    "mask": (2, 1),
    "output": (2, 0),
}


IMAGE_BYTES_PER_PIXEL = 3 * 4  # the float32 RGB image a tiled run reads its tiles from


def full_maps_bytes(channels: int, height: int, width: int, dtype: torch.dtype) -> int:
    """Memory of a tiled run's full-size maps (``map_sizes``) in ``dtype``, and of the float32 image."""
    pixels = height * width
    return sum(map_sizes(channels, pixels, dtype).values()) + IMAGE_BYTES_PER_PIXEL * pixels


def pinned_maps_bytes(channels: int, height: int, width: int, dtype: torch.dtype) -> int:
    """``full_maps_bytes`` with the maps pinned for a CUDA GPU: PyTorch's caching host allocator rounds each
    pinned block up to a power of two, so they can take up to twice their size (the image is not pinned)."""
    pixels = height * width
    sizes = map_sizes(channels, pixels, dtype).values()
    return sum(1 << (size - 1).bit_length() for size in sizes) + IMAGE_BYTES_PER_PIXEL * pixels


@dataclass(frozen=True)
class Spill:
    """Full-size maps kept in memory-mapped files (``file_backed_map``): which ones, and in what folder."""

    maps: frozenset[str]
    folder: Path


def map_sizes(channels: int, pixels: int, dtype: torch.dtype) -> dict[str, int]:
    """Bytes of each full-size map (``map_channels``) of an image of ``pixels``."""
    return {name: count * dtype.itemsize * pixels for name, count in map_channels(channels).items()}


def maps_to_spill(channels: int, blocks: int, pixels: int, dtype: torch.dtype, excess: int) -> frozenset[str]:
    """The maps to keep in files, at least ``excess`` bytes of them, that the tiles read and write least:
    the system keeps what it can of them in memory, but each pass over the image reads them from disk."""
    sizes = map_sizes(channels, pixels, dtype)
    traffic = {
        name: sizes[name] * (once + blocks * per_block) for name, (once, per_block) in MAP_TOUCHES.items()
    }
    choices = [
        frozenset(names)
        for count in range(len(sizes) + 1)
        for names in itertools.combinations(sizes, count)
        if sum(sizes[name] for name in names) >= excess
    ]
    return min(choices, key=lambda names: sum(traffic[name] for name in names), default=frozenset(sizes))


def file_backed_map(shape: tuple[int, int, int, int], dtype: torch.dtype, folder: Path) -> Tensor:
    """An uninitialised channels_last map in a memory-mapped file in ``folder``: the system keeps in memory
    what fits and the rest on disk. The file's space is reserved first, so a full disk is an OSError here,
    not a crash at a later write, and its name is removed at once: the space is freed with the map,
    however the process ends."""
    batch, channels, height, width = shape
    count = batch * channels * height * width
    descriptor, name = tempfile.mkstemp(prefix="recnet-", suffix=".map", dir=folder)
    try:
        os.posix_fallocate(descriptor, 0, count * dtype.itemsize)
        flat = torch.from_file(name, shared=True, size=count, dtype=dtype)
    finally:
        os.close(descriptor)
        os.unlink(name)
    return flat.as_strided(shape, (channels * height * width, 1, width * channels, channels))


class TiledRunner:
    """Runs the fast RECNet stages tile by tile over full-size feature maps (one image at a time).

    ``storage`` holds the full-size maps: host memory by default (device memory bounded by the tile),
    or the compute device itself when they fit there (no copies between host and device). ``spill``: keep
    host maps in memory-mapped files in this folder instead, for photos whose maps memory cannot hold
    (Linux; see ``file_backed_map``). ``pin``: pin host maps held in memory for a CUDA device (faster
    copies; see ``pinned_maps_bytes`` for what that costs). ``strips``: full-width strips instead of square
    tiles; by default exactly when the maps are pinned. ``stages``: the per-pixel stages (eager, or fused
    kernels)."""

    def __init__(
        self,
        model: RECNet,
        device: torch.device,
        dtype: torch.dtype,
        tile: int,
        storage: torch.device = torch.device("cpu"),
        strips: bool | None = None,
        stages: Stages = EAGER,
        spill: Spill | None = None,
        pin: bool = True,
    ) -> None:
        if tile < MIN_TILE:
            raise ValueError(f"tile size {tile} is too small (at least {MIN_TILE} pixels)")
        self.model = model
        self.device = device
        self.dtype = dtype
        self.tile = tile
        self.storage = storage
        self.spill = spill if storage.type == "cpu" else None
        self.pinned = pin and device.type == "cuda" and storage.type == "cpu" and not self.spill
        self.strips = self.pinned if strips is None else strips
        self.stages = stages
        self.windows: list[Window] = []
        self.progress: Progress | None = None
        self.tiles_done = 0

    @torch.inference_mode()
    def run(self, image: Tensor, progress: Progress | None = None) -> tuple[Tensor, Tensor]:
        """(output, mask) on ``storage`` for a (1, 3, H, W) image; stages as in the module docstring.
        ``progress`` is told the fraction done after every tile of every pass."""
        height, width = image.shape[-2:]
        image = image.to(self.storage)
        self.windows = list((strips if self.strips else tiles)(height, width, self.tile))
        self.progress, self.tiles_done = progress, 0
        features, mask = self.extract(image)
        merged = self.full_map("merged", height, width)
        scales = self.full_map("scales", height, width)
        attention_free = self.full_map("attention_free", height, width)
        kernels = fast.blur_kernels(self.model)
        for index, block in enumerate(self.model.dualprocess.blocks):
            kernel = kernels[index : index + 1]
            mean, variance = self.branch_moments(block, features, mask, kernel, scales)
            grams = self.attention_free_share(block, features, scales, mean, variance, attention_free)
            attention = fast.attention_weights(block.mssa, self.to_device(grams))
            self.block_output(block, index, features, attention_free, attention, merged)
        del features, scales, attention_free  # the refine stage's output takes their place
        return self.refine(merged), mask

    def walk(self) -> Iterator[Window]:
        """The tiles, for one pass over the image; reports progress after each."""
        passes = FIXED_PASSES + BLOCK_PASSES * self.model.num_blocks
        for tile in self.windows:
            yield tile
            self.tiles_done += 1
            if self.progress is not None:
                self.progress(self.tiles_done / (passes * len(self.windows)))

    def full_map(self, name: str, height: int, width: int) -> Tensor:
        """The uninitialised full-size map ``name`` (see ``map_channels``) on ``storage``; pinned when
        ``pinned``, unless the system refuses to pin that much memory (then this and later maps are
        ordinary, slower to copy); in a file where ``spill`` says."""
        shape = (1, map_channels(self.model.channels)[name], height, width)
        if self.spill is not None and name in self.spill.maps:
            return file_backed_map(shape, self.dtype, self.spill.folder)
        if self.pinned:
            try:
                return torch.empty(
                    shape, dtype=self.dtype, memory_format=torch.channels_last, pin_memory=True
                )
            except RuntimeError:
                self.pinned = False
        return torch.empty(shape, dtype=self.dtype, device=self.storage, memory_format=torch.channels_last)

    def load(self, full: Tensor, window: Window) -> Tensor:
        return fast.channels_last(full[:, :, window.rows, window.cols].to(self.device, self.dtype))

    def view(self, full: Tensor, window: Window) -> Tensor:
        """``load`` for a stage that reads the map only element by element (products, sums; no conv): a
        view, not a copy, where the maps are stored on the compute device and the stages are the eager ones
        (the fused kernels take contiguous maps). About 7% less processor time for a block's first two
        passes on a 2-core CPU."""
        if self.storage != self.device or self.stages is not EAGER:
            return self.load(full, window)
        return full[:, :, window.rows, window.cols]

    def to_device(self, statistic: Tensor) -> Tensor:
        return statistic.to(self.device, fast.statistics_dtype(self.dtype))

    @staticmethod
    def interior(result: Tensor, window: Window, tile: Window) -> Tensor:
        rows, cols = window.locate(tile)
        return result[:, :, rows, cols]

    def store(self, full: Tensor, tile: Window, window: Window, result: Tensor) -> None:
        full[:, :, tile.rows, tile.cols].copy_(self.interior(result, window, tile))

    def extract(self, image: Tensor) -> tuple[Tensor, Tensor]:
        height, width = image.shape[-2:]
        features = self.full_map("features", height, width)
        mask = self.full_map("mask", height, width)
        for tile in self.walk():
            window = tile.grown(EXTRACT_HALO)
            tile_features, tile_mask = fast.extract_and_mask(
                self.model, self.load(image, window), self.stages.conv
            )
            self.store(features, tile, window, tile_features)
            self.store(mask, tile, window, tile_mask)
        return features, mask

    def branch_moments(
        self, block: RegionAwareMixedBlock, features: Tensor, mask: Tensor, kernel: Tensor, scales: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Stores this block's branch scales and returns the branches' whole-image (mean, variance)."""
        moments = Moments()
        for tile in self.walk():
            window = tile.grown(DESCRIPTOR_HALO)
            blurred = window.grown(BLUR_HALO)
            rows, cols = blurred.locate(window)
            tile_under, tile_over = (
                x[:, :, rows, cols]
                for x in fast.branch_masks(self.view(mask, blurred), kernel, blurred, self.stages.blur)
            )
            tile_features = self.view(features, window)
            tile_scales = self.stages.branch_scales(block.norm, tile_features, tile_under, tile_over)
            self.store(scales, tile, window, tile_scales)
            interior = (self.interior(x, window, tile) for x in (tile_features, tile_scales))
            moments.add(tile.area, *fast.branch_moments(*interior, self.stages.pixel_sums))
        return self.to_device(moments.mean), self.to_device(moments.variance())

    def attention_free_share(
        self,
        block: RegionAwareMixedBlock,
        features: Tensor,
        scales: Tensor,
        mean: Tensor,
        variance: Tensor,
        share: Tensor,
    ) -> Tensor:
        """Stores the fusion's attention-free share and returns the attention Gram matrices summed over
        the image (float64, host)."""
        grams = torch.zeros((), dtype=torch.float64)
        for tile in self.walk():
            window = tile.grown(NORMED_HALO)
            tile_features, tile_scales = self.view(features, window), self.view(scales, window)
            normed = self.stages.normalize(block.norm, tile_features, tile_scales, mean, variance)
            mixed = self.stages.mixed_scale_features(block.mssa, normed)
            interior = self.interior(mixed, window, tile)
            grams = grams + fast.attention_grams(interior, self.stages.pixel_sums).cpu().double()
            self.store(share, tile, window, self.stages.attention_free_share(block, normed, mixed))
        return grams

    def block_output(
        self,
        block: RegionAwareMixedBlock,
        index: int,
        features: Tensor,
        attention_free: Tensor,
        attention: Tensor,
        merged: Tensor,
    ) -> None:
        """Replaces ``features`` with the block's output and adds its share of ``dualprocess.cat`` into
        ``merged``. A tile's output overwrites its input only once no later tile's halo reads that input:
        held back while later tiles may read it (see ``write_back``)."""
        held: list[tuple[Window, Tensor]] = []
        row_top = -1
        for tile in self.walk():
            if tile.top != row_top:  # a new row of tiles: its halos reach OUTPUT_HALO rows up, no further
                self.write_back(features, held, tile.top - OUTPUT_HALO)
                row_top = tile.top
            window = tile.grown(OUTPUT_HALO)
            tile_features, tile_share = self.load(features, window), self.load(attention_free, window)
            result = self.interior(
                self.stages.block_output(block, tile_features, tile_share, attention), window, tile
            )
            held.append((tile, result))
            earlier = self.view(merged, tile) if index else None
            self.store(merged, tile, tile, self.stages.merge(self.model, index, result, earlier))
        self.write_back(features, held, features.shape[-2])

    @staticmethod
    def write_back(full: Tensor, held: list[tuple[Window, Tensor]], above: int) -> None:
        """Writes the rows above row ``above`` of the held tile results into ``full``; keeps the rest."""
        kept = []
        for tile, result in held:
            split = min(max(above, tile.top), tile.bottom)
            if split > tile.top:
                full[:, :, tile.top : split, tile.cols].copy_(result[:, :, : split - tile.top])
            if split < tile.bottom:
                kept.append((replace(tile, top=split), result[:, :, split - tile.top :]))
        held[:] = kept

    def refine(self, merged: Tensor) -> Tensor:
        """The output image (1, 3, H, W) on ``storage``."""
        refine = self.model.dualprocess.refine
        height, width = merged.shape[-2:]
        total = torch.zeros((), dtype=torch.float64)
        for tile in self.walk():
            window = tile.grown(POOL_HALO)
            entry = fast.refine_entry(refine, self.load(merged, window), self.stages.conv)
            processed = fast.refine_processed(refine, entry, self.stages.conv)
            total = total + fast.channel_sums(self.interior(processed, window, tile)).cpu().double()
        pooled = self.to_device(total / (height * width))
        output = self.full_map("output", height, width)
        for tile in self.walk():
            window = tile.grown(FINAL_HALO)
            entry = fast.refine_entry(refine, self.load(merged, window), self.stages.conv)
            self.store(output, tile, window, fast.refine_output(refine, entry, pooled, self.stages.conv))
        return output
