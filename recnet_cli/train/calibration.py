"""Fitting a model's automatic strength (``recnet calibrate``).

The data are groups of (photo, ground truth) pairs: from a folder of well-exposed photos, synthetic pairs
per regime (each kind of exposure error alone, nearly right photos, the training mix), one per photo;
or real image pairs. Each group's training part is corrected at full strength and reduced to calibration
samples for the fit; its held-out part (the split ``recnet train`` validates on) then scores the fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from recnet_cli.autostrength import FEATURE_COUNT, CalibrationSample, StrengthCalibration, fit_calibration
from recnet_cli.engine import Corrector, NotANumberError
from recnet_cli.metrics import MAX_PSNR
from recnet_cli.train.data import (
    ValidationPair,
    loaded_together,
    pair_validation,
    photo_validation,
    split_pairs,
    split_photos,
    too_few_ground_truths,
    too_few_photos,
)
from recnet_cli.train.pairs import ImagePair, not_a_folder, pairs_to_learn_from
from recnet_cli.train.synthesis import MODES, DegradationConfig
from recnet_cli.weights.card import CALIBRATION_FIELD
from recnet_cli.wording import counted

CALIBRATION_SEED = 70411  # not the validation seed: the held-out photos are scored on other pairs
REGIMES = {  # each kind of exposure error alone (mild: photos that were nearly right), then the mix
    ("nearly right" if mode == "mild" else mode): DegradationConfig.only(mode) for mode in MODES
} | {"training mix": DegradationConfig()}
# A fit on fewer pairs than twice the statistics it weighs follows those photos more than photos in general.
FEW_PAIRS = 2 * FEATURE_COUNT
HELD_OUT_FOR = "one is held out to score the fit"


@dataclass(frozen=True)
class GroupScore:
    """Mean PSNR (dB) of a group's pairs: uncorrected, fully corrected and at the calibrated strength."""

    pairs: int
    input_psnr: float
    full_psnr: float
    auto_psnr: float
    mean_strength: float

    def rounded(self) -> dict[str, float]:
        """The fields for a model card or JSON: PSNR to 0.01 dB, the strength to 0.01."""
        return {name: round(value, 2) for name, value in vars(self).items()}


def rounded_scores(scores: dict[str, GroupScore]) -> dict[str, dict[str, float]]:
    """Each group's scores as a model card and ``--json`` give them (``GroupScore.rounded``)."""
    return {group: score.rounded() for group, score in scores.items()}


Groups = dict[str, Callable[[], list[ValidationPair]]]  # group name -> loads the group's pairs


@dataclass(frozen=True)
class CalibrationData:
    """Pairs to fit on and pairs to score the fit on, in the same groups; ``about`` says what they are."""

    fitting: Groups
    checking: Groups
    about: str
    pairs: int  # how many pairs calibrating corrects (fitting and held out), for a progress bar
    fitting_pairs: int

    def few_pairs_note(self) -> str | None:
        """What to know of a fit on too few pairs to be trusted beyond them; None for enough."""
        if self.fitting_pairs >= FEW_PAIRS:
            return None
        return (
            f"fitted on only {counted(self.fitting_pairs, 'pair')}; a fit on fewer than {FEW_PAIRS} follows "
            "them more than photos in general: give more (a larger folder, or a higher --count), and judge "
            "it by the held-out scores"
        )


def calibration_data(
    photos: Path | None,
    pairs: Path | None,
    split: str,
    inputs: Path | None,
    targets: Path | None,
    size: int,
    count: int,
) -> CalibrationData:
    """What ``recnet calibrate`` fits on: synthetic pairs of a folder of photos, else the pairs of a paired
    dataset's split, else those of two folders."""
    if photos is not None:
        if not photos.is_dir():
            raise ValueError(not_a_folder(photos))
        return photo_data(photos, size, count)
    name = f"{pairs} ({split})" if pairs is not None else f"{inputs} and {targets}"
    return pair_data(pairs_to_learn_from(pairs, split, inputs, targets), name, size, count)


def photo_data(folder: Path, size: int, count: int) -> CalibrationData:
    """Synthetic pairs of up to ``count`` photos per regime from a folder of well-exposed photos."""
    train, held_out = split_photos(folder)
    if not train or not held_out:
        raise too_few_photos(folder, len(train) + len(held_out), HELD_OUT_FOR)

    def groups(paths: list[Path]) -> Groups:
        # A seed for each regime: with one seed, each pair of the training mix drew its regime and then
        # the very exposure that regime's own group drew, so the mix only repeated the other groups.
        return {
            regime: partial(photo_validation, paths, degradation, size, count, CALIBRATION_SEED + number)
            for number, (regime, degradation) in enumerate(REGIMES.items())
        }

    fitted_on = counted(min(count, len(train)), "training photo")
    about = (
        f"{fitted_on} in {folder} x {len(REGIMES)} regimes at up to {size} px, "
        f"seeds {CALIBRATION_SEED} to {CALIBRATION_SEED + len(REGIMES) - 1}"
    )
    pairs = len(REGIMES) * (min(count, len(train)) + min(count, len(held_out)))
    fitting_pairs = len(REGIMES) * min(count, len(train))
    return CalibrationData(groups(train), groups(held_out), about, pairs, fitting_pairs)


