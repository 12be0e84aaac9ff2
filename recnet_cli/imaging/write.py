"""Writing photos, atomically, with the bit depth, alpha, colours and metadata of the photo they come from:
PNG and TIFF by recnet's own encoders, HEIF by pillow-heif, the rest by Pillow; and the mark that tells the
files recnet wrote."""

from __future__ import annotations

import errno
import io
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, TiffImagePlugin, TiffTags
from PIL.TiffImagePlugin import (
    BITSPERSAMPLE,
    COMPRESSION,
    EXTRASAMPLES,
    ICCPROFILE,
    IMAGELENGTH,
    IMAGEWIDTH,
    PHOTOMETRIC_INTERPRETATION,
    PLANAR_CONFIGURATION,
    PREDICTOR,
    RESOLUTION_UNIT,
    ROWSPERSTRIP,
    SAMPLESPERPIXEL,
    STRIPBYTECOUNTS,
    STRIPOFFSETS,
    X_RESOLUTION,
    XMP,
    Y_RESOLUTION,
)

from recnet_cli.atomicfile import atomic_file, mark_written, written_by_recnet
from recnet_cli.files import describe_os_error
from recnet_cli.imaging.colour import converted_in_bands, output_colour, written_in_grey_mode
from recnet_cli.imaging.errors import (
    NO_MEMORY,
    ImageWriteError,
    OutputExistsError,
    Unencodable,
    out_of_host_memory,
)
from recnet_cli.imaging.exif_block import (
    EXIF_HEADER,
    ORIENTATION,
    RESOLUTIONS,
    edited_exif,
    entry_tag,
    first_directory,
    in_block,
)
from recnet_cli.imaging.formats import (
    ALPHA_FORMATS,
    MAX_FILE_BYTES,
    PNG_SIGNATURE,
    enable_heif,
    format_for,
    size_problem,
    written_bits,
)
from recnet_cli.imaging.metadata import (
    IPTC_TAG,
    jpeg_segment,
    left_out,
    metadata_blocks,
    output_exif,
    photoshop_segment,
    xmp_segments,
)
from recnet_cli.imaging.photo import Metadata, Photo
from recnet_cli.imaging.pixels import alpha_at_depth, luma, quantise
from recnet_cli.imaging.text import text_for
from recnet_cli.wording import gibibytes

_PNG_BAND_BYTES = 1 << 24  # rows filtered and compressed at a time
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey+alpha, RGB, RGBA


def check_output_size(path: str | os.PathLike[str], photo: Photo) -> None:
    """Refuses, before any work, an output of ``photo`` that its format could not hold (a JPEG panorama
    over 65,500 pixels wide); the format goes by the name."""
    height, width = photo.pixels.shape[:2]
    problem = size_problem(format_for(path), width, height, 1 if photo.grayscale else 3)
    if problem is not None:
        raise ImageWriteError(path, problem)


DEFAULT_QUALITY = 95  # JPEG, WebP, AVIF and HEIF: JPEG at 90 or more keeps full 4:4:4 colour


