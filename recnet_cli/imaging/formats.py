"""The formats recnet reads and writes: by extension and by signature, their names in messages, what each
holds (16 bits, alpha, a colour profile, metadata; how large a picture), and HEIF through the optional
pillow-heif."""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

from PIL import Image

from recnet_cli.files import first_line
from recnet_cli.imaging.errors import ImageWriteError
from recnet_cli.wording import in_words

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
FORMAT_NAMES = {
    "JPEG": ("JPEG", "jpg"),
    "PNG": ("PNG", "png"),
    "TIFF": ("TIFF", "tif"),
    "WEBP": ("WebP", "webp"),
    "BMP": ("BMP", "bmp"),
    "AVIF": ("AVIF", "avif"),
    "HEIF": ("HEIF", "heic"),
}


QUALITY_FORMATS = frozenset({"JPEG", "WEBP", "AVIF", "HEIF"})  # lossy: what --quality sets
_FORMATS = list(dict.fromkeys(_FORMAT_BY_EXTENSION.values()))
READABLE = "recnet reads " + in_words([FORMAT_NAMES[f][0] for f in _FORMATS], "and")
OUTPUT_EXTENSIONS = [FORMAT_NAMES[f][1] for f in _FORMATS]  # what --ext takes
OUTPUT_CHOICES = in_words(OUTPUT_EXTENSIONS, "or")
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
DEEP_OUTPUT_BITS = {"PNG": 16, "TIFF": 16, "HEIF": 10}
ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP", "AVIF", "HEIF"})
ICC_FORMATS = METADATA_FORMATS = SUPPORTED_FORMATS - {"BMP"}  # BMP holds neither
# The largest pictures some formats hold, smaller than the photos recnet reads can be: libjpeg's
# JPEG_MAX_DIMENSION, WebP's 14-bit sizes, and what libavif decodes by default (its encoder goes further,
# but Pillow and most viewers could not open the file). BMP and (classic) TIFF files have 32-bit offsets.
_MAX_SIDE = {"JPEG": 65500, "WEBP": 16383, "AVIF": 32768}
_MAX_PIXELS = {"AVIF": 16384 * 16384}
MAX_FILE_BYTES = 2**32 - 1
_BMP_HEADERS = 14 + 40 + 256 * 4  # file and info headers, and a greyscale picture's palette
_LARGE_FORMATS = "write PNG or TIFF instead"
READABLE_FORMATS = SUPPORTED_FORMATS | {"MPO"}  # cameras' JPEGs with extra pictures open as MPO
# The largest resolution each format stores: JFIF's 16-bit dots per inch, PNG's and BMP's 31-bit pixels
# per metre (a scanner's or microscope's TIFF may say more).
MAX_DPI = {"JPEG": 65535, "PNG": (2**31 - 1) * 0.0254, "BMP": (2**31 - 1) * 0.0254}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIGNATURES = (b"\xff\xd8\xff", PNG_SIGNATURE, b"II*\0", b"MM\0*", b"BM")  # WebP: RIFF....WEBP
# HEIF: ....ftypheic and the other brands of HEVC-coded HEIF still images and sequences; AVIF: ....ftypavif.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def format_for(path: str | os.PathLike[str], forced: str | None = None) -> str:
    """The Pillow format name to write, from ``forced`` ("jpg", ".png", "tiff"...) or the path's extension."""
    extension = "." + forced.lower().lstrip(".") if forced else Path(path).suffix.lower()
    if extension not in _FORMAT_BY_EXTENSION:
        raise ImageWriteError(
            path, f"unsupported output format {extension or '(none)'!r} (use {OUTPUT_CHOICES})"
        )
    return _FORMAT_BY_EXTENSION[extension]


def written_bits(bit_depth: int, output_format: str) -> int:
    """The bits per sample an output in ``output_format`` of a photo of ``bit_depth`` bits is written at."""
    return 8 if bit_depth == 8 else DEEP_OUTPUT_BITS.get(output_format, 8)


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
    going by its name, and what recnet reads."""
    remedy = conversion_remedy(path)
    return None if remedy is None else f"{remedy} ({READABLE})"


def conversion_remedy(path: str | os.PathLike[str]) -> str | None:
    """What a photo file that recnet cannot read is, and what to do (``a camera RAW file: convert it to TIFF
    or JPEG first``), going by its name; None for another file."""
    return _CONVERT_FIRST.get(Path(path).suffix.lower())


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


def size_problem(fmt: str, width: int, height: int, channels: int = 3) -> str | None:
    """Why a ``width`` x ``height`` picture cannot go into a file of format ``fmt``; None when it can."""
    name = FORMAT_NAMES[fmt][0]
    too_large = f"too large for {name}: {width} x {height} pixels"
    side, pixels = _MAX_SIDE.get(fmt), _MAX_PIXELS.get(fmt)
    if side is not None and max(width, height) > side:
        return f"{too_large}, and {name} holds at most {side:,} per side; {_LARGE_FORMATS}"
    if pixels is not None and width * height > pixels:
        return f"{too_large}, and {name} holds at most {pixels / 1e6:.0f} MP; {_LARGE_FORMATS}"
    bmp_bytes = (width * channels + 3) // 4 * 4 * height + _BMP_HEADERS  # rows padded to 4 bytes
    if fmt == "BMP" and bmp_bytes > MAX_FILE_BYTES:
        return f"{too_large}, more than a BMP file's 4 GiB; {_LARGE_FORMATS}"
    return None


def has_supported_signature(head: bytes) -> bool:
    """Whether a file starts like a JPEG, PNG, TIFF, BMP, WebP or (where supported) AVIF or HEIF."""
    return (
        head.startswith(_SIGNATURES)
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or (HEIF_SUPPORTED and head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS)
        or (AVIF_SUPPORTED and head[4:8] == b"ftyp" and head[8:12] in _AVIF_BRANDS)
    )
