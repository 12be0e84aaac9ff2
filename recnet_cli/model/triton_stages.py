"""The fast path's per-pixel stages as fused Triton kernels, for CUDA GPUs.

The eager stages (``fast.py``) run every convolution and element-wise step as a kernel of its own, each
reading and writing full-size maps; with 8 to 32 channels that is memory traffic and launch overhead,
little arithmetic. Here a block stage is one kernel (the block output three): per pixel it reads the
neighbourhoods of its inputs, keeps the intermediate values in registers and writes one map; the
convolutions before and after the blocks (extraction, mask, refine) run through the same convolution
kernel, and the whole-image statistics' sums over the pixels have a kernel too. The functions have the
eager stages' signatures and results (float32 values inside whatever the maps' dtype; matrix products
in TF32, see ``dot_precision``), so ``fast_forward`` and the tiler take either (``fast.Stages``); what is
left between the stages (the mask blur, the few element-wise steps between convolutions, the
statistics' small matrices) stays in PyTorch.

Maps are channels_last, so a pixel's channels are contiguous: a program handles a tile of BLOCK pixels
of one image and all their channels. A dense convolution's taps are matrix products (``tl.dot``, on
tensor cores) of the neighbours' rows of channels and the taps' weights, a few taps side by side in
each (``TAPS_DEPTH``); depthwise ones multiply whole pixel rows. Most programs' pixels have their whole
windows inside the image (``_clear_of_edge``): the kernels with 5x5 windows and the de-exposure conv have
their tap loop compiled twice, and those programs take the one without bounds checks, where each tap's
neighbours are the pixels' own rows shifted by a constant. Without a GPU, Triton's interpreter
(``TRITON_INTERPRET=1``) runs these kernels on CPU tensors, which is how the tests check them there.
"""

from __future__ import annotations

import os
import re

import torch
import triton
import triton.language as tl
from torch import Tensor, nn
from torch.nn import functional as F

from recnet_cli.model import fast
from recnet_cli.model.recnet import (
    MixedScaleRestoration,
    RECNet,
    RegionAwareDeExposure,
    RegionAwareMixedBlock,
)

# Pixels per program (a power of two) and warps per program: 128 and 4 were the fastest of the five
# settings timed at 12 MP on an H200 on 2026-12-04, in fp16 and fp32 (benchmarks/results/nvidia-h200.md).
BLOCK = int(os.environ.get("RECNET_TRITON_BLOCK", "128"))
WARPS = int(os.environ.get("RECNET_TRITON_WARPS", "4"))
# A program's pixels are a tile TILE_WIDTH wide (a power of two up to BLOCK), or with 0 (the default, as
# timed) a run of BLOCK pixels in row-major order, across rows. Tiles (16, 32 wide) read fewer rows above
# and below that are not their own, which may pay for the 5x5 kernels; profile_gpu.py --fused times them.
TILE_WIDTH = int(os.environ.get("RECNET_TRITON_TILE_WIDTH", "0"))
NONE, RELU, LEAKY = 0, 1, 2  # activations after a convolution
# Runs of BLOCK pixels that one program of the pixel sums adds up in float32, before float64 takes over;
# its products run on tensor cores in three TF32 passes, nearly as exact as float32, or in one where both
# maps are 16-bit: TF32 holds their values, and so float32 their products, exactly.
SUMS_STEPS = 16
SUMS_PRECISION = "tf32x3"
SIXTEEN_BIT = (torch.float16, torch.bfloat16)
# Sums of at most this many products a pixel (a block's moments: 3 scales x 8 channels, as 4 x 8) add each
# pixel's outer product in float32 registers instead: a 16 x 16 matrix product computed 10 times the
# products needed, and took 235 registers a thread, which left the GPU two programs an SM.
ELEMENTWISE_PRODUCTS = 32


def _float32_product_depth() -> int:
    """The narrowest inner side of a float32 matrix product (tl.dot) that Triton compiles: 8, TF32's own,
    from Triton 3.8; 16 before (3.6 and 3.7 refuse 8: "K >= 16")."""
    major, minor = (int(part) for part in re.findall(r"\d+", triton.__version__)[:2])
    return 8 if (major, minor) >= (3, 8) else 16


# The narrowest a matrix product's (tl.dot's) rows and columns may be, and its inner side in TF32.
PRODUCT_WIDTH, PRODUCT_DEPTH = 16, _float32_product_depth()
# How deep a dense convolution's matrix products are made, taking several taps side by side (2 of 8
# channels): each product is a trip through shared memory and a wait for the tensor cores, which one tap
# of 8 channels, or 16 where Triton 3.6 pads them, took alone. Compiled for sm_90, 16 makes the 3x3 convs
# of 8 channels the fewest instructions (with 66 registers a thread), 32 the fewest barriers (90); untimed.
TAPS_DEPTH = int(os.environ.get("RECNET_TRITON_TAPS_DEPTH", "16"))

# Triton compiles a kernel again for each pattern of its integer arguments (1, a multiple of 16, other).
# Photo and tile sizes vary, and the kernels gain nothing from knowing them, so the sizes are left general.
kernel = triton.jit(do_not_specialize=["height", "width"])


