"""Automatic strength: the exposure statistics, the fit, the calibration in a model card, and the Corrector
applying it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import typer
from PIL import Image
from random_models import random_model

from recnet_cli.autostrength import (
    FEATURE_COUNT,
    FEATURES,
    LARGEST_VALUE,
    CalibrationError,
    CalibrationSample,
    StrengthCalibration,
    exposure_features,
    fit_calibration,
)
from recnet_cli.calibrate_command import fitted_strength
from recnet_cli.engine import Corrector, NotANumberError, PhotoOutOfMemoryError, blend
from recnet_cli.imaging.pixels import quantise
from recnet_cli.metrics import MAX_PSNR
from recnet_cli.train import calibration
from recnet_cli.train.data import ImageFileError, UnusableImages, ValidationPair
from recnet_cli.train.pairs import ImagePair
from recnet_cli.weights import LoadedModel, WeightsError, load_model, save_model, strength_calibration

CPU = torch.device("cpu")


def scene(seed: int, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    """A smooth, well-exposed float RGB picture: blurred noise around mid-grey."""
    noise = np.random.default_rng(seed).random((*size, 3), dtype=np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 6)
    return np.clip(0.5 + 0.15 * (smooth - smooth.mean()) / smooth.std(), 0.05, 0.95)


def test_features_are_finite_and_nearly_independent_of_the_photo_size() -> None:
    photo = scene(1, (600, 800))
    corrected = np.clip(photo * 1.3, 0, 1)
    features = exposure_features(photo, corrected)
    assert features.shape == (FEATURE_COUNT,)
    assert np.isfinite(features).all()
    small = cv2.resize(photo, (400, 300), interpolation=cv2.INTER_AREA)
    small_corrected = np.clip(small * 1.3, 0, 1)
    assert np.allclose(exposure_features(small, small_corrected), features, atol=0.02)
    for flat in (np.zeros_like(photo), np.ones_like(photo)):
        assert np.isfinite(exposure_features(flat, flat)).all()
    for shape in ((1, 1, 3), (1, 500, 3), (700, 2, 3)):  # slivers and single pixels too
        sliver = np.random.default_rng(0).random(shape, dtype=np.float32)
        assert np.isfinite(exposure_features(sliver, sliver * 0.5)).all()


def test_features_measure_the_clipped_shares_dark_and_bright_regions_and_the_change() -> None:
    # Four grey bands a quarter each, each a whole column of the 16 x 16 grid's blocks: crushed, dark,
    # bright, blown. The calibration weighs the features by their place, so each must measure its own thing.
    bands = np.repeat(np.array([0.02, 0.15, 0.85, 0.98], dtype=np.float32), 16)
    photo = np.repeat(np.tile(bands, (64, 1))[..., None], 3, axis=2)
    features = exposure_features(photo, photo)
    assert features[0] == pytest.approx(0.5) and features[1] == pytest.approx(
        np.std([0.02, 0.15, 0.85, 0.98])
    )
    assert np.allclose(features[9:15], [0.25, 0.25, 0.25, 0.5, 0.5, 0.25])  # < 0.03, > 0.97, blocks' levels
    assert np.allclose(features[16:], 0)  # no change
    lifted = exposure_features(photo, np.clip(photo + 0.1, 0, 1))
    assert lifted[16] == pytest.approx((0.1 + 0.1 + 0.1 + 0.02) / 4, abs=1e-6)  # the mean change: 0.98 clips


@pytest.mark.parametrize(
    ("level", "shares"),
    [
        (0.025, [1, 0, 1, 1, 0, 0]),
        (0.035, [0, 0, 1, 1, 0, 0]),
        (0.965, [0, 0, 0, 0, 1, 1]),
        (0.975, [0, 1, 0, 0, 1, 1]),
    ],
)
def test_crushed_pixels_are_those_under_0_03_and_blown_ones_those_over_0_97(
    level: float, shares: list[int]
) -> None:
    # the exposure-v1 statistics, which every calibration saved was fitted on: crushed, blown, then the
    # blocks under 0.1 and 0.2 and over 0.8 and 0.9
    grey = np.full((8, 8, 3), level, np.float32)
    assert exposure_features(grey, grey)[9:15].tolist() == shares


def test_a_sample_predicts_the_blend_error_at_any_strength() -> None:
    photo, truth = scene(2), scene(3)
    corrected = np.clip(photo + 0.2, 0, 1)
    sample = CalibrationSample.of(photo, corrected, truth)
    for strength in (0.0, 0.3, 1.0):
        blended = photo.astype(np.float64) + strength * (corrected.astype(np.float64) - photo)
        error = np.mean((blended - truth) ** 2)
        assert sample.squared_error(strength) == pytest.approx(error, rel=1e-9)
    # The least error is at strength agreement / gain: 1 for a truth that is the correction, 0 for the photo.
    towards_correction = CalibrationSample.of(photo, corrected, corrected)
    assert towards_correction.agreement == pytest.approx(towards_correction.gain)
    assert CalibrationSample.of(photo, corrected, photo).agreement == 0.0


def test_the_fit_learns_to_leave_well_exposed_photos_alone() -> None:
    """Dark photos whose truth is the brightened correction, well-exposed ones whose truth is the photo
    itself: the fitted calibration must tell them apart on photos it did not see."""

    def sample(seed: int, dark: bool) -> CalibrationSample:
        truth = scene(seed)
        photo = truth * 0.25 if dark else truth
        corrected = np.clip(photo * (4.0 if dark else 1.4), 0, 1)
        return CalibrationSample.of(photo, corrected, truth)

    calibration = fit_calibration([sample(seed, seed % 2 == 0) for seed in range(40)], about="test")
    assert calibration.about == "test"
    for seed in range(100, 106):
        dark, bright = scene(seed) * 0.25, scene(seed)
        assert calibration.predict(dark, np.clip(dark * 4.0, 0, 1)) >= 0.9
        assert calibration.predict(bright, np.clip(bright * 1.4, 0, 1)) <= 0.1


def fitted() -> StrengthCalibration:
    samples = [CalibrationSample.of(scene(s) * 0.5, scene(s), scene(s)) for s in range(6)]
    samples += [CalibrationSample.of(scene(s), np.clip(scene(s) * 1.5, 0, 1), scene(s)) for s in range(6, 12)]
    return fit_calibration(samples, about="twelve scenes")


def test_predictions_are_rounded_shares() -> None:
    calibration = fitted()
    for seed in range(5):
        strength = calibration.predict(scene(seed) * 0.7, scene(seed))
        assert 0 <= strength <= 1
        assert strength == round(strength, 2)


def test_the_calibration_survives_the_card_as_a_mapping_or_json_text() -> None:
    calibration = fitted()
    card = calibration.as_card()
    assert card["features"] == FEATURES
    assert StrengthCalibration.from_card(card) == calibration
    assert StrengthCalibration.from_card(json.dumps(card)) == calibration


@pytest.mark.parametrize(
    "broken",
    [
        "not json",
        ["a", "list"],
        {"features": "exposure-v0"},
        {"features": FEATURES, "mean": [0.0], "scale": [1.0], "weights": [0.0], "bias": 0.0},
        {"features": FEATURES, "mean": [0.0] * FEATURE_COUNT, "scale": [0.0] * FEATURE_COUNT},
        {
            "features": FEATURES,
            "mean": ["x"] * FEATURE_COUNT,
            "scale": [1.0] * FEATURE_COUNT,
            "weights": [0.0] * FEATURE_COUNT,
            "bias": 0.0,
        },
        *(  # a damaged card's numbers: too large for a float, or not a number
            {
                "features": FEATURES,
                "mean": [0.0] * FEATURE_COUNT,
                "scale": [1.0] * FEATURE_COUNT,
                "weights": [0.0] * FEATURE_COUNT,
                "bias": bias,
            }
            for bias in (10**400, float("nan"), "inf")
        ),
        {  # finite, but its predictions were NaN: (x - 1e300) / 1e-300 is infinite, and 0 times that NaN
            "features": FEATURES,
            "mean": [1e300] * FEATURE_COUNT,
            "scale": [1e-300] * FEATURE_COUNT,
            "weights": [0.0] + [1.0] * (FEATURE_COUNT - 1),
            "bias": 0.0,
        },
    ],
)
def test_an_unusable_calibration_is_refused(broken: object) -> None:
    with pytest.raises(CalibrationError):
        StrengthCalibration.from_card(broken)


@pytest.mark.parametrize(
    ("text", "shown"), [("bogus", "'bogus'"), ("x" * 40, repr("x" * 40)), ("x" * 41, repr("x" * 40) + "...")]
)
def test_a_calibration_that_is_text_but_not_json_is_said_to_be_so(text: str, shown: str) -> None:
    # It said "(Expecting value: line 1 column 1 (char 0))", the JSON parser's words
    with pytest.raises(CalibrationError) as caught:
        StrengthCalibration.from_card(text)
    assert str(caught.value) == f"unusable auto_strength calibration (text that is not JSON: {shown})"


@pytest.mark.parametrize(("size", "usable"), [(LARGEST_VALUE, True), (LARGEST_VALUE * 1.000001, False)])
def test_a_calibration_s_numbers_may_be_as_large_as_the_limit_and_no_larger(
    size: float, usable: bool
) -> None:
    card = {
        "features": FEATURES,
        "mean": [size] * FEATURE_COUNT,
        "scale": [-size] * FEATURE_COUNT,
        "weights": [size] * FEATURE_COUNT,
        "bias": -size,
    }
    if usable:
        assert StrengthCalibration.from_card(card).bias == -size
    else:
        with pytest.raises(CalibrationError, match="numbers of at most 1e\\+06 in size"):
            StrengthCalibration.from_card(card)


@pytest.mark.parametrize("scale", [1e-320, 1.4e-17, -1e-12])
def test_a_calibration_s_tiny_scales_still_predict_a_strength(scale: float) -> None:
    # 1e-320 was a traceback (NaN); np.std of a statistic that never changed can give 1.4e-17
    card = {
        "features": FEATURES,
        "mean": [0.5] * FEATURE_COUNT,
        "scale": [scale] + [1.0] * (FEATURE_COUNT - 1),
        "weights": [0.0] * (FEATURE_COUNT - 1) + [1.0],
        "bias": 0.0,
    }
    calibration = StrengthCalibration.from_card(card)
    for first in (0.5, 0.7, 0.3):  # at the mean, and above and below it, where 0 times infinity was NaN
        assert calibration.strength_of(np.array([first] + [0.5] * (FEATURE_COUNT - 1))) == 0.5


def test_a_saved_model_carries_its_calibration_in_the_card_and_the_metadata(tmp_path: Path) -> None:
    calibration = fitted()
    path = tmp_path / "calibrated.safetensors"
    save_model(random_model(seed=1), path, {"auto_strength": calibration.as_card()})
    assert strength_calibration(load_model(str(path))) == calibration
    path.with_suffix(".json").unlink()  # the card is then read from the safetensors metadata
    assert strength_calibration(load_model(str(path))) == calibration


def test_a_model_without_calibration_has_none_and_a_broken_one_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_model(random_model(seed=1), path, {})
    loaded = load_model(str(path))
    assert strength_calibration(loaded) is None
    broken = LoadedModel(loaded.model, "broken.safetensors", path, {"auto_strength": {"features": "?"}})
    with pytest.raises(WeightsError, match=r"^broken\.safetensors: "):
        strength_calibration(broken)


def test_auto_strength_applies_the_predicted_share_and_full_without_calibration() -> None:
    model, photo = random_model(seed=6), scene(7) * 0.6
    full = Corrector(model, CPU).correct(photo)
    assert full.strength == 1.0
    calibration = fitted()
    auto = Corrector(model, CPU, strength="auto", calibration=calibration).correct(photo)
    expected = calibration.predict(photo, full.image)
    assert auto.strength == expected
    assert np.allclose(auto.image, blend(photo, full.image, expected), atol=1e-6)
    assert np.array_equal(auto.mask, full.mask)
    assert Corrector(model, CPU, strength="auto").correct(photo).strength == 1.0
    # A calibration that always says "a little" shows the share really reaches the photo.
    little = replace(calibration, weights=(0.0,) * FEATURE_COUNT, bias=-1.5)
    small = Corrector(model, CPU, strength="auto", calibration=little).correct(photo)
    assert small.strength == pytest.approx(0.18)
    assert np.allclose(small.image, blend(photo, full.image, 0.18), atol=1e-6)


def test_auto_strength_is_the_same_whole_and_tiled() -> None:
    model, photo, calibration = random_model(seed=6), scene(8, (300, 260)) * 0.6, fitted()
    whole = Corrector(model, CPU, tile=0, strength="auto", calibration=calibration).correct(photo)
    tiled = Corrector(model, CPU, tile=128, strength="auto", calibration=calibration).correct(photo)
    assert whole.strength == tiled.strength
    assert np.abs(whole.image - tiled.image).max() <= 1e-4  # as the tiling tests, blended or not


def test_calibration_s_training_mix_is_its_own_pairs_not_copies_of_the_single_kinds(tmp_path: Path) -> None:
    for index in range(12):
        Image.fromarray(quantise(scene(index, (48, 64)), 8)).save(tmp_path / f"photo-{index}.png")
    fitting = calibration.photo_data(tmp_path, 64, 12).fitting
    pairs = {regime: load() for regime, load in fitting.items()}
    mix = pairs.pop("training mix")
    assert len(mix) >= 10
    for index, pair in enumerate(mix):
        assert not any(torch.equal(pair.input, group[index].input) for group in pairs.values())


def test_calibration_reads_photos_named_in_bytes_that_are_not_utf8_and_names_a_damaged_one(
    tmp_path: Path,
) -> None:
    """Names from another system's archive reach Python as surrogates, which broke the held-out split."""
    paths = [tmp_path / os.fsdecode(b"photo-\xff%d.png" % index) for index in range(3)]
    for index, path in enumerate(paths):
        Image.fromarray(quantise(scene(index, (48, 64)), 8)).save(path)
    data = calibration.photo_data(tmp_path, 64, 2)

    def all_pairs() -> list[ValidationPair]:
        return [
            pair for groups in (data.fitting, data.checking) for load in groups.values() for pair in load()
        ]

    assert len(all_pairs()) == len(paths) * len(calibration.REGIMES)
    paths[1].write_bytes(paths[1].read_bytes()[:100])
    with pytest.raises(
        ImageFileError, match=rf"^{re.escape(str(paths[1]))}: truncated or corrupt image data$"
    ):
        all_pairs()


