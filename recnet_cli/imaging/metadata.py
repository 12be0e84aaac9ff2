"""A photo's EXIF, XMP (with a JPEG's extended XMP), IPTC-IIM record and resolution: read from the file, made
ready to copy (orientation 1, the upright size), what an output's format cannot hold of them, and the JPEG
segments that carry them."""

from __future__ import annotations

import functools
import hashlib
import html
import math
import re
import struct
from collections.abc import Callable
from typing import TypeVar

from PIL import Image

from recnet_cli import __version__
from recnet_cli.imaging.exif_block import (
    ORIENTATION,
    QUARTER_TURNS,
    RESOLUTIONS,
    edited_exif,
    sized_exif,
    turned_resolution,
    with_software,
    with_standard_types,
)
from recnet_cli.imaging.exif_block import SOFTWARE as SOFTWARE_TAG
from recnet_cli.imaging.formats import MAX_DPI, METADATA_FORMATS
from recnet_cli.imaging.photo import Photo

T = TypeVar("T")

# TIFF's and EXIF's resolution tags, and the units ResolutionUnit gives
(_X_RESOLUTION, _Y_RESOLUTION), _RESOLUTION_UNIT, _INCH, _CENTIMETRE = RESOLUTIONS, 296, 2, 3
# A TIFF's first directory doubles as its EXIF, but these tags in it are not to be copied as EXIF: those
# that describe the file's own pixel storage; the ICC profile, XMP and IPTC, which recnet carries on their
# own; and Photoshop's image resources and layers, which describe the uncorrected pixels.
_NOT_EXIF_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325}
    | {330, 338, 339, 513, 514, 700, 33723, 34377, 34675, 37724}
)
SOFTWARE = f"recnet {__version__}"  # what outputs name as the program that made them (EXIF, XMP)
# XMP's copy of the orientation, as an attribute or an element (the forms Pillow's exif_transpose knows), and
# the program that made the file, in either form: what outputs say of them.
_XMP_EDITS = (
    (re.compile(rb'tiff:Orientation="[0-9]"'), b'tiff:Orientation="1"'),
    (re.compile(rb"<tiff:Orientation>[0-9]</tiff:Orientation>"), b"<tiff:Orientation>1</tiff:Orientation>"),
    (re.compile(rb'xmp:CreatorTool="[^"<]*"'), b'xmp:CreatorTool="%s"' % SOFTWARE.encode()),
    (
        re.compile(rb"<xmp:CreatorTool>[^<]*</xmp:CreatorTool>"),
        b"<xmp:CreatorTool>%s</xmp:CreatorTool>" % SOFTWARE.encode(),
    ),
)
# What followed the picture in its file, which outputs go without, by what the XMP packet says of it: an
# HDR gain map (Ultra HDR, Adobe's), a motion photo's video (Google's: MotionPhoto, or MicroVideo before it,
# 1; 0 says there is none). Outputs' XMP does not claim them, nor the container directory that places them.
_APPENDED = {
    "HDR gain map": re.compile(rb"hdrgm:Version\s*(?:=|>)"),
    "motion photo's video": re.compile(rb"GCamera:(?:MotionPhoto|MicroVideo)\s*(?:=\s*[\"']|>)\s*1\b"),
}