def unsupported_reason(model: RECNet) -> str | None:
    """Why the kernels cannot run this model (channels must be a power of two, at least 8), or None."""
    channels = model.channels
    if channels < 8 or channels & (channels - 1):
        return f"the fused kernels need a power of two of at least 8 channels, and this model has {channels}"
    return None


@triton.jit
def _pixels(height, width, BLOCK: tl.constexpr, TILE_WIDTH: tl.constexpr):
    """This program's pixels in its image, a tile of BLOCK / TILE_WIDTH rows of TILE_WIDTH (row-major
    tiles), or with TILE_WIDTH 0 a run of BLOCK pixels in row-major order: flat index (int64), row,
    column, and which of them exist."""
    if TILE_WIDTH == 0:
        index = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        row, col = index // width, index % width
    else:
        tiles_across = tl.cdiv(width, TILE_WIDTH)
        tile, pixel = tl.program_id(0), tl.arange(0, BLOCK)
        row = tile // tiles_across * (BLOCK // TILE_WIDTH) + pixel // TILE_WIDTH
        col = tile % tiles_across * TILE_WIDTH + pixel % TILE_WIDTH
    return (row * width + col).to(tl.int64), row, col, (row < height) & (col < width)


@triton.jit
def _clear_of_edge(MARGIN: tl.constexpr, height, width, BLOCK: tl.constexpr, TILE_WIDTH: tl.constexpr):
    """Whether all this program's pixels (``_pixels``) exist and lie MARGIN pixels or more inside the
    image's edges, so that no neighbour in their windows of MARGIN pixels each way is outside it."""
    if TILE_WIDTH == 0:
        first = tl.program_id(0) * BLOCK
        top, left = first // width, first % width
        bottom, right = top, left + BLOCK - 1  # a run that goes on into the next row ends past the width
    else:
        tiles_across = tl.cdiv(width, TILE_WIDTH)
        top = tl.program_id(0) // tiles_across * (BLOCK // TILE_WIDTH)
        left = tl.program_id(0) % tiles_across * TILE_WIDTH
        bottom, right = top + BLOCK // TILE_WIDTH - 1, left + TILE_WIDTH - 1
    return (top >= MARGIN) & (bottom < height - MARGIN) & (left >= MARGIN) & (right < width - MARGIN)