def pair_data(pairs: Sequence[ImagePair], name: str, size: int, count: int) -> CalibrationData:
    """Up to ``count`` real image pairs to fit on and as many held-out ones; pairs sharing a ground truth
    stay together."""
    train, held_out = split_pairs(pairs)
    if not train or not held_out:
        raise too_few_ground_truths(name, pairs, HELD_OUT_FOR)
    about = f"{counted(min(count, len(train)), 'image pair')} of {name} at up to {size} px"
    corrected = min(count, len(train)) + min(count, len(held_out))
    fitting = {"pairs": partial(pair_validation, train, size, count)}
    checking = {"pairs": partial(pair_validation, held_out, size, count)}
    return CalibrationData(fitting, checking, about, corrected, min(count, len(train)))


def calibrated_card(
    card: dict[str, Any],
    source: str,
    name: str,
    calibration: StrengthCalibration,
    held_out: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """The card of the model ``source`` calibrated and saved as ``name``: its own ``card``, less what
    described an earlier calibration (its command, its scores) and the model's place in this project (the
    bundled model's status), with this calibration and its ``held_out`` scores."""
    kept = {
        key: value for key, value in card.items() if key != "status" and not key.startswith(CALIBRATION_FIELD)
    }
    return kept | {
        "name": name,
        "calibrated_from": source,
        "calibrated_note": f"the weights of {source}, unchanged, which the fields above describe; figures "
        f"they give for --strength auto are of its calibration, not of this one ({CALIBRATION_FIELD})",
        CALIBRATION_FIELD: calibration.as_card(),
        f"{CALIBRATION_FIELD}_held_out": held_out,
    }


def samples_of(
    corrector: Corrector, pairs: list[ValidationPair], advance: Callable[[], None]
) -> list[CalibrationSample]:
    """A group's pairs corrected in full and reduced to calibration samples; ``advance`` after each. An
    output that is NaN is named by its pair's name."""
    samples = []
    for pair in pairs:
        photo, truth = (image.permute(1, 2, 0).numpy() for image in (pair.input, pair.target))
        try:
            corrected = corrector.correct(photo).image
        except NotANumberError as error:
            raise NotANumberError(f"{pair.name}: {error}") from None
        samples.append(CalibrationSample.of(photo, corrected, truth))
        advance()
    return samples


def psnr_at(sample: CalibrationSample, strength: float) -> float:
    error = sample.squared_error(strength)
    return MAX_PSNR if error <= 0 else min(MAX_PSNR, -10 * math.log10(error))


def score(calibration: StrengthCalibration, samples: Sequence[CalibrationSample]) -> GroupScore:
    strengths = [calibration.strength_of(sample.features) for sample in samples]
    return GroupScore(
        len(samples),
        float(np.mean([psnr_at(sample, 0.0) for sample in samples])),
        float(np.mean([psnr_at(sample, 1.0) for sample in samples])),
        float(np.mean([psnr_at(sample, s) for sample, s in zip(samples, strengths, strict=True)])),
        float(np.mean(strengths)),
    )


def calibrate(
    corrector: Corrector, data: CalibrationData, advance: Callable[[], None] = lambda: None
) -> tuple[StrengthCalibration, dict[str, GroupScore]]:
    """Fits the calibration on ``data.fitting``; its scores on ``data.checking``, group by group: the
    full correction as ``corrector`` gives it (in the photos' colours, or the model's)."""
    if corrector.strength != 1:
        raise ValueError("calibration needs the model's full correction (strength 1)")
    fitting, checking = [], {}
    # Each group's fitting and held-out pairs loaded together, before the model runs on them: from photos,
    # every group holds every photo, so the first group names every damaged one, in one error, at once.
    for name, load in data.fitting.items():
        fitting_pairs, checking_pairs = loaded_together(load, data.checking[name])
        fitting += samples_of(corrector, fitting_pairs, advance)
        checking[name] = samples_of(corrector, checking_pairs, advance)
    colours = "in the photos' colours" if corrector.keep_colour else "in the model's colours (--model-colour)"
    calibration = fit_calibration(fitting, f"{data.about}, corrected {colours}")
    return calibration, {name: score(calibration, samples) for name, samples in checking.items()}