def write_photo(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    like: Photo,
    *,
    quality: int | None = None,
    overwrite: bool = True,
) -> None:
    """Atomically write corrected ``pixels`` with the bit depth, alpha and metadata of ``like``; without
    ``overwrite``, a file at ``path`` is kept (OutputExistsError), as for every writer here. A lossy format
    is written at ``quality``; when it is None, a WebP of a lossless WebP is lossless, others take 95."""
    fmt = format_for(path)
    depth = written_bits(like.bit_depth, fmt)
    grayscale = written_in_grey_mode(like, fmt)
    icc_profile, conversion = output_colour(like, fmt)
    dropped = left_out(like, fmt)
    exif, xmp, iptc = (None if name in dropped else block for name, block in metadata_blocks(like).items())
    exif = exif and output_exif(exif, fmt)
    dpi = None if "resolution" in dropped else like.dpi
    extended_xmp = like.extended_xmp if fmt == "JPEG" else None
    png_colour = like.png_colour if fmt == "PNG" else ()
    lossless = like.lossless and quality is None
    text, _ = text_for(like.text, fmt)
    metadata = Metadata(
        exif, icc_profile, dpi, xmp, iptc, like.nclx, like.chroma, extended_xmp, png_colour, lossless, text
    )
    try:
        colour = luma(pixels) if like.grayscale else pixels
        if conversion is not None and conversion.convert is not None:
            colour = converted_in_bands(conversion.convert, colour)
        if like.grayscale and not grayscale:  # a format without a grey mode for it: grey all the same
            colour = np.repeat(colour[..., None], 3, axis=2)
        channels = [quantise(colour, depth)]
        if like.alpha is not None and fmt in ALPHA_FORMATS:
            channels.append(alpha_at_depth(like.alpha, depth))
        samples = np.dstack(channels) if len(channels) > 1 else channels[0].reshape(*pixels.shape[:2], -1)
        _save(path, fmt, samples, DEFAULT_QUALITY if quality is None else quality, metadata, overwrite)
    except (MemoryError, cv2.error) as error:
        if not out_of_host_memory(error):
            raise
        megapixels = pixels.shape[0] * pixels.shape[1] / 1e6
        raise ImageWriteError(path, NO_MEMORY.format("encode", megapixels)) from None


def write_png16(path: str | os.PathLike[str], grey: np.ndarray, *, overwrite: bool = True) -> None:
    """Atomically write an H x W uint16 array as a 16-bit greyscale PNG; ``path`` must end in .png."""
    if format_for(path) != "PNG":
        raise ImageWriteError(path, "a 16-bit greyscale mask is written as PNG: use a .png name")
    _save(path, "PNG", grey.astype(np.uint16)[..., None], overwrite=overwrite)


def write_rgb8(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    *,
    quality: int | None = None,
    overwrite: bool = True,
    marked: bool = True,
) -> None:
    """Atomically write an H x W x 3 uint8 array, in the format of the path's extension (at ``quality``, or
    95, where it is lossy), with recnet's mark (``mark_written``) unless not ``marked``: a photo prepared to
    train or score on, which commands must not pass over as one of recnet's outputs."""
    quality = DEFAULT_QUALITY if quality is None else quality
    _save(path, format_for(path), rgb.astype(np.uint8), quality, overwrite=overwrite, marked=marked)