# XMP's orientation as Pillow's ``getexif`` reads it, in either form, where a file has no Orientation tag
_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(?:="|>)([0-9])')


def xmp_orientation(xmp: bytes | None) -> int:
    """The orientation an XMP packet gives, as Pillow reads it; 1 where it gives none."""
    found = _XMP_ORIENTATION.search(xmp or b"")
    return 1 if found is None else int(found[1])


def _xmp_property(name: bytes) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """The XMP property ``name`` (a pattern of names) as an attribute and as an element, to take out of a
    packet."""
    attribute = re.compile(rb"\s(?:%s)\s*=\s*(?:\"[^\"]*\"|'[^']*')" % name)
    return attribute, re.compile(rb"<(%s)>[^<]*</\1>" % name)


_XMP_REMOVALS = (
    *_xmp_property(rb"hdrgm:Version|GCamera:(?:MotionPhoto|MicroVideo)\w*"),
    re.compile(rb"<(G?Container:Directory)>.*?</\1>", re.DOTALL),  # where each item starts
)
# A packet's trailer; the white space before it is padding, which the XMP specification leaves for editing
# the packet in place (Adobe's toolkit writes 2 kB of it).
_XMP_TRAILER = b"<?xpacket end="
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
# The GUID in the packet's xmpNote:HasExtendedXMP, an attribute or an element; the property, taken out of a
# packet whose extended XMP is left out.
_HAS_EXTENDED_XMP = re.compile(rb"HasExtendedXMP\s*(?:=\s*[\"']|>)\s*([0-9A-Fa-f]{32})")
_EXTENDED_XMP_CLAIMS = _xmp_property(rb"[\w.-]+:HasExtendedXMP")
_IPTC_RESOURCE = 0x0404  # Photoshop image resource "IPTC-NAA record"
IPTC_TAG = 33723  # TIFF tag IPTC-NAA
# IPTC-IIM datasets of the application record (2) that tools writing both mirror in XMP, with the XMP
# property that holds the same, as the IPTC Photo Metadata Standard maps them.
_IPTC_DATE = 55  # written otherwise in each: 20240501 in IIM, 2024-05-01 in XMP
_IPTC_IN_XMP = {
    5: ("title", b"dc:title"),
    25: ("keywords", b"dc:subject"),
    40: ("instructions", b"photoshop:Instructions"),
    55: ("date created", b"photoshop:DateCreated"),
    80: ("by-line", b"dc:creator"),
    85: ("by-line title", b"photoshop:AuthorsPosition"),
    90: ("city", b"photoshop:City"),
    95: ("state", b"photoshop:State"),
    101: ("country", b"photoshop:Country"),
    105: ("headline", b"photoshop:Headline"),
    110: ("credit", b"photoshop:Credit"),
    115: ("source", b"photoshop:Source"),
    116: ("copyright", b"dc:rights"),
    120: ("caption", b"dc:description"),
    122: ("caption writer", b"photoshop:CaptionWriter"),
}


def metadata_blocks(photo: Photo) -> dict[str, bytes | None]:
    """The photo's EXIF, XMP and IPTC-IIM blocks, by the names messages give them."""
    return {"EXIF": photo.exif, "XMP": photo.xmp, "IPTC record": photo.iptc}


def left_out(photo: Photo, output_format: str) -> list[str]:
    """The photo's metadata that a file in ``output_format`` cannot hold ("XMP", "resolution"): every block
    in a BMP, which holds none; a block over a JPEG's 64 KB segment (Photoshop's document history can make
    XMP that long); a resolution past what the format stores."""
    holds_no_metadata = output_format not in METADATA_FORMATS  # BMP
    names = [
        name
        for name, block in metadata_blocks(photo).items()
        if block
        and (holds_no_metadata or (output_format == "JPEG" and len(block) > _JPEG_SEGMENT_LIMITS[name]))
    ]
    if photo.dpi and max(photo.dpi) > MAX_DPI.get(output_format, math.inf):
        names.append("resolution")
    return names


def exif_holds_resolution(exif: bytes | None, dpi: tuple[float, float] | None) -> bool:
    """Whether an EXIF block's first directory gives the resolution ``dpi`` (XResolution, YResolution: a
    fraction of any size), which goes into a JPEG with it where the JFIF header's 16-bit density cannot."""
    tags = Image.Exif()
    try:
        tags.load(exif or b"")
    except Exception:  # damaged: Pillow's EXIF parser raises any kind
        return False
    held = exif_dpi(tags)
    return (
        dpi is not None
        and held is not None
        and all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(held, dpi, strict=True))
    )


