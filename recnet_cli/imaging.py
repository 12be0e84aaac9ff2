"""Reading and writing photos with their metadata: the file-system edge of recnet.

JPEG, PNG, TIFF, WebP and BMP always; AVIF where Pillow was built with it (its wheels are); HEIF (.heic,
.heif, .hif: iPhones, Fujifilm cameras) where the optional pillow-heif is installed (``pip install
pillow-heif``), whose Pillow plugin recnet registers on first use.

The model sees float32 RGB in [0, 1]. Everything else a photographer cares about travels beside the pixels and
is written back: bit depth (16-bit PNG/TIFF stay 16-bit; 10- and 12-bit HEIF are written as 10-bit HEIF or
16-bit PNG/TIFF), a HEIF's chroma subsampling (Fujifilm's 4:2:2 stays 4:2:2), alpha (untouched, same depth),
EXIF (orientation applied to the pixels on read, written as 1 in place: the rest of the block, maker notes
included, is kept byte for byte, but for the link to the thumbnail of the uncorrected photo), the ICC profile
(or a HEIF's nclx colour description, or a PNG's gAMA, cHRM, sRGB and cICP chunks: as they are to outputs in
their own format, as an ICC profile to others where one can say it; where an output cannot hold the profile,
BMP, the colours are converted to sRGB), the DPI and the XMP packet (ratings, keywords, captions; its
orientation written as 1 too), with the extended XMP that a JPEG's packet names (what did not fit in its
64 KB segment) to JPEG outputs.

Grayscale photos stay grayscale: the model sees the grey replicated to RGB and the corrected result is
written as grey again (ITU-R 601 luma, as Pillow's "L" conversion), except to WebP, which has no grey
mode. Palette and CMYK photos are written as RGB. A CMYK photo's colours (a print workflow's JPEG or TIFF)
are converted to sRGB through its ICC profile (U.S. Web Coated SWOP, Coated FOGRA39...) by LittleCMS as it
is read, so the model sees the colours the print shows, and the output is sRGB; one without a profile, or
with one LittleCMS cannot use, gets Pillow's plain conversion (R = 255 - C - K...), uncalibrated, with a
note (``Photo.uncalibrated_cmyk_notice``). 16-bit CMYK TIFFs are refused.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import importlib.util
import io
import math
import os
import re
import stat
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import cv2
import numpy as np
from PIL import Image, ImageCms, TiffImagePlugin, TiffTags
from PIL.TiffImagePlugin import (
    BITSPERSAMPLE,
    COMPRESSION,
    EXTRASAMPLES,
    IMAGELENGTH,
    IMAGEWIDTH,
    PHOTOMETRIC_INTERPRETATION,
    PLANAR_CONFIGURATION,
    PREDICTOR,
    ROWSPERSTRIP,
    SAMPLEFORMAT,
    SAMPLESPERPIXEL,
    STRIPBYTECOUNTS,
    STRIPOFFSETS,
    TILEBYTECOUNTS,
    TILELENGTH,
    TILEOFFSETS,
    TILEWIDTH,
)

from recnet_cli import icc
from recnet_cli.atomicfile import atomic_file
from recnet_cli.exif_block import (
    EXIF_HEADER,
    ORIENTATION,
    edited_exif,
    entry_tag,
    first_directory,
    in_block,
    sized_exif,
)
from recnet_cli.hostmemory import physical_memory

# OpenCV logs what it makes of damaged files to stderr ("readHeader IHDR chunk shall be first"); recnet
# says in one line of its own which file is damaged and why.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
# Pillow warns about images between MAX_IMAGE_PIXELS and twice that (above, it raises) and about damaged
# metadata; neither may stop or clutter a batch. The filter is set once for the process: a
# ``catch_warnings`` around each read is not thread-safe, and a GPU batch reads several photos at once
# (threads leaving it out of order left "ignore all warnings" behind for the whole process).
warnings.filterwarnings("ignore", module=r"PIL\.")
# Pillow refuses images over twice MAX_IMAGE_PIXELS (179 MP) as possible decompression bombs, but a 240 MP
# pixel-shift photo or a stitched panorama is no bomb, and the model runs at any size. recnet refuses
# instead what this machine could not hold even as the model's float32 pixels (``_check_size``), where it
# knows its memory.
MACHINE_MEMORY = physical_memory()
if MACHINE_MEMORY is not None:
    Image.MAX_IMAGE_PIXELS = None
DECODED_BYTES_PER_PIXEL = 12  # float32 RGB
T = TypeVar("T")

HEIF_EXTENSIONS = (".heic", ".heif", ".hif")
HEIF_SUPPORTED = importlib.util.find_spec("pillow_heif") is not None
_INSTALL_HEIF = "pip install pillow-heif"
AVIF_SUPPORTED = importlib.util.find_spec("PIL._avif") is not None  # Pillow 11.2+ wheels have it
_FORMAT_BY_EXTENSION = (
    {
        ".jpg": "JPEG",
        ".jpeg": "JPEG",
        ".jfif": "JPEG",
        ".jpe": "JPEG",
        ".png": "PNG",
        ".tif": "TIFF",
        ".tiff": "TIFF",
        ".webp": "WEBP",
        ".bmp": "BMP",
    }
    | ({".avif": "AVIF"} if AVIF_SUPPORTED else {})
    | (dict.fromkeys(HEIF_EXTENSIONS, "HEIF") if HEIF_SUPPORTED else {})
)
IMAGE_EXTENSIONS = tuple(_FORMAT_BY_EXTENSION)
# Each format's name in messages, and the extension --ext and messages give for it.
_FORMAT_NAMES = {
    "JPEG": ("JPEG", "jpg"),
    "PNG": ("PNG", "png"),
    "TIFF": ("TIFF", "tif"),
    "WEBP": ("WebP", "webp"),
    "BMP": ("BMP", "bmp"),
    "AVIF": ("AVIF", "avif"),
    "HEIF": ("HEIF", "heic"),
}


def _in_words(items: list[str], conjunction: str) -> str:
    """'a, b and c'; 'a'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


_FORMATS = list(dict.fromkeys(_FORMAT_BY_EXTENSION.values()))
READABLE = "recnet reads " + _in_words([_FORMAT_NAMES[f][0] for f in _FORMATS], "and")
OUTPUT_EXTENSIONS = [_FORMAT_NAMES[f][1] for f in _FORMATS]  # what --ext takes
OUTPUT_CHOICES = _in_words(OUTPUT_EXTENSIONS, "or")
# Photo files that need converting first. Camera RAW is checked by name before opening: DNG, NEF, CR2, ARW
# and PEF files start with TIFF's signature, and Pillow would give their first image, usually a preview.
_RAW_EXTENSIONS = frozenset(
    {".3fr", ".arw", ".cr2", ".cr3", ".crw", ".dng", ".erf", ".iiq", ".kdc", ".mos", ".mrw", ".nef", ".nrw"}
    | {".orf", ".pef", ".raf", ".rw2", ".sr2", ".srf", ".srw", ".x3f"}
)
_CONVERT_FIRST = dict.fromkeys(_RAW_EXTENSIONS, "a camera RAW file: convert it to TIFF or JPEG first") | (
    {}
    if HEIF_SUPPORTED
    else dict.fromkeys(
        HEIF_EXTENSIONS,
        f"an HEIF photo: install pillow-heif to read it ({_INSTALL_HEIF}), or convert it to JPEG",
    )
)
SUPPORTED_FORMATS = frozenset(_FORMAT_BY_EXTENSION.values())
SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})
# A photo of more than 8 bits per sample is written at 16 bits in PNG and TIFF, and in HEIF at 10: HEVC Main
# 10, what cameras write and every HEIF reader decodes (Main 12 is not).
_DEEP_OUTPUT_BITS = {"PNG": 16, "TIFF": 16, "HEIF": 10}
ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP", "AVIF", "HEIF"})
ICC_FORMATS = _XMP_FORMATS = SUPPORTED_FORMATS - {"BMP"}  # BMP holds neither
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
# The largest pictures some formats hold, smaller than the photos recnet reads can be: libjpeg's
# JPEG_MAX_DIMENSION, WebP's 14-bit sizes, and what libavif decodes by default (its encoder goes further,
# but Pillow and most viewers could not open the file). BMP and (classic) TIFF files have 32-bit offsets.
_MAX_SIDE = {"JPEG": 65500, "WEBP": 16383, "AVIF": 32768}
_MAX_PIXELS = {"AVIF": 16384 * 16384}
_MAX_FILE_BYTES = 2**32 - 1
_BMP_HEADERS = 14 + 40 + 256 * 4  # file and info headers, and a greyscale picture's palette
_LARGE_FORMATS = "write PNG or TIFF instead"

