"""Photo I/O: formats, bit depth, alpha, metadata, bad input and atomic writes."""

from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import PIL
import pytest
from conftest import numpy_out_of_memory, opencv_out_of_memory, skip_unless_marks_kept
from PIL import ExifTags, Image, ImageCms, ImageOps, PngImagePlugin, TiffImagePlugin

import recnet_cli
from recnet_cli import imaging
from recnet_cli.atomicfile import WRITTEN_MARK
from recnet_cli.imaging import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    ImageWriteError,
    OutputExistsError,
    Photo,
    atomic_output,
    format_for,
    icc,
    read_photo,
    size_problem,
    write_photo,
    write_png16,
    write_rgb8,
)
from recnet_cli.imaging.errors import fault_reason
from recnet_cli.imaging.metadata import iptc_datasets, iptc_left_out_of_xmp, photoshop_segment
from recnet_cli.imaging.notices import output_notices
from recnet_cli.imaging.photo import Metadata
from recnet_cli.imaging.pixels import (
    COLOUR_SMOOTHING,
    MOST_COLOUR_GAIN,
    filled_where_hidden,
    fit_size,
    lightness_only,
    luma,
    over_checkerboard,
)
from recnet_cli.train.data import read_rgb

SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
GREY_PROFILE = bytes(16) + b"GRAY" + bytes(16) + b"acsp" + bytes(88)  # the header of a grey-space ICC profile
INK_PROFILE = bytes(16) + b"CMYK" + bytes(16) + b"acsp" + bytes(88)  # the header of a CMYK-space ICC profile
MAKE, DATE_TIME_ORIGINAL, EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x010F, 0x9003, 0x8769, 0x8825, 0xA005
PIXEL_X_DIMENSION, PIXEL_Y_DIMENSION = 0xA002, 0xA003  # in the Exif directory
CAMERA_TAGS = (1, "Recnet Camera", "2024:02:20 10:11:12", "N", "R98")
imaging.enable_heif()  # so that Pillow can write HEIF sources here, where pillow-heif is installed
PILLOW_VERSION = tuple(int(part) for part in PIL.__version__.split(".")[:2])
OPTIONAL_FORMATS = ["avif"] * imaging.AVIF_SUPPORTED + ["heic"] * imaging.HEIF_SUPPORTED
LOSSLESS = ["png", "tif", "bmp"]
ALL_FORMATS = ["jpg", "png", "tif", "webp", "bmp", *OPTIONAL_FORMATS]
EXIF_FORMATS = ["jpg", "png", "tif", "webp", *OPTIONAL_FORMATS]
EXIFTOOL = shutil.which("exiftool")


def gradient_rgb8(height: int = 24, width: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 4 % 256]).astype(np.uint8)


def gradient_rgb16(height: int = 24, width: int = 32) -> np.ndarray:
    """Values an 8-bit path would destroy: consecutive 16-bit codes that share one 8-bit code."""
    codes = 30000 + np.arange(height * width * 3) * 7
    return (codes % 65536).astype(np.uint16).reshape(height, width, 3)


def camera_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE] = "Recnet Camera"
    exif[0x0112] = orientation
    exif.get_ifd(EXIF_IFD).update({DATE_TIME_ORIGINAL: "2024:02:20 10:11:12", INTEROP_IFD: {1: "R98"}})
    exif.get_ifd(GPS_IFD)[1] = "N"  # GPSLatitudeRef
    return exif


def camera_tags(image: Image.Image) -> tuple[int, str, str, str, str]:
    """Orientation, Make, and one tag from each nested directory (Exif, GPS, Interop) of an open image."""
    exif = image.getexif()
    exif_directory, gps = exif.get_ifd(EXIF_IFD), exif.get_ifd(GPS_IFD)
    orientation = exif.get(0x0112, 1)  # absent means 1; AVIF keeps the orientation in its container instead
    return orientation, exif[MAKE], exif_directory[DATE_TIME_ORIGINAL], gps[1], exif.get_ifd(INTEROP_IFD)[1]


def save(path: Path, image: Image.Image, **options) -> Path:
    image.save(path, **options)
    return path


def write_cv2(path: Path, rgb: np.ndarray) -> Path:
    """Write 16-bit RGB(A) with OpenCV, which expects BGR(A)."""
    assert cv2.imwrite(str(path), rgb[..., [2, 1, 0, 3][: rgb.shape[2]]])
    return path


def read_cv2_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return bgr[..., [2, 1, 0, 3][: bgr.shape[2]]]


def as_codes(pixels: np.ndarray, depth: int) -> np.ndarray:
    return np.rint(pixels * ((1 << depth) - 1)).astype(np.uint8 if depth == 8 else np.uint16)


def photo_like(original: np.ndarray, **changes) -> Photo:
    """A Photo of 8- or 16-bit RGB ``original`` whose metadata a test chooses."""
    depth = 8 * original.dtype.itemsize
    fields = dict(alpha=None, grayscale=False, exif=None, icc_profile=None, dpi=None, source_format="PNG")
    fields.update(changes)
    return Photo(pixels=original.astype(np.float32) / ((1 << depth) - 1), bit_depth=depth, **fields)


def round_trip(tmp_path: Path, source: Path, extension: str) -> tuple[Photo, Path]:
    photo = read_photo(source)
    output = tmp_path / f"out.{extension}"
    write_photo(output, photo.pixels, photo)
    return photo, output


def exiftool_validation(path: Path, *tags: str) -> tuple[dict[str, object], list[str]]:
    """What ExifTool reads of ``tags`` (``-City``) in a file, with its ``Validate`` verdict; its warnings."""
    command = [EXIFTOOL, "-json", "-validate", "-warning", "-a", *tags, str(path)]
    (found,) = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    warnings = found.get("Warning", [])
    return found, [warnings] if isinstance(warnings, str) else warnings


# --- formats and bit depth -------------------------------------------------------------------------


def test_extensions_are_lowercase_with_a_dot():
    expected = {".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".tif", ".tiff", ".webp", ".bmp"}
    avif = {".avif"} if imaging.AVIF_SUPPORTED else set()
    heif = {".heic", ".heif", ".hif"} if imaging.HEIF_SUPPORTED else set()
    assert set(IMAGE_EXTENSIONS) == expected | avif | heif


@pytest.mark.parametrize(
    ("name", "forced", "expected"),
    [
        ("a.JPG", None, "JPEG"),
        ("a.jpeg", None, "JPEG"),
        ("a.png", None, "PNG"),
        ("a.tiff", None, "TIFF"),
        ("a.webp", None, "WEBP"),
        ("a.bmp", None, "BMP"),
        ("a.png", "jpg", "JPEG"),
        ("a.png", ".TIF", "TIFF"),
    ],
)
def test_format_for(name, forced, expected):
    assert format_for(Path(name), forced) == expected


@pytest.mark.parametrize(("name", "forced"), [("a.gif", None), ("noextension", None), ("a.png", "gif")])
def test_format_for_rejects_unsupported_formats(name, forced):
    with pytest.raises(ImageWriteError, match=r"unsupported output format") as caught:
        format_for(Path(name), forced)
    assert name in str(caught.value)


@pytest.mark.parametrize(
    ("head", "supported"),
    [
        (b"MM\0*\0\0\0\x08\0\x0c\x01\0", True),  # big-endian TIFF
        (b"RIFF\x24\0\0\0WEBPVP8 ", True),
        (b"RIFF\x24\0\0\0WAVEfmt ", False),  # a sound file
        (b"RIFF\x24\0\0\0AVI LIST", False),
        (b"GIF89a\x10\0\x10\0\0\0", False),
    ],
)
def test_a_file_s_first_bytes_tell_a_supported_format_from_another(head: bytes, supported: bool) -> None:
    assert imaging.has_supported_signature(head) is supported


@pytest.mark.parametrize("extension", ALL_FORMATS)
def test_round_trip_8_bit_rgb(tmp_path, extension):
    original = gradient_rgb8()
    source = save(tmp_path / f"in.{extension}", Image.fromarray(original), quality=95)
    photo, output = round_trip(tmp_path, source, extension)

    assert (photo.bit_depth, photo.grayscale, photo.alpha) == (8, False, None)
    assert photo.pixels.dtype == np.float32 and photo.pixels.shape == (24, 32, 3)
    assert photo.source_format == format_for(source)
    with Image.open(output) as written:
        assert (written.format, written.mode) == (format_for(output), "RGB")
        result = np.asarray(written)
    if extension in LOSSLESS:
        assert np.array_equal(result, original)
    else:  # one more lossy generation at quality 95
        assert np.abs(result.astype(int) - as_codes(photo.pixels, 8)).mean() < 2


def test_jpeg_quality_and_subsampling(tmp_path):
    photo = read_photo(save(tmp_path / "in.png", Image.fromarray(gradient_rgb8())))
    write_photo(tmp_path / "high.jpg", photo.pixels, photo, quality=95)
    write_photo(tmp_path / "low.jpg", photo.pixels, photo, quality=50)
    with Image.open(tmp_path / "high.jpg") as high, Image.open(tmp_path / "low.jpg") as low:
        assert high.layer[0][1:3] == (1, 1) and low.layer[0][1:3] == (2, 2)  # 4:4:4 vs 4:2:0
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpg").stat().st_size
    # 4:4:4 from quality 90 up: at 90 itself, colour edges bled as at any lower quality
    for quality, sampling in ((90, (1, 1)), (89, (2, 2))):
        write_photo(tmp_path / f"{quality}.jpg", photo.pixels, photo, quality=quality)
        with Image.open(tmp_path / f"{quality}.jpg") as written:
            assert written.layer[0][1:3] == sampling, quality


@pytest.mark.parametrize("quality", [95, 60])
@pytest.mark.parametrize("channels", [3, 1])
def test_a_jpeg_is_byte_for_byte_the_one_pillow_writes(quality: int, channels: int) -> None:
    # OpenCV encodes the picture (it lets Python's other threads run meanwhile) behind the metadata as
    # Pillow writes it: EXIF with a maker note, an ICC profile longer than one segment holds, the
    # resolution, XMP with its extended part and an IPTC record
    extended, captioned = read_photo(EXTENDED_XMP), read_photo(IPTC_FIXTURES / "iptc-caption.jpg")
    long_profile = SRGB_PROFILE + bytes(70_000)
    metadata = Metadata(
        exif=read_photo(CANON).exif,
        icc_profile=long_profile if channels == 3 else GREY_PROFILE,
        dpi=(300.0, 300.0),
        xmp=extended.xmp,
        iptc=captioned.iptc,
        extended_xmp=extended.extended_xmp,
    )
    assert None not in (metadata.exif, metadata.xmp, metadata.iptc, metadata.extended_xmp)
    samples = gradient_rgb8(37, 53)[..., :channels]
    written = io.BytesIO()
    imaging.write._write_samples(written, "JPEG", samples, quality, metadata)

    expected = io.BytesIO()
    picture = Image.fromarray(samples.squeeze(axis=2) if channels == 1 else samples)
    picture.save(expected, format="JPEG", **imaging.write._pillow_options("JPEG", quality, metadata))
    assert written.getvalue() == expected.getvalue()


def memory_owner(array: np.ndarray) -> object:
    """The object that owns an array's memory: the last of its bases."""
    while isinstance(array, np.ndarray) and array.base is not None:
        array = array.base
    return array


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "1", "I;16", "F", "CMYK"])
@pytest.mark.parametrize("size", [(53, 37), (1, 1), (1, 9), (0, 4)])
def test_image_samples_are_what_numpy_gives_copied_out_of_pillows_memory(mode: str, size: tuple[int, int]):
    codes = np.random.default_rng(3).integers(0, 256, (size[1], size[0], 3), np.uint8)
    image = Image.fromarray(codes).convert(mode)
    expected = np.array(image)
    samples = imaging.arrow.image_samples(image)
    owner = memory_owner(samples)
    image.close()
    del image
    Image.new("RGBA", size, (7, 8, 9, 10))  # the freed memory taken again
    assert samples.dtype == expected.dtype and samples.shape == expected.shape and samples.flags.c_contiguous
    np.testing.assert_array_equal(samples, expected)
    assert isinstance(owner, (np.ndarray, bytes))  # not a view of Pillow's memory, which is gone


def test_image_samples_of_a_photo_larger_than_pillows_default_block_let_go_of_the_gil(monkeypatch):
    # 2100 x 2100 RGB takes 17.6 MB in Pillow (4 bytes a pixel), more than its default blocks of 16 MB. Only
    # np.asarray (through Pillow's tobytes) holds the GIL, so it must not be used.
    image = Image.fromarray(np.random.default_rng(7).integers(0, 256, (2100, 2100, 3), np.uint8))
    expected = np.array(image)
    monkeypatch.setattr(imaging.arrow.np, "asarray", None)
    np.testing.assert_array_equal(imaging.arrow.image_samples(image), expected)


def test_image_samples_of_a_photo_in_several_blocks_are_numpys():
    Image.core.set_block_size(1 << 16)
    try:
        image = Image.fromarray(gradient_rgb8(200, 300))  # 234 KB, in blocks of 64 KB
    finally:
        Image.core.set_block_size(imaging.arrow.SINGLE_BLOCK_BYTES)
    with pytest.raises(ValueError):  # "rows are not contiguous" (Pillow 11.3: "in multiple array blocks")
        image.__arrow_c_array__()
    np.testing.assert_array_equal(imaging.arrow.image_samples(image), gradient_rgb8(200, 300))


def test_reading_photos_leaves_none_of_pillows_memory_behind(tmp_path):
    path = save(tmp_path / "in.png", Image.fromarray(gradient_rgb8()))
    before = Image.core.get_stats()
    for _ in range(3):
        read_photo(path)
    after = Image.core.get_stats()
    allocated, freed = (after[key] - before[key] for key in ("allocated_blocks", "freed_blocks"))
    assert allocated > 0 and freed == allocated


@pytest.mark.parametrize("extension", ["png", "tif"])
def test_16_bit_in_keeps_full_precision_and_16_bit_out(tmp_path, extension):
    original = gradient_rgb16()
    photo, output = round_trip(tmp_path, write_cv2(tmp_path / f"in.{extension}", original), extension)

    assert photo.bit_depth == 16 and photo.source_format == format_for(output)
    assert np.array_equal(as_codes(photo.pixels, 16), original)  # within 1/65535
    written = read_cv2_rgb(output)
    assert written.dtype == np.uint16 and np.array_equal(written, original)
    assert np.array_equal(as_codes(read_photo(output).pixels, 16), original)


@pytest.mark.parametrize("extension", ["jpg", "webp", "bmp"])
def test_16_bit_in_becomes_8_bit_where_the_format_has_no_16_bit(tmp_path, extension):
    _, output = round_trip(tmp_path, write_cv2(tmp_path / "in.png", gradient_rgb16()), extension)
    with Image.open(output) as written:
        assert written.mode == "RGB"
    assert read_cv2_rgb(output).dtype == np.uint8


@pytest.mark.parametrize("extension", ["png", "tif"])
def test_8_bit_in_stays_8_bit(tmp_path, extension):
    _, output = round_trip(tmp_path, save(tmp_path / "in.png", Image.fromarray(gradient_rgb8())), extension)
    assert read_cv2_rgb(output).dtype == np.uint8


def test_corrected_pixels_are_rounded_to_nearest_and_clipped(tmp_path):
    photo = read_photo(save(tmp_path / "in.png", Image.new("RGB", (3, 1))))
    pixels = np.array([[[-0.5, 0.2 / 255, 0.6 / 255], [1.4 / 255, 1.6 / 255, 0.5], [1.0, 1.5, 254.4 / 255]]])
    write_photo(tmp_path / "out.png", pixels.astype(np.float32), photo)
    with Image.open(tmp_path / "out.png") as written:
        assert np.asarray(written).tolist() == [[[0, 0, 1], [1, 2, 128], [255, 255, 254]]]


