"""Reading photos with their metadata: Pillow decodes them, OpenCV 16-bit PNG and TIFF, pillow-heif 10- and
12-bit HEIF; any problem is an ImageReadError."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import mmap
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, PngImagePlugin, TiffImagePlugin
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

from recnet_cli.files import describe_os_error, input_file_problem
from recnet_cli.hostmemory import memory_limit
from recnet_cli.imaging import icc
from recnet_cli.imaging.arrow import image_samples
from recnet_cli.imaging.colour import cmyk_as_rgb
from recnet_cli.imaging.containers import JPEG_FRAMES, held_chunks, jpeg_segments, png_chunks
from recnet_cli.imaging.damaged import (
    END_MARKER,
    jpeg_short_of_its_end_marker,
    tiff_tags_past_its_end,
    without_damaged_metadata,
)
from recnet_cli.imaging.errors import NO_MEMORY, ImageReadError, PhotoFileError, out_of_host_memory
from recnet_cli.imaging.exif_block import BYTE_ORDERS, ORIENTATION
from recnet_cli.imaging.formats import (
    HEIF_EXTENSIONS,
    PNG_SIGNATURE,
    READABLE,
    READABLE_FORMATS,
    SIXTEEN_BIT_FORMATS,
    conversion_needed,
    enable_heif,
    has_supported_signature,
)
from recnet_cli.imaging.metadata import (
    appended_items,
    intact,
    iptc_record,
    portable_exif,
    source_dpi,
    xmp_orientation,
    xmp_packets,
)
from recnet_cli.imaging.photo import Photo
from recnet_cli.imaging.pixels import ORIENTATIONS, quantise, unit_floats
from recnet_cli.imaging.text import COMMENT, PNG_TEXT, copied_text
from recnet_cli.wording import counted, gibibytes

# Pillow refuses images over twice MAX_IMAGE_PIXELS (179 MP) as possible decompression bombs, but a 240 MP
# pixel-shift photo or a stitched panorama is no bomb, and the model runs at any size. recnet refuses
# instead what this process could not hold even as the model's float32 pixels (``check_pixels_fit``), where it
# knows the memory it may use: the machine's, or its container's or scheduler job's limit.
USABLE_MEMORY = memory_limit()
if USABLE_MEMORY is not None:
    Image.MAX_IMAGE_PIXELS = None
DECODED_BYTES_PER_PIXEL = 12  # float32 RGB
# Pillow unpacks a PNG's compressed text and ICC chunks to at most 1 MB each, against zip bombs; a large
# XMP (an editor's history) or a printer's ICC profile may be more. Its 64 MB for all of them stays.
PngImagePlugin.MAX_TEXT_CHUNK = 16 * 2**20
_TEXT_TOO_LARGE = {  # by the limit Pillow names
    "MAX_TEXT_CHUNK": f"a PNG text or ICC chunk of more than {PngImagePlugin.MAX_TEXT_CHUNK // 2**20} MB",
    "MAX_TEXT_MEMORY": f"PNG text chunks of more than {PngImagePlugin.MAX_TEXT_MEMORY // 2**20} MB in all",
}
# Pillow's modes mapped to the ones read_photo keeps: grey or RGB, with or without alpha.
_PILLOW_CONVERSIONS = {
    "1": "L",
    "P": "RGB",
    "La": "LA",
    "PA": "RGBA",
    "RGBa": "RGBA",
    "RGBX": "RGB",
    "CMYK": "RGB",  # through its profile, where it has one LittleCMS can use: cmyk_as_rgb
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
}
# The same for a picture with a transparent colour or palette entries (a PNG's tRNS chunk): with alpha.
_TRANSPARENT_CONVERSIONS = {"1": "LA", "L": "LA", "P": "RGBA", "RGB": "RGBA"}
_LOW_BIT_GREY_PEAKS = {"L;2": 3, "L;4": 15}  # a 2- or 4-bit grey PNG's largest code, by Pillow's raw mode
_GREY_MODES = frozenset({"L", "LA", "I;16", "I;16L", "I;16B", "I;16N"})
_READABLE_MODES = _GREY_MODES | {"RGB", "RGBA"} | _PILLOW_CONVERSIONS.keys()
# A PNG's colour chunks, by the sizes the PNG specification gives: cICP holds the H.273 codes (primaries,
# transfer curve, matrix, full range), sRGB a rendering intent, gAMA the encoding exponent and cHRM the
# white's and primaries' chromaticities (x 100,000).
_PNG_COLOUR_CHUNKS = {b"cICP": 4, b"sRGB": 1, b"gAMA": 4, b"cHRM": 32}
# The chunks of a 16-bit PNG that OpenCV decodes: those its pixels need, and an RGB one's transparent colour
# (a tRNS chunk of 6 bytes), which OpenCV makes alpha (a grey one's is made alpha here; no 16-bit PNG has a
# palette). OpenCV's libpng prints a line of its own to stderr about damage and about other chunks it finds
# odd ("libpng warning: iCCP: too short", "PLTE: ignored in grayscale PNG", "tRNS: invalid with alpha
# channel"); Pillow has read those, and the damage is checked here first (``_pixel_chunks``).
_PNG_PIXEL_CHUNKS = frozenset({b"IHDR", b"IDAT", b"IEND"})
_PNG_RGB = 2  # IHDR's colour type of RGB without alpha
# Where IHDR's colour type is: after the signature, IHDR's length and type, its width, height and bit depth.
_PNG_COLOUR_TYPE_AT = 25


def read_photo(path: str | os.PathLike[str]) -> Photo:
    """Decode a photo with its metadata; any problem raises ImageReadError."""
    unreadable = conversion_needed(path)
    if unreadable is not None and Path(path).is_file():
        raise ImageReadError(path, unreadable)
    if problem := input_file_problem(path):
        raise ImageReadError(path, problem)
    try:
        with Path(path).open("rb") as file:
            if without := _tiff_bytes_without_tags_past_its_end(file):
                # Pillow reads such a TIFF, if at all, silently without the tags after those: it is read
                # without those alone, and where that fails, that is why (its pixels, not its tags)
                return _read_without(path, *without)
            try:
                return _read_open_file(path, file)
            except ImageReadError as error:
                if error.reason != _DAMAGED:
                    raise
                data = _read_all(file)
                if photo := _read_without_damaged_metadata(path, data) or _read_with_end_marker(path, data):
                    return photo
                raise
    except OSError as error:
        raise ImageReadError(path, describe_os_error(error)) from error


_DAMAGED = "truncated or corrupt image data"


def _read_without_damaged_metadata(path: str | os.PathLike[str], data: bytes) -> Photo | None:
    """A PNG or JPEG with damaged metadata that Pillow refuses it for, read without it, each way of leaving
    it out in turn (``damaged.without_damaged_metadata``); None where none reads a picture, or where there is
    nothing to leave out."""
    for kept, left_out in without_damaged_metadata(data):
        with contextlib.suppress(PhotoFileError):  # not that part's fault
            return _read_without(path, kept, left_out)
    return None


def _read_without(path: str | os.PathLike[str], kept: bytes, left_out: tuple[str, ...]) -> Photo:
    """A photo read from its file's bytes with damaged metadata left out, which is named as damaged."""
    photo = _read_open_file(path, io.BytesIO(kept))
    return dataclasses.replace(photo, damaged_metadata=(*photo.damaged_metadata, *left_out))


