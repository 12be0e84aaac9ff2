"""Automatic correction strength: how much of the model's correction each photo gets.

The model corrects badly exposed photos well and changes photos that were nearly right for the worse. A
calibration, fitted on pairs (synthetic or real) for one model (``recnet calibrate``), predicts from a
photo and the model's correction of it the share of the correction that brings the photo closest to its
ground truth: a logistic function of exposure statistics of both (``exposure_features``), fitted to
maximise the mean PSNR of the blended photos.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import cv2
import numpy as np

from recnet_cli.imaging import fit_size

# PyTorch takes 1.5 s to import: reading a card's calibration (recnet models) does without it, and fitting
# one imports it
if TYPE_CHECKING:
    import torch

FEATURES = "exposure-v1"  # names the statistics below; a calibration of other statistics is refused
FEATURE_SIDE = 384  # statistics are taken on copies this long, so they cost the same at any size
GRID = 16  # block means on a GRID x GRID grid see regions: a dark corner, a blown sky
DARK, BRIGHT = 0.03, 0.97
BLOCK_LEVELS = (0.1, 0.2, 0.8, 0.9)
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
FEATURE_COUNT = 2 + len(QUANTILES) + 2 + len(BLOCK_LEVELS) + 1 + 4 + 3
MSE_FLOOR = (0.5 / 255) ** 2  # below half an 8-bit level, errors are rounding: PSNR stops counting them
L2_PENALTY = 1e-3
START_BIAS = 2.0  # the fit starts from about 0.9 of the correction for every photo
STRENGTH_STEP = 0.01  # predictions are rounded to this, so tiled and whole-image runs agree
# The statistics lie in [-1, 1]. A calibration's numbers of at most LARGEST_VALUE, with its standardised
# statistics clipped to that too, keep every prediction a number (a mean of 1e300 or a scale of 1e-320 made
# it NaN).
LARGEST_VALUE = 1e6


class CalibrationError(ValueError):
    """A model card's calibration that cannot be used."""