@triton.jit
def _neighbour(
    here,
    row,
    col,
    exists,
    tap,
    SIZE: tl.constexpr,
    height,
    width,
    CLEAR: tl.constexpr,
    REPLICATE: tl.constexpr,
):
    """Where each pixel's neighbour under tap ``tap`` (row-major) of a SIZE x SIZE window centred on it
    is, as (shift, pixel, inside): its flat index (int64) is pixel + shift, and ``inside`` says which
    neighbours lie inside the image (zero padding). For a program ``_clear_of_edge`` (CLEAR), every
    neighbour is inside: the shift is the tap's, the same for all the pixels (loads add it to the map's
    pointer), the pixel ``here`` and ``inside`` all true: no bounds checks. Otherwise the shift is 0, and with
    REPLICATE (replicate padding) a neighbour outside the image is the nearest edge pixel."""
    if CLEAR:
        shift = ((tap // SIZE - SIZE // 2) * width + tap % SIZE - SIZE // 2).to(tl.int64)
        pixel = here
        inside = tl.full(here.shape, True, tl.int1)  # constant: the loads drop their masks
    else:
        row = row + tap // SIZE - SIZE // 2
        col = col + tap % SIZE - SIZE // 2
        if REPLICATE:
            row = tl.minimum(tl.maximum(row, 0), height - 1)
            col = tl.minimum(tl.maximum(col, 0), width - 1)
            inside = exists
        else:
            inside = exists & (row >= 0) & (row < height) & (col >= 0) & (col < width)
        shift = 0
        pixel = (row * width + col).to(tl.int64)
    return shift, pixel, inside


@triton.jit
def _image_offset(height, width, channels):
    """Where this program's image starts in a (B, H, W, channels) map."""
    return tl.program_id(1).to(tl.int64) * height * width * channels


@triton.jit
def _store(out_ptr, pixel, exists, values, channels, CHANNELS: tl.constexpr, height, width):
    """Writes (BLOCK, len(channels)) values to channels ``channels`` of this program's pixels of a
    channels_last map of CHANNELS channels (those beyond CHANNELS are dropped)."""
    at = _image_offset(height, width, CHANNELS) + pixel[:, None] * CHANNELS + channels[None, :]
    mask = exists[:, None] & (channels < CHANNELS)[None, :]
    tl.store(out_ptr + at, values.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _load_rows(map_ptr, pixel, inside, CHANNELS: tl.constexpr, channels):
    """Channels ``channels`` of the given pixels of a (this image's) channels_last map of CHANNELS
    channels, zero outside the image and for channels beyond CHANNELS."""
    at = map_ptr + pixel[:, None] * CHANNELS + channels[None, :]
    return tl.load(at, mask=inside[:, None] & (channels < CHANNELS)[None, :], other=0.0).to(tl.float32)


@triton.jit
def _load_pixels(map_ptr, pixel, inside, CHANNELS: tl.constexpr, WIDTH: tl.constexpr):
    """Every channel of the given pixels of a (this image's) channels_last map of CHANNELS channels, as
    (pixels, WIDTH) rows (WIDTH: CHANNELS rounded up to a power of two, the rest zero), zero outside the
    image. Where WIDTH is CHANNELS only pixels are masked, and the GPU loads whole rows in vector loads."""
    channels = tl.arange(0, WIDTH)
    mask = inside[:, None] if WIDTH == CHANNELS else inside[:, None] & (channels < CHANNELS)[None, :]
    at = map_ptr + pixel[:, None] * CHANNELS + channels[None, :]
    return tl.load(at, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _load_channel(map_ptr, pixel, inside, CHANNELS: tl.constexpr, channel):
    """Channel ``channel`` of the given pixels of a (this image's) channels_last map of CHANNELS channels,
    zero outside the image."""
    return tl.load(map_ptr + pixel * CHANNELS + channel, mask=inside, other=0.0).to(tl.float32)


@triton.jit
def _dot(rows, weights, PRECISION: tl.constexpr):
    """rows @ weights of float32 values, summed in float32: on tensor cores in TF32 (whose 10-bit
    mantissa holds float16 values exactly) or on the CUDA cores in IEEE float32, as PRECISION says."""
    return tl.dot(rows, weights, input_precision=PRECISION)


@kernel
def _conv_kernel(
    x_ptr,
    weight_ptr,
    bias_ptr,
    residual_ptr,
    out_ptr,
    slope,
    height,
    width,
    IN: tl.constexpr,
    IN_PAD: tl.constexpr,
    OUT: tl.constexpr,
    OUT_PAD: tl.constexpr,
    SIZE: tl.constexpr,
    TAPS: tl.constexpr,
    DEPTHWISE: tl.constexpr,
    REPLICATE: tl.constexpr,
    ACTIVATION: tl.constexpr,
    RESIDUAL: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK: tl.constexpr,
    TILE_WIDTH: tl.constexpr,
):
    """A SIZE x SIZE convolution, dense (weight layout (taps, IN_PAD, OUT_PAD), the taps a multiple of
    TAPS, padded with zeros) or depthwise (IN = OUT, weight layout (SIZE², OUT)), with zero or replicate
    padding, then an activation and an optional residual. Dense, TAPS taps at a time are one matrix
    product: of the neighbours' rows of IN_PAD channels under each, side by side, and those taps' weights;
    depthwise, a tap multiplies the rows by its weights."""
    here, row, col, exists = _pixels(height, width, BLOCK, TILE_WIDTH)
    outs = tl.arange(0, OUT_PAD)
    real = outs < OUT
    x_ptr += _image_offset(height, width, IN)
    acc = tl.zeros((BLOCK, OUT_PAD), tl.float32) + tl.load(bias_ptr + outs, mask=real, other=0.0)[None, :]
    if DEPTHWISE:
        for CLEAR in tl.static_range(2):  # the taps twice: without bounds checks where the program is clear
            if _clear_of_edge(SIZE // 2, height, width, BLOCK, TILE_WIDTH) == CLEAR:
                for tap in range(SIZE * SIZE):
                    shift, pixel, inside = _neighbour(
                        here, row, col, exists, tap, SIZE, height, width, CLEAR, False
                    )
                    weights = tl.load(weight_ptr + tap * OUT + outs, mask=real, other=0.0)[None, :]
                    acc += _load_pixels(x_ptr + shift * OUT, pixel, inside, OUT, OUT_PAD) * weights
    else:  # bounds checks everywhere: for sm_90 with Triton 3.6, a copy without them was no shorter
        ins = tl.arange(0, IN_PAD)
        depth = tl.arange(0, TAPS * IN_PAD)
        for group in range(tl.cdiv(SIZE * SIZE, TAPS)):
            taps = group * TAPS + tl.arange(0, TAPS)[None, :]
            _, pixel, inside = _neighbour(
                here[:, None],
                row[:, None],
                col[:, None],
                exists[:, None],
                taps,
                SIZE,
                height,
                width,
                False,
                REPLICATE,
            )
            at = x_ptr + pixel[:, :, None] * IN + ins[None, None, :]
            mask = (inside & (taps < SIZE * SIZE))[:, :, None] & (ins < IN)[None, None, :]
            rows = tl.reshape(tl.load(at, mask=mask, other=0.0).to(tl.float32), (BLOCK, TAPS * IN_PAD))
            weights = tl.load(weight_ptr + (group * TAPS * IN_PAD + depth[:, None]) * OUT_PAD + outs[None, :])
            acc += _dot(rows, weights, PRECISION)
    if ACTIVATION == 1:
        acc = tl.maximum(acc, 0.0)
    elif ACTIVATION == 2:
        acc = tl.where(acc >= 0, acc, acc * slope)
    if RESIDUAL:
        acc += _load_pixels(residual_ptr + _image_offset(height, width, OUT), here, exists, OUT, OUT_PAD)
    _store(out_ptr, here, exists, acc, outs, OUT, height, width)


@triton.jit
def _descriptor_response(weight_ptr, BRANCH: tl.constexpr, tap, mask, mean, high, low):
    """One tap of a branch conv on the descriptors (m·mean(F), m·max(F) or m·min(F) where m < 0, m)."""
    at = weight_ptr + BRANCH * 27 + tap
    peak = tl.where(mask >= 0, mask * high, mask * low)
    return tl.load(at) * (mask * mean) + tl.load(at + 9) * peak + tl.load(at + 18) * mask


@kernel
def _scales_kernel(
    features_ptr,
    under_ptr,
    over_ptr,
    weight_ptr,
    out_ptr,
    height,
    width,
    C: tl.constexpr,
    BLOCK: tl.constexpr,
    TILE_WIDTH: tl.constexpr,
):
    """``fast.branch_scales``: the three branches' scales m·sigmoid(conv(descriptors)). Masks (B, H, W),
    weight layout (branch, descriptor, 3x3 tap)."""
    here, row, col, exists = _pixels(height, width, BLOCK, TILE_WIDTH)
    features_ptr += _image_offset(height, width, C)
    under_ptr += _image_offset(height, width, 1)
    over_ptr += _image_offset(height, width, 1)
    under_sum = tl.zeros((BLOCK,), tl.float32)
    over_sum = tl.zeros((BLOCK,), tl.float32)
    whole_sum = tl.zeros((BLOCK,), tl.float32)
    for tap in range(9):
        _, pixel, inside = _neighbour(here, row, col, exists, tap, 3, height, width, False, False)
        values = _load_pixels(features_ptr, pixel, inside, C, C)
        mean = tl.sum(values, axis=1) / C
        high = tl.max(values, axis=1)
        low = tl.min(values, axis=1)
        under = _load_channel(under_ptr, pixel, inside, 1, 0)
        over = _load_channel(over_ptr, pixel, inside, 1, 0)
        whole = tl.where(inside, 1.0, 0.0)
        under_sum += _descriptor_response(weight_ptr, 0, tap, under, mean, high, low)
        over_sum += _descriptor_response(weight_ptr, 1, tap, over, mean, high, low)
        whole_sum += _descriptor_response(weight_ptr, 2, tap, whole, mean, high, low)
    under = _load_channel(under_ptr, here, exists, 1, 0)
    over = _load_channel(over_ptr, here, exists, 1, 0)
    out_ptr += _image_offset(height, width, 3) + here * 3
    dtype = out_ptr.dtype.element_ty
    tl.store(out_ptr, (under * tl.sigmoid(under_sum)).to(dtype), mask=exists)
    tl.store(out_ptr + 1, (over * tl.sigmoid(over_sum)).to(dtype), mask=exists)
    tl.store(out_ptr + 2, tl.sigmoid(whole_sum).to(dtype), mask=exists)


@kernel
def _normed_kernel(
    features_ptr,
    scales_ptr,
    weight_ptr,
    shift_ptr,
    bias_ptr,
    out_ptr,
    height,
    width,
    C: tl.constexpr,
    OUT_PAD: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK: tl.constexpr,
    TILE_WIDTH: tl.constexpr,
):
    """``fast.normalize``: this image's 3x3 conv of the branch products F·s (weight (9, 4C, OUT_PAD), the
    rows beyond 3C zero) and of the channel of ones inside the image (weight (9, OUT_PAD): each tap's
    shift), as ``fast.normalizing_weights`` gives them. A tap's products are each pixel's (4, C) outer
    product of its scales (the fourth zero) and features, as a row of 4C: one matrix product a tap. The
    bias (B, OUT_PAD) holds every tap's shift, as inside the image; a program with pixels at the image's
    edge then takes away the shifts of their taps outside it, as a matrix product too."""
    here, row, col, exists = _pixels(height, width, BLOCK, TILE_WIDTH)
    inputs = tl.arange(0, 4 * C)
    outs = tl.arange(0, OUT_PAD)
    features_ptr += _image_offset(height, width, C)
    scales_ptr += _image_offset(height, width, 3)
    weight_ptr += tl.program_id(1) * 9 * 4 * C * OUT_PAD
    shift_ptr += tl.program_id(1) * 9 * OUT_PAD
    acc = (
        tl.zeros((BLOCK, OUT_PAD), tl.float32)
        + tl.load(bias_ptr + tl.program_id(1) * OUT_PAD + outs)[None, :]
    )
    for CLEAR in tl.static_range(2):  # the taps twice: without bounds checks where the program is clear
        if _clear_of_edge(1, height, width, BLOCK, TILE_WIDTH) == CLEAR:
            for tap in range(9):
                shift, pixel, inside = _neighbour(here, row, col, exists, tap, 3, height, width, CLEAR, False)
                features = _load_pixels(features_ptr + shift * C, pixel, inside, C, C)
                scales = _load_pixels(scales_ptr + shift * 3, pixel, inside, 3, 4)
                rows = tl.reshape(scales[:, :, None] * features[:, None, :], (BLOCK, 4 * C))
                weights = tl.load(weight_ptr + (tap * 4 * C + inputs[:, None]) * OUT_PAD + outs[None, :])
                acc += _dot(rows, weights, PRECISION)
            if not CLEAR:  # which taps are outside, times their shifts
                taps = tl.arange(0, 16)
                _, _, inside = _neighbour(
                    here[:, None],
                    row[:, None],
                    col[:, None],
                    exists[:, None],
                    taps[None, :],
                    3,
                    height,
                    width,
                    False,
                    False,
                )
                outside = (~inside & (taps < 9)[None, :]).to(tl.float32)
                shifts = tl.load(
                    shift_ptr + taps[:, None] * OUT_PAD + outs[None, :], mask=(taps < 9)[:, None], other=0.0
                )
                acc -= _dot(outside, shifts, PRECISION)
    _store(out_ptr, here, exists, acc, outs, C, height, width)


@kernel
def _share_kernel(
    normed_ptr,
    mixed_ptr,
    local_weight_ptr,
    local_bias_ptr,
    local_mix_ptr,
    normed_mix_ptr,
    bias_ptr,
    out_ptr,
    height,
    width,
    C: tl.constexpr,
    C_PAD: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK: tl.constexpr,
    TILE_WIDTH: tl.constexpr,
):
    """``fast.attention_free_share``: the local path (each of its 2C channels a 5x5 conv over a pair of
    mixed channels, weight (25, 4C)), then the fusion's (2C, 2C) and (C, 2C) matrices on local and Fn,
    as matrix products (Fn's over C_PAD channels, as ``_normed_kernel``). Each tap loads whole 4C-channel
    rows; a (4C, 2C) matrix of ones then adds each pair."""
    here, row, col, exists = _pixels(height, width, BLOCK, TILE_WIDTH)
    pairs = tl.arange(0, 2 * C)
    mixed_channels = tl.arange(0, 4 * C)
    mixed_ptr += _image_offset(height, width, 4 * C)
    per_channel = tl.zeros((BLOCK, 4 * C), tl.float32)
    for CLEAR in tl.static_range(2):  # the taps twice: without bounds checks where the program is clear
        if _clear_of_edge(2, height, width, BLOCK, TILE_WIDTH) == CLEAR:
            for tap in range(25):
                shift, pixel, inside = _neighbour(here, row, col, exists, tap, 5, height, width, CLEAR, False)
                weights = tl.load(local_weight_ptr + tap * 4 * C + mixed_channels)[None, :]
                per_channel += _load_pixels(mixed_ptr + shift * 4 * C, pixel, inside, 4 * C, 4 * C) * weights
    pair_sums = (mixed_channels[:, None] // 2 == pairs[None, :]).to(tl.float32)
    local = _dot(per_channel, pair_sums, PRECISION) + tl.load(local_bias_ptr + pairs)[None, :]
    local = tl.maximum(local, 0.0)
    local_mix = tl.load(local_mix_ptr + pairs[:, None] * 2 * C + pairs[None, :])
    share = _dot(local, local_mix, PRECISION) + tl.load(bias_ptr + pairs)[None, :]
    normed = _load_pixels(normed_ptr + _image_offset(height, width, C), here, exists, C, C_PAD)
    channels = tl.arange(0, C_PAD)
    at = normed_mix_ptr + channels[:, None] * 2 * C + pairs[None, :]
    normed_mix = tl.load(at, mask=(channels < C)[:, None], other=0.0)
    share += _dot(normed, normed_mix, PRECISION)
    _store(out_ptr, here, exists, share, pairs, 2 * C, height, width)


@kernel
def _fusion_kernel(
    features_ptr,
    share_ptr,
    query_weight_ptr,
    query_bias_ptr,
    mix_ptr,
    out_ptr,
    height,
    width,
    C: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK: tl.constexpr,
    TILE_WIDTH: tl.constexpr,
):
    """The fused features before the post convs: the queries ReLU(dw3(F)), ReLU(dw5(F)) (weight (25, 2C),
    3x3 zero-padded), mixed by this image's (2C, 2C) attention matrix, plus the attention-free share."""
    here, row, col, exists = _pixels(height, width, BLOCK, TILE_WIDTH)
    both = tl.arange(0, 2 * C)
    features_ptr += _image_offset(height, width, C)
    queries = tl.zeros((BLOCK, 2 * C), tl.float32) + tl.load(query_bias_ptr + both)[None, :]
    for CLEAR in tl.static_range(2):  # the taps twice: without bounds checks where the program is clear
        if _clear_of_edge(2, height, width, BLOCK, TILE_WIDTH) == CLEAR:
            for tap in range(25):
                shift, pixel, inside = _neighbour(here, row, col, exists, tap, 5, height, width, CLEAR, False)
                weights = tl.load(query_weight_ptr + tap * 2 * C + both)[None, :]
                queries += _load_rows(features_ptr + shift * C, pixel, inside, C, both % C) * weights
    queries = tl.maximum(queries, 0.0)
    mix = tl.load(mix_ptr + tl.program_id(1) * 4 * C * C + both[:, None] * 2 * C + both[None, :])
    share = _load_pixels(share_ptr + _image_offset(height, width, 2 * C), here, exists, 2 * C, 2 * C)
    fused = _dot(queries, mix, PRECISION) + share
    _store(out_ptr, here, exists, fused, both, 2 * C, height, width)


@kernel
def _pixel_sums_kernel(
    left_ptr,
    right_ptr,
    out_ptr,
    left_image_stride,
    left_row_stride,
    right_image_stride,
    right_row_stride,
    height,
    width,
    LEFT_PIXEL_STRIDE: tl.constexpr,
    RIGHT_PIXEL_STRIDE: tl.constexpr,
    M: tl.constexpr,
    M_PAD: tl.constexpr,
    N: tl.constexpr,
    N_PAD: tl.constexpr,
    SQUARES: tl.constexpr,
    ELEMENTWISE: tl.constexpr,
    PRECISION: tl.constexpr,
    STEPS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """``fast.pixel_sums`` over STEPS x BLOCK pixels of one image: their leftᵀ·right (and with SQUARES
    that of their squares) in float32, to out[image, program] (1 + SQUARES, M_PAD, N_PAD). The maps may be
    strided views (a tile's interior); a pixel's channels are contiguous, and the pixel strides are
    constants, so that Triton can tell which rows of channels it may load whole. The products are matrix
    products, or with ELEMENTWISE (for few channels) each pixel's outer product, added up pixel by pixel
    and over the pixels at the end."""
    ms = tl.arange(0, M_PAD)
    ns = tl.arange(0, N_PAD)
    image = tl.program_id(1).to(tl.int64)
    left_ptr += image * left_image_stride
    right_ptr += image * right_image_stride
    acc = tl.zeros((M_PAD, N_PAD), tl.float32)
    squares = tl.zeros((M_PAD, N_PAD), tl.float32)
    if ELEMENTWISE:
        pixel_acc = tl.zeros((BLOCK, M_PAD, N_PAD), tl.float32)
        pixel_squares = tl.zeros((BLOCK, M_PAD, N_PAD), tl.float32)
    for step in range(STEPS):
        index = (tl.program_id(0) * STEPS + step) * BLOCK + tl.arange(0, BLOCK)
        exists = index < height * width
        row, col = (index // width).to(tl.int64), (index % width).to(tl.int64)
        left_at = left_ptr + (row * left_row_stride + col * LEFT_PIXEL_STRIDE)[:, None] + ms[None, :]
        right_at = right_ptr + (row * right_row_stride + col * RIGHT_PIXEL_STRIDE)[:, None] + ns[None, :]
        left = tl.load(left_at, mask=exists[:, None] & (ms < M)[None, :], other=0.0).to(tl.float32)
        right = tl.load(right_at, mask=exists[:, None] & (ns < N)[None, :], other=0.0).to(tl.float32)
        if ELEMENTWISE:
            product = left[:, :, None] * right[:, None, :]
            pixel_acc += product
            if SQUARES:
                pixel_squares += product * product
        else:
            acc += tl.dot(tl.trans(left), right, input_precision=PRECISION)
            if SQUARES:
                squares += tl.dot(tl.trans(left * left), right * right, input_precision=PRECISION)
    if ELEMENTWISE:
        acc = tl.sum(pixel_acc, axis=0)
        if SQUARES:
            squares = tl.sum(pixel_squares, axis=0)
    out_ptr += (image * tl.num_programs(0) + tl.program_id(0)) * (1 + SQUARES) * M_PAD * N_PAD
    at = out_ptr + ms[:, None] * N_PAD + ns[None, :]
    tl.store(at, acc)
    if SQUARES:
        tl.store(at + M_PAD * N_PAD, squares)


def _launch(kernel: triton.JITFunction, like: Tensor, *arguments: object, **constants: object) -> None:
    """Runs ``kernel`` over the pixels of the (B, C, H, W) map ``like``: its arguments, then H and W."""
    batch, _, height, width = like.shape
    if TILE_WIDTH:
        tile_width = min(TILE_WIDTH, BLOCK)
        programs = triton.cdiv(width, tile_width) * triton.cdiv(height, BLOCK // tile_width)
    else:
        tile_width, programs = 0, triton.cdiv(height * width, BLOCK)
    grid = (programs, batch)
    kernel[grid](*arguments, height, width, **constants, BLOCK=BLOCK, TILE_WIDTH=tile_width, num_warps=WARPS)


def product_side(channels: int, least: int = PRODUCT_WIDTH) -> int:
    """``channels`` as a side of a matrix product: a power of two, at least ``least`` (PRODUCT_DEPTH for
    the inner side)."""
    return max(least, triton.next_power_of_2(channels))


def dot_precision(like: Tensor) -> str:
    """How the kernels' matrix products run for maps like ``like``: in TF32, whose 10-bit mantissa is
    float16's (so no coarser than 16-bit maps, and a dense tap needs only 8 input channels, not 16); for
    float32 maps only where PyTorch lets cuDNN use TF32 (its default), as the eager convolutions do, else
    in float32."""
    return "tf32" if like.dtype != torch.float32 or torch.backends.cudnn.allow_tf32 else "ieee"


def _parameter(x: Tensor, like: Tensor) -> Tensor:
    """A weight as the kernels read it: float32, contiguous, on the maps' device."""
    return x.detach().to(like.device, torch.float32).contiguous()


def tap_grouping(in_channels: int, size: int) -> tuple[int, int]:
    """How a dense size x size conv of ``in_channels`` runs: (IN_PAD, TAPS), the channels as a power of
    two, and how many taps a matrix product takes side by side: enough to make it TAPS_DEPTH deep, and at
    least PRODUCT_DEPTH (the channels padded further where one tap falls short)."""
    taps = min(max(1, TAPS_DEPTH // triton.next_power_of_2(in_channels)), triton.next_power_of_2(size * size))
    return max(triton.next_power_of_2(in_channels), PRODUCT_DEPTH // taps), taps


def _taps(weight: Tensor, like: Tensor, in_pad: int, out_pad: int, taps: int) -> Tensor:
    """A (out, in, k, k) conv weight laid out (taps, in_pad, out_pad), the taps k² rounded up to a multiple
    of ``taps``, all padding zero."""
    out_channels, in_channels, size, _ = weight.shape
    padding = (0, out_pad - out_channels, 0, in_pad - in_channels, 0, -(size * size) % taps)
    return _parameter(F.pad(weight.permute(2, 3, 1, 0).reshape(-1, in_channels, out_channels), padding), like)


def _depthwise_taps(weight: Tensor, like: Tensor) -> Tensor:
    """A (channels, 1, k, k) depthwise weight laid out (k², channels)."""
    return _parameter(weight.flatten(1).T, like)


def conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    activation: int = NONE,
    slope: float = 0.0,
    residual: Tensor | None = None,
    replicate: bool = False,
) -> Tensor:
    """A stride-1 convolution of a channels_last map, dense or depthwise (``weight`` (out, in, k, k) or
    (channels, 1, k, k)): ``F.conv2d(x, weight, bias, padding=k // 2, groups=...)`` (``replicate``: with
    replicate padding), then ReLU or leaky ReLU (``slope``), then + ``residual``."""
    x = fast.channels_last(x)
    out_channels, in_channels, size, _ = weight.shape
    depthwise = in_channels == 1 and out_channels == x.shape[1] > 1
    if depthwise:
        in_pad = out_pad = triton.next_power_of_2(out_channels)
        taps = 1
        weights = _depthwise_taps(weight, x)
    else:
        (in_pad, taps), out_pad = tap_grouping(in_channels, size), product_side(out_channels)
        weights = _taps(weight, x, in_pad, out_pad, taps)
    out = fast.empty_map(x, out_channels)
    residual = out if residual is None else fast.channels_last(residual)
    bias = weight.new_zeros(out_channels) if bias is None else bias
    arguments = (x, weights, _parameter(bias, x), residual, out, slope)
    constants = {"TAPS": taps, "DEPTHWISE": depthwise, "REPLICATE": replicate, "ACTIVATION": activation}
    constants["RESIDUAL"] = residual is not out
    channels = {"IN": x.shape[1], "IN_PAD": in_pad, "OUT": out_channels, "OUT_PAD": out_pad}
    _launch(_conv_kernel, x, *arguments, **channels, SIZE=size, **constants, PRECISION=dot_precision(x))
    return out


def sums_outer_products(m: int, n: int) -> bool:
    """Whether ``pixel_sums`` of maps of m and n channels adds each pixel's outer product in registers
    (few products a pixel, rounded up to powers of two), not matrix products."""
    return triton.next_power_of_2(m) * triton.next_power_of_2(n) <= ELEMENTWISE_PRODUCTS


def pixel_sums(left: Tensor, right: Tensor, squares: bool = False) -> Tensor:
    """``fast.pixel_sums``: float32 sums over runs of SUMS_STEPS x BLOCK pixels, added up in float64. The
    maps may be views (a tile's interior) whose pixels' channels are contiguous."""
    left, right = (x if x.stride(1) == 1 else fast.channels_last(x) for x in (left, right))
    batch, m, height, width = left.shape
    n = right.shape[1]
    elementwise = sums_outer_products(m, n)
    least = 1 if elementwise else PRODUCT_WIDTH
    m_pad, n_pad = product_side(m, least), product_side(n, least)  # the loads leave the padding zero
    runs = triton.cdiv(height * width, SUMS_STEPS * BLOCK)
    partial = torch.empty(batch, runs, 1 + squares, m_pad, n_pad, dtype=torch.float32, device=left.device)
    strides = [x.stride(dim) for x in (left, right) for dim in (0, 2)]
    constants = {"LEFT_PIXEL_STRIDE": left.stride(3), "RIGHT_PIXEL_STRIDE": right.stride(3)}
    constants |= {"M": m, "M_PAD": m_pad, "N": n, "N_PAD": n_pad, "SQUARES": squares, "STEPS": SUMS_STEPS}
    constants["ELEMENTWISE"] = elementwise
    exact_in_tf32 = not squares and left.dtype in SIXTEEN_BIT and right.dtype in SIXTEEN_BIT
    constants["PRECISION"] = "tf32" if exact_in_tf32 else SUMS_PRECISION
    grid = (runs, batch)
    _pixel_sums_kernel[grid](
        left, right, partial, *strides, height, width, **constants, BLOCK=BLOCK, num_warps=WARPS
    )
    sums = partial[..., :m, :n].sum(1, dtype=torch.float64)
    return sums if squares else sums[:, 0]


def layer_conv(layer: nn.Conv2d, x: Tensor) -> Tensor:
    """``layer(x)`` for a stride-1 conv with zero or replicate padding of k // 2 (``fast.conv``)."""
    return conv(x, layer.weight, layer.bias, replicate=layer.padding_mode == "replicate")


def branch_scales(norm: RegionAwareDeExposure, features: Tensor, under: Tensor, over: Tensor) -> Tensor:
    features = fast.channels_last(features)
    out = fast.empty_map(features, 3)
    weight = _parameter(torch.cat([branch.weight for branch in norm.CFR_branches]), features)
    masks = (under.contiguous(), over.contiguous())
    _launch(_scales_kernel, features, features, *masks, weight, out, C=features.shape[1])
    return out


def normalize(
    norm: RegionAwareDeExposure, features: Tensor, scales: Tensor, mean: Tensor, variance: Tensor
) -> Tensor:
    features, scales = fast.channels_last(features), fast.channels_last(scales)
    batch, channels = features.shape[:2]
    out = fast.empty_map(features, channels)
    out_pad = product_side(channels)
    weights, bias = fast.normalizing_weights(norm, mean, variance)
    # (B, out, in, 3, 3) as (B, 9, in, out), the outputs padded to OUT_PAD; the products' inputs to 4C
    taps = F.pad(
        weights.permute(0, 3, 4, 2, 1).reshape(batch, 9, 3 * channels + 1, channels), (0, out_pad - channels)
    )
    products, shifts = F.pad(taps[:, :, :-1], (0, 0, 0, channels)), taps[:, :, -1]
    bias = F.pad(bias, (0, out_pad - channels)) + shifts.sum(1)
    products, shifts, bias = (_parameter(x, features) for x in (products, shifts, bias))
    constants = {"C": channels, "OUT_PAD": out_pad, "PRECISION": dot_precision(features)}
    _launch(_normed_kernel, features, features, scales, products, shifts, bias, out, **constants)
    return out


def mixed_scale_features(mssa: MixedScaleRestoration, normed: Tensor) -> Tensor:
    projection, projection_bias, depthwise, depthwise_bias = fast.mixed_scale_weights(mssa)
    projected = conv(normed, projection[:, :, None, None], projection_bias)
    return conv(projected, depthwise, depthwise_bias, RELU)


def attention_free_share(block: RegionAwareMixedBlock, normed: Tensor, mixed: Tensor) -> Tensor:
    normed, mixed = fast.channels_last(normed), fast.channels_last(mixed)
    channels = normed.shape[1]
    out = fast.empty_map(normed, 2 * channels)
    local_weight, local_bias = fast.local_path_weights(block.mssa)
    fusion, bias = fast.fusion_without_attention(block)
    local = (_depthwise_taps(local_weight, normed), _parameter(local_bias, normed))
    mixes = (_parameter(fusion[:, channels:].T, normed), _parameter(fusion[:, :channels].T, normed))
    arguments = (normed, mixed, *local, *mixes, _parameter(bias, normed), out)
    constants = {
        "C": channels,
        "C_PAD": product_side(channels, PRODUCT_DEPTH),
        "PRECISION": dot_precision(normed),
    }
    _launch(_share_kernel, normed, *arguments, **constants)
    return out


def block_output(
    block: RegionAwareMixedBlock, features: Tensor, attention_free: Tensor, attention: Tensor
) -> Tensor:
    features, attention_free = fast.channels_last(features), fast.channels_last(attention_free)
    channels = features.shape[1]
    mssa = block.mssa
    fused = fast.empty_map(features, 2 * channels)
    query_weight = torch.cat([fast.as_5x5(mssa.conv3x3_q.weight), mssa.conv5x5_q.weight])
    query_bias = torch.cat([mssa.conv3x3_q.bias, mssa.conv5x5_q.bias])
    queries = (_depthwise_taps(query_weight, features), _parameter(query_bias, features))
    mix = _parameter(fast.fusion_of_attention(block, attention).transpose(1, 2), features)
    arguments = (features, attention_free, *queries, mix, fused)
    _launch(_fusion_kernel, features, *arguments, C=channels, PRECISION=dot_precision(features))
    first, activation, last = block.post
    hidden = conv(fused, first.weight, first.bias, LEAKY, activation.negative_slope)
    return conv(hidden, last.weight, last.bias, residual=features)


def merge(model: RECNet, index: int, output: Tensor, merged: Tensor | None) -> Tensor:
    """``fast.merge``: the block's share by the convolution kernel (1x1), ``merged`` its residual."""
    weight, bias = fast.merge_weights(model, index)
    return conv(output, weight[:, :, None, None], bias, residual=merged)


STAGES = fast.Stages(
    fast.blur,
    branch_scales,
    normalize,
    mixed_scale_features,
    attention_free_share,
    block_output,
    layer_conv,
    pixel_sums,
    merge,
)