# What goes between a JPEG's scan and the end marker put back (``_scan_whole``): libjpeg passes over bytes
# after a whole scan, and decodes them as its picture where it was cut short. Each starts with other bits, so
# that one at least decodes otherwise than the zero bits libjpeg makes up for what is missing (one alone
# decoded alike, by chance, for up to 1 in 45 of small JPEGs cut in their last 64 bytes; the five, for none
# of 68,000 cuts), and runs past what is left of the last MCU: 100 bytes may all go to its blocks past the
# picture's edge, which show nothing.
_FILLERS = (
    b"\x55" * 4096,
    b"\xaa" * 4096,
    b"\xff\x00" * 2048,  # 0xFF data bytes, each stuffed with a 0
    # no 0xFF: in a scan, one would start a marker
    *(bytes(random.Random(seed).choices(range(255), k=4096)) for seed in (1, 2)),
)


def _read_with_end_marker(path: str | os.PathLike[str], data: bytes) -> Photo | None:
    """A JPEG without its end marker (EOI), the file's last 2 bytes (a download cut short there, or a file
    recovered from a card), read with it put back, where its scan is whole (``_scan_whole``); None where it
    is not, or cannot be told whole (``damaged.jpeg_short_of_its_end_marker``)."""
    jpeg = jpeg_short_of_its_end_marker(data)
    if jpeg is None or not _scan_whole(path, jpeg):
        return None
    with contextlib.suppress(PhotoFileError):  # not the end marker's fault
        photo = _read_open_file(path, io.BytesIO(jpeg + END_MARKER))
        return dataclasses.replace(photo, end_marker_missing=True)
    return None


