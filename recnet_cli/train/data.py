"""Training samples: photos or pairs decoded once into memory, random crops and flips, a fixed
validation set.

Every random choice for sample ``i`` of step ``s`` comes from a generator seeded with (seed, s, i), so
a batch does not depend on what ran before it: resuming at step ``s`` and splitting a batch across
processes give the same samples as one uninterrupted run.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import torch
from torch import Tensor

from recnet_cli.files import folder_name
from recnet_cli.imaging import Photo, PhotoFileError, faults_fail_alone, fit_size, read_photo, write_rgb8
from recnet_cli.imaging.pixels import quantise
from recnet_cli.inputs import is_image, other_files, unique_sources, visible_files
from recnet_cli.metrics import SSIM_WINDOW
from recnet_cli.train.pairs import ImagePair, list_images, photo_sources
from recnet_cli.train.synthesis import DegradationConfig, degrade, sample_exposure
from recnet_cli.wording import counted, listed

VALIDATION_SEED = 20240
HOLDOUT_FRACTION = 0.1
# The most an image's long side may exceed its short side: a thinner one (a scan line) would be enormous
# once its short side is scaled up to the crop.
MAX_ASPECT = 100
T = TypeVar("T")
U = TypeVar("U")
SHOWN_FAILURES = 3


class ImageFileError(ValueError):
    """An image file that cannot be read or written, or a pair whose images differ in size."""


class UnusableImages(ImageFileError):
    """Images that cannot be used, each said as its ImageFileError: one error for them all."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        shown = listed(failures, SHOWN_FAILURES, "; ")
        super().__init__(
            failures[0] if len(failures) == 1 else f"{len(failures)} images cannot be used: {shown}"
        )


def read_rgb(path: Path, on_notice: Callable[[str], None] | None = None) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB (``read_checked``)."""
    return quantise(read_checked(path, on_notice).pixels, 8)


def read_checked(path: Path, on_notice: Callable[[str], None] | None = None) -> Photo:
    """An image file read as ``recnet correct`` reads it: a damaged or unreadable file raises ImageFileError
    naming it and what is wrong (OpenCV would decode half a truncated JPEG), and ``on_notice`` is told,
    naming it, of a file of several pages or frames (only the first is read) and of a CMYK photo's colours
    converted without their profile. A fault of recnet's in reading it is such an error too, in one line
    (``faults_fail_alone``)."""
    try:
        with faults_fail_alone(path):
            photo = read_photo(path)
    except PhotoFileError as exc:
        raise ImageFileError(str(exc)) from None
    if on_notice is not None:
        for notice in photo.reading_notices(metadata=False):
            on_notice(f"{path}: {notice}")
    return photo


def fitted(path: Path, image: np.ndarray, min_side: int, max_side: int) -> np.ndarray:
    """``image``, read from ``path``, scaled by ``fit_size``; one more than ``MAX_ASPECT`` times as long as
    it is wide is an ImageFileError naming it."""
    height, width = image.shape[:2]
    if max(height, width) > MAX_ASPECT * min(height, width):
        raise ImageFileError(
            f"{path}: {width}x{height} pixels is too thin to train or calibrate on (its long side may be at "
            f"most {MAX_ASPECT} times its short side, which training scales up to its --crop)"
        )
    return fit_size(image, min_side, max_side)


def require_same_size(pair: ImagePair, source: tuple[int, ...], target: tuple[int, ...]) -> None:
    """Raises ImageFileError naming the input when a pair's images differ in size (their array shapes)."""
    if source != target:
        raise ImageFileError(
            f"{pair.input}: size {source[1]}x{source[0]} differs from its ground truth {pair.target} "
            f"({target[1]}x{target[0]})"
        )


def holdout_split(items: Sequence[T], key: Callable[[T], str]) -> tuple[list[T], list[T]]:
    """(train, validation): the ``HOLDOUT_FRACTION`` of distinct keys with the smallest hashes go to
    validation.

    Items sharing a key (the five MSEC renderings of one scene) stay together. The split depends only on
    the keys, never on the seed or the order of the items.
    """
    # Hashed as bytes, which a file name that is not valid UTF-8 has too.
    keys = sorted({key(item) for item in items}, key=lambda k: hashlib.sha1(os.fsencode(k)).hexdigest())
    held_out = set(keys[: max(1, round(len(keys) * HOLDOUT_FRACTION))]) if len(keys) > 1 else set()
    return [i for i in items if key(i) not in held_out], [i for i in items if key(i) in held_out]