def test_calibrating_reads_a_groups_held_out_pairs_with_it_so_a_damaged_file_fails_early() -> None:
    """From photos, the first group reads every file: a damaged held-out photo failed after the whole fit."""
    loaded: list[str] = []

    def group(name: str, damaged: bool = False) -> Callable[[], list[ValidationPair]]:
        def load() -> list[ValidationPair]:
            loaded.append(name)
            if damaged:
                raise ImageFileError("held-out.png: truncated or corrupt image data")
            photo = torch.from_numpy(scene(len(loaded), (32, 32))).permute(2, 0, 1)
            return [ValidationPair(name, photo * 0.5, photo)]

        return load

    data = calibration.CalibrationData(
        {"under": group("fit under"), "over": group("fit over")},
        {"under": group("check under", damaged=True), "over": group("check over")},
        "two groups",
        4,
        2,
    )
    with pytest.raises(ImageFileError, match=r"^held-out\.png: truncated"):
        calibration.calibrate(Corrector(random_model(seed=3), CPU), data)
    assert loaded == ["fit under", "check under"]


def test_calibrating_names_the_damaged_photos_to_fit_on_and_held_out_at_once_before_the_model_runs() -> None:
    # the damaged held-out photos were said only after the model ran on the first group's others, and the
    # damaged ones to fit on in one run, the held-out ones in the next
    def damaged(name: str) -> Callable[[], list[ValidationPair]]:
        def load() -> list[ValidationPair]:
            raise UnusableImages([f"{name}.png: truncated or corrupt image data"])

        return load

    data = calibration.CalibrationData({"under": damaged("fit")}, {"under": damaged("held-out")}, "", 2, 1)
    corrected: list[int] = []
    with pytest.raises(UnusableImages) as raised:
        calibration.calibrate(Corrector(random_model(seed=3), CPU), data, lambda: corrected.append(1))
    assert str(raised.value) == (
        "2 images cannot be used: fit.png: truncated or corrupt image data; held-out.png: truncated or "
        "corrupt image data"
    )
    assert corrected == []