def _scan_whole(path: str | os.PathLike[str], jpeg: bytes) -> bool:
    """Whether a JPEG's scan, its end marker put back, is whole: libjpeg decodes it alike with each of
    ``_FILLERS`` before the marker, as without, which it passes over only after a whole scan."""
    decoded = _decoded(path, jpeg + END_MARKER)
    return decoded is not None and all(
        _decoded(path, jpeg + filler + END_MARKER) == decoded for filler in _FILLERS
    )


def _decoded(path: str | os.PathLike[str], jpeg: bytes) -> bytes | None:
    """A JPEG's pixels as Pillow decodes them; None where it fails, but for want of memory (``path``'s
    ImageReadError, as for any photo)."""
    try:
        image = Image.open(io.BytesIO(jpeg))
    except Exception:  # parsers raise any kind on damaged data
        return None
    with image:
        try:
            return image.tobytes()
        except Exception as error:  # decoders too
            if out_of_host_memory(error):  # not the file's fault: it must not read as a damaged file
                megapixels = image.width * image.height / 1e6
                raise ImageReadError(path, NO_MEMORY.format("decode", megapixels)) from None
            return None


def _read_all(file: BinaryIO) -> bytes:
    """A file's bytes, from its start."""
    file.seek(0)
    return file.read()


def _tiff_bytes_without_tags_past_its_end(file: BinaryIO) -> tuple[bytes, tuple[str, ...]] | None:
    """A classic TIFF's bytes without the tags of its first directory whose values lie past its end, and
    their names (``damaged.without_damaged_metadata``); None where it has none, found with the file mapped,
    before it is read whole."""
    file.seek(0)
    if file.read(4) not in BYTE_ORDERS:  # a classic TIFF's signature, not BigTIFF's
        return None
    with _whole_file(file) as data:
        if not tiff_tags_past_its_end(data)[1]:
            return None
    return next(without_damaged_metadata(_read_all(file)), None)  # None where it changed since


def header_megapixels(path: str | os.PathLike[str]) -> float:
    """The image's size in megapixels from its header, without decoding it; 0 when it cannot be read
    (or should not be: a FIFO would block)."""
    size = header_size(path)
    return 0.0 if size is None else size[0] * size[1] / 1e6


def header_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """The image's (height, width) as its header says, stored (before EXIF orientation), without decoding
    it; None when it cannot be read (or should not be: a FIFO would block), or its file is too small for
    that many pixels (``impossible_size``: reading it says so)."""
    if input_file_problem(path):
        return None
    enable_heif()
    try:
        with Path(path).open("rb") as file, Image.open(file) as image:
            return None if impossible_size(image, file) else (image.height, image.width)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return None


# The most pixels a byte of a file can hold, with room to spare (twice), where its format's coding bounds it:
# PNG's deflate packs at most 1,032 bytes into one, of 8 one-bit pixels each; a JPEG's Huffman coding takes
# a bit at least for each 8 x 8 block of pixels (an arithmetic-coded one is not bounded so)
_MOST_PIXELS_PER_BYTE = {"PNG": 2 * 1032 * 8, "JPEG": 2 * 64 * 8, "MPO": 2 * 64 * 8}
_HUFFMAN_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7})
_JPEG_PRECISIONS = range(2, 17)  # bits a sample a JPEG's frame may give: 8 or 12 (DCT), 2 to 16 (lossless)


