"""The camera-model exposure synthesis: regimes, locality, noise, determinism."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from recnet_cli.train.data import read_rgb, to_tensor
from recnet_cli.train.synthesis import (
    LUMA_WEIGHTS,
    MODES,
    DegradationConfig,
    Exposure,
    LightPool,
    degrade,
    expose,
    exposure_map,
    linear_to_srgb,
    parse_regimes,
    relative_log_luminance,
    sample_exposure,
    sample_pools,
    sensor_noise,
    srgb_to_linear,
    tone_curve,
)

PHOTOS = Path(__file__).parent / "data" / "train-photos"
CPU = torch.device("cpu")
NEUTRAL = Exposure(
    mode="mixed",
    base_ev=0.0,
    contrast=0.0,
    gradient_ev=0.0,
    gradient_angle=0.0,
    pools=(),
    shot_noise=0.0,
    read_noise=0.0,
    gamma=None,
    s_curve=0.0,
    jpeg_quality=None,
    noise_seed=0,
)


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return to_tensor([read_rgb(PHOTOS / "bsd100-img_007.jpg")], CPU)


def clipped_and_crushed(image: torch.Tensor) -> tuple[float, float]:
    """Fractions of a (3, H, W) image blown out (a channel >= 250/255) and crushed (luma <= 16/255)."""
    weights = torch.tensor(LUMA_WEIGHTS, dtype=image.dtype, device=image.device).view(3, 1, 1)
    clipped = (image.amax(0) >= 250 / 255).float().mean()
    crushed = ((image * weights).sum(0) <= 16 / 255).float().mean()
    return float(clipped), float(crushed)


def changes(clean: torch.Tensor, exposure: Exposure) -> tuple[float, float]:
    """How much the clipped and the crushed fractions grew."""
    clipped, crushed = clipped_and_crushed(degrade(clean, [exposure])[0])
    clean_clipped, clean_crushed = clipped_and_crushed(clean[0])
    return clipped - clean_clipped, crushed - clean_crushed


def test_neutral_exposure_only_quantises(photo: torch.Tensor) -> None:
    out = degrade(photo, [NEUTRAL])
    assert torch.allclose(out, photo, atol=0.5 / 255 + 1e-6)
    noisy = degrade(photo, [dataclasses.replace(NEUTRAL, base_ev=-0.7, shot_noise=1e-3, read_noise=1e-3)])
    assert torch.allclose(noisy * 255, (noisy * 255).round(), atol=1e-3)  # 8-bit levels, as a camera writes


def test_sampling_yields_under_only_over_only_and_mixed(photo: torch.Tensor) -> None:
    kinds = {"under": 0, "over": 0, "mixed": 0}
    for seed in range(40):
        exposure = sample_exposure(np.random.default_rng(seed))
        clipped, crushed = changes(photo, exposure)
        if exposure.mode == "under":
            assert clipped <= 0.005
        if exposure.mode == "over":
            assert crushed <= 0.005
        if crushed > 0.03 and clipped <= 0.005:
            kinds["under"] += 1
        elif clipped > 0.03 and crushed <= 0.005:
            kinds["over"] += 1
        elif clipped > 0.01 and crushed > 0.01:
            kinds["mixed"] += 1
    assert all(count >= 2 for count in kinds.values()), kinds


def test_the_regime_mix_is_chosen_by_name() -> None:
    assert parse_regimes("mixed=3, mild=1") == (0.0, 0.0, 0.75, 0.25)
    assert parse_regimes("under=1e308,over=1e308") == (0.5, 0.5, 0.0, 0.0)  # their sum is infinite
    config = DegradationConfig(mode_probabilities=parse_regimes("over=1,mild=1"))
    drawn = {sample_exposure(np.random.default_rng(seed), config).mode for seed in range(40)}
    assert drawn == {"over", "mild"}
    assert "regimes under 0, over 0.5, mixed 0, mild 0.5" in config.describe()
    for text, reason in [
        ("under=1,dark=1", "unknown regime 'dark'"),
        ("under", r"^under has no share: the share must be a number \(as in under=0.25\)$"),
        ("over=lots", r"^over=lots: the share must be a number"),
        ("under=-0.5", "the share must be 0 or more"),
        ("under=inf", r"under=inf: the share must be a finite number \(as in under=0.25\)"),
        ("mild=nan", r"mild=nan: the share must be a finite number"),
        ("under=1,mild=1,under=2", r"under is given twice in 'under=1,mild=1,under=2'"),
        ("under=0,mild=0", "at least one regime needs a share above 0"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_regimes(text)


@pytest.mark.parametrize("mode", MODES)
def test_one_regime_alone_draws_only_that_regime(mode: str) -> None:
    config = DegradationConfig.only(mode)
    assert {sample_exposure(np.random.default_rng(seed), config).mode for seed in range(20)} == {mode}


@pytest.mark.parametrize(
    ("mode", "median_ev", "ev_spread"),
    [
        ("under", (-math.inf, -1.0), (0.0, 2.0)),
        ("over", (0.75, math.inf), (0.0, 2.0)),
        ("mild", (-0.6, 0.6), (0.0, 1.0)),  # nearly right: within about half a stop, nearly even
        ("mixed", (-math.inf, math.inf), (2.5, math.inf)),  # bright regions pushed up, dark ones down
    ],
)
def test_each_regime_is_as_far_off_as_its_name_says(
    photo: torch.Tensor, mode: str, median_ev: tuple[float, float], ev_spread: tuple[float, float]
) -> None:
    linear = srgb_to_linear(photo[0])
    for seed in range(30):
        ev = exposure_map(linear, sample_exposure(np.random.default_rng(seed), DegradationConfig.only(mode)))
        assert median_ev[0] <= float(ev.median()) <= median_ev[1], seed
        assert ev_spread[0] <= float(ev.max() - ev.min()) <= ev_spread[1], seed


@pytest.mark.parametrize(
    ("probability", "qualities", "drawn"),
    [(0.0, (60, 95), {None}), (1.0, (80, 80), {80}), (1.0, (60, 95), set(range(60, 96)))],
)
def test_the_jpeg_step_comes_as_often_and_at_the_qualities_configured(
    probability: float, qualities: tuple[int, int], drawn: set[int | None]
) -> None:
    config = DegradationConfig(jpeg_probability=probability, jpeg_quality=qualities)
    assert {sample_exposure(np.random.default_rng(seed), config).jpeg_quality for seed in range(400)} == drawn


def test_mild_regime_stays_close_to_the_photo(photo: torch.Tensor) -> None:
    """Nearly right photos are part of the data, so the model learns to leave good photos alone."""
    errors: dict[str, list[float]] = {"mild": [], "strong": []}
    for seed in range(60):
        exposure = sample_exposure(np.random.default_rng(seed))
        error = float((degrade(photo, [exposure]) - photo).abs().mean())
        errors["mild" if exposure.mode == "mild" else "strong"].append(error)
    assert len(errors["mild"]) >= 2
    assert max(errors["mild"]) < 0.08 < float(np.median(errors["strong"]))


def test_exposure_change_is_local_and_follows_scene_brightness(photo: torch.Tensor) -> None:
    larger = torch.nn.functional.interpolate(photo, scale_factor=4, mode="bilinear")
    linear = srgb_to_linear(larger[0])
    exposure = dataclasses.replace(NEUTRAL, contrast=1.5)
    ev = exposure_map(linear, exposure)
    brightness = relative_log_luminance(linear)
    ev_range = float(ev.max() - ev.min())
    assert ev_range > 2.0  # not a global gain
    correlation = torch.corrcoef(torch.stack([ev.flatten(), brightness.flatten()]))[0, 1]
    assert float(correlation) > 0.99  # bright regions pushed up, dark ones down
    # spatially smooth: neighbouring pixels differ by a tiny fraction of the map's range
    assert float((ev[:, 1:] - ev[:, :-1]).abs().max()) < 0.025 * ev_range


@pytest.mark.parametrize("shape", [(3, 60, 720), (3, 900, 40), (3, 1, 50)])
def test_any_aspect_ratio_degrades(shape: tuple[int, int, int]) -> None:
    """Panoramas (12:1 here) and thin strips get exposure maps too: the smoothing map stays big enough."""
    clean = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    exposure = dataclasses.replace(NEUTRAL, contrast=1.5)
    assert relative_log_luminance(srgb_to_linear(clean)).shape == shape[1:]
    assert degrade(clean[None], [exposure]).shape == (1, *shape)


def test_light_pool_and_ramp_brighten_where_placed() -> None:
    flat = torch.full((3, 40, 60), 0.2)
    pool = dataclasses.replace(NEUTRAL, pools=(LightPool(y=0.5, x=0.25, radius=0.1, ev=2.0),))
    ev = exposure_map(flat, pool)
    assert float(ev[20, 15]) == pytest.approx(2.0, abs=0.05)
    assert float(ev[20, 55]) < 0.1
    ramp = exposure_map(flat, dataclasses.replace(NEUTRAL, gradient_ev=2.0, gradient_angle=0.0))
    assert float(ramp[0, -1] - ramp[0, 0]) == pytest.approx(2.0, abs=1e-5)


def test_light_pools_are_lights_or_shadows_of_the_strength_asked_for() -> None:
    strengths = [pool.ev for pool in sample_pools(np.random.default_rng(0), 40, (0.3, 1.0))]
    assert min(strengths) < 0 < max(strengths)
    assert all(0.3 <= abs(ev) <= 1.0 for ev in strengths)


def test_a_light_pool_is_round_and_its_radius_is_its_standard_deviation() -> None:
    # on a wide picture, one radius (a fraction of the long side) across and down from the pool's centre
    height, width = 40, 80
    centre = LightPool(y=20 / (height - 1), x=40 / (width - 1), radius=10 / (width - 1), ev=2.0)
    ev = exposure_map(torch.full((3, height, width), 0.2), dataclasses.replace(NEUTRAL, pools=(centre,)))
    assert float(ev[20, 40]) == pytest.approx(2.0)
    assert float(ev[20, 50]) == pytest.approx(2.0 * math.exp(-0.5), abs=0.02)
    assert float(ev[30, 40]) == pytest.approx(2.0 * math.exp(-0.5), abs=0.02)


def test_scene_brightness_is_luminance_red_lighter_than_blue() -> None:
    scene = torch.zeros(3, 32, 64)
    scene[0, :, :32] = 0.5  # red on the left, blue of the same strength on the right
    scene[2, :, 32:] = 0.5
    brightness = relative_log_luminance(scene)
    # Rec. 709 luminance: red is 0.2126 / 0.0722, about 1.6 stops lighter than blue
    assert float(brightness[16, 8] - brightness[16, 56]) > 1.0


def test_the_s_curve_deepens_shadows_and_lifts_highlights() -> None:
    linear = torch.tensor([0.05, 0.9])
    plain = tone_curve(linear, NEUTRAL)
    shaped = tone_curve(linear, dataclasses.replace(NEUTRAL, s_curve=0.3))
    assert float(shaped[0]) < float(plain[0]) and float(shaped[1]) > float(plain[1])


def test_noise_grows_with_signal() -> None:
    exposure = dataclasses.replace(NEUTRAL, shot_noise=1e-3, read_noise=1e-3, noise_seed=7)
    for level in (0.05, 0.8):
        noise = sensor_noise(torch.full((3, 64, 64), level), exposure)
        expected = (1e-3 * level + 1e-6) ** 0.5
        assert float(noise.std()) == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("stops", [-1.0, 1.0])
def test_a_stop_halves_or_doubles_the_light_and_the_camera_adds_its_noise(stops: float) -> None:
    # base_ev is in stops of linear light, as a camera's exposure compensation: -1 lets in half the light
    grey = torch.full((3, 64, 64), 0.5)
    exposed = expose(grey, dataclasses.replace(NEUTRAL, base_ev=stops))
    expected = float(linear_to_srgb(srgb_to_linear(torch.tensor(0.5)) * 2**stops))
    assert float(exposed.mean()) == pytest.approx(expected, abs=1 / 255)
    assert float(exposed.amax() - exposed.amin()) == 0  # a flat grey stays flat without noise
    noisy = expose(grey, dataclasses.replace(NEUTRAL, base_ev=stops, shot_noise=1e-3, read_noise=1e-3))
    assert float(noisy.std()) > 0.005  # the sensor's noise is in the capture (about 0.02 here)
    assert float(noisy.mean()) == pytest.approx(expected, abs=2 / 255)


def test_same_seed_same_pair_other_seed_other_pair(photo: torch.Tensor) -> None:
    first = degrade(photo, [sample_exposure(np.random.default_rng(3))])
    again = degrade(photo, [sample_exposure(np.random.default_rng(3))])
    other = degrade(photo, [sample_exposure(np.random.default_rng(4))])
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_jpeg_step_loses_more_at_lower_quality(photo: torch.Tensor) -> None:
    plain = degrade(photo, [NEUTRAL])
    errors = [
        float((degrade(photo, [dataclasses.replace(NEUTRAL, jpeg_quality=q)]) - plain).abs().mean())
        for q in (95, 60)
    ]
    assert 0 < errors[0] < errors[1]
    assert errors[0] < 0.01  # at quality 95, nearly the photo: its colours too, red stays red
