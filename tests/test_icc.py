"""Matrix profiles from primaries: LittleCMS (through Pillow) reads them and converts colours as the
colour-space definitions say."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from recnet_cli.icc import matrix_profile, rgb_to_xyz

D65 = (0.3127, 0.3290)
SRGB = [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)]
DISPLAY_P3 = [(0.68, 0.32), (0.265, 0.69), (0.15, 0.06)]
BT2020 = [(0.708, 0.292), (0.170, 0.797), (0.131, 0.046)]
SPACES = {"sRGB": SRGB, "Display P3": DISPLAY_P3, "BT.2020": BT2020}


def srgb_decode(codes: np.ndarray) -> np.ndarray:
    values = codes / 255
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0, 1)
    return 255 * np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


def test_the_srgb_primaries_give_the_xyz_matrix_of_the_srgb_standard() -> None:
    expected = [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    assert rgb_to_xyz(SRGB, D65) == pytest.approx(np.array(expected), abs=2e-4)


@pytest.mark.parametrize(("name", "primaries"), SPACES.items())
def test_littlecms_converts_through_the_profile_as_the_colour_spaces_define(
    name: str, primaries: list[tuple[float, float]]
) -> None:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(matrix_profile(primaries, D65, name)))
    assert ImageCms.getProfileDescription(profile).strip() == name
    to_srgb = ImageCms.buildTransform(
        profile, ImageCms.createProfile("sRGB"), "RGB", "RGB", ImageCms.Intent.RELATIVE_COLORIMETRIC
    )
    codes = np.random.default_rng(1).integers(60, 200, (32, 32, 3), dtype=np.uint8)
    converted = np.asarray(ImageCms.applyTransform(Image.fromarray(codes), to_srgb)).astype(float)
    to_srgb_linear = np.linalg.inv(rgb_to_xyz(SRGB, D65)) @ rgb_to_xyz(primaries, D65)
    expected = srgb_encode(srgb_decode(codes.astype(float)) @ to_srgb_linear.T)
    in_gamut = (expected > 0.5).all(axis=-1) & (expected < 254.5).all(axis=-1)
    assert in_gamut.mean() > 0.5
    assert np.abs(converted - expected)[in_gamut].max() <= 1.0  # within rounding of 8-bit output