def impossible_size(image: Image.Image, file: BinaryIO) -> str | None:
    """Why an image's file is too small to hold the pixels its header says it has (a damaged header, which
    would otherwise decode as minutes of one flat colour, or fail for memory it does not need), where its
    format bounds how many pixels a byte holds (``_MOST_PIXELS_PER_BYTE``); None where it may hold them."""
    most = _MOST_PIXELS_PER_BYTE.get(str(image.format))
    if most is None:
        return None
    with _whole_file(file) as data:
        if image.format != "PNG" and not _huffman_coded(data):
            return None
        size = len(data)
    if image.width * image.height <= most * size:
        return None
    return (
        f"{_DAMAGED}: its header says it has {image.width} x {image.height} pixels, "
        f"more than its {size:,} bytes can hold"
    )


@contextlib.contextmanager
def _whole_file(file: BinaryIO) -> Iterator[bytes | mmap.mmap]:
    """A file's bytes, whatever its position: mapped where it is on disk, as they are where it is held in
    memory (a file read again without a damaged part of it)."""
    if isinstance(file, io.BytesIO):
        yield file.getvalue()
        return
    with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield data


def _huffman_coded(data: bytes | mmap.mmap) -> bool:
    """Whether a JPEG's frame (its SOF marker) is Huffman-coded; False for an arithmetic-coded one, and where
    no frame comes before the scan."""
    at = _jpeg_frame(data)
    return at is not None and data[at + 1] in _HUFFMAN_FRAMES


def _jpeg_frame(data: bytes | mmap.mmap) -> int | None:
    """Where a JPEG's frame (its SOF marker) starts; None where no frame comes before the scan."""
    return next((at for marker, at, _ in jpeg_segments(data) if marker in JPEG_FRAMES), None)


def _unopened_jpeg_pixel_type(file: BinaryIO) -> str | None:
    """What a JPEG that Pillow could not open holds where its frame says samples of other than 8 bits ("12-bit
    JPEG": medical and scientific cameras write them, and Pillow opens none); None otherwise."""
    with _whole_file(file) as data:
        at = _jpeg_frame(data) if data[:2] == b"\xff\xd8" else None
        precision = data[at + 4] if at is not None and at + 4 < len(data) else 8  # after the length
    return f"{precision}-bit JPEG" if precision != 8 and precision in _JPEG_PRECISIONS else None


def _read_open_file(path: str | os.PathLike[str], file: BinaryIO) -> Photo:
    if (heif_broken := enable_heif()) and Path(path).suffix.lower() in HEIF_EXTENSIONS:
        raise ImageReadError(path, f"an HEIF photo: {heif_broken}, or convert it to JPEG")
    size = (0, 0)
    try:
        with Image.open(file) as image:
            size = image.size
            if problem := impossible_size(image, file):
                raise ImageReadError(path, problem)
            check_pixels_fit(path, image.height, image.width)
            _check_supported(path, image)
            return _decode(image, file)
    except Image.UnidentifiedImageError as error:
        file.seek(0)
        if not has_supported_signature(file.read(12)):
            raise ImageReadError(path, "not an image, or an unsupported format") from error
        # Pillow opens no TIFF of a pixel type it does not know, nor a JPEG of other than 8 bits
        kind = _unopened_tiff_pixel_type(file) or _unopened_jpeg_pixel_type(file)
        reason = _DAMAGED if kind is None else _UNSUPPORTED_PIXELS.format(kind)
        raise ImageReadError(path, reason) from error
    except Image.DecompressionBombError as error:
        raise ImageReadError(path, f"image too large: {error}") from error
    except PhotoFileError:
        raise
    except Exception as error:  # decoders raise any kind on damaged data (pillow-heif ValueError, AVIF's
        # RuntimeError, TIFF's TypeError), and a damaged file must fail alone, not stop the batch
        if out_of_host_memory(error):  # not the file's fault: it must not read as a damaged file
            raise ImageReadError(path, NO_MEMORY.format("decode", size[0] * size[1] / 1e6)) from None
        if limit := next((name for name in _TEXT_TOO_LARGE if name in str(error)), None):
            why = f"its metadata is too large to read ({_TEXT_TOO_LARGE[limit]} unpacked)"
            raise ImageReadError(path, why) from None
        raise ImageReadError(path, _DAMAGED) from error