# TIFF's and EXIF's resolution tags, and the units ResolutionUnit gives
_X_RESOLUTION, _Y_RESOLUTION, _RESOLUTION_UNIT, _INCH, _CENTIMETRE = 282, 283, 296, 2, 3
# A TIFF's first directory doubles as its EXIF, but these tags in it are not to be copied as EXIF: those
# that describe the file's own pixel storage; the ICC profile, XMP and IPTC, which recnet carries on their
# own; and Photoshop's image resources and layers, which describe the uncorrected pixels.
_NOT_EXIF_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325}
    | {330, 338, 339, 513, 514, 700, 33723, 34377, 34675, 37724}
)
# Pillow's modes mapped to the ones read_photo keeps: grey or RGB, with or without alpha.
_PILLOW_CONVERSIONS = {
    "1": "L",
    "P": "RGB",
    "La": "LA",
    "PA": "RGBA",
    "RGBa": "RGBA",
    "RGBX": "RGB",
    "CMYK": "RGB",  # through its profile, where it has one LittleCMS can use: _cmyk_as_rgb
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
}
# The same for a picture with a transparent colour or palette entries (a PNG's tRNS chunk): with alpha.
_TRANSPARENT_CONVERSIONS = {"1": "LA", "L": "LA", "P": "RGBA", "RGB": "RGBA"}
_LOW_BIT_GREY_PEAKS = {"L;2": 3, "L;4": 15}  # a 2- or 4-bit grey PNG's largest code, by Pillow's raw mode
_GREY_MODES = frozenset({"L", "LA", "I;16", "I;16L", "I;16B", "I;16N"})
_READABLE_MODES = _GREY_MODES | {"RGB", "RGBA"} | _PILLOW_CONVERSIONS.keys()
_READABLE_FORMATS = SUPPORTED_FORMATS | {"MPO"}  # cameras' JPEGs with extra pictures open as MPO
BT601_LUMA = (0.299, 0.587, 0.114)  # grey from RGB, as JPEG and Pillow's convert("L") weigh it
_UNIT_FLOATS_8 = np.arange(256, dtype=np.float32) / 255  # each 8-bit code as a float in [0, 1]
_ORIENTATIONS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}
# XMP's copy of the orientation, as an attribute or an element (the forms Pillow's exif_transpose knows).
_XMP_ORIENTATIONS = (
    (re.compile(rb'tiff:Orientation="[0-9]"'), b'tiff:Orientation="1"'),
    (re.compile(rb"<tiff:Orientation>[0-9]</tiff:Orientation>"), b"<tiff:Orientation>1</tiff:Orientation>"),
)
# What a JPEG holds of each metadata block: one header segment, less its header: none for EXIF ("Exif\0\0"
# counts), "http://ns.adobe.com/xap/1.0/\0" for XMP, and for IPTC-IIM "Photoshop 3.0\0", a resource's header
# and its padding byte. (The extended XMP a JPEG's packet names goes to JPEG outputs in segments of its own.)
_JPEG_SEGMENT_LIMITS = {"EXIF": 65533, "XMP": 65533 - 29, "IPTC record": 65533 - 14 - 12 - 1}
_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\0"
_RAW_XMP = "Raw profile type xmp"  # a PNG text chunk that holds XMP in hex (ImageMagick, Krita)
# Extended XMP (XMP specification part 3, 1.1.3.1): what a JPEG's XMP holds past its 64 KB segment, in APP1
# segments that each start with this header, the GUID the standard packet names it by (xmpNote:HasExtendedXMP;
# the MD5 of the extended XMP in 32 hex digits), its full length and the portion's offset, 4 bytes each.
_XMP_EXTENSION_HEADER = b"http://ns.adobe.com/xmp/extension/\0"
_XMP_EXTENSION_PREFIX = len(_XMP_EXTENSION_HEADER) + 32 + 4 + 4
_XMP_EXTENSION_PORTION = 65000  # bytes of extended XMP a segment holds, as Adobe's XMP toolkit writes them
# The GUID in the packet's xmpNote:HasExtendedXMP, an attribute or an element.
_HAS_EXTENDED_XMP = re.compile(rb"HasExtendedXMP\s*(?:=\s*[\"']|>)\s*([0-9A-Fa-f]{32})")
# The largest resolution each format stores: JFIF's 16-bit dots per inch, PNG's and BMP's 31-bit pixels
# per metre (a scanner's or microscope's TIFF may say more).
_MAX_DPI = {"JPEG": 65535, "PNG": (2**31 - 1) * 0.0254, "BMP": (2**31 - 1) * 0.0254}
_IPTC_RESOURCE = 0x0404  # Photoshop image resource "IPTC-NAA record"
_IPTC_TAG = 33723  # TIFF tag IPTC-NAA
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIGNATURES = (b"\xff\xd8\xff", _PNG_SIGNATURE, b"II*\0", b"MM\0*", b"BM")  # WebP: RIFF....WEBP
# HEIF: ....ftypheic and the other brands of HEVC-coded HEIF still images and sequences; AVIF: ....ftypavif.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_PNG_BAND_BYTES = 1 << 24  # rows filtered and compressed at a time
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey+alpha, RGB, RGBA


class PhotoFileError(Exception):
    """A photo that cannot be read or written; str() is one line naming the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = Path(path)
        self.reason = reason


class ImageReadError(PhotoFileError):
    """An input that is missing, unreadable, corrupt, too large or not a supported image."""


class ImageWriteError(PhotoFileError):
    """An output that cannot be written (unsupported format, permissions, full disk...); ``errno`` is the
    system's error number when the system refused."""

    def __init__(self, path: str | os.PathLike[str], reason: str, errno: int | None = None) -> None:
        super().__init__(path, reason)
        self.errno = errno


class OutputExistsError(ImageWriteError):
    """A file at an output's path, found as the output was about to take its name (without ``overwrite``:
    one made since the run checked, by another program or the user)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, "exists (use --overwrite)", errno.EEXIST)


@dataclass(frozen=True)
class Metadata:
    """What an output carries: EXIF (orientation 1), the ICC profile, the resolution, XMP (ratings,
    keywords, captions; orientation 1) and its extended XMP (JPEG only), the IPTC-IIM record (captions,
    credits; JPEG and TIFF only), a HEIF's nclx colour description and chroma subsampling (HEIF only) and a
    PNG's colour chunks (PNG only)."""

    exif: bytes | None = None
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    xmp: bytes | None = None
    iptc: bytes | None = None
    nclx: dict[str, Any] | None = None  # a HEIF's colour description where it has no ICC profile
    chroma: int | None = None  # a HEIF's chroma subsampling (420, 422, 444); None: the encoder's 4:2:0
    extended_xmp: bytes | None = None  # what the XMP packet holds past a JPEG's segment (HasExtendedXMP)
    png_colour: tuple[tuple[bytes, bytes], ...] = ()  # a PNG's cICP, sRGB, gAMA and cHRM chunks: (type, data)


@dataclass
class Photo:
    """A decoded photo: RGB pixels for the model plus everything needed to write it back faithfully."""

    pixels: np.ndarray  # H x W x 3 float32 RGB in [0, 1], orientation applied
    alpha: np.ndarray | None  # H x W, uint8 or uint16 like the source (uint16 for 10- or 12-bit HEIF)
    bit_depth: int  # bits per sample: 8 or 16, or 10 or 12 (HEIF)
    grayscale: bool
    exif: bytes | None  # with orientation 1 and the pixels' size; None when the source had no EXIF
    icc_profile: bytes | None
    dpi: tuple[float, float] | None
    source_format: str  # Pillow's name: "JPEG", "PNG", "TIFF", "WEBP", "BMP", "AVIF", "HEIF"
    frames: int = 1  # pages of a TIFF, frames of an animated PNG or WebP: only the first is read
    xmp: bytes | None = None  # the XMP packet, with orientation 1; None when the source had none
    extended_xmp: bytes | None = None  # a JPEG's extended XMP, which its packet names, with orientation 1
    iptc: bytes | None = None  # the IPTC-IIM record of a JPEG or TIFF (what Photo Mechanic, Bridge write)
    nclx: dict[str, Any] | None = None  # a HEIF's colour description (primaries, transfer) in place of ICC
    chroma: int | None = None  # a colour HEIF's chroma subsampling: 420, 422 (Fujifilm) or 444
    damaged_metadata: tuple[str, ...] = ()  # what could not be read ("EXIF"), and is not copied
    png_colour: tuple[tuple[bytes, bytes], ...] = ()  # a PNG's cICP, sRGB, gAMA and cHRM chunks: (type, data)
    # why a CMYK photo's colours were converted without its profile ("without a colour profile")
    uncalibrated_cmyk: str | None = None

    @property
    def megapixels(self) -> float:
        return self.pixels.shape[0] * self.pixels.shape[1] / 1e6

    @property
    def unread_frames_notice(self) -> str | None:
        """What the user should know when the file holds more pictures than the one read."""
        if self.frames == 1:
            return None
        kind = "pages" if self.source_format == "TIFF" else "frames"
        return f"has {self.frames} {kind}; only the first is used"

    @property
    def damaged_metadata_notice(self) -> str | None:
        """What the user should know when some of the file's metadata was damaged and is not copied."""
        if not self.damaged_metadata:
            return None
        names = list(self.damaged_metadata)
        verb, pronoun = ("are", "them") if len(names) > 1 else ("is", "it")
        return f"its {_in_words(names, 'and')} {verb} damaged: the output goes without {pronoun}"

    @property
    def uncalibrated_cmyk_notice(self) -> str | None:
        """What the user should know when a CMYK photo's colours were converted without its profile."""
        if self.uncalibrated_cmyk is None:
            return None
        converted = "its colours were converted to RGB uncalibrated, and may be off"
        return f"a CMYK photo {self.uncalibrated_cmyk}: {converted}"

    def reading_notices(self, metadata: bool = True) -> list[str]:
        """What the user should know of how the file was read: of its unread frames, of its damaged
        metadata (left out with ``metadata=False``, for a reader that copies none) and of CMYK colours
        converted without their profile."""
        damaged = self.damaged_metadata_notice if metadata else None
        return [n for n in (self.unread_frames_notice, damaged, self.uncalibrated_cmyk_notice) if n]


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
# (pillow-heif gives a HEIF's nclx chromaticities itself).
_PRIMARIES_CHROMATICITIES: dict[int, Chromaticities] = {
    1: ([(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)], _D65),
    5: ([(0.64, 0.33), (0.29, 0.60), (0.15, 0.06)], _D65),
    6: ([(0.63, 0.34), (0.31, 0.595), (0.155, 0.07)], _D65),
    7: ([(0.63, 0.34), (0.31, 0.595), (0.155, 0.07)], _D65),
    9: ([(0.708, 0.292), (0.17, 0.797), (0.131, 0.046)], _D65),
    11: ([(0.68, 0.32), (0.265, 0.69), (0.15, 0.06)], (0.314, 0.351)),
    12: ([(0.68, 0.32), (0.265, 0.69), (0.15, 0.06)], _D65),
    22: ([(0.63, 0.34), (0.295, 0.605), (0.155, 0.077)], _D65),
}
_SRGB_CHROMATICITIES = _PRIMARIES_CHROMATICITIES[1]
# A PNG's colour chunks, by the sizes the PNG specification gives: cICP holds the H.273 codes (primaries,
# transfer curve, matrix, full range), sRGB a rendering intent, gAMA the encoding exponent and cHRM the
# white's and primaries' chromaticities (x 100,000).
_PNG_COLOUR_CHUNKS = {b"cICP": 4, b"sRGB": 1, b"gAMA": 4, b"cHRM": 32}
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
    """The primaries and white a cHRM chunk gives; None without one, or for one that no RGB space has (a y
    of 0, primaries in a line: a damaged chunk)."""
    if chrm is None:
        return None
    white_x, white_y, *primaries = (value / 100000 for value in struct.unpack(">8I", chrm))
    chromaticities = [(primaries[at], primaries[at + 1]) for at in (0, 2, 4)], (white_x, white_y)
    try:
        valid = bool(np.isfinite(icc.rgb_to_xyz(*chromaticities)).all())
    except (ZeroDivisionError, np.linalg.LinAlgError):
        valid = False
    return chromaticities if valid else None


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
    encoding = struct.unpack(">I", found[b"gAMA"])[0] / 100000 if b"gAMA" in found else 0
    gamma = 1 / encoding if encoding > 0 else None  # None: sRGB's curve
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
_SRGB_FROM_D50 = np.linalg.inv(
    icc.bradford_adaptation(icc.xyz_of(*_D65)) @ icc.rgb_to_xyz(*_SRGB_CHROMATICITIES)
)


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
    return _UNIT_FLOATS_8[np.asarray(ImageCms.applyTransform(Image.fromarray(_quantise(rgb, 8)), transform))]


