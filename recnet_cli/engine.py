"""Running a loaded model on one photo: numpy in, numpy out."""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from recnet_cli import device_pixels
from recnet_cli.autostrength import StrengthCalibration
from recnet_cli.devices import (
    DeviceError,
    is_host_out_of_memory,
    is_out_of_memory,
    keep_freed_host_memory,
    peak_memory_bytes,
    precision_name,
    reset_peak_memory,
)
from recnet_cli.files import describe_os_error, first_line
from recnet_cli.hostmemory import available_host_memory
from recnet_cli.imaging import FREE_MEMORY_ADVICE
from recnet_cli.imaging.pixels import lightness_only
from recnet_cli.model import RECNet
from recnet_cli.model.fast import EAGER, Stages, fast_forward
from recnet_cli.tiling import (
    MIN_TILE,
    MOMENTS_HALO,
    Progress,
    Spill,
    TiledRunner,
    full_maps_bytes,
    map_sizes,
    maps_to_spill,
    pinned_maps_bytes,
    tiles,
)
from recnet_cli.wording import gibibytes

TileSetting = int | Literal["auto"]
StrengthSetting = float | Literal["auto"]

# Peak memory of the whole-image fast path, bytes per pixel per byte of the compute dtype (measured on
# the CPU at 1 MP: 940 B/px in float32, 473 in bfloat16).
WHOLE_IMAGE_BYTES_PER_PIXEL = 250
# On the CPU, tiles beat the whole-image path beyond about half a megapixel: small tensors are recycled
# by the allocator, large ones cost fresh pages every time, but below that the tiles are small and their
# halos and fixed costs weigh. On a 2-core EPYC (median of 6 alternating runs) the whole image was 16%
# faster at 0.36 MP and 18% at 0.50 MP, even at 0.58 MP, and 11% slower at 0.69 MP. The budget takes the
# whole image up to about 0.53 MP with its border. Tiles of at most 448 (each side split evenly) ran about
# 5% faster than 384 at 12 MP, and 10% at 1 MP (no thin last tiles).
CPU_WHOLE_IMAGE_BUDGET = 512 * 2**20
CPU_TILE = 448
GPU_TILE = 2048
GPU_MEMORY_SHARE = 0.8
OTHER_WHOLE_IMAGE_BUDGET = 4 * 2**30
HOST = torch.device("cpu")
# The share of the host memory available that a tiled run's full-size maps may take. Beyond it, those the
# tiles read and write least go to memory-mapped files in the temporary folder (TMPDIR), as an image
# editor's scratch disk does: slower, but a photo of any size runs. (At 100 MP the maps take 15.7 GiB, and
# such a photo peaked at 17.1 GiB of RSS on a machine with 22 GiB available.)
MAP_MEMORY_SHARE = 0.9
# A mirrored border this wide goes around each photo and is cropped off after: the network pads its
# convolutions with zeros, which otherwise draws a line one or two pixels wide along the photo's edges
# (measured on the example photos: 13 to 32 levels of jump at the edge, back to the interior's with 8).
EDGE_PAD = 8


class PhotoRunError(Exception):
    """A photo the model could not correct; it fails alone, and the message says what to try."""


class PhotoOutOfMemoryError(PhotoRunError):
    """A photo the device's memory could not hold at these settings."""


class NotANumberError(PhotoRunError):
    """A photo whose output came out NaN: weights that overflow, or a half precision too narrow for it."""


@dataclass
class Correction:
    """A corrected photo (H, W, 3 float32 in [0, 1]), the under-exposure mask (H, W float32) and the share
    of the model's correction the photo got."""

    image: np.ndarray
    mask: np.ndarray
    strength: float


def whole_image_bytes(height: int, width: int, dtype: torch.dtype) -> int:
    """Estimated peak memory of whole-image inference."""
    return WHOLE_IMAGE_BYTES_PER_PIXEL * torch.finfo(dtype).bits // 8 * height * width