def floats_near_every_half_code(depth: int) -> np.ndarray:
    """The float32 values a few steps either side of every half-way point between codes of ``depth`` bits,
    and some outside [0, 1]: where a rounding or clipping shortcut would differ."""
    peak = (1 << depth) - 1
    half_ways = ((np.arange(peak) + 0.5) / peak).astype(np.float32)
    steps = [half_ways]
    for direction in (2.0, -1.0):
        near = half_ways
        for _ in range(3):
            near = np.nextafter(near, np.float32(direction))
            steps.append(near)
    values = np.concatenate([*steps, np.array([0, 1, -0.0, -1e-9, 1.0000001, 7, -7], np.float32)])
    return values[: len(values) // 12 * 12].reshape(-1, 4, 3)


@pytest.mark.parametrize(("depth", "extension"), [(8, "png"), (16, "png"), (16, "tif")])
def test_codes_read_as_code_over_peak_and_written_back_to_the_nearest_code(tmp_path, depth, extension):
    peak, dtype = (1 << depth) - 1, np.uint8 if depth == 8 else np.uint16
    every_code = np.arange(peak + 1).reshape(-1, 16, 1).repeat(3, axis=2).astype(dtype)
    source = tmp_path / f"codes.{extension}"
    cv2.imwrite(str(source), every_code[..., ::-1])
    photo = read_photo(source)
    assert photo.bit_depth == depth
    assert np.array_equal(photo.pixels, every_code.astype(np.float32) / np.float32(peak))  # bit for bit
    grey = read_photo(save(tmp_path / "grey.png", Image.fromarray(every_code[..., 0].astype(np.uint8))))
    assert np.array_equal(grey.pixels[..., 2], every_code[..., 0].astype(np.uint8) / np.float32(255))

    pixels = floats_near_every_half_code(depth)
    write_photo(tmp_path / f"out.{extension}", pixels, photo_like(np.zeros(pixels.shape, dtype)))
    nearest = np.rint(np.clip(pixels, 0, 1) * np.float32(peak)).astype(dtype)  # ties to even
    assert np.array_equal(read_cv2_rgb(tmp_path / f"out.{extension}"), nearest)


# --- EXIF orientation and metadata -----------------------------------------------------------------


def exif_transposed(original: np.ndarray, orientation: int) -> np.ndarray:
    """The reference: Pillow's ImageOps.exif_transpose, channel by channel (it has no 16-bit RGB)."""
    channels = []
    for index in range(original.shape[2]):
        channel = Image.fromarray(original[..., index])
        channel.info["exif"] = camera_exif(orientation).tobytes()
        channels.append(np.asarray(ImageOps.exif_transpose(channel)))
    return np.dstack(channels)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("original", [gradient_rgb8(), gradient_rgb16()], ids=["8-bit", "16-bit"])
@pytest.mark.parametrize("extension", ["png", "tif"])
def test_every_orientation_matches_pillow_exif_transpose(tmp_path, extension, original, orientation):
    source = tmp_path / f"in.{extension}"
    like = photo_like(original, exif=camera_exif(orientation).tobytes())
    write_photo(source, like.pixels, like)  # writing keeps the orientation given; reading applies it
    depth = like.bit_depth
    assert np.array_equal(as_codes(read_photo(source).pixels, depth), exif_transposed(original, orientation))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_in_pillow_written_files(tmp_path, orientation):
    source = save(tmp_path / "in.png", Image.fromarray(gradient_rgb8()), exif=camera_exif(orientation))
    with Image.open(source) as image:
        expected = np.asarray(ImageOps.exif_transpose(image))
    assert np.array_equal(as_codes(read_photo(source).pixels, 8), expected)


@pytest.mark.parametrize("extension", EXIF_FORMATS)
def test_orientation_applied_and_other_exif_kept(tmp_path, extension):
    original = np.zeros((24, 40, 3), np.uint8)
    original[:8, :8] = 255  # top-left JPEG block before the camera's 90 degree clockwise rotation
    source = save(tmp_path / "in.jpg", Image.fromarray(original), exif=camera_exif(6), quality=100)

    photo, output = round_trip(tmp_path, source, extension)

    assert photo.pixels.shape == (40, 24, 3)
    assert photo.pixels[0, -1].min() > 0.9 and photo.pixels[0, 0].max() < 0.1  # now top-right
    with Image.open(output) as written:
        assert written.size == (24, 40)
        assert camera_tags(written) == CAMERA_TAGS


@pytest.mark.parametrize("source_extension", OPTIONAL_FORMATS)
def test_avif_and_heif_sources_are_turned_upright_once(tmp_path, source_extension):
    # Their writers store the orientation in the container too (irot/imir), which is what their readers
    # go by: Pillow's AVIF reader reports it as EXIF orientation, pillow-heif turns the pixels and says 1.
    original = np.zeros((24, 40, 3), np.uint8)
    original[:8, :8] = 255
    image = Image.fromarray(original)
    source = save(tmp_path / f"in.{source_extension}", image, exif=camera_exif(6).tobytes(), quality=95)
    photo = read_photo(source)
    assert photo.pixels.shape == (40, 24, 3)
    assert photo.pixels[0, -1].min() > 0.9 and photo.pixels[0, 0].max() < 0.1  # now top-right


@pytest.mark.parametrize("extension", ["png", "tif"])
def test_16_bit_orientation_and_metadata(tmp_path, extension):
    original = gradient_rgb16()
    like = photo_like(original, exif=camera_exif(8).tobytes(), icc_profile=SRGB_PROFILE, dpi=(300.0, 300.0))
    source = tmp_path / f"in.{extension}"
    write_photo(source, like.pixels, like)

    photo, output = round_trip(tmp_path, source, extension)

    assert np.array_equal(as_codes(photo.pixels, 16), np.rot90(original, 1))
    assert np.array_equal(read_cv2_rgb(output), np.rot90(original, 1))
    with Image.open(output) as written:
        assert camera_tags(written) == CAMERA_TAGS
        assert written.info["icc_profile"] == SRGB_PROFILE
        assert written.info["dpi"] == pytest.approx((300, 300), abs=0.01)


@pytest.mark.parametrize("extension", EXIF_FORMATS)
def test_icc_profile_is_copied(tmp_path, extension):
    source = save(tmp_path / "in.jpg", Image.fromarray(gradient_rgb8()), icc_profile=SRGB_PROFILE)
    photo, output = round_trip(tmp_path, source, extension)
    assert photo.icc_profile == SRGB_PROFILE
    with Image.open(output) as written:
        assert written.info["icc_profile"] == SRGB_PROFILE


def xmp_packet(*properties: str, element: str = "") -> bytes:
    """An XMP packet as photo tools write it: ``properties`` on its description, ``element`` inside it."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
        f'{" ".join(properties)}>{element}<dc:subject xmlns:dc="http://purl.org/dc/elements/1.1/"><rdf:Bag>'
        "<rdf:li>beach</rdf:li></rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


@pytest.mark.parametrize("source_extension", EXIF_FORMATS)
@pytest.mark.parametrize("extension", EXIF_FORMATS)
def test_xmp_ratings_and_keywords_are_copied(tmp_path, source_extension, extension):
    xmp = xmp_packet('xmp:Rating="4"')
    options = {"tiffinfo": {700: xmp}} if source_extension == "tif" else {"xmp": xmp}
    if source_extension == "png":
        options = {"pnginfo": PngImagePlugin.PngInfo()}
        options["pnginfo"].add_itxt("XML:com.adobe.xmp", xmp.decode())
    source = save(tmp_path / f"in.{source_extension}", Image.fromarray(gradient_rgb8()), **options)
    photo, output = round_trip(tmp_path, source, extension)
    assert photo.xmp == xmp
    with Image.open(output) as written:
        assert written.info["xmp"] == xmp


@pytest.mark.parametrize("extension", ["jpg", "png"])
def test_a_pngs_xmp_in_imagemagicks_raw_profile_chunk_is_copied(tmp_path, extension):
    xmp = xmp_packet('xmp:Rating="4"')
    lines = [xmp.hex()[start : start + 72] for start in range(0, 2 * len(xmp), 72)]
    info = PngImagePlugin.PngInfo()  # as ImageMagick writes it: zTXt, the name, the length, then hex lines
    info.add_text("Raw profile type xmp", "\n".join(["", "xmp", f"{len(xmp):8d}", *lines, ""]), zip=True)
    source = save(tmp_path / "in.png", Image.fromarray(gradient_rgb8()), pnginfo=info)
    photo, output = round_trip(tmp_path, source, extension)
    assert photo.xmp == xmp and not photo.damaged_metadata
    with Image.open(output) as written:
        assert written.info["xmp"] == xmp


@pytest.mark.parametrize("depth", [8, 16])
def test_a_pngs_xmp_after_its_pixels_is_copied_after_exif_before_them(tmp_path, depth):
    xmp = xmp_packet('xmp:Rating="4"')
    original = gradient_rgb8() if depth == 8 else gradient_rgb16()
    source = tmp_path / "in.png"
    like = photo_like(original, exif=camera_exif().tobytes())  # its eXIf chunk goes before the pixels
    write_photo(source, like.pixels, like)
    kind, data = b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp  # before IEND, as some writers add it
    chunk = struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    source.write_bytes(source.read_bytes()[:-12] + chunk + source.read_bytes()[-12:])

    photo, output = round_trip(tmp_path, source, "png")

    assert photo.bit_depth == depth and photo.exif is not None and photo.xmp == xmp
    with Image.open(output) as written:
        assert written.info["xmp"] == xmp


def test_a_damaged_raw_profile_xmp_is_left_out_and_said(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type xmp", "\nxmp\n       4\nnot hex\n", zip=True)
    photo = read_photo(save(tmp_path / "in.png", Image.fromarray(gradient_rgb8()), pnginfo=info))
    assert photo.xmp is None and photo.damaged_metadata == ("XMP",)


@pytest.mark.parametrize(
    "xmp",
    [
        xmp_packet('xmp:Rating="2"', 'tiff:Orientation="6"'),
        xmp_packet(element="<tiff:Orientation>6</tiff:Orientation>"),
    ],
)
def test_xmp_orientation_says_upright_like_the_exif(tmp_path, xmp):
    source = save(tmp_path / "in.jpg", Image.fromarray(gradient_rgb8()), exif=camera_exif(6), xmp=xmp)
    photo, output = round_trip(tmp_path, source, "jpg")
    assert photo.pixels.shape[:2] == (32, 24)  # turned upright
    with Image.open(output) as written:
        assert written.info["xmp"] == xmp.replace(b"6", b"1") and written.getexif()[0x0112] == 1


@pytest.mark.parametrize("original", [gradient_rgb8(), gradient_rgb16()], ids=["8-bit", "16-bit"])
def test_a_tiff_turns_by_its_xmp_orientation_where_it_has_no_orientation_tag(tmp_path, original):
    # Pillow turns such a TIFF as it decodes it, but OpenCV, which decodes 16-bit ones, goes by the tag alone:
    # a 16-bit one stayed on its side with its XMP saying upright, and an 8-bit one's resolution did not turn
    source = tmp_path / "in.tif"
    like = photo_like(original, xmp=xmp_packet('tiff:Orientation="6"'), dpi=(300.0, 150.0))
    write_photo(source, like.pixels, like)
    with Image.open(source) as stored:
        assert 0x0112 not in stored.tag_v2
    photo = read_photo(source)
    assert np.array_equal(as_codes(photo.pixels, 8 * original.dtype.itemsize), np.rot90(original, -1))
    assert photo.dpi == pytest.approx((150, 300))
    assert b'Orientation="6"' not in photo.xmp


GAIN_MAP_DIRECTORY = (
    '<Container:Directory><rdf:Seq><rdf:li rdf:parseType="Resource"><Container:Item '
    'Item:Semantic="Primary" Item:Mime="image/jpeg"/></rdf:li><rdf:li rdf:parseType="Resource">'
    '<Container:Item Item:Semantic="GainMap" Item:Mime="image/jpeg" Item:Length="5000"/></rdf:li>'
    "</rdf:Seq></Container:Directory>"
)


def test_an_ultra_hdr_photos_gain_map_is_said_to_be_left_out_and_its_xmp_no_longer_claims_one(tmp_path):
    # A phone's Ultra HDR JPEG: the photo, then its gain map as a second picture (MPF), which the XMP's
    # container directory places. The output, without the gain map, still claimed it: a gain-map-aware
    # viewer looks for it past the output's end.
    xmp = xmp_packet('xmp:Rating="4"', 'hdrgm:Version="1.0"', element=GAIN_MAP_DIRECTORY)
    picture = Image.fromarray(gradient_rgb8())
    gain_map = picture.convert("L").convert("RGB")
    source = save(
        tmp_path / "in.jpg", picture, format="MPO", save_all=True, append_images=[gain_map], xmp=xmp
    )
    photo, output = round_trip(tmp_path, source, "jpg")
    assert photo.reading_notices() == []  # said of a corrected photo only, not of a mask picture
    assert output_notices(photo, "JPEG") == [
        "its HDR gain map is left out: the output holds the corrected picture alone"
    ]
    with Image.open(output) as written:
        assert written.info["xmp"] == xmp_packet('xmp:Rating="4"')
        assert getattr(written, "n_frames", 1) == 1


def test_a_motion_photos_video_is_said_to_be_left_out_and_its_xmp_no_longer_claims_it(tmp_path):
    claims = ('GCamera:MotionPhoto="1"', 'GCamera:MotionPhotoVersion="1"', "GCamera:MicroVideoOffset='0'")
    element = "<GCamera:MotionPhotoPresentationTimestampUs>0</GCamera:MotionPhotoPresentationTimestampUs>"
    directory = GAIN_MAP_DIRECTORY.replace("GainMap", "MotionPhoto")
    xmp = xmp_packet('xmp:Rating="4"', *claims, element=element + directory)
    source = save(tmp_path / "in.jpg", Image.fromarray(gradient_rgb8()), xmp=xmp)
    with source.open("ab") as file:
        file.write(b"\0\0\0\x18ftypmp42" + bytes(4990))  # the video, after the photo's end
    photo = read_photo(source)
    assert output_notices(photo, "PNG") == [
        "its motion photo's video is left out: the output holds the corrected picture alone"
    ]
    assert photo.xmp == xmp_packet('xmp:Rating="4"')
    # MotionPhoto 0 says there is no video: nothing is said, and the XMP is kept as it is
    still = xmp.replace(b'MotionPhoto="1"', b'MotionPhoto="0"').replace(b"MicroVideoOffset='0'", b"")
    photo = read_photo(save(tmp_path / "still.jpg", Image.fromarray(gradient_rgb8()), xmp=still))
    assert output_notices(photo, "JPEG") == [] and photo.xmp == still
    both = dataclasses.replace(photo, appended=("HDR gain map", "motion photo's video"))
    assert output_notices(both, "JPEG") == [
        "its HDR gain map and motion photo's video are left out: the output holds the corrected picture alone"
    ]


@pytest.mark.parametrize("form", ["attribute", "element"])
def test_outputs_name_recnet_as_the_program_that_made_them(tmp_path, form):
    # as photo editors do on export: a corrected photo that said Software "Ver.1.10" claimed to be the
    # camera's own JPEG (EXIF's Software, XMP's CreatorTool where the photo's XMP has one)
    exif = camera_exif(1)
    exif[0x0131] = "Ver.1.10"
    tool = "Adobe Photoshop Lightroom Classic 12.0 (Windows)"
    xmp = (
        xmp_packet(f'xmp:CreatorTool="{tool}"', 'xmp:Rating="2"')
        if form == "attribute"
        else xmp_packet(element=f"<xmp:CreatorTool>{tool}</xmp:CreatorTool>")
    )
    source = save(tmp_path / "in.jpg", Image.fromarray(gradient_rgb8()), exif=exif, xmp=xmp)
    _, output = round_trip(tmp_path, source, "jpg")
    software = f"recnet {recnet_cli.__version__}"
    with Image.open(source) as original, Image.open(output) as written:
        assert written.getexif()[0x0131] == software
        assert {k: v for k, v in written.getexif().items() if k != 0x0131} == {
            k: v for k, v in original.getexif().items() if k != 0x0131
        }
        assert written.info["xmp"] == xmp.replace(tool.encode(), software.encode())
    plain = save(tmp_path / "plain.jpg", Image.fromarray(gradient_rgb8()), xmp=xmp_packet('xmp:Rating="2"'))
    _, output = round_trip(tmp_path, plain, "png")
    with Image.open(output) as written:  # no EXIF, no CreatorTool: none is made up
        assert not written.getexif() and written.info["xmp"] == xmp_packet('xmp:Rating="2"')


@pytest.mark.parametrize("room", [0, 10, 200])
def test_exif_that_fills_a_jpegs_segment_stays_whole_without_recnets_name(tmp_path, room):
    # Naming recnet writes the first directory again, 92 bytes more here. A camera's EXIF can fill a JPEG's
    # segment (65,533 bytes) nearly to the byte, as a Nikon D800's does (65,532): with recnet's name it
    # would be left out whole, camera, lens, date and place. It is kept, and the camera's Software (its
    # firmware) is left out of it, as the output is not the camera's own JPEG. Other formats name recnet.
    exif = camera_exif(1)
    exif[0x0131] = "Ver.1.10"
    exif.get_ifd(EXIF_IFD)[0x9286] = b"x" * 100  # UserComment: its length sets the block's
    comment = (65_533 - room - (len(exif.tobytes()) - 100)) // 2 * 2  # an odd one is padded to a word
    exif.get_ifd(EXIF_IFD)[0x9286] = b"x" * comment
    block = exif.tobytes()
    block += bytes(65_533 - room - len(block))  # a camera's block may end on an odd byte
    assert len(block) == 65_533 - room
    source = save(tmp_path / "in.jpg", Image.fromarray(gradient_rgb8()), exif=block)
    software = f"recnet {recnet_cli.__version__}"
    for extension, named in (("jpg", room > 92), ("png", True)):  # a PNG's EXIF has no such limit
        photo, output = round_trip(tmp_path, source, extension)
        assert not output_notices(photo, format_for(output))
        with Image.open(output) as written:
            assert camera_tags(written) == CAMERA_TAGS
            assert len(written.getexif().get_ifd(EXIF_IFD)[0x9286]) == comment
            assert written.getexif().get(0x0131) == (software if named else None)


@pytest.mark.parametrize("padding", [0, 2, 3, 2048])
def test_an_xmp_packet_that_fills_a_jpegs_segment_still_fits_with_recnet_named_where_its_padding_allows(
    tmp_path, padding
):
    # "recnet 0.1.0" is 3 bytes longer than "GIMP 2.10": the packet gives up 3 bytes of its padding (the white
    # space before its trailer, left for editing in place), as XMP toolkits edit a packet. One with too
    # little padding grows, and a JPEG cannot hold it: left out, and said; other formats keep it.
    tool, software = b"GIMP 2.10", f"recnet {recnet_cli.__version__}".encode()
    grown = len(software) - len(tool)
    trailer = b'<?xpacket end="w"?>'
    short = xmp_packet(f'xmp:CreatorTool="{tool.decode()}"', 'xmp:Label=""')
    label = 65_533 - 29 - len(short) - padding  # the packet fills a JPEG's XMP segment to the byte
    xmp = short.replace(b'Label=""', b'Label="%s"' % (b"x" * label))
    xmp = xmp.replace(trailer, b" " * padding + trailer)
    source = save(tmp_path / "in.jpg", Image.fromarray(gradient_rgb8()), xmp=xmp)
    named = xmp.replace(tool, software)
    for extension in ("jpg", "png"):
        photo, output = round_trip(tmp_path, source, extension)
        notices = output_notices(photo, format_for(output))
        with Image.open(output) as written:
            if padding >= grown:
                assert not notices
                assert written.info["xmp"] == named.replace(b" " * grown + trailer, trailer)
            elif extension == "jpg":
                assert "xmp" not in written.info
                assert notices == ["its XMP (65.5 kB) cannot go into JPEG: left out; PNG or TIFF keeps it"]
            else:
                assert written.info["xmp"] == named


def test_an_xmp_packet_too_long_for_a_jpeg_is_left_out_of_it(tmp_path):
    xmp = xmp_packet(f'xmp:Label="{"x" * 70_000}"')
    photo = photo_like(gradient_rgb8(), xmp=xmp)
    write_photo(tmp_path / "out.jpg", photo.pixels, photo)
    write_photo(tmp_path / "out.png", photo.pixels, photo)
    with Image.open(tmp_path / "out.jpg") as jpeg, Image.open(tmp_path / "out.png") as png:
        assert "xmp" not in jpeg.info and png.info["xmp"] == xmp


# Written by ExifTool 12.57, which keeps what does not fit in a JPEG's 64 KB XMP segment as extended XMP (XMP
# specification part 3): gradient_rgb8() saved by Pillow as a JPEG of quality 90, then given a 74 KB caption
# (LONG_CAPTION, in caption.txt without a newline) and a rating of 4:
#   exiftool -overwrite_original '-XMP-dc:Description<=caption.txt' -XMP-xmp:Rating=4 extended-xmp.jpg
EXTENDED_XMP = Path(__file__).parent / "data" / "extended-xmp.jpg"
LONG_CAPTION = " ".join(f"Lake at dusk, Ländle, frame {i}." for i in range(2200))
XMP_EXTENSION = b"http://ns.adobe.com/xmp/extension/\0"  # then the GUID, full length and offset: 75 bytes


def jpeg_header_segments(data: bytes) -> tuple[list[bytes], bytes]:
    """A JPEG's marker segments before its pixels (each from its marker on), and the rest of the file."""
    segments, at = [], 2
    while data[at + 1] != 0xDA:  # start of scan
        end = at + 2 + struct.unpack_from(">H", data, at + 2)[0]
        segments.append(data[at:end])
        at = end
    return segments, data[at:]


def is_xmp_extension(segment: bytes) -> bool:
    return segment[1] == 0xE1 and segment[4:].startswith(XMP_EXTENSION)


def xmp_extension(path: Path) -> tuple[set[bytes], bytes, list[int]]:
    """The GUIDs of a JPEG's extended XMP segments, their portions one after the other, and their sizes."""
    segments, _ = jpeg_header_segments(path.read_bytes())
    portions = [segment[4 + 75 :] for segment in segments if is_xmp_extension(segment)]
    guids = {segment[4 + 35 : 4 + 67] for segment in segments if is_xmp_extension(segment)}
    return guids, b"".join(portions), [len(portion) for portion in portions]


def md5_guid(data: bytes) -> bytes:
    return hashlib.md5(data).hexdigest().upper().encode()


def test_extended_xmp_goes_to_a_jpeg_as_it_came_after_the_xmp_packet(tmp_path):
    photo, output = round_trip(tmp_path, EXTENDED_XMP, "jpg")
    guids, extended, _ = xmp_extension(EXTENDED_XMP)
    assert guids == {md5_guid(extended)} and LONG_CAPTION.encode() in extended
    assert photo.extended_xmp == extended and b"HasExtendedXMP>" + md5_guid(extended) in photo.xmp
    assert xmp_extension(output) == (guids, extended, [65000, len(extended) - 65000])  # as Adobe cuts it
    with Image.open(output) as written:
        assert written.info["xmp"] == photo.xmp
    segments, _ = jpeg_header_segments(output.read_bytes())
    app1 = [segment[4:] for segment in segments if segment[1] == 0xE1]
    assert app1[0] == b"http://ns.adobe.com/xap/1.0/\0" + photo.xmp
    assert [body.startswith(XMP_EXTENSION) for body in app1] == [False, True, True]


@pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed (CI installs Debian's)")
def test_exiftool_reads_the_long_caption_back_from_a_jpeg_output(tmp_path):
    _, output = round_trip(tmp_path, EXTENDED_XMP, "jpg")
    found, warnings = exiftool_validation(output, "-Description", "-Rating")
    assert (found["Description"], found["Rating"]) == (LONG_CAPTION, 4)
    assert found["Validate"] == "OK" and warnings == []


@pytest.mark.parametrize("extension", EXIF_FORMATS[1:])
def test_extended_xmp_is_left_out_of_other_formats_with_a_note(tmp_path, extension):
    photo, output = round_trip(tmp_path, EXTENDED_XMP, extension)
    with Image.open(output) as written:
        assert written.info["xmp"] == photo.xmp
    name = {"png": "PNG", "tif": "TIFF", "webp": "WebP", "avif": "AVIF", "heic": "HEIF"}[extension]
    assert imaging.extended_xmp_loss_notice(photo, format_for(output)) == (
        f"its extended XMP (76.3 kB, what did not fit in the JPEG's XMP segment) is left out of {name}; "
        "a JPEG output keeps it"
    )
    assert imaging.extended_xmp_loss_notice(photo, "JPEG") is None
    assert imaging.extended_xmp_loss_notice(photo, "BMP") is None  # which holds no XMP at all


def test_extended_xmp_portions_are_put_together_in_any_order(tmp_path):
    segments, rest = jpeg_header_segments(EXTENDED_XMP.read_bytes())
    first, second = (index for index, segment in enumerate(segments) if is_xmp_extension(segment))
    segments[first], segments[second] = segments[second], segments[first]
    source = tmp_path / "reordered.jpg"
    source.write_bytes(b"\xff\xd8" + b"".join(segments) + rest)
    assert read_photo(source).extended_xmp == read_photo(EXTENDED_XMP).extended_xmp


def test_a_camera_mpo_s_extended_xmp_is_read(tmp_path):
    segments, _ = jpeg_header_segments(EXTENDED_XMP.read_bytes())
    xmp = b"".join(segment for segment in segments if segment[1] == 0xE1)  # the packet and its extension
    photo = Image.fromarray(gradient_rgb8())
    photo.save(tmp_path / "mpo.jpg", format="MPO", save_all=True, append_images=[photo.resize((16, 12))])
    data = (tmp_path / "mpo.jpg").read_bytes()
    (tmp_path / "in.jpg").write_bytes(data[:2] + xmp + data[2:])  # the preview's offset counts from later on
    with Image.open(tmp_path / "in.jpg") as opened:
        assert opened.format == "MPO" and opened.n_frames == 2
    assert read_photo(tmp_path / "in.jpg").extended_xmp == read_photo(EXTENDED_XMP).extended_xmp


def test_an_extended_xmp_named_in_small_letters_is_read_and_named_in_capitals(tmp_path):
    """The specification's GUIDs are capitals, but readers (ExifTool) take small letters too."""
    guid = md5_guid(xmp_extension(EXTENDED_XMP)[1])
    source = tmp_path / "small.jpg"
    source.write_bytes(EXTENDED_XMP.read_bytes().replace(guid, guid.lower()))  # in the packet and segments
    photo, output = round_trip(tmp_path, source, "jpg")
    assert photo.damaged_metadata == () and photo.extended_xmp == read_photo(EXTENDED_XMP).extended_xmp
    assert guid in photo.xmp and guid.lower() not in photo.xmp and xmp_extension(output)[0] == {guid}


@pytest.mark.parametrize("damage", ["a portion missing", "a portion changed", "none", "none, named by MD5"])
def test_damaged_extended_xmp_is_left_out_and_said(tmp_path, damage):
    data = EXTENDED_XMP.read_bytes()
    if damage == "none, named by MD5":  # of no bytes: the packet names what is there, nothing
        data = data.replace(md5_guid(xmp_extension(EXTENDED_XMP)[1]), md5_guid(b""), 1)
    segments, rest = jpeg_header_segments(data)
    extension = [index for index, segment in enumerate(segments) if is_xmp_extension(segment)]
    if damage == "a portion changed":  # the same length: only its MD5 tells
        segments[extension[1]] = segments[extension[1]].replace(b"frame", b"frane", 1)
    else:
        for index in reversed(extension[1:] if damage == "a portion missing" else extension):
            del segments[index]
    source = tmp_path / "damaged.jpg"
    source.write_bytes(b"\xff\xd8" + b"".join(segments) + rest)
    photo, output = round_trip(tmp_path, source, "jpg")
    with Image.open(source) as original, Image.open(output) as written:
        claim = b"<xmpNote:HasExtendedXMP>%s</xmpNote:HasExtendedXMP>" % md5_guid(
            b"" if "MD5" in damage else xmp_extension(EXTENDED_XMP)[1]
        )
        assert claim in original.info["xmp"]
        # the packet goes as it was, less its claim to what the output goes without (each later run said so)
        assert photo.xmp == original.info["xmp"].replace(claim, b"") == written.info["xmp"]
    assert photo.extended_xmp is None
    assert photo.damaged_metadata_notice == "its extended XMP is damaged: the output goes without it"
    assert xmp_extension(output) == (set(), b"", []) and read_photo(output).damaged_metadata == ()


def test_a_claim_of_extended_xmp_as_an_attribute_goes_with_the_extended_xmp(tmp_path: Path) -> None:
    """A packet naming an extended XMP the JPEG does not hold: as ExifTool writes the claim (an element), and
    as Adobe's toolkit does (an attribute)."""
    note = 'xmlns:xmpNote="http://ns.adobe.com/xmp/note/"'
    standard = xmp_packet(note, f'xmpNote:HasExtendedXMP="{md5_guid(b"gone").decode()}"')
    source = save(tmp_path / "in.jpg", Image.fromarray(gradient_rgb8()), xmp=standard)
    photo, output = round_trip(tmp_path, source, "jpg")
    assert photo.damaged_metadata == ("extended XMP",) and b"HasExtendedXMP" not in photo.xmp
    assert read_photo(output).damaged_metadata == ()


def test_an_orientation_in_the_extended_xmp_says_upright_under_a_new_guid(tmp_path):
    extended = xmp_packet('tiff:Orientation="6"')
    guid = md5_guid(extended)
    note = 'xmlns:xmpNote="http://ns.adobe.com/xmp/note/"'
    standard = xmp_packet(note, f'xmpNote:HasExtendedXMP="{guid.decode()}"')
    body = XMP_EXTENSION + guid + struct.pack(">II", len(extended), 0) + extended
    segment = b"\xff\xe1" + struct.pack(">H", 2 + len(body)) + body  # Pillow writes it before the packet
    image = Image.fromarray(gradient_rgb8())
    source = save(tmp_path / "in.jpg", image, exif=camera_exif(6), xmp=standard, extra=segment)
    photo, output = round_trip(tmp_path, source, "jpg")
    assert photo.extended_xmp == extended.replace(b'Orientation="6"', b'Orientation="1"')
    upright = md5_guid(photo.extended_xmp)
    assert photo.xmp == standard.replace(guid, upright)
    assert xmp_extension(output)[:2] == ({upright}, photo.extended_xmp)


# Written by ExifTool, as Photo Mechanic and Bridge write them: caption, keywords, by-line, copyright and
# city in UTF-8. In the TIFF the record is typed as 4-byte integers, as Photoshop types it.
IPTC_FIXTURES = Path(__file__).parent / "data"
CAPTION, KEYWORDS, CITY = (2, 120), (2, 25), (2, 90)


@pytest.mark.parametrize("source_extension", ["jpg", "tif"])
@pytest.mark.parametrize("extension", ["jpg", "tif"])
def test_iptc_captions_and_credits_are_copied(tmp_path, source_extension, extension):
    from PIL import IptcImagePlugin

    source = IPTC_FIXTURES / f"iptc-caption.{source_extension}"
    _, output = round_trip(tmp_path, source, extension)
    with Image.open(source) as original, Image.open(output) as written:
        expected, copied = IptcImagePlugin.getiptcinfo(original), IptcImagePlugin.getiptcinfo(written)
    assert copied is not None and copied == expected
    assert copied[CAPTION] == "Lake at dusk, Ländle".encode() and copied[KEYWORDS] == [b"lake", b"dusk"]
    assert copied[CITY] == b"Bregenz"


@pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed (CI installs Debian's)")
@pytest.mark.parametrize("source_extension", ["jpg", "tif"])
def test_exiftool_reads_a_tiff_outputs_iptc_without_a_warning(tmp_path, source_extension):
    # TIFF/EP and ExifTool type the IPTC-NAA tag as LONGs; the JPEG's record (127 bytes) is padded to them.
    _, output = round_trip(tmp_path, IPTC_FIXTURES / f"iptc-caption.{source_extension}", "tif")
    found, warnings = exiftool_validation(output, "-City")
    assert found["City"] == "Bregenz" and not [w for w in warnings if "IPTC" in w], warnings


def test_an_iptc_record_too_long_for_a_jpeg_is_left_out_of_it(tmp_path):
    from PIL import IptcImagePlugin

    caption = b"x" * 30_000  # three of these need more than one JPEG segment
    record = b"".join(b"\x1c\x02\x78" + len(caption).to_bytes(2, "big") + caption for _ in range(3))
    photo = photo_like(gradient_rgb8(), iptc=record)
    write_photo(tmp_path / "out.jpg", photo.pixels, photo)
    write_photo(tmp_path / "out.tif", photo.pixels, photo)
    with Image.open(tmp_path / "out.jpg") as jpeg, Image.open(tmp_path / "out.tif") as tiff:
        assert IptcImagePlugin.getiptcinfo(jpeg) is None
        assert IptcImagePlugin.getiptcinfo(tiff)[CAPTION] == [caption] * 3


def test_an_odd_length_iptc_record_is_padded_to_even_length_in_the_photoshop_resource() -> None:
    # Photoshop image resources are padded to even length (the format's rule: Pillow and ExifTool read an
    # unpadded one all the same, stricter readers may not)
    record = read_photo(IPTC_FIXTURES / "iptc-caption.jpg").iptc
    assert record is not None and len(record) % 2 == 1
    segment = photoshop_segment(record)
    marker, length = struct.unpack(">HH", segment[:4])
    assert marker == 0xFFED and length == len(segment) - 2
    resource = segment[4:].removeprefix(b"Photoshop 3.0\0")
    signature, resource_id, name, size = struct.unpack(">4sHHI", resource[:12])
    assert (signature, resource_id, name, size) == (b"8BIM", 0x0404, 0, len(record))
    assert resource[12:] == record + b"\0" and len(resource) % 2 == 0


def test_an_iptc_record_that_xmp_does_not_mirror_is_said_to_be_left_out_of_png_webp_avif_heif():
    # PNG, WebP, AVIF and HEIF have no place for IPTC-IIM: lost without a word were the fields the XMP does
    # not hold too (the fixture's XMP is a rating alone)
    photo = read_photo(IPTC_FIXTURES / "iptc-caption.jpg")
    assert list(iptc_datasets(photo.iptc)) == [25, 80, 90, 116, 120, 0]  # 0: the record version
    lost = (
        "its IPTC record's keywords, by-line, city, copyright and caption cannot go into PNG, and its XMP "
        "does not hold them: left out; JPEG or TIFF keeps them"
    )
    assert output_notices(photo, "PNG") == [lost]
    assert output_notices(photo, "JPEG") == output_notices(photo, "TIFF") == []
    # as Lightroom and Photo Mechanic write it, the XMP mirrors the record: nothing is lost
    mirrored = (
        b"<dc:subject><rdf:Bag><rdf:li>lake</rdf:li><rdf:li>dusk</rdf:li></rdf:Bag></dc:subject>"
        b"<dc:creator><rdf:Seq><rdf:li>A. Photographer</rdf:li></rdf:Seq></dc:creator>"
        b'<rdf:Description photoshop:City="Bregenz"/><dc:rights>(c) 2026 A. Photographer</dc:rights>'
    )
    caption_lost = (
        "its IPTC record's caption cannot go into WebP, and its XMP does not hold it: left out; JPEG or TIFF "
        "keeps it"
    )
    assert output_notices(dataclasses.replace(photo, xmp=mirrored), "WEBP") == [caption_lost]
    caption = "<dc:description><rdf:Alt><rdf:li>Lake at dusk, Ländle</rdf:li></rdf:Alt></dc:description>"
    assert output_notices(dataclasses.replace(photo, xmp=mirrored + caption.encode()), "WEBP") == []
    # a caption edited in one of them only: the XMP's goes, the record's is lost (it went without a word)
    edited = caption.replace("Lake at dusk", "Sunset on the lake").encode()
    assert output_notices(dataclasses.replace(photo, xmp=mirrored + edited), "WEBP") == [caption_lost]
    damaged = photo.iptc[: photo.iptc.index(b"Lake at") + 4] + b"\x1c\x02"  # cut inside the caption
    assert list(iptc_datasets(damaged)) == [25, 80, 90, 116, 120]


def iim(*datasets: tuple[int, bytes]) -> bytes:
    """An IPTC-IIM application record of ``(dataset number, value)``."""
    return b"".join(
        b"\x1c\x02" + bytes([number]) + len(value).to_bytes(2, "big") + value for number, value in datasets
    )


@pytest.mark.parametrize(
    ("record", "xmp"),
    [
        (iim((120, b"Line one\r\nLine two")), b"<dc:description>Line one&#xA;Line two</dc:description>"),
        (iim((80, b"Pat O'Brien")), b"<dc:creator>Pat O&#39;Brien</dc:creator>"),
        (iim((90, "Zürich".encode())), b"<photoshop:City>Z&#xFC;rich</photoshop:City>"),
        (
            iim((120, b"It\x92s dusk\x00")),
            "<dc:description>It\u2019s dusk</dc:description>".encode(),
        ),  # cp1252
        (iim((25, b"salt & pepper"), (25, b"2024")), b"<dc:subject>salt &amp; pepper 2024</dc:subject>"),
        (iim((55, b"20240501")), b'<rdf:Description photoshop:DateCreated="2024-05-01"/>'),
    ],
    ids=["line ends", "apostrophe", "character reference", "code page", "keywords", "date"],
)
def test_iptc_text_the_xmp_holds_otherwise_written_is_mirrored(record: bytes, xmp: bytes) -> None:
    assert iptc_left_out_of_xmp(record, xmp) == []


def test_an_iptc_dataset_past_32_kb_is_read_by_its_extended_length() -> None:
    caption = b"Lake at dusk. " * 3000  # 42 kB: its length takes 4 bytes of its own
    record = b"\x1c\x02\x78\x80\x04" + len(caption).to_bytes(4, "big") + caption + iim((25, b"lake"))
    assert iptc_datasets(record) == {120: [caption], 25: [b"lake"]}


def png_with_text(path: Path) -> Path:
    """A PNG with text as editors write it: Latin-1, compressed and UTF-8 chunks, the program that made it,
    an XMP packet and ImageMagick's record of the file's times."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "Lake at dawn")
    info.add_text("Copyright", "\u00a9 Jane Roe", zip=True)  # zTXt
    info.add_itxt("Description", "Ufer bei Sonnenaufgang, \u6771\u4eac")  # iTXt: not Latin-1
    info.add_text("Comment", "shot on film")
    info.add_text("Software", "GIMP 2.10")
    info.add_text("date:modify", "2020-01-01T00:00:00+00:00")
    info.add_text("date:timestamp", "2020-01-01T00:00:00+00:00")  # ImageMagick's too
    info.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta xmlns:x="adobe:ns:meta/"/>')
    return save(path, Image.fromarray(gradient_rgb8()), pnginfo=info)


def test_a_pngs_text_goes_into_png_outputs_and_its_comment_into_jpeg_ones(tmp_path):
    # recnet wrote neither a PNG's text chunks (Title, Copyright) nor a JPEG's comment, without a note
    photo, output = round_trip(tmp_path, png_with_text(tmp_path / "in.png"), "png")
    with Image.open(output) as written:
        written.load()
        assert written.text == {
            "Title": "Lake at dawn",
            "Copyright": "\u00a9 Jane Roe",
            "Description": "Ufer bei Sonnenaufgang, \u6771\u4eac",
            "Comment": "shot on film",
            "Software": f"recnet {recnet_cli.__version__}",  # as the EXIF's Software and XMP's CreatorTool
            "XML:com.adobe.xmp": '<x:xmpmeta xmlns:x="adobe:ns:meta/"/>',  # once: the photo's XMP
        }
    assert len(png_chunk_sizes(output, b"zTXt")) == 1  # as it was
    assert len(png_chunk_sizes(output, b"iTXt")) == 2  # the description, and the XMP
    write_photo(tmp_path / "out.jpg", photo.pixels, photo)
    with Image.open(tmp_path / "out.jpg") as written:
        assert [data for marker, data in written.applist if marker == "COM"] == [b"shot on film"]
    assert output_notices(photo, "JPEG") == [
        "its PNG text Title, Copyright and Description cannot go into JPEG: left out; PNG keeps them"
    ]
    assert output_notices(photo, "WEBP") == [
        "its PNG text Title, Copyright, Description and Comment cannot go into WebP: left out; PNG keeps them"
    ]


def test_a_jpegs_comments_go_into_jpeg_outputs_as_they_are_and_into_png_as_its_comment_text(tmp_path):
    source = save(
        tmp_path / "in.jpg", Image.fromarray(gradient_rgb8()), comment="Caf\u00e9 \u6771\u4eac".encode()
    )
    photo, output = round_trip(tmp_path, source, "jpg")
    with Image.open(output) as written:
        assert [data for marker, data in written.applist if marker == "COM"] == [
            "Caf\u00e9 \u6771\u4eac".encode()
        ]
    write_photo(tmp_path / "out.png", photo.pixels, photo)
    with Image.open(tmp_path / "out.png") as written:
        assert written.text == {"Comment": "Caf\u00e9 \u6771\u4eac"}  # iTXt: not Latin-1
    assert output_notices(photo, "PNG") == output_notices(photo, "JPEG") == []
    assert output_notices(photo, "TIFF") == [
        "its comment cannot go into TIFF: left out; JPEG or PNG keeps it"
    ]


def test_empty_text_is_not_copied_nor_said_to_be_left_out_and_each_comment_counts(tmp_path):
    source = save(tmp_path / "in.jpg", Image.fromarray(gradient_rgb8()), comment=b"first")
    data = source.read_bytes()  # an empty comment, then a second one, after the first
    at = data.index(b"first") + len(b"first")
    source.write_bytes(data[:at] + b"\xff\xfe\x00\x02" + b"\xff\xfe\x00\x08second" + data[at:])
    photo, output = round_trip(tmp_path, source, "jpg")
    with Image.open(output) as written:
        assert [data for marker, data in written.applist if marker == "COM"] == [b"first", b"second"]
    assert output_notices(photo, "JPEG") == []  # the empty one was "left out" of its own format
    assert output_notices(photo, "WEBP") == [
        "its 2 comments cannot go into WebP: left out; JPEG or PNG keeps them"
    ]
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "shot on film")
    info.add_text("Title", "")  # nothing to keep
    info.add_text("Raw profile type iptc", "\niptc\n       2\n1c02\n")  # ImageMagick's IPTC, in hex
    photo = read_photo(save(tmp_path / "in.png", Image.fromarray(gradient_rgb8()), pnginfo=info))
    assert output_notices(photo, "TIFF") == [  # JPEG keeps a comment too
        "its PNG text Comment cannot go into TIFF: left out; JPEG or PNG keeps it"
    ]


def test_a_png_text_s_keyword_in_latin_1_is_named_as_it_is(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("L\u00e9gende", "Lac \u00e0 l'aube")  # a PNG's keywords are Latin-1, as its tEXt
    photo = read_photo(save(tmp_path / "in.png", Image.fromarray(gradient_rgb8()), pnginfo=info))
    assert output_notices(photo, "JPEG") == [
        "its PNG text L\u00e9gende cannot go into JPEG: left out; PNG keeps it"
    ]


def test_a_comment_as_long_as_a_jpeg_segment_holds_goes_into_a_jpeg_and_a_longer_one_is_left_out(tmp_path):
    for length, kept in ((65533, True), (65534, False)):  # a segment holds 65,535 bytes, its length in 2
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "x" * length, zip=True)
        photo = read_photo(save(tmp_path / "in.png", Image.fromarray(gradient_rgb8()), pnginfo=info))
        write_photo(tmp_path / "out.jpg", photo.pixels, photo)
        with Image.open(tmp_path / "out.jpg") as written:
            comments = [data for marker, data in written.applist if marker == "COM"]
        assert comments == ([b"x" * length] if kept else [])
        left_out = ["its PNG text Comment cannot go into JPEG: left out; PNG keeps it"]
        assert output_notices(photo, "JPEG") == ([] if kept else left_out)


def test_a_jpegs_comment_in_latin_1_or_with_nul_bytes_is_readable_text_in_a_png(tmp_path):
    # older cameras and editors wrote Latin-1 comments; a PNG text holds no NUL past its keyword
    for comment, text in ((b"Caf\xe9 cr\xe8me", "Caf\u00e9 cr\u00e8me"), (b"one\0two", "onetwo")):
        source = save(tmp_path / "in.jpg", Image.fromarray(gradient_rgb8()), comment=comment)
        _, output = round_trip(tmp_path, source, "png")
        with Image.open(output) as written:
            written.load()
            assert written.text == {"Comment": text}
        # Latin-1 text, as PNG's own tEXt, which every reader reads (iTXt, UTF-8, came later)
        assert (len(png_chunk_sizes(output, b"tEXt")), png_chunk_sizes(output, b"iTXt")) == (1, [])


def test_a_pngs_compressed_international_comment_goes_into_a_jpeg_as_its_text(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Comment", "Caf\u00e9 \u6771\u4eac", zip=True)  # a compressed iTXt
    photo, output = round_trip(
        tmp_path, save(tmp_path / "in.png", Image.fromarray(gradient_rgb8()), pnginfo=info), "jpg"
    )
    with Image.open(output) as written:
        assert [data for marker, data in written.applist if marker == "COM"] == [
            "Caf\u00e9 \u6771\u4eac".encode()
        ]
    assert output_notices(photo, "JPEG") == []


@pytest.mark.parametrize(
    "damaged",
    [
        (b"iTXt", b"Comment\0\0\0\0\0caf\xe9"),  # iTXt is UTF-8: \xe9 alone is no character
        (b"iTXt", b"Comment\0\0\0en"),  # cut short after its language: no translated keyword, no text
    ],
    ids=["not UTF-8", "cut short"],
)
def test_a_pngs_international_text_that_cannot_be_read_is_kept_as_it_is_in_png(tmp_path, damaged):
    photo = read_photo(png_with_chunks(tmp_path / "in.png", gradient_rgb8(), damaged))
    write_photo(tmp_path / "out.png", photo.pixels, photo)
    assert png_chunk_bytes(*damaged) in (tmp_path / "out.png").read_bytes()
    write_photo(tmp_path / "out.jpg", photo.pixels, photo)
    with Image.open(tmp_path / "out.jpg") as written:
        assert [data for marker, data in written.applist if marker == "COM"] == []


def test_a_tiffs_iptc_and_xmp_tags_do_not_travel_inside_its_exif():
    # A TIFF's first directory doubles as its EXIF; the IPTC and XMP in it are copied as themselves, not
    # as EXIF tags (Pillow cuts the integer-typed IPTC tag to one number, which readers flag as damage).
    photo = read_photo(IPTC_FIXTURES / "iptc-caption.tif")  # its directory also holds Make and XMP
    exif = Image.Exif()
    exif.load(photo.exif)
    assert exif[MAKE] == "Recnet Camera" and not {700, 33723} & exif.keys()
    assert photo.iptc and b"<xmp:Rating>4</xmp:Rating>" in photo.xmp


def test_a_bigtiffs_exif_is_copied(tmp_path):
    # Pillow wrote its directory back in BigTIFF's layout, which no EXIF block has: every BigTIFF's EXIF was
    # said to be damaged and left out
    exif = Image.Exif()
    exif[MAKE], exif[0x0110] = "Recnet Camera", "BT-1"
    source = tmp_path / "big.tif"
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(source, big_tiff=True, exif=exif)
    photo = read_photo(source)
    assert (
        photo.exif is not None and photo.exif[6:10] in (b"II*\x00", b"MM\x00*") and not photo.damaged_metadata
    )
    write_photo(tmp_path / "out.tif", photo.pixels, photo)
    with Image.open(tmp_path / "out.tif") as written:
        assert (written.getexif()[MAKE], written.getexif()[0x0110]) == ("Recnet Camera", "BT-1")


def test_the_highest_resolution_a_jpeg_holds_goes_into_it(tmp_path):
    photo = photo_like(gradient_rgb8(), dpi=(65535.0, 65535.0))  # JFIF's 16 bits
    write_photo(tmp_path / "out.jpg", photo.pixels, photo)
    with Image.open(tmp_path / "out.jpg") as jpeg:
        assert jpeg.info["jfif_density"] == (65535, 65535)
    assert imaging.metadata_loss_notice(photo, "JPEG") is None


@pytest.mark.parametrize("extension", ["jpg", "png", "tif", "bmp"])
def test_dpi_is_copied(tmp_path, extension):
    source = save(tmp_path / "in.png", Image.fromarray(gradient_rgb8()), dpi=(300, 240))
    photo, output = round_trip(tmp_path, source, extension)
    assert photo.dpi == pytest.approx((300, 240), abs=0.01)
    with Image.open(output) as written:
        assert written.info["dpi"] == pytest.approx((300, 240), abs=0.01)


@pytest.mark.parametrize("extension", ["jpg", "png", "tif"])
@pytest.mark.parametrize("source_extension", ["jpg", "png", "tif"])
@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_a_resolution_turns_with_the_picture(tmp_path, source_extension, extension, orientation):
    # 300 dpi across and 150 down the stored picture, which orientations 5 to 8 turn a quarter round (5 and
    # 7 mirrored too): upright, its rows are 150 dpi apart and its columns 300 (they stayed 300 x 150, and
    # its printed size changed)
    exif = camera_exif(orientation)
    exif[282], exif[283], exif[296] = 300.0, 150.0, 2
    stored = Image.fromarray(gradient_rgb8(24, 40))
    source = save(tmp_path / f"in.{source_extension}", stored, exif=exif, dpi=(300, 150))
    photo, output = round_trip(tmp_path, source, extension)
    assert photo.pixels.shape[:2] == (40, 24)
    assert photo.dpi == pytest.approx((150, 300), rel=1e-4)  # a PNG's pixels per metre round it
    with Image.open(output) as written:
        assert written.size == (24, 40)
        assert written.info["dpi"] == pytest.approx((150, 300), rel=1e-4)
        tags = written.getexif()
        assert tags[274] == 1
        assert (float(tags[282]), float(tags[283])) == pytest.approx((150, 300), rel=1e-4)


def test_a_resolution_is_taken_from_the_exif_only_in_inches_or_centimetres(tmp_path):
    # Pillow reads a JPEG's EXIF resolution as inches whatever its unit, and says 72 dpi for an EXIF with
    # none: a unit-less photo (JFIF unit 0, EXIF unit 1) came out at 1 dpi, a 64-pixel photo 64 inches wide
    def exif_with(*resolution: float) -> Image.Exif:
        exif = Image.Exif()
        exif[0x010F] = "Recnet Camera"
        for tag, value in zip((282, 283, 296), resolution, strict=False):
            exif[tag] = value
        return exif

    picture = Image.fromarray(gradient_rgb8())
    for name, exif, dpi in [
        ("aspect.jpg", exif_with(1.0, 1.0, 1), None),
        ("none.jpg", exif_with(), None),
        ("inches.webp", exif_with(300.0, 150.0, 2), (300, 150)),  # WebP has no density of its own
        ("centimetres.jpg", exif_with(100.0, 100.0, 3), (254, 254)),
        ("default-unit.jpg", exif_with(240.0, 240.0), (240, 240)),  # EXIF's default unit is the inch
    ]:
        photo = read_photo(save(tmp_path / name, picture, exif=exif))
        assert photo.dpi == (None if dpi is None else pytest.approx(dpi)), name
    frames = [picture, picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]  # MPO: a camera's two frames
    mpo = save(
        tmp_path / "stereo.mpo",
        frames[0],
        format="MPO",
        save_all=True,
        append_images=frames[1:],
        exif=exif_with(),
    )
    with Image.open(mpo) as opened:
        assert opened.format == "MPO" and opened.info["dpi"] == (72, 72)  # Pillow's guess
    assert read_photo(mpo).dpi is None
    _, output = round_trip(tmp_path, tmp_path / "aspect.jpg", "png")
    with Image.open(output) as written:
        assert "dpi" not in written.info  # no pHYs in metres


def test_a_tiff_of_a_photo_without_a_resolution_has_the_required_tags_with_no_unit(tmp_path):
    # TIFF requires XResolution and YResolution; "no absolute unit" claims no size in inches, as JFIF's 0
    half = Image.Exif()
    half[282] = 72.0  # an EXIF with XResolution alone: no resolution either
    for name, exif in (("plain", Image.Exif()), ("half", half)):
        source = save(tmp_path / f"{name}.png", Image.fromarray(gradient_rgb8()), exif=exif)
        _, output = round_trip(tmp_path, source, "tif")
        with Image.open(output) as written:
            assert (written.tag_v2[282], written.tag_v2[283], written.tag_v2[296]) == (1, 1, 1)
        assert read_photo(output).dpi is None


def test_photo_without_metadata_has_none(tmp_path):
    photo = read_photo(save(tmp_path / "in.tif", Image.fromarray(gradient_rgb8())))
    assert (photo.exif, photo.icc_profile, photo.dpi) == (None, None, None)
    assert photo.megapixels == pytest.approx(24 * 32 / 1e6)


def test_tiff_metadata_goes_to_other_formats_without_its_layout_tags(tmp_path):
    source = tmp_path / "in.tif"  # not written by Pillow, whose TIFF writer loses the Interop directory
    like = photo_like(gradient_rgb8(), exif=camera_exif().tobytes())
    write_photo(source, like.pixels, like)
    _, output = round_trip(tmp_path, source, "jpg")
    with Image.open(output) as written:
        assert camera_tags(written) == CAMERA_TAGS
        assert not {256, 257, 273, 279} & written.getexif().keys()


# A Canon EOS 5D Mark II's EXIF, its thumbnail (the block's last item) made 32 x 24, on a 48 x 32 picture.
# Its maker note holds offsets from the start of the EXIF block's TIFF header, which only stay right while
# nothing in the block moves.
CANON = Path(__file__).parent / "data" / "canon-makernote.jpg"
LENS_MODEL, CANON_IMAGE_TYPE, THUMBNAIL_OFFSET, THUMBNAIL_LENGTH = 0x0095, 0x0006, 0x0201, 0x0202


def canon_fields(path: Path) -> tuple[str, str, bytes, bytes | None]:
    """The maker note's camera and lens names (read through their offsets), its bytes, and the thumbnail."""
    with Image.open(path) as image:
        exif = image.getexif()
        # The offsets count from the TIFF header: a TIFF file's own, or the EXIF block's.
        tiff = path.read_bytes() if image.format == "TIFF" else image.info["exif"].removeprefix(b"Exif\0\0")
        maker_note, thumbnail = exif.get_ifd(EXIF_IFD)[0x927C], exif.get_ifd(ExifTags.IFD.IFD1)
    directory = TiffImagePlugin.ImageFileDirectory_v2(tiff[:8])
    stream = io.BytesIO(tiff)
    stream.seek(tiff.index(maker_note))
    directory.load(stream)
    start, length = thumbnail.get(THUMBNAIL_OFFSET, 0), thumbnail.get(THUMBNAIL_LENGTH, 0)
    camera, lens = (str(directory.get(tag, "")).rstrip("\0") for tag in (CANON_IMAGE_TYPE, LENS_MODEL))
    return camera, lens, maker_note, tiff[start : start + length] if thumbnail else None


@pytest.mark.parametrize("extension", EXIF_FORMATS)
def test_a_cameras_maker_note_is_copied_intact_and_its_stale_thumbnail_left_out(tmp_path, extension):
    # With a profile, which a TIFF output's first directory holds, the EXIF's data would move in it too.
    photo = dataclasses.replace(read_photo(CANON), icc_profile=SRGB_PROFILE)
    output = tmp_path / f"out.{extension}"
    write_photo(output, photo.pixels, photo)
    camera, lens, maker_note, thumbnail = canon_fields(CANON)
    assert (camera, lens) == ("Canon EOS 5D Mark II", "EF85mm f/1.2L II USM")
    assert Image.open(io.BytesIO(thumbnail)).size == (32, 24)
    with Image.open(CANON) as source, Image.open(output) as written:
        # The camera's 2784 x 1856 says the fixture's size, 48 x 32, now; the rest is as it was.
        sized = {PIXEL_X_DIMENSION: 48, PIXEL_Y_DIMENSION: 32}
        assert written.getexif().get_ifd(EXIF_IFD) == source.getexif().get_ifd(EXIF_IFD) | sized
        assert written.getexif()[MAKE] == "Canon" and written.getexif().get(0x0112, 1) == 1
        pages = getattr(written, "n_frames", 1)
    # The thumbnail shows the uncorrected photo, so file browsers would show that: it is left out (and a
    # TIFF's next directory would be a second page).
    assert canon_fields(output) == (camera, lens, maker_note, None) and pages == 1


@pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed (CI installs Debian's)")
@pytest.mark.parametrize("extension", EXIF_FORMATS)
def test_exiftool_reads_the_maker_note_and_finds_nothing_wrong_with_the_exif(tmp_path, extension):
    # An independent reader: Phil Harvey's ExifTool, which knows Canon's maker note and validates EXIF.
    photo = read_photo(CANON)
    output = tmp_path / f"out.{extension}"
    write_photo(output, photo.pixels, photo)
    found, warnings = exiftool_validation(output, "-LensModel", "-Model", "-ExifImage*")
    assert (found["Model"], found["LensModel"]) == ("Canon EOS 5D Mark II", "EF85mm f/1.2L II USM")
    assert (found["ExifImageWidth"], found["ExifImageHeight"]) == (48, 32)  # the camera said 2784 x 1856
    if extension != "tif":
        assert found["Validate"] == "OK", warnings
    else:  # the camera's own Exif tags that TIFF 6 does not list, and Adobe's deflate (8) for Compression
        assert not [w for w in warnings if "MakerNote" in w or "Non-standard format" in w], warnings


def test_a_turned_photo_keeps_its_maker_note(tmp_path):
    upright, turned = (struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) for orientation in (1, 6))
    source = tmp_path / "portrait.jpg"
    source.write_bytes(CANON.read_bytes().replace(upright, turned, 1))
    photo, output = round_trip(tmp_path, source, "jpg")
    camera, lens, maker_note, _ = canon_fields(CANON)
    assert photo.pixels.shape[:2] == (48, 32)
    assert canon_fields(output) == (camera, lens, maker_note, None)
    with Image.open(output) as written:
        assert written.getexif()[0x0112] == 1


@pytest.mark.parametrize("source_extension", ["jpg", "tif"])
@pytest.mark.parametrize("extension", EXIF_FORMATS)
def test_the_exif_pixel_dimensions_say_the_size_of_the_turned_picture(tmp_path, source_extension, extension):
    # A camera's EXIF says the size of the picture as stored: 32 x 24 here, on its side (orientation 6). A
    # JPEG's EXIF block is edited in place; a TIFF's EXIF tags go into a block that Pillow builds.
    exif = camera_exif(6)
    exif.get_ifd(EXIF_IFD).update({PIXEL_X_DIMENSION: 32, PIXEL_Y_DIMENSION: 24})
    like = photo_like(gradient_rgb8(), exif=exif.tobytes())
    source = tmp_path / f"in.{source_extension}"
    write_photo(source, like.pixels, like)
    _, output = round_trip(tmp_path, source, extension)
    with Image.open(output) as written:
        directory = written.getexif().get_ifd(EXIF_IFD)
        assert written.size == (directory[PIXEL_X_DIMENSION], directory[PIXEL_Y_DIMENSION]) == (24, 32)


def test_exif_whose_first_directory_is_cut_short_is_damaged(tmp_path):
    with Image.open(CANON) as camera:
        cut = camera.info["exif"][:40]  # 6 + 8 header bytes, then 2 of the first directory's 12 entries
    photo = read_photo(save(tmp_path / "cut.jpg", Image.fromarray(gradient_rgb8()), exif=cut))
    assert photo.exif is None and photo.damaged_metadata == ("EXIF",)


def test_exif_that_ends_with_its_first_directory_and_no_next_offset_is_kept(tmp_path):
    # Some writers leave out the 4 bytes that say where the next directory is, after the block's last one.
    make, taken = b"TestMake\0\0", b"2020:01:02 03:04:05\0"
    exif_ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x9003, 2, 20, 18) + bytes(4)
    ifd0_at = 8 + len(make) + len(taken) + len(exif_ifd)
    ifd0 = (
        struct.pack("<H", 3) + struct.pack("<HHII", MAKE, 2, 9, 8) + struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0)
    )
    ifd0 += struct.pack("<HHII", EXIF_IFD, 4, 1, 8 + len(make) + len(taken))  # and no next offset
    block = b"II*\0" + struct.pack("<I", ifd0_at) + make + taken + exif_ifd + ifd0
    source = save(tmp_path / "no-next.jpg", Image.fromarray(gradient_rgb8()), exif=b"Exif\0\0" + block)
    photo, output = round_trip(tmp_path, source, "jpg")
    assert photo.damaged_metadata == () and photo.pixels.shape[:2] == (32, 24)  # turned by orientation 6
    with Image.open(output) as written:
        exif = written.getexif()
        kept = (exif[MAKE], exif[0x0112], exif.get_ifd(EXIF_IFD)[0x9003])
        assert kept == ("TestMake", 1, taken[:-1].decode())


def test_a_tiff_output_leaves_out_exif_entries_that_point_past_the_block(tmp_path):
    # In a TIFF output, what lies past the EXIF block is recnet's own directory and pixels.
    ifd0 = struct.pack("<H", 2) + struct.pack("<HHIHH", 0x0112, 3, 1, 1, 0)
    ifd0 += struct.pack("<HHII", EXIF_IFD, 4, 1, 200) + bytes(4)  # the Exif directory: not in the block
    exif = b"Exif\0\0II*\0" + struct.pack("<I", 8) + ifd0
    source = save(tmp_path / "past-end.jpg", Image.fromarray(gradient_rgb8()), exif=exif)
    _, output = round_trip(tmp_path, source, "tif")
    with Image.open(source) as photo, Image.open(output) as written:
        assert EXIF_IFD not in written.getexif() and np.array_equal(np.asarray(written), np.asarray(photo))


# --- modes and alpha --------------------------------------------------------------------------------


def rgba8() -> np.ndarray:
    alpha = (np.arange(24 * 32) % 256).astype(np.uint8).reshape(24, 32, 1)
    return np.concatenate([gradient_rgb8(), alpha], axis=2)


@pytest.mark.parametrize("extension", ["png", "tif", "webp"])
def test_8_bit_alpha_is_carried_through(tmp_path, extension):
    original = rgba8()
    photo, output = round_trip(tmp_path, save(tmp_path / "in.png", Image.fromarray(original)), extension)
    assert photo.alpha.dtype == np.uint8 and np.array_equal(photo.alpha, original[..., 3])
    with Image.open(output) as written:
        assert written.mode == "RGBA"
        assert np.array_equal(np.asarray(written)[..., 3], original[..., 3])


def test_pixels_under_full_transparency_are_filled_in_from_the_visible_ones_for_the_model() -> None:
    rgb = np.random.default_rng(5).random((60, 90, 3), dtype=np.float32)  # what lies hidden
    alpha = np.zeros((60, 90), np.uint8)
    alpha[20:40, 30:60] = 255  # a cutout: red on its left, blue on its right
    rgb[20:40, 30:45], rgb[20:40, 45:60] = (0.9, 0.1, 0.1), (0.1, 0.1, 0.9)
    alpha[25, 35], rgb[25, 35] = 1, (0.5, 0.5, 0.5)  # nearly hidden, but for one level: visible, a grey
    on_white = rgb.copy()
    on_white[alpha == 0] = 1.0
    filled, filled_on_white = (filled_where_hidden(x, alpha) for x in (rgb, on_white))
    assert np.array_equal(filled[alpha > 0], rgb[alpha > 0])  # what shows is as it was
    assert np.array_equal(filled, filled_on_white)  # what the hidden pixels held plays no part
    assert (filled >= 0.1 - 1e-6).all() and (filled <= 0.9 + 1e-6).all()  # within the visible colours
    # smooth, and like the visible pixels nearest: red beside the red side, blue beside the blue
    red, blue = filled[10:20, 20:40], filled[10:20, 50:70]
    assert (red[..., 0] > red[..., 2]).all() and (blue[..., 2] > blue[..., 0]).all()
    assert np.abs(np.diff(filled[:20], axis=1)).max() < 0.2  # above the cutout, where its colours jump by 0.8
    assert filled_where_hidden(rgb, None) is rgb
    assert filled_where_hidden(rgb, np.full((60, 90), 255, np.uint8)) is rgb
    assert filled_where_hidden(rgb, np.zeros((60, 90), np.uint16)) is rgb  # nothing shows: nothing to go by


def test_a_small_hole_in_a_field_of_one_colour_is_filled_with_that_colour() -> None:
    rgb = np.zeros((32, 32, 3), np.float32)
    rgb[:, :16, 0], rgb[:, 16:, 2] = 1.0, 1.0  # red, then blue
    alpha = np.full((32, 32), 255, np.uint8)
    alpha[8:12, 4:8] = 0  # in the red, 8 pixels from the blue
    assert np.allclose(filled_where_hidden(rgb, alpha)[8:12, 4:8], (1.0, 0.0, 0.0), atol=1e-3)


def test_a_picture_drawn_of_a_transparent_photo_shows_its_transparency_over_a_checkerboard() -> None:
    rgb = np.full((20, 30, 3), 0.5, np.float32)
    alpha = np.zeros((20, 30), np.uint16)
    alpha[:, 20:] = 65535
    alpha[:, 10:20] = 32768  # half
    shown = over_checkerboard(rgb, alpha)
    assert np.array_equal(shown[:, 20:], rgb[:, 20:])  # what is opaque, as it is
    assert (shown[:8, :8] == 0.8).all() and (shown[:8, 8:10] == 0.6).all() and (shown[8:16, :8] == 0.6).all()
    assert np.allclose(shown[:8, 10:16], (0.5 + 0.6) / 2, atol=1e-4)  # half over the dark square
    assert over_checkerboard(rgb, None) is rgb
    assert over_checkerboard(rgb, np.full((20, 30), 255, np.uint8)) is rgb
    # on a large picture, larger squares: they still show once it is scaled down to a preview's size
    large = over_checkerboard(np.zeros((1500, 6000, 3), np.float32), np.zeros((1500, 6000), np.uint8))
    assert (large[:93, :93] == 0.8).all() and (large[:93, 93] == 0.6).all()
    preview = cv2.resize(large, (1280, 320), interpolation=cv2.INTER_AREA)
    assert np.ptp(preview) > 0.19  # both greys, not their blur


@pytest.mark.parametrize("extension", ["jpg", "bmp"])
def test_alpha_is_dropped_where_the_format_has_none(tmp_path, extension):
    _, output = round_trip(tmp_path, save(tmp_path / "in.png", Image.fromarray(rgba8())), extension)
    with Image.open(output) as written:
        assert written.mode == "RGB"


def test_a_bmp_of_a_transparent_photo_holds_24_bit_colour_alone(tmp_path: Path) -> None:
    # some readers take a 32-bit BMP's fourth byte for alpha, where recnet's note says there is none
    original = rgba8()
    photo = photo_like(original[..., :3], alpha=original[..., 3])
    write_photo(tmp_path / "out.bmp", photo.pixels, photo)
    (bits_per_pixel,) = struct.unpack_from("<H", (tmp_path / "out.bmp").read_bytes(), 28)  # BITMAPINFOHEADER
    assert bits_per_pixel == 24
    assert np.array_equal(written_codes(tmp_path / "out.bmp"), original[..., :3])


def test_lost_transparency_is_noted_unless_the_alpha_is_opaque_all_over(tmp_path):
    see_through = read_photo(save(tmp_path / "in.png", Image.fromarray(rgba8())))
    assert imaging.alpha_loss_notice(see_through, "JPEG") == (
        "its transparency (alpha channel) cannot go into JPEG: left out, so the colours under its "
        "transparent areas show; PNG or TIFF keeps it"
    )
    assert "cannot go into BMP" in imaging.alpha_loss_notice(see_through, "BMP")
    assert [imaging.alpha_loss_notice(see_through, fmt) for fmt in sorted(imaging.ALPHA_FORMATS)] == [
        None
    ] * 5
    opaque_16 = np.full((24, 32), 65535, np.uint16)
    nearly_opaque_16 = opaque_16.copy()
    nearly_opaque_16[5, 7] = 65534
    rgb = gradient_rgb8()
    assert imaging.alpha_loss_notice(photo_like(rgb), "JPEG") is None
    assert imaging.alpha_loss_notice(photo_like(rgb, alpha=np.full((24, 32), 255, np.uint8)), "JPEG") is None
    assert imaging.alpha_loss_notice(photo_like(rgb, alpha=opaque_16), "BMP") is None
    assert imaging.alpha_loss_notice(photo_like(rgb, alpha=nearly_opaque_16), "BMP") is not None


def test_samples_written_at_fewer_bits_are_noted():
    deep = photo_like(gradient_rgb16())
    assert [
        imaging.depth_loss_notice(deep, fmt) is None for fmt in ("PNG", "TIFF", "JPEG", "AVIF", "HEIF")
    ] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert imaging.depth_loss_notice(dataclasses.replace(deep, bit_depth=12), "HEIF") == (
        "its 12-bit samples are written at 10 bits in HEIF; PNG or TIFF keeps all 12"
    )
    assert imaging.depth_loss_notice(dataclasses.replace(deep, bit_depth=10), "HEIF") is None
    assert imaging.depth_loss_notice(photo_like(gradient_rgb8()), "JPEG") is None


@pytest.mark.parametrize("extension", ["png", "tif"])
def test_16_bit_alpha_is_carried_through(tmp_path, extension):
    alpha = (np.arange(24 * 32) * 83 % 65536).astype(np.uint16).reshape(24, 32, 1)
    original = np.concatenate([gradient_rgb16(), alpha], axis=2)
    photo, output = round_trip(tmp_path, write_cv2(tmp_path / f"in.{extension}", original), extension)
    assert photo.alpha.dtype == np.uint16 and np.array_equal(photo.alpha, alpha[..., 0])
    assert np.array_equal(read_cv2_rgb(output), original)


def test_16_bit_alpha_becomes_8_bit_in_webp(tmp_path):
    alpha = np.full((24, 32, 1), 0x8080, np.uint16)
    original = np.concatenate([gradient_rgb16(), alpha], axis=2)
    _, output = round_trip(tmp_path, write_cv2(tmp_path / "in.png", original), "webp")
    with Image.open(output) as written:
        assert written.mode == "RGBA" and (np.asarray(written)[..., 3] == 0x80).all()


def webp_picture_kind(path: Path) -> bytes:
    """The fourcc of a WebP's (first) picture: b"VP8L" (lossless) or b"VP8 " (lossy)."""
    data = path.read_bytes()
    return min((b"VP8L", b"VP8 "), key=lambda kind: data.find(kind) % len(data))  # the first found


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("RGB", {}),
        ("RGBA", {}),
        ("RGB", {"save_all": True, "append_images": [Image.new("RGB", (32, 24))]}),
        ("RGB", {"icc_profile": SRGB_PROFILE + b"\0"}),  # a chunk of odd size before the picture's, padded
    ],
    ids=["plain", "alpha", "animated", "odd-sized chunk"],
)
def test_a_lossless_webp_stays_lossless_and_a_lossy_one_lossy(tmp_path, mode, options):
    original = Image.fromarray(rgba8()).convert(mode)
    source = save(tmp_path / "in.webp", original, lossless=True, **options)
    photo, output = round_trip(tmp_path, source, "webp")
    assert photo.lossless and webp_picture_kind(output) == b"VP8L"
    with Image.open(source) as decoded, Image.open(output) as written:
        assert np.array_equal(np.asarray(written.convert(mode)), np.asarray(decoded.convert(mode)))
    lossy = read_photo(save(tmp_path / "lossy.webp", original, quality=90, **options))
    write_photo(tmp_path / "lossy-out.webp", lossy.pixels, lossy)
    assert not lossy.lossless and webp_picture_kind(tmp_path / "lossy-out.webp") == b"VP8 "
    _, png = round_trip(tmp_path, save(tmp_path / "in.png", original), "webp")  # lossless, but not a WebP
    assert webp_picture_kind(png) == b"VP8 "
    write_photo(tmp_path / "asked-lossy.webp", photo.pixels, photo, quality=80)  # a quality given: lossy
    assert webp_picture_kind(tmp_path / "asked-lossy.webp") == b"VP8 "