def _looked_up(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """[0, 1] values (any shape) as the [0, 1] values a table gives for their 8-bit codes."""
    codes = _quantise(values, 8)
    return _UNIT_FLOATS_8[cv2.LUT(codes, table).reshape(codes.shape)]


_CONVERSION_BAND_PIXELS = 1 << 20  # converted a band of rows at a time: memory for a few of its floats


def _converted_in_bands(convert: Callable[[np.ndarray], np.ndarray], values: np.ndarray) -> np.ndarray:
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
    moved = np.abs(_quantise(convert(_UNIT_FLOATS_8[checked]), 8).astype(np.int16) - checked).max()
    return None if moved <= _SRGB_TOLERANCE else SrgbConversion(source, convert)


def _written_grey(photo: Photo, output_format: str) -> bool:
    """Whether the photo is written as grey: a grey one, but to WebP, which has no grey mode."""
    return photo.grayscale and output_format != "WEBP"


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
    )
    return _profile_for(profile, photo.grayscale)


def _output_colour(photo: Photo, output_format: str) -> tuple[bytes | None, SrgbConversion | None]:
    """The ICC profile an output in ``output_format`` gets, or how its colours are converted to sRGB where it
    cannot hold their profile (BMP; a grey photo's in WebP), which viewers take it for; (None, None) when its
    colours are sRGB's, or nothing says what they are."""
    profile = _colour_profile(photo, output_format)
    grey_as_rgb = photo.grayscale and not _written_grey(photo, output_format)  # a grey profile cannot say it
    if profile is None or (output_format in ICC_FORMATS and not grey_as_rgb):
        return profile, None
    return None, srgb_conversion(profile)


def colour_loss_notice(photo: Photo, output_format: str) -> str | None:
    """What the user should know of the photo's colours in an output in ``output_format``: that they were
    converted to sRGB, or could not be, where it cannot hold their profile (``_output_colour``); or that it
    loses their description by H.273 codes (``_coded_colour_loss_notice``); None when nothing that shows
    changes."""
    _, conversion = _output_colour(photo, output_format)
    if conversion is None:
        return _coded_colour_loss_notice(photo, output_format)
    name = _FORMAT_NAMES[output_format][0]
    if output_format in ICC_FORMATS:  # but a grey photo's pixels go in as RGB: WebP
        lacks = f"{name} holds no grey colour profile (it has no grey mode)"
    else:
        lacks = f"{name} holds no colour profile"
    if conversion.convert is not None:
        return f"{lacks}: converted from {conversion.source} to sRGB; PNG or TIFF keeps the profile"
    return (
        f"{lacks}, and its own ({conversion.source}) cannot be converted to sRGB ({conversion.problem}), so "
        "viewers will take its colours for sRGB; PNG or TIFF keeps the profile"
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
        f"{_FORMAT_NAMES[output_format][0]}, so viewers will take its colours for sRGB; "
        f"--ext {_FORMAT_NAMES[keeper][1]} keeps it"
    )


def _blocks(photo: Photo) -> dict[str, bytes | None]:
    return {"EXIF": photo.exif, "XMP": photo.xmp, "IPTC record": photo.iptc}


def left_out(photo: Photo, output_format: str) -> list[str]:
    """The photo's metadata that a file in ``output_format`` cannot hold ("XMP", "resolution"): every block
    in a BMP, which holds none; a block over a JPEG's 64 KB segment (Photoshop's document history can make
    XMP that long); a resolution past what the format stores."""
    holds_no_metadata = output_format not in _XMP_FORMATS  # BMP
    names = [
        name
        for name, block in _blocks(photo).items()
        if block
        and (holds_no_metadata or (output_format == "JPEG" and len(block) > _JPEG_SEGMENT_LIMITS[name]))
    ]
    if photo.dpi and max(photo.dpi) > _MAX_DPI.get(output_format, math.inf):
        names.append("resolution")
    return names


def _exif_holds_resolution(exif: bytes | None, dpi: tuple[float, float] | None) -> bool:
    """Whether an EXIF block's first directory gives the resolution ``dpi`` (XResolution, YResolution: a
    fraction of any size), which goes into a JPEG with it where the JFIF header's 16-bit density cannot."""
    tags = Image.Exif()
    try:
        tags.load(exif or b"")
        x, y, unit = float(tags[_X_RESOLUTION]), float(tags[_Y_RESOLUTION]), tags.get(_RESOLUTION_UNIT, _INCH)
    except Exception:  # none, or damaged: Pillow's EXIF parser raises any kind
        return False
    per_inch = {_INCH: 1, _CENTIMETRE: 2.54}.get(unit)
    return (
        dpi is not None
        and per_inch is not None
        and all(math.isclose(a * per_inch, b, rel_tol=1e-6) for a, b in zip((x, y), dpi, strict=True))
    )


def metadata_loss_notice(photo: Photo, output_format: str) -> str | None:
    """What the user should know of the metadata an output in ``output_format`` goes without; None when
    all of it goes."""
    names = left_out(photo, output_format)
    if output_format == "JPEG" and "EXIF" not in names and _exif_holds_resolution(photo.exif, photo.dpi):
        names = [name for name in names if name != "resolution"]
    if not names:
        return None
    sizes = {name: f"{len(block) / 1024:.0f} KB" for name, block in _blocks(photo).items() if block}
    sizes["resolution"] = f"{max(photo.dpi or (0,)):,.0f} dpi"
    what = _in_words([f"{name} ({sizes[name]})" for name in names], "and")
    them = "them" if len(names) > 1 else "it"
    keeper = "TIFF" if "resolution" in names else "PNG or TIFF"
    return f"its {what} cannot go into {_FORMAT_NAMES[output_format][0]}: left out; {keeper} keeps {them}"


def extended_xmp_loss_notice(photo: Photo, output_format: str) -> str | None:
    """What the user should know when an output in ``output_format`` goes without the photo's extended XMP,
    which recnet copies to JPEG outputs only: other formats hold one XMP packet, and merging the two is an
    XMP toolkit's job; None otherwise."""
    if photo.extended_xmp is None or output_format not in _XMP_FORMATS - {"JPEG"}:
        return None
    size = f"{len(photo.extended_xmp) / 1024:.0f} KB"
    return (
        f"its extended XMP ({size}, what did not fit in the JPEG's XMP segment) is left out of "
        f"{_FORMAT_NAMES[output_format][0]}; a JPEG output keeps it"
    )


def alpha_loss_notice(photo: Photo, output_format: str) -> str | None:
    """What the user should know when an output in ``output_format`` goes without the photo's transparency;
    None when it keeps it, or when there is none to see (an alpha channel opaque all over, as many programs
    write, loses nothing: one pass over the alpha, a few milliseconds for 24 MP)."""
    alpha = photo.alpha
    if alpha is None or output_format in ALPHA_FORMATS or alpha.min() == np.iinfo(alpha.dtype).max:
        return None
    return (
        f"its transparency (alpha channel) cannot go into {_FORMAT_NAMES[output_format][0]}: left out, so "
        "the colours under its transparent areas show; PNG or TIFF keeps it"
    )


def output_notices(photo: Photo, output_format: str) -> list[str]:
    """What the user should know of what an output in ``output_format`` loses of the photo: its colours'
    profile or description, metadata, extended XMP and transparency."""
    describers = (colour_loss_notice, metadata_loss_notice, extended_xmp_loss_notice, alpha_loss_notice)
    return [notice for describe in describers if (notice := describe(photo, output_format))]


def fit_size(image: np.ndarray, min_side: int = 0, max_side: int = 0) -> np.ndarray:
    """Scales an image so its long side is at most ``max_side`` and its short side at least ``min_side``
    (0: no limit); the minimum wins when both cannot hold."""
    height, width = image.shape[:2]
    scale = 1.0
    if max_side and max(height, width) > max_side:
        scale = max_side / max(height, width)
    if min_side and min(height, width) * scale < min_side:
        scale = min_side / min(height, width)
    if scale == 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def format_for(path: str | os.PathLike[str], forced: str | None = None) -> str:
    """The Pillow format name to write, from ``forced`` ("jpg", ".png", "tiff"...) or the path's extension."""
    extension = "." + forced.lower().lstrip(".") if forced else Path(path).suffix.lower()
    if extension not in _FORMAT_BY_EXTENSION:
        raise ImageWriteError(
            path, f"unsupported output format {extension or '(none)'!r} (use {OUTPUT_CHOICES})"
        )
    return _FORMAT_BY_EXTENSION[extension]


