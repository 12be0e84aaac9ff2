"""Scoring a model on image pairs: PSNR/SSIM of its output and of the untouched input (identity)."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recnet_cli.batch import stops_writing
from recnet_cli.devices import is_out_of_memory
from recnet_cli.engine import Corrector, PhotoOutOfMemoryError, PhotoRunError
from recnet_cli.files import describe_os_error, file_kind
from recnet_cli.imaging import (
    FREE_MEMORY_ADVICE,
    ImageWriteError,
    PhotoFileError,
    kept_from_overwrite,
    write_rgb8,
)
from recnet_cli.imaging.pixels import as_written, quantise
from recnet_cli.inputs import file_identity
from recnet_cli.metrics import mean_psnr, psnr, ssim
from recnet_cli.outputs import claim_key, existing_output_problem, folder_problem, names_image_file
from recnet_cli.train.data import ImageFileError, read_checked, read_rgb, require_same_size
from recnet_cli.train.pairs import ImagePair


@dataclass(frozen=True)
class ImageScore:
    """Scores of one pair: the correction (as ``recnet correct`` gives it) and the input itself, both against
    the ground truth."""

    input: Path
    target: Path
    psnr: float
    ssim: float
    identity_psnr: float
    identity_ssim: float
    strength: float  # the share of the model's correction the input got


SCORES = ("psnr", "ssim", "identity_psnr", "identity_ssim")


@dataclass(frozen=True)
class PairFailure:
    """A pair that could not be scored; ``reason`` is one line naming the file."""

    input: Path
    target: Path
    reason: str


@dataclass
class EvalReport:
    scores: list[ImageScore]
    failures: list[PairFailure] = field(default_factory=list)
    unsaved: list[PairFailure] = field(default_factory=list)  # scored, but --save could not write the image
    interrupted: bool = False  # stopped (Ctrl-C, SIGTERM) before the last pair: the scores are the first ones

    def mean(self, score: str) -> float:
        """The mean of one of ``SCORES`` over the scored pairs (an infinite PSNR counted as ``MAX_PSNR``)."""
        values = [getattr(image, score) for image in self.scores]
        return mean_psnr(values) if score.endswith("psnr") else statistics.fmean(values)

    def shortfall(self, total: int) -> str | None:
        """What of the ``total`` pairs was not done, after the scores are shown (``recnet eval`` then exits
        1): none scored, some not, or corrected images not saved; None when all were."""
        if not self.scores:
            return (
                "the pair could not be scored" if total == 1 else f"none of the {total} pairs could be scored"
            )
        if failed := len(self.failures):
            return (
                f"scored {len(self.scores)} of {total} pairs: {failed} could not be scored (above) and "
                f"{'is' if failed == 1 else 'are'} left out of the means"
            )
        if unsaved := len(self.unsaved):
            were = "was" if unsaved == 1 else "were"
            return f"the scores are complete, but {unsaved} of {total} corrected images {were} not saved"
        return None

    def to_dict(self) -> dict[str, object]:
        """The report as JSON values; an infinite PSNR (identical images), and a mean of no pairs, is null."""
        return {
            "images": len(self.scores),
            "interrupted": self.interrupted,
            "failed": failure_list(self.failures),
            "unsaved": failure_list(self.unsaved),
            **{score: json_number(self.mean(score)) if self.scores else None for score in SCORES},
            "per_image": [
                {
                    "input": str(image.input),
                    "target": str(image.target),
                    **{score: json_number(getattr(image, score)) for score in SCORES},
                    "strength": image.strength,
                }
                for image in self.scores
            ],
        }


def failure_list(failures: list[PairFailure]) -> list[dict[str, str]]:
    """Failures as JSON values: input, target, error."""
    return [{"input": str(f.input), "target": str(f.target), "error": f.reason} for f in failures]


def json_number(value: float) -> float | None:
    """``value``, or None where JSON has no number for it (infinity, NaN)."""
    return value if math.isfinite(value) else None


def score_pair(
    pair: ImagePair, corrector: Corrector, on_notice: Callable[[str], None] | None = None
) -> tuple[ImageScore, np.ndarray]:
    """Scores one pair; returns the score and the corrected 8-bit image. Metrics use 8-bit RGB. Too little
    memory for the metrics raises PhotoOutOfMemoryError, as it does for the correction; ``on_notice`` is
    told of a file read with colours that may be off (``read_rgb``)."""
    try:
        return score_pair_in_memory(pair, corrector, on_notice)
    except (MemoryError, RuntimeError) as error:
        if not is_out_of_memory(error):
            raise
    # raised outside the except block, so the arrays made so far can be freed first
    raise PhotoOutOfMemoryError(f"not enough memory to score this pair: {FREE_MEMORY_ADVICE}")


def score_pair_in_memory(
    pair: ImagePair, corrector: Corrector, on_notice: Callable[[str], None] | None = None
) -> tuple[ImageScore, np.ndarray]:
    """``score_pair``, which turns running out of memory here into PhotoOutOfMemoryError. The input is
    corrected as ``recnet correct`` corrects it (at its full depth, the pixels its alpha hides filled in),
    and scored so as the baseline too, which --strength 0 then scores as; only what shows is scored
    (``visible_only``). A grey input's correction is scored (and saved) as ``recnet correct`` writes it: its
    luma. The scores use 8-bit RGB."""
    photo = read_checked(pair.input, on_notice)
    pixels = photo.pixels_to_correct
    target = read_rgb(pair.target, on_notice)
    require_same_size(pair, pixels.shape, target.shape)
    source = visible_only(quantise(pixels, 8), target, photo.alpha)
    try:
        identity_ssim = ssim(source, target)
    except ValueError as exc:
        raise ImageFileError(f"{pair.input}: {exc}") from None
    correction = corrector.correct(pixels)
    corrected = quantise(as_written(correction.image, photo.grayscale), 8)
    shown = visible_only(corrected, target, photo.alpha)
    score = ImageScore(
        pair.input,
        pair.target,
        psnr(shown, target),
        ssim(shown, target),
        psnr(source, target),
        identity_ssim,
        correction.strength,
    )
    return score, corrected


def visible_only(image: np.ndarray, target: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """``image`` as scored against ``target``: where the input's ``alpha`` hides it entirely, the target's
    own pixels, so that what does not show counts for nothing (the model corrects a fill there)."""
    if alpha is None or alpha.min() > 0:
        return image
    shown = image.copy()
    hidden = alpha == 0
    shown[hidden] = target[hidden]
    return shown


def saved_path(pair: ImagePair, save_dir: Path) -> Path:
    """Where ``--save`` keeps a pair's corrected input: ``<input stem>.png``."""
    return save_dir / f"{pair.input.stem}.png"