def list_photos(folder: Path) -> list[Path]:
    """The photos of a folder, searched recursively, each file once under the first name found: a link
    (symbolic or hard) to a photo also there, or a second link to one file, is left out, as are recnet's
    own outputs (``photo_sources``)."""
    photos = photo_sources(folder, list_images(folder, recursive=True))[0]
    return [source.path for source in unique_sources(photos)]


def split_photos(folder: Path) -> tuple[list[Path], list[Path]]:
    """(train, validation) photos of a folder (``list_photos``); split by path inside the folder, written
    with / on every system (a run moved between Windows and Linux holds out the same photos)."""
    return holdout_split(list_photos(folder), key=lambda p: p.relative_to(folder).as_posix())


def too_few_photos(folder: Path, found: int, held_out_for: str) -> ImageFileError:
    """The error for a folder of ``found`` photos, too few to hold one out (``held_out_for`` says why), with
    the other files it holds (camera RAW files, say), which recnet does not read."""
    others = other_files([path for path in visible_files(folder, recursive=True) if not is_image(path)])
    return ImageFileError(f"{folder}: need at least 2 photos ({held_out_for}), found {found}{others}")


def too_few_ground_truths(name: str, pairs: Sequence[ImagePair], held_out_for: str) -> ImageFileError:
    """The error for ``pairs`` that cannot hold one out: pairs that share a ground truth stay on one side."""
    targets = len({pair.target.name for pair in pairs})
    return ImageFileError(
        f"{name}: need pairs with at least 2 different ground truths ({held_out_for}), found "
        f"{counted(len(pairs), 'pair')}, with {counted(targets, 'ground truth')}"
    )


def split_pairs(pairs: Sequence[ImagePair]) -> tuple[list[ImagePair], list[ImagePair]]:
    """(train, validation) image pairs, split by the ground truth's file name: the same wherever the data
    lies and however its folder was typed (train and calibrate agree); pairs sharing one stay together."""
    return holdout_split(pairs, key=lambda pair: pair.target.name)


def downscale_photos(source: Path, destination: Path, max_side: int = 1024, quality: int = 95) -> int:
    """Writes every photo under ``source`` (recursively) to ``destination`` as a JPEG no longer than
    ``max_side``, keeping subfolder names; returns the count. For shipping a photo set to a GPU machine: the
    copies bear no mark of recnet's, which would make ``train --photos`` pass them over as its outputs. Two
    photos that would be one JPEG (``a.png`` and ``a.jpg``) raise ValueError before anything is written."""
    photos = list_photos(source)
    outputs: dict[Path, Path] = {}
    for path in photos:
        out = destination / path.relative_to(source).with_suffix(".jpg")
        if out in outputs:
            raise ValueError(f"{outputs[out]} and {path} would both be written as {out}")
        outputs[out] = path
    for out, path in outputs.items():
        out.parent.mkdir(parents=True, exist_ok=True)
        write_rgb8(out, fit_size(read_rgb(path), max_side=max_side), quality=quality, marked=False)
    return len(outputs)


def sample_rng(seed: int, step: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, step, index])


def crop_box(rng: np.random.Generator, shape: tuple[int, ...], crop: int) -> tuple[slice, slice]:
    """A random crop x crop window inside an image of ``shape`` (at least crop on each side)."""
    top = int(rng.integers(0, shape[0] - crop + 1))
    left = int(rng.integers(0, shape[1] - crop + 1))
    return slice(top, top + crop), slice(left, left + crop)


def random_flips(rng: np.random.Generator, *images: np.ndarray) -> list[np.ndarray]:
    """The same random horizontal and vertical flips applied to each image."""
    flip_h, flip_v = rng.uniform(size=2) < 0.5
    return [image[:: -1 if flip_v else 1, :: -1 if flip_h else 1] for image in images]


def to_tensor(images: Sequence[np.ndarray], device: torch.device) -> Tensor:
    """uint8 (H, W, 3) arrays as one float (B, 3, H, W) batch in [0, 1] on ``device``."""
    batch = torch.from_numpy(np.stack([np.ascontiguousarray(i) for i in images]))
    # Not blocking only to a GPU: a copy to Apple's MPS may still read the array after it is freed
    return batch.to(device, non_blocking=device.type == "cuda").permute(0, 3, 1, 2).float() / 255