def feature_luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of a float RGB image, on a copy no longer than FEATURE_SIDE: what the features see."""
    small = fit_size(np.asarray(rgb, dtype=np.float32), max_side=FEATURE_SIDE)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)


def block_means(luma_image: np.ndarray) -> np.ndarray:
    return cv2.resize(luma_image, (GRID, GRID), interpolation=cv2.INTER_AREA)


def exposure_features(original: np.ndarray, corrected: np.ndarray) -> np.ndarray:
    """Statistics of a photo (float RGB in [0, 1]) and of the model's full correction of it: the photo's
    luminance spread, quantiles and clipped shares, its dark and bright regions, and how much the
    correction changes luminance, overall and region by region."""
    photo, fixed = feature_luma(original), feature_luma(corrected)
    blocks, fixed_blocks = block_means(photo), block_means(fixed)
    change, block_change = fixed - photo, fixed_blocks - blocks
    return np.array(
        [
            photo.mean(),
            photo.std(),
            *np.quantile(photo, QUANTILES),
            (photo < DARK).mean(),
            (photo > BRIGHT).mean(),
            (blocks < BLOCK_LEVELS[0]).mean(),
            (blocks < BLOCK_LEVELS[1]).mean(),
            (blocks > BLOCK_LEVELS[2]).mean(),
            (blocks > BLOCK_LEVELS[3]).mean(),
            blocks.std(),
            change.mean(),
            np.abs(change).mean(),
            change.std(),
            fixed.std() - photo.std(),
            np.abs(block_change).mean(),
            np.abs(block_change).max(),
            block_change.std(),
        ],
        dtype=np.float64,
    )


Number = TypeVar("Number", float, "torch.Tensor")


def blend_error(gain: Number, agreement: Number, distance: Number, strength: Number) -> Number:
    """The mean squared error of a photo blended with ``strength`` of its correction, from its sample's
    fields (numbers, or tensors of several samples')."""
    return gain * strength**2 - 2 * agreement * strength + distance


@dataclass(frozen=True)
class CalibrationSample:
    """One pair (synthetic or real), reduced to what the fit needs: the features, and the blend's mean
    squared error as a function of the strength (``squared_error``)."""

    features: np.ndarray
    gain: float  # mean squared change of the full correction
    agreement: float  # mean product of that change and the change the ground truth asks for
    distance: float  # mean squared error of the uncorrected photo

    def squared_error(self, strength: float) -> float:
        """The mean squared error of the photo given ``strength`` of the correction."""
        return blend_error(self.gain, self.agreement, self.distance, strength)

    @classmethod
    def of(cls, original: np.ndarray, corrected: np.ndarray, truth: np.ndarray) -> CalibrationSample:
        """From float RGB images in [0, 1]: the photo, the model's full correction and the ground truth."""
        photo, change = original.astype(np.float64), corrected.astype(np.float64) - original
        wanted = truth.astype(np.float64) - photo
        return cls(
            exposure_features(original, corrected),
            float(np.mean(change * change)),
            float(np.mean(change * wanted)),
            float(np.mean(wanted * wanted)),
        )


@dataclass(frozen=True)
class StrengthCalibration:
    """strength = sigmoid(weights . (features - mean) / scale + bias), rounded to STRENGTH_STEP."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    about: str = ""  # what it was fitted on

    def predict(self, original: np.ndarray, corrected: np.ndarray) -> float:
        """The share of the correction (0 to 1) to apply to ``original``, given its full correction."""
        return self.strength_of(exposure_features(original, corrected))

    def strength_of(self, features: np.ndarray) -> float:
        with np.errstate(over="ignore"):  # a tiny scale: infinite, then clipped
            standard = (features - np.array(self.mean)) / np.array(self.scale)
        standard = np.clip(standard, -LARGEST_VALUE, LARGEST_VALUE)
        logit = float(standard @ np.array(self.weights)) + self.bias
        strength = 1 / (1 + np.exp(-np.clip(logit, -50, 50)))
        return round(round(strength / STRENGTH_STEP) * STRENGTH_STEP, 2)

    def as_card(self) -> dict[str, object]:
        """The model card's ``auto_strength`` field."""
        return {
            "features": FEATURES,
            "about": self.about,
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "bias": self.bias,
        }

    @classmethod
    def from_card(cls, value: object) -> StrengthCalibration:
        """From a card's ``auto_strength`` field: a mapping, or its JSON text (safetensors metadata)."""
        try:
            fields = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            shown = f"{value[:40]!r}" + ("..." if len(value) > 40 else "")
            raise CalibrationError(
                f"unusable auto_strength calibration (text that is not JSON: {shown})"
            ) from None
        try:
            if not isinstance(fields, Mapping) or fields.get("features") != FEATURES:
                raise CalibrationError(f"not a calibration of the {FEATURES} statistics")
            vectors = [tuple(float(x) for x in fields[key]) for key in ("mean", "scale", "weights")]
            bias = float(fields["bias"])
            bounded = all(abs(x) <= LARGEST_VALUE for x in (*vectors[0], *vectors[1], *vectors[2], bias))
            if any(len(vector) != FEATURE_COUNT for vector in vectors) or 0 in vectors[1] or not bounded:
                raise CalibrationError(
                    f"needs {FEATURE_COUNT} means, non-zero scales and weights, and a bias, numbers of at "
                    f"most {LARGEST_VALUE:g} in size"
                )
            return cls(*vectors, bias, str(fields.get("about", "")))
        except (ValueError, TypeError, KeyError, OverflowError) as error:
            raise CalibrationError(f"unusable auto_strength calibration ({error})") from None


def fit_calibration(samples: Sequence[CalibrationSample], about: str = "") -> StrengthCalibration:
    """The logistic calibration that maximises the mean PSNR of the blended samples (L2-regularised)."""
    import torch

    features = np.stack([sample.features for sample in samples])
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    standard = torch.from_numpy((features - mean) / scale)
    gain, agreement, distance = (
        torch.tensor([getattr(sample, name) for sample in samples], dtype=torch.float64)
        for name in ("gain", "agreement", "distance")
    )
    weights = torch.zeros(FEATURE_COUNT, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(START_BIAS, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weights, bias], max_iter=500, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        strength = torch.sigmoid(standard @ weights + bias)
        error = blend_error(gain, agreement, distance, strength)
        value = torch.log(error.clamp_min(0) + MSE_FLOOR).mean() + L2_PENALTY * (weights**2).sum()
        value.backward()
        return value

    optimiser.step(loss)
    return StrengthCalibration(
        tuple(mean.tolist()),
        tuple(scale.tolist()),
        tuple(weights.detach().tolist()),
        float(bias.detach()),
        about,
    )