ANOTHER_FOLDER = "choose another folder"


def save_problem(
    pairs: Sequence[ImagePair], save: str | os.PathLike[str], overwrite: bool, data_set: Sequence[Path] = ()
) -> str | None:
    """Why ``--save`` (as typed) cannot write into its folder: it is a file, it holds the pairs' images (a
    saved ``a.png`` beside ``a.jpg`` would pair with nothing next time) or those of another split of their
    ``data_set`` (its folders), two inputs would be saved under one name, or it would replace a file that
    is there already (unless ``overwrite``, and never one of the user's), or it names an image file that is
    not there (``out.png``, not ``out.png/``: a folder of that name would be made)."""
    if os.path.exists(save) and not os.path.isdir(save):
        return f"--save {save}: {file_kind(save)}, not a folder"
    if not os.path.exists(save) and names_image_file(save):  # a folder would be made of that name
        return (
            f"--save {save}: names an image file; --save takes a folder, which gets <input stem>.png "
            "(for a folder of that name, end it with /)"
        )
    save_dir = Path(save)
    if problem := folder_problem(save_dir, create=False):
        return f"--save {save_dir}: {problem}"
    folders = {file_identity(path.parent) for pair in pairs for path in (pair.input, pair.target)}
    if file_identity(save_dir) in folders:
        return f"--save {save_dir}: a folder of the images being evaluated; choose another folder"
    if file_identity(save_dir) in {file_identity(folder) for folder in data_set}:
        return f"--save {save_dir}: a folder of another split of the data set; choose another folder"
    saved_by: dict[Path, Path] = {}
    for pair in pairs:
        path = saved_path(pair, save_dir)
        if (key := claim_key(path)) in saved_by:
            return f"--save {save_dir}: {saved_by[key]} and {pair.input} would both be saved as {path.name}"
        saved_by[key] = pair.input
        # A folder there costs that image alone, as it is saved: --overwrite could not help. (A link, to a
        # folder too, is one recnet never writes: refused below.)
        if os.path.isdir(path) and not os.path.islink(path):
            continue
        problem = existing_output_problem(path, named=False, overwrite=overwrite, elsewhere=ANOTHER_FOLDER)
        if problem:
            return f"--save {save_dir}: {problem}"
    return None