@pytest.mark.parametrize(
    ("failure", "line"),
    [
        (
            PhotoOutOfMemoryError("no room"),
            "error: not enough memory to calibrate at --size 64: try a smaller --size",
        ),
        (
            NotANumberError("its output is not a number"),
            "error: mine.safetensors: its output is not a number",
        ),
    ],
)
def test_a_photo_the_fit_cannot_correct_ends_calibrate_in_one_line(
    failure: Exception, line: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails(*args: object) -> None:
        raise failure

    monkeypatch.setattr(calibration, "calibrate", fails)
    data = calibration.CalibrationData({}, {}, "", 1, 1)
    with pytest.raises(typer.Exit) as ended:
        fitted_strength(Corrector(random_model(seed=3), CPU), data, "mine.safetensors", 64, quiet=True)
    assert (ended.value.exit_code, capsys.readouterr().err) == (1, line + "\n")


def test_a_fit_on_too_few_pairs_to_trust_beyond_them_is_said_to_be_one() -> None:
    def data(fitting_pairs: int) -> calibration.CalibrationData:
        return calibration.CalibrationData({}, {}, "", 0, fitting_pairs)

    assert calibration.FEW_PAIRS == 46  # twice the 23 statistics of each photo that the fit weighs
    assert data(45).few_pairs_note() == (
        "fitted on only 45 pairs; a fit on fewer than 46 follows them more than photos in general: give more "
        "(a larger folder, or a higher --count), and judge it by the held-out scores"
    )
    assert data(46).few_pairs_note() is None


def test_calibrate_s_progress_counts_the_held_out_pairs_as_well_as_those_fitted_on(tmp_path: Path) -> None:
    # the bar's total must count the held-out pairs too, or it runs past its end while they are scored
    for index in range(6):
        Image.fromarray(quantise(scene(index, (16, 16)), 8)).save(tmp_path / f"{index}.png")
    data = calibration.photo_data(tmp_path, 16, 10)
    corrected = sum(len(load()) for groups in (data.fitting, data.checking) for load in groups.values())
    fitted = sum(len(load()) for load in data.fitting.values())
    assert data.pairs == corrected and data.fitting_pairs == fitted < corrected
    pairs = [ImagePair(tmp_path / "in" / f"{i}.png", tmp_path / "gt" / f"{i}.png") for i in range(40)]
    assert calibration.pair_data(pairs, "in and gt", 16, 2).pairs == 2 + 2  # of 36 to fit on, 4 held out


def test_calibrating_needs_the_full_correction() -> None:
    with pytest.raises(ValueError, match=r"^calibration needs the model's full correction \(strength 1\)$"):
        calibration.calibrate(
            Corrector(random_model(), CPU, strength=0.5), calibration.CalibrationData({}, {}, "", 0, 0)
        )


def test_a_photo_that_is_its_own_ground_truth_scores_the_highest_psnr_as_it_is() -> None:
    # counted as MAX_PSNR (100 dB) in the means, as eval and training's validation count it
    photo = scene(5)
    sample = CalibrationSample.of(photo, np.clip(photo * 1.2, 0, 1), photo)
    halfway = StrengthCalibration((0.0,) * FEATURE_COUNT, (1.0,) * FEATURE_COUNT, (0.0,) * FEATURE_COUNT, 0.0)
    scored = calibration.score(halfway, [sample])
    assert scored.input_psnr == MAX_PSNR > scored.auto_psnr > scored.full_psnr


def test_data_too_small_to_hold_one_out_says_what_it_needs_and_found(tmp_path: Path) -> None:
    # MSEC's five exposures of one scene are five pairs, but one ground truth: none can be held out
    scene = [ImagePair(tmp_path / f"a_{exposure}.jpg", tmp_path / "a.jpg") for exposure in range(5)]
    with pytest.raises(ValueError) as refused:
        calibration.pair_data(scene, "msec (test)", 64, 10)
    assert str(refused.value) == (
        "msec (test): need pairs with at least 2 different ground truths (one is held out to score the fit), "
        "found 5 pairs, with 1 ground truth"
    )
    (tmp_path / "photos").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "photos" / "one.png")
    with pytest.raises(
        ValueError, match=r"photos: need at least 2 photos \(one is held out to score the fit\), found 1$"
    ):
        calibration.calibration_data(tmp_path / "photos", None, "train", None, None, 64, 10)
    for folder in ("test-input", "test-gt"):  # a data set's split is named with it
        (tmp_path / "lcdp" / folder).mkdir(parents=True)
        (tmp_path / "lcdp" / folder / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(tmp_path / 'lcdp'))} \(test\): need pairs with "):
        calibration.calibration_data(None, tmp_path / "lcdp", "test", None, None, 64, 10)