def names_unsupported_image(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like an image file in a format recnet neither reads nor writes (.gif, .nef,
    .heic without pillow-heif...)."""
    suffix = Path(path).suffix.lower()
    if suffix in _FORMAT_BY_EXTENSION:
        return False
    # Pillow's list of every format's extensions loads all its plugins (44 ms): asked only when needed.
    return suffix in _CONVERT_FIRST or suffix in Image.registered_extensions()


def conversion_needed(path: str | os.PathLike[str]) -> str | None:
    """Why a photo file must be converted before recnet can read it (camera RAW; HEIF without pillow-heif),
    going by its name."""
    kind = _CONVERT_FIRST.get(Path(path).suffix.lower())
    return None if kind is None else f"{kind} ({READABLE})"


def install_hint(extension: str) -> str:
    """What to install to read and write files with this extension, if that would help (pillow-heif)."""
    if extension.lower() in HEIF_EXTENSIONS and not HEIF_SUPPORTED:
        return f"; HEIF needs pillow-heif: {_INSTALL_HEIF}"
    return ""


@functools.cache
def enable_heif() -> str | None:
    """Registers pillow-heif's Pillow plugin, where it is installed (once; 40 ms, so not at import); why HEIF
    cannot be read or written after all, when pillow-heif is installed but fails to load."""
    if not HEIF_SUPPORTED:
        return None
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except Exception as error:  # a broken install raises ImportError, OSError (its libheif), or anything
        return (
            f"pillow-heif is installed but fails to load ({first_line(error)}): "
            f"reinstall it ({_INSTALL_HEIF} --force-reinstall)"
        )
    return None


def read_photo(path: str | os.PathLike[str]) -> Photo:
    """Decode a photo with its metadata; any problem raises ImageReadError."""
    unreadable = conversion_needed(path)
    if unreadable is not None and Path(path).is_file():
        raise ImageReadError(path, unreadable)
    if problem := input_file_problem(path):
        raise ImageReadError(path, problem)
    try:
        with Path(path).open("rb") as file:
            return _read_open_file(path, file)
    except OSError as error:
        raise ImageReadError(path, describe_os_error(error)) from error


def header_megapixels(path: str | os.PathLike[str]) -> float:
    """The image's size in megapixels from its header, without decoding it; 0 when it cannot be read
    (or should not be: a FIFO would block)."""
    if input_file_problem(path):
        return 0.0
    enable_heif()
    try:
        with Image.open(path) as image:
            return image.width * image.height / 1e6
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return 0.0


def size_problem(fmt: str, width: int, height: int, channels: int = 3) -> str | None:
    """Why a ``width`` x ``height`` picture cannot go into a file of format ``fmt``; None when it can."""
    name = _FORMAT_NAMES[fmt][0]
    too_large = f"too large for {name}: {width} x {height} pixels"
    side, pixels = _MAX_SIDE.get(fmt), _MAX_PIXELS.get(fmt)
    if side is not None and max(width, height) > side:
        return f"{too_large}, and {name} holds at most {side:,} per side; {_LARGE_FORMATS}"
    if pixels is not None and width * height > pixels:
        return f"{too_large}, and {name} holds at most {pixels / 1e6:.0f} MP; {_LARGE_FORMATS}"
    bmp_bytes = (width * channels + 3) // 4 * 4 * height + _BMP_HEADERS  # rows padded to 4 bytes
    if fmt == "BMP" and bmp_bytes > _MAX_FILE_BYTES:
        return f"{too_large}, more than a BMP file's 4 GiB; {_LARGE_FORMATS}"
    return None


def check_output_size(path: str | os.PathLike[str], photo: Photo) -> None:
    """Refuses, before any work, an output of ``photo`` that its format could not hold (a JPEG panorama
    over 65,500 pixels wide); the format goes by the name."""
    height, width = photo.pixels.shape[:2]
    problem = size_problem(format_for(path), width, height, 1 if photo.grayscale else 3)
    if problem is not None:
        raise ImageWriteError(path, problem)


def write_photo(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    like: Photo,
    *,
    quality: int = 95,
    output_format: str | None = None,
    overwrite: bool = True,
) -> None:
    """Atomically write corrected ``pixels`` with the bit depth, alpha and metadata of ``like``; without
    ``overwrite``, a file at ``path`` is kept (OutputExistsError), as for every writer here."""
    fmt = format_for(path, output_format)
    depth = 8 if like.bit_depth == 8 else _DEEP_OUTPUT_BITS.get(fmt, 8)
    grayscale = _written_grey(like, fmt)
    icc_profile, conversion = _output_colour(like, fmt)
    dropped = left_out(like, fmt)
    exif, xmp, iptc = (None if name in dropped else block for name, block in _blocks(like).items())
    dpi = None if "resolution" in dropped else like.dpi
    extended_xmp = like.extended_xmp if fmt == "JPEG" else None
    png_colour = like.png_colour if fmt == "PNG" else ()
    metadata = Metadata(exif, icc_profile, dpi, xmp, iptc, like.nclx, like.chroma, extended_xmp, png_colour)
    try:
        colour = pixels @ np.asarray(BT601_LUMA, np.float32) if grayscale else pixels
        if conversion is not None and conversion.convert is not None:
            colour = _converted_in_bands(conversion.convert, colour)
        channels = [_quantise(colour, depth)]
        if like.alpha is not None and fmt in ALPHA_FORMATS:
            channels.append(_alpha_at_depth(like.alpha, depth))
        samples = np.dstack(channels) if len(channels) > 1 else channels[0].reshape(*pixels.shape[:2], -1)
        _save(path, fmt, samples, quality, metadata, overwrite)
    except (MemoryError, cv2.error) as error:
        if not out_of_host_memory(error):
            raise
        megapixels = pixels.shape[0] * pixels.shape[1] / 1e6
        raise ImageWriteError(path, _NO_MEMORY.format("encode", megapixels)) from None


def write_png16(path: str | os.PathLike[str], grey: np.ndarray, *, overwrite: bool = True) -> None:
    """Atomically write an H x W uint16 array as a 16-bit greyscale PNG; ``path`` must end in .png."""
    if format_for(path) != "PNG":
        raise ImageWriteError(path, "a 16-bit greyscale mask is written as PNG: use a .png name")
    _save(path, "PNG", grey.astype(np.uint16)[..., None], overwrite=overwrite)


def write_rgb8(
    path: str | os.PathLike[str], rgb: np.ndarray, *, quality: int = 95, overwrite: bool = True
) -> None:
    """Atomically write an H x W x 3 uint8 array, in the format of the path's extension."""
    _save(path, format_for(path), rgb.astype(np.uint8), quality, overwrite=overwrite)


@contextmanager
def atomic_output(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[BinaryIO]:
    """A file to write an output into, that takes the name ``path`` only if the block succeeds (see
    ``atomicfile.atomic_file``). Without ``overwrite`` a file there when the block ends is kept and
    OutputExistsError raised; other OSErrors become ImageWriteError."""
    try:
        with atomic_file(path, overwrite=overwrite) as file:
            yield file
    except OSError as error:
        if isinstance(error, FileExistsError) and not overwrite:
            raise OutputExistsError(path) from None
        raise ImageWriteError(path, describe_os_error(error), error.errno) from error


def _read_open_file(path: str | os.PathLike[str], file: BinaryIO) -> Photo:
    if (heif_broken := enable_heif()) and Path(path).suffix.lower() in HEIF_EXTENSIONS:
        raise ImageReadError(path, f"an HEIF photo: {heif_broken}, or convert it to JPEG")
    size = (0, 0)
    try:
        with Image.open(file) as image:
            size = image.size
            _check_size(path, size)
            _check_supported(path, image)
            return _decode(image, file)
    except Image.UnidentifiedImageError as error:
        file.seek(0)
        if not _has_supported_signature(file.read(12)):
            raise ImageReadError(path, "not an image, or an unsupported format") from error
        kind = _unopened_tiff_pixel_type(file)  # Pillow opens no TIFF of a pixel type it does not know
        reason = "truncated or corrupt image data" if kind is None else _UNSUPPORTED_PIXELS.format(kind)
        raise ImageReadError(path, reason) from error
    except Image.DecompressionBombError as error:
        raise ImageReadError(path, f"image too large: {error}") from error
    except PhotoFileError:
        raise
    except Exception as error:  # decoders raise any kind on damaged data (pillow-heif ValueError, AVIF's
        # RuntimeError, TIFF's TypeError), and a damaged file must fail alone, not stop the batch
        if out_of_host_memory(error):  # not the file's fault: it must not read as a damaged file
            raise ImageReadError(path, _NO_MEMORY.format("decode", size[0] * size[1] / 1e6)) from None
        raise ImageReadError(path, "truncated or corrupt image data") from error


# What every "not enough memory" error advises, where no setting would help.
FREE_MEMORY_ADVICE = "free some memory (close other programs) and try again"
_NO_MEMORY = "not enough memory to {} this {:.1f} MP image: " + FREE_MEMORY_ADVICE


def out_of_host_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation in host memory that failed: Python's and NumPy's MemoryError, or
    OpenCV's (PyTorch's: ``devices.is_host_out_of_memory``)."""
    return isinstance(error, MemoryError) or (
        isinstance(error, cv2.error) and error.code == cv2.Error.StsNoMem
    )


def _check_supported(path: str | os.PathLike[str], image: Image.Image) -> None:
    if image.format not in _READABLE_FORMATS:
        raise ImageReadError(path, f"unsupported image format {image.format} ({READABLE})")
    layout = _sixteen_bit_layout(image)
    # Pillow narrows 16-bit CMYK to 8 bits, and OpenCV does not decode it.
    if layout == "CMYK" or (layout is None and image.mode not in _READABLE_MODES):
        kind = _tiff_pixel_type(image.tag_v2) if image.format == "TIFF" else None
        raise ImageReadError(path, _UNSUPPORTED_PIXELS.format(kind or image.mode))


_UNSUPPORTED_PIXELS = "unsupported pixel type {}"
# What a TIFF's samples stand for, by its PhotometricInterpretation and SampleFormat tags.
_TIFF_COLOURS = {0: "MinIsWhite grey", 1: "grey", 2: "RGB", 3: "palette", 5: "CMYK", 6: "YCbCr", 8: "CIELab"}
_TIFF_NUMBERS = {1: "", 2: " signed", 3: " floating-point"}


def _tiff_pixel_type(tags: TiffImagePlugin.ImageFileDirectory_v2) -> str | None:
    """What a TIFF's pixels are, from its tags: "16-bit CMYK", "32-bit floating-point RGB", "16-bit grey
    with alpha"; None where the tags do not say it, or do not describe pixels that can be laid out (a
    damaged directory)."""
    bits = tags.get(BITSPERSAMPLE, (1,))
    colour = _TIFF_COLOURS.get(tags.get(PHOTOMETRIC_INTERPRETATION))
    number = _TIFF_NUMBERS.get((tags.get(SAMPLEFORMAT) or (1,))[0])
    laid_out = (
        {IMAGEWIDTH, IMAGELENGTH} <= tags.keys()
        and bool({STRIPOFFSETS, TILEOFFSETS} & tags.keys())
        and len(set(bits)) == 1
        and len(bits) in (1, tags.get(SAMPLESPERPIXEL, 1))
    )
    if colour is None or number is None or not laid_out:
        return None
    extras = list(tags.get(EXTRASAMPLES, ()))
    alpha = extras[:1] in ([1], [2])  # the first extra channel is alpha (associated or not)
    others = len(extras) - alpha
    extra = ["alpha"] * alpha + [f"{others} other channel{'s' * (others > 1)}"] * (others > 0)
    byte_order = " big-endian" if bits[0] > 8 and tags.prefix == b"MM" else ""
    return f"{bits[0]}-bit{byte_order}{number} {colour}" + (f" with {' and '.join(extra)}" if extra else "")


def _unopened_tiff_pixel_type(file: BinaryIO) -> str | None:
    """What the first page of a file that Pillow could not open holds (``_tiff_pixel_type``), where it is a
    TIFF whose tags say it; None otherwise."""
    file.seek(0)
    try:
        tags = TiffImagePlugin.ImageFileDirectory_v2(file.read(8))
        file.seek(tags.next)
        tags.load(file)
        return _tiff_pixel_type(tags)
    except Exception:  # not a TIFF, or its directory is damaged: parsers raise any kind on bad bytes
        return None


def _decode(image: Image.Image, file: BinaryIO) -> Photo:
    layout = _sixteen_bit_layout(image)
    depth = image.info.get("bit_depth", 8) if image.format == "HEIF" else 8
    icc_profile, uncalibrated_cmyk = image.info.get("icc_profile"), None
    if depth > 8:
        samples, grayscale = _deep_heif_samples(file, depth)
    elif image.mode == "CMYK" and layout is None:
        rgb, uncalibrated_cmyk = _cmyk_as_rgb(image)
        samples, grayscale, icc_profile = np.asarray(rgb), False, None  # its profile described ink
    elif layout is None:
        samples, grayscale = _pillow_samples(image)
    else:
        deep_samples = _deep_tiff_samples if image.format == "TIFF" else _deep_png_samples
        samples, grayscale = deep_samples(file, image, layout)
        depth = 16
    damaged: list[str] = []
    exif = _intact(image.getexif, "EXIF", damaged)
    xmp, extended_xmp = _xmp_packets(image, damaged)
    # Pillow and OpenCV both apply a TIFF's orientation while decoding it, and no other format's.
    pending_orientation = 1 if image.format == "TIFF" or exif is None else exif.get(ORIENTATION, 1)
    samples = _ORIENTATIONS.get(pending_orientation, lambda a: a)(samples)
    portable_exif = functools.partial(
        _portable_exif, exif, image.info.get("exif"), (samples.shape[1], samples.shape[0])
    )
    colour = samples[..., :-1] if samples.shape[2] in (2, 4) else samples
    peak = (1 << depth) - 1
    alpha = np.ascontiguousarray(samples[..., -1]) if samples.shape[2] in (2, 4) else None
    if alpha is not None and depth not in (8, 16):
        alpha = _quantise(alpha / np.float32(peak), 16)  # 16 bits hold every 10- or 12-bit code
    return Photo(
        pixels=_unit_floats(colour, peak),
        alpha=alpha,
        bit_depth=depth,
        grayscale=grayscale,
        exif=None if exif is None else _intact(portable_exif, "EXIF", damaged),
        icc_profile=icc_profile,
        dpi=_source_dpi(image),
        source_format=image.format,
        frames=_frame_count(image),
        xmp=xmp,
        extended_xmp=extended_xmp,
        iptc=_iptc_record(image),
        nclx=image.info.get("nclx_profile") if image.format == "HEIF" else None,
        chroma=image.info.get("chroma") if image.format == "HEIF" else None,
        damaged_metadata=tuple(dict.fromkeys(damaged)),
        png_colour=_png_colour_chunks(file) if image.format == "PNG" else (),
        uncalibrated_cmyk=uncalibrated_cmyk,
    )


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


def _cmyk_as_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
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


def _intact(read: Callable[[], T], name: str, damaged: list[str]) -> T | None:
    """What ``read`` returns, or None with ``name`` added to ``damaged`` when that metadata is damaged:
    a photo whose pixels decode is corrected without it. Parsers raise any kind on bad bytes."""
    try:
        return read()
    except Exception:
        damaged.append(name)
        return None


def _check_size(path: str | os.PathLike[str], size: tuple[int, int]) -> None:
    """Refuses an image that this machine's memory could not hold as float32 pixels: a decompression
    bomb, or a photo beyond this machine."""
    needed = size[0] * size[1] * DECODED_BYTES_PER_PIXEL
    if MACHINE_MEMORY is not None and needed > MACHINE_MEMORY:
        raise ImageReadError(
            path,
            f"image too large: its {size[0]} x {size[1]} pixels would take {needed / 2**30:.1f} GiB as "
            f"float32, more than this machine's {MACHINE_MEMORY / 2**30:.1f} GiB of memory",
        )


def _frame_count(image: Image.Image) -> int:
    """Pages or animation frames; a camera's MPO JPEG counts as one (what follows the photo is a preview or
    a depth map), and so does a file whose later pages are damaged (the first one was read)."""
    if image.format == "MPO":
        return 1
    try:
        return getattr(image, "n_frames", 1)
    except (OSError, SyntaxError, EOFError, ValueError):
        return 1


def _has_supported_signature(head: bytes) -> bool:
    """Whether a file starts like a JPEG, PNG, TIFF, BMP, WebP or (where supported) AVIF or HEIF."""
    return (
        head.startswith(_SIGNATURES)
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or (HEIF_SUPPORTED and head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS)
        or (AVIF_SUPPORTED and head[4:8] == b"ftyp" and head[8:12] in _AVIF_BRANDS)
    )


def _sixteen_bit_layout(image: Image.Image) -> str | None:
    """The stored layout ("I", "LA", "RGB", "RGBA", "CMYK") of a 16-bit PNG or TIFF, None otherwise.

    Pillow narrows 16-bit colour to 8 bits on decode: a PNG's layout is taken from Pillow's raw mode
    ("RGB;16B"), a TIFF's from its tags and Pillow's mode (the raw mode of a TIFF stored plane by plane
    names one plane, "R").
    """
    if image.format not in SIXTEEN_BIT_FORMATS or not image.tile:
        return None
    if image.format == "TIFF":
        bits, number_format = image.tag_v2.get(BITSPERSAMPLE, ()), image.tag_v2.get(SAMPLEFORMAT) or (1,)
        if set(bits) != {16} or number_format[0] != 1:  # unsigned integers only
            return None
        return "I" if image.mode.startswith("I;16") else image.mode
    layout, _, bits = _raw_mode(image).partition(";")
    return layout if bits.startswith("16") else None


def _raw_mode(image: Image.Image) -> str:
    """How a PNG's samples are stored, as Pillow names it ("RGB;16B", "L;2"), before it decodes them."""
    arguments = image.tile[0].args
    return str(arguments[0] if isinstance(arguments, tuple) else arguments)