def save_corrected(pair: ImagePair, save_dir: Path, corrected: np.ndarray, overwrite: bool) -> None:
    """Writes a pair's corrected input into ``save_dir`` (made on the first save) as ``<input stem>.png``."""
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ImageWriteError(save_dir, f"cannot create folder: {describe_os_error(error)}") from None
    path = saved_path(pair, save_dir)
    if os.path.lexists(path) and (why := kept_from_overwrite(path)):  # saved there since save_problem looked
        raise ImageWriteError(path, f"exists, and {why}: move it away, or {ANOTHER_FOLDER}")
    write_rgb8(path, corrected, overwrite=overwrite)


def evaluate_pairs(
    pairs: Sequence[ImagePair],
    corrector: Corrector,
    save_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_failure: Callable[[PairFailure], None] | None = None,
    overwrite: bool = False,
    on_notice: Callable[[str], None] | None = None,
) -> EvalReport:
    """Corrects every pair's input and scores it; ``save_dir`` keeps the outputs as ``<input stem>.png``
    (replacing files there only with ``overwrite``).

    A pair that cannot be read or scored (a damaged file, sizes that differ, too little memory) is passed
    to ``on_failure`` and left out of the means: one bad file does not lose a long run. An image that
    cannot be saved is passed to ``on_failure`` too and kept in ``unsaved``, its score counts: a file in
    the way costs that image, any other failure (a full disk) ends the saving, not the scoring.
    ``progress(done, total)`` is called after each pair, and ``on_notice`` with a line naming a file read
    with colours that may be off (a CMYK photo without its profile). A stop (Ctrl-C, SIGTERM) returns the
    scores so far, ``interrupted``.
    """
    report = EvalReport([])
    try:
        failed = on_failure or (lambda _: None)
        score_each(pairs, corrector, report, save_dir, progress, failed, overwrite, on_notice)
    except KeyboardInterrupt:
        report.interrupted = True
    return report


def score_each(
    pairs: Sequence[ImagePair],
    corrector: Corrector,
    report: EvalReport,
    save_dir: Path | None,
    progress: Callable[[int, int], None] | None,
    on_failure: Callable[[PairFailure], None],
    overwrite: bool,
    on_notice: Callable[[str], None] | None,
) -> None:
    """``evaluate_pairs``'s loop: scores (or failures) go into ``report`` as each pair is done."""
    saving_ended: str | None = None  # why (a full disk): the images scored after it are unsaved too
    for index, pair in enumerate(pairs, start=1):
        try:
            score, corrected = score_pair(pair, corrector, on_notice)
        except (ImageFileError, PhotoRunError) as exc:
            reason = str(exc) if isinstance(exc, ImageFileError) else f"{pair.input}: {exc}"
            report.failures.append(PairFailure(pair.input, pair.target, reason))
            on_failure(report.failures[-1])
        else:
            report.scores.append(score)
            if saving_ended is not None:  # said once, when it ended
                report.unsaved.append(PairFailure(pair.input, pair.target, saving_ended))
            elif save_dir is not None:
                try:
                    save_corrected(pair, save_dir, corrected, overwrite)
                except PhotoFileError as exc:
                    # As a batch decides: a full disk or a read-only one ends the saving, a file or folder
                    # in the way of one image (saved there during the run) costs only that image.
                    ends_saving = stops_writing(exc)
                    reason = f"{exc}{'; not saving the rest (the scoring goes on)' if ends_saving else ''}"
                    report.unsaved.append(PairFailure(pair.input, pair.target, reason))
                    on_failure(report.unsaved[-1])
                    if ends_saving:
                        saving_ended = f"not saved: the saving ended at {pair.input} ({exc})"
        if progress is not None:
            progress(index, len(pairs))
