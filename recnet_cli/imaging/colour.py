"""A photo's colours in outputs: its ICC profile, a HEIF's nclx colour description and a PNG's colour chunks
(cICP, sRGB, gAMA, cHRM), as they are where the output's format holds them, else as an ICC profile that says
the same; conversion to sRGB where an output cannot hold the profile; a CMYK photo's colours as sRGB through
its profile."""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageCms

from recnet_cli.files import first_line
from recnet_cli.imaging import icc
from recnet_cli.imaging.arrow import image_samples
from recnet_cli.imaging.formats import FORMAT_NAMES, ICC_FORMATS, written_bits
from recnet_cli.imaging.photo import Photo
from recnet_cli.imaging.pixels import UNIT_FLOATS_8, quantise
from recnet_cli.wording import in_words

# Colours whose profile an output cannot hold (a BMP; a grey photo's in WebP, which has no grey mode) are
# converted to sRGB, which viewers take such files for, as photo editors do on export: relative colorimetric
# (Photoshop's default for Convert to Profile; with black-point compensation for LittleCMS). Colours that
# sRGB holds keep their look exactly, and those past its gamut (a saturated Adobe RGB or Display P3 green)
# are clipped to its edge; perceptual would make room for them by desaturating all colours, in gamut too,
# and matrix profiles (Adobe RGB, Display P3, those made from nclx or gAMA/cHRM) have no perceptual table:
# LittleCMS does the same as relative colorimetric for them anyway. Those, and grey profiles, are converted
# in floating point here (``_shaper_to_srgb``); others by LittleCMS, whose transforms, shared by the writer
# threads, keep no cache.
_SRGB_INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
_SRGB_FLAGS = ImageCms.Flags.BLACKPOINTCOMPENSATION | ImageCms.Flags.NOCACHE
_SRGB = ImageCms.createProfile("sRGB")
# A profile counts as sRGB when converting these colours (16 levels of each channel) or (grey) every grey
# to sRGB moves none by more than _SRGB_TOLERANCE 8-bit codes: sRGB profiles by other makers (HP's "sRGB
# IEC61966-2.1", cameras') differ from LittleCMS's in rounding only, and no viewer would show it.
_SRGB_LEVELS = np.arange(0, 256, 17, dtype=np.uint8)
_SRGB_CHECKED = np.stack(np.meshgrid(*[_SRGB_LEVELS] * 3, indexing="ij"), -1).reshape(1, -1, 3)
_SRGB_TOLERANCE = 2
_GREY_CODES = np.arange(256, dtype=np.uint8)
# A CMYK photo's colours become sRGB through its profile with the same intent. Perceptual would do too (CMYK
# profiles have perceptual tables), but a print's colours fit in sRGB but for a few cyans and greens, so
# there is little to make room for, and perceptual tables differ from maker to maker (some lighten the
# shadows); relative colorimetric keeps the paper's white white and, with black-point compensation, makes
# the inks' darkest black sRGB's black, as Photoshop's Convert to Profile does by default. LittleCMS works
# out an 8-bit CMYK transform on a grid of 17 steps an ink (off by 0.4 codes on average from the profile's
# exact colours for a SWOP profile, up to 9 at the gamut's edge); its finer grid of 23 takes a quarter off
# that at no cost per pixel, for 0.1 s more per profile (the transforms are kept for the next photo).
_CMYK_FLAGS = _SRGB_FLAGS | ImageCms.Flags.HIGHRESPRECALC

# nclx colour descriptions (ITU-T H.273 codes) that sRGB stands in for well enough: BT.709 or unspecified
# primaries, and the SDR transfer curves (BT.709, unspecified, BT.601, sRGB, BT.2020's 10- and 12-bit).
# The SDR video curves are shown with the sRGB curve, with any primaries (iPhones' and cameras' Display P3
# and BT.2020 HEIF): the BT.709 curve they name is a camera's encoding (OETF), and displays, browsers and
# players show SDR video with a display's curve (sRGB's, or gamma 2.2 near it, as BT.1886 has it), not
# its inverse.
_SRGB_LIKE_PRIMARIES = frozenset({1, 2})
_SRGB_LIKE_TRANSFERS = frozenset({1, 2, 6, 13, 14, 15})
_PRIMARIES_NAMES = {4: "BT.470M", 5: "BT.601 PAL", 6: "BT.601", 7: "SMPTE 240M", 9: "BT.2020"}
_PRIMARIES_NAMES |= {10: "CIE XYZ", 11: "DCI-P3", 12: "Display P3", 22: "EBU 3213"}
_HDR_TRANSFERS = {16: "PQ", 18: "HLG"}
_TRANSFER_NAMES = {8: "linear"} | {code: f"{name} (HDR)" for code, name in _HDR_TRANSFERS.items()}