@pytest.mark.parametrize("extension", ["png", "tif", "jpg", "bmp"])
def test_grayscale_8_bit_stays_grayscale(tmp_path, extension):
    original = gradient_rgb8()[..., 0]
    photo, output = round_trip(tmp_path, save(tmp_path / "in.png", Image.fromarray(original)), extension)
    assert photo.grayscale and photo.pixels.shape == (24, 32, 3)
    assert np.array_equal(as_codes(photo.pixels, 8), np.dstack([original] * 3))
    with Image.open(output) as written:
        assert written.mode in ("L", "P")  # Pillow writes grey BMPs with a grey palette
        result = np.asarray(written.convert("L"))
    if extension in LOSSLESS:
        assert np.array_equal(result, original)
    else:
        assert np.abs(result.astype(int) - original).mean() < 2


def test_a_lossless_webp_keeps_the_colours_under_fully_transparent_pixels(tmp_path: Path) -> None:
    # as a PNG does: an editor that takes the transparency off shows the colours the photo had there
    original = rgba8()
    hidden = original[..., 3] == 0
    photo = photo_like(original[..., :3], alpha=original[..., 3], lossless=True)
    write_photo(tmp_path / "out.webp", photo.pixels, photo)
    with Image.open(tmp_path / "out.webp") as written:
        assert np.array_equal(np.asarray(written)[hidden], original[hidden])


def test_grayscale_becomes_rgb_in_webp(tmp_path):
    _, output = round_trip(tmp_path, save(tmp_path / "in.png", Image.new("L", (8, 8), 77)), "webp")
    with Image.open(output) as written:
        assert written.mode == "RGB"


def test_grayscale_with_alpha(tmp_path):
    original = np.dstack([gradient_rgb8()[..., 0], rgba8()[..., 3]])
    grey_and_alpha = Image.fromarray(original)  # two 8-bit channels: LA
    assert grey_and_alpha.mode == "LA"
    photo, output = round_trip(tmp_path, save(tmp_path / "in.png", grey_and_alpha), "png")
    assert photo.grayscale and np.array_equal(photo.alpha, original[..., 1])
    with Image.open(output) as written:
        assert written.mode == "LA" and np.array_equal(np.asarray(written), original)


def test_an_8_bit_grey_photo_with_transparency_is_a_grey_with_alpha_tiff(tmp_path: Path) -> None:
    grey, alpha = gradient_rgb8()[..., 0], rgba8()[..., 3]
    like = photo_like(np.dstack([grey] * 3), grayscale=True, alpha=alpha)
    write_photo(tmp_path / "out.tif", like.pixels, like)
    with Image.open(tmp_path / "out.tif") as written:
        assert written.mode == "LA" and np.array_equal(np.asarray(written), np.dstack([grey, alpha]))
    photo = read_photo(tmp_path / "out.tif")
    assert photo.grayscale and np.array_equal(photo.alpha, alpha)