def exif_dpi(tags: Image.Exif | None) -> tuple[float, float] | None:
    """The resolution across and down the stored picture that EXIF tags give, in pixels per inch: None where
    they give none, or none in inches or centimetres (ResolutionUnit 1 says only the pixels' aspect)."""
    try:
        x, y, unit = float(tags[_X_RESOLUTION]), float(tags[_Y_RESOLUTION]), tags.get(_RESOLUTION_UNIT, _INCH)
    except Exception:  # none, or damaged: Pillow's EXIF parser raises any kind
        return None
    per_inch = {_INCH: 1, _CENTIMETRE: 2.54}.get(unit)
    return None if per_inch is None else (x * per_inch, y * per_inch)


def intact(read: Callable[[], T], name: str, damaged: list[str]) -> T | None:
    """What ``read`` returns, or None with ``name`` added to ``damaged`` when that metadata is damaged:
    a photo whose pixels decode is corrected without it. Parsers raise any kind on bad bytes."""
    try:
        return read()
    except Exception:
        damaged.append(name)
        return None


def portable_exif(
    exif: Image.Exif, block: bytes | None, size: tuple[int, int], orientation: int
) -> bytes | None:
    """The EXIF to copy to outputs: orientation 1, the upright pixels' ``size`` (width, height) as the Exif
    directory's pixel dimensions, its resolution across and down them (turned where the stored
    ``orientation`` turned the pixels a quarter round), and none of the TIFF tags that are not EXIF (each
    output names recnet in it: ``output_exif``).

    The file's EXIF ``block`` is changed in place (``exif_block.edited_exif``). A TIFF has no such block (its
    first directory doubles as its EXIF and holds the file's pixel layout too), nor has a PNG whose EXIF is in
    a legacy text chunk: Pillow builds a block of their EXIF tags anew (a TIFF's maker note whose offsets
    count from the file's start reads wrong in it), and their standard types are put back in it
    (``with_standard_types``)."""
    turned = orientation in QUARTER_TURNS
    if block:
        edited = edited_exif(block, _NOT_EXIF_TAGS)
        return sized_exif(turned_resolution(edited) if turned else edited, *size)
    for tag in _NOT_EXIF_TAGS & exif.keys():
        del exif[tag]
    if not exif:
        return None
    if turned and all(tag in exif for tag in RESOLUTIONS):
        exif[_X_RESOLUTION], exif[_Y_RESOLUTION] = exif[_Y_RESOLUTION], exif[_X_RESOLUTION]
    exif[ORIENTATION] = 1
    exif.bigtiff = False  # a BigTIFF's directory is written as an EXIF block is laid out: as a classic TIFF's
    return sized_exif(with_standard_types(exif.tobytes()), *size)


def output_exif(exif: bytes, output_format: str) -> bytes:
    """The photo's EXIF block as an output in ``output_format`` carries it: with recnet as its Software
    (``with_software``), as photo editors set it on export. But where that no longer fits a JPEG's EXIF
    segment and the block did (the first directory written again makes it longer, and a camera's can fill
    its segment nearly to the byte: a Nikon D800's, 65,532 bytes of 65,533), with no Software: the JPEG keeps
    the camera's EXIF, which would be left out whole, and does not claim to be the camera's own (its Software
    entry, the camera's firmware, is unlinked in place)."""
    named = with_software(exif, SOFTWARE)
    if output_format == "JPEG" and len(exif) <= _JPEG_SEGMENT_LIMITS["EXIF"] < len(named):
        return edited_exif(exif, frozenset({SOFTWARE_TAG}))
    return named


def _portable_xmp(xmp: bytes | None) -> bytes | None:
    """The XMP to copy to outputs: its orientation, if it has one, says 1 (the pixels are upright now), its
    CreatorTool, if it has one, recnet, and nothing of what followed the picture in its file, where it says
    something did (``_APPENDED``: a gain-map-aware viewer would look for a gain map past the output's
    end)."""
    if not xmp:
        return None
    edited = xmp
    for pattern, replacement in _XMP_EDITS:
        edited = pattern.sub(replacement, edited)
    for pattern in _XMP_REMOVALS if appended_items(xmp) else ():
        edited = pattern.sub(b"", edited)
    return _within_length(edited, len(xmp))


