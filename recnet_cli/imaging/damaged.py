"""A photo file without the damaged metadata that Pillow refuses it for (or, a TIFF's, reads it without the
tags after), as libpng, libjpeg and libtiff pass it over: pure functions on bytes, for ``read.read_photo``
to read again, naming what was left out."""

from __future__ import annotations

import math
import mmap
import re
import struct
from collections.abc import Iterator

from PIL import TiffTags

from recnet_cli.imaging.containers import JPEG_FRAMES, held_chunks, jpeg_segments
from recnet_cli.imaging.exif_block import BYTE_ORDERS, TIFF_TYPE_SIZES, entries_at
from recnet_cli.imaging.formats import PNG_SIGNATURE


def _png_without_a_chunk(png: bytes) -> Iterator[tuple[bytes, tuple[str, ...]]]:
    """A PNG without the chunks of one ancillary type, for each type it has, and that type's name ("pHYs
    chunk"): Pillow refuses one for a damaged metadata chunk (a pHYs or tRNS chunk cut short, a zTXt of a
    compression it does not know). Nothing where the picture's own chunks are damaged (cut short, or their
    CRC not their data's: nothing to try)."""
    spans = []
    for kind, start, end, crc_matches in held_chunks(png):
        if kind[:1].isupper() and not crc_matches:  # a critical chunk: IHDR, PLTE, IDAT, IEND
            return
        spans.append((kind, start, end))
    if not spans or spans[-1][0] != b"IEND":  # cut short
        return
    for left_out in dict.fromkeys(kind for kind, _, _ in spans if kind[:1].islower()):  # ancillary ones
        kept = b"".join(png[start:end] for kind, start, end in spans if kind != left_out)
        yield png[: len(PNG_SIGNATURE)] + kept, (f"{left_out.decode('latin-1')} chunk",)


# The APPn segments of a JPEG that Pillow reads a header of, by name: their marker, the identifier they start
# with (as Pillow tells them) and that header's length by their specifications (JFIF's version, units and
# densities; Adobe's version, flags and colour transform; an ICC profile part's sequence number and count).
# Pillow refuses a whole JPEG for one cut short of what it reads of them, where libjpeg, which decodes the
# pixels (Pillow's and the viewers'), passes over one cut short of its whole header as if it were not there.
_JPEG_HEADERS = {
    "JFIF APP0 segment": (0xE0, b"JFIF", 14),
    "Adobe APP14 segment": (0xEE, b"Adobe", 12),
    "ICC_PROFILE APP2 segment": (0xE2, b"ICC_PROFILE\0", 14),
}
_ICC_SEGMENT = "ICC_PROFILE APP2 segment"


def _jpeg_without_cut_short_segments(jpeg: bytes) -> Iterator[tuple[bytes, tuple[str, ...]]]:
    """A JPEG without its APPn segments cut short of their header (``_JPEG_HEADERS``), which libjpeg passes
    over too, and their names; nothing where it has none. Where the ICC profile's segments it keeps are not
    all of one (``_whole_profile``), the profile is named: the photo is read without one, as viewers show
    it."""
    cut_short, profile_parts = [], []
    for marker, start, end in jpeg_segments(jpeg):
        name = _jpeg_header_name(jpeg, marker, start)
        if name is not None and end - start - 4 < _JPEG_HEADERS[name][2]:  # after its marker and length
            cut_short.append((start, end, name))
        elif name == _ICC_SEGMENT:
            profile_parts.append(jpeg[start + 4 : end])
    if not cut_short:
        return
    profile_kept = _whole_profile(profile_parts)
    kept = bytearray(jpeg)
    for start, end, _ in reversed(cut_short):  # the later ones first, where ``kept`` still has them
        del kept[start:end]
    lost_profile = f"embedded colour profile (an {_ICC_SEGMENT} cut short)"
    names = (lost_profile if name == _ICC_SEGMENT and not profile_kept else name for _, _, name in cut_short)
    yield bytes(kept), tuple(dict.fromkeys(names))


def _whole_profile(parts: list[bytes]) -> bool:
    """Whether a JPEG's ICC profile segments (from their identifier on) make a whole profile as Pillow puts
    one together: the part that sorts first counts as many parts as there are."""
    first = min(parts, default=b"")
    return len(first) > 13 and first[13] == len(parts)  # after the identifier and the sequence number


def _jpeg_header_name(jpeg: bytes, marker: int, start: int) -> str | None:
    """The name of a JPEG's segment that starts at ``start`` where Pillow reads a header of it
    (``_JPEG_HEADERS``); None otherwise."""
    for name, (own_marker, identifier, _) in _JPEG_HEADERS.items():
        if marker == own_marker and jpeg.startswith(identifier, start + 4):  # after its marker and length
            return name
    return None