@pytest.mark.parametrize("extension", ["png", "tif"])
def test_grayscale_16_bit_stays_16_bit_grayscale(tmp_path, extension):
    original = gradient_rgb16()[..., 0]
    source = tmp_path / f"in.{extension}"
    assert cv2.imwrite(str(source), original)
    photo, output = round_trip(tmp_path, source, extension)
    assert photo.grayscale and photo.bit_depth == 16
    assert np.array_equal(as_codes(photo.pixels, 16), np.dstack([original] * 3))
    written = cv2.imread(str(output), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16 and np.array_equal(written, original)


def test_grayscale_16_bit_with_alpha(tmp_path):
    grey, alpha = gradient_rgb16()[..., 0], gradient_rgb16()[..., 1]
    like = photo_like(np.dstack([grey] * 3), grayscale=True, alpha=alpha)
    source = tmp_path / "in.png"
    write_photo(source, like.pixels, like)

    photo, output = round_trip(tmp_path, source, "png")

    assert photo.grayscale and photo.bit_depth == 16
    assert np.array_equal(as_codes(photo.pixels[..., 0], 16), grey) and np.array_equal(photo.alpha, alpha)
    assert output.read_bytes() == source.read_bytes()


def test_grayscale_16_bit_with_alpha_is_a_tiff_readers_open(tmp_path):
    # A 16-bit grey-with-alpha TIFF: Pillow could not open it, OpenCV dropped its alpha, recnet refused it
    grey, alpha = gradient_rgb16()[..., 0], gradient_rgb16()[..., 1]
    like = photo_like(np.dstack([grey] * 3), grayscale=True, alpha=alpha)
    output = tmp_path / "out.tif"
    write_photo(output, like.pixels, like)

    written = cv2.imread(str(output), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16 and np.array_equal(written, np.dstack([grey] * 3 + [alpha]))
    with Image.open(output) as opened:
        assert opened.mode == "RGBA"
    photo = read_photo(output)
    assert photo.bit_depth == 16 and np.array_equal(photo.alpha, alpha)
    assert np.array_equal(as_codes(photo.pixels, 16), np.dstack([grey] * 3))
    # its grey profile cannot go with RGB: converted, as for AVIF, and no note says TIFF keeps it
    profiled = dataclasses.replace(like, icc_profile=icc.grey_profile("Grey, gamma 2.2", 2.2))
    converted = "converted from Grey, gamma 2.2 to sRGB; PNG keeps the profile"
    assert output_notices(profiled, "TIFF") == [
        "this TIFF holds no grey colour profile (16-bit grey with transparency goes in as RGB, which "
        f"readers open): {converted}"
    ]
    assert output_notices(profiled, "WEBP")[0].endswith(converted)


@pytest.mark.parametrize(
    ("profile", "kept"), [(GREY_PROFILE, True), (SRGB_PROFILE, False)], ids=["grey", "srgb"]
)
def test_grayscale_keeps_only_a_grey_profile(tmp_path, profile, kept):
    grey = Image.new("L", (8, 8), 100)
    _, output = round_trip(tmp_path, save(tmp_path / "in.png", grey, icc_profile=profile), "png")
    with Image.open(output) as written:
        assert written.info.get("icc_profile") == (profile if kept else None)


@pytest.mark.parametrize(
    ("mode", "profile", "why"),
    [
        ("RGB", b"not a profile at all" * 10, "is not an ICC profile"),
        ("RGB", GREY_PROFILE, "is one for grey colours, not the photo's RGB"),
        ("RGB", INK_PROFILE, "is one for CMYK colours, not the photo's RGB"),
        ("L", SRGB_PROFILE, "is one for RGB colours, not the photo's grey"),
    ],
    ids=["junk", "grey-on-rgb", "cmyk-on-rgb", "rgb-on-grey"],
)
def test_a_profile_that_says_nothing_of_the_colours_is_left_out_with_a_note(tmp_path, mode, profile, why):
    # It was left out of every output without a word
    photo = read_photo(save(tmp_path / "in.jpg", Image.new(mode, (8, 8), 100), icc_profile=profile))
    assert photo.icc_profile is None
    assert photo.reading_notices() == [f"its embedded colour profile {why}: the output goes without it"]
    assert photo.reading_notices(metadata=False) == []


def test_a_profile_cut_short_inside_its_header_is_left_out_with_a_note(tmp_path: Path) -> None:
    cut = SRGB_PROFILE[:64]  # its colour space and signature are there, its tags are not
    photo = read_photo(save(tmp_path / "in.jpg", Image.new("RGB", (8, 8), 100), icc_profile=cut))
    assert photo.icc_profile is None
    assert photo.reading_notices() == [
        "its embedded colour profile is not an ICC profile: the output goes without it"
    ]
    write_photo(tmp_path / "out.jpg", photo.pixels, photo)
    with Image.open(tmp_path / "out.jpg") as written:
        assert "icc_profile" not in written.info


def test_palette_reads_as_rgb(tmp_path):
    palette_image = Image.fromarray(gradient_rgb8()).quantize(16)
    photo, output = round_trip(tmp_path, save(tmp_path / "in.png", palette_image), "png")
    expected = np.asarray(palette_image.convert("RGB"))
    assert not photo.grayscale and photo.alpha is None
    assert np.array_equal(as_codes(photo.pixels, 8), expected)
    with Image.open(output) as written:
        assert written.mode == "RGB" and np.array_equal(np.asarray(written), expected)


@pytest.mark.parametrize(("name", "kind"), [("in.tif", "pages"), ("in.webp", "frames"), ("in.png", "frames")])
def test_the_first_of_several_pages_or_frames_is_read_and_the_rest_counted(tmp_path, name, kind):
    first, *others = (Image.fromarray(gradient_rgb8() // d) for d in (1, 2, 3))
    first.save(tmp_path / name, save_all=True, append_images=others, lossless=True)
    photo = read_photo(tmp_path / name)
    assert np.array_equal(as_codes(photo.pixels, 8), gradient_rgb8())
    assert photo.frames == 3
    assert photo.unread_frames_notice == f"has 3 {kind}; only the first is used"


def test_a_camera_jpeg_with_a_preview_after_it_counts_as_one_picture(tmp_path):
    photo = Image.fromarray(gradient_rgb8())
    photo.save(tmp_path / "in.jpg", format="MPO", save_all=True, append_images=[photo.resize((16, 12))])
    with Image.open(tmp_path / "in.jpg") as opened:
        assert opened.format == "MPO" and opened.n_frames == 2
    assert read_photo(tmp_path / "in.jpg").unread_frames_notice is None


def test_a_single_picture_has_no_notice(tmp_path):
    single = save(tmp_path / "in.tif", Image.fromarray(gradient_rgb8()))
    assert read_photo(single).frames == 1 and read_photo(single).unread_frames_notice is None


def test_palette_transparency_becomes_alpha(tmp_path):
    palette_image = Image.fromarray(gradient_rgb8()).quantize(16)
    palette_image.info["transparency"] = 0
    photo = read_photo(save(tmp_path / "in.png", palette_image))
    expected = np.asarray(palette_image.convert("RGBA"))[..., 3]
    assert photo.alpha is not None and np.array_equal(photo.alpha, expected) and (expected == 0).any()


def with_png_chunk(path: Path, kind: bytes, data: bytes) -> Path:
    """``path``, a PNG, with a chunk added after its header (IHDR)."""
    png = path.read_bytes()
    chunk = struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(png[:33] + chunk + png[33:])  # the signature, then IHDR's 25 bytes
    return path


@pytest.mark.parametrize("grey", [False, True])
@pytest.mark.parametrize("depth", [8, 16])
def test_a_png_s_transparent_colour_becomes_alpha(tmp_path, depth, grey):
    codes = (gradient_rgb8() if depth == 8 else gradient_rgb16())[..., : 1 if grey else 3]
    key = codes[3, 4]
    source = tmp_path / "in.png"
    if depth == 8:
        colour = int(key[0]) if grey else tuple(key.tolist())
        Image.fromarray(codes.squeeze()).save(source, transparency=colour)
    else:  # OpenCV, which decodes 16-bit PNGs, made alpha of an RGB one's colour already, not a grey one's
        assert cv2.imwrite(str(source), codes[..., ::-1])
        with_png_chunk(source, b"tRNS", key.astype(">u2").tobytes())
    alpha = np.where((codes == key).all(axis=2), 0, (1 << depth) - 1)
    assert (alpha == 0).any()

    photo, output = round_trip(tmp_path, source, "png")

    assert photo.grayscale == grey and np.array_equal(photo.alpha, alpha)
    assert np.array_equal(as_codes(photo.pixels, depth), np.broadcast_to(codes, photo.pixels.shape))
    assert np.array_equal(cv2.imread(str(output), cv2.IMREAD_UNCHANGED)[..., -1], alpha)


@pytest.mark.parametrize("bits", [2, 4])
def test_a_2_or_4_bit_grey_png_s_transparent_grey_becomes_alpha(tmp_path, bits):
    codes = np.arange(32, dtype=np.uint8).reshape(4, 8) % (1 << bits)
    rows = np.packbits(np.unpackbits(codes[..., None], axis=2)[..., -bits:].reshape(4, -1), axis=1)
    pixels = zlib.compress(np.hstack([np.zeros((4, 1), np.uint8), rows]).tobytes())  # filter 0 per row
    header = struct.pack(">IIBBBBB", 8, 4, bits, 0, 0, 0, 0)  # grey
    chunks = [(b"IHDR", header), (b"tRNS", struct.pack(">H", 1)), (b"IDAT", pixels), (b"IEND", b"")]
    source = tmp_path / "in.png"
    source.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + b"".join(
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
            for kind, data in chunks
        )
    )
    photo = read_photo(source)

    assert photo.grayscale and np.array_equal(
        as_codes(photo.pixels, 8)[..., 0], codes * (255 // (2**bits - 1))
    )
    assert np.array_equal(photo.alpha, np.where(codes == 1, 0, 255))


# Inks of a made-up press, for a CMYK profile made here: the share of each of linear sRGB's red, green and
# blue that cyan, magenta and yellow at full strength take (cyan takes some green too...); black takes all.
INK_ABSORPTION = np.array([[1.0, 0.2, 0.05], [0.1, 1.0, 0.3], [0.05, 0.05, 1.0]])
SRGB_TO_D50_XYZ = icc.bradford_adaptation(icc.xyz_of(0.3127, 0.329)) @ icc.rgb_to_xyz(
    [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)], (0.3127, 0.329)
)


def printed_light(cmyk: np.ndarray) -> np.ndarray:
    """The linear sRGB light that [0, 1] CMYK values (..., 4) print as on the made-up press."""
    cmy, black = cmyk[..., :3], cmyk[..., 3:]
    return np.prod(1 - cmy[..., :, None] * INK_ABSORPTION, axis=-2) * (1 - black)


def printed_srgb(cmyk: np.ndarray) -> np.ndarray:
    """The sRGB [0, 1] values that [0, 1] CMYK values (..., 4) print as on the made-up press."""
    linear = printed_light(cmyk)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def cie_lab(xyz: np.ndarray) -> np.ndarray:
    """CIE L*a*b* of D50 XYZ values (..., 3)."""
    ratios = xyz / icc.D50
    f = np.where(ratios > (6 / 29) ** 3, np.cbrt(ratios), ratios / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def press_profile(grid: int = 9) -> bytes:
    """A CMYK printer profile (ICC v2, 40 KB) of the made-up press: a lookup table (lut16Type A2B0) from
    CMYK to L*a*b* on a grid of ``grid`` points per ink."""
    axis = np.linspace(0, 1, grid)
    nodes = np.stack(np.meshgrid(axis, axis, axis, axis, indexing="ij"), -1).reshape(-1, 4)
    lightness, a, b = np.moveaxis(cie_lab(printed_light(nodes) @ SRGB_TO_D50_XYZ.T), -1, 0)
    table = np.stack([lightness * 0xFF00 / 100, (a + 128) * 256, (b + 128) * 256], -1)  # v2 Lab encoding
    identity = np.array([0, 65535], ">u2").tobytes()  # a curve of two entries, for each input and output
    lut = b"mft2" + bytes(4) + bytes([4, 3, grid, 0]) + icc.s15_fixed16([1, 0, 0, 0, 1, 0, 0, 0, 1])
    lut += struct.pack(">HH", 2, 2) + identity * 4
    lut += np.clip(np.rint(table), 0, 65535).astype(">u2").tobytes() + identity * 3
    tags = [(b"desc", icc.text_tag("Made-up press")), (b"wtpt", icc.xyz_tag(icc.D50)), (b"A2B0", lut)]
    profile = bytearray(icc._profile(b"CMYK", tags))
    profile[8:16], profile[20:24] = struct.pack(">I4s", 0x02100000, b"prtr"), b"Lab "
    return bytes(profile)


# CMYK patches (codes) whose colours the press profile's grid of 9 holds within a code: up to half of each
# ink, and some black (past that, the grid's steps are too coarse for L*'s cube root in the shadows).
PRESS_PATCHES = np.array(
    [[[c, m, y, k] for c in (0, 60, 128) for m in (0, 90) for y in (0, 40, 128)] for k in (0, 50)], np.uint8
)


@pytest.mark.parametrize("extension", ["jpg", "tif"])
def test_cmyk_with_a_profile_reads_as_the_colours_its_profile_gives(tmp_path, extension):
    # Pillow writes a CMYK JPEG inverted, with Adobe's APP14 marker, as Photoshop does
    options = {"quality": 100, "subsampling": 0} if extension == "jpg" else {}
    height, width = PRESS_PATCHES.shape[:2]
    patches = Image.frombytes("CMYK", (width, height), PRESS_PATCHES.tobytes())
    source = save(tmp_path / f"print.{extension}", patches, icc_profile=press_profile(), **options)
    with Image.open(source) as image:
        inks = np.asarray(image) / 255  # what the file holds (a JPEG: within a code of the patches)
    expected = printed_srgb(inks) * 255
    photo, output = round_trip(tmp_path, source, "png")
    read_error = float(np.abs(photo.pixels * 255 - expected).max())
    assert read_error <= 2
    assert photo.icc_profile is None and photo.uncalibrated_cmyk_notice is None  # sRGB, as untagged files
    with Image.open(output) as written:
        assert written.mode == "RGB" and "icc_profile" not in written.info
        written_error = float(np.abs(np.asarray(written) - expected).max())
    assert written_error <= 2


@pytest.mark.parametrize(
    ("profile", "problem"),
    [
        (None, "without a colour profile"),
        (INK_PROFILE, "whose colour profile is damaged (LittleCMS cannot read it)"),
        (SRGB_PROFILE, "whose colour profile is for RGB, not CMYK"),
        (press_profile()[:3000], "whose colour profile LittleCMS cannot use (cannot build transform)"),
    ],
    ids=["none", "a header only", "RGB", "cut short"],
)
def test_cmyk_without_a_usable_profile_reads_plainly_with_a_notice(tmp_path, profile, problem):
    cmyk = Image.fromarray(gradient_rgb8()).convert("CMYK")
    source = save(tmp_path / "in.jpg", cmyk, quality=100, icc_profile=profile)
    with Image.open(source) as image:
        expected = np.asarray(image.convert("RGB"))  # Pillow's plain conversion: R = 255 - C - K...
    photo, output = round_trip(tmp_path, source, "jpg")
    assert photo.icc_profile is None and not photo.grayscale  # a profile of ink, or of nothing here
    assert np.array_equal(as_codes(photo.pixels, 8), expected)
    assert photo.uncalibrated_cmyk_notice == (
        f"a CMYK photo {problem}: its colours were converted to RGB uncalibrated, and may be off"
    )
    with Image.open(output) as written:
        assert written.mode == "RGB" and "icc_profile" not in written.info


def test_rgb_photos_have_no_cmyk_notice(tmp_path):
    source = save(tmp_path / "in.jpg", Image.fromarray(gradient_rgb8()), icc_profile=INK_PROFILE)
    assert read_photo(source).uncalibrated_cmyk_notice is None


TIFFS = Path(__file__).parent / "data" / "tiff"  # written by tifffile: see its README.md
TIFF_ALPHA = (np.arange(6 * 8) * 1000).astype(np.uint16).reshape(6, 8)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("planar-rgb16.tif", gradient_rgb16(6, 8)),
        ("planar-rgb16-tiled.tif", gradient_rgb16(6, 8)),  # deflate, in tiles
        # big-endian, deflate with a predictor, in strips of 2 rows, orientation 6 (turned on read)
        ("planar-rgba16-deflate-rotated.tif", np.rot90(np.dstack([gradient_rgb16(6, 8), TIFF_ALPHA]), -1)),
        ("planar-rgb8.tif", gradient_rgb8(6, 8)),
    ],
)
def test_tiffs_stored_plane_by_plane_keep_their_samples_and_depth(tmp_path, name, expected):
    photo, output = round_trip(tmp_path, TIFFS / name, "tif")
    depth = 8 * expected.dtype.itemsize
    assert photo.bit_depth == depth and not photo.grayscale
    assert np.array_equal(as_codes(photo.pixels, depth), expected[..., :3])
    assert np.array_equal(read_cv2_rgb(output), expected)


def test_a_16_bit_rgb_tiff_s_unspecified_extra_channel_is_not_taken_for_alpha(tmp_path):
    photo, output = round_trip(tmp_path, TIFFS / "rgbx16.tif", "tif")
    assert photo.bit_depth == 16 and photo.alpha is None
    assert np.array_equal(as_codes(photo.pixels, 16), gradient_rgb16(6, 8))
    assert np.array_equal(read_cv2_rgb(output), gradient_rgb16(6, 8))


@pytest.mark.parametrize("name", ["premultiplied-rgba16.tif", "planar-premultiplied-rgba16.tif"])
def test_a_16_bit_tiff_s_premultiplied_colour_is_made_straight(tmp_path, name):
    photo, output = round_trip(tmp_path, TIFFS / name, "tif")
    assert photo.bit_depth == 16 and np.array_equal(photo.alpha, TIFF_ALPHA)
    visible = TIFF_ALPHA > 0
    # Premultiplying rounded each sample to a step of 65535 / alpha of the straight colour; none is left
    # for a fully transparent pixel.
    error = np.abs(as_codes(photo.pixels, 16).astype(int) - gradient_rgb16(6, 8))
    assert np.all(error[visible] <= 0.5 * 65535 / TIFF_ALPHA[visible][:, None] + 1)
    with Image.open(output) as written:
        assert written.tag_v2[TiffImagePlugin.EXTRASAMPLES] == (2,)  # written straight: unassociated alpha


def test_a_16_bit_miniswhite_tiff_is_read_as_it_looks(tmp_path):
    stored = gradient_rgb16(6, 8)[..., 0]  # 0 is white
    photo, output = round_trip(tmp_path, TIFFS / "miniswhite16.tif", "tif")
    assert photo.grayscale and photo.bit_depth == 16
    assert np.array_equal(as_codes(photo.pixels[..., 0], 16), 0xFFFF - stored)
    with Image.open(output) as written:
        assert written.tag_v2[TiffImagePlugin.PHOTOMETRIC_INTERPRETATION] == 1  # MinIsBlack
        assert np.array_equal(np.asarray(written), 0xFFFF - stored)


# --- bad input --------------------------------------------------------------------------------------


def assert_read_error(path: Path, reason: str) -> None:
    with pytest.raises(ImageReadError) as caught:
        read_photo(path)
    message = str(caught.value)
    assert message == f"{path}: {caught.value.reason}"
    assert path.name in message and "\n" not in message and "Traceback" not in message
    assert reason in caught.value.reason


def truncated(tmp_path: Path, source: Path) -> Path:
    damaged = tmp_path / f"truncated{source.suffix}"
    data = source.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    return damaged


def noisy(height: int = 64, width: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("photo.jpg", Path.touch, "empty file"),
        ("photo.jpg", None, "no such file"),
        ("photo.jpg", Path.mkdir, "is a folder"),
        ("DSC_0001.NEF", None, "no such file"),  # a RAW photo's name: no conversion to ask for
        ("DSC_0001.NEF", Path.mkdir, "is a folder"),
    ],
)
def test_what_is_not_a_photo_at_a_photo_s_name_is_named(
    tmp_path: Path, name: str, make: Callable[[Path], object] | None, reason: str
) -> None:
    if make is not None:
        make(tmp_path / name)
    assert_read_error(tmp_path / name, reason)


@pytest.mark.parametrize("name", ["DSC_0001.NEF", "x.dng"])
def test_raw_photos_ask_for_a_conversion(tmp_path: Path, name: str) -> None:
    # Pillow opens TIFF-based RAW files and would hand over their small embedded preview as the photo.
    Image.new("RGB", (16, 12)).save(tmp_path / name, format="TIFF")
    assert_read_error(tmp_path / name, "a camera RAW file: convert it to TIFF or JPEG first")


needs_heif = pytest.mark.skipif(not imaging.HEIF_SUPPORTED, reason="pillow-heif is not installed")


@needs_heif
def test_heif_photos_are_read_upright_and_written_with_their_metadata(tmp_path: Path) -> None:
    imaging.enable_heif()
    source = gradient_rgb8(48, 64)
    xmp = xmp_packet('xmp:Rating="4"')
    options = {"exif": camera_exif(orientation=6).tobytes(), "icc_profile": SRGB_PROFILE, "xmp": xmp}
    heic = save(tmp_path / "IMG_0001.HEIC", Image.fromarray(source), quality=95, **options)
    photo = read_photo(heic)
    assert photo.source_format == "HEIF" and photo.pixels.shape == (64, 48, 3)  # turned upright
    assert np.abs(photo.pixels * 255 - np.rot90(source, -1)).mean() < 4  # lossy, like JPEG
    assert np.array_equal(read_rgb(heic), np.rint(photo.pixels * 255))  # training reads it too
    for extension in ("heic", "jpg"):
        output = tmp_path / f"out.{extension}"
        write_photo(output, photo.pixels, photo)
        with Image.open(output) as written:
            assert written.size == (48, 64) and camera_tags(written) == CAMERA_TAGS
            assert written.info["icc_profile"] == SRGB_PROFILE and written.info["xmp"] == xmp
        assert read_photo(output).pixels.shape == (64, 48, 3)  # orientation 1: not turned again


@needs_heif
def test_heif_keeps_alpha_and_grey(tmp_path: Path) -> None:
    imaging.enable_heif()
    rgba = np.dstack([gradient_rgb8(), np.full((24, 32), 200, np.uint8)])
    for name, pixels in (("alpha.heic", rgba), ("grey.heif", gradient_rgb8()[..., 0])):
        photo = read_photo(save(tmp_path / name, Image.fromarray(pixels), quality=95))
        write_photo(tmp_path / f"out-{name}", photo.pixels, photo)
        again = read_photo(tmp_path / f"out-{name}")
        assert (again.alpha is not None, again.grayscale) == (name == "alpha.heic", name == "grey.heif")


@needs_heif
def test_grey_with_alpha_stays_grey_with_its_profile_in_heif_and_is_grey_rgb_in_avif(tmp_path: Path) -> None:
    # libheif decodes grey with alpha to RGBA: its grey profile was dropped (one for grey, not RGB) and the
    # model's colour cast went into a colour output; AVIF, written as RGBA, was given the grey profile
    imaging.enable_heif()
    grey = icc.grey_profile("Grey, gamma 2.2", 2.2)
    pixels = np.dstack([gradient_rgb8()[..., 0], np.full((24, 32), 200, np.uint8)])
    heic = save(tmp_path / "la.heic", Image.fromarray(pixels), quality=95, icc_profile=grey)
    photo = read_photo(heic)
    assert (photo.grayscale, photo.alpha is not None, photo.icc_profile) == (True, True, grey)
    tinted = photo.pixels * np.float32([1.0, 0.9, 0.8])  # a colour cast, as the model may add
    for name in ("out.heic", "out.png"):
        write_photo(tmp_path / name, tinted, photo)
        again = read_photo(tmp_path / name)
        assert (again.grayscale, again.alpha is not None, again.icc_profile) == (True, True, grey), name
    if imaging.AVIF_SUPPORTED:
        write_photo(tmp_path / "out.avif", tinted, photo)
        with Image.open(tmp_path / "out.avif") as avif:
            rgba = np.asarray(avif)
            assert avif.mode == "RGBA" and "icc_profile" not in avif.info  # converted to sRGB instead
        assert np.abs(rgba[..., 0].astype(int) - rgba[..., 2]).max() <= 2  # grey, but for the codec's loss
        assert imaging.colour_loss_notice(photo, "AVIF") == (
            "AVIF holds no grey colour profile (grey with transparency goes in as RGB): converted from Grey, "
            "gamma 2.2 to sRGB; PNG or TIFF keeps the profile"
        )
    neutral = np.dstack([np.repeat(gradient_rgb8()[..., :1], 3, axis=2), np.full((24, 32), 200, np.uint8)])
    colour = read_photo(save(tmp_path / "neutral.heic", Image.fromarray(neutral), icc_profile=SRGB_PROFILE))
    assert (colour.grayscale, colour.icc_profile) == (
        False,
        SRGB_PROFILE,
    )  # colour, though its pixels are neutral


def save_deep_heif(path: Path, codes: np.ndarray, depth: int = 10, **options) -> Path:
    """A 10- or 12-bit HEIF of H x W x C codes (grey or RGB, then alpha), as Fujifilm and Canon write."""
    import pillow_heif

    mode = ("L", "LA", "RGB", "RGBA")[codes.shape[2] - 1] + ";16"
    size, data = (codes.shape[1], codes.shape[0]), (codes.astype(np.uint16) << (16 - depth)).tobytes()
    twelve, pillow_heif.options.SAVE_HDR_TO_12_BIT = pillow_heif.options.SAVE_HDR_TO_12_BIT, depth == 12
    try:
        pillow_heif.from_bytes(mode, size, data).save(path, **options)
    finally:
        pillow_heif.options.SAVE_HDR_TO_12_BIT = twelve
    return path


def deep_codes(depth: int = 10, height: int = 24, width: int = 32) -> np.ndarray:
    """Codes an 8-bit path would destroy (neighbours 3 codes apart share an 8-bit code), grey in RGB so
    that HEVC's lossless mode keeps them exactly despite 4:2:0 colour."""
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack([x * 3 + y * (40 << (depth - 10))] * 3).astype(np.uint16)


P3_NCLX = {  # Display P3 primaries, the sRGB transfer curve
    "color_primaries": 12,
    "transfer_characteristics": 13,
    "matrix_coefficients": 6,
    "full_range_flag": 1,
}


@needs_heif
@pytest.mark.parametrize("depth", [10, 12])
def test_deep_heif_keeps_its_depth_colour_description_and_orientation(tmp_path: Path, depth: int) -> None:
    import pillow_heif

    codes, peak = deep_codes(depth), (1 << depth) - 1
    exif = camera_exif(orientation=6).tobytes()
    options = {"quality": -1, "exif": exif, "nclx_profile": P3_NCLX}
    source = save_deep_heif(tmp_path / "DSCF0001.HIF", codes, depth, **options)
    photo = read_photo(source)
    upright = np.rot90(codes, -1)
    assert photo.bit_depth == depth and photo.pixels.shape == (32, 24, 3)
    assert np.array_equal(np.rint(photo.pixels * peak), upright)  # lossless: every code, not 8 bits of it
    assert photo.nclx is not None and photo.nclx["color_primaries"] == 12  # Display P3

    write_photo(tmp_path / "out.tif", photo.pixels, photo)  # 16 bits, which hold every code
    assert np.array_equal(np.rint(read_cv2_rgb(tmp_path / "out.tif") / 65535 * peak), upright)

    write_photo(tmp_path / "out.heic", photo.pixels, photo, quality=-1)
    written = pillow_heif.open_heif(tmp_path / "out.heic", convert_hdr_to_8bit=False)
    assert written.info["bit_depth"] == 10 and written.info["nclx_profile"]["color_primaries"] == 12
    assert written.size == (24, 32)
    assert np.array_equal(np.asarray(written) >> 6, np.rint(upright / peak * 1023))
    with Image.open(tmp_path / "out.heic") as again:
        assert camera_tags(again) == CAMERA_TAGS  # orientation 1: not turned again

    write_photo(tmp_path / "out.jpg", photo.pixels, photo)
    assert read_photo(tmp_path / "out.jpg").bit_depth == 8


@needs_heif
def test_heif_outputs_keep_the_sources_chroma_subsampling(tmp_path: Path) -> None:
    # Fujifilm records 4:2:2 and some editors 4:4:4; the encoder's own choice would be 4:2:0, halving the
    # colour resolution the camera kept. Other sources, and grey ones, get the encoder's choice.
    import pillow_heif

    for chroma in (420, 422, 444):
        options = {"quality": 90, "chroma": chroma}
        for depth, source in ((8, tmp_path / f"{chroma}.heic"), (10, tmp_path / f"DSCF{chroma}.HIF")):
            if depth == 8:
                Image.fromarray(gradient_rgb8()).save(source, **options)
            else:
                save_deep_heif(source, deep_codes(), **options)
            photo = read_photo(source)
            assert (photo.chroma, photo.bit_depth) == (chroma, depth)
            write_photo(tmp_path / "out.heic", photo.pixels, photo)
            written = pillow_heif.open_heif(tmp_path / "out.heic", convert_hdr_to_8bit=False)
            assert (written.info["chroma"], written.info["bit_depth"]) == (chroma, depth)
    jpeg = read_photo(save(tmp_path / "shot.jpg", Image.fromarray(gradient_rgb8()), quality=95))
    grey = read_photo(save(tmp_path / "grey.heic", Image.fromarray(gradient_rgb8()[..., 0]), chroma=444))
    assert jpeg.chroma is None and grey.chroma is None
    write_photo(tmp_path / "from-jpeg.heic", jpeg.pixels, jpeg)
    assert pillow_heif.open_heif(tmp_path / "from-jpeg.heic").info["chroma"] == 420


CHROMATICITIES = {  # red, green, blue, white (x, y), as pillow-heif gives them
    1: [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06), (0.3127, 0.329)],
    9: [(0.708, 0.292), (0.17, 0.797), (0.131, 0.046), (0.3127, 0.329)],
    12: [(0.68, 0.32), (0.265, 0.69), (0.15, 0.06), (0.3127, 0.329)],
}


def nclx_of(primaries: int, transfer: int, chromaticities: int | None = None) -> dict[str, float]:
    """An nclx colour description as pillow-heif reads it, with the chromaticities of the primaries coded
    ``chromaticities`` (by default, ``primaries``)."""
    nclx: dict[str, float] = {"color_primaries": primaries, "transfer_characteristics": transfer}
    colours = ("red", "green", "blue", "white")
    for colour, (x, y) in zip(colours, CHROMATICITIES[chromaticities or primaries], strict=True):
        nclx |= {f"color_primary_{colour}_x": x, f"color_primary_{colour}_y": y}
    return nclx


@pytest.mark.parametrize(
    ("nclx", "output_format", "lost"),
    [
        (nclx_of(1, 13), "JPEG", None),  # sRGB
        (nclx_of(2, 2, chromaticities=1), "JPEG", None),  # unspecified
        (nclx_of(12, 13), "HEIF", None),  # kept as it is
        (nclx_of(12, 13), "JPEG", None),  # said by an ICC profile
        (nclx_of(12, 13), "BMP", "BMP holds no colour profile: converted from Display P3 (from HEIF nclx)"),
        (nclx_of(9, 16), "BMP", "(HEIF nclx: BT.2020 primaries, PQ (HDR) transfer curve) cannot go into BMP"),
        (
            nclx_of(9, 16),
            "TIFF",
            "(HEIF nclx: BT.2020 primaries, PQ (HDR) transfer curve) cannot go into TIFF",
        ),
        (nclx_of(1, 18), "WEBP", "(HEIF nclx: HLG (HDR) transfer curve) cannot go into WebP"),
        (nclx_of(2, 16, chromaticities=1), "BMP", "(HEIF nclx: PQ (HDR) transfer curve) cannot go into BMP"),
        (
            nclx_of(99, 8, chromaticities=12),
            "PNG",
            "(HEIF nclx: 99 primaries, linear transfer curve) cannot go into PNG",
        ),
    ],
)
def test_colour_descriptions_that_no_output_profile_holds_are_named(
    nclx: dict[str, float], output_format: str, lost: str | None
) -> None:
    photo = photo_like(gradient_rgb8(), source_format="HEIF", nclx=nclx)
    loss = imaging.colour_loss_notice(photo, output_format)
    assert loss is None if lost is None else lost in str(loss)


def test_other_primaries_with_the_srgb_curve_go_into_other_formats_as_an_icc_profile(tmp_path: Path) -> None:
    photo = photo_like(gradient_rgb8(), source_format="HEIF", nclx=nclx_of(12, 13))
    for extension in ("jpg", "png", "tif", "webp"):
        write_photo(tmp_path / f"out.{extension}", photo.pixels, photo)
        with Image.open(tmp_path / f"out.{extension}") as written:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(written.info["icc_profile"]))
            assert ImageCms.getProfileDescription(profile).strip() == "Display P3 (from HEIF nclx)"
    for nclx in (nclx_of(1, 13), nclx_of(9, 16)):  # sRGB: nothing to say; PQ: no matrix profile holds it
        photo = photo_like(gradient_rgb8(), source_format="HEIF", nclx=nclx)
        write_photo(tmp_path / "plain.jpg", photo.pixels, photo)
        with Image.open(tmp_path / "plain.jpg") as written:
            assert "icc_profile" not in written.info


@pytest.mark.parametrize("transfer", [1, 6, 14, 15])  # BT.709, BT.601, BT.2020 10- and 12-bit: SDR
def test_other_primaries_with_an_sdr_video_curve_are_shown_with_the_srgb_curve(transfer: int) -> None:
    photo = photo_like(colour_codes(), source_format="HEIF", nclx=nclx_of(12, transfer))
    profile, _ = imaging.colour.output_colour(photo, "JPEG")
    assert profile == imaging.nclx_icc_profile(nclx_of(12, 13))
    assert imaging.colour_loss_notice(photo, "JPEG") is None
    assert "converted from Display P3 (from HEIF nclx) to sRGB" in str(
        imaging.colour_loss_notice(photo, "BMP")
    )
    cicp = bytes([9, transfer, 0, 1])
    photo = photo_like(colour_codes(), source_format="PNG", png_colour=((b"cICP", cicp),))
    profile, _ = imaging.colour.output_colour(photo, "TIFF")
    assert profile is not None and imaging.colour_loss_notice(photo, "TIFF") is None


@needs_heif
def test_10_bit_heif_alpha_and_grey_keep_their_codes(tmp_path: Path) -> None:
    import pillow_heif

    alpha = (np.arange(24 * 32).reshape(24, 32, 1) * 5 % 1024).astype(np.uint16)
    rgba = read_photo(save_deep_heif(tmp_path / "alpha.heic", np.dstack([deep_codes(), alpha]), quality=-1))
    assert rgba.alpha is not None and rgba.alpha.dtype == np.uint16
    assert np.array_equal(np.rint(rgba.alpha / 65535 * 1023), alpha[..., 0])
    write_photo(tmp_path / "out-alpha.png", rgba.pixels, rgba)
    assert np.array_equal(read_cv2_rgb(tmp_path / "out-alpha.png")[..., 3], rgba.alpha)  # 16-bit PNG
    write_photo(tmp_path / "out-alpha.heic", rgba.pixels, rgba, quality=-1)
    written = pillow_heif.open_heif(tmp_path / "out-alpha.heic", convert_hdr_to_8bit=False)
    assert np.array_equal(np.asarray(written)[..., 3] >> 6, alpha[..., 0])

    grey = read_photo(save_deep_heif(tmp_path / "grey.heif", deep_codes()[..., :1], quality=-1))
    assert grey.grayscale and grey.bit_depth == 10
    assert np.array_equal(np.rint(grey.pixels[..., 0] * 1023), deep_codes()[..., 0])


@needs_heif
def test_16_bit_photos_are_written_as_10_bit_heif(tmp_path: Path) -> None:
    import pillow_heif

    original = deep_codes().astype(np.float32) / 1023
    like = photo_like(np.rint(original * 65535).astype(np.uint16))
    write_photo(tmp_path / "out.heic", like.pixels, like, quality=-1)
    written = pillow_heif.open_heif(tmp_path / "out.heic", convert_hdr_to_8bit=False)
    assert written.info["bit_depth"] == 10 and np.array_equal(np.asarray(written) >> 6, deep_codes())


def test_without_pillow_heif_heif_photos_say_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "shots").mkdir()
    Image.new("RGB", (16, 12)).save(tmp_path / "shots" / "a.jpg")
    Image.new("RGB", (16, 12)).save(tmp_path / "IMG_0002.HEIC", format="PNG")
    probe = f"""
import json, sys
sys.modules["pillow_heif"] = None  # as if it were not installed
from pathlib import Path
from recnet_cli import imaging
from recnet_cli.imaging import icc
from recnet_cli.inputs import find_sources
from recnet_cli.outputs import plan_jobs
try:
    imaging.read_photo(Path({str(tmp_path / "IMG_0002.HEIC")!r}))
    error = None
except imaging.ImageReadError as exc:
    error = str(exc)
(named,), _ = find_sources([{str(tmp_path / "IMG_0002.HEIC")!r}])
in_folder, _ = find_sources([{str(tmp_path / "shots")!r}])
print(json.dumps({{
    "supported": imaging.HEIF_SUPPORTED,
    "error": error,
    "problem": plan_jobs([named], None, suffix="_recnet")[0].problem,
    "folder": [source.path.name for source in in_folder],
    "unwritable": imaging.names_unsupported_image("out.heic"),
    "hint": imaging.install_hint(".HEIC"),
    "reads": imaging.READABLE,
}}))
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    seen = json.loads(result.stdout)
    install = "an HEIF photo: install pillow-heif to read it (pip install pillow-heif), or convert it to JPEG"
    reads = seen["reads"]
    assert seen["supported"] is False and "HEIF" not in reads
    assert seen["error"] == f"{tmp_path / 'IMG_0002.HEIC'}: {install} ({reads})"
    assert seen["problem"] == f"{install} ({reads})"
    assert seen["folder"] == ["a.jpg"] and seen["unwritable"] is True
    assert seen["hint"] == "; HEIF needs pillow-heif: pip install pillow-heif"  # for --ext heic, -o x.heic
    assert imaging.install_hint(".heic") == ("" if imaging.HEIF_SUPPORTED else seen["hint"])


def test_a_broken_pillow_heif_fails_heif_files_alone(tmp_path: Path) -> None:
    broken = tmp_path / "site" / "pillow_heif"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("libheif.so.1: cannot open shared object file")\n')
    Image.new("RGB", (16, 12), (90, 120, 40)).save(tmp_path / "a.jpg")
    Image.new("RGB", (16, 12)).save(tmp_path / "b.heic", format="PNG")
    probe = f"""
import json
from pathlib import Path
from recnet_cli import imaging
from recnet_cli.imaging import icc
from recnet_cli.inputs import find_sources
from recnet_cli.outputs import plan_jobs
photo = imaging.read_photo(Path({str(tmp_path / "a.jpg")!r}))
errors = []
for attempt in (
    lambda: imaging.read_photo(Path({str(tmp_path / "b.heic")!r})),
    lambda: imaging.write_photo(Path({str(tmp_path / "c.heic")!r}), photo.pixels, photo),
):
    try:
        attempt()
    except imaging.PhotoFileError as error:
        errors.append(str(error))