def _pillow_samples(image: Image.Image) -> tuple[np.ndarray, bool]:
    """H x W x C samples (grey or RGB, then alpha) for files Pillow decodes at full precision."""
    if "transparency" in image.info and image.mode in _TRANSPARENT_CONVERSIONS:
        if image.format == "PNG" and image.tile and (peak := _LOW_BIT_GREY_PEAKS.get(_raw_mode(image))):
            # Pillow scales 2- and 4-bit grey up to 8 bits, but gives the transparent grey as stored
            image.info["transparency"] *= 255 // peak
        image = image.convert(_TRANSPARENT_CONVERSIONS[image.mode])
    elif image.mode in _PILLOW_CONVERSIONS:
        image = image.convert(_PILLOW_CONVERSIONS[image.mode])
    samples = np.asarray(image)
    samples = samples.astype(samples.dtype.newbyteorder("="), copy=False)
    return (samples[..., None] if samples.ndim == 2 else samples), image.mode in _GREY_MODES


def _opencv_samples(file: BinaryIO, layout: str) -> tuple[np.ndarray, bool]:
    """H x W x C uint16 samples (grey or RGB, then alpha) of a 16-bit file, decoded by OpenCV."""
    file.seek(0)
    decoded = _opencv_decode(file.read())
    if decoded.ndim == 2:
        return decoded[..., None], True
    if layout == "LA":  # OpenCV expands grey + alpha to BGRA
        return decoded[..., [0, 3]], True
    return decoded[..., [2, 1, 0, 3][: decoded.shape[2]]], False


def _opencv_decode(data: bytes) -> np.ndarray:
    """The uint16 samples (grey, or BGR then alpha) that OpenCV decodes from a 16-bit file's bytes."""
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.dtype != np.uint16:
        raise OSError("OpenCV could not decode the 16-bit samples")
    return decoded