def _check_supported(path: str | os.PathLike[str], image: Image.Image) -> None:
    if image.format not in READABLE_FORMATS:
        raise ImageReadError(path, f"unsupported image format {image.format} ({READABLE})")
    layout = _sixteen_bit_layout(image)
    # Pillow narrows 16-bit CMYK to 8 bits, and OpenCV does not decode it; Pillow reads signed 8-bit grey
    # as unsigned (-1 as 255, white for near black).
    signed = image.format == "TIFF" and 2 in (image.tag_v2.get(SAMPLEFORMAT) or ())
    if layout == "CMYK" or signed or (layout is None and image.mode not in _READABLE_MODES):
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
    extra = ["alpha"] * alpha + [counted(others, "other channel")] * (others > 0)
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
    if image.format == "TIFF":
        _tiff_blocks_as_bytes(image)
    layout = _sixteen_bit_layout(image)
    # Pillow turns a TIFF's pixels upright while decoding them, by its Orientation tag or, without one, its
    # XMP's (and drops the tag then); OpenCV, which decodes 16-bit ones, by the tag alone. No other format's
    # decoder turns them.
    tiff_orientation = _tiff_orientation(image) if image.format == "TIFF" else None
    decoder_turns = image.format == "TIFF" and (layout is None or ORIENTATION in image.tag_v2)
    depth = image.info.get("bit_depth", 8) if image.format == "HEIF" else 8
    icc_profile, uncalibrated_cmyk = image.info.get("icc_profile"), None
    if depth > 8:
        samples, grayscale = _deep_heif_samples(file, depth)
    elif image.mode == "CMYK" and layout is None:
        rgb, uncalibrated_cmyk = cmyk_as_rgb(image)
        samples, grayscale, icc_profile = image_samples(rgb), False, None  # its profile described ink
    elif layout is None:
        samples, grayscale = _pillow_samples(image)
    else:
        deep_samples = _deep_tiff_samples if image.format == "TIFF" else _deep_png_samples
        samples, grayscale = deep_samples(file, image, layout)
        depth = 16
    if image.format == "HEIF" and samples.shape[2] == 4 and "chroma" not in image.info and _all_grey(samples):
        samples, grayscale = samples[..., [0, 3]], True  # libheif decodes grey (no chroma) with alpha to RGBA
    png_colour, text = _png_kept_chunks(file) if image.format == "PNG" else ((), _jpeg_comments(image))
    damaged: list[str] = []
    unusable_profile = icc.unusable_for(icc_profile, grayscale) if icc_profile else None
    icc_profile = None if unusable_profile else icc_profile
    # A 16-bit PNG's metadata is all read by now (``_deep_png_samples``): Pillow's PNG ``getexif`` would
    # decode its pixels again, looking for an eXIf chunk after them (half a second for 12 MP)
    read_tags = Image.Image.getexif if image.format == "PNG" and layout is not None else type(image).getexif
    exif = intact(functools.partial(read_tags, image), "EXIF", damaged)
    xmp, extended_xmp = xmp_packets(image, damaged)
    if tiff_orientation is None:
        orientation = 1 if exif is None else exif.get(ORIENTATION, 1)
    else:
        orientation = tiff_orientation
    if not decoder_turns:
        samples = ORIENTATIONS.get(orientation, lambda a: a)(samples)
    dpi = source_dpi(image, orientation, exif)  # before ``read_exif`` turns a TIFF's resolution
    read_exif = functools.partial(
        portable_exif, exif, image.info.get("exif"), (samples.shape[1], samples.shape[0]), orientation
    )
    colour = samples[..., :-1] if samples.shape[2] in (2, 4) else samples
    peak = (1 << depth) - 1
    alpha = np.ascontiguousarray(samples[..., -1]) if samples.shape[2] in (2, 4) else None
    if alpha is not None and depth not in (8, 16):
        alpha = quantise(alpha / np.float32(peak), 16)  # 16 bits hold every 10- or 12-bit code
    return Photo(
        pixels=unit_floats(colour, peak),
        alpha=alpha,
        bit_depth=depth,
        grayscale=grayscale,
        exif=None if exif is None else intact(read_exif, "EXIF", damaged),
        icc_profile=icc_profile,
        dpi=dpi,
        source_format=image.format,
        frames=_frame_count(image),
        xmp=xmp,
        extended_xmp=extended_xmp,
        iptc=iptc_record(image),
        nclx=image.info.get("nclx_profile") if image.format == "HEIF" else None,
        chroma=image.info.get("chroma") if image.format == "HEIF" else None,
        damaged_metadata=tuple(dict.fromkeys(damaged)),
        png_colour=png_colour,
        text=copied_text(text),
        appended=tuple(appended_items(image.info.get("xmp"))),
        lossless=image.format == "WEBP" and _webp_lossless(file),
        uncalibrated_cmyk=uncalibrated_cmyk,
        unusable_profile=unusable_profile,
    )