def appended_items(xmp: bytes | None) -> list[str]:
    """What the XMP packet says followed the picture in its file ("HDR gain map"), which outputs go
    without."""
    return [name for name, pattern in _APPENDED.items() if xmp and pattern.search(xmp)]


def _within_length(packet: bytes, length: int) -> bytes:
    """The edited packet no longer than ``length`` where its padding (the white space before ``<?xpacket
    end``, left for editing in place) can give up what the edits added, as XMP toolkits edit a packet: one
    that filled a JPEG's segment still fits it with recnet named as its CreatorTool."""
    excess, trailer = len(packet) - length, packet.rfind(_XMP_TRAILER)
    if excess <= 0 or trailer < 0 or trailer - len(packet[:trailer].rstrip()) < excess:
        return packet
    return packet[: trailer - excess] + packet[trailer:]


def xmp_packets(image: Image.Image, damaged: list[str]) -> tuple[bytes | None, bytes | None]:
    """The XMP packet and, where it is a JPEG's that names one (HasExtendedXMP), its extended XMP, both with
    orientation 1 and recnet as CreatorTool (an extended XMP edited for them is named by its new MD5). An
    extended XMP that is missing, incomplete or not the one named is None, with "extended XMP" added to
    ``damaged``, and the packet no longer names it: an output would claim what it does not hold."""
    xmp = image.info.get("xmp")
    if xmp is None and _RAW_XMP in image.info:  # a PNG's XMP as ImageMagick and Krita write it
        xmp = intact(lambda: _raw_profile(image.info[_RAW_XMP]), "XMP", damaged)
    claim = _HAS_EXTENDED_XMP.search(xmp) if xmp and image.format in ("JPEG", "MPO") else None
    if claim is None:
        return _portable_xmp(xmp), None
    read = functools.partial(_extended_xmp, image.applist, claim[1].upper())
    extended = _portable_xmp(intact(read, "extended XMP", damaged))
    if extended is None:  # left out: the packet no longer claims it
        for pattern in _EXTENDED_XMP_CLAIMS:
            xmp = pattern.sub(b"", xmp)
    else:  # named as recnet writes it: by its MD5 in capitals, changed where it was
        xmp = xmp.replace(claim[1], _xmp_guid(extended))
    return _portable_xmp(xmp), extended


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


def iptc_record(image: Image.Image) -> bytes | None:
    """The raw IPTC-IIM record: a JPEG's Photoshop resource 0x0404, or a TIFF's tag 33723.

    Photoshop and ExifTool type the TIFF tag as 4-byte integers, which Pillow's tag API cuts to one value:
    its undecoded bytes are read instead, as Pillow's own ``IptcImagePlugin.getiptcinfo`` does.
    """
    if image.format == "TIFF":
        record = getattr(image.tag_v2, "_tagdata", {}).get(IPTC_TAG)
    else:
        record = image.info.get("photoshop", {}).get(_IPTC_RESOURCE)
    return bytes(record) if isinstance(record, bytes | bytearray) and record else None


def iptc_datasets(record: bytes) -> dict[int, list[bytes]]:
    """The values of the application record's datasets in an IPTC-IIM record by number (120 for the
    caption; 25, keywords, may repeat), in the record's order; a damaged record gives those before the
    damage."""
    found: dict[int, list[bytes]] = {}
    offset = 0
    while offset + 5 <= len(record) and record[offset] == 0x1C:
        number, dataset, length = (
            record[offset + 1],
            record[offset + 2],
            int.from_bytes(record[offset + 3 : offset + 5], "big"),
        )
        offset += 5
        if length & 0x8000:  # an extended dataset: the length's own length, then the length
            size = length & 0x7FFF
            length, offset = int.from_bytes(record[offset : offset + size], "big"), offset + size
        if number == 2:
            found.setdefault(dataset, []).append(record[offset : offset + length])
        offset += length
    return found