def _deep_png_samples(file: BinaryIO, image: Image.Image, layout: str) -> tuple[np.ndarray, bool]:
    """H x W x C uint16 samples (grey or RGB, then alpha) of a 16-bit PNG, decoded by OpenCV. OpenCV makes
    an RGB one's transparent colour (tRNS) alpha, but not a grey one's: that is done here."""
    samples, grayscale = _opencv_samples(file, layout)
    if _text_after_pixels(file):  # Pillow reads those chunks (an XMP packet) only as it decodes the pixels
        image.load()
    key = image.info.get("transparency")
    if key is None or samples.shape[2] != 1:
        return samples, grayscale
    return np.dstack([samples, np.where(samples == key, 0, 0xFFFF).astype(np.uint16)]), grayscale


def _png_chunks(file: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """The type and data length of each chunk of a PNG, in order, with ``file`` at its data (to be read)."""
    file.seek(len(_PNG_SIGNATURE))
    while len(header := file.read(8)) == 8:
        length, kind = struct.unpack(">I4s", header)
        start = file.tell()
        yield kind, length
        file.seek(start + length + 4)  # past the chunk's data and CRC


def _text_after_pixels(file: BinaryIO) -> bool:
    """Whether a PNG has a text chunk (tEXt, zTXt, iTXt) after its pixel data."""
    pixels_seen = False
    for kind, _ in _png_chunks(file):
        if pixels_seen and kind in (b"tEXt", b"zTXt", b"iTXt"):
            return True
        pixels_seen |= kind == b"IDAT"
    return False


def _png_colour_chunks(file: BinaryIO) -> tuple[tuple[bytes, bytes], ...]:
    """A PNG's colour chunks before its pixels (cICP, sRGB, gAMA, cHRM: what its colours are, where it has no
    ICC profile or beside one), as (type, data); one of another size than the specification's is left out,
    and of two of a type the last kept."""
    found: dict[bytes, bytes] = {}
    for kind, length in _png_chunks(file):
        if kind == b"IDAT":
            break
        if _PNG_COLOUR_CHUNKS.get(kind) == length:
            found[kind] = file.read(length)
    return tuple(found.items())


def _deep_tiff_samples(file: BinaryIO, image: Image.Image, layout: str) -> tuple[np.ndarray, bool]:
    """H x W x C uint16 samples (grey or RGB, then alpha) of a 16-bit TIFF, decoded by OpenCV. OpenCV and
    Pillow both mix up the planes of an RGB(A) TIFF stored plane by plane: those are decoded a plane at a
    time (``_plane_tiffs``). Both leave MinIsWhite grey as stored: it is turned round here. An RGB TIFF's
    unspecified extra channel (Pillow's mode "RGB" for "RGBX") is left out, not taken for alpha. Colour
    premultiplied by alpha (associated alpha) is made straight, as the rest of recnet has it."""
    tags = image.tag_v2
    if tags.get(PLANAR_CONFIGURATION, 1) == 2 and layout in ("RGB", "RGBA"):
        file.seek(0)
        data = file.read()
        samples = np.dstack([_opencv_decode(plane) for plane in _plane_tiffs(data, tags, len(layout))])
        grayscale = False
    else:
        samples, grayscale = _opencv_samples(file, layout)
        samples = samples[..., : len(layout)]  # layout "I", "RGB" or "RGBA"
    if tags.get(PHOTOMETRIC_INTERPRETATION) == 0:  # MinIsWhite (grey: Pillow opens none with alpha)
        np.subtract(0xFFFF, samples, out=samples)
    if layout == "RGBA" and tuple(tags.get(EXTRASAMPLES, ()))[:1] == (1,):  # associated alpha
        alpha = samples[..., 3:].astype(np.float32)
        straight = samples[..., :3] * np.float32(0xFFFF) / np.maximum(alpha, 1)
        samples[..., :3] = np.where(alpha > 0, np.clip(np.rint(straight), 0, 0xFFFF), 0)
    return samples, grayscale


# What a plane of a TIFF stored plane by plane shares with the file: its size, how its strips or tiles are
# compressed, and its orientation.
_PLANE_TAGS = (
    IMAGEWIDTH,
    IMAGELENGTH,
    COMPRESSION,
    ORIENTATION,
    ROWSPERSTRIP,
    PREDICTOR,
    TILEWIDTH,
    TILELENGTH,
)
_TIFF_HEADERS = {b"II": b"II*\0\x08\0\0\0", b"MM": b"MM\0*\0\0\0\x08"}  # the first directory at byte 8


def _plane_tiffs(data: bytes, tags: TiffImagePlugin.ImageFileDirectory_v2, count: int) -> Iterator[bytes]:
    """The first ``count`` planes of a 16-bit TIFF stored plane by plane, each a grey TIFF of its own: a
    directory that names the plane's strips or tiles, then the file's bytes, where they lie. A decoder
    reads them as any grey TIFF, decompression and predictor included."""
    tiled = TILEOFFSETS in tags
    offsets_tag, counts_tag = (TILEOFFSETS, TILEBYTECOUNTS) if tiled else (STRIPOFFSETS, STRIPBYTECOUNTS)
    offsets, counts = tags[offsets_tag], tags[counts_tag]
    per_plane = len(offsets) // tags[SAMPLESPERPIXEL]
    for plane in range(count):
        part = slice(plane * per_plane, (plane + 1) * per_plane)
        directory = TiffImagePlugin.ImageFileDirectory_v2(prefix=tags.prefix)
        for tag in _PLANE_TAGS:
            if tag in tags:
                directory[tag] = tags[tag]
        directory[BITSPERSAMPLE], directory[PHOTOMETRIC_INTERPRETATION], directory[SAMPLESPERPIXEL] = 16, 1, 1
        directory[offsets_tag], directory[counts_tag] = offsets[part], counts[part]
        start = 8 + len(directory.tobytes(8))  # of the file's bytes
        if tiled:  # tobytes moves strip offsets past the directory itself, but not tile offsets
            directory[offsets_tag] = tuple(offset + start for offset in offsets[part])
        yield _TIFF_HEADERS[tags.prefix] + directory.tobytes(8) + data


def _deep_heif_samples(file: BinaryIO, depth: int) -> tuple[np.ndarray, bool]:
    """H x W x C uint16 codes of 0 to 2**depth - 1 (grey or RGB, then alpha) of a 10- or 12-bit HEIF, which
    Pillow only has as 8 bits; pillow-heif turns the pixels upright, as its Pillow plugin does."""
    import pillow_heif

    file.seek(0)
    heif = pillow_heif.open_heif(file, convert_hdr_to_8bit=False)
    samples = np.asarray(heif) >> (16 - depth)  # pillow-heif scales the codes up to 16 bits
    return (samples[..., None] if samples.ndim == 2 else samples), heif.mode.startswith(("L", "I"))


def _portable_exif(exif: Image.Exif, block: bytes | None, size: tuple[int, int]) -> bytes | None:
    """The EXIF to copy to outputs: orientation 1, the upright pixels' ``size`` (width, height) as the Exif
    directory's pixel dimensions, and none of the TIFF tags that are not EXIF.

    The file's EXIF ``block`` is changed in place (``exif_block.edited_exif``). A TIFF has no such block (its
    first directory doubles as its EXIF and holds the file's pixel layout too), nor has a PNG whose EXIF is in
    a legacy text chunk: Pillow builds a block of their EXIF tags anew (a TIFF's maker note whose offsets
    count from the file's start reads wrong in it)."""
    if block:
        return sized_exif(edited_exif(block, _NOT_EXIF_TAGS), *size)
    for tag in _NOT_EXIF_TAGS & exif.keys():
        del exif[tag]
    if not exif:
        return None
    exif[ORIENTATION] = 1
    return sized_exif(exif.tobytes(), *size)


def _upright_xmp(xmp: bytes | None) -> bytes | None:
    """The XMP to copy to outputs: its orientation, if it has one, says 1 (the pixels are upright now)."""
    if not xmp:
        return None
    for pattern, upright in _XMP_ORIENTATIONS:
        xmp = pattern.sub(upright, xmp)
    return xmp


def _xmp_packets(image: Image.Image, damaged: list[str]) -> tuple[bytes | None, bytes | None]:
    """The XMP packet and, where it is a JPEG's that names one (HasExtendedXMP), its extended XMP, both with
    orientation 1 (an extended XMP edited for it is named by its new MD5). An extended XMP that is missing,
    incomplete or not the one named is None, with "extended XMP" added to ``damaged``."""
    xmp = image.info.get("xmp")
    if xmp is None and _RAW_XMP in image.info:  # a PNG's XMP as ImageMagick and Krita write it
        xmp = _intact(lambda: _raw_profile(image.info[_RAW_XMP]), "XMP", damaged)
    claim = _HAS_EXTENDED_XMP.search(xmp) if xmp and image.format in ("JPEG", "MPO") else None
    if claim is None:
        return _upright_xmp(xmp), None
    read = functools.partial(_extended_xmp, image.applist, claim[1].upper())
    upright = _upright_xmp(_intact(read, "extended XMP", damaged))
    if upright is not None:  # named as recnet writes it: by its MD5 in capitals, changed where it was
        xmp = xmp.replace(claim[1], _xmp_guid(upright))
    return _upright_xmp(xmp), upright


def _raw_profile(text: str) -> bytes:
    """The bytes of a PNG text chunk "Raw profile type <name>": a blank line, the name, the length, then
    the bytes in hex over lines (what Pillow reads of one that holds EXIF, but not of one that holds XMP)."""
    return bytes.fromhex("".join(text.split("\n")[3:]))


def _extended_xmp(segments: list[tuple[str, bytes]], guid: bytes) -> bytes:
    """The extended XMP named ``guid`` (in capitals; the segments may have it in either case), put together
    from the portions in a JPEG's APP1 ``segments`` by their offsets (in any order); ValueError when there
    is none, or it is not the one named: its MD5 is not ``guid`` (a portion is missing or changed)."""
    named = len(_XMP_EXTENSION_HEADER) + len(guid)
    portions = {
        struct.unpack_from(">I", data, _XMP_EXTENSION_PREFIX - 4)[0]: data[_XMP_EXTENSION_PREFIX:]
        for marker, data in segments
        if marker == "APP1" and data[:named].upper() == (_XMP_EXTENSION_HEADER + guid).upper()
    }
    extended = b"".join(portion for _, portion in sorted(portions.items()))
    if not extended or _xmp_guid(extended) != guid:
        raise ValueError("the extended XMP is missing, incomplete or damaged")
    return extended


def _xmp_guid(extended_xmp: bytes) -> bytes:
    """The GUID that names an extended XMP: its MD5, in 32 upper-case hex digits."""
    return hashlib.md5(extended_xmp, usedforsecurity=False).hexdigest().upper().encode()


def _iptc_record(image: Image.Image) -> bytes | None:
    """The raw IPTC-IIM record: a JPEG's Photoshop resource 0x0404, or a TIFF's tag 33723.

    Photoshop and ExifTool type the TIFF tag as 4-byte integers, which Pillow's tag API cuts to one value:
    its undecoded bytes are read instead, as Pillow's own ``IptcImagePlugin.getiptcinfo`` does.
    """
    if image.format == "TIFF":
        record = getattr(image.tag_v2, "_tagdata", {}).get(_IPTC_TAG)
    else:
        record = image.info.get("photoshop", {}).get(_IPTC_RESOURCE)
    return bytes(record) if isinstance(record, bytes | bytearray) and record else None


def _photoshop_segment(iptc: bytes) -> bytes:
    """A JPEG APP13 segment that holds the IPTC-IIM record as its one Photoshop image resource."""
    resource = b"8BIM" + struct.pack(">HHI", _IPTC_RESOURCE, 0, len(iptc)) + iptc + b"\0" * (len(iptc) % 2)
    return _jpeg_segment(0xED, b"Photoshop 3.0\0" + resource)


def _xmp_segments(xmp: bytes | None, extended_xmp: bytes | None) -> bytes:
    """A JPEG's APP1 segments of an XMP packet, then of the extended XMP it names, in portions of at most
    65,000 bytes, each with the extended XMP's GUID, full length and its offset."""
    if not xmp:
        return b""
    segments = [_jpeg_segment(0xE1, _XMP_HEADER + xmp)]
    if extended_xmp:
        named = _XMP_EXTENSION_HEADER + _xmp_guid(extended_xmp) + struct.pack(">I", len(extended_xmp))
        for start in range(0, len(extended_xmp), _XMP_EXTENSION_PORTION):
            portion = extended_xmp[start : start + _XMP_EXTENSION_PORTION]
            segments.append(_jpeg_segment(0xE1, named + struct.pack(">I", start) + portion))
    return b"".join(segments)


def _jpeg_segment(marker: int, body: bytes) -> bytes:
    """A JPEG marker segment: 0xFF, the ``marker`` byte, its length (counting its 2 bytes), then ``body``."""
    return struct.pack(">BBH", 0xFF, marker, 2 + len(body)) + body


def _source_dpi(image: Image.Image) -> tuple[float, float] | None:
    """The stored resolution; Pillow reports 1 x 1 for TIFFs that have none, and 0 x 0 for some JPEGs."""
    dpi = image.info.get("dpi")
    if not dpi or (image.format == "TIFF" and _X_RESOLUTION not in image.tag_v2):
        return None
    horizontal, vertical = float(dpi[0]), float(dpi[1])  # a TIFF's 72/0 is nan
    return (horizontal, vertical) if 0 < horizontal < math.inf and 0 < vertical < math.inf else None


def _profile_for(icc_profile: bytes | None, grayscale: bool) -> bytes | None:
    """The profile if it describes the written colour space (grey or RGB), else None."""
    written = b"GRAY" if grayscale else b"RGB "
    return icc_profile if icc_profile and icc.colour_space(icc_profile) == written else None


def _unit_floats(codes: np.ndarray, peak: int) -> np.ndarray:
    """H x W x 3 float32 in [0, 1] from H x W x 1 or 3 codes of 0 to ``peak``: code / peak, each 8-bit code
    through a table (OpenCV's, 3x as fast as NumPy's conversion and division for the same floats)."""
    if codes.dtype == np.uint8:
        floats = cv2.LUT(np.ascontiguousarray(codes), _UNIT_FLOATS_8).reshape(codes.shape)
    else:
        floats = codes.astype(np.float32) / peak
    return np.ascontiguousarray(np.broadcast_to(floats, (*codes.shape[:2], 3)))


def _quantise(values: np.ndarray, depth: int) -> np.ndarray:
    """Round [0, 1] floats to the nearest code of ``depth`` bits (uint8 for 8 bits, else uint16), clipping
    the values outside (half-way values round to even)."""
    if depth == 8:  # values x 255 (+ values x 0) in one pass, rounded and saturated: 3x as fast as below
        values = np.ascontiguousarray(values)
        return cv2.addWeighted(values, 255, values, 0, 0, dtype=cv2.CV_8U).reshape(values.shape)
    codes = np.clip(values, 0.0, 1.0)
    np.multiply(codes, (1 << depth) - 1, out=codes)
    return np.rint(codes, out=codes).astype(np.uint16)


def _alpha_at_depth(alpha: np.ndarray, depth: int) -> np.ndarray:
    """Alpha (uint8, or uint16 of 16 bits) unchanged when the output keeps its depth, else rounded to it."""
    if 8 * alpha.dtype.itemsize == depth:
        return alpha
    return _quantise(alpha / np.float32(np.iinfo(alpha.dtype).max), depth)


class _Unencodable(ValueError):
    """A picture its format's encoder refuses, or larger encoded than the format's files can be."""


def _save(
    path: str | os.PathLike[str],
    fmt: str,
    samples: np.ndarray,
    quality: int = 95,
    metadata: Metadata = Metadata(),
    overwrite: bool = True,
) -> None:
    """Atomically write H x W x C samples in ``fmt`` (see ``atomic_output`` for ``overwrite``); one the
    format cannot hold is an ImageWriteError."""
    height, width, channels = samples.shape
    problem = size_problem(fmt, width, height, channels)
    if problem is not None:
        raise ImageWriteError(path, problem)
    try:
        with atomic_output(path, overwrite=overwrite) as file:
            _write_samples(file, fmt, samples, quality, metadata)
            _mark_written(file)
    except _Unencodable as error:
        raise ImageWriteError(path, str(error)) from None


# Set on every image recnet writes, where the file system keeps extended attributes: it tells the images in
# an output folder that recnet wrote from a user's own (``written_by_recnet``).
WRITTEN_MARK = "user.recnet.written"


def _mark_written(file: BinaryIO) -> None:
    if hasattr(os, "setxattr"):  # Linux; not a file system without extended attributes (FAT, some shares)
        with suppress(OSError):
            os.setxattr(file.fileno(), WRITTEN_MARK, b"1")


def written_by_recnet(path: str | os.PathLike[str]) -> bool | None:
    """Whether recnet wrote the image at ``path`` (it bears recnet's mark); None where that cannot be told:
    a file system that keeps no mark, or a system without extended attributes."""
    if not hasattr(os, "getxattr"):
        return None
    try:
        os.getxattr(path, WRITTEN_MARK)
    except OSError as error:
        return False if error.errno == errno.ENODATA else None
    return True


def _write_samples(
    file: BinaryIO, fmt: str, samples: np.ndarray, quality: int = 95, metadata: Metadata = Metadata()
) -> None:
    """Write H x W x C samples (grey or RGB, then optional alpha; uint8 or uint16) in ``fmt`` into ``file``.

    PNG and TIFF use recnet's encoders, which handle 16-bit colour and keep the EXIF block whole; HEIF uses
    pillow-heif (uint16 samples are 10-bit codes there); the rest use Pillow.
    """
    if fmt == "HEIF":
        _write_heif(file, samples, quality, metadata)
    elif fmt == "PNG":
        _write_png(file, samples, metadata)
    elif fmt == "TIFF":
        file.write(_encode_tiff(samples, metadata))
    else:
        image = Image.fromarray(samples.squeeze(axis=2) if samples.shape[2] == 1 else samples)
        # Into memory, then to the file: Pillow's JPEG encoder writes to a file's descriptor itself and
        # ignores a short write, so a full disk left a cut JPEG that passed for a finished one.
        encoded = io.BytesIO()
        image.save(encoded, format=fmt, **_pillow_options(fmt, quality, metadata))
        file.write(encoded.getbuffer())


def _pillow_options(fmt: str, quality: int, metadata: Metadata) -> dict[str, object]:
    """Pillow ``save`` keywords for JPEG, WebP, AVIF and BMP: the metadata each can hold, and its
    settings."""
    exif, icc_profile, dpi, xmp = metadata.exif, metadata.icc_profile, metadata.dpi, metadata.xmp
    no_dpi = {"exif": exif, "icc_profile": icc_profile, "xmp": xmp, "quality": quality}
    candidates: dict[str, object] = {
        "JPEG": {**no_dpi, "xmp": None, "dpi": dpi},  # its XMP goes in "extra", below
        "WEBP": no_dpi,
        # The encoder's fastest setting: 12 MP in 1.3 s (default 7.5 s) on 2 CPU cores, for files 6% larger.
        # Pillow moves an EXIF orientation into the container and builds the EXIF anew; absent, it is 1.
        "AVIF": {**no_dpi, "exif": exif and edited_exif(exif, frozenset({ORIENTATION})), "speed": 10},
        "BMP": {"dpi": dpi},
    }[fmt]
    if fmt == "JPEG" and quality >= 90:
        candidates["subsampling"] = 0  # 4:4:4: no colour bleeding at high quality
    if fmt == "JPEG":
        # Pillow writes "extra" verbatim among the header segments (its own XMP and ICC segments go there):
        # the XMP, then its extended XMP, as Adobe's XMP toolkit writes them, and the IPTC-IIM record.
        iptc = _photoshop_segment(metadata.iptc) if metadata.iptc else b""
        candidates["extra"] = _xmp_segments(xmp, metadata.extended_xmp) + iptc
    return {key: value for key, value in candidates.items() if value is not None}


def _write_heif(file: BinaryIO, samples: np.ndarray, quality: int, metadata: Metadata) -> None:
    """An 8-bit or (from uint16 samples of 10-bit codes) 10-bit HEIF, with EXIF, XMP, the ICC profile or the
    nclx colour description, and the source's chroma subsampling; x265's fastest preset: 12 MP in 2.5 s on 2
    CPU cores (18 s at its default), for files 17% larger at the same quality."""
    if heif_broken := enable_heif():
        raise _Unencodable(f"cannot write HEIF: {heif_broken}, or write another format")
    import pillow_heif

    deep = samples.dtype == np.uint16
    mode = ("L", "LA", "RGB", "RGBA")[samples.shape[2] - 1] + (";16" if deep else "")
    codes = samples << 6 if deep else samples  # pillow-heif takes 10-bit codes scaled up to 16 bits
    heif = pillow_heif.from_bytes(mode, (samples.shape[1], samples.shape[0]), codes.tobytes())
    options = {
        "exif": metadata.exif,
        "xmp": metadata.xmp,
        "icc_profile": metadata.icc_profile,
        "chroma": metadata.chroma,
    }
    if not metadata.icc_profile:
        options["nclx_profile"] = metadata.nclx
    try:
        heif.save(
            file,
            quality=quality,
            enc_params={"preset": "ultrafast"},
            **{key: value for key, value in options.items() if value is not None},
        )
    except RuntimeError as error:  # x265 refuses some long thin pictures (6000 x 16, not 6000 x 32)
        height, width = samples.shape[:2]
        raise _Unencodable(
            f"the HEIF encoder refused this {width} x {height} picture ({error}); write PNG, TIFF or JPEG "
            "instead"
        ) from error


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_png(file: BinaryIO, samples: np.ndarray, metadata: Metadata) -> None:
    """An 8- or 16-bit PNG of H x W x C samples (C = 1..4), with optional colour (cICP, sRGB, gAMA, cHRM),
    iCCP, eXIf, pHYs and XMP chunks.

    The pixels are filtered and compressed a band of rows at a time, each band's output in IDAT chunks of
    its own: no copy of the whole picture, and no chunk over PNG's 2 GiB limit at any size.
    """
    exif, icc_profile, dpi = metadata.exif, metadata.icc_profile, metadata.dpi
    height, width, channels = samples.shape
    pixel_bytes = channels * samples.dtype.itemsize
    depth = 8 * samples.dtype.itemsize
    header = struct.pack(">IIBBBBB", width, height, depth, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    file.write(_PNG_SIGNATURE + _png_chunk(b"IHDR", header))
    for kind, data in metadata.png_colour:  # before the pixels, as the PNG specification has them
        file.write(_png_chunk(kind, data))
    if icc_profile:
        file.write(_png_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc_profile)))
    if exif:
        file.write(_png_chunk(b"eXIf", exif.removeprefix(EXIF_HEADER)))
    if dpi:
        pixels_per_metre = (round(dpi[0] / 0.0254), round(dpi[1] / 0.0254))
        file.write(_png_chunk(b"pHYs", struct.pack(">IIB", *pixels_per_metre, 1)))
    if metadata.xmp:  # iTXt: keyword, uncompressed, no language, no translated keyword, then the packet
        file.write(_png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + metadata.xmp))
    compressor = zlib.compressobj()
    band = max(1, _PNG_BAND_BYTES // (width * pixel_bytes))
    for top in range(0, height, band):
        rows = samples[top : top + band].astype(samples.dtype.newbyteorder(">")).view(np.uint8)
        rows = rows.reshape(len(rows), -1)
        filtered = rows.copy()
        filtered[:, pixel_bytes:] -= rows[:, :-pixel_bytes]  # PNG "Sub" filter (type 1), bytewise
        compressed = compressor.compress(np.hstack([np.ones((len(rows), 1), np.uint8), filtered]).tobytes())
        if compressed:
            file.write(_png_chunk(b"IDAT", compressed))
    file.write(_png_chunk(b"IDAT", compressor.flush()) + _png_chunk(b"IEND", b""))


def _encode_tiff(samples: np.ndarray, metadata: Metadata) -> bytes:
    """A deflate-compressed 8- or 16-bit TIFF of H x W x C samples (C = 1..4) with EXIF, ICC, DPI, XMP and
    IPTC.

    The EXIF block opens the file, whose byte order is the block's, its TIFF header the file's: every offset
    in the block counts from where it did, those in a camera's maker note included. The file's directory
    holds the picture's tags and the entries of the EXIF's first directory as they are (they point into the
    block, as do its Exif and GPS directories'). The EXIF's thumbnail is not linked: in a TIFF, the next
    directory is the next page."""
    exif, icc_profile, dpi = metadata.exif, metadata.icc_profile, metadata.dpi
    block = exif.removeprefix(EXIF_HEADER) if exif else b"II*\0" + bytes(4)
    order, _, exif_entries = first_directory(block) if exif else ("<", 0, [])
    height, width, channels = samples.shape
    ordered = samples.astype(samples.dtype.newbyteorder(order))
    differences = ordered.copy()
    differences[:, 1:] -= ordered[:, :-1]  # horizontal predictor, wraps like the TIFF spec
    strip = zlib.compress(differences.tobytes())
    tags = 4096 + sum(len(data or b"") for data in (exif, icc_profile, metadata.xmp, metadata.iptc))
    if 8 + tags + len(strip) > _MAX_FILE_BYTES:  # the header, the tags with their metadata, then the strip
        raise _Unencodable(
            f"too large for TIFF: {width} x {height} pixels compress to {len(strip) / 2**30:.1f} GiB, more "
            "than a TIFF file's 4 GiB; write PNG instead"
        )
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=block[:2])
    ifd[256], ifd[257], ifd[258], ifd[259] = width, height, (8 * samples.dtype.itemsize,) * channels, 8
    ifd[262] = 1 if channels <= 2 else 2  # BlackIsZero grey or RGB
    ifd[273], ifd[277], ifd[278], ifd[279] = 0, channels, height, len(strip)  # offset fixed by tobytes
    ifd[284], ifd[317] = 1, 2
    if channels in (2, 4):
        ifd[338] = 2  # unassociated alpha
    if icc_profile:
        ifd[34675] = icc_profile
    if metadata.xmp:
        ifd[700] = metadata.xmp
    iptc = metadata.iptc and metadata.iptc + bytes(-len(metadata.iptc) % 4)  # padded to whole LONGs
    if iptc:
        ifd[_IPTC_TAG] = iptc  # as bytes (UNDEFINED): Pillow's tag API holds one LONG of it; retyped below
    if dpi:
        ifd[282], ifd[283], ifd[296] = dpi[0], dpi[1], 2
    entries = {entry_tag(entry, order): entry for entry in exif_entries}
    copied = {  # the picture's tags first
        tag: entry for tag, entry in entries.items() if tag not in ifd and in_block(entry, order, len(block))
    }
    for tag in copied:  # a 4-byte placeholder each, for the EXIF's entry to be copied over once laid out
        ifd.tagtype[tag] = TiffTags.LONG
        ifd[tag] = 0
    start = len(block) + len(block) % 2  # a directory starts on a word boundary
    directory = bytearray(ifd.tobytes(start))  # entries sorted by tag, then their values; the strip follows
    (count,) = struct.unpack_from(order + "H", directory)
    for at in range(2, 2 + 12 * count, 12):
        tag = entry_tag(directory[at:], order)
        directory[at : at + 12] = copied.get(tag, directory[at : at + 12])
        if iptc and tag == _IPTC_TAG:  # LONGs, as TIFF/EP, Photoshop and ExifTool have it: the same bytes
            struct.pack_into(order + "HI", directory, at + 2, TiffTags.LONG, len(iptc) // 4)
    header = block[:4] + struct.pack(order + "I", start)
    return header + block[8:] + bytes(start - len(block)) + directory + strip


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists: where a folder for ``path`` would be made (a file
    there means none can be)."""
    return next(candidate for candidate in (path, *path.parents) if os.path.exists(candidate))


def input_file_problem(path: str | os.PathLike[str]) -> str | None:
    """What the file system says is wrong with an input before it is read (a FIFO or a device, an empty
    file, no permission to read it), or None; an input that cannot be looked at is said when opened."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    if special := special_input(info.st_mode):
        return special
    if stat.S_ISREG(info.st_mode) and info.st_size == 0:
        return "empty file"
    return None if os.access(path, os.R_OK) else "permission denied"


def special_input(mode: int) -> str | None:
    """Why an input of this ``st_mode`` is no photo file, by its kind (a device, a FIFO), or None."""
    special = special_file_kind(mode)
    return None if special is None else f"{special}, not a photo file"


def special_file_kind(mode: int) -> str | None:
    """ "a FIFO", "a device" or "a socket" for a file of such a ``st_mode`` (a photo read from one would
    never end, or be endless noise; one written over would be lost); None for a file or a folder."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else None


def file_kind(path: str | os.PathLike[str]) -> str:
    """What stands at ``path`` where a folder is wanted but is not one: "a file", "a device" (/dev/null), "a
    FIFO", "a socket", or "a link to nothing"."""
    if not os.path.exists(path):
        return "a link to nothing"
    return special_file_kind(os.stat(path).st_mode) or "a file"


def first_line(error: Exception) -> str:
    """An error's message, first line only (its type's name when it has none)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


@contextmanager
def naming_the_file(path: str | os.PathLike[str]) -> Iterator[None]:
    """An OSError inside that names no file (a write to a full disk) names ``path``."""
    try:
        yield
    except OSError as error:
        if error.filename is not None:
            raise
        raise OSError(error.errno, error.strerror or first_line(error), os.fspath(path)) from error


def describe_os_error(error: OSError) -> str:
    """A lower-case one-line reason, e.g. "permission denied"."""
    reason = error.strerror or str(error) or type(error).__name__
    return reason[0].lower() + reason[1:]


def error_line(error: Exception) -> str:
    """An error's first line; an OSError that names a file as "<file>: <reason>" (not "[Errno 36] ...")."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{os.fsdecode(error.filename)}: {describe_os_error(error)}"
    return first_line(error)