def _tiff_orientation(image: Image.Image) -> int:
    """The orientation Pillow turns a TIFF's pixels upright by: its Orientation tag's, or without one its
    XMP's."""
    tagged = image.tag_v2.get(ORIENTATION)
    return xmp_orientation(image.info.get("xmp")) if tagged is None else tagged


# A TIFF's tags that hold a block of bytes, by the name Pillow gives their values in ``info``: the ICC profile
# and the XMP packet.
_TIFF_BLOCKS = {"icc_profile": 34675, "xmp": 700}


def _tiff_blocks_as_bytes(image: Image.Image) -> None:
    """Makes a TIFF's ICC profile and XMP packet, which Pillow hands over as its tags' values, the bytes the
    file holds where a damaged file's tag of another type (SHORT, ASCII) made them numbers or text: Pillow's
    own reading of the XMP (for an orientation, as it decodes the pixels) and recnet's of both take bytes,
    and failed the photo as damaged. They are then read as any other: a profile that is none is left out,
    with a note."""
    for name, tag in _TIFF_BLOCKS.items():
        value = image.info.get(name)
        if value is not None and not isinstance(value, bytes):
            raw = getattr(image.tag_v2, "_tagdata", {}).get(tag)
            image.info[name] = bytes(raw) if isinstance(raw, bytes | bytearray) else b""


def _all_grey(samples: np.ndarray) -> bool:
    """Whether every pixel of H x W x 3 or 4 samples (RGB, then alpha) has R = G = B."""
    red, green, blue = samples[..., 0], samples[..., 1], samples[..., 2]
    return np.array_equal(red, green) and np.array_equal(green, blue)


def _webp_lossless(file: BinaryIO) -> bool:
    """Whether a WebP's (first) picture is lossless, a VP8L bitstream, rather than lossy VP8: Pillow does not
    say. Its chunks follow the 12-byte RIFF header; an animation's first frame (ANMF) holds its picture's
    chunks after a 16-byte header of its own."""
    file.seek(12)
    while len(header := file.read(8)) == 8:
        kind, size = header[:4], int.from_bytes(header[4:], "little")
        if kind in (b"VP8 ", b"VP8L"):
            return kind == b"VP8L"
        file.seek(16 if kind == b"ANMF" else size + (size & 1), os.SEEK_CUR)
    return False


