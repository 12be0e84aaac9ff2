"""Fitting a model's automatic strength (``recnet calibrate``).

Synthetic pairs from the training photos of a folder, one per photo and regime (each kind of exposure
error alone, and the training mix), are corrected at full strength and reduced to calibration samples;
the fit is then scored on pairs from the folder's held-out photos, which it never saw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recnet_cli.autostrength import CalibrationSample, StrengthCalibration, fit_calibration
from recnet_cli.engine import Corrector
from recnet_cli.train.data import photo_validation, split_photos
from recnet_cli.train.synthesis import MODES, DegradationConfig

CALIBRATION_SEED = 70411  # not the validation seed: the held-out photos are scored on other pairs
REGIMES = {  # each kind of exposure error alone (mild: photos that were nearly right), then the mix
    ("nearly right" if mode == "mild" else mode): DegradationConfig(
        mode_probabilities=tuple(float(m == mode) for m in MODES)
    )
    for mode in MODES
} | {"training mix": DegradationConfig()}
MAX_PSNR = 100.0  # an exact match (infinite PSNR) counts as this in means


@dataclass(frozen=True)
class RegimeScore:
    """Mean PSNR (dB) of a regime's pairs: uncorrected, fully corrected and at the calibrated strength."""

    pairs: int
    input_psnr: float
    full_psnr: float
    auto_psnr: float
    mean_strength: float

    def rounded(self) -> dict[str, float]:
        """The fields for a model card or JSON: PSNR to 0.01 dB, the strength to 0.01."""
        return {name: round(value, 2) for name, value in vars(self).items()}


def regime_samples(
    corrector: Corrector,
    photos: Sequence[Path],
    size: int,
    count: int,
    seed: int,
    advance: Callable[[], None],
) -> dict[str, list[CalibrationSample]]:
    """Calibration samples of up to ``count`` photos per regime, long side ``size``; calls ``advance``
    after each photo."""
    samples: dict[str, list[CalibrationSample]] = {}
    for regime, degradation in REGIMES.items():
        samples[regime] = []
        for pair in photo_validation(photos, degradation, size, count, seed):
            photo, truth = (image.permute(1, 2, 0).numpy() for image in (pair.input, pair.target))
            samples[regime].append(CalibrationSample.of(photo, corrector.correct(photo).image, truth))
            advance()
    return samples


def psnr_at(sample: CalibrationSample, strength: float) -> float:
    error = sample.gain * strength**2 - 2 * sample.agreement * strength + sample.distance
    return MAX_PSNR if error <= 0 else min(MAX_PSNR, -10 * math.log10(error))


def score(calibration: StrengthCalibration, samples: Sequence[CalibrationSample]) -> RegimeScore:
    strengths = [calibration.strength_of(sample.features) for sample in samples]
    return RegimeScore(
        len(samples),
        float(np.mean([psnr_at(sample, 0.0) for sample in samples])),
        float(np.mean([psnr_at(sample, 1.0) for sample in samples])),
        float(np.mean([psnr_at(sample, s) for sample, s in zip(samples, strengths, strict=True)])),
        float(np.mean(strengths)),
    )


def calibrate(
    corrector: Corrector,
    folder: Path,
    size: int,
    count: int,
    advance: Callable[[], None] = lambda: None,
) -> tuple[StrengthCalibration, dict[str, RegimeScore]]:
    """Fits the calibration on the folder's training photos; its scores on the held-out photos."""
    if corrector.strength != 1:
        raise ValueError("calibration needs the model's full correction (strength 1)")
    train, held_out = split_photos(folder)
    if not train or not held_out:
        raise ValueError(f"{folder}: needs at least two photos (one is held out to score the fit)")
    fitting = regime_samples(corrector, train, size, count, CALIBRATION_SEED, advance)
    about = (
        f"{min(count, len(train))} training photos in {folder} x {len(REGIMES)} regimes at {size} px, "
        f"seed {CALIBRATION_SEED}"
    )
    calibration = fit_calibration([s for regime in fitting.values() for s in regime], about)
    checking = regime_samples(corrector, held_out, size, count, CALIBRATION_SEED, advance)
    return calibration, {regime: score(calibration, samples) for regime, samples in checking.items()}


def calibration_work(folder: Path, count: int) -> int:
    """How many photos ``calibrate`` corrects: for a progress bar."""
    train, held_out = split_photos(folder)
    return len(REGIMES) * (min(count, len(train)) + min(count, len(held_out)))