Chromaticities = tuple[list[tuple[float, float]], tuple[float, float]]  # red, green, blue (x, y); white

_D65 = (0.3127, 0.329)
# The chromaticities of H.273 colour primaries, which a PNG's cICP chunk gives by their code only
# (pillow-heif gives a HEIF's nclx chromaticities itself). CIE XYZ (10) has none a matrix profile can take
# (its red and blue have y = 0).
_PRIMARIES_CHROMATICITIES: dict[int, Chromaticities] = {
    1: ([(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)], _D65),
    4: ([(0.67, 0.33), (0.21, 0.71), (0.14, 0.08)], (0.310, 0.316)),  # illuminant C
    5: ([(0.64, 0.33), (0.29, 0.60), (0.15, 0.06)], _D65),
    6: ([(0.63, 0.34), (0.31, 0.595), (0.155, 0.07)], _D65),
    7: ([(0.63, 0.34), (0.31, 0.595), (0.155, 0.07)], _D65),
    9: ([(0.708, 0.292), (0.17, 0.797), (0.131, 0.046)], _D65),
    11: ([(0.68, 0.32), (0.265, 0.69), (0.15, 0.06)], (0.314, 0.351)),
    12: ([(0.68, 0.32), (0.265, 0.69), (0.15, 0.06)], _D65),
    22: ([(0.63, 0.34), (0.295, 0.605), (0.155, 0.077)], _D65),
}
_SRGB_CHROMATICITIES = _PRIMARIES_CHROMATICITIES[1]


_SRGB_GAMMA_TOLERANCE = 0.03  # a gAMA of 1/2.2 (45455), written beside sRGB chunks, stands for sRGB's curve
_SRGB_CHROMATICITY_TOLERANCE = 0.005


def _matrix_chromaticities(nclx: dict[str, Any]) -> Chromaticities | None:
    """The primaries and white of an nclx colour description that a matrix profile can say: other primaries
    than sRGB's (Display P3, BT.2020) with the sRGB curve or an SDR video curve shown as it (see
    ``_SRGB_LIKE_TRANSFERS``); None otherwise."""
    if nclx.get("transfer_characteristics") not in _SRGB_LIKE_TRANSFERS:
        return None
    red, green, blue, white = (
        (nclx.get(f"color_primary_{colour}_x"), nclx.get(f"color_primary_{colour}_y"))
        for colour in ("red", "green", "blue", "white")
    )
    known = all(isinstance(value, float) for xy in (red, green, blue, white) for value in xy)
    if nclx.get("color_primaries") in _SRGB_LIKE_PRIMARIES or not known:
        return None
    return [red, green, blue], white


def nclx_icc_profile(nclx: dict[str, Any] | None, source: str = "HEIF nclx") -> bytes | None:
    """An ICC profile that says what a HEIF's nclx colour description (or a PNG's cICP chunk: ``source``)
    says, for outputs in other formats; None where there is nothing to say (sRGB-like) and for curves a
    matrix profile does not hold (HDR, linear: see ``colour_loss_notice``)."""
    if nclx is None or (chromaticities := _matrix_chromaticities(nclx)) is None:
        return None
    primaries = nclx.get("color_primaries")
    name = f"{_PRIMARIES_NAMES.get(primaries, f'primaries {primaries}')} (from {source})"
    return icc.matrix_profile(*chromaticities, name)


def _cicp_codes(cicp: bytes) -> dict[str, Any]:
    """A PNG cICP chunk's codes as pillow-heif gives a HEIF's nclx box, with the primaries' chromaticities
    where they are known."""
    primaries, transfer, matrix, full_range = cicp
    codes: dict[str, Any] = {
        "color_primaries": primaries,
        "transfer_characteristics": transfer,
        "matrix_coefficients": matrix,
        "full_range_flag": full_range,
    }
    if primaries in _PRIMARIES_CHROMATICITIES:
        rgb, white = _PRIMARIES_CHROMATICITIES[primaries]
        for colour, (x, y) in zip(("red", "green", "blue", "white"), (*rgb, white), strict=True):
            codes |= {f"color_primary_{colour}_x": x, f"color_primary_{colour}_y": y}
    return codes