class SampleSource(Protocol):
    """Where training batches come from."""

    description: str

    def batch(self, step: int, indices: Sequence[int], device: torch.device) -> tuple[Tensor, Tensor]:
        """(inputs, targets) for the samples ``indices`` of training step ``step``."""
        ...


class Prefetcher:
    """Builds the next step's batch in a background thread while the current step trains.

    Batches depend only on the step, so this changes when they are made, never what they are. On a GPU
    it keeps the cropping, the exposure synthesis's many small launches and the JPEG step (on the CPU)
    off the training step's critical path. On Apple's MPS each batch is made when it is asked for, in
    the training thread: MPS takes work from one thread at a time.
    """

    def __init__(
        self, source: SampleSource, indices: Sequence[int], device: torch.device, end_step: int
    ) -> None:
        self.source = source
        self.indices = indices
        self.device = device
        self.end_step = end_step
        self.pool = ThreadPoolExecutor(1, "recnet-batches")
        self.upcoming: tuple[int, Future] | None = None

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        """(inputs, targets) of ``step``, and starts making the next step's."""
        if self.device.type == "mps":
            return self.source.batch(step, self.indices, self.device)
        if self.upcoming is not None and self.upcoming[0] == step:
            future = self.upcoming[1]
        else:
            future = self.pool.submit(self.source.batch, step, self.indices, self.device)
        self.upcoming = None
        if step + 1 < self.end_step:
            self.upcoming = step + 1, self.pool.submit(self.source.batch, step + 1, self.indices, self.device)
        return future.result()


@dataclass
class PhotoSource:
    """Clean photos cropped, flipped and degraded on the fly; the clean crop is the target."""

    photos: list[np.ndarray]
    crop: int
    seed: int
    degradation: DegradationConfig
    description: str = ""

    def batch(self, step: int, indices: Sequence[int], device: torch.device) -> tuple[Tensor, Tensor]:
        rngs = [sample_rng(self.seed, step, i) for i in indices]
        crops = []
        for rng in rngs:
            photo = self.photos[int(rng.integers(len(self.photos)))]
            crops.append(random_flips(rng, photo[crop_box(rng, photo.shape, self.crop)])[0])
        clean = to_tensor(crops, device)
        return degrade(clean, [sample_exposure(rng, self.degradation) for rng in rngs]), clean


@dataclass
class PairSource:
    """(input, target) images with the same random crop and flips applied to both."""

    pairs: list[tuple[np.ndarray, np.ndarray]]
    crop: int
    seed: int
    description: str = ""

    def batch(self, step: int, indices: Sequence[int], device: torch.device) -> tuple[Tensor, Tensor]:
        inputs, targets = [], []
        for i in indices:
            rng = sample_rng(self.seed, step, i)
            source, target = self.pairs[int(rng.integers(len(self.pairs)))]
            box = crop_box(rng, source.shape, self.crop)
            source_crop, target_crop = random_flips(rng, source[box], target[box])
            inputs.append(source_crop)
            targets.append(target_crop)
        return to_tensor(inputs, device), to_tensor(targets, device)


@dataclass
class ValidationPair:
    name: str
    input: Tensor
    target: Tensor


def load_each(items: Sequence[T], load: Callable[[T], U]) -> list[U]:
    """``load`` of every item. Where some raise ImageFileError, one is raised once all were tried, naming the
    first few and counting the rest (a ground truth shared by several pairs once), so a folder with several
    damaged photos is mended in one go."""
    loaded, failed = [], {}
    for item in items:
        try:
            loaded.append(load(item))
        except ImageFileError as exc:
            failed[str(exc)] = None
    if failed:
        raise UnusableImages(list(failed))
    return loaded


def loaded_together(training: Callable[[], T], validation: Callable[[], U]) -> tuple[T, U]:
    """The training and the validation data, loaded (each by ``load_each``) with one error naming the
    images of both that cannot be used: a bad photo held out was said only once the others were mended."""
    failures: list[str] = []
    loaded = []
    for load in (training, validation):
        try:
            loaded.append(load())
        except UnusableImages as exc:
            failures += [failure for failure in exc.failures if failure not in failures]
    if failures:
        raise UnusableImages(failures)
    return loaded[0], loaded[1]


def load_photos(paths: Sequence[Path], min_side: int, max_side: int) -> list[np.ndarray]:
    return load_each(paths, lambda path: fitted(path, read_rgb(path), min_side, max_side))