def iptc_left_out_of_xmp(iptc: bytes | None, xmp: bytes | None) -> list[str]:
    """What the IPTC-IIM record holds ("caption", "by-line") that the XMP packet does not mirror: a field it
    lacks, or one whose text it does not hold (a caption edited in one and not the other)."""
    if not iptc:
        return []
    xmp = xmp or b""
    xmp_text = _plain(html.unescape(xmp.decode("utf-8", errors="replace")))
    return [
        _IPTC_IN_XMP[number][0]
        for number, values in iptc_datasets(iptc).items()
        if number in _IPTC_IN_XMP
        and (
            _IPTC_IN_XMP[number][1] not in xmp
            or (number != _IPTC_DATE and not all(_plain(_iim_text(value)) in xmp_text for value in values))
        )
    ]


def _iim_text(value: bytes) -> str:
    """An IPTC dataset's text: UTF-8, as tools that name the record's character set name it, else the
    Windows code page older tools wrote."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("cp1252", errors="replace")


def _plain(text: str) -> str:
    """Text with its runs of white space (line ends as \\r\\n or \\n, tabs) and NULs as single spaces: as
    IIM and XMP may each hold the same caption."""
    return " ".join(text.replace("\0", " ").split())


def photoshop_segment(iptc: bytes) -> bytes:
    """A JPEG APP13 segment that holds the IPTC-IIM record as its one Photoshop image resource."""
    resource = b"8BIM" + struct.pack(">HHI", _IPTC_RESOURCE, 0, len(iptc)) + iptc + b"\0" * (len(iptc) % 2)
    return jpeg_segment(0xED, b"Photoshop 3.0\0" + resource)


def xmp_segments(xmp: bytes | None, extended_xmp: bytes | None) -> bytes:
    """A JPEG's APP1 segments of an XMP packet, then of the extended XMP it names, in portions of at most
    65,000 bytes, each with the extended XMP's GUID, full length and its offset."""
    if not xmp:
        return b""
    segments = [jpeg_segment(0xE1, _XMP_HEADER + xmp)]
    if extended_xmp:
        named = _XMP_EXTENSION_HEADER + _xmp_guid(extended_xmp) + struct.pack(">I", len(extended_xmp))
        for start in range(0, len(extended_xmp), _XMP_EXTENSION_PORTION):
            portion = extended_xmp[start : start + _XMP_EXTENSION_PORTION]
            segments.append(jpeg_segment(0xE1, named + struct.pack(">I", start) + portion))
    return b"".join(segments)


def jpeg_segment(marker: int, body: bytes) -> bytes:
    """A JPEG marker segment: 0xFF, the ``marker`` byte, its length (counting its 2 bytes), then ``body``."""
    return struct.pack(">BBH", 0xFF, marker, 2 + len(body)) + body


def source_dpi(image: Image.Image, orientation: int, exif: Image.Exif | None) -> tuple[float, float] | None:
    """The stored resolution, across and down the picture as ``orientation`` turns it upright: the format's
    own (a JPEG's JFIF density in inches or centimetres, a PNG's pHYs in metres, a TIFF's resolution tags),
    else its ``exif`` tags' (``exif_dpi``). Pillow's own reading of a JPEG's EXIF is not taken: it counts a
    resolution without a unit in inches (a 64-pixel photo at 1 dpi would print 64 inches wide), and gives
    72 x 72 where there is none. Pillow reports 1 x 1 for TIFFs that have none."""
    guessed = image.format in ("JPEG", "MPO") and image.info.get("jfif_unit") not in (1, 2)  # from the EXIF
    unset = image.format == "TIFF" and _X_RESOLUTION not in image.tag_v2
    dpi = (None if guessed or unset else image.info.get("dpi")) or exif_dpi(exif)
    if not dpi:
        return None
    try:
        horizontal, vertical = float(dpi[0]), float(dpi[1])  # a TIFF's 72/0 is nan
    except (TypeError, ValueError):  # a damaged TIFF's resolution tag of another type: text ("abc"), bytes
        return None
    if orientation in QUARTER_TURNS:
        horizontal, vertical = vertical, horizontal
    return (horizontal, vertical) if 0 < horizontal < math.inf and 0 < vertical < math.inf else None