def gpu_memory_budget(device: torch.device) -> int:
    """``GPU_MEMORY_SHARE`` of what a photo may use on a CUDA device: the driver's free memory, and what
    PyTorch's allocator holds with no tensor in it (kept from the last photo for the next; the driver
    counts it as used)."""
    free = torch.cuda.mem_get_info(device)[0]
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return int((free + cached) * GPU_MEMORY_SHARE)


def auto_tile(device: torch.device, dtype: torch.dtype, height: int, width: int) -> int:
    """0 (whole image) when it fits the device's budget (and is fastest there), else a tile size."""
    if device.type == "cuda":
        budget, tile = gpu_memory_budget(device), GPU_TILE
    elif device.type == "cpu":
        budget, tile = CPU_WHOLE_IMAGE_BUDGET, CPU_TILE
    else:
        budget, tile = OTHER_WHOLE_IMAGE_BUDGET, GPU_TILE
    return 0 if whole_image_bytes(height, width, dtype) <= budget else tile


def tiled_on_device_bytes(channels: int, height: int, width: int, dtype: torch.dtype, tile: int) -> int:
    """Estimated peak device memory of a tiled run that keeps its full-size maps on the device: the maps,
    and a tile's work with its halo, a square one or the longest (a photo thinner than a tile)."""
    halo = 2 * MOMENTS_HALO
    longest = max(tiles(height, width, tile), key=lambda window: window.area)
    sides = [(tile, tile), (longest.bottom - longest.top, longest.right - longest.left)]
    tile_work = max(
        whole_image_bytes(min(rows + halo, height), min(cols + halo, width), dtype) for rows, cols in sides
    )
    return full_maps_bytes(channels, height, width, dtype) + tile_work


def map_storage(
    device: torch.device, dtype: torch.dtype, height: int, width: int, tile: int, channels: int
) -> torch.device:
    """Where a tiled run keeps its full-size maps: on a CUDA device when they fit its free memory beside
    one tile's work (nothing then crosses the bus), else in host memory."""
    if device.type != "cuda":
        return HOST
    budget = gpu_memory_budget(device)
    return device if tiled_on_device_bytes(channels, height, width, dtype, tile) <= budget else HOST


def check_tile(tile: TileSetting) -> None:
    if tile == "auto" or (isinstance(tile, int) and (tile == 0 or tile >= MIN_TILE)):
        return
    raise ValueError(f"tile must be 0 (whole image), 'auto' or at least {MIN_TILE} pixels, not {tile!r}")


def check_strength(strength: StrengthSetting) -> None:
    if strength != "auto" and not 0 <= strength <= 1:
        raise ValueError(f"strength must be between 0 and 1, not {strength!r}")


def blend(original: np.ndarray, corrected: np.ndarray, strength: float) -> np.ndarray:
    """``strength`` of the way from the original photo to the corrected one (1 = all the way)."""
    if strength == 1:
        return corrected
    blended = np.subtract(corrected, original, dtype=np.float32)  # in place from here: one array, not four
    blended *= strength
    blended += original
    return np.clip(blended, 0, 1, out=blended)