def _png_chromaticities(chrm: bytes | None) -> Chromaticities | None:
    """The primaries and white a cHRM chunk gives; None without one, or for one that no RGB space has, or
    no profile can hold (a coordinate past 1, a y of 0, primaries in or all but in a line: a damaged chunk,
    as libpng takes it)."""
    if chrm is None:
        return None
    coordinates = [value / 100000 for value in struct.unpack(">8I", chrm)]
    white_x, white_y, *primaries = coordinates
    chromaticities = [(primaries[at], primaries[at + 1]) for at in (0, 2, 4)], (white_x, white_y)
    try:
        colorants = icc.d50_colorants(*chromaticities)
    except (ZeroDivisionError, np.linalg.LinAlgError):
        return None
    fits = np.isfinite(colorants).all() and np.abs(colorants).max() < icc.S15_FIXED16_LIMIT
    return chromaticities if fits and max(coordinates) <= 1 else None


# The gAMA values libpng takes (a gamma of 6,250 to 1/6,250); it ignores others as damaged, and so does this
_LEAST_PNG_GAMMA, _MOST_PNG_GAMMA = 16, 625_000_000


def _png_gamma(gama: bytes | None) -> float | None:
    """The power curve's exponent a gAMA chunk gives (2.2 for its usual 45455); None without one, or for a
    damaged one (outside libpng's range): sRGB's curve."""
    if gama is None:
        return None
    (encoding,) = struct.unpack(">I", gama)
    return 100000 / encoding if _LEAST_PNG_GAMMA <= encoding <= _MOST_PNG_GAMMA else None


def _alike(first: Chromaticities, second: Chromaticities) -> bool:
    """Whether two sets of primaries and white differ by less than _SRGB_CHROMATICITY_TOLERANCE in x and y."""
    difference = np.subtract([*first[0], first[1]], [*second[0], second[1]])
    return bool(np.abs(difference).max() < _SRGB_CHROMATICITY_TOLERANCE)


def png_colour_profile(chunks: tuple[tuple[bytes, bytes], ...], grey: bool) -> bytes | None:
    """An ICC profile that says what a PNG's colour chunks say, for outputs in other formats: a cICP chunk's
    other primaries than sRGB's with the sRGB curve (as ``nclx_icc_profile``), or the power curve of a gAMA
    chunk and the primaries of a cHRM chunk (grey: the curve); None where they say sRGB (an sRGB chunk, or
    a gAMA of 1/2.2 with sRGB's primaries or none, as encoders write beside an sRGB chunk), where there are
    none, and for a cICP chunk's HDR or linear curve (see ``colour_loss_notice``)."""
    found = dict(chunks)
    if b"cICP" in found:
        return nclx_icc_profile(_cicp_codes(found[b"cICP"]), "PNG cICP")
    gamma = _png_gamma(found.get(b"gAMA"))  # None: sRGB's curve
    chromaticities = None if grey else _png_chromaticities(found.get(b"cHRM"))
    srgb_curve = gamma is None or abs(gamma - 2.2) < _SRGB_GAMMA_TOLERANCE
    srgb_primaries = chromaticities is None or _alike(chromaticities, _SRGB_CHROMATICITIES)
    if b"sRGB" in found or (srgb_curve and srgb_primaries):
        return None
    curve = "sRGB curve" if gamma is None else f"gamma {gamma:.2f}"
    if grey:
        return icc.grey_profile(f"Grey, {curve} (from PNG gAMA)", gamma)
    primaries = "sRGB" if chromaticities is None else "cHRM"
    name = f"{primaries} primaries, {curve} (from PNG gAMA/cHRM)"
    return icc.matrix_profile(*(chromaticities or _SRGB_CHROMATICITIES), name, gamma)


def _coded_colour(photo: Photo) -> tuple[dict[str, Any], str, str] | None:
    """The photo's colour description by H.273 codes, what it is ("HEIF nclx", "PNG cICP") and the one format
    that holds it as it is: a HEIF's nclx box or a PNG's cICP chunk; None for neither."""
    if photo.nclx is not None:
        return photo.nclx, "HEIF nclx", "HEIF"
    cicp = dict(photo.png_colour).get(b"cICP")
    return None if cicp is None else (_cicp_codes(cicp), "PNG cICP", "PNG")