(source,), _ = find_sources([{str(tmp_path / "a.jpg")!r}])
print(json.dumps({{
    "jpeg": list(photo.pixels.shape),
    "errors": errors,
    "problem": plan_jobs([source], Path({str(tmp_path / "c.heic")!r}), suffix="_recnet")[0].problem,
}}))
"""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(broken.parent), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=environment
    )
    seen = json.loads(result.stdout)
    why = (
        "pillow-heif is installed but fails to load (libheif.so.1: cannot open shared object file): "
        "reinstall it (pip install pillow-heif --force-reinstall)"
    )
    assert seen["jpeg"] == [12, 16, 3]  # the other formats read as before
    assert seen["errors"] == [
        f"{tmp_path / 'b.heic'}: an HEIF photo: {why}, or convert it to JPEG",
        f"{tmp_path / 'c.heic'}: cannot write HEIF: {why}, or write another format",
    ]
    assert seen["problem"].startswith(f"cannot write HEIF: {why}, or choose another format with --ext")
    assert not (tmp_path / "c.heic").exists()


def test_not_an_image(tmp_path):
    (tmp_path / "photo.jpg").write_text("these are not the pixels you are looking for\n")
    assert_read_error(tmp_path / "photo.jpg", "not an image")


def test_unsupported_format(tmp_path):
    source = save(tmp_path / "photo.gif", Image.fromarray(gradient_rgb8()))
    assert_read_error(source, f"unsupported image format GIF ({imaging.READABLE})")


def test_unsupported_pixel_type(tmp_path):
    source = save(tmp_path / "photo.tif", Image.new("F", (4, 4), 0.5))
    assert_read_error(source, "unsupported pixel type 32-bit floating-point grey")


def test_a_signed_8_bit_grey_tiff_is_refused_not_read_as_unsigned(tmp_path: Path) -> None:
    """Pillow opens signed 8-bit grey as unsigned, so -1 would come out as 255, white: recnet says it
    cannot read it, as it says of signed 16-bit grey."""
    signed = TiffImagePlugin.ImageFileDirectory_v2()
    signed[TiffImagePlugin.SAMPLEFORMAT] = 2
    source = tmp_path / "photo.tif"
    Image.fromarray(np.full((4, 4), 255, np.uint8)).save(source, tiffinfo=signed)
    assert_read_error(source, "unsupported pixel type 8-bit signed grey")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("cmyk16.tif", "16-bit CMYK"),  # Pillow opens it, as 8 bits
        ("grey-alpha16.tif", "16-bit grey with alpha"),  # Pillow cannot open these
        ("float-rgb.tif", "32-bit floating-point RGB"),
        # what makes these unlike the 16-bit RGB, RGBA and MinIsWhite grey TIFFs recnet reads
        ("rgb-two-others16.tif", "16-bit RGB with 2 other channels"),
        ("rgba-other16.tif", "16-bit RGB with alpha and 1 other channel"),
        ("miniswhite16-big-endian.tif", "16-bit big-endian MinIsWhite grey"),
    ],
)
def test_tiffs_of_unsupported_pixel_types_say_so_not_that_they_are_damaged(name, kind):
    assert_read_error(TIFFS / name, f"unsupported pixel type {kind}")


@pytest.mark.parametrize("bits", [12, 16])
def test_a_jpeg_of_other_than_8_bits_says_so_not_that_it_is_damaged(tmp_path: Path, bits: int) -> None:
    # Pillow opens no 12-bit JPEG (medical and scientific cameras write them): it was "truncated or corrupt"
    data = bytearray(save(tmp_path / "photo.jpg", Image.fromarray(gradient_rgb8())).read_bytes())
    frame = data.index(b"\xff\xc0")  # baseline SOF0: its length, then the bits a sample
    data[frame + 4] = bits
    (tmp_path / "photo.jpg").write_bytes(data)
    assert_read_error(tmp_path / "photo.jpg", f"unsupported pixel type {bits}-bit JPEG")


@pytest.mark.parametrize(
    ("bits", "reason"),
    [
        (2, "unsupported pixel type 2-bit JPEG"),
        *[(bits, "truncated or corrupt image data") for bits in (0, 1, 17, 255)],
    ],
)
def test_only_the_bits_a_jpeg_frame_may_give_are_said_to_be_an_unsupported_pixel_type(
    tmp_path: Path, bits: int, reason: str
) -> None:
    """A lossless JPEG's frame (SOF3) gives 2 to 16 bits a sample; any other number is damage, not a pixel
    type to name."""
    data = bytearray(save(tmp_path / "photo.jpg", Image.fromarray(gradient_rgb8())).read_bytes())
    frame = data.index(b"\xff\xc0")
    data[frame + 1], data[frame + 4] = 0xC3, bits
    (tmp_path / "photo.jpg").write_bytes(data)
    assert_read_error(tmp_path / "photo.jpg", reason)


def test_a_damaged_file_that_is_no_jpeg_or_a_jpeg_cut_in_its_frame_is_not_said_to_be_of_a_pixel_type(
    tmp_path: Path,
) -> None:
    # a PNG Pillow cannot open, its bytes those of a 12-bit JPEG's frame: no JPEG's
    png = tmp_path / "photo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\xff\xc0\x00\x11\x0c" + bytes(64))
    assert_read_error(png, "truncated or corrupt image data")
    # a JPEG that ends with its frame's length, which says the frame holds nothing: no bits a sample
    data = save(tmp_path / "whole.jpg", Image.fromarray(gradient_rgb8())).read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: data.index(b"\xff\xc0") + 2] + b"\x00\x02")
    assert_read_error(cut, "truncated or corrupt image data")


@pytest.mark.parametrize(
    ("extension", "bits"), [("jpg", 8), ("png", 8), ("tif", 8), ("webp", 8), ("png", 16), ("tif", 16)]
)
def test_a_photo_cut_short_is_truncated_or_corrupt(tmp_path: Path, extension: str, bits: int) -> None:
    photo = tmp_path / f"photo.{extension}"
    if bits == 8:
        source = save(photo, Image.fromarray(noisy()), quality=90)
    else:
        source = write_cv2(photo, noisy().astype(np.uint16) * 257)
    assert_read_error(truncated(tmp_path, source), "truncated or corrupt image data")


def jpeg_with_restart_markers(path: Path, rgb: np.ndarray) -> Path:
    """A JPEG with a restart marker (RSTn) after each 2 of its MCUs, as phones' encoders write them."""
    assert cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])
    return path


# JPEGs that a file's end cut short of its end marker (EOI) alone leaves whole: one scan of all their
# components, of noise, so that the last bytes of their scans are picture, not padding
WHOLE_JPEGS: dict[str, Callable[[Path], Path]] = {
    "baseline": lambda path: save(path, Image.fromarray(noisy()), quality=90, exif=camera_exif()),
    "grey": lambda path: save(path, Image.fromarray(noisy()[..., 0]), quality=90),
    "optimised 4:4:4": lambda path: save(path, Image.fromarray(noisy()), subsampling=0, optimize=True),
    "restart markers": lambda path: jpeg_with_restart_markers(path, noisy()),
    # MCUs of 16 x 16 pixels cut at its edges: 4 x 3 of them, not 3 x 2, so 5 restart markers, not 2
    "restart markers, odd size": lambda path: jpeg_with_restart_markers(path, noisy(37, 53)),
}
END_MARKER_NOTICE = "it ends without its JPEG end marker: its picture is whole all the same"


def without_its_end(path: Path, missing: int) -> Path:
    """A copy of a file without its last ``missing`` bytes."""
    cut = path.with_name(f"cut-{missing}{path.suffix}")
    cut.write_bytes(path.read_bytes()[:-missing])
    return cut


@pytest.mark.parametrize("missing", [2, 1])
@pytest.mark.parametrize("kind", list(WHOLE_JPEGS))
def test_a_jpeg_missing_only_its_end_marker_is_read_whole(tmp_path: Path, kind: str, missing: int) -> None:
    """A JPEG whose file ends where its end marker (EOI) belongs, or after its first byte (recovered from a
    card, a download cut short there), was refused as truncated, its picture whole: it is read with the
    marker put back, pixel for pixel, with its metadata, and a note says so."""
    whole = WHOLE_JPEGS[kind](tmp_path / "whole.jpg")
    photo, expected = read_photo(without_its_end(whole, missing)), read_photo(whole)
    np.testing.assert_array_equal(photo.pixels, expected.pixels)
    assert (photo.exif, photo.icc_profile, photo.dpi) == (expected.exif, expected.icc_profile, expected.dpi)
    assert photo.reading_notices() == photo.reading_notices(metadata=False) == [END_MARKER_NOTICE]
    assert expected.reading_notices() == []


@pytest.mark.parametrize("kind", list(WHOLE_JPEGS))
def test_a_jpeg_cut_short_inside_its_scan_is_refused_though_one_missing_only_its_end_marker_is_read(
    tmp_path: Path, kind: str
) -> None:
    """A JPEG cut short inside its scan, by its last byte of picture (3 bytes short) or more, decodes with
    its end marker put back as Pillow does with LOAD_TRUNCATED_IMAGES, its missing part made up: it is
    refused as damaged still, where the same JPEG missing its end marker alone is read."""
    whole = WHOLE_JPEGS[kind](tmp_path / "whole.jpg")
    size = whole.stat().st_size
    for missing in (3, 4, 5, 10, 50, size // 20, (size - whole.read_bytes().index(b"\xff\xda")) // 2):
        assert_read_error(without_its_end(whole, missing), "truncated or corrupt image data")
    assert read_photo(without_its_end(whole, 2)).reading_notices() == [END_MARKER_NOTICE]


def test_a_jpeg_cut_short_at_a_restart_marker_is_refused(tmp_path: Path) -> None:
    """A JPEG with restart markers cut short before its last one, or after that marker's first byte, decodes
    with its end marker put back alike with any bytes before the marker (libjpeg makes up the rest of the
    scan, and passes over them): it is refused, by the restart markers its frame and restart interval call
    for, where the same JPEG missing its end marker alone is read."""
    whole = jpeg_with_restart_markers(tmp_path / "whole.jpg", noisy())
    data = whole.read_bytes()
    scan = data.index(b"\xff\xda")
    last = [found.start() for found in re.compile(rb"\xff[\xd0-\xd7]").finditer(data, scan)][-1]
    for cut_at in (last, last + 1, last + 3):  # before it, after its 0xFF, and 1 byte into the last interval
        assert_read_error(without_its_end(whole, len(data) - cut_at), "truncated or corrupt image data")
    assert read_photo(without_its_end(whole, 2)).reading_notices() == [END_MARKER_NOTICE]


def test_a_progressive_jpeg_missing_its_end_marker_is_refused(tmp_path: Path) -> None:
    """A progressive JPEG cut short between two of its scans decodes with its end marker put back as a whole
    picture of less detail, alike with any bytes before the marker, as one missing the end marker alone
    does: recnet does not tell the two apart, and both are refused, where a baseline JPEG of the same
    picture missing its end marker is read."""
    progressive = save(tmp_path / "progressive.jpg", Image.fromarray(noisy()), quality=90, progressive=True)
    data = progressive.read_bytes()
    first = data.index(b"\xff\xda")
    first_scan_end = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]").search(data, first + 2).start()
    # its first scan alone (nothing after it tells a later one is missing), its last scan, its end marker
    for missing in (len(data) - first_scan_end, len(data) - data.rindex(b"\xff\xda"), 2):
        assert_read_error(without_its_end(progressive, missing), "truncated or corrupt image data")
    baseline = save(tmp_path / "baseline.jpg", Image.fromarray(noisy()), quality=90)
    assert read_photo(without_its_end(baseline, 2)).reading_notices() == [END_MARKER_NOTICE]


def test_a_jpeg_missing_its_end_marker_that_memory_cannot_hold_says_so_not_that_it_is_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = save(tmp_path / "whole.jpg", Image.fromarray(noisy()), quality=90)
    cut = without_its_end(whole, 2)
    monkeypatch.setattr(Image.Image, "tobytes", numpy_out_of_memory)  # as its scan is told whole
    assert_read_error(cut, "not enough memory to decode this 0.0 MP image: free some memory")


def damaged_png(source: Path, damage: str) -> Path:
    """``source`` (a PNG) cut short, with a byte of its pixel data changed, or without its IEND chunk."""
    data = bytearray(source.read_bytes())
    if damage == "cut":
        del data[len(data) // 2 :]
    elif damage == "changed":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[-12:]  # IEND: length, type, CRC
    damaged = source.with_name(f"{damage}.png")
    damaged.write_bytes(data)
    return damaged


@pytest.mark.parametrize("damage", ["cut", "changed", "no IEND"])
def test_a_damaged_16_bit_png_gets_recnet_s_error_line_alone(tmp_path, capfd, damage):
    """OpenCV, which decodes 16-bit PNGs, lets its libpng print a line of its own about the damage."""
    source = write_cv2(tmp_path / "photo.png", noisy().astype(np.uint16) * 257)
    assert_read_error(damaged_png(source, damage), "truncated or corrupt image data")
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(
    ("layout", "chunk"),
    [
        ("rgb", (b"iCCP", b"profile\0\0" + zlib.compress(b"not a profile"))),  # libpng: "iCCP: too short"
        ("grey", (b"PLTE", bytes(range(9)))),  # "PLTE: ignored in grayscale PNG": no 16-bit PNG has one
        ("rgb", (b"tRNS", bytes(8))),  # "tRNS: invalid": an RGB colour is 6 bytes
        ("rgba", (b"tRNS", bytes(6))),  # "tRNS: invalid with alpha channel"
    ],
)
def test_a_16_bit_png_s_odd_chunks_are_read_without_libpng_s_warnings(tmp_path, capfd, layout, chunk):
    rgb = noisy().astype(np.uint16) * 257
    pixels = {"rgb": rgb, "grey": rgb[..., 0], "rgba": np.dstack([rgb, rgb[..., :1]])}[layout]
    clean = read_photo(png_with_chunks(tmp_path / "clean.png", pixels))
    odd = read_photo(png_with_chunks(tmp_path / "odd.png", pixels, chunk))
    np.testing.assert_array_equal(odd.pixels, clean.pixels)
    assert (odd.bit_depth, odd.alpha is None) == (16, layout != "rgba")
    assert capfd.readouterr().err == ""


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without read permission")
def test_unreadable_file(tmp_path):
    source = save(tmp_path / "photo.png", Image.fromarray(gradient_rgb8()))
    source.chmod(0)
    assert_read_error(source, "permission denied")


def test_permission_denied_by_the_system(tmp_path, monkeypatch):
    """The same check as test_unreadable_file, for runs as root, where chmod cannot deny reading."""
    source = save(tmp_path / "photo.png", Image.fromarray(gradient_rgb8()))

    def refuse(path: Path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "open", refuse)
    assert_read_error(source, "permission denied")


@pytest.mark.parametrize("exhausted", [opencv_out_of_memory, numpy_out_of_memory])
def test_running_out_of_memory_while_decoding_is_not_called_a_damaged_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exhausted
) -> None:
    source = save(tmp_path / "photo.jpg", Image.new("RGB", (1000, 500)))
    monkeypatch.setattr(imaging.read, "_decode", exhausted)
    assert_read_error(source, "not enough memory to decode this 0.5 MP image: free some memory")


@pytest.mark.parametrize("exhausted", [opencv_out_of_memory, numpy_out_of_memory])
@pytest.mark.parametrize("stage", ["quantise", "_write_samples"])
def test_running_out_of_memory_while_encoding_is_a_one_line_write_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exhausted, stage: str
) -> None:
    photo = read_photo(save(tmp_path / "photo.png", Image.new("RGB", (1000, 500))))
    target = tmp_path / "out.jpg"
    target.write_bytes(b"an earlier output")
    monkeypatch.setattr(imaging.write, stage, exhausted)
    with pytest.raises(ImageWriteError) as caught:
        write_photo(target, photo.pixels, like=photo)
    assert caught.value.reason.startswith("not enough memory to encode this 0.5 MP image: free some memory")
    assert target.read_bytes() == b"an earlier output"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.jpg", "photo.png"]