def test_calibrating_scores_the_full_correction_in_the_colours_the_corrector_gives_it() -> None:
    # correct applies the strength to the model's lightness in the photo's colours by default; calibrate
    # fitted it on the model's own colours, whatever the user asked for, until it took the colours too
    truth = scene(4, (40, 56))
    photo = truth * 0.5
    pairs = [ValidationPair("p", *(torch.from_numpy(image).permute(2, 0, 1) for image in (photo, truth)))]
    data = calibration.CalibrationData({"under": lambda: pairs}, {"under": lambda: pairs}, "one pair", 2, 1)
    model = random_model(seed=3)
    full_psnrs = []
    for keep_colour, colours in ((True, "in the photos' colours"), (False, "in the model's colours")):
        corrector = Corrector(model, CPU, keep_colour=keep_colour)
        fitted, scores = calibration.calibrate(corrector, data)
        error = np.mean((corrector.correct(photo).image.astype(np.float64) - truth) ** 2)
        assert scores["under"].full_psnr == pytest.approx(-10 * np.log10(error), abs=1e-6)
        assert fitted.about.startswith(f"one pair, corrected {colours}")
        full_psnrs.append(scores["under"].full_psnr)
    assert abs(full_psnrs[0] - full_psnrs[1]) > 0.1  # the random model's colours are not the photo's


def test_a_group_s_held_out_strength_is_the_mean_of_its_photos_predicted_strengths() -> None:
    # a median would hide the few photos given much more or much less than the rest
    class Sample:
        def __init__(self, strength: float) -> None:
            self.features = strength

        def squared_error(self, strength: float) -> float:
            return 0.01

    class Fixed:
        def strength_of(self, features: float) -> float:
            return features

    scored = calibration.score(Fixed(), [Sample(0.0), Sample(0.2), Sample(1.0)])  # type: ignore[arg-type]
    assert scored.mean_strength == pytest.approx(0.4)  # the median is 0.2
    assert (scored.pairs, scored.auto_psnr) == (3, pytest.approx(20.0))
