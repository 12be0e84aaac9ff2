"""Matrix profiles from primaries: LittleCMS (through Pillow) reads them and converts colours as the
colour-space definitions say."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from recnet_cli.imaging.icc import (
    SRGB_CURVE,
    d50_colorants,
    grey_profile,
    matrix_profile,
    matrix_shaper,
    rgb_to_xyz,
    s15_fixed16,
    tone_curve,
)

D65 = (0.3127, 0.3290)
SRGB = [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)]
DISPLAY_P3 = [(0.68, 0.32), (0.265, 0.69), (0.15, 0.06)]
BT2020 = [(0.708, 0.292), (0.170, 0.797), (0.131, 0.046)]
ADOBE_RGB = [(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)]
ADOBE_GAMMA = 563 / 256  # Adobe RGB (1998)'s curve: 2.19921875
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


def decode(codes: np.ndarray, gamma: float | None) -> np.ndarray:
    """Linear light of 8-bit codes through the sRGB curve (None) or a power curve."""
    return srgb_decode(codes) if gamma is None else (codes / 255) ** gamma


@pytest.mark.parametrize(
    ("name", "primaries", "gamma"),
    [
        *((name, primaries, None) for name, primaries in SPACES.items()),
        ("Adobe RGB (1998)", ADOBE_RGB, ADOBE_GAMMA),
    ],
)
def test_littlecms_converts_through_the_profile_as_the_colour_spaces_define(
    name: str, primaries: list[tuple[float, float]], gamma: float | None
) -> None:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(matrix_profile(primaries, D65, name, gamma)))
    assert ImageCms.getProfileDescription(profile).strip() == name
    to_srgb = ImageCms.buildTransform(
        profile, ImageCms.createProfile("sRGB"), "RGB", "RGB", ImageCms.Intent.RELATIVE_COLORIMETRIC
    )
    codes = np.random.default_rng(1).integers(60, 200, (32, 32, 3), dtype=np.uint8)
    converted = np.asarray(ImageCms.applyTransform(Image.fromarray(codes), to_srgb)).astype(float)
    to_srgb_linear = np.linalg.inv(rgb_to_xyz(SRGB, D65)) @ rgb_to_xyz(primaries, D65)
    expected = srgb_encode(decode(codes.astype(float), gamma) @ to_srgb_linear.T)
    in_gamut = (expected > 0.5).all(axis=-1) & (expected < 254.5).all(axis=-1)
    assert in_gamut.mean() > 0.5
    assert np.abs(converted - expected)[in_gamut].max() <= 1.0  # within rounding of 8-bit output


@pytest.mark.parametrize("gamma", [None, 1.8])
def test_a_grey_profile_converts_to_the_srgb_curve_as_its_curve_says(gamma: float | None) -> None:
    profile = ImageCms.ImageCmsProfile(io.BytesIO(grey_profile("Grey", gamma)))
    assert ImageCms.getProfileDescription(profile).strip() == "Grey"
    srgb_grey = ImageCms.ImageCmsProfile(io.BytesIO(grey_profile("sRGB grey")))
    # Unoptimised, as recnet converts grey: LittleCMS's 8-bit shortcuts miss by 1.5 codes in the shadows.
    to_srgb = ImageCms.buildTransform(
        profile, srgb_grey, "L", "L", ImageCms.Intent.RELATIVE_COLORIMETRIC, ImageCms.Flags.NOOPTIMIZE
    )
    ramp = np.arange(256, dtype=np.uint8)[None]
    converted = np.asarray(ImageCms.applyTransform(Image.fromarray(ramp), to_srgb)).astype(float)[0]
    expected = srgb_encode(decode(ramp[0].astype(float), gamma))
    assert np.abs(converted - expected).max() <= 0.51  # rounded to the nearest code


def curv(*values: int) -> bytes:
    """A curveType tag: no entries (identity), a u8Fixed8 gamma, or a table."""
    return b"curv\0\0\0\0" + struct.pack(f">I{len(values)}H", len(values), *values)


def para(function: int, *parameters: float) -> bytes:
    return b"para\0\0\0\0" + struct.pack(">H2x", function) + s15_fixed16(parameters)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        (curv(), lambda x: x),
        (curv(563), lambda x: x ** (563 / 256)),  # Adobe RGB (1998)'s gamma, as its profile gives it
        (
            curv(*np.rint(65535 * srgb_decode(np.linspace(0, 255, 1024))).astype(int)),
            lambda x: srgb_decode(255 * x),
        ),
        (para(0, 1.8), lambda x: x**1.8),
        (para(1, 2.0, 1.25, -0.25), lambda x: np.where(x >= 0.2, (1.25 * x - 0.25) ** 2, 0)),
        (para(2, 2.0, 1.25, -0.25, 0.1), lambda x: np.where(x >= 0.2, (1.25 * x - 0.25) ** 2 + 0.1, 0.1)),
        (para(3, *SRGB_CURVE), lambda x: srgb_decode(255 * x)),
        (
            para(4, 2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045, 0.01, 0.02),
            lambda x: np.where(x >= 0.04045, ((x + 0.055) / 1.055) ** 2.4 + 0.01, x / 12.92 + 0.02),
        ),
    ],
    ids=["identity", "gamma", "table", "para 0", "para 1", "para 2", "para 3", "para 4"],
)
def test_tone_curves_read_as_the_icc_specification_defines_them(tag: bytes, expected) -> None:
    values = np.linspace(0, 1, 101, dtype=np.float32)
    assert tone_curve(tag)(values) == pytest.approx(expected(values.astype(float)), abs=2e-4)


def test_the_colorants_and_curves_of_a_matrix_profile_are_read_back() -> None:
    colorants, curves = matrix_shaper(matrix_profile(ADOBE_RGB, D65, "Adobe RGB (1998)", ADOBE_GAMMA))
    expected = [[0.60974, 0.20528, 0.14919], [0.31111, 0.62567, 0.06322], [0.01947, 0.06087, 0.74455]]
    # what ExifTool reads of Adobe's own, to the 5 decimals it shows and the 1/65536 steps a profile holds
    assert colorants == pytest.approx(np.array(expected), abs=2e-5)
    assert colorants == pytest.approx(d50_colorants(ADOBE_RGB, D65), abs=2**-17)  # as written, to 1/65536
    assert curves[1](np.float32([0.5])) == pytest.approx(0.5**ADOBE_GAMMA, rel=1e-4)
    assert matrix_shaper(grey_profile("Grey", 1.8))[0] is None
    with_tables = matrix_profile(SRGB, D65, "sRGB").replace(b"bTRC", b"A2B0")  # a lookup-table profile
    assert matrix_shaper(with_tables) is None and matrix_shaper(b"not a profile") is None


@pytest.mark.parametrize("table", [b"A2B0", b"D2B0"], ids=["integer", "floating point"])
def test_a_profile_with_lookup_tables_beside_its_matrix_is_left_to_littlecms(table: bytes) -> None:
    # LittleCMS converts through a profile's tables where it has both; its matrix and curves are all here
    profile = matrix_profile(ADOBE_RGB, D65, "Adobe RGB (1998)", ADOBE_GAMMA)
    assert matrix_shaper(profile) is not None
    assert matrix_shaper(profile.replace(b"cprt", table)) is None


@pytest.mark.parametrize(
    "profile",
    [matrix_profile(DISPLAY_P3, D65, "Display P3"), grey_profile("Grey", 1.8)],
    ids=["matrix", "grey"],
)
def test_the_profiles_made_here_have_the_d50_white_icc_v4_asks_for(profile: bytes, tmp_path: Path) -> None:
    # Absolute colorimetric conversion (soft proofing) goes by the media white: white stays white
    opened = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    assert (opened.profile.version, opened.profile.device_class) == (4.3, "mntr")  # v4 types: mluc, para
    mode = "L" if profile[16:20] == b"GRAY" else "RGB"
    to_srgb = ImageCms.buildTransform(
        opened, ImageCms.createProfile("sRGB"), mode, "RGB", ImageCms.Intent.ABSOLUTE_COLORIMETRIC
    )
    white = Image.new(mode, (1, 1), 255 if mode == "L" else (255, 255, 255))
    assert np.asarray(ImageCms.applyTransform(white, to_srgb))[0, 0].tolist() == [255, 255, 255]
    exiftool = shutil.which("exiftool")
    if exiftool is None:  # CI installs Debian's
        return
    (tmp_path / "profile.icc").write_bytes(profile)
    command = [
        exiftool,
        "-json",
        "-ConnectionSpaceIlluminant",
        "-MediaWhitePoint",
        str(tmp_path / "profile.icc"),
    ]
    (read,) = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    assert read["ConnectionSpaceIlluminant"] == read["MediaWhitePoint"] == "0.9642 1 0.82491"


def test_each_tag_of_a_profile_made_here_starts_on_a_4_byte_boundary_and_says_its_own_size() -> None:
    # as the ICC specification asks: a name of an odd length leaves its text 2 bytes short of a boundary
    name = "Display P3 (from HEIF nclx)"
    profile = matrix_profile(DISPLAY_P3, D65, name)
    (count,) = struct.unpack_from(">I", profile, 128)
    table = [struct.unpack_from(">4sII", profile, 132 + 12 * at) for at in range(count)]
    assert [offset % 4 for _, offset, _ in table] == [0] * count
    sizes = {signature: size for signature, _, size in table}
    assert sizes[b"desc"] == 28 + 2 * len(name)  # mluc: its header, one record, then UTF-16 text
    assert struct.unpack_from(">I", profile)[0] == len(profile)


@pytest.mark.filterwarnings("error")  # numpy's "invalid value encountered in power" would show in a run
def test_a_curve_that_starts_past_0_is_its_floor_below_that_without_a_warning() -> None:
    # types 1 and 2 start at X = -b/a: below it a fractional gamma of aX + b would be no number
    values = np.linspace(0, 1, 101, dtype=np.float32)
    base = np.clip(1.25 * values.astype(float) - 0.25, 0, None)
    expected = np.where(values >= 0.2, base**2.2 + 0.1, 0.1)
    assert tone_curve(para(2, 2.2, 1.25, -0.25, 0.1))(values) == pytest.approx(expected, abs=2e-4)