def load_pairs(
    pairs: Sequence[ImagePair], min_side: int, max_side: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Decodes each pair once, and keeps a target shared by several inputs once, as scaled (its size as
    decoded beside it, which each input's must match)."""
    targets: dict[Path, tuple[tuple[int, ...], np.ndarray]] = {}

    def load(pair: ImagePair) -> tuple[np.ndarray, np.ndarray]:
        source = read_rgb(pair.input)
        if pair.target not in targets:
            decoded = read_rgb(pair.target)
            targets[pair.target] = decoded.shape, fit_size(decoded, min_side, max_side)
        decoded_shape, target = targets[pair.target]
        require_same_size(pair, source.shape, decoded_shape)
        return fitted(pair.input, source, min_side, max_side), target

    return load_each(pairs, load)


def photo_validation(
    paths: Sequence[Path],
    degradation: DegradationConfig,
    max_side: int,
    count: int,
    seed: int = VALIDATION_SEED,
) -> list[ValidationPair]:
    """Fixed synthetic validation pairs: whole photos (scaled to ``max_side``, and up to SSIM's window if
    thinner) degraded with a constant seed, on the CPU, so every run and every device sees the same pairs."""

    def load(numbered: tuple[int, Path]) -> ValidationPair:
        index, path = numbered
        clean = to_tensor([fitted(path, read_rgb(path), SSIM_WINDOW, max_side)], torch.device("cpu"))
        exposure = sample_exposure(sample_rng(seed, 0, index), degradation)
        return ValidationPair(path.stem, degrade(clean, [exposure])[0], clean[0])

    return load_each(list(enumerate(paths[:count])), load)


def pair_validation(pairs: Sequence[ImagePair], max_side: int, count: int) -> list[ValidationPair]:
    """Validation pairs from held-out image pairs, scaled to ``max_side`` (and up to SSIM's window)."""
    chosen = list(pairs[:count])
    cpu = torch.device("cpu")
    return [
        ValidationPair(pair.input.stem, to_tensor([source], cpu)[0], to_tensor([target], cpu)[0])
        for pair, (source, target) in zip(chosen, load_pairs(chosen, SSIM_WINDOW, max_side), strict=True)
    ]


def photo_data(
    folder: Path,
    crop: int,
    seed: int,
    degradation: DegradationConfig,
    max_side: int,
    val_count: int,
    val_size: int,
) -> tuple[PhotoSource, list[ValidationPair]]:
    """Training source and validation pairs from a folder (searched recursively) of well-exposed photos."""
    train_paths, val_paths = split_photos(folder)
    if not train_paths or not val_paths:
        raise too_few_photos(folder, len(train_paths) + len(val_paths), "training and validation")
    description = (
        f"{counted(len(train_paths), 'photo')} from {folder_name(folder)} with synthetic exposure errors "
        f"({held_out(len(val_paths), val_count)})"
    )
    photos, validation = loaded_together(
        lambda: load_photos(train_paths, crop, max_side),
        lambda: photo_validation(val_paths, degradation, val_size, val_count),
    )
    return PhotoSource(photos, crop, seed, degradation, description), validation


def held_out(count: int, validating: int) -> str:
    """How many images were held out of training, and how many of those validate the run (at most
    ``validating``: the rest stay out of training all the same, for ``recnet eval`` and the benchmarks)."""
    if count <= validating:
        return f"and {count} more held out for validation"
    return f"and {count} more held out, {validating} of them for validation"


def pair_data(
    pairs: Sequence[ImagePair], name: str, crop: int, seed: int, max_side: int, val_count: int, val_size: int
) -> tuple[PairSource, list[ValidationPair]]:
    """Training source and validation pairs from image pairs; pairs sharing a target stay together."""
    train_pairs, val_pairs = split_pairs(pairs)
    if not train_pairs or not val_pairs:  # pairs that share a ground truth stay on one side
        raise too_few_ground_truths(name, pairs, "training and validation")
    trained_on = counted(len(train_pairs), "image pair")
    description = f"{trained_on} from {name} ({held_out(len(val_pairs), val_count)})"
    loaded, validation = loaded_together(
        lambda: load_pairs(train_pairs, crop, max_side),
        lambda: pair_validation(val_pairs, val_size, val_count),
    )
    return PairSource(loaded, crop, seed, description), validation