# A JPEG's frames whose one scan may be told whole where the file ends without its end marker (EOI): SOF0
# and SOF1, Huffman-coded and sequential. A progressive one (SOF2) cut between two of its scans decodes, the
# marker put back, as a whole picture of lower quality, alike with any bytes before the marker (its scans'
# headers could tell whether they are all there: not read, so such JPEGs are refused, as before).
_SEQUENTIAL_FRAMES = frozenset({0xC0, 0xC1})
_RESTART_INTERVAL = 0xDD  # DRI
_SCAN_MARKER = b"\xff\xda"  # SOS, as it stands in the file
END_MARKER = b"\xff\xd9"  # EOI
_RESTART_MARKER = re.compile(rb"\xff[\xd0-\xd7]")  # RST0 to RST7
# Any other marker in a scan's data: a 0xFF followed by other than a stuffed 0, RSTn or a fill byte
_OTHER_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def jpeg_short_of_its_end_marker(jpeg: bytes) -> bytes | None:
    """A JPEG's bytes up to where its end marker (EOI) belongs, where it ends without it (or with its first
    byte alone), and its scan's data may end there whole: a sequential Huffman-coded one (SOF0, SOF1) of one
    scan of all its components, which holds every restart marker (RSTn) its restart interval (DRI) calls
    for; None otherwise. Whether the scan is whole, its last interval, is for its decodings to tell: a cut
    between two scans, or before a restart marker, decodes with the end marker put back as if whole."""
    if not jpeg.startswith(b"\xff\xd8") or jpeg.endswith(END_MARKER):
        return None
    frames, interval, scan_at = [], 0, 2
    for marker, start, end in jpeg_segments(jpeg):
        if marker in JPEG_FRAMES:
            frames.append((marker, jpeg[start + 4 : end]))  # after its marker and length
        elif marker == _RESTART_INTERVAL:
            interval = int.from_bytes(jpeg[start + 4 : start + 6], "big")
        scan_at = end
    if (scan_at := jpeg.find(_SCAN_MARKER, scan_at)) == -1 or len(frames) != 1:
        return None
    (marker, frame), components = frames[0], jpeg[scan_at + 4 : scan_at + 5]
    data_at = scan_at + 2 + int.from_bytes(jpeg[scan_at + 2 : scan_at + 4], "big")
    data = jpeg[data_at:].rstrip(b"\xff")  # a last 0xFF is the end marker's first byte, or fill bytes
    if marker not in _SEQUENTIAL_FRAMES or len(frame) < 6 or components != frame[5:6] or not data:
        return None
    if _OTHER_MARKER.search(data):  # another scan, or a table: this one is not the last
        return None
    if interval and len(_RESTART_MARKER.findall(data)) != _restarts(frame, interval):
        return None
    return jpeg[: data_at + len(data)]


def _restarts(frame: bytes, interval: int) -> int:
    """How many restart markers the one scan of all a JPEG's components holds, by its frame's data (the
    sample precision, height, width, components, then each one's id, sampling factors and table) and its
    restart interval in MCUs: one between each two intervals. An MCU is one 8 x 8 block of a picture of one
    component, and as many of each component's blocks as its sampling factors say of several."""
    height, width, count = int.from_bytes(frame[1:3], "big"), int.from_bytes(frame[3:5], "big"), frame[5]
    factors = frame[7 : 6 + 3 * count : 3]
    across = 8 * max((factor >> 4 for factor in factors), default=1) if count > 1 else 8
    down = 8 * max((factor & 15 for factor in factors), default=1) if count > 1 else 8
    return math.ceil(math.ceil(width / across) * math.ceil(height / down) / interval) - 1


def tiff_tags_past_its_end(tiff: bytes | mmap.mmap) -> tuple[range, list[int]]:
    """Where each entry of a classic TIFF's first directory starts (12 bytes each, after their count), and
    which of them hold values that lie past the file's end; none where the directory itself is cut short.
    Pillow stops reading the directory at such a tag, and goes on without it and the tags after it: it
    fails the file for want of its picture's tags (StripOffsets), or reads it silently without its later
    tags (its colour profile, or a Predictor the pixels need)."""
    order = BYTE_ORDERS[bytes(tiff[:4])]
    try:
        (first,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, first)
    except struct.error:
        return range(0), []
    entries = entries_at(first, count)
    if entries.stop + 4 > len(tiff):  # with the next directory's offset
        return range(0), []
    past_end = []
    for at in entries:
        kind, length, offset = struct.unpack_from(order + "HII", tiff, at + 2)
        size = length * TIFF_TYPE_SIZES.get(kind, 0)
        if size > 4 and offset + size > len(tiff):  # not held in the entry itself
            past_end.append(at)
    return entries, past_end


def _tiff_without_tags_past_its_end(tiff: bytes) -> Iterator[tuple[bytes, tuple[str, ...]]]:
    """A classic TIFF without the tags of its first directory whose values lie past its end
    (``tiff_tags_past_its_end``), which libtiff passes over, and their names ("Make tag"). The directory
    stays where it is, shorter: every other offset holds. Nothing where it has none."""
    entries, past_end = tiff_tags_past_its_end(tiff)
    if not past_end:
        return
    order = BYTE_ORDERS[tiff[:4]]
    kept = [tiff[at : at + 12] for at in entries if at not in past_end]
    names = [struct.unpack_from(order + "H", tiff, at)[0] for at in past_end]
    end = entries.stop + 4  # past the next directory's offset
    directory = struct.pack(order + "H", len(kept)) + b"".join(kept) + tiff[end - 4 : end]
    first = entries.start - 2
    yield (
        tiff[:first] + directory.ljust(end - first, b"\0") + tiff[end:],
        tuple(f"{TiffTags.TAGS.get(tag, f'TIFF {tag}')} tag" for tag in names),
    )


# How damaged metadata is found and left out, by the signature of the file's format.
_METADATA_LEFT_OUT = (
    (PNG_SIGNATURE, _png_without_a_chunk),
    (b"\xff\xd8", _jpeg_without_cut_short_segments),
    *((signature, _tiff_without_tags_past_its_end) for signature in BYTE_ORDERS),
)


def without_damaged_metadata(data: bytes) -> Iterator[tuple[bytes, tuple[str, ...]]]:
    """A PNG's, JPEG's or classic TIFF's bytes without damaged metadata, for each way of leaving it out
    (``_METADATA_LEFT_OUT``), and the names of what was left out ("pHYs chunk", "Make tag"); nothing for a
    file of another format, or where there is nothing to leave out."""
    for signature, without in _METADATA_LEFT_OUT:
        if data.startswith(signature):
            yield from without(data)
            return