def test_other_opencv_errors_while_decoding_still_mean_a_damaged_file(tmp_path: Path, monkeypatch) -> None:
    source = save(tmp_path / "photo.jpg", Image.new("RGB", (100, 50)))

    def damaged(*args: object) -> None:
        cv2.cvtColor(np.zeros((2, 2, 5), np.uint8), cv2.COLOR_BGR2RGB)  # a channel count OpenCV refuses

    monkeypatch.setattr(imaging.read, "_decode", damaged)
    assert_read_error(source, "truncated or corrupt image data")


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` RGB pixels, with no pixel data after it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def test_an_image_larger_than_the_machine_s_memory_could_hold_is_refused_before_decoding(tmp_path):
    # A decompression bomb: 1 MB that claims 10 gigapixels, 112 GiB as float32 (smaller, it is damaged).
    bomb = png_claiming(tmp_path / "bomb.png", 100_000, 100_000)
    bomb.write_bytes(bomb.read_bytes() + bytes(10**6))
    assert imaging.read.USABLE_MEMORY is not None and imaging.read.USABLE_MEMORY < 100_000**2 * 12
    assert_read_error(
        bomb, "image too large: its 100000 x 100000 pixels would take 111.8 GiB as float32, more"
    )


def jpeg_claiming(path: Path, width: int, height: int, frame: int = 0xC0, padded: bool = False) -> Path:
    """A 64 x 48 baseline JPEG whose frame header claims ``width`` x ``height`` pixels, its marker made
    ``frame`` (0xC9: arithmetic coding); ``padded``: with stray bytes before its quantisation tables and
    fill bytes before its frame, which readers pass over."""
    encoded = bytearray(cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))[1].tobytes())
    start = encoded.find(b"\xff\xc0")
    encoded[start + 1] = frame
    encoded[start + 5 : start + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    if padded:
        encoded[start:start] = b"\xff" * 3
        tables = encoded.find(b"\xff\xdb")
        encoded[tables:tables] = bytes(10)
    path.write_bytes(bytes(encoded))
    return path


@pytest.mark.parametrize("make", [png_claiming, jpeg_claiming, functools.partial(jpeg_claiming, padded=True)])
def test_a_header_claiming_more_pixels_than_its_file_can_hold_is_damage_said_before_decoding(
    tmp_path: Path, make: Callable[[Path, int, int], Path]
) -> None:
    claims = make(tmp_path / "claims", 60_000, 60_000)  # nor is it said to be too large for the memory
    assert_read_error(
        claims,
        "truncated or corrupt image data: its header says it has 60000 x 60000 pixels, more than its "
        f"{claims.stat().st_size:,} bytes can hold",
    )
    assert imaging.read.header_size(claims) is None  # no memory check from it, which would say "memory"
    assert imaging.read.header_size(make(tmp_path / "plausible", 100, 100)) == (100, 100)


@pytest.mark.parametrize("frame", [0xC1, 0xC3, 0xC5], ids=["extended", "lossless", "hierarchical"])
def test_a_jpeg_s_huffman_coded_frame_of_any_kind_bounds_the_pixels_its_file_can_hold(
    tmp_path: Path, frame: int
) -> None:
    """Every Huffman-coded frame (extended, lossless, hierarchical, as baseline and progressive ones) takes
    a bit at least for each block of pixels: a header claiming more than the file can hold is damage."""
    claims = jpeg_claiming(tmp_path / "claims.jpg", 60_000, 60_000, frame=frame)
    assert_read_error(claims, f"60000 x 60000 pixels, more than its {claims.stat().st_size:,} bytes can hold")


def test_a_jpeg_whose_huffman_tables_come_before_its_frame_is_judged_by_its_frame(tmp_path: Path) -> None:
    """A JPEG's DHT segment (0xC4, among the SOF markers' numbers) is no frame: where it comes first, the
    frame after it still says how many pixels the file claims, and how many bits a sample."""
    own, rest = jpeg_header_segments(jpeg_claiming(tmp_path / "claims.jpg", 60_000, 60_000).read_bytes())
    frames = [segment for segment in own if segment[1] == 0xC0]
    claims = tmp_path / "tables-first.jpg"
    claims.write_bytes(b"\xff\xd8" + b"".join([s for s in own if s[1] != 0xC0] + frames) + rest)
    assert_read_error(claims, f"60000 x 60000 pixels, more than its {claims.stat().st_size:,} bytes can hold")
    twelve = tmp_path / "twelve.jpg"
    twelve.write_bytes(claims.read_bytes().replace(frames[0], frames[0][:4] + b"\x0c" + frames[0][5:]))
    assert_read_error(twelve, "unsupported pixel type 12-bit JPEG")


@pytest.mark.parametrize("frame", [0xC9, 0xCF], ids=["arithmetic", "arithmetic-lossless"])
def test_a_12_bit_jpeg_of_an_arithmetic_coded_frame_says_so_not_that_it_is_damaged(
    tmp_path: Path, frame: int
) -> None:
    """The bits a sample are read from an arithmetic-coded frame (SOF9, SOF15) too, not only from a
    Huffman-coded one: Pillow opens neither at 12 bits."""
    data = bytearray(save(tmp_path / "photo.jpg", Image.fromarray(gradient_rgb8())).read_bytes())
    at = data.index(b"\xff\xc0")
    data[at + 1], data[at + 4] = frame, 12
    (tmp_path / "photo.jpg").write_bytes(data)
    assert_read_error(tmp_path / "photo.jpg", "unsupported pixel type 12-bit JPEG")


@pytest.mark.parametrize(("make", "per_byte"), [(png_claiming, 2 * 1032 * 8), (jpeg_claiming, 2 * 64 * 8)])
def test_a_header_claiming_as_many_pixels_as_its_bytes_can_hold_is_taken_at_its_word(
    tmp_path: Path, make: Callable[[Path, int, int], Path], per_byte: int
) -> None:
    """A header claiming as many pixels as its bytes can hold by its format's coding (twice what a byte
    holds at most, to spare) is taken at its word; one pixel more is damage."""
    size = make(tmp_path / "one", 1, 1).stat().st_size  # as long whatever it claims
    assert imaging.read.header_size(make(tmp_path / "most", per_byte, size)) == (size, per_byte)
    assert imaging.read.header_size(make(tmp_path / "more", per_byte + 1, size)) is None


def test_a_camera_mpo_claiming_more_pixels_than_its_file_can_hold_is_damage_said_before_decoding(
    tmp_path: Path,
) -> None:
    """A camera's MPO (a JPEG with a second picture after it) is bounded as a JPEG is."""
    image = Image.fromarray(noisy())
    data = bytearray(
        save(tmp_path / "photo.mpo", image, format="MPO", save_all=True, append_images=[image]).read_bytes()
    )
    at = data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", 60_000, 60_000)
    claims = tmp_path / "claims.mpo"
    claims.write_bytes(data)
    with Image.open(claims) as opened:
        assert opened.format == "MPO"
    assert_read_error(claims, f"60000 x 60000 pixels, more than its {len(data):,} bytes can hold")


def test_the_most_compressible_photos_are_not_taken_for_damaged_ones(tmp_path: Path) -> None:
    white = np.full((4000, 4000), 255, np.uint8)  # grey: a JPEG's fewest bytes a pixel
    progressive = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_OPTIMIZE, 1]
    jpeg = tmp_path / "white.jpg"
    jpeg.write_bytes(cv2.imencode(".jpg", white, progressive)[1].tobytes())
    one_bit = save(tmp_path / "white.png", Image.new("1", (4000, 4000), 1), optimize=True)
    assert imaging.read.header_size(jpeg) == imaging.read.header_size(one_bit) == (4000, 4000)
    # An arithmetic-coded JPEG has no such bound: its header is taken at its word (decoding finds damage)
    arithmetic = jpeg_claiming(tmp_path / "arithmetic.jpg", 10_000, 10_000, frame=0xC9)
    assert imaging.read.header_size(arithmetic) == (10_000, 10_000)


def test_a_photo_read_again_from_memory_is_judged_by_its_own_bytes(tmp_path: Path) -> None:
    """A file read again from memory without a damaged part of it is judged by those bytes, not by the file
    on disk: a JPEG that Pillow cannot open is damaged (it was an OSError, no file to map), and a header
    claiming more pixels than they hold says how many bytes they are."""
    on_disk = save(tmp_path / "photo.jpg", Image.fromarray(noisy()))
    unopened = cv2.imencode(".jpg", noisy())[1].tobytes().replace(b"\xff\xdb", b"\xff\x02", 1)  # no marker
    with pytest.raises(ImageReadError) as caught:
        imaging.read._read_open_file(on_disk, io.BytesIO(unopened))
    assert caught.value.reason == "truncated or corrupt image data"
    claims = jpeg_claiming(tmp_path / "claims.jpg", 60_000, 60_000).read_bytes()
    with pytest.raises(ImageReadError, match=f"more than its {len(claims):,} bytes can hold"):
        imaging.read._read_open_file(on_disk, io.BytesIO(claims))


def test_photos_beyond_pillow_s_decompression_bomb_limit_are_read_where_memory_holds_them(
    tmp_path, monkeypatch
):
    # 16000 x 12000 = 192 MP, above the 179 MP Pillow refuses by default: a pixel-shift photo, say. Its
    # header gets past the size check; the missing pixel data is what fails.
    monkeypatch.setattr(imaging.read, "USABLE_MEMORY", 2**40)
    assert_read_error(png_claiming(tmp_path / "big.png", 16_000, 12_000), "truncated or corrupt image data")
    monkeypatch.setattr(imaging.read, "USABLE_MEMORY", 400 * 12 - 1)
    assert_read_error(save(tmp_path / "photo.png", Image.new("RGB", (20, 20))), "image too large")
    monkeypatch.setattr(imaging.read, "USABLE_MEMORY", 400 * 12)
    assert read_photo(tmp_path / "photo.png").pixels.shape == (20, 20, 3)


READ_IN_THREADS = """
import sys, warnings
from concurrent.futures import ThreadPoolExecutor
from PIL import Image
from recnet_cli.imaging import header_megapixels, read_photo

Image.MAX_IMAGE_PIXELS = 100  # 150 pixels: Pillow warns at each read (from 200 it raises)
before = list(warnings.filters)
with ThreadPoolExecutor(8) as pool:
    read = lambda index: (read_photo(sys.argv[1]).pixels.shape, header_megapixels(sys.argv[1]))
    sizes = set(pool.map(read, range(400)))
print(sizes, warnings.filters == before)
"""


def test_images_over_the_warning_limit_read_quietly_even_in_several_threads_at_once(tmp_path: Path) -> None:
    # Pillow's warnings (this one, damaged metadata) may not stop or clutter a batch, and a GPU batch reads
    # several photos at once: warnings.catch_warnings around each read is not thread-safe, and threads
    # leaving it out of order left "ignore everything" behind for the whole process. (In a subprocess:
    # pytest restores the warning filters that importing recnet_cli set.)
    source = save(tmp_path / "photo.png", Image.new("RGB", (15, 10)))
    command = [sys.executable, "-W", "error", "-c", READ_IN_THREADS, str(source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["{((10,", "15,", "3),", "0.00015)}", "True"]
    assert result.stderr == ""


# --- colours an output cannot describe: converted to sRGB; PNG colour chunks ------------------------

D65 = (0.3127, 0.329)
SRGB_PRIMARIES = [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)]
ADOBE_RGB = [(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)]
DISPLAY_P3 = [(0.68, 0.32), (0.265, 0.69), (0.15, 0.06)]
ADOBE_GAMMA = 563 / 256
ADOBE_PROFILE = icc.matrix_profile(ADOBE_RGB, D65, "Adobe RGB (1998)", ADOBE_GAMMA)
GREY_18 = icc.grey_profile("Gray Gamma 1.8", 1.8)
# Saturated colours (Adobe RGB's and Display P3's greens lie past sRGB's gamut), skin, sky, greys.
TEST_COLOURS = [(0, 255, 0), (0, 160, 0), (255, 0, 0), (0, 0, 255), (40, 200, 60), (220, 150, 120)]
TEST_COLOURS += [(90, 140, 210), (0, 0, 0), (30, 30, 30), (128, 128, 128), (255, 255, 255), (5, 2, 1)]


def colour_codes(repeat: int = 4) -> np.ndarray:
    """The test colours, each a ``repeat`` x ``repeat`` patch (lossy formats keep flat patches), in a row."""
    row = np.repeat(np.asarray(TEST_COLOURS, np.uint8)[None], repeat, axis=1)
    return np.repeat(row, repeat, axis=0)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """sRGB codes (0 to 255, unrounded) of linear light, clipped to [0, 1]."""
    linear = np.clip(linear, 0, 1)
    return 255 * np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def as_srgb(values: np.ndarray, primaries: list[tuple[float, float]], gamma: float | None) -> np.ndarray:
    """sRGB codes (unrounded) of [0, 1] values in the RGB space of ``primaries`` (white D65) and the curve
    X^gamma (None: sRGB's), as colorimetry has it: the colours past sRGB's gamut clipped to its edge."""
    linear = (
        values**gamma
        if gamma
        else np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)
    )
    to_srgb = np.linalg.inv(icc.rgb_to_xyz(SRGB_PRIMARIES, D65)) @ icc.rgb_to_xyz(primaries, D65)
    return srgb_encode(linear @ to_srgb.T)


def written_codes(path: Path) -> np.ndarray:
    with Image.open(path) as written:
        return np.asarray(written).astype(float)


def test_an_adobe_rgb_photo_is_converted_to_srgb_for_bmp_which_holds_no_profile(tmp_path: Path) -> None:
    source = save(tmp_path / "adobe.png", Image.fromarray(colour_codes()), icc_profile=ADOBE_PROFILE)
    photo, output = round_trip(tmp_path, source, "bmp")

    expected = as_srgb(colour_codes() / 255, ADOBE_RGB, ADOBE_GAMMA)
    converted = written_codes(output)
    assert np.abs(converted - expected).max() <= 1.0  # LittleCMS, within a code of the colorimetry
    assert converted[0, 0].tolist() == [
        0,
        255,
        0,
    ]  # Adobe RGB's green, past sRGB's gamut: clipped to its edge
    assert converted[0, 4].tolist() == [0, 161, 0]  # a green sRGB holds: its colorimetric match
    greys = converted[0, 28:44:4]
    assert (greys == greys[:, :1]).all()  # greys stay neutral
    assert imaging.colour_loss_notice(photo, "BMP") == (
        "BMP holds no colour profile: converted from Adobe RGB (1998) to sRGB; PNG or TIFF keeps the profile"
    )
    assert imaging.colour_loss_notice(photo, "PNG") is None  # the profile goes with it
    with Image.open(tmp_path / "adobe.png") as kept:  # the photo itself is untouched
        assert kept.info["icc_profile"] == ADOBE_PROFILE and np.array_equal(np.asarray(kept), colour_codes())


# A camera's JPEG shot in Adobe RGB, as cameras write one: no ICC profile, and EXIF ColorSpace uncalibrated
# with InteropIndex R03 (a DCF option file). A saturated ramp from Pillow, then exiftool -Make=Canon
# -Model="Canon EOS 5D Mark II" -ExifIFD:ColorSpace#=65535 -InteropIndex=R03.
ADOBE_RGB_OPTION_FILE = Path(__file__).parent / "data" / "adobe-rgb-option-file.jpg"


def test_a_camera_s_adobe_rgb_jpeg_without_a_profile_is_adobe_rgb_as_its_exif_says(tmp_path: Path) -> None:
    photo = read_photo(ADOBE_RGB_OPTION_FILE)
    assert photo.icc_profile is None
    codes = as_codes(photo.pixels, 8)
    expected = as_srgb(codes / 255, ADOBE_RGB, ADOBE_GAMMA)
    write_photo(tmp_path / "out.bmp", photo.pixels, photo)
    assert np.abs(written_codes(tmp_path / "out.bmp") - expected).max() <= 1.0  # converted from Adobe RGB
    assert imaging.colour_loss_notice(photo, "BMP") == (
        "BMP holds no colour profile: converted from Compatible with Adobe RGB (1998) (from EXIF) to sRGB; "
        "PNG or TIFF keeps the profile"
    )
    for extension in ("jpg", "png", "tif", "webp"):  # the profile, which viewers read where not the EXIF
        write_photo(tmp_path / f"out.{extension}", photo.pixels, photo)
        with Image.open(tmp_path / f"out.{extension}") as written:
            profile = written.info["icc_profile"]
        assert np.abs(littlecms_srgb_codes(profile, codes) - expected).max() <= 1.0
    # Adobe RGB (1998) as its own profile says it: its colorants, and a gamma of 563/256, not 2.2
    said = (b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC")
    assert [icc.read_tags(profile)[tag] for tag in said] == [
        icc.read_tags(ADOBE_PROFILE)[tag] for tag in said
    ]
    srgb = read_photo(CANON)  # its EXIF says sRGB (R98): nothing is added
    write_photo(tmp_path / "srgb.png", srgb.pixels, srgb)
    with Image.open(tmp_path / "srgb.png") as written:
        assert srgb.icc_profile is None and "icc_profile" not in written.info


def test_only_an_exif_that_says_both_uncalibrated_and_r03_makes_a_photo_adobe_rgb(tmp_path: Path) -> None:
    # Uncalibrated alone is any other space (or none said); R03 with sRGB is a contradiction: sRGB's
    cases = [(0xFFFF, "R98", False), (0xFFFF, None, False), (1, "R03", False), (0xFFFF, "R03", True)]
    for colour_space, index, adobe in cases:
        exif = camera_exif()
        exif_directory = exif.get_ifd(EXIF_IFD)
        exif_directory[0xA001] = colour_space  # ColorSpace
        exif_directory[INTEROP_IFD] = {} if index is None else {1: index}
        photo = read_photo(save(tmp_path / "in.jpg", Image.fromarray(colour_codes()), exif=exif))
        write_photo(tmp_path / "out.png", photo.pixels, photo)
        with Image.open(tmp_path / "out.png") as written:
            profile = written.info.get("icc_profile")
        assert (profile is not None) is adobe, (colour_space, index)


def test_a_16_bit_photo_is_converted_for_bmp_in_floating_point_to_the_nearest_code(tmp_path: Path) -> None:
    between_codes = np.random.default_rng(0).integers(-128, 128, colour_codes().shape)
    deep = np.clip(colour_codes().astype(int) * 257 + between_codes, 0, 65535).astype(np.uint16)
    like = photo_like(deep, icc_profile=ADOBE_PROFILE)
    write_photo(tmp_path / "out.bmp", like.pixels, like)
    expected = as_srgb(deep / 65535, ADOBE_RGB, ADOBE_GAMMA)
    assert np.abs(written_codes(tmp_path / "out.bmp") - expected).max() <= 0.55  # the nearest code, or nearly


def test_a_display_p3_heif_is_converted_to_srgb_for_bmp(tmp_path: Path) -> None:
    photo = photo_like(colour_codes(), source_format="HEIF", nclx=nclx_of(12, 13))
    write_photo(tmp_path / "out.bmp", photo.pixels, photo)
    expected = as_srgb(colour_codes() / 255, DISPLAY_P3, None)
    assert np.abs(written_codes(tmp_path / "out.bmp") - expected).max() <= 1.0
    assert "converted from Display P3 (from HEIF nclx) to sRGB" in str(
        imaging.colour_loss_notice(photo, "BMP")
    )


def littlecms_srgb_codes(profile: bytes, codes: np.ndarray) -> np.ndarray:
    """LittleCMS's sRGB codes for 8-bit RGB ``codes`` in ``profile``, relative colorimetric."""
    opened = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    transform = ImageCms.buildTransform(
        opened, ImageCms.createProfile("sRGB"), "RGB", "RGB", ImageCms.Intent.RELATIVE_COLORIMETRIC
    )
    return np.asarray(ImageCms.applyTransform(Image.fromarray(codes), transform)).astype(float)


@pytest.mark.parametrize(
    "profile",
    [ADOBE_PROFILE, icc.matrix_profile(DISPLAY_P3, D65, "Display P3")],
    ids=["Adobe RGB", "Display P3"],
)
def test_matrix_profiles_are_converted_in_floating_point_as_littlecms_converts_them(profile: bytes) -> None:
    codes = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    conversion = imaging.srgb_conversion(profile)
    assert conversion is not None and conversion.convert is not None
    converted = as_codes(conversion.convert(codes / np.float32(255)), 8).astype(float)
    assert np.abs(converted - littlecms_srgb_codes(profile, codes)).max() <= 1.0


def test_profiles_with_lookup_tables_are_converted_by_littlecms_on_8_bit_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(icc, "matrix_shaper", lambda profile: None)  # as for a profile with lookup tables
    imaging.srgb_conversion.cache_clear()
    try:
        photo = photo_like(colour_codes(), icc_profile=ADOBE_PROFILE)
        write_photo(tmp_path / "out.bmp", photo.pixels, photo)
        assert np.array_equal(
            written_codes(tmp_path / "out.bmp"), littlecms_srgb_codes(ADOBE_PROFILE, colour_codes())
        )
        grey = np.arange(0, 256, dtype=np.uint8).reshape(16, 16)
        grey_photo = photo_like(np.dstack([grey] * 3), grayscale=True, icc_profile=GREY_18)
        write_photo(tmp_path / "grey.bmp", grey_photo.pixels, grey_photo)
        assert np.abs(written_codes(tmp_path / "grey.bmp") - srgb_encode((grey / 255) ** 1.8)).max() <= 0.51
        assert imaging.colour_loss_notice(photo, "BMP") and imaging.colour_loss_notice(grey_photo, "BMP")
    finally:
        imaging.srgb_conversion.cache_clear()


@pytest.mark.parametrize(
    "profile",
    [
        SRGB_PROFILE,  # LittleCMS's own
        icc.matrix_profile(SRGB_PRIMARIES, D65, "sRGB IEC61966-2.1"),  # another maker's, ICC v4
        icc.matrix_profile([(0.6401, 0.3299), (0.2999, 0.6001), (0.1501, 0.0601)], D65, "camera sRGB"),
    ],
    ids=["LittleCMS", "ICC v4", "camera"],
)
def test_srgb_photos_go_into_bmp_unconverted_and_without_a_note(tmp_path: Path, profile: bytes) -> None:
    photo = photo_like(colour_codes(), icc_profile=profile)
    write_photo(tmp_path / "out.bmp", photo.pixels, photo)
    assert np.array_equal(written_codes(tmp_path / "out.bmp"), colour_codes())
    assert imaging.colour_loss_notice(photo, "BMP") is None


def test_srgb_s_primaries_with_another_curve_are_no_srgb(tmp_path: Path) -> None:
    gamma_22 = icc.matrix_profile(SRGB_PRIMARIES, D65, "sRGB primaries, gamma 2.2", 2.2)
    photo = photo_like(colour_codes(), icc_profile=gamma_22)
    write_photo(tmp_path / "out.bmp", photo.pixels, photo)
    converted = written_codes(tmp_path / "out.bmp")
    assert np.abs(converted - as_srgb(colour_codes() / 255, SRGB_PRIMARIES, 2.2)).max() <= 1.0
    assert converted[0, 32].tolist() == [24, 24, 24]  # grey 30: the curves part in the shadows
    assert "converted from sRGB primaries, gamma 2.2 to sRGB" in str(imaging.colour_loss_notice(photo, "BMP"))


@pytest.mark.parametrize("extension", ["bmp", "webp"])
def test_a_grey_photo_is_converted_to_srgb_s_curve_where_its_grey_profile_cannot_go(
    tmp_path: Path, extension: str
) -> None:
    grey = np.repeat(np.repeat(np.arange(0, 256, 15, dtype=np.uint8)[None], 8, axis=1), 8, axis=0)
    source = save(tmp_path / "grey.png", Image.fromarray(grey), icc_profile=GREY_18)
    photo, output = round_trip(tmp_path, source, extension)

    expected = srgb_encode((grey / 255) ** 1.8)
    converted = written_codes(output)
    tolerance = 0.51 if extension == "bmp" else 2.0  # lossless, each code's nearest; WebP is lossy
    if extension == "webp":
        assert np.abs(converted - expected[..., None]).max() <= tolerance
    else:
        assert converted.ndim == 2 and np.abs(converted - expected).max() <= tolerance  # still grey
    lacks = "BMP holds no colour profile" if extension == "bmp" else "WebP holds no grey colour profile"
    assert str(imaging.colour_loss_notice(photo, imaging.format_for(output))).startswith(
        f"{lacks}"
    ) and "converted from Gray Gamma 1.8 to sRGB" in str(
        imaging.colour_loss_notice(photo, imaging.format_for(output))
    )
    _, kept = round_trip(tmp_path, source, "png")  # a grey PNG keeps its grey profile, and its codes
    assert written_codes(kept).tolist() == grey.tolist()


def test_a_grey_photo_with_srgb_s_curve_is_not_converted(tmp_path: Path) -> None:
    grey = np.arange(0, 256, dtype=np.uint8).reshape(16, 16)
    source = save(tmp_path / "grey.png", Image.fromarray(grey), icc_profile=icc.grey_profile("sGrey"))
    photo, output = round_trip(tmp_path, source, "bmp")
    assert np.array_equal(written_codes(output), grey) and imaging.colour_loss_notice(photo, "BMP") is None


DAMAGED_CURVES = "it is damaged: its greys do not go from dark to light"
# A curve of type 1, Y = (aX + b)^g from X = -b/a on, with a = 0: it starts nowhere
NO_SLOPE = b"para" + bytes(4) + struct.pack(">H2x", 1) + icc.s15_fixed16([2.2, 0, 0])


def alike_channels(name: str, colorant: bytes, curve: bytes) -> bytes:
    """A matrix/TRC profile whose red, green and blue have the same colorant (an XYZ tag) and curve."""
    return icc._profile(
        b"RGB ",
        [
            *icc._named(name),
            *((tag, colorant) for tag in (b"rXYZ", b"gXYZ", b"bXYZ")),
            *((tag, curve) for tag in (b"rTRC", b"gTRC", b"bTRC")),
        ],
    )


@pytest.mark.parametrize(
    ("profile", "problem"),
    [
        (bytes(16) + b"RGB " + bytes(108), "(unreadable) cannot be converted to sRGB (cannot open profile"),
        (icc.matrix_profile(ADOBE_RGB, D65, "x")[:200], "(unreadable) cannot be converted"),  # cut short
        (
            icc._profile(b"RGB ", icc._named("No curves")),
            "(No curves) cannot be converted to sRGB (cannot build",
        ),
        (
            icc.matrix_profile(ADOBE_RGB, D65, "Flat", 0.0),
            f"(Flat) cannot be converted to sRGB ({DAMAGED_CURVES})",
        ),
        (
            icc.matrix_profile(ADOBE_RGB, D65, "Falling", -2.0),
            f"(Falling) cannot be converted to sRGB ({DAMAGED_CURVES})",
        ),
        (
            alike_channels("No colorants", icc.xyz_tag([0, 0, 0]), icc.parametric_curve(None)),
            f"(No colorants) cannot be converted to sRGB ({DAMAGED_CURVES})",
        ),
        (
            alike_channels("No slope", icc.xyz_tag(icc.D50 / 3), NO_SLOPE),
            f"(No slope) cannot be converted to sRGB ({DAMAGED_CURVES})",
        ),
    ],
    ids=["header only", "cut short", "no curves", "gamma 0", "gamma -2", "no colorants", "no slope"],
)
@pytest.mark.filterwarnings("error::RuntimeWarning")  # no warning lines of numpy's among recnet's
def test_a_profile_that_cannot_be_converted_is_named_and_the_codes_go_unconverted(
    tmp_path: Path, profile: bytes, problem: str
) -> None:
    photo = photo_like(colour_codes(), icc_profile=profile)
    write_photo(tmp_path / "out.bmp", photo.pixels, photo)
    assert np.array_equal(written_codes(tmp_path / "out.bmp"), colour_codes())
    loss = str(imaging.colour_loss_notice(photo, "BMP"))
    assert loss.startswith("BMP holds no colour profile, and its own ") and problem in loss
    assert loss.endswith("so viewers will take its colours for sRGB; PNG or TIFF keeps the profile")


def test_a_profile_whose_greys_dip_a_little_on_their_way_to_white_is_converted() -> None:
    # a measured curve's table, unsmoothed: code 128 a little darker than 127
    table = np.linspace(0, 65535, 256).round()
    table[128] = table[112]
    curve = b"curv" + bytes(4) + struct.pack(">I", 256) + table.astype(">u2").tobytes()
    conversion = imaging.colour.srgb_conversion(icc._profile(b"GRAY", [*icc._named("Dip"), (b"kTRC", curve)]))
    assert conversion is not None and conversion.convert is not None and conversion.problem is None


def png_chunk_bytes(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_chunks(path: Path, pixels: np.ndarray, *chunks: tuple[bytes, bytes]) -> Path:
    """A PNG of 8- or 16-bit ``pixels`` (by OpenCV) with these (type, data) chunks after its header."""
    encoded = cv2.imencode(".png", pixels[..., ::-1] if pixels.ndim == 3 else pixels)[1].tobytes()
    header_end = len(imaging.formats.PNG_SIGNATURE) + 25  # IHDR: length, type, 13 bytes, CRC
    path.write_bytes(
        encoded[:header_end] + b"".join(png_chunk_bytes(*c) for c in chunks) + encoded[header_end:]
    )
    return path


def test_a_16_bit_png_s_exif_after_its_pixels_is_read(tmp_path: Path) -> None:
    encoded = cv2.imencode(".png", gradient_rgb16()[..., ::-1])[1].tobytes()
    exif = png_chunk_bytes(b"eXIf", camera_exif(6).tobytes().removeprefix(b"Exif\0\0"))
    source = tmp_path / "in.png"
    source.write_bytes(encoded[:-12] + exif + encoded[-12:])  # before IEND
    photo, output = round_trip(tmp_path, source, "png")
    assert np.array_equal(as_codes(photo.pixels, 16), np.rot90(gradient_rgb16(), -1))
    with Image.open(output) as written:
        assert camera_tags(written) == CAMERA_TAGS


def test_a_16_bit_png_is_decoded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenCV decodes it; Pillow's getexif decoded it again (half a second for 12 MP), looking for an eXIf
    # chunk after the pixels, where none was
    source = png_with_chunks(tmp_path / "in.png", gradient_rgb16(), (b"tEXt", b"Title\0beach"))

    def decode_again(image: Image.Image) -> None:
        raise AssertionError(f"Pillow decoded {image.filename} too")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", decode_again)
    photo = read_photo(source)
    assert photo.damaged_metadata == () and photo.text == ((b"tEXt", b"Title\0beach"),)


GAMMA_18 = (b"gAMA", struct.pack(">I", 55556))  # the encoding exponent: 1 / 1.8
SRGB_GAMMA = (b"gAMA", struct.pack(">I", 45455))
ADOBE_CHRM = (b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 21000, 71000, 15000, 6000))
SRGB_CHRM = (b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))


@pytest.mark.parametrize("depth", [8, 16])
def test_a_png_s_gama_and_chrm_go_to_png_as_they_are_and_elsewhere_as_a_profile(
    tmp_path: Path, depth: int
) -> None:
    codes = colour_codes() if depth == 8 else colour_codes().astype(np.uint16) * 257
    photo = read_photo(png_with_chunks(tmp_path / "in.png", codes, GAMMA_18, ADOBE_CHRM))
    assert photo.png_colour == (GAMMA_18, ADOBE_CHRM) and photo.bit_depth == depth

    write_photo(tmp_path / "out.png", photo.pixels, photo)
    written = (tmp_path / "out.png").read_bytes()
    assert png_chunk_bytes(*GAMMA_18) in written and png_chunk_bytes(*ADOBE_CHRM) in written
    assert written.index(b"cHRM") < written.index(b"IDAT")
    for extension in ("jpg", "tif"):
        write_photo(tmp_path / f"out.{extension}", photo.pixels, photo)
        with Image.open(tmp_path / f"out.{extension}") as other:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(other.info["icc_profile"]))
        assert (
            ImageCms.getProfileDescription(profile).strip()
            == "cHRM primaries, gamma 1.80 (from PNG gAMA/cHRM)"
        )
    write_photo(tmp_path / "out.bmp", photo.pixels, photo)
    expected = as_srgb(colour_codes() / 255, ADOBE_RGB, 1.8)
    assert np.abs(written_codes(tmp_path / "out.bmp") - expected).max() <= 1.0
    assert "converted from cHRM primaries, gamma 1.80 (from PNG gAMA/cHRM) to sRGB" in str(
        imaging.colour_loss_notice(photo, "BMP")
    )


@pytest.mark.parametrize(
    "chunks",
    [[(b"sRGB", b"\0")], [(b"sRGB", b"\0"), SRGB_GAMMA, SRGB_CHRM], [SRGB_GAMMA], [SRGB_GAMMA, SRGB_CHRM]],
)
def test_a_png_that_says_srgb_is_written_as_srgb(tmp_path: Path, chunks: list[tuple[bytes, bytes]]) -> None:
    photo = read_photo(png_with_chunks(tmp_path / "in.png", colour_codes(), *chunks))
    assert photo.png_colour == tuple(chunks)
    for extension in ("png", "jpg", "bmp"):
        write_photo(tmp_path / f"out.{extension}", photo.pixels, photo)
        assert imaging.colour_loss_notice(photo, imaging.format_for(f"out.{extension}")) is None
    assert np.array_equal(written_codes(tmp_path / "out.bmp"), colour_codes())
    with Image.open(tmp_path / "out.jpg") as jpeg:
        assert "icc_profile" not in jpeg.info
    assert all(png_chunk_bytes(*chunk) in (tmp_path / "out.png").read_bytes() for chunk in chunks)


def test_a_grey_png_s_gama_becomes_a_grey_profile(tmp_path: Path) -> None:
    grey = np.arange(0, 256, dtype=np.uint8).reshape(16, 16)
    photo = read_photo(png_with_chunks(tmp_path / "in.png", grey, GAMMA_18))
    write_photo(tmp_path / "out.tif", photo.pixels, photo)
    with Image.open(tmp_path / "out.tif") as written:
        assert written.mode == "L" and written.info["icc_profile"][16:20] == b"GRAY"
        profile = ImageCms.ImageCmsProfile(io.BytesIO(written.info["icc_profile"]))
    assert ImageCms.getProfileDescription(profile).strip() == "Grey, gamma 1.80 (from PNG gAMA)"


def test_a_png_s_cicp_goes_to_png_as_it_is_and_elsewhere_as_a_profile_or_a_note(tmp_path: Path) -> None:
    display_p3 = (b"cICP", bytes([12, 13, 0, 1]))
    photo = read_photo(png_with_chunks(tmp_path / "p3.png", colour_codes(), display_p3))
    write_photo(tmp_path / "p3.png.png", photo.pixels, photo)
    assert png_chunk_bytes(*display_p3) in (tmp_path / "p3.png.png").read_bytes()
    write_photo(tmp_path / "p3.jpg", photo.pixels, photo)
    with Image.open(tmp_path / "p3.jpg") as jpeg:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(jpeg.info["icc_profile"]))
    assert ImageCms.getProfileDescription(profile).strip() == "Display P3 (from PNG cICP)"
    assert imaging.colour_loss_notice(photo, "JPEG") is None and imaging.hdr_curve(photo) is None
    write_photo(tmp_path / "p3.bmp", photo.pixels, photo)
    expected = as_srgb(colour_codes() / 255, DISPLAY_P3, None)
    assert np.abs(written_codes(tmp_path / "p3.bmp") - expected).max() <= 1.0

    pq = (b"cICP", bytes([9, 16, 0, 1]))  # BT.2100 PQ: HDR, which no matrix profile says
    photo = read_photo(png_with_chunks(tmp_path / "pq.png", colour_codes(), pq))
    assert imaging.hdr_curve(photo) == "PQ"
    write_photo(tmp_path / "pq.png.png", photo.pixels, photo)
    assert png_chunk_bytes(*pq) in (tmp_path / "pq.png.png").read_bytes()
    assert imaging.colour_loss_notice(photo, "PNG") is None
    assert imaging.colour_loss_notice(photo, "TIFF") == (
        "its colour description (PNG cICP: BT.2020 primaries, PQ (HDR) transfer curve) cannot go into TIFF, "
        "so viewers will take its colours for sRGB; --ext png keeps it"
    )


def test_a_png_s_cicp_says_what_its_colours_are_over_its_iccp(tmp_path: Path) -> None:
    """The PNG specification (3rd edition) gives a cICP chunk precedence over iCCP: other formats get what
    cICP says, and a PNG output both chunks as they are."""
    iccp = (b"iCCP", b"Adobe RGB\0\0" + zlib.compress(ADOBE_PROFILE))
    display_p3 = (b"cICP", bytes([12, 13, 0, 1]))
    photo = read_photo(png_with_chunks(tmp_path / "p3.png", colour_codes(), iccp, display_p3))
    assert photo.icc_profile == ADOBE_PROFILE
    write_photo(tmp_path / "p3.png.png", photo.pixels, photo)
    with Image.open(tmp_path / "p3.png.png") as png:
        assert png.info["icc_profile"] == ADOBE_PROFILE
    assert png_chunk_bytes(*display_p3) in (tmp_path / "p3.png.png").read_bytes()
    write_photo(tmp_path / "p3.jpg", photo.pixels, photo)
    with Image.open(tmp_path / "p3.jpg") as jpeg:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(jpeg.info["icc_profile"]))
    assert ImageCms.getProfileDescription(profile).strip() == "Display P3 (from PNG cICP)"
    write_photo(tmp_path / "p3.bmp", photo.pixels, photo)
    expected = as_srgb(colour_codes() / 255, DISPLAY_P3, None)
    assert np.abs(written_codes(tmp_path / "p3.bmp") - expected).max() <= 1.0
    assert "converted from Display P3 (from PNG cICP) to sRGB" in str(
        imaging.colour_loss_notice(photo, "BMP")
    )

    # HDR, which no ICC profile in the output says: the iCCP, the file's fallback for readers without
    # cICP, goes to the other formats instead (without it, the note that viewers will take them for sRGB)
    pq = (b"cICP", bytes([9, 16, 0, 1]))
    photo = read_photo(png_with_chunks(tmp_path / "pq.png", colour_codes(), iccp, pq))
    assert imaging.hdr_curve(photo) == "PQ" and imaging.colour_loss_notice(photo, "PNG") is None
    write_photo(tmp_path / "pq.tif", photo.pixels, photo)
    with Image.open(tmp_path / "pq.tif") as tiff:
        assert tiff.info["icc_profile"] == ADOBE_PROFILE
    assert imaging.colour_loss_notice(photo, "TIFF") is None
    photo = read_photo(png_with_chunks(tmp_path / "pq-alone.png", colour_codes(), pq))
    write_photo(tmp_path / "pq-alone.tif", photo.pixels, photo)
    with Image.open(tmp_path / "pq-alone.tif") as tiff:
        assert "icc_profile" not in tiff.info
    assert "(PNG cICP: BT.2020 primaries, PQ (HDR) transfer curve) cannot go into TIFF" in str(
        imaging.colour_loss_notice(photo, "TIFF")
    )


def test_damaged_png_colour_chunks_are_left_out(tmp_path: Path) -> None:
    cut = (b"cICP", b"\x0c\x0d\x00")  # 3 bytes: no cICP
    no_gamma = (b"gAMA", bytes(4))
    in_a_line = (b"cHRM", struct.pack(">8I", 31270, 32900, 10000, 10000, 20000, 20000, 30000, 30000))
    photo = read_photo(png_with_chunks(tmp_path / "in.png", colour_codes(), cut, no_gamma, in_a_line))
    assert photo.png_colour == (no_gamma, in_a_line)
    write_photo(tmp_path / "out.jpg", photo.pixels, photo)  # neither says a colour space: sRGB's
    with Image.open(tmp_path / "out.jpg") as jpeg:
        assert "icc_profile" not in jpeg.info
    assert imaging.colour_loss_notice(photo, "BMP") is None


def gamma_chunk(encoding: int) -> tuple[bytes, bytes]:
    return b"gAMA", struct.pack(">I", encoding)


@pytest.mark.parametrize(
    ("chunk", "profile_name"),
    [
        (gamma_chunk(16), "sRGB primaries, gamma 6250.00 (from PNG gAMA/cHRM)"),  # libpng's range: 16..
        (gamma_chunk(15), None),
        (gamma_chunk(1), None),
        (gamma_chunk(625_000_000), "sRGB primaries, gamma 0.00 (from PNG gAMA/cHRM)"),  # ..625,000,000
        (gamma_chunk(625_000_001), None),
        ((b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 64001, 33001, 64002, 33002)), None),
        ((b"cHRM", struct.pack(">8I", 31270, 32900, 100001, 33000, 21000, 71000, 15000, 6000)), None),
        (
            (b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 0, 100000, 15000, 6000)),
            "cHRM primaries, sRGB curve (from PNG gAMA/cHRM)",  # 1 is in libpng's range, as 0 is
        ),
    ],
    ids=[
        "gamma 6250",
        "gamma past 6250",
        "gamma 100000",
        "gamma 1/6250",
        "gamma under 1/6250",
        "cHRM all but in a line",
        "cHRM x past 1",
        "cHRM y of 1",
    ],
)
def test_png_colour_chunks_past_what_a_profile_holds_are_damaged_and_left_out(
    tmp_path: Path, chunk: tuple[bytes, bytes], profile_name: str | None
) -> None:
    photo = read_photo(png_with_chunks(tmp_path / "in.png", colour_codes(), chunk))
    assert photo.png_colour == (chunk,)
    write_photo(tmp_path / "out.jpg", photo.pixels, photo)
    with Image.open(tmp_path / "out.jpg") as jpeg:
        profile = jpeg.info.get("icc_profile")
    if profile_name is None:
        assert profile is None
    else:
        described = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
        assert described.strip() == profile_name


def test_a_png_s_colour_chunk_after_its_pixels_is_left_out_as_readers_ignore_it(tmp_path: Path) -> None:
    encoded = png_with_chunks(tmp_path / "plain.png", colour_codes()).read_bytes()
    iend = len(encoded) - 12
    (tmp_path / "in.png").write_bytes(encoded[:iend] + png_chunk_bytes(*GAMMA_18) + encoded[iend:])
    assert read_photo(tmp_path / "in.png").png_colour == ()


def test_a_png_s_srgb_chunk_says_srgb_over_its_gama(tmp_path: Path) -> None:
    # The PNG specification puts sRGB before gAMA and cHRM: a reader that knows sRGB ignores the others
    photo = read_photo(png_with_chunks(tmp_path / "in.png", colour_codes(), (b"sRGB", b"\0"), GAMMA_18))
    for extension in ("jpg", "tif"):
        write_photo(tmp_path / f"out.{extension}", photo.pixels, photo)
        with Image.open(tmp_path / f"out.{extension}") as written:
            assert "icc_profile" not in written.info
    write_photo(tmp_path / "out.bmp", photo.pixels, photo)
    assert np.array_equal(written_codes(tmp_path / "out.bmp"), colour_codes())
    assert imaging.colour_loss_notice(photo, "BMP") is None


def test_a_png_s_chrm_that_differs_from_srgb_s_in_one_primary_alone_is_no_srgb(tmp_path: Path) -> None:
    # Adobe RGB's red, blue and white are sRGB's: only its green is wider
    photo = read_photo(png_with_chunks(tmp_path / "in.png", colour_codes(), SRGB_GAMMA, ADOBE_CHRM))
    write_photo(tmp_path / "out.jpg", photo.pixels, photo)
    with Image.open(tmp_path / "out.jpg") as jpeg:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(jpeg.info["icc_profile"]))
    assert (
        ImageCms.getProfileDescription(profile).strip() == "cHRM primaries, gamma 2.20 (from PNG gAMA/cHRM)"
    )
    write_photo(tmp_path / "out.bmp", photo.pixels, photo)
    expected = as_srgb(colour_codes() / 255, ADOBE_RGB, 1 / 0.45455)
    assert np.abs(written_codes(tmp_path / "out.bmp") - expected).max() <= 1.0


def test_a_grey_png_s_chrm_says_nothing_of_its_greys(tmp_path: Path) -> None:
    # Primaries are no part of a grey: with sRGB's gamma, a grey PNG's colours are sRGB's whatever its cHRM
    grey = np.arange(0, 256, dtype=np.uint8).reshape(16, 16)
    photo = read_photo(png_with_chunks(tmp_path / "in.png", grey, SRGB_GAMMA, ADOBE_CHRM))
    assert photo.grayscale
    write_photo(tmp_path / "out.tif", photo.pixels, photo)
    with Image.open(tmp_path / "out.tif") as written:
        assert written.mode == "L" and "icc_profile" not in written.info
    write_photo(tmp_path / "out.bmp", photo.pixels, photo)
    assert np.array_equal(written_codes(tmp_path / "out.bmp"), grey)


def test_a_png_output_carries_the_colour_chunks_as_they_came_without_a_profile_added(tmp_path: Path) -> None:
    for name, chunks in (("gama", [GAMMA_18, ADOBE_CHRM]), ("cicp", [(b"cICP", bytes([12, 13, 0, 1]))])):
        photo = read_photo(png_with_chunks(tmp_path / f"{name}.png", colour_codes(), *chunks))
        write_photo(tmp_path / f"{name}-out.png", photo.pixels, photo)
        written = (tmp_path / f"{name}-out.png").read_bytes()
        assert all(png_chunk_bytes(*chunk) in written for chunk in chunks)
        assert b"iCCP" not in written  # an iCCP would outrank the gAMA and cHRM in readers that know both


def test_a_png_s_cicp_primaries_without_known_chromaticities_are_named_and_left_out(tmp_path: Path) -> None:
    cie_xyz = (b"cICP", bytes([10, 13, 0, 1]))  # CIE XYZ as primaries, the sRGB curve
    photo = read_photo(png_with_chunks(tmp_path / "in.png", colour_codes(), cie_xyz))
    write_photo(tmp_path / "out.jpg", photo.pixels, photo)
    with Image.open(tmp_path / "out.jpg") as jpeg:
        assert "icc_profile" not in jpeg.info
    assert imaging.colour_loss_notice(photo, "JPEG") == (
        "its colour description (PNG cICP: CIE XYZ primaries) cannot go into JPEG, so viewers will take its "
        "colours for sRGB; --ext png keeps it"
    )


# H.273's colour primaries (red, green, blue; white), as the standards that define them give them.
H273_PRIMARIES = {
    4: ("BT.470M", [(0.67, 0.33), (0.21, 0.71), (0.14, 0.08)], (0.310, 0.316)),  # illuminant C
    5: ("BT.601 PAL", [(0.64, 0.33), (0.29, 0.60), (0.15, 0.06)], D65),
    6: ("BT.601", [(0.63, 0.34), (0.31, 0.595), (0.155, 0.07)], D65),
    7: ("SMPTE 240M", [(0.63, 0.34), (0.31, 0.595), (0.155, 0.07)], D65),
    9: ("BT.2020", [(0.708, 0.292), (0.17, 0.797), (0.131, 0.046)], D65),
    11: ("DCI-P3", [(0.68, 0.32), (0.265, 0.69), (0.15, 0.06)], (0.314, 0.351)),  # DCI's greenish white
    12: ("Display P3", DISPLAY_P3, D65),
    22: ("EBU 3213", [(0.63, 0.34), (0.295, 0.605), (0.155, 0.077)], D65),
}


@pytest.mark.parametrize("code", sorted(H273_PRIMARIES))
def test_a_png_s_cicp_primaries_become_a_profile_of_their_standard_chromaticities(code: int) -> None:
    name, primaries, white = H273_PRIMARIES[code]
    photo = photo_like(colour_codes(), png_colour=((b"cICP", bytes([code, 13, 0, 1])),))
    profile, _ = imaging.colour.output_colour(photo, "TIFF")
    assert profile == icc.matrix_profile(primaries, white, f"{name} (from PNG cICP)")


def test_a_grey_photo_gets_no_rgb_profile_from_its_colour_description(tmp_path: Path) -> None:
    # A grey HEIF's nclx names RGB primaries, which an RGB profile would say: no profile for grey pixels
    grey = np.repeat(np.arange(0, 256, 16, dtype=np.uint8)[None], 4, axis=0)
    photo = photo_like(np.dstack([grey] * 3), grayscale=True, source_format="HEIF", nclx=nclx_of(12, 13))
    write_photo(tmp_path / "out.jpg", photo.pixels, photo)
    with Image.open(tmp_path / "out.jpg") as jpeg:
        assert jpeg.mode == "L" and "icc_profile" not in jpeg.info
    write_photo(tmp_path / "out.bmp", photo.pixels, photo)
    assert np.array_equal(written_codes(tmp_path / "out.bmp"), grey)
    assert imaging.colour_loss_notice(photo, "BMP") is None


def test_a_profile_within_two_codes_of_srgb_counts_as_srgb_and_one_past_it_does_not(tmp_path: Path) -> None:
    # A red x 0.001 off sRGB's moves no colour by more than 2 codes; 0.002 off, by 3
    for shift, converted in ((0.001, False), (0.002, True)):
        primaries = [(0.64 + shift, 0.33), *SRGB_PRIMARIES[1:]]
        photo = photo_like(colour_codes(), icc_profile=icc.matrix_profile(primaries, D65, f"red {shift}"))
        notice = imaging.colour_loss_notice(photo, "BMP")
        assert notice is None if not converted else f"converted from red {shift} to sRGB" in notice
        write_photo(tmp_path / "out.bmp", photo.pixels, photo)
        if not converted:
            assert np.array_equal(written_codes(tmp_path / "out.bmp"), colour_codes())


def test_the_shadows_of_a_photo_converted_for_bmp_follow_srgb_s_linear_segment(tmp_path: Path) -> None:
    # sRGB's curve is a straight line below code 10: deep shadows go to their nearest codes on it
    shadows = np.linspace(0, 6000, 16 * 16 * 3).astype(np.uint16).reshape(16, 16, 3)
    like = photo_like(shadows, icc_profile=ADOBE_PROFILE)
    write_photo(tmp_path / "out.bmp", like.pixels, like)
    expected = as_srgb(shadows / 65535, ADOBE_RGB, ADOBE_GAMMA)
    assert expected.max() > 10  # past the segment's end too
    assert np.abs(written_codes(tmp_path / "out.bmp") - expected).max() <= 0.55


def test_a_png_s_large_metadata_is_read_and_one_too_large_is_named_as_such(tmp_path: Path) -> None:
    # Pillow unpacks a text chunk to 1 MB at most: a 5 MB XMP or comment was "truncated or corrupt image data"
    pixels = np.full((8, 8, 3), 128, np.uint8)
    comment = (b"zTXt", b"Comment\x00\x00" + zlib.compress(b" " * 5_000_000, 9))
    assert read_photo(png_with_chunks(tmp_path / "notes.png", pixels, comment)).pixels.shape == (8, 8, 3)
    bomb = (b"zTXt", b"Comment\x00\x00" + zlib.compress(b" " * 50_000_000, 9))  # 49 KB in the file
    assert_read_error(
        png_with_chunks(tmp_path / "bomb.png", pixels, bomb),
        "its metadata is too large to read (a PNG text or ICC chunk of more than 16 MB unpacked)",
    )
    many = (b"zTXt", b"Comment\x00\x00" + zlib.compress(b" " * 15_000_000, 9))  # each within the limit
    assert_read_error(
        png_with_chunks(tmp_path / "many.png", pixels, *[many] * 5),
        "its metadata is too large to read (PNG text chunks of more than 64 MB in all unpacked)",
    )


# --- atomic writes ----------------------------------------------------------------------------------


def failing_jpeg_encoder(error: Exception):
    def encode(image, file, filename):
        file.write(b"\xff\xd8 half a photo")
        raise error

    return encode


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def test_failed_write_keeps_the_target_and_leaves_no_temporary(tmp_path, monkeypatch):
    photo = read_photo(save(tmp_path / "in.png", Image.fromarray(gradient_rgb8())))
    target = tmp_path / "out.jpg"
    target.write_bytes(b"previous result")
    monkeypatch.setitem(Image.SAVE, "JPEG", failing_jpeg_encoder(RuntimeError("encoder crashed")))

    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_photo(target, photo.pixels, photo)

    assert target.read_bytes() == b"previous result"
    assert leftovers(tmp_path) == []


def test_failed_write_without_target_creates_nothing(tmp_path, monkeypatch):
    photo = read_photo(save(tmp_path / "in.png", Image.fromarray(gradient_rgb8())))
    monkeypatch.setitem(Image.SAVE, "JPEG", failing_jpeg_encoder(OSError(28, "No space left on device")))

    with pytest.raises(ImageWriteError) as caught:
        write_photo(tmp_path / "out.jpg", photo.pixels, photo)

    assert str(caught.value) == f"{tmp_path / 'out.jpg'}: no space left on device"
    assert not (tmp_path / "out.jpg").exists() and leftovers(tmp_path) == []


def test_failed_16_bit_write_keeps_the_target(tmp_path, monkeypatch):
    photo = read_photo(write_cv2(tmp_path / "in.png", gradient_rgb16()))
    target = tmp_path / "out.tif"
    target.write_bytes(b"previous result")

    def crash(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(imaging.write.zlib, "compress", crash)
    with pytest.raises(ImageWriteError, match="not enough memory to encode"):
        write_photo(target, photo.pixels, photo)
    assert target.read_bytes() == b"previous result" and leftovers(tmp_path) == []


def test_atomic_output_reports_an_unwritable_folder(tmp_path, monkeypatch):
    target = tmp_path / "missing-folder" / "out.png"
    with pytest.raises(ImageWriteError, match=r"out\.png: no such file or folder"):
        write_rgb8(target, gradient_rgb8())

    def read_only(path: Path, missing_ok: bool = False) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    # On a read-only file system, removing the temporary that was never made fails too (EROFS, not
    # ENOENT): the error is still the target's, not the temporary's.
    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(ImageWriteError) as raised:
        write_rgb8(target, gradient_rgb8())
    assert str(raised.value) == f"{target}: no such file or folder"


def test_successful_write_replaces_the_target(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    write_rgb8(target, gradient_rgb8())
    with Image.open(target) as written:
        assert np.array_equal(np.asarray(written), gradient_rgb8())
    assert leftovers(tmp_path) == []


def test_without_overwrite_a_file_that_appears_while_writing_is_kept(tmp_path):
    target, free = tmp_path / "out.png", tmp_path / "free.png"
    with pytest.raises(OutputExistsError) as raised, atomic_output(target, overwrite=False) as file:
        file.write(b"recnet's")
        target.write_bytes(b"MY EDIT")  # the user's, saved while recnet was writing
    assert str(raised.value) == f"{target}: exists (use --overwrite)" and raised.value.path == target
    assert target.read_bytes() == b"MY EDIT" and leftovers(tmp_path) == []
    write_rgb8(free, gradient_rgb8(), overwrite=False)
    with Image.open(free) as written:
        assert np.array_equal(np.asarray(written), gradient_rgb8())
    write_rgb8(target, gradient_rgb8())  # overwrite, the default, replaces
    assert target.read_bytes().startswith(b"\x89PNG") and leftovers(tmp_path) == []


# --- plain writers ----------------------------------------------------------------------------------


def test_write_png16(tmp_path):
    mask = (np.arange(24 * 32) * 85).astype(np.uint16).reshape(24, 32)
    write_png16(tmp_path / "mask.png", mask)
    written = cv2.imread(str(tmp_path / "mask.png"), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16 and np.array_equal(written, mask)
    with Image.open(tmp_path / "mask.png") as image:
        assert image.mode == "I;16" and np.array_equal(np.asarray(image), mask)


def test_write_png16_refuses_other_extensions(tmp_path):
    with pytest.raises(ImageWriteError, match=r"mask\.jpg: .*use a \.png name"):
        write_png16(tmp_path / "mask.jpg", np.zeros((2, 2), np.uint16))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extension", ["png", "jpg"])
def test_write_rgb8(tmp_path, extension):
    write_rgb8(tmp_path / f"figure.{extension}", gradient_rgb8())
    with Image.open(tmp_path / f"figure.{extension}") as written:
        assert written.mode == "RGB" and written.size == (32, 24)
        assert np.abs(np.asarray(written).astype(int) - gradient_rgb8()).mean() < 2


# --- what each format can hold ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extension", "largest", "reason"),
    [
        ("jpg", (65_500, 1), "too large for JPEG: 65501 x 1 pixels, and JPEG holds at most 65,500 per side"),
        ("webp", (1, 16_383), "too large for WebP: 1 x 16384 pixels, and WebP holds at most 16,383 per side"),
    ],
)
def test_a_picture_wider_than_its_format_holds_is_refused_and_the_target_kept(
    tmp_path: Path, extension: str, largest: tuple[int, int], reason: str
) -> None:
    target = tmp_path / f"out.{extension}"
    width, height = largest
    write_rgb8(target, np.zeros((height, width, 3), np.uint8))
    with Image.open(target) as written:
        assert written.size == largest
    target.write_bytes(b"an earlier output")
    one_more = (height + 1, width, 3) if height > width else (height, width + 1, 3)
    with pytest.raises(ImageWriteError) as caught:
        write_rgb8(target, np.zeros(one_more, np.uint8))
    assert str(caught.value) == f"{target}: {reason}; write PNG or TIFF instead"
    assert target.read_bytes() == b"an earlier output" and leftovers(tmp_path) == []


def test_what_avif_and_bmp_files_hold() -> None:
    # AVIF: what libavif decodes by default (32768 per side, 16384 x 16384 pixels); BMP: 32-bit file sizes.
    assert size_problem("AVIF", 32_768, 8) is None and size_problem("AVIF", 16_384, 16_384) is None
    assert size_problem("AVIF", 32_769, 8) == (
        "too large for AVIF: 32769 x 8 pixels, and AVIF holds at most 32,768 per side; write PNG or TIFF "
        "instead"
    )
    assert size_problem("AVIF", 16_384, 16_385).startswith(
        "too large for AVIF: 16384 x 16385 pixels, and AVIF"
    )
    assert size_problem("BMP", 65_536, 21_845) is None  # 4,294,901,760 bytes of rows
    assert size_problem("BMP", 65_536, 21_846) == (
        "too large for BMP: 65536 x 21846 pixels, more than a BMP file's 4 GiB; write PNG or TIFF instead"
    )
    assert all(size_problem(fmt, 200_000, 200_000) is None for fmt in ("PNG", "TIFF", "HEIF"))
    # rows of 5 pixels take 15 bytes, padded to 16: 4 GiB at 2^28 rows
    assert size_problem("BMP", 5, 268_435_388) is None
    assert size_problem("BMP", 5, 268_435_389) == (
        "too large for BMP: 5 x 268435389 pixels, more than a BMP file's 4 GiB; write PNG or TIFF instead"
    )


def test_the_check_before_a_run_counts_a_grey_photo_s_one_channel(tmp_path: Path) -> None:
    # 65000 x 65536 pixels: a 4.26 GB grey BMP fits in a BMP file's 4 GiB, an RGB one three times over not.
    pixels = np.broadcast_to(np.float32(0), (65_000, 65_536, 3))  # no memory behind it
    grey, colour = (Photo(pixels, None, 8, grayscale, None, None, None, "PNG") for grayscale in (True, False))
    imaging.check_output_size(tmp_path / "grey.bmp", grey)
    with pytest.raises(ImageWriteError, match="more than a BMP file's 4 GiB"):
        imaging.check_output_size(tmp_path / "colour.bmp", colour)


def png_chunk_sizes(path: Path, kind: bytes) -> list[int]:
    data, sizes, position = path.read_bytes(), [], 8
    while position < len(data):
        length = struct.unpack(">I", data[position : position + 4])[0]
        if data[position + 4 : position + 8] == kind:
            sizes.append(length)
        position += 12 + length
    return sizes


def test_png_pixels_are_compressed_in_bands_each_in_chunks_of_its_own(tmp_path, monkeypatch) -> None:
    # Bands keep a large picture from being copied whole, and each chunk under PNG's 2 GiB limit.
    monkeypatch.setattr(imaging.write, "_PNG_BAND_BYTES", 100 * 6 * 5)  # five rows of 16-bit RGB
    noise = np.random.default_rng(0).integers(0, 65536, (200, 100, 3), dtype=np.uint16)  # 120,000 bytes
    photo = read_photo(write_cv2(tmp_path / "in.png", noise))
    write_photo(tmp_path / "out.png", photo.pixels, photo)
    chunks = png_chunk_sizes(tmp_path / "out.png", b"IDAT")
    assert len(chunks) > 3 and max(chunks) < 60_000, chunks
    written = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(written[..., ::-1], noise)


def test_a_tiff_that_would_pass_4_gib_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(imaging.write, "MAX_FILE_BYTES", 4096 + 8 + 3000)  # the tags' room, and 3000 bytes
    noise = np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8)  # 7500 bytes compressed
    target = tmp_path / "out.tif"
    with pytest.raises(ImageWriteError) as caught:
        write_rgb8(target, noise)
    assert caught.value.reason.startswith("too large for TIFF: 50 x 50 pixels compress to 0.0 GiB, more")
    assert caught.value.reason.endswith("than a TIFF file's 4 GiB; write PNG instead")
    assert not target.exists() and leftovers(tmp_path) == []
    write_rgb8(target, noise[:10])  # 1500 bytes: fits
    with Image.open(target) as written:
        assert np.array_equal(np.asarray(written), noise[:10])


# --- damaged files and metadata -----------------------------------------------------------------------

DAMAGED = Path(__file__).parent / "data" / "damaged"  # fuzzed from a BSD100 photo; each crashed a decoder


@pytest.mark.parametrize(
    ("name", "supported"),
    [
        ("truncated.heic", imaging.HEIF_SUPPORTED),  # pillow-heif: ValueError
        ("no-image-item.avif", imaging.AVIF_SUPPORTED),  # libavif: RuntimeError
        ("bad-planes.avif", imaging.AVIF_SUPPORTED),
        ("no-dimensions.tif", True),  # Pillow: TypeError
    ],
)
def test_files_that_crash_a_decoder_are_damaged_files(name: str, supported: bool) -> None:
    if not supported:
        pytest.skip("no decoder for this format here")
    assert_read_error(DAMAGED / name, "truncated or corrupt image data")


def test_damaged_metadata_is_left_out_and_said(tmp_path: Path) -> None:
    pixels = gradient_rgb8()
    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, format="PNG")
    data = encoded.getvalue()
    first_pixels = data.index(b"IDAT") - 4
    bad_exif = struct.pack(">I", 7) + b"eXIf" + bytes(7) + struct.pack(">I", zlib.crc32(b"eXIf" + bytes(7)))
    source = tmp_path / "photo.png"
    source.write_bytes(data[:first_pixels] + bad_exif + data[first_pixels:])
    photo = read_photo(source)
    assert np.array_equal(np.round(photo.pixels * 255).astype(np.uint8), pixels)
    assert photo.exif is None and photo.damaged_metadata == ("EXIF",)
    assert photo.damaged_metadata_notice == "its EXIF is damaged: the output goes without it"
    assert photo.reading_notices() == [photo.damaged_metadata_notice]
    assert photo.reading_notices(metadata=False) == []  # for a reader that copies no metadata (training)
    assert read_photo(save(tmp_path / "clean.png", Image.fromarray(pixels))).damaged_metadata_notice is None
    both = dataclasses.replace(photo, damaged_metadata=("EXIF", "extended XMP"))
    assert (
        both.damaged_metadata_notice == "its EXIF and extended XMP are damaged: the output goes without them"
    )


def test_a_resolution_with_a_zero_denominator_is_no_resolution(tmp_path: Path) -> None:
    nothing_per_inch = {282: TiffImagePlugin.IFDRational(72, 0), 283: TiffImagePlugin.IFDRational(72, 0)}
    image = Image.fromarray(gradient_rgb8())
    scan = save(tmp_path / "scan.tif", image, resolution_unit=2, tiffinfo=nothing_per_inch)
    if PILLOW_VERSION < (12, 3):  # which divides by zero opening it: the photo is refused in one line
        with pytest.raises(ImageReadError, match=r"scan\.tif: truncated or corrupt image data$"):
            read_photo(scan)
        return
    assert read_photo(scan).dpi is None


def retyped(tiff: Path, tag: int, kind: int, count: int | None = None, value: bytes | None = None) -> Path:
    """A little-endian TIFF whose first directory's entry of ``tag`` says another type (and count, and value
    where given), as a damaged file's may."""
    data = bytearray(tiff.read_bytes())
    (start,) = struct.unpack_from("<I", data, 4)
    (entries,) = struct.unpack_from("<H", data, start)
    (at,) = (
        at
        for at in range(start + 2, start + 2 + 12 * entries, 12)
        if data[at : at + 2] == struct.pack("<H", tag)
    )
    struct.pack_into("<H", data, at + 2, kind)
    if count is not None:
        struct.pack_into("<I", data, at + 4, count)
    if value is not None:
        data[at + 8 : at + 12] = value
    tiff.write_bytes(data)
    return tiff


def test_a_resolution_of_text_is_no_resolution(tmp_path: Path) -> None:
    # A damaged TIFF's YResolution of text failed the photo as "truncated or corrupt image data"; and a JPEG's
    # EXIF resolution of text went into a TIFF output as its own, which recnet then refused to read
    image = Image.fromarray(gradient_rgb8())
    scan = retyped(save(tmp_path / "scan.tif", image, dpi=(300, 300)), 283, 2, 4, b"abc\0")  # ASCII "abc"
    assert read_photo(scan).dpi is None
    entries = [(282, 2, 4, b"300\0"), (283, 2, 4, b"abc\0"), (296, 2, 2, b"2\0\0\0")]  # all ASCII
    directory = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI4s", *e) for e in entries)
    exif = b"Exif\0\0II*\0" + struct.pack("<I", 8) + directory + bytes(4)
    photo, output = round_trip(tmp_path, save(tmp_path / "in.jpg", image, exif=exif), "tif")
    assert photo.dpi is None
    with Image.open(output) as written:  # the resolution TIFF requires, with no unit: not the EXIF's text
        assert (written.tag_v2[282], written.tag_v2[283], written.tag_v2[296]) == (1, 1, 1)
    assert read_photo(output).dpi is None


def exif_of(order: bytes, entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """A JPEG's EXIF segment of one directory in byte order ``order`` (b"II", b"MM") holding ``entries``: tag,
    type, count and the value's bytes (past 4 bytes, after the directory)."""
    sign = "<" if order == b"II" else ">"
    at = 8 + 2 + 12 * len(entries) + 4  # where values too long for their entry go
    directory, values = struct.pack(sign + "H", len(entries)), b""
    for tag, kind, count, value in entries:
        inline = value.ljust(4, b"\0") if len(value) <= 4 else struct.pack(sign + "I", at + len(values))
        directory += struct.pack(sign + "HHI", tag, kind, count) + inline
        values += value if len(value) > 4 else b""
    return b"Exif\0\0" + order + struct.pack(sign + "HI", 42, 8) + directory + bytes(4) + values


@pytest.mark.parametrize("order", [b"II", b"MM"])
@pytest.mark.parametrize(
    ("damage", "written"),
    [
        (None, (300, 300, 1)),  # whole, of no unit: the TIFF takes it as its own
        ("two XResolutions", (1, 1, 1)),
        ("a ResolutionUnit of LONG", (1, 1, 1)),
        ("a YResolution of SHORT", (1, 1, 1)),
    ],
)
def test_a_tiff_takes_an_exif_resolution_as_its_own_only_where_each_tag_is_one_value_of_tiffs_type(
    tmp_path: Path, order: bytes, damage: str | None, written: tuple[int, int, int]
) -> None:
    """A photo without a resolution in inches whose EXIF's resolution tags are of another type or count
    would make a TIFF that readers refuse or misread: it gets TIFF's own 1, 1, no unit instead. A
    big-endian EXIF's are read in its order."""
    sign = "<" if order == b"II" else ">"
    rational = struct.pack(sign + "II", 300, 1)
    entries = {
        282: (282, 5, 1, rational),
        283: (283, 5, 1, rational),
        296: (296, 3, 1, struct.pack(sign + "H", 1)),  # no absolute unit: no dpi for the photo
    }
    if damage == "two XResolutions":
        entries[282] = (282, 5, 2, rational * 2)
    elif damage == "a ResolutionUnit of LONG":
        entries[296] = (296, 4, 1, struct.pack(sign + "I", 1))
    elif damage == "a YResolution of SHORT":
        entries[283] = (283, 3, 1, struct.pack(sign + "H", 300))
    exif = exif_of(order, list(entries.values()))
    photo, output = round_trip(
        tmp_path, save(tmp_path / "in.jpg", Image.fromarray(gradient_rgb8()), exif=exif), "tif"
    )
    assert photo.dpi is None
    with Image.open(output) as tiff:
        assert (tiff.tag_v2[282], tiff.tag_v2[283], tiff.tag_v2[296]) == written
    assert read_photo(output).dpi is None


def test_an_exif_resolution_of_nothing_without_a_unit_is_written_to_a_tiff(tmp_path: Path) -> None:
    # XResolution and YResolution of 0, and no ResolutionUnit: no dpi, and the tags' types checked without one
    rational = struct.pack("<II", 0, 1)
    exif = exif_of(b"II", [(282, 5, 1, rational), (283, 5, 1, rational)])
    photo, output = round_trip(
        tmp_path, save(tmp_path / "in.jpg", Image.fromarray(gradient_rgb8()), exif=exif), "tif"
    )
    assert photo.dpi is None
    assert read_photo(output).dpi is None


def test_a_tiffs_profile_or_xmp_of_another_type_is_read_as_its_bytes(tmp_path: Path) -> None:
    # Pillow hands a damaged TIFF's ICC profile tag of SHORTs over as a number, and its XMP tag typed ASCII
    # as text: each failed the photo as "truncated or corrupt image data", its pixels whole
    picture = Image.fromarray(gradient_rgb8())
    xmp = b'<x:xmpmeta><rdf:Description xmp:Rating="4"/></x:xmpmeta>'
    as_text = retyped(save(tmp_path / "text.tif", picture, tiffinfo={700: xmp}), 700, 2)
    assert read_photo(as_text).xmp == xmp
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    as_number = retyped(save(tmp_path / "rgb.tif", picture, icc_profile=profile), 34675, 3, 1)
    photo = read_photo(as_number)
    assert photo.icc_profile is None
    assert (
        photo.unusable_profile_notice
        == "its embedded colour profile is not an ICC profile: the output goes without it"
    )
    cmyk = retyped(save(tmp_path / "cmyk.tif", picture.convert("CMYK"), icc_profile=profile), 34675, 3, 1)
    assert read_photo(cmyk).uncalibrated_cmyk_notice == (
        "a CMYK photo whose colour profile is damaged (LittleCMS cannot read it): its colours were converted "
        "to RGB uncalibrated, and may be off"
    )


def test_a_tiffs_profile_tag_of_a_number_that_is_nothing_is_no_profile_with_a_note(tmp_path: Path) -> None:
    """A profile tag of one SHORT that is 0, which Pillow hands over as the number 0: it is no profile, said
    as any other that is none, not a photo whose profile is the number 0 without a word."""
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    saved = save(tmp_path / "rgb.tif", Image.fromarray(gradient_rgb8()), icc_profile=profile)
    photo = read_photo(retyped(saved, 34675, 3, 1, bytes(4)))
    assert photo.icc_profile is None
    assert photo.reading_notices() == [
        "its embedded colour profile is not an ICC profile: the output goes without it"
    ]


def test_metadata_goes_only_where_the_format_can_hold_it(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010E] = "A" * 70_000  # an image description past a JPEG's 64 KB EXIF segment
    described = read_photo(save(tmp_path / "described.png", Image.fromarray(gradient_rgb8()), exif=exif))
    huge = {282: TiffImagePlugin.IFDRational(10**9, 1), 283: TiffImagePlugin.IFDRational(10**9, 1)}
    image = Image.fromarray(gradient_rgb8())
    scanned = read_photo(save(tmp_path / "scan.tif", image, resolution_unit=2, tiffinfo=huge))
    assert len(described.exif) > 70_000 and scanned.dpi == (1e9, 1e9)
    write_photo(tmp_path / "described.jpg", described.pixels, described)
    with Image.open(tmp_path / "described.jpg") as jpeg:
        assert 0x010E not in jpeg.getexif()  # left out whole, where Pillow refused to write the file
    for name in ("scan.jpg", "scan.png", "scan.bmp", "copy.tif"):
        write_photo(tmp_path / name, scanned.pixels, scanned)
    with Image.open(tmp_path / "scan.jpg") as jpeg:
        assert "jfif_density" not in jpeg.info or jpeg.info["jfif_density"] != (51712, 51712)  # not wrapped
    with Image.open(tmp_path / "scan.png") as png:  # no 1e9 dpi in 31 bits of pixels per metre
        assert "dpi" not in png.info
    with Image.open(tmp_path / "scan.bmp") as bmp:
        assert bmp.info.get("dpi", (0, 0))[0] < 1e6
    with Image.open(tmp_path / "copy.tif") as tiff:
        assert tiff.info["dpi"] == (1e9, 1e9)
    assert imaging.metadata_loss_notice(described, "JPEG") == (
        "its EXIF (70.0 kB) cannot go into JPEG: left out; PNG or TIFF keeps it"
    )
    assert imaging.metadata_loss_notice(scanned, "PNG") == (
        "its resolution (1,000,000,000 dpi) cannot go into PNG: left out; TIFF keeps it"
    )
    assert imaging.metadata_loss_notice(described, "BMP") == (  # BMP holds no metadata at all
        "its EXIF (70.0 kB) cannot go into BMP: left out; PNG or TIFF keeps it"
    )
    recorded = dataclasses.replace(described, iptc=b"\x1c\x02\x05\x00\x05Title")  # PNG holds no IPTC-IIM
    assert imaging.metadata_loss_notice(recorded, "BMP") == (
        "its EXIF (70.0 kB) and IPTC record (10 bytes) cannot go into BMP: left out; TIFF keeps them"
    )
    assert (
        imaging.metadata_loss_notice(described, "PNG") is None
        and imaging.metadata_loss_notice(scanned, "TIFF") is None
    )
    with Image.open(tmp_path / "scan.jpg") as jpeg:  # the EXIF's resolution, a fraction, holds it
        assert jpeg.getexif()[282] == 1e9
    assert imaging.metadata_loss_notice(scanned, "JPEG") is None  # said "left out", yet the EXIF kept it
    camera = Image.Exif()
    camera[282], camera[283] = TiffImagePlugin.IFDRational(72, 1), TiffImagePlugin.IFDRational(72, 1)
    for exif in (None, camera.tobytes()):  # no EXIF, or one that says another resolution
        assert imaging.metadata_loss_notice(dataclasses.replace(scanned, exif=exif), "JPEG") == (
            "its resolution (1,000,000,000 dpi) cannot go into JPEG: left out; TIFF keeps it"
        )
    long_exif = Image.Exif()
    long_exif[0x010E] = "A" * 70_000
    long_exif[282], long_exif[283] = huge[282], huge[283]
    long_exif[296] = 2  # inches
    long_scan = dataclasses.replace(scanned, exif=long_exif.tobytes())
    assert imaging.metadata_loss_notice(long_scan, "JPEG") == (  # the EXIF holding it is left out too
        "its EXIF (70.1 kB) and resolution (1,000,000,000 dpi) cannot go into JPEG: left out; TIFF keeps them"
    )


@pytest.mark.skipif(not imaging.HEIF_SUPPORTED, reason="pillow-heif is not installed")
def test_a_picture_the_heif_encoder_refuses_is_a_one_line_error(tmp_path: Path) -> None:
    target = tmp_path / "strip.heic"
    with pytest.raises(ImageWriteError) as caught:
        write_rgb8(target, np.zeros((16, 6000, 3), np.uint8))  # x265 takes 6000 x 32, not 6000 x 16
    assert caught.value.reason.startswith("the HEIF encoder refused this 6000 x 16 picture (")
    assert caught.value.reason.endswith("); write PNG, TIFF or JPEG instead")
    assert not target.exists() and leftovers(tmp_path) == []


def test_a_fifo_or_device_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # opening it would wait for a writer for ever
    assert_read_error(fifo, "a FIFO, not a photo file")
    (tmp_path / "noise.jpg").symlink_to("/dev/urandom")
    assert_read_error(tmp_path / "noise.jpg", "a device, not a photo file")
    # The progress bar reads each input's header first: a FIFO is not opened there either.
    header = threading.Thread(target=lambda: sizes.append(imaging.header_megapixels(fifo)), daemon=True)
    sizes: list[float] = []
    header.start()
    header.join(timeout=10)
    assert sizes == [0.0]


def test_an_output_whose_name_is_as_long_as_names_can_be_is_written(tmp_path: Path) -> None:
    for name in ("a" * 251 + ".png", "é" * 125 + ".png"):  # 255 and 254 bytes: the temporary is cut to fit
        write_rgb8(tmp_path / name, gradient_rgb8())
        assert (tmp_path / name).is_file() and leftovers(tmp_path) == []


WRITE_PAST_A_FILE_SIZE_LIMIT = """
import resource, signal, sys
import numpy as np
from pathlib import Path
from recnet_cli.imaging import ImageWriteError, write_rgb8

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, a write is cut short, then fails
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
pixels = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)  # a 12 KB JPEG
try:
    write_rgb8(Path(sys.argv[1]), pixels)
    print("written")
except ImageWriteError as error:
    print(error.reason)
"""


def test_a_jpeg_cut_short_by_a_full_disk_is_a_write_error_not_a_finished_file(tmp_path: Path) -> None:
    # Pillow's JPEG encoder writes to the file itself and ignores a short write: a disk that filled up
    # mid-file left 8192 bytes of a 12 KB JPEG, reported written. (A file size limit cuts writes the same
    # way, in a subprocess.)
    target = tmp_path / "out.jpg"
    command = [sys.executable, "-c", WRITE_PAST_A_FILE_SIZE_LIMIT, str(target)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.stdout.strip() == "file too large", result.stderr
    assert not target.exists() and leftovers(tmp_path) == []


def test_images_recnet_writes_bear_its_mark_where_the_file_system_keeps_one(tmp_path, monkeypatch):
    # What tells recnet's outputs from a user's own photos, which --overwrite must not replace (batch.foreign)
    mine = tmp_path / "mine.jpg"
    Image.new("RGB", (8, 8)).save(mine)
    written = tmp_path / "written.png"
    write_rgb8(written, np.zeros((8, 8, 3), np.uint8))
    skip_unless_marks_kept(mine.parent)
    assert imaging.written_by_recnet(written) is True and imaging.written_by_recnet(mine) is False
    replaced = tmp_path / "replaced.jpg"
    shutil.copyfile(mine, replaced)
    write_rgb8(replaced, np.zeros((8, 8, 3), np.uint8))  # replacing a file marks it too
    assert imaging.written_by_recnet(replaced) is True
    # A file copied onto an output (cp writes into the file, which keeps its attributes), or an output
    # edited in place, is the user's from then on, even at the same size
    shutil.copyfile(mine, written)
    assert imaging.written_by_recnet(written) is False
    write_rgb8(written, np.zeros((8, 8, 3), np.uint8))
    time.sleep(0.05)  # an edit comes later than the clock's tick (a few ms) that timed the write
    with open(written, "r+b") as file:
        file.seek(-1, os.SEEK_END)
        file.write(b"\x00")
    assert imaging.written_by_recnet(written) is False
    write_rgb8(written, np.zeros((8, 8, 3), np.uint8))
    # A copy that keeps the attributes and the time (cp -a, rsync -aX) bore the mark as the output did, and
    # --overwrite replaced it in the folder it was copied to; a move keeps the file, and so the mark
    copied = tmp_path / "copied.png"
    subprocess.run(["cp", "-a", written, copied], check=True)
    assert os.getxattr(copied, WRITTEN_MARK) == os.getxattr(written, WRITTEN_MARK)
    assert imaging.written_by_recnet(copied) is False
    moved = tmp_path / "moved.png"
    written.rename(moved)
    assert imaging.written_by_recnet(moved) is True
    moved.rename(written)

    def unsupported(*_: object) -> bytes:
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "getxattr", unsupported)
    assert imaging.written_by_recnet(written) is None  # cannot be told, so nothing is refused for it


def test_a_long_thin_picture_scaled_down_keeps_a_pixel_across() -> None:
    assert fit_size(np.zeros((2, 400, 3), np.float32), max_side=100).shape == (1, 100, 3)


def test_a_picture_too_long_to_scale_within_both_limits_keeps_its_short_side_s_minimum() -> None:
    picture = np.zeros((100, 1000, 3), np.float32)  # 500 px long would leave it 50 px across, under 80
    assert fit_size(picture, min_side=80, max_side=500).shape == (80, 800, 3)
    assert fit_size(picture, min_side=40, max_side=500).shape == (50, 500, 3)  # both hold


def test_a_picture_scaled_down_is_the_mean_of_what_each_pixel_covers() -> None:
    # not samples of it, which would alias fine detail (noise, fabric) into patterns
    noise = np.random.default_rng(6).random((64, 96, 3), dtype=np.float32)
    means = noise.reshape(16, 4, 24, 4, 3).mean(axis=(1, 3))
    assert np.abs(fit_size(noise, max_side=24) - means).max() < 1e-5


def test_keep_colour_takes_the_lightness_from_the_correction_and_the_colour_from_the_photo() -> None:
    rng = np.random.default_rng(4)
    photo = rng.uniform(0.05, 0.5, (32, 32, 3)).astype(np.float32)
    photo[:, :16] = photo[:, :16].mean(axis=2, keepdims=True)  # grey, more than the smoothing's reach
    corrected = np.clip(photo * 1.6 + rng.normal(0, 0.05, photo.shape), 0, 1).astype(np.float32)
    corrected[..., 0] += 0.1  # a red cast
    kept = lightness_only(photo, np.clip(corrected, 0, 1))
    inside = (kept > 0).all(axis=-1) & (kept < 1).all(axis=-1)  # not clipped
    assert np.abs(luma(kept) - luma(np.clip(corrected, 0, 1)))[inside].max() < 1e-5  # the corrected lightness
    assert np.ptp(kept[:, :8], axis=2).max() < 1e-6  # grey stays grey: the cast is gone
    # each pixel's colour is the photo's, grown as its lightness grew, then smoothed: its hue and saturation
    gain = np.minimum((luma(kept) + 0.02) / (luma(photo) + 0.02), MOST_COLOUR_GAIN)[..., None]
    chroma = cv2.GaussianBlur((photo - luma(photo)[..., None]) * gain, (0, 0), COLOUR_SMOOTHING)
    assert np.abs(kept - luma(kept)[..., None] - chroma)[inside].max() < 1e-5
    # beside a bright colour, a dark grey lifted far takes some of it as smoothing spreads it, not more:
    # smoothed before it grew, a grey beside red came out redder than the red
    edge = np.full((20, 20, 3), 0.05, np.float32)
    edge[:, 10:] = (0.9, 0.2, 0.2)
    lifted_grey = edge.copy()
    lifted_grey[:, :10] = 0.3
    edge_kept = lightness_only(edge, lifted_grey)
    saturation = np.ptp(edge_kept, axis=2)
    assert saturation[:, :10].max() < saturation[:, 10:].max() and saturation[:, :6].max() < 0.05
    # a crushed shadow lifted far grows its colour (its noise) at most 4 times, as the README says
    noisy_black = np.full((9, 9, 3), 0.0, np.float32)
    noisy_black[..., 0] = 0.004
    lifted = lightness_only(noisy_black, np.full((9, 9, 3), 0.4, np.float32))
    assert np.abs(luma(lifted) - 0.4).max() < 1e-6
    assert np.ptp(lifted, axis=2).max() == pytest.approx(0.004 * 4, rel=1e-4)


@pytest.mark.skipif(sys.platform != "linux", reason="recnet reads the process's memory map on Linux only")
def test_mapped_files_named_as_libtiff_that_are_not_it_do_not_keep_libtiff_s_errors_said(
    tmp_path: Path,
) -> None:
    """recnet silences the libtiff it finds among the files the process maps by their names: a file so named
    that is no library, or a library without libtiff's functions, is passed over, and libtiff, found before
    or after them, is silenced all the same."""
    noise = np.random.default_rng(0).integers(0, 256, (48, 72, 3), np.uint8)
    lzw = save(tmp_path / "lzw.tif", Image.fromarray(noise), compression="tiff_lzw")
    with Image.open(lzw) as tiff:
        strip, length = tiff.tag_v2[273][0], tiff.tag_v2[279][0]
    with lzw.open("r+b") as file:  # codes LZW has not defined: libtiff says so on stderr
        file.seek(strip + 10)
        file.write(b"\xff" * (length - 10))
    no_libraries = [tmp_path / f"libtiff-photo-{number}.so" for number in range(16)]
    for path in no_libraries:
        path.write_bytes(b"\0" * 4096)
    other_library = tmp_path / "libtiff-other.so"
    mapped = Path("/proc/self/maps").read_text().split()
    shutil.copyfile(next(name for name in mapped if Path(name).name.startswith("libm.so")), other_library)
    code = (
        "import ctypes, mmap, os\n"
        f"paths = {list(map(str, no_libraries))!r}\n"
        "held = [mmap.mmap(os.open(path, os.O_RDONLY), 4096, prot=mmap.PROT_READ) for path in paths]\n"
        f"ctypes.CDLL({str(other_library)!r})\n"
        "from recnet_cli.imaging import ImageReadError, read_photo\n"
        "try:\n"
        f"    read_photo({str(lzw)!r})\n"
        "except ImageReadError as error:\n"
        "    print(error)\n"
    )
    for _ in range(3):  # the files are looked at in any order
        loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        assert (loaded.returncode, loaded.stderr) == (0, ""), loaded.stderr
        assert loaded.stdout == f"{lzw}: truncated or corrupt image data\n"


@pytest.mark.skipif(sys.platform != "linux", reason="recnet reads the process's memory map on Linux only")
def test_a_libtiff_in_a_folder_whose_name_has_spaces_is_silenced(tmp_path: Path) -> None:
    """A virtual environment in "My Projects", say: its libtiff's name in the memory map has spaces."""
    mapped = Path("/proc/self/maps").read_text().split()
    libtiff = next((name for name in mapped if Path(name).name.startswith("libtiff")), None)
    if libtiff is None:
        pytest.skip("Pillow loaded no libtiff of its own")
    copy = tmp_path / "My Projects" / "libtiff-copy.so"
    copy.parent.mkdir()
    shutil.copyfile(libtiff, copy)
    code = (
        "import ctypes, PIL.Image\n"  # Pillow's libtiff first: the copy's libraries are then found
        f"copy = ctypes.CDLL({str(copy)!r})\n"
        "import recnet_cli.imaging\n"
        f"copy.TIFFOpen({os.fsencode(tmp_path / 'missing.tif')!r}, b'r')\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (loaded.returncode, loaded.stderr) == (0, "")


@pytest.mark.skipif(sys.platform != "linux", reason="recnet reads the process's memory map on Linux only")
def test_a_mapped_file_whose_name_is_not_utf8_does_not_stop_recnet_loading(tmp_path: Path) -> None:
    """recnet looks for libtiff among the files the process maps: one named in Latin-1 there (a photo, a
    library in a folder so named) made every command fail as it started (UnicodeDecodeError)."""
    mapped = os.fsencode(tmp_path) + b"/caf\xe9.bin"
    with open(mapped, "wb") as file:
        file.write(b"\0" * 4096)
    code = (
        f"import mmap, os; file = os.open({mapped!r}, os.O_RDONLY); "
        "held = mmap.mmap(file, 4096, prot=mmap.PROT_READ); import recnet_cli.imaging"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (loaded.returncode, loaded.stderr) == (0, "")


def test_a_fault_is_said_in_one_line_where_recnet_s_code_has_no_part_in_it() -> None:
    """The reason names the error by the first line of its message, and where it was raised: the file's name
    alone outside recnet's code (no path relative to recnet's folder, which failed), and nowhere for an error
    never raised."""
    assert fault_reason(KeyError("colour")) == (
        "failed by a fault in recnet (KeyError: 'colour'); please report it, with this file if you can"
    )
    try:
        raise ValueError("the first line\nand the second")
    except ValueError as error:
        line = error.__traceback__.tb_lineno
        reason = fault_reason(error)
    assert reason == (
        f"failed by a fault in recnet (ValueError: the first line, at {Path(__file__).name}:{line}); please "
        "report it, with this file if you can"
    )


def test_a_fault_in_recnet_s_code_imported_through_a_symbolic_link_says_where_in_it(tmp_path: Path) -> None:
    """A recnet found through a linked folder (a home folder, macOS's /tmp) has its code's frames under the
    link's path: they are recnet's all the same, named from its folder."""
    linked = tmp_path / "linked"
    linked.symlink_to(Path(recnet_cli.__file__).resolve().parent.parent, target_is_directory=True)
    code = (
        "import recnet_cli\n"
        "from recnet_cli.imaging import read\n"
        "from recnet_cli.imaging.errors import fault_reason\n"
        f"assert recnet_cli.__file__.startswith({str(linked)!r}), recnet_cli.__file__\n"
        "try:\n"
        "    read._jpeg_frame(None)\n"
        "except AttributeError as error:\n"
        "    print(fault_reason(error))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(linked)}
    command = [sys.executable, "-c", code]
    ran = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert ran.returncode == 0, ran.stderr
    where = r", at recnet_cli/imaging/containers\.py:\d+\); please report it"  # the JPEG walk's
    assert re.search(where, ran.stdout), ran.stdout


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize(
    "chunk",
    [
        (b"pHYs", bytes(5)),  # cut short: 9 bytes
        (b"tRNS", b""),  # an RGB colour is 6 bytes
        (b"zTXt", b"Comment\0\x01" + zlib.compress(b"a note")),  # a compression method PNG does not have
    ],
)
def test_a_png_that_pillow_refuses_for_one_damaged_metadata_chunk_is_read_without_it(
    tmp_path: Path, depth: int, chunk: tuple[bytes, bytes]
) -> None:
    """Browsers and libpng show such a PNG; Pillow refused it whole, and recnet called it damaged."""
    pixels = noisy() if depth == 8 else noisy().astype(np.uint16) * 257
    clean = read_photo(png_with_chunks(tmp_path / "clean.png", pixels, GAMMA_18))
    photo = read_photo(png_with_chunks(tmp_path / "odd.png", pixels, GAMMA_18, chunk))
    np.testing.assert_array_equal(photo.pixels, clean.pixels)
    assert photo.png_colour == clean.png_colour == (GAMMA_18,)  # its other chunks are read as they were
    notice = f"its {chunk[0].decode()} chunk is damaged: the output goes without it"
    assert photo.reading_notices() == [notice]


def test_a_png_whose_picture_is_damaged_too_is_refused_whatever_its_metadata_chunks(tmp_path: Path) -> None:
    """Only a PNG whose picture's chunks are whole is read again without a metadata chunk: one cut short,
    or whose picture data's CRC is not its own, is damaged, and is said to be."""
    odd = png_with_chunks(tmp_path / "odd.png", noisy(), (b"pHYs", bytes(5))).read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(odd[: len(odd) // 2])
    assert_read_error(cut, "truncated or corrupt image data")
    idat = odd.index(b"IDAT")
    changed = tmp_path / "changed.png"
    changed.write_bytes(odd[: idat + 10] + bytes([odd[idat + 10] ^ 1]) + odd[idat + 11 :])
    assert_read_error(changed, "truncated or corrupt image data")


@pytest.mark.parametrize(
    "chunk",
    [(b"tEXt", b"Comment\0a note"), (b"pHYs", struct.pack(">IIB", 2835, 2835, 1))],
)
def test_a_png_whose_metadata_chunk_s_crc_is_not_its_data_s_is_read_without_it(
    tmp_path: Path, chunk: tuple[bytes, bytes]
) -> None:
    """libpng warns of a metadata chunk whose CRC is not its data's and passes over it; Pillow refuses the
    PNG whole for it. It is read without that chunk, not called damaged as its picture's chunks would be."""
    clean = png_with_chunks(tmp_path / "clean.png", noisy(), GAMMA_18).read_bytes()
    odd = tmp_path / "odd.png"
    at = len(imaging.formats.PNG_SIGNATURE) + 25  # after IHDR
    odd.write_bytes(clean[:at] + png_chunk_bytes(*chunk)[:-4] + struct.pack(">I", 1) + clean[at:])
    photo = read_photo(odd)
    np.testing.assert_array_equal(as_codes(photo.pixels, 8), noisy())
    assert photo.png_colour == (GAMMA_18,)
    assert photo.reading_notices() == [
        f"its {chunk[0].decode()} chunk is damaged: the output goes without it"
    ]


def test_a_png_whose_pixel_data_s_crc_is_wrong_or_that_ends_without_iend_is_refused_whatever_its_chunks(
    tmp_path: Path,
) -> None:
    """libpng refuses a PNG whose IDAT's CRC is not its data's ("IDAT: CRC error"), or that ends after its
    pixel data without IEND, which Pillow reads: with a metadata chunk Pillow refuses it for (a pHYs cut
    short), it was not read again without that chunk, and is damaged."""
    odd = png_with_chunks(tmp_path / "odd.png", noisy(), (b"pHYs", bytes(5))).read_bytes()
    idat = odd.index(b"IDAT")
    crc = idat + 4 + struct.unpack_from(">I", odd, idat - 4)[0]  # after its type and data
    wrong_crc = tmp_path / "wrong-crc.png"
    wrong_crc.write_bytes(odd[:crc] + bytes([odd[crc] ^ 1]) + odd[crc + 1 :])
    assert_read_error(wrong_crc, "truncated or corrupt image data")
    no_iend = tmp_path / "no-iend.png"
    no_iend.write_bytes(odd[:-12])  # IEND: its length, type and CRC
    assert_read_error(no_iend, "truncated or corrupt image data")
    iend_cut = tmp_path / "iend-cut.png"
    iend_cut.write_bytes(odd[:-1])  # its CRC a byte short
    assert_read_error(iend_cut, "truncated or corrupt image data")


def test_a_png_with_stray_bytes_after_its_iend_is_read_without_its_damaged_metadata_chunk(
    tmp_path: Path,
) -> None:
    """Bytes after a PNG's IEND too few to be a chunk's length and type (a writer's padding) end its walk of
    chunks: they are no chunk cut short, and the PNG is read without the metadata chunk Pillow refuses."""
    odd = png_with_chunks(tmp_path / "odd.png", noisy(), (b"pHYs", bytes(5)))
    odd.write_bytes(odd.read_bytes() + bytes(3))
    photo = read_photo(odd)
    np.testing.assert_array_equal(as_codes(photo.pixels, 8), noisy())
    assert photo.reading_notices() == ["its pHYs chunk is damaged: the output goes without it"]


def jpeg_with_segments(path: Path, image: Image.Image, *segments: bytes, **options) -> Path:
    """A JPEG that Pillow writes of ``image`` (with ``options``), with ``segments`` (each from its marker on)
    in place of its own of their marker and first 4 bytes of data, or after its own where it has none."""
    own, rest = jpeg_header_segments(save(path, image, **options).read_bytes())
    for segment in segments:
        same = [at for at, mine in enumerate(own) if mine[1] == segment[1] and mine[4:8] == segment[4:8]]
        if same:
            own[same[0]] = segment
        else:
            own.append(segment)
    path.write_bytes(b"\xff\xd8" + b"".join(own) + rest)
    return path


def app_segment(marker: int, data: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", 2 + len(data)) + data


JFIF_CUT_SHORT = app_segment(0xE0, b"JFIF\0")  # without its version: 14 bytes in all
ADOBE_CUT_SHORT = app_segment(0xEE, b"Adobe")  # without its version and colour transform: 12 bytes
ICC_CUT_SHORT = app_segment(0xE2, b"ICC_PROFILE\0")  # without the part's sequence number and count
ICC_NAME = "ICC_PROFILE APP2 segment"


@pytest.mark.parametrize(
    ("mode", "segment", "name"),
    [
        pytest.param("RGB", JFIF_CUT_SHORT, "JFIF APP0 segment", id="JFIF"),
        pytest.param("RGB", ADOBE_CUT_SHORT, "Adobe APP14 segment", id="Adobe"),
        pytest.param("CMYK", ADOBE_CUT_SHORT, "Adobe APP14 segment", id="Adobe-CMYK"),  # inverted, as before
        pytest.param("RGB", ICC_CUT_SHORT, f"embedded colour profile (an {ICC_NAME} cut short)", id="ICC"),
        pytest.param("L", ICC_CUT_SHORT, f"embedded colour profile (an {ICC_NAME} cut short)", id="ICC-grey"),
    ],
)
def test_a_jpeg_that_pillow_refuses_for_a_segment_cut_short_is_read_as_viewers_show_it(
    tmp_path: Path, mode: str, segment: bytes, name: str
) -> None:
    """Viewers (libjpeg, OpenCV) show a JPEG whose JFIF, Adobe or ICC profile segment is cut short, passing
    over it; Pillow refused it whole, and recnet called it damaged. It is read without that segment, as
    libjpeg reads it, and the output claims no profile it does not have."""
    image = Image.fromarray(noisy()).convert(mode)
    profile = {"icc_profile": GREY_PROFILE if mode == "L" else SRGB_PROFILE} if mode != "CMYK" else {}
    odd = jpeg_with_segments(tmp_path / "odd.jpg", image, segment, **profile)
    own, rest = jpeg_header_segments(odd.read_bytes())
    clean = tmp_path / "clean.jpg"  # the same file without that segment
    clean.write_bytes(b"\xff\xd8" + b"".join(kept for kept in own if kept != segment) + rest)
    expected, photo = read_photo(clean), read_photo(odd)
    np.testing.assert_array_equal(photo.pixels, expected.pixels)
    libjpeg = [cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED) for path in (odd, clean)]
    np.testing.assert_array_equal(*libjpeg)
    assert photo.icc_profile == expected.icc_profile  # none where its profile's segment was cut short
    damaged = f"its {name} is damaged: the output goes without it"
    assert photo.reading_notices() == [damaged, *expected.reading_notices()]


def test_a_jpeg_keeps_its_colour_profile_where_a_segment_of_it_cut_short_is_one_too_many(
    tmp_path: Path,
) -> None:
    """An ICC profile segment cut short beside the profile's own whole ones is passed over, as libjpeg passes
    over it: the profile is read from those."""
    odd = jpeg_with_segments(tmp_path / "odd.jpg", Image.fromarray(noisy()), icc_profile=SRGB_PROFILE)
    odd.write_bytes(odd.read_bytes().replace(b"\xff\xd8", b"\xff\xd8" + ICC_CUT_SHORT, 1))
    photo = read_photo(odd)
    assert photo.icc_profile == SRGB_PROFILE
    assert photo.reading_notices() == [f"its {ICC_NAME} is damaged: the output goes without it"]


def test_a_jpeg_whose_profile_in_two_parts_has_one_cut_short_names_the_profile(tmp_path: Path) -> None:
    """A profile of two parts, the second cut short: the whole first part alone makes no profile (it counts
    two), so the photo goes without one, and the note names the profile, not a segment alone."""
    odd = jpeg_with_segments(tmp_path / "odd.jpg", Image.fromarray(noisy()))
    first = app_segment(0xE2, b"ICC_PROFILE\0\x01\x02" + SRGB_PROFILE[: len(SRGB_PROFILE) // 2])
    odd.write_bytes(odd.read_bytes().replace(b"\xff\xd8", b"\xff\xd8" + first + ICC_CUT_SHORT, 1))
    photo = read_photo(odd)
    assert photo.icc_profile is None
    lost = f"its embedded colour profile (an {ICC_NAME} cut short) is damaged: the output goes without it"
    assert photo.reading_notices() == [lost]


JFIF_WHOLE = b"JFIF\0\x01\x02\x01\x01\x2c\x01\x2c\0\0"  # version 1.2, 300 dpi, no thumbnail: 14 bytes
ADOBE_WHOLE = b"Adobe\0\x64\0\0\0\0\x01"  # version 100, no flags, YCbCr: 12 bytes
ICC_WHOLE = b"ICC_PROFILE\0\x01\x01"  # part 1 of 1, of no bytes: 14 bytes


@pytest.mark.parametrize(
    ("segments", "left_out"),
    [
        pytest.param(
            [app_segment(0xE0, JFIF_WHOLE[:-1]), ADOBE_CUT_SHORT],
            ("JFIF APP0 segment", "Adobe APP14 segment"),
            id="JFIF-13",
        ),
        pytest.param(
            [app_segment(0xE0, JFIF_WHOLE), ADOBE_CUT_SHORT], ("Adobe APP14 segment",), id="JFIF-14"
        ),
        pytest.param(
            [app_segment(0xEE, ADOBE_WHOLE[:-1]), JFIF_CUT_SHORT],
            ("Adobe APP14 segment", "JFIF APP0 segment"),
            id="Adobe-11",
        ),
        pytest.param([app_segment(0xEE, ADOBE_WHOLE), JFIF_CUT_SHORT], ("JFIF APP0 segment",), id="Adobe-12"),
        pytest.param(
            [app_segment(0xE2, ICC_WHOLE[:-1]), ADOBE_CUT_SHORT],
            (f"embedded colour profile (an {ICC_NAME} cut short)", "Adobe APP14 segment"),
            id="ICC-13",
        ),
        pytest.param([app_segment(0xE2, ICC_WHOLE), ICC_CUT_SHORT], (ICC_NAME,), id="ICC-14"),
        pytest.param(
            [app_segment(0xE2, b"ICC_PROFILEX\x01"), ADOBE_CUT_SHORT], ("Adobe APP14 segment",), id="not-ICC"
        ),
        pytest.param([JFIF_CUT_SHORT, JFIF_CUT_SHORT], ("JFIF APP0 segment",), id="JFIF-twice"),
        pytest.param(  # a comment, whatever it says
            [app_segment(0xFE, b"JFIF\0"), ADOBE_CUT_SHORT], ("Adobe APP14 segment",), id="JFIF-comment"
        ),
    ],
)
def test_a_jpeg_s_segment_is_left_out_where_it_is_short_of_the_header_libjpeg_reads(
    tmp_path: Path, segments: list[bytes], left_out: tuple[str, ...]
) -> None:
    """Pillow reads a JFIF segment of 13 bytes, an Adobe one of 11, and refuses an ICC profile's of 13 (no
    count), which libjpeg passes over as short of their 14, 12 and 14: where Pillow refuses the JPEG for
    another segment cut short, such a segment is left out and named with it, one whole to its header's end
    (or no profile's, no NUL after its identifier) is kept, and a name is said once however many go."""
    odd = save(tmp_path / "odd.jpg", Image.fromarray(noisy()))
    odd.write_bytes(odd.read_bytes().replace(b"\xff\xd8", b"\xff\xd8" + b"".join(segments), 1))
    photo = read_photo(odd)
    assert photo.damaged_metadata == left_out
    assert photo.pixels.shape == (64, 64, 3)


@pytest.mark.parametrize(
    ("counts", "profile"),
    [((2, 1), SRGB_PROFILE), ((1, 1), None)],
    ids=["first-counts-two", "both-count-one"],
)
def test_a_jpeg_s_profile_is_whole_as_the_part_that_sorts_first_counts_its_parts(
    tmp_path: Path, counts: tuple[int, int], profile: bytes | None
) -> None:
    """Pillow puts a profile's parts together where the part that sorts first (its sequence number 1),
    wherever it lies in the file, counts as many parts as there are, whatever the others count. Beside a
    segment cut short, left out, the note names that segment where the profile is whole, and the profile
    where it is not."""
    half = len(SRGB_PROFILE) // 2
    first = app_segment(0xE2, b"ICC_PROFILE\0\x01" + bytes([counts[0]]) + SRGB_PROFILE[:half])
    second = app_segment(0xE2, b"ICC_PROFILE\0\x02" + bytes([counts[1]]) + SRGB_PROFILE[half:])
    odd = save(tmp_path / "odd.jpg", Image.fromarray(noisy()))
    odd.write_bytes(odd.read_bytes().replace(b"\xff\xd8", b"\xff\xd8" + second + first + ICC_CUT_SHORT, 1))
    photo = read_photo(odd)
    assert photo.icc_profile == profile
    lost = f"embedded colour profile (an {ICC_NAME} cut short)"
    assert photo.damaged_metadata == (ICC_NAME if profile else lost,)


@pytest.mark.parametrize("stray", [b"\xff\x00", b"\xff\xff\xff"], ids=["stuffed-0", "fill"])
def test_a_jpeg_s_segments_are_walked_past_stray_markers_as_pillow_walks_them(
    tmp_path: Path, stray: bytes
) -> None:
    """Pillow passes over a stuffed 0 (a marker without a length) and fill bytes between a JPEG's segments: a
    segment cut short after them is found, and the JPEG is read without it."""
    odd = jpeg_with_segments(tmp_path / "odd.jpg", Image.fromarray(noisy()), JFIF_CUT_SHORT)
    odd.write_bytes(odd.read_bytes().replace(b"\xff\xd8", b"\xff\xd8" + stray, 1))
    photo = read_photo(odd)
    assert photo.pixels.shape == (64, 64, 3)
    assert photo.reading_notices() == ["its JFIF APP0 segment is damaged: the output goes without it"]


def test_a_jpeg_read_without_a_segment_cut_short_names_its_other_damaged_metadata_first(
    tmp_path: Path,
) -> None:
    """What is found damaged in the JPEG read again (its EXIF) is named with the segment left out, first."""
    with Image.open(CANON) as camera:
        cut = camera.info["exif"][:40]  # its first directory cut short
    odd = jpeg_with_segments(tmp_path / "odd.jpg", Image.fromarray(gradient_rgb8()), JFIF_CUT_SHORT, exif=cut)
    photo = read_photo(odd)
    assert photo.exif is None and photo.damaged_metadata == ("EXIF", "JFIF APP0 segment")
    assert photo.reading_notices() == [
        "its EXIF and JFIF APP0 segment are damaged: the output goes without them"
    ]


def test_a_jpeg_cut_short_after_a_marker_s_first_byte_is_damaged(tmp_path: Path) -> None:
    """A JPEG whose last byte is the 0xFF a marker starts with, before its frame, ends the walk of its
    segments there: it is damaged, whether or not a segment before it is cut short too."""
    for name, data in (
        ("plain.jpg", save(tmp_path / "whole.jpg", Image.fromarray(noisy())).read_bytes()),
        (
            "jfif.jpg",
            jpeg_with_segments(tmp_path / "odd.jpg", Image.fromarray(noisy()), JFIF_CUT_SHORT).read_bytes(),
        ),
    ):
        cut = tmp_path / name
        cut.write_bytes(data[: data.index(b"\xff\xc0") + 1])
        assert_read_error(cut, "truncated or corrupt image data")


def test_a_jpeg_whose_picture_is_damaged_too_is_refused_whatever_its_segments_cut_short(
    tmp_path: Path,
) -> None:
    """A JPEG read again without a segment cut short, which Pillow refuses still (its scan cut short, a
    marker that is none), is damaged, and is said to be."""
    odd = jpeg_with_segments(tmp_path / "odd.jpg", Image.fromarray(noisy()), JFIF_CUT_SHORT).read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(odd[: len(odd) // 2])
    assert_read_error(cut, "truncated or corrupt image data")
    no_marker = tmp_path / "no-marker.jpg"
    no_marker.write_bytes(odd.replace(b"\xff\xdb", b"\xff\x02", 1))
    assert_read_error(no_marker, "truncated or corrupt image data")


def tiff_with_tag_past_its_end(path: Path, image: Image.Image, tag: int = 271, **options) -> Path:
    """A TIFF that Pillow writes of ``image`` with a Make and a Model tag (and those of ``tiffinfo``), its
    Make's text (or another ``tag``'s values) past its end."""
    tiffinfo = {271: "Recnet Camera", 272: "R98", **options.pop("tiffinfo", {})}
    data = bytearray(save(path, image, tiffinfo=tiffinfo, **options).read_bytes())
    order = "<" if data.startswith(b"II") else ">"
    (first,) = struct.unpack_from(order + "I", data, 4)
    (count,) = struct.unpack_from(order + "H", data, first)
    entries = range(first + 2, first + 2 + 12 * count, 12)
    entry = next(at for at in entries if struct.unpack_from(order + "H", data, at)[0] == tag)
    struct.pack_into(order + "I", data, entry + 8, len(data) + 100)  # its values' offset
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("mode", ["RGB", "I;16B"])  # little-endian, Pillow decodes it; big-endian, OpenCV
def test_a_tiff_whose_text_tag_lies_past_its_end_is_read_without_that_tag(tmp_path: Path, mode: str) -> None:
    """libtiff (OpenCV) reads a TIFF whose Make tag's text lies past its end, passing over that tag; Pillow
    stopped reading the TIFF's directory there, without the picture's tags after it, and recnet called it
    damaged. It is read without that tag, and its other tags are kept."""
    pixels = noisy()
    image = (
        Image.fromarray(pixels)
        if mode == "RGB"
        else Image.frombytes(mode, (64, 64), (pixels[..., 0].astype(">u2") * 257).tobytes())
    )
    expected = read_photo(save(tmp_path / "clean.tif", image, tiffinfo={272: "R98"}))
    photo = read_photo(tiff_with_tag_past_its_end(tmp_path / "odd.tif", image))
    np.testing.assert_array_equal(photo.pixels, expected.pixels)
    assert photo.bit_depth == expected.bit_depth == (8 if mode == "RGB" else 16)
    exif = Image.Exif()
    exif.load(photo.exif)
    assert exif.get(272) == "R98" and 271 not in exif
    assert photo.reading_notices() == ["its Make tag is damaged: the output goes without it"]


def test_a_tiff_whose_tag_lies_past_its_end_keeps_its_later_tags(tmp_path: Path) -> None:
    """Pillow stops reading a TIFF's directory at a tag whose values lie past its end: where the picture's
    tags came before it, the TIFF was read silently without the tags after it, its colour profile among
    them. It is read without that tag alone, and says so."""
    options = {"software": "Editor 1.0", "icc_profile": SRGB_PROFILE}
    source = tiff_with_tag_past_its_end(tmp_path / "odd.tif", Image.fromarray(noisy()), tag=305, **options)
    with Image.open(source) as opened:
        assert "icc_profile" not in opened.info  # what Pillow makes of it
    photo = read_photo(source)
    assert photo.icc_profile == SRGB_PROFILE
    assert photo.reading_notices() == ["its Software tag is damaged: the output goes without it"]
    np.testing.assert_array_equal(as_codes(photo.pixels, 8), noisy())


def tiff_entry(data: bytes, tag: int) -> int:
    """Where a little-endian TIFF's first directory's entry of ``tag`` starts."""
    (first,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, first)
    entries = range(first + 2, first + 2 + 12 * count, 12)
    return next(at for at in entries if struct.unpack_from("<H", data, at)[0] == tag)


@pytest.mark.parametrize(
    ("make", "past", "left_out"),
    [
        pytest.param("Recnet Camera", 0, False, id="ends-the-file"),
        pytest.param("Recnet Camera", 1, True, id="one-byte-past"),
        pytest.param("Leic", 1, True, id="five-bytes-one-past"),  # one more than an entry holds
    ],
)
def test_a_tiff_s_tag_is_past_its_end_where_its_values_run_a_byte_past_its_last(
    tmp_path: Path, make: str, past: int, left_out: bool
) -> None:
    """A tag whose values end with the file is whole, and read; one whose values, of more than the 4 bytes
    an entry holds, run a byte past it is left out, and said to be."""
    data = bytearray(
        save(tmp_path / "odd.tif", Image.fromarray(noisy()), tiffinfo={271: make, 272: "R98"}).read_bytes()
    )
    struct.pack_into("<I", data, tiff_entry(data, 271) + 8, len(data))  # its text after the file's bytes
    value = make.encode() + b"\0"
    (tmp_path / "odd.tif").write_bytes(data + value[: len(value) - past])
    photo = read_photo(tmp_path / "odd.tif")
    np.testing.assert_array_equal(as_codes(photo.pixels, 8), noisy())
    exif = Image.Exif()
    exif.load(photo.exif)
    assert exif.get(272) == "R98" and exif.get(271) == (None if left_out else make)
    damaged = ["its Make tag is damaged: the output goes without it"]
    assert photo.reading_notices() == (damaged if left_out else [])


def test_a_tiff_whose_directory_ends_the_file_is_read_without_its_tag_past_its_end(tmp_path: Path) -> None:
    """A TIFF whose first directory comes last in it, the next one's offset its last 4 bytes, as some
    writers put it, with a Make tag past its end, is read without that tag as any other TIFF."""
    data = tiff_with_tag_past_its_end(tmp_path / "odd.tif", Image.fromarray(noisy())).read_bytes()
    (first,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, first)
    moved = bytearray(
        data[:4] + struct.pack("<I", len(data)) + data[8:] + data[first : first + 2 + 12 * count + 4]
    )
    struct.pack_into("<I", moved, tiff_entry(moved, 271) + 8, len(moved) + 100)  # past the longer file's end
    (tmp_path / "moved.tif").write_bytes(moved)
    photo = read_photo(tmp_path / "moved.tif")
    np.testing.assert_array_equal(as_codes(photo.pixels, 8), noisy())
    assert photo.reading_notices() == ["its Make tag is damaged: the output goes without it"]


def test_a_tiff_s_tag_of_a_type_tiff_does_not_have_is_passed_over_not_called_damaged(tmp_path: Path) -> None:
    """Pillow and libtiff pass over a tag of a type TIFF has not (99), whose values have no size: wherever
    its offset points, it is no tag past the file's end, and the TIFF is read as it is, without a note."""
    source = save(tmp_path / "odd.tif", Image.fromarray(noisy()), tiffinfo={271: "Recnet Camera"})
    photo = read_photo(retyped(source, 271, 99, value=struct.pack("<I", 10**9)))
    np.testing.assert_array_equal(as_codes(photo.pixels, 8), noisy())
    assert photo.reading_notices() == []


def test_a_tiff_whose_two_tags_lie_past_its_end_is_read_without_both(tmp_path: Path) -> None:
    """Each tag of a TIFF's first directory whose values lie past its end is left out, and named."""
    odd = tiff_with_tag_past_its_end(
        tmp_path / "odd.tif", Image.fromarray(noisy()), tiffinfo={272: "Recnet R98"}
    )
    data = bytearray(odd.read_bytes())
    struct.pack_into("<I", data, tiff_entry(data, 272) + 8, len(data) + 100)  # its Model's text too
    odd.write_bytes(data)
    photo = read_photo(odd)
    np.testing.assert_array_equal(as_codes(photo.pixels, 8), noisy())
    assert photo.damaged_metadata == ("Make tag", "Model tag")


def test_a_tiff_of_several_pages_with_a_tag_past_its_end_still_counts_its_pages(tmp_path: Path) -> None:
    """The directory read again without a tag past the TIFF's end keeps its next directory's offset: the
    TIFF's other pages are counted as they were."""
    first, *others = (Image.fromarray(noisy() // d) for d in (1, 2, 3))
    odd = tiff_with_tag_past_its_end(tmp_path / "odd.tif", first, save_all=True, append_images=others)
    photo = read_photo(odd)
    np.testing.assert_array_equal(as_codes(photo.pixels, 8), noisy())
    assert photo.frames == 3
    assert photo.reading_notices() == [
        "has 3 pages; only the first is used",
        "its Make tag is damaged: the output goes without it",
    ]


def test_a_tiff_whose_picture_is_damaged_too_is_refused_whatever_its_text_tags(tmp_path: Path) -> None:
    """A TIFF read again without a text tag past its end, whose strip is cut short too, is damaged, and is
    said to be."""
    odd = tiff_with_tag_past_its_end(tmp_path / "odd.tif", Image.fromarray(noisy())).read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(odd[:-1000])  # its strip cut short
    assert_read_error(cut, "truncated or corrupt image data")


def test_a_tiff_with_a_tag_past_its_end_is_refused_for_its_own_pixels_not_as_damaged(tmp_path: Path) -> None:
    """A TIFF whose pixels recnet cannot read (signed 16-bit grey), with a Software tag past its end, was
    read again as it is once the read without that tag failed: Pillow, stopping at that tag, never sees the
    SampleFormat after it, and the file was called damaged. The pixels are why it is refused."""
    pixels = np.arange(64 * 64, dtype="<u2").reshape(64, 64)
    image = Image.frombytes("I;16", (64, 64), pixels.tobytes())
    odd = tiff_with_tag_past_its_end(
        tmp_path / "odd.tif", image, tag=305, software="Editor", tiffinfo={339: 2}
    )
    assert_read_error(odd, "unsupported pixel type 16-bit signed grey")