def hdr_curve(photo: Photo) -> str | None:
    """The HDR transfer curve (PQ or HLG) a HEIF's nclx colour description names, as Canon's and Sony's HDR
    HEIF do, or a PNG's cICP chunk; None for SDR photos."""
    coded = _coded_colour(photo)
    return None if coded is None else _HDR_TRANSFERS.get(coded[0].get("transfer_characteristics"))


@dataclass(frozen=True)
class SrgbConversion:
    """How colours in a profile that an output cannot hold become sRGB: ``convert`` takes [0, 1] floats
    (grey: any shape; RGB: H x W x 3) to sRGB's; None where LittleCMS cannot read or use the profile, and
    ``problem`` says why."""

    source: str  # the profile's description, "unreadable" where it cannot be read
    convert: Callable[[np.ndarray], np.ndarray] | None
    problem: str | None = None


def _srgb_encode(linear: np.ndarray) -> np.ndarray:
    """sRGB's [0, 1] values of linear light, clipped to [0, 1] (the colours past sRGB's gamut to its edge)."""
    linear = np.clip(linear, 0, 1)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


# Linear sRGB from D50 XYZ: the inverse of sRGB's colorants, adapted to D50 as a profile has them.
_SRGB_FROM_D50 = np.linalg.inv(icc.d50_colorants(*_SRGB_CHROMATICITIES))


def _shaper_to_srgb(shaper: icc.MatrixShaper, values: np.ndarray) -> np.ndarray:
    """[0, 1] values in a matrix/TRC profile (RGB: H x W x 3) or a grey one (any shape, each value through
    its curve) as sRGB's, in floating point: relative colorimetric, as LittleCMS has it for such profiles."""
    colorants, curves = shaper
    values = np.clip(values, 0, 1).astype(np.float32)
    if colorants is None:
        return _srgb_encode(curves[0](values))
    linear = np.stack([curve(values[..., channel]) for channel, curve in enumerate(curves)], axis=-1)
    return _srgb_encode(linear @ (_SRGB_FROM_D50 @ colorants).T.astype(np.float32))