def check_pixels_fit(path: str | os.PathLike[str], height: int, width: int) -> None:
    """Refuses an image that the memory this process may use could not hold as float32 pixels: a
    decompression bomb, or a photo beyond this machine or its memory limit (said from its header, before
    anything else of it)."""
    needed = height * width * DECODED_BYTES_PER_PIXEL
    if USABLE_MEMORY is not None and needed > USABLE_MEMORY:
        raise ImageReadError(
            path,
            f"image too large: its {width} x {height} pixels would take {gibibytes(needed)} as "
            f"float32, more than the {gibibytes(USABLE_MEMORY)} of memory this process may use",
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
    samples = image_samples(image)
    samples = samples.astype(samples.dtype.newbyteorder("="), copy=False)
    return (samples[..., None] if samples.ndim == 2 else samples), image.mode in _GREY_MODES


def _opencv_samples(data: bytes, layout: str) -> tuple[np.ndarray, bool]:
    """H x W x C uint16 samples (grey or RGB, then alpha) of a 16-bit file's bytes, decoded by OpenCV."""
    decoded = _opencv_decode(data)
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
    file.seek(0)
    samples, grayscale = _opencv_samples(_pixel_chunks(file.read()), layout)
    if _metadata_after_pixels(file):  # Pillow reads those chunks only as it decodes the pixels
        image.load()
    key = image.info.get("transparency")
    if key is None or samples.shape[2] != 1:
        return samples, grayscale
    return np.dstack([samples, np.where(samples == key, 0, 0xFFFF).astype(np.uint16)]), grayscale


def _pixel_chunks(png: bytes) -> bytes:
    """A 16-bit PNG's signature and the chunks its pixels need (``_PNG_PIXEL_CHUNKS``), for OpenCV; a chunk
    cut short or whose CRC does not match, or a PNG without its IEND chunk, is an OSError."""
    view = memoryview(png)
    kept = [view[: len(PNG_SIGNATURE)]]
    for kind, start, end, crc_matches in held_chunks(png):
        if not crc_matches:
            raise OSError(f"the CRC of the PNG's {kind!r} chunk does not match its data")
        rgb_key = kind == b"tRNS" and end - start == 12 + 6 and png[_PNG_COLOUR_TYPE_AT] == _PNG_RGB
        if kind in _PNG_PIXEL_CHUNKS or rgb_key:
            kept.append(view[start:end])
        if kind == b"IEND":
            return b"".join(kept)
    raise OSError("the PNG ends before its IEND chunk")


def _metadata_after_pixels(file: BinaryIO) -> bool:
    """Whether a PNG has metadata after its pixel data: a text chunk (tEXt, zTXt, iTXt: an XMP packet, say)
    or its EXIF (eXIf)."""
    pixels_seen = False
    for kind, _ in png_chunks(file):
        if pixels_seen and kind in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"):
            return True
        pixels_seen |= kind == b"IDAT"
    return False


def _png_kept_chunks(file: BinaryIO) -> tuple[tuple[tuple[bytes, bytes], ...], list[tuple[bytes, bytes]]]:
    """In one pass over a PNG's chunks, as (type, data): its colour chunks before its pixels (cICP, sRGB,
    gAMA, cHRM: what its colours are, where it has no ICC profile or beside one; one of another size than
    the specification's is left out, and of two of a type the last kept), and its text chunks (tEXt, zTXt,
    iTXt), wherever they are."""
    colour: dict[bytes, bytes] = {}
    text = []
    pixels_seen = False
    for kind, length in png_chunks(file):
        pixels_seen |= kind == b"IDAT"
        if kind in PNG_TEXT:
            text.append((kind, file.read(length)))
        elif not pixels_seen and _PNG_COLOUR_CHUNKS.get(kind) == length:
            colour[kind] = file.read(length)
    return tuple(colour.items()), text


def _jpeg_comments(image: Image.Image) -> list[tuple[bytes, bytes]]:
    """A JPEG's comments (COM segments), as (``text.COMMENT``, data); none of another format."""
    return [(COMMENT, data) for marker, data in getattr(image, "applist", ()) if marker == "COM"]


def _deep_tiff_samples(file: BinaryIO, image: Image.Image, layout: str) -> tuple[np.ndarray, bool]:
    """H x W x C uint16 samples (grey or RGB, then alpha) of a 16-bit TIFF, decoded by OpenCV. OpenCV and
    Pillow both mix up the planes of an RGB(A) TIFF stored plane by plane: those are decoded a plane at a
    time (``_plane_tiffs``). Both leave MinIsWhite grey as stored: it is turned round here. An RGB TIFF's
    unspecified extra channel (Pillow's mode "RGB" for "RGBX") is left out, not taken for alpha. Colour
    premultiplied by alpha (associated alpha) is made straight, as the rest of recnet has it."""
    tags = image.tag_v2
    file.seek(0)
    data = file.read()
    if tags.get(PLANAR_CONFIGURATION, 1) == 2 and layout in ("RGB", "RGBA"):
        samples = np.dstack([_opencv_decode(plane) for plane in _plane_tiffs(data, tags, len(layout))])
        grayscale = False
    else:
        samples, grayscale = _opencv_samples(data, layout)
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