@contextmanager
def atomic_output(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[BinaryIO]:
    """A file to write an output into, that takes the name ``path`` only if the block succeeds (see
    ``atomicfile.atomic_file``). Without ``overwrite`` a file there when the block ends is kept and
    OutputExistsError raised; other OSErrors become ImageWriteError."""
    try:
        with atomic_file(path, overwrite=overwrite) as file:
            yield file
    except OSError as error:
        if isinstance(error, FileExistsError) and os.path.isdir(path):  # which --overwrite would not replace
            raise ImageWriteError(path, "is a folder", errno.EISDIR) from None
        if isinstance(error, FileExistsError) and not overwrite:
            raise OutputExistsError(path) from None
        raise ImageWriteError(path, describe_os_error(error), error.errno) from error


def _save(
    path: str | os.PathLike[str],
    fmt: str,
    samples: np.ndarray,
    quality: int = DEFAULT_QUALITY,
    metadata: Metadata = Metadata(),
    overwrite: bool = True,
    marked: bool = True,
) -> None:
    """Atomically write H x W x C samples in ``fmt`` (see ``atomic_output`` for ``overwrite``), with recnet's
    mark where ``marked``; one the format cannot hold is an ImageWriteError."""
    height, width, channels = samples.shape
    problem = size_problem(fmt, width, height, channels)
    if problem is not None:
        raise ImageWriteError(path, problem)
    try:
        with atomic_output(path, overwrite=overwrite) as file:
            _write_samples(file, fmt, samples, quality, metadata)
            if marked:
                mark_written(file)
    except Unencodable as error:
        raise ImageWriteError(path, str(error)) from None


def kept_from_overwrite(path: str | os.PathLike[str]) -> str | None:
    """Why the file at ``path`` is one that even --overwrite must not replace: a link (recnet writes none),
    a file without recnet's mark as recnet left it (``written_by_recnet``), or one made read-only; said as
    what follows "<path> exists, and". None for recnet's own as it left them (where the file system keeps no
    marks, for any file but a link or a read-only one)."""
    if os.path.islink(path):
        return "it is a link, which recnet never writes"
    if not os.path.isfile(path):  # a folder or a FIFO is refused as one
        return None
    if written_by_recnet(path) is False:
        return (
            "recnet did not write it (it lacks recnet's mark: a file of yours, a copy, or an edited output)"
        )
    if not os.stat(path).st_mode & 0o222:  # as `rm` and `mv` ask first, and root's writes would not fail
        return "it is read-only (chmod u+w lets --overwrite replace it)"
    return None


def _write_samples(
    file: BinaryIO,
    fmt: str,
    samples: np.ndarray,
    quality: int = DEFAULT_QUALITY,
    metadata: Metadata = Metadata(),
) -> None:
    """Write H x W x C samples (grey or RGB, then optional alpha; uint8 or uint16) in ``fmt`` into ``file``.

    PNG and TIFF use recnet's encoders, which handle 16-bit colour and keep the EXIF block whole; JPEG uses
    OpenCV for the picture and Pillow for the metadata (see ``_write_jpeg``); HEIF uses pillow-heif (uint16
    samples are 10-bit codes there); the rest use Pillow.
    """
    if fmt == "HEIF":
        _write_heif(file, samples, quality, metadata)
    elif fmt == "JPEG":
        _write_jpeg(file, samples, quality, metadata)
    elif fmt == "PNG":
        _write_png(file, samples, metadata)
    elif fmt == "TIFF":
        file.write(_encode_tiff(samples, metadata))
    else:
        image = Image.fromarray(samples.squeeze(axis=2) if samples.shape[2] == 1 else samples)
        # Into memory, then to the file: Pillow's encoders write to a file's descriptor themselves and
        # ignore a short write, so a full disk left a cut file that passed for a finished one.
        encoded = io.BytesIO()
        image.save(encoded, format=fmt, **_pillow_options(fmt, quality, metadata))
        file.write(encoded.getbuffer())


def _write_jpeg(file: BinaryIO, samples: np.ndarray, quality: int, metadata: Metadata) -> None:
    """A JPEG of H x W x C uint8 samples (grey or RGB): the metadata segments as Pillow writes them (from a
    one-pixel picture), then the picture as OpenCV encodes it. Both use libjpeg-turbo with the same
    settings, so the file is the one Pillow writes, but OpenCV lets Python's other threads run while it
    encodes, where Pillow's encoder holds the GIL: with Pillow, a GPU lane's writer threads kept its
    compute thread from launching kernels (``benchmarks/bench_gil.py``)."""
    options = _pillow_options("JPEG", quality, metadata)
    grey = samples.shape[2] == 1
    header = io.BytesIO()
    Image.new("L" if grey else "RGB", (1, 1)).save(header, format="JPEG", **options)
    settings = [cv2.IMWRITE_JPEG_QUALITY, quality]
    if options.get("subsampling") == 0:
        settings += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    pixels = samples if grey else cv2.cvtColor(samples, cv2.COLOR_RGB2BGR)
    encoded, picture = cv2.imencode(".jpg", pixels, settings)
    if not encoded:
        raise Unencodable("OpenCV's JPEG encoder failed on this picture; write PNG or TIFF instead")
    metadata_part, picture = header.getbuffer(), memoryview(picture.reshape(-1))
    file.write(metadata_part[: _frame_start(metadata_part)])
    file.write(picture[_frame_start(picture) :])


def _frame_start(jpeg: memoryview) -> int:
    """Where a JPEG's frame begins: after its start-of-image marker and the APPn and COM segments (the
    metadata) that follow it."""
    at = 2
    while jpeg[at] == 0xFF and (0xE0 <= jpeg[at + 1] <= 0xEF or jpeg[at + 1] == 0xFE):
        at += 2 + int.from_bytes(jpeg[at + 2 : at + 4], "big")
    return at


def _pillow_options(fmt: str, quality: int, metadata: Metadata) -> dict[str, object]:
    """Pillow ``save`` keywords for JPEG, WebP, AVIF and BMP: the metadata each can hold, and its
    settings."""
    exif, icc_profile, dpi, xmp = metadata.exif, metadata.icc_profile, metadata.dpi, metadata.xmp
    no_dpi = {"exif": exif, "icc_profile": icc_profile, "xmp": xmp, "quality": quality}
    candidates: dict[str, object] = {
        "JPEG": {**no_dpi, "xmp": None, "dpi": dpi},  # its XMP goes in "extra", below
        # A lossless one at the encoder's least effort (5 MP in 0.6 s, 1.8 s at its default, for 0.1% more),
        # with the colour under transparent pixels kept (exact), as in a PNG.
        "WEBP": {**no_dpi, "lossless": True, "quality": 0, "exact": True} if metadata.lossless else no_dpi,
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
        iptc = photoshop_segment(metadata.iptc) if metadata.iptc else b""
        comments = b"".join(jpeg_segment(0xFE, comment) for _, comment in metadata.text)
        candidates["extra"] = xmp_segments(xmp, metadata.extended_xmp) + iptc + comments
    return {key: value for key, value in candidates.items() if value is not None}


def _write_heif(file: BinaryIO, samples: np.ndarray, quality: int, metadata: Metadata) -> None:
    """An 8-bit or (from uint16 samples of 10-bit codes) 10-bit HEIF, with EXIF, XMP, the ICC profile or the
    nclx colour description, and the source's chroma subsampling; x265's fastest preset: 12 MP in 2.5 s on 2
    CPU cores (18 s at its default), for files 17% larger at the same quality."""
    if heif_broken := enable_heif():
        raise Unencodable(f"cannot write HEIF: {heif_broken}, or write another format")
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
        raise Unencodable(
            f"the HEIF encoder refused this {width} x {height} picture ({error}); write PNG, TIFF or JPEG "
            "instead"
        ) from error


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_png(file: BinaryIO, samples: np.ndarray, metadata: Metadata) -> None:
    """An 8- or 16-bit PNG of H x W x C samples (C = 1..4), with optional colour (cICP, sRGB, gAMA, cHRM),
    iCCP, eXIf, pHYs, XMP and text chunks.

    The pixels are filtered and compressed a band of rows at a time, each band's output in IDAT chunks of
    its own: no copy of the whole picture, and no chunk over PNG's 2 GiB limit at any size.
    """
    exif, icc_profile, dpi = metadata.exif, metadata.icc_profile, metadata.dpi
    height, width, channels = samples.shape
    pixel_bytes = channels * samples.dtype.itemsize
    depth = 8 * samples.dtype.itemsize
    header = struct.pack(">IIBBBBB", width, height, depth, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    file.write(PNG_SIGNATURE + _png_chunk(b"IHDR", header))
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
    for kind, data in metadata.text:  # the photo's text chunks (Title, Author), and its comment
        file.write(_png_chunk(kind, data))
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


# The types TIFF gives its resolution tags: XResolution and YResolution one RATIONAL each, ResolutionUnit
# one SHORT.
_RESOLUTION_TYPES = {
    X_RESOLUTION: TiffTags.RATIONAL,
    Y_RESOLUTION: TiffTags.RATIONAL,
    RESOLUTION_UNIT: TiffTags.SHORT,
}


def _tiff_resolution(entries: dict[int, bytes], order: str) -> bool:
    """Whether an EXIF's first directory ``entries`` (by tag) hold a resolution a TIFF can take as its own:
    XResolution and YResolution, and any ResolutionUnit, each one value of TIFF's type for it. A damaged
    EXIF's, of text or another type, would make a TIFF that readers refuse or misread."""
    if not all(tag in entries for tag in RESOLUTIONS):
        return False
    return all(
        struct.unpack_from(order + "HI", entries[tag], 2) == (kind, 1)
        for tag, kind in _RESOLUTION_TYPES.items()
        if tag in entries
    )


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
    if 8 + tags + len(strip) > MAX_FILE_BYTES:  # the header, the tags with their metadata, then the strip
        raise Unencodable(
            f"too large for TIFF: {width} x {height} pixels compress to {gibibytes(len(strip))}, more "
            "than a TIFF file's 4 GiB; write PNG instead"
        )
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=block[:2])
    ifd[IMAGEWIDTH], ifd[IMAGELENGTH] = width, height
    ifd[BITSPERSAMPLE], ifd[COMPRESSION] = (8 * samples.dtype.itemsize,) * channels, 8  # deflate
    ifd[PHOTOMETRIC_INTERPRETATION] = 1 if channels <= 2 else 2  # BlackIsZero grey or RGB
    ifd[STRIPOFFSETS], ifd[SAMPLESPERPIXEL] = 0, channels  # the offset is fixed by tobytes
    ifd[ROWSPERSTRIP], ifd[STRIPBYTECOUNTS] = height, len(strip)
    ifd[PLANAR_CONFIGURATION], ifd[PREDICTOR] = 1, 2  # samples side by side; horizontal differencing
    if channels in (2, 4):
        ifd[EXTRASAMPLES] = 2  # unassociated alpha
    if icc_profile:
        ifd[ICCPROFILE] = icc_profile
    if metadata.xmp:
        ifd[XMP] = metadata.xmp
    iptc = metadata.iptc and metadata.iptc + bytes(-len(metadata.iptc) % 4)  # padded to whole LONGs
    if iptc:
        ifd[IPTC_TAG] = iptc  # as bytes (UNDEFINED): Pillow's tag API holds one LONG of it; retyped below
    entries = {entry_tag(entry, order): entry for entry in exif_entries if in_block(entry, order, len(block))}
    if dpi:
        ifd[X_RESOLUTION], ifd[Y_RESOLUTION], ifd[RESOLUTION_UNIT] = dpi[0], dpi[1], 2  # per inch
    elif not _tiff_resolution(entries, order):
        # required in a TIFF: square pixels, and no size in inches (as JFIF's unit 0)
        ifd[X_RESOLUTION], ifd[Y_RESOLUTION], ifd[RESOLUTION_UNIT] = 1, 1, 1
    copied = {tag: entry for tag, entry in entries.items() if tag not in ifd}  # the picture's tags first
    for tag in copied:  # a 4-byte placeholder each, for the EXIF's entry to be copied over once laid out
        ifd.tagtype[tag] = TiffTags.LONG
        ifd[tag] = 0
    start = len(block) + len(block) % 2  # a directory starts on a word boundary
    directory = bytearray(ifd.tobytes(start))  # entries sorted by tag, then their values; the strip follows
    (count,) = struct.unpack_from(order + "H", directory)
    for at in range(2, 2 + 12 * count, 12):
        tag = entry_tag(directory[at:], order)
        directory[at : at + 12] = copied.get(tag, directory[at : at + 12])
        if iptc and tag == IPTC_TAG:  # LONGs, as TIFF/EP, Photoshop and ExifTool have it: the same bytes
            struct.pack_into(order + "HI", directory, at + 2, TiffTags.LONG, len(iptc) // 4)
    header = block[:4] + struct.pack(order + "I", start)
    return header + block[8:] + bytes(start - len(block)) + directory + strip