def _littlecms_to_srgb(transform: ImageCms.ImageCmsTransform, rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 [0, 1] values as sRGB's through a LittleCMS transform of their 8-bit codes (Pillow's
    LittleCMS takes 8-bit RGB only)."""
    return UNIT_FLOATS_8[image_samples(ImageCms.applyTransform(Image.fromarray(quantise(rgb, 8)), transform))]


def _looked_up(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """[0, 1] values (any shape) as the [0, 1] values a table gives for their 8-bit codes."""
    codes = quantise(values, 8)
    return UNIT_FLOATS_8[cv2.LUT(codes, table).reshape(codes.shape)]


_CONVERSION_BAND_PIXELS = 1 << 20  # converted a band of rows at a time: memory for a few of its floats


def converted_in_bands(convert: Callable[[np.ndarray], np.ndarray], values: np.ndarray) -> np.ndarray:
    """``convert`` applied to H x W (x C) ``values`` a band of rows at a time, into one float32 array."""
    rows = max(1, _CONVERSION_BAND_PIXELS // max(1, values.shape[1]))
    converted = np.empty(values.shape, np.float32)
    for top in range(0, len(values), rows):
        converted[top : top + rows] = convert(values[top : top + rows])
    return converted


@functools.lru_cache(maxsize=8)
def srgb_conversion(profile: bytes) -> SrgbConversion | None:
    """How to convert colours in an ICC ``profile`` (grey or RGB) to sRGB; None where they are sRGB's already
    (no colour checked moves more than _SRGB_TOLERANCE). Matrix/TRC and grey profiles, photos' usual ones,
    are converted in floating point (``icc.matrix_shaper``); others by LittleCMS, on 8-bit codes."""
    try:
        opened = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        source = ImageCms.getProfileDescription(opened).strip() or "unnamed"
    except (OSError, ImageCms.PyCMSError) as error:
        return SrgbConversion("unreadable", None, first_line(error))
    grey = icc.colour_space(profile) == b"GRAY"
    shaper = icc.matrix_shaper(profile)
    convert: Callable[[np.ndarray], np.ndarray]
    if shaper is not None:
        convert = functools.partial(_shaper_to_srgb, shaper)
    else:  # a profile with lookup tables: grey, a table of every code's; RGB, its 8-bit codes
        output = ImageCms.ImageCmsProfile(io.BytesIO(icc.grey_profile("sRGB grey"))) if grey else _SRGB
        mode = "L" if grey else "RGB"
        # A table of 256 is made without LittleCMS's 8-bit shortcuts, which miss by 1.5 codes in the shadows.
        flags = _SRGB_FLAGS | (ImageCms.Flags.NOOPTIMIZE if grey else ImageCms.Flags.NONE)
        try:
            transform = ImageCms.buildTransform(opened, output, mode, mode, _SRGB_INTENT, flags)
        except ImageCms.PyCMSError as error:
            return SrgbConversion(source, None, first_line(error))
        if grey:
            table = np.asarray(ImageCms.applyTransform(Image.fromarray(_GREY_CODES[None]), transform))[0]
            convert = functools.partial(_looked_up, table)
        else:
            convert = functools.partial(_littlecms_to_srgb, transform)
    checked = _GREY_CODES if grey else _SRGB_CHECKED
    with np.errstate(all="ignore"):  # a damaged profile's curve: 0 to a negative power
        if problem := _damage(convert, grey):
            return SrgbConversion(source, None, problem)
        moved = np.abs(quantise(convert(UNIT_FLOATS_8[checked]), 8).astype(np.int16) - checked).max()
    return None if moved <= _SRGB_TOLERANCE else SrgbConversion(source, convert)


_LEAST_CONVERTED_CONTRAST = 0.25  # how much lighter than black a profile's white must be in sRGB


def _damage(convert: Callable[[np.ndarray], np.ndarray], grey: bool) -> str | None:
    """Why a profile's conversion to sRGB shows a damaged profile (a tone curve of gamma 0 or below, colorants
    of nothing), which would turn every photo in it into one flat colour: its white is not lighter than its
    black in sRGB (by ``_LEAST_CONVERTED_CONTRAST``), or its greys are no numbers; None where it is."""
    greys = UNIT_FLOATS_8 if grey else np.repeat(UNIT_FLOATS_8[None, :, None], 3, axis=2)
    lightness = convert(greys).reshape(len(UNIT_FLOATS_8), -1).mean(axis=1)
    if np.isfinite(lightness).all() and lightness[-1] - lightness[0] >= _LEAST_CONVERTED_CONTRAST:
        return None
    return "it is damaged: its greys do not go from dark to light"


# Why a format cannot hold a grey photo as grey, where it cannot: its pixels are written as RGB (R = G = B)
_NO_GREY_MODE = {"WEBP": "it has no grey mode"}
_NO_GREY_MODE_WITH_ALPHA = {"AVIF": "grey with transparency goes in as RGB"}


# A 16-bit grey-with-alpha TIFF is valid, but Pillow does not open it, OpenCV drops its alpha and recnet
# reads it as an unsupported pixel type: RGBA holds it whole, and they all read that.
_NO_DEEP_GREY_WITH_ALPHA = {"TIFF": "16-bit grey with transparency goes in as RGB, which readers open"}


def no_grey_mode(photo: Photo, output_format: str) -> str | None:
    """Why a grey photo is written as RGB in ``output_format`` (WebP; AVIF with transparency; a 16-bit TIFF
    with transparency), else None."""
    if not photo.grayscale:
        return None
    if why := _NO_GREY_MODE.get(output_format):
        return why
    if photo.alpha is None:
        return None
    deep = written_bits(photo.bit_depth, output_format) == 16
    return _NO_GREY_MODE_WITH_ALPHA.get(output_format) or (
        _NO_DEEP_GREY_WITH_ALPHA.get(output_format) if deep else None
    )


def written_in_grey_mode(photo: Photo, output_format: str) -> bool:
    """Whether the photo is written in a grey mode: a grey one, but where the format has none for it (its
    grey is then written as RGB, R = G = B)."""
    return photo.grayscale and no_grey_mode(photo, output_format) is None


def _icc_profile_rules(photo: Photo) -> bool:
    """Whether the photo's own ICC profile says what its colours are: not beside a PNG's cICP chunk of an SDR
    curve, which the PNG specification (3rd edition) puts first (cICP, then iCCP, then sRGB, then gAMA and
    cHRM). Beside an HDR or linear cICP, which no output profile can say, the iCCP is the file's own
    fallback for readers that do not know cICP, as viewers of the other formats are: it goes instead."""
    cicp = dict(photo.png_colour).get(b"cICP")
    sdr_cicp = cicp is not None and _cicp_codes(cicp)["transfer_characteristics"] in _SRGB_LIKE_TRANSFERS
    return bool(photo.icc_profile) and not sdr_cicp


def _colour_profile(photo: Photo, output_format: str) -> bytes | None:
    """The ICC profile that says what the photo's colours are, for an output in ``output_format``: its own
    (a PNG output's iCCP as it came, beside its cICP chunk), or one that says what a HEIF's nclx colour
    description or a PNG's colour chunks say where the output does not keep those as they are; None where
    nothing says other than sRGB, and for a profile of another colour space than the photo's pixels (RGB for
    grey pixels, CMYK)."""
    profile = (
        (photo.icc_profile if output_format == "PNG" or _icc_profile_rules(photo) else None)
        or (None if output_format == "HEIF" else nclx_icc_profile(photo.nclx))
        or (None if output_format == "PNG" else png_colour_profile(photo.png_colour, photo.grayscale))
        or exif_colour_profile(photo.exif)
    )
    return _profile_for(profile, photo.grayscale)


# A camera set to Adobe RGB writes no ICC profile: its EXIF says so, as the DCF standard has it for such
# "option files" (ColorSpace uncalibrated, 0xFFFF, and InteropIndex R03), which Lightroom and Photoshop read.
# Its outputs get the profile, which every viewer reads (browsers do not read the EXIF), and a BMP's colours
# are converted from it. Adobe RGB (1998): these primaries, D65, and a gamma of 563/256.
_ADOBE_RGB = ([(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)], (0.3127, 0.3290))
_UNCALIBRATED, _ADOBE_RGB_OPTION_FILE = 0xFFFF, "R03"


def exif_colour_profile(exif: bytes | None) -> bytes | None:
    """An Adobe RGB profile for a photo whose EXIF says it is Adobe RGB (a DCF option file: see
    ``_ADOBE_RGB``), else None."""
    if not exif:
        return None
    tags = Image.Exif()
    try:
        tags.load(exif)
        colour_space = tags.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.ColorSpace)
        index = tags.get_ifd(ExifTags.IFD.Interop).get(ExifTags.Interop.InteropIndex)
    except Exception:  # a damaged block: Pillow's parser raises any kind on bad bytes
        return None
    return _adobe_rgb_profile() if colour_space == _UNCALIBRATED and index == _ADOBE_RGB_OPTION_FILE else None


@functools.cache
def _adobe_rgb_profile() -> bytes:
    return icc.matrix_profile(*_ADOBE_RGB, "Compatible with Adobe RGB (1998) (from EXIF)", 563 / 256)


def output_colour(photo: Photo, output_format: str) -> tuple[bytes | None, SrgbConversion | None]:
    """The ICC profile an output in ``output_format`` gets, or how its colours are converted to sRGB where it
    cannot hold their profile (BMP; a grey photo's in WebP), which viewers take it for; (None, None) when its
    colours are sRGB's, or nothing says what they are."""
    profile = _colour_profile(photo, output_format)
    # a grey photo written as RGB: a grey profile cannot say its colours
    grey_as_rgb = photo.grayscale and not written_in_grey_mode(photo, output_format)
    if profile is None or (output_format in ICC_FORMATS and not grey_as_rgb):
        return profile, None
    return None, srgb_conversion(profile)


def shown_in_srgb(photo: Photo, pixels: np.ndarray) -> np.ndarray:
    """H x W x 3 ``pixels`` in the photo's colours (its own, or its correction's) as sRGB's, for the pictures
    recnet draws of it (report previews, masks, explain sheets), which carry no colour profile, so viewers
    take their colours for sRGB: converted as for a BMP output, which holds none either; as they are where
    they are sRGB's already, or their profile cannot be converted."""
    _, conversion = output_colour(photo, "BMP")
    if conversion is None or conversion.convert is None:
        return pixels
    return converted_in_bands(conversion.convert, pixels)


def colour_loss_notice(photo: Photo, output_format: str) -> str | None:
    """What the user should know of the photo's colours in an output in ``output_format``: that they were
    converted to sRGB, or could not be, where it cannot hold their profile (``output_colour``); or that it
    loses their description by H.273 codes (``_coded_colour_loss_notice``); None when nothing that shows
    changes."""
    _, conversion = output_colour(photo, output_format)
    if conversion is None:
        return _coded_colour_loss_notice(photo, output_format)
    name = FORMAT_NAMES[output_format][0]
    if why := no_grey_mode(photo, output_format):  # a grey photo's pixels go in as RGB
        this = "this " if output_format in _NO_DEEP_GREY_WITH_ALPHA else ""  # TIFF holds grey profiles
        lacks = f"{this}{name} holds no grey colour profile ({why})"
    else:
        lacks = f"{name} holds no colour profile"
    # PNG, and TIFF but for a 16-bit grey photo with transparency, which goes into it as RGB
    keepers = [
        kind for kind in ("PNG", "TIFF") if kind != output_format and output_colour(photo, kind)[1] is None
    ]
    keeps = f"{in_words(keepers, 'or')} keeps the profile"
    if conversion.convert is not None:
        return f"{lacks}: converted from {conversion.source} to sRGB; {keeps}"
    return (
        f"{lacks}, and its own ({conversion.source}) cannot be converted to sRGB ({conversion.problem}), so "
        f"viewers will take its colours for sRGB; {keeps}"
    )


def _coded_colour_loss_notice(photo: Photo, output_format: str) -> str | None:
    """What an output in ``output_format`` loses of a colour description by H.273 codes (a HEIF's nclx box, a
    PNG's cICP chunk) that only its own format holds as such and an ICC profile only in part (non-sRGB
    primaries with an HDR or linear curve), where no ICC profile of the photo's says its colours instead; None
    when nothing that shows is lost."""
    coded = _coded_colour(photo)
    if coded is None or _icc_profile_rules(photo):
        return None
    codes, described_as, keeper = coded
    if output_format == keeper or _matrix_chromaticities(codes) is not None:
        return None
    primaries, transfer = codes.get("color_primaries"), codes.get("transfer_characteristics")
    described = []
    if primaries not in _SRGB_LIKE_PRIMARIES:
        described.append(f"{_PRIMARIES_NAMES.get(primaries, primaries)} primaries")
    if transfer not in _SRGB_LIKE_TRANSFERS:
        described.append(f"{_TRANSFER_NAMES.get(transfer, transfer)} transfer curve")
    if not described:
        return None
    return (
        f"its colour description ({described_as}: {', '.join(described)}) cannot go into "
        f"{FORMAT_NAMES[output_format][0]}, so viewers will take its colours for sRGB; "
        f"--ext {FORMAT_NAMES[keeper][1]} keeps it"
    )


def _profile_for(icc_profile: bytes | None, grayscale: bool) -> bytes | None:
    """The profile if it describes the written colour space (grey or RGB), else None."""
    written = b"GRAY" if grayscale else b"RGB "
    return icc_profile if icc_profile and icc.colour_space(icc_profile) == written else None


@functools.lru_cache(maxsize=8)
def _cmyk_to_srgb(profile: bytes) -> ImageCms.ImageCmsTransform:
    """LittleCMS's transform of 8-bit CMYK in ``profile`` to sRGB (shared by the reader threads: it keeps no
    cache); ValueError saying why where there is none."""
    try:
        opened = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    except (OSError, ImageCms.PyCMSError):
        raise ValueError("is damaged (LittleCMS cannot read it)") from None
    space = icc.colour_space(profile).decode("latin-1").strip()
    if space != "CMYK":
        raise ValueError(f"is for {space}, not CMYK")
    try:
        return ImageCms.buildTransform(opened, _SRGB, "CMYK", "RGB", _SRGB_INTENT, _CMYK_FLAGS)
    except ImageCms.PyCMSError as error:
        raise ValueError(f"LittleCMS cannot use ({first_line(error)})") from None


def cmyk_as_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    """An 8-bit CMYK picture as sRGB through its ICC profile (LittleCMS); without a profile it can use,
    Pillow's plain conversion and why (``Photo.uncalibrated_cmyk``). Pillow hands over an Adobe JPEG's
    inverted CMYK turned the right way round, as LittleCMS takes it (0: no ink)."""
    profile = image.info.get("icc_profile")
    if not profile:
        return image.convert("RGB"), "without a colour profile"
    try:
        transform = _cmyk_to_srgb(profile)
    except ValueError as problem:
        return image.convert("RGB"), f"whose colour profile {problem}"
    return ImageCms.applyTransform(image, transform), None