WholeImageForward = Callable[[RECNet, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def hide_compiler_notices() -> None:
    """Ignores, from here on, the deprecation notices that PyTorch's modules raise about each other while
    torch.compile works (``torch.jit.script_method``, ``torch._prims_common.check``), and its note that its
    guards run slower on Python 3.13.0 (once for each of hundreds of guards): nothing recnet's user needs
    to act on. Once for the process: ``catch_warnings`` around each call is not thread-safe, and each GPU
    lane runs its compiled model in its own thread."""
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(torch|triton)\.")
    warnings.filterwarnings("ignore", "Guards may run slower", RuntimeWarning, r"torch\.")


class CompiledForward:
    """``fast_forward`` through ``torch.compile``, compiled once per image size, or uncompiled for good
    once compiling fails (no Triton or C++ compiler, an operator the compiler lacks): ``failure`` says why."""

    def __init__(self) -> None:
        hide_compiler_notices()  # before torch._dynamo is imported: importing it raises some
        # torch.compile generates no code for complex numbers, so the FFT blur runs as it is. (Disabling it
        # here, not where blur is defined, keeps torch._dynamo's 1.5 s import out of every command.)
        stages = replace(EAGER, blur=torch.compiler.disable(EAGER.blur))
        self.compiled: WholeImageForward = torch.compile(
            functools.partial(fast_forward, stages=stages), dynamic=False
        )
        self.failure: str | None = None

    def __call__(self, model: RECNet, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.failure is None:
            try:
                return self.compiled(model, image)
            except Exception as error:  # compilers fail in many ways; the uncompiled function is exact
                if is_out_of_memory(error):  # the photo's failure, not the compiler's: for the next one too
                    raise
                self.failure = f"{type(error).__name__}: {first_line(error)}"
        return fast_forward(model, image)


def fused_unavailable(device: torch.device) -> str | None:
    """Why fused Triton kernels cannot run on ``device`` at all (whatever the model), or None."""
    if device.type != "cuda":
        return f"--fused needs a CUDA GPU, and the device is {device}"
    try:
        from recnet_cli.model import triton_stages  # noqa: F401
    except ImportError as error:
        return f"--fused needs Triton, which does not import here ({first_line(error)})"
    return None


def fused_stages(model: RECNet, device: torch.device) -> Stages:
    """The per-pixel stages as fused Triton kernels, or a DeviceError saying why they cannot run here."""
    if unavailable := fused_unavailable(device):
        raise DeviceError(unavailable)
    from recnet_cli.model import triton_stages

    reason = triton_stages.unsupported_reason(model)
    if reason:
        raise DeviceError(f"--fused: {reason}")
    return triton_stages.STAGES


class Corrector:
    """Owns a model on a device and corrects photos.

    ``tile``: 0 = whole image in one go, N >= 128 = exact tiles of at most N x N pixels' area (same result,
    bounded memory; on a GPU, full-width strips of that area, streamed from pinned host memory),
    "auto" = whole image when it fits (see ``auto_tile``), else tiles, keeping the full-size maps on the
    GPU when they fit there (see ``map_storage``); explicit tiles keep them in host memory. ``strength``:
    how much of the correction to apply (0 = none, 1 = the full correction, "auto" = what ``calibration``
    predicts for each photo, or 1 without one); the mask is the model's either way. ``compiled``: run the
    whole-image path through ``torch.compile`` (see ``CompiledForward``).
    ``fused``: run the blocks through fused Triton kernels (CUDA; see ``recnet_cli.model.triton_stages``).
    ``keep_colour``: the correction's lightness in the photo's colours (``lightness_only``; --keep-colour),
    given on a GPU to a whole image (``device_pixels.lightness_only``), else on the host.
    """

    def __init__(
        self,
        model: RECNet,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        tile: TileSetting = 0,
        strength: StrengthSetting = 1.0,
        compiled: bool = False,
        fused: bool = False,
        calibration: StrengthCalibration | None = None,
        keep_colour: bool = False,
    ) -> None:
        check_tile(tile)
        check_strength(strength)
        if compiled and fused:
            raise DeviceError("--compile and --fused are alternatives: choose one")
        self.stages = fused_stages(model, device) if fused else EAGER
        if device.type == "cpu":
            keep_freed_host_memory()
        self.model = model.to(device).eval()
        self.device = device
        self.dtype = dtype
        self.tile = tile
        self.strength = strength
        self.calibration = calibration
        self.keep_colour = keep_colour
        # Whether advice on running out of GPU memory may name --precision fp16: not for a command that has
        # no such option (explain runs in float32).
        self.half_precision_advice = True
        self.whole_image: WholeImageForward = (
            CompiledForward() if compiled else functools.partial(fast_forward, stages=self.stages)
        )

    @property
    def compile_failure(self) -> str | None:
        """Why ``torch.compile`` failed, when it was asked for and did."""
        return self.whole_image.failure if isinstance(self.whole_image, CompiledForward) else None

    def tile_for(self, height: int, width: int) -> int:
        """The tile size used for a photo of this size, with its mirrored border (0 = whole image)."""
        if self.tile != "auto":
            return int(self.tile)
        return auto_tile(self.device, self.dtype, height + 2 * EDGE_PAD, width + 2 * EDGE_PAD)

    def full_maps_bytes(self, height: int, width: int) -> int:
        """Memory of a tiled run's full-size maps for a photo of this size, with its mirrored border."""
        return full_maps_bytes(self.model.channels, height + 2 * EDGE_PAD, width + 2 * EDGE_PAD, self.dtype)

    def storage_for(self, height: int, width: int, tile: int) -> torch.device:
        """Where a tiled run of a photo of this size keeps its full-size maps: the device where they fit
        there with --tile auto, else host memory."""
        if self.tile != "auto":
            return HOST
        bordered = (height + 2 * EDGE_PAD, width + 2 * EDGE_PAD)
        return map_storage(self.device, self.dtype, *bordered, tile, self.model.channels)

    def check_room(self, height: int, width: int) -> None:
        """Raises PhotoOutOfMemoryError where the feature maps of a photo of this size would fit neither in
        memory nor in the temporary folder (see ``spill_for``): said from its header, before minutes of
        decoding it (a damaged one may claim 900 MP)."""
        tile = self.tile_for(height, width)
        if tile and self.storage_for(height, width, tile) == HOST:
            self.spill_for(height, width)

    def spill_for(self, height: int, width: int) -> Spill | None:
        """Which full-size maps a tiled run of a photo of this size keeps in files, and where, when the maps
        are in host memory: None (all in memory) where the memory available holds them, or is unknown (not
        Linux); else the least-used ones it cannot hold, in the temporary folder. PhotoOutOfMemoryError
        where that lacks room for them."""
        maps = self.full_maps_bytes(height, width)
        available = available_host_memory()
        if available is None or maps <= available * MAP_MEMORY_SHARE:
            return None
        channels, pixels = self.model.channels, (height + 2 * EDGE_PAD) * (width + 2 * EDGE_PAD)
        excess = maps - int(available * MAP_MEMORY_SHARE)
        spilled = maps_to_spill(channels, self.model.num_blocks, pixels, self.dtype, excess)
        spilled_bytes = sum(map_sizes(channels, pixels, self.dtype)[name] for name in spilled)
        shortage = (
            f"not enough memory for this {height * width / 1e6:.1f} MP photo: its feature maps take "
            f"{gibibytes(maps)}, more than the {gibibytes(available)} available"
        )
        needed = gibibytes(spilled_bytes)
        named = os.environ.get("TMPDIR")
        if named and not (os.path.isdir(named) and os.access(named, os.W_OK | os.X_OK)):
            # Python would use /tmp instead, which may be memory itself (tmpfs): the reason TMPDIR was set
            raise PhotoOutOfMemoryError(
                f"{shortage}, and TMPDIR={named}, where {needed} of them would go, is not a folder recnet "
                "can write in: set it to one with room"
            )
        folder = Path(tempfile.gettempdir())
        free = shutil.disk_usage(folder).free
        if spilled_bytes > free:
            raise PhotoOutOfMemoryError(
                f"{shortage}, and {folder} has {gibibytes(free)} free, less than the {needed} of them "
                "that would go there: set TMPDIR to a folder with more room"
            )
        return Spill(spilled, folder)

    def pinned_maps_fit(self, height: int, width: int) -> bool:
        """Whether the memory available holds a tiled run's host maps for a photo of this size pinned for a
        CUDA GPU (``pinned_maps_bytes``: up to twice their size); where it does not, they are not pinned."""
        bordered = (height + 2 * EDGE_PAD, width + 2 * EDGE_PAD)
        pinned = pinned_maps_bytes(self.model.channels, *bordered, self.dtype)
        available = available_host_memory()
        return available is None or pinned <= available * MAP_MEMORY_SHARE

    def correct(self, rgb: np.ndarray, progress: Progress | None = None) -> Correction:
        """Corrects an (H, W, 3) float32 photo; tiled runs tell ``progress`` the fraction done as they go.
        Running out of memory raises PhotoOutOfMemoryError (the device is usable again for the next)."""
        return self.start(rgb, progress).result()

    def start(self, rgb: np.ndarray, progress: Progress | None = None) -> PendingCorrection:
        """Runs the model on ``rgb``; the host's share of the work (copying back, the strength, the colours
        where the device did not give them, the blend) waits in the returned ``PendingCorrection``, for
        another thread while this one goes on (on a GPU, to queue the next photo). Raises as ``correct``
        does."""
        try:
            return self._start(rgb, progress)
        except (MemoryError, RuntimeError) as error:
            if not is_out_of_memory(error):
                raise
            # handled outside the except block, so the failed run's tensors can be freed first
            on_host = self.device.type == "cpu" or is_host_out_of_memory(error)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        elif self.device.type == "mps":
            torch.mps.empty_cache()
        raise self.out_of_memory(rgb, on_host)

    def out_of_memory(self, rgb: np.ndarray, on_host: bool) -> PhotoOutOfMemoryError:
        """The error for a photo that ran out of host memory (``on_host``) or the device's, with advice."""
        height, width = rgb.shape[:2]
        megapixels = height * width / 1e6
        tile = self.tile_for(height, width)
        if on_host and tile:  # tiled runs keep their full-size maps in host memory, whatever the tile
            maps = self.full_maps_bytes(height, width)
            return PhotoOutOfMemoryError(
                f"not enough memory for this {megapixels:.1f} MP photo: its feature maps alone take "
                f"{gibibytes(maps)} at any --tile; {FREE_MEMORY_ADVICE}"
            )
        on_gpu = self.device.type == "cuda" and not on_host
        advice = f"try a smaller --tile than {tile}" if tile else "try --tile 1024"
        if on_gpu and self.dtype == torch.float32 and self.half_precision_advice:
            advice += " or --precision fp16"
        where = "GPU memory" if on_gpu else "memory"
        return PhotoOutOfMemoryError(f"not enough {where} for this {megapixels:.1f} MP photo: {advice}")

    def not_a_number(self, part: str) -> NotANumberError:
        """The error for a photo whose output (or another ``part`` of what the model gives) came out NaN,
        with what to try."""
        if self.dtype in (torch.float16, torch.bfloat16):
            advice = f"its values overflow {precision_name(self.dtype)}'s range: try --precision fp32"
        else:
            advice = "its weights make it overflow on this photo: try another model"
        return NotANumberError(f"the model's {part} is not a number (NaN): {advice}")

    @torch.inference_mode()
    def _start(self, rgb: np.ndarray, progress: Progress | None) -> PendingCorrection:
        height, width = rgb.shape[:2]
        tile = self.tile_for(height, width)
        # Triton kernels launch on the current CUDA device, and a batch's lanes may each use another GPU.
        current = torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()
        with current:
            colour_kept_on_device = self.keep_colour and not tile and colours_on_device(self.device)
            if tile:
                (output, mask, spill), photo = self.run_tiled(rgb, tile, progress), None
            else:
                photo, spill = with_border(rgb, self.device), None
                model_input = photo.to(dtype=self.dtype)
                # The colours come from the float32 photo, as on the host, whatever the model's precision;
                # without them, only the model's copy is held through the model.
                photo = photo if colour_kept_on_device else None
                output, mask = self.whole_image(self.model, model_input)
            rows, cols = slice(EDGE_PAD, EDGE_PAD + height), slice(EDGE_PAD, EDGE_PAD + width)
            output, mask = output[0, :, rows, cols], mask[0, 0, rows, cols]
            if colour_kept_on_device:
                output = device_pixels.lightness_only(photo[0, :, rows, cols], output)
            output, mask, copied = on_way_to_host(output.permute(1, 2, 0), mask)
        return PendingCorrection(self, rgb, output, mask, copied, spill, colour_kept_on_device)

    def run_tiled(
        self, rgb: np.ndarray, tile: int, progress: Progress | None
    ) -> tuple[torch.Tensor, torch.Tensor, Spill | None]:
        """(output, mask) of the photo with its border, in tiles, and which full-size maps went to files
        where memory could not hold them all (None: all in memory)."""
        height, width = rgb.shape[:2]
        storage = self.storage_for(height, width, tile)
        spill = self.spill_for(height, width) if storage == HOST else None
        runner = TiledRunner(
            self.model,
            self.device,
            self.dtype,
            tile,
            storage,
            stages=self.stages,
            spill=spill,
            pin=self.pinned_maps_fit(height, width),
        )
        try:
            output, mask = runner.run(with_border(rgb, HOST), progress)
        except OSError as error:
            if spill is None:
                raise
            raise PhotoOutOfMemoryError(
                f"not enough memory for this {height * width / 1e6:.1f} MP photo, and its feature maps could "
                f"not go to {spill.folder} instead: {describe_os_error(error)}"
            ) from None
        return output, mask, spill

    @property
    def strength_setting(self) -> StrengthSetting:
        """The share every photo gets, or "auto" where the calibration predicts each one's (without a
        calibration, auto is the full correction)."""
        return 1.0 if self.strength == "auto" and self.calibration is None else self.strength

    def strength_for(self, rgb: np.ndarray, full: np.ndarray) -> float:
        """The share of the model's output ``full`` that the photo ``rgb`` gets."""
        setting = self.strength_setting
        return self.calibration.predict(rgb, full) if setting == "auto" else setting


def correctors_for(
    model: RECNet, devices: Sequence[torch.device], dtypes: Sequence[torch.dtype], **settings: Any
) -> list[Corrector]:
    """One Corrector per device, each with its own copy of the model (a device listed twice gets two), and
    each with ``Corrector``'s other ``settings`` (tile, strength, ...)."""
    return [
        Corrector(copy.deepcopy(model) if index else model, device, dtype, **settings)
        for index, (device, dtype) in enumerate(zip(devices, dtypes, strict=True))
    ]


def colours_on_device(device: torch.device) -> bool:
    """Whether a whole image gets the photo's colours (--keep-colour) on ``device``, before the copy back:
    on a GPU, where the photo is; not on a CPU, where OpenCV does it 6 to 10 times as fast as PyTorch
    (``benchmarks/bench_colours.py``: 12 and 1 MP, 2 cores)."""
    return device.type != "cpu"


def to_numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.to("cpu", torch.float32).numpy())


def with_border(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """The (H, W, 3) photo with its ``EDGE_PAD``-pixel mirrored border, as (1, 3, H, W) float32 on
    ``device``. Made on the device when that is a GPU: the host thread queues the upload and goes on."""
    pixels = np.asarray(rgb, dtype=np.float32)
    if device.type == "cpu":  # NumPy pads 6x faster than indexing does on a CPU
        border = ((EDGE_PAD, EDGE_PAD), (EDGE_PAD, EDGE_PAD), (0, 0))
        bordered = torch.from_numpy(np.pad(pixels, border, mode="symmetric"))
    else:
        # On a CUDA GPU from pinned memory: the upload is queued and this thread goes on. A blocking upload
        # would wait for all the work queued before it (the last photo's), and the GPU would then idle
        # while this thread copies the photo and queues its work. (A copy, too, since photos are read-only.)
        pinned = device.type == "cuda"
        host = torch.empty(pixels.shape, dtype=torch.float32, pin_memory=pinned)
        host.numpy()[...] = pixels
        bordered = device_pixels.mirror_border(host.to(device, non_blocking=pinned), EDGE_PAD)
    return bordered.permute(2, 0, 1)[None]


def on_way_to_host(
    image: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.cuda.Event | None]:
    """``image`` and ``mask`` as contiguous float32 in host memory (the model's full-size maps can go). From
    a GPU the copies are queued behind the work that makes them, into pinned memory, and the event
    returned marks their end (None: copied already). From Apple's MPS they are copied here, in the thread
    that runs the model: MPS takes work from one thread at a time, and the writer threads take the copies."""
    image, mask = (x.to(torch.float32).contiguous() for x in (image, mask))
    if image.device.type != "cuda":
        return image.cpu(), mask.cpu(), None
    image, mask = (x.to(HOST, non_blocking=True) for x in (image, mask))
    # A writer thread waits on it: blocking, it sleeps until then, where the default spins a core that the
    # other threads decode and encode photos on.
    copied = torch.cuda.Event(blocking=True)
    copied.record()
    return image, mask, copied


@dataclass
class PendingCorrection:
    """A photo the model has run on (or queued, on a GPU); ``result`` does the host's share of the work."""

    corrector: Corrector
    rgb: np.ndarray
    output: torch.Tensor  # (H, W, 3) float32, cropped to the photo: in host memory, or on its way
    mask: torch.Tensor  # (H, W)
    copied: torch.cuda.Event | None = None  # ends when ``output`` and ``mask`` are in host memory
    spilled: Spill | None = None  # the full-size maps that went to files, where memory could not hold them
    colour_kept_on_device: bool = False  # ``output`` is in the photo's colours already (``keep_colour``)

    def result(self) -> Correction:
        """The correction: the model's output (its lightness in the photo's colours, with ``keep_colour``),
        at the strength the photo gets. Out of host memory raises
        PhotoOutOfMemoryError (a smaller tile would not help: the model has run)."""
        self.wait_for_copy()
        try:
            full = self.checked(to_numpy(self.output), "output")
            mask = self.mask_only()  # after the output: a NaN in both is said of the output
            if self.corrector.keep_colour and not self.colour_kept_on_device:
                full = lightness_only(self.rgb, full)  # before the blend: strength 0 is the photo as it is
            # predicted from the correction in the colours it is written in, as ``recnet calibrate`` fits it
            strength = self.corrector.strength_for(self.rgb, full)
            return Correction(blend(self.rgb, full, strength), mask, strength)
        except MemoryError:
            pass  # raised outside the except block, so the arrays made so far can be freed first
        megapixels = self.rgb.shape[0] * self.rgb.shape[1] / 1e6
        raise PhotoOutOfMemoryError(
            f"not enough memory left to finish this {megapixels:.1f} MP photo: {FREE_MEMORY_ADVICE}"
        )

    def mask_only(self) -> np.ndarray:
        """The under-exposure mask alone, as ``recnet mask`` draws it: the correction is not finished."""
        self.wait_for_copy()
        return self.checked(to_numpy(self.mask), "mask")

    def wait_for_copy(self) -> None:
        """Waits until ``output`` and ``mask`` are in host memory."""
        if self.copied is not None:
            self.copied.synchronize()

    def checked(self, values: np.ndarray, part: str) -> np.ndarray:
        """``values``, the model's ``part`` ("output", "mask"), unless the model gave NaN among them."""
        if np.isnan(values.min()):  # min() passes NaN on, in one pass, no copy
            raise self.corrector.not_a_number(part)
        return values


def time_correction(corrector: Corrector, megapixels: float, repeats: int = 3) -> dict[str, object]:
    """Times ``corrector.correct`` on a random 4:3 image of ``megapixels``: one warm-up, then ``repeats``;
    with how it ran (``console.timing_line`` says it in words). A stop (Ctrl-C, SIGTERM) once a run is timed
    ends the timing there, with the runs timed (``runs``, ``interrupted``); before, it goes on up."""
    height = max(1, round(math.sqrt(megapixels * 1e6 * 3 / 4)))
    width = max(1, round(megapixels * 1e6 / height))
    image = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
    corrector.correct(image)  # warm-up: kernel choice, allocator growth
    reset_peak_memory(corrector.device)
    timed: list[float] = []
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            corrector.correct(image)
            timed.append(time.perf_counter() - started)
    except KeyboardInterrupt:
        if not timed:
            raise
    tile = corrector.tile_for(height, width)
    compiled = isinstance(corrector.whole_image, CompiledForward) and not corrector.compile_failure
    return {
        "device": str(corrector.device),
        "precision": precision_name(corrector.dtype),
        "compiled": compiled and not tile,  # the compiled path is the whole image's
        "fused": corrector.stages is not EAGER,
        "keep_colour": corrector.keep_colour,
        "width": width,
        "height": height,
        "tile": tile,
        "best_seconds": min(timed),
        "median_seconds": statistics.median(timed),
        "megapixels_per_second": height * width / 1e6 / min(timed),
        "peak_memory_bytes": peak_memory_bytes(corrector.device),
        "runs": len(timed),
        "interrupted": len(timed) < repeats,
    }
