"""Editing an EXIF block in place: the bytes a camera wrote, changed without moving any of them.

An EXIF block is a small TIFF file (a header, then directories of 12-byte entries whose values, where they
do not fit in the entry, lie elsewhere in the block by offset). A camera's maker note holds offsets of its
own, which no general writer knows to update: so recnet never re-serialises a block, and only overwrites,
unlinks and leaves out entries where they are. Pure functions on bytes.
"""

from __future__ import annotations

import re
import struct

ORIENTATION = 0x0112
SOFTWARE = 0x0131  # in the first directory: the program that made the file
EXIF_IFD = 0x8769  # in the first directory: where the Exif directory starts
PIXEL_X_DIMENSION, PIXEL_Y_DIMENSION = 0xA002, 0xA003  # in the Exif directory: the picture's width, height
BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, SRATIONAL = 1, 2, 3, 4, 5, 7, 10  # TIFF field types
GPS_IFD, INTEROP_IFD = 0x8825, 0xA005  # in the first directory and in the Exif directory
MAKER_NOTE = 0x927C  # in the Exif directory: the camera maker's own tags
# A Nikon maker note (type 3): its name and version, then a TIFF header of its own, which its offsets count
# from; in its directory, where its preview's directory starts; in that, where the preview's JPEG starts
# and how many bytes it has
_NIKON, _NIKON_TIFF_AT, _NIKON_PREVIEW_IFD = b"Nikon\0", 10, 0x0011
_PREVIEW_START, _PREVIEW_LENGTH = 0x0201, 0x0202
EXIF_HEADER = b"Exif\0\0"  # before the TIFF header in a JPEG's EXIF segment, and in the blocks recnet keeps
_HEADERS = re.compile(rb"^(Exif\0\0){1,2}")  # as Pillow reads them: some writers repeat the header
BYTE_ORDERS = {b"II*\0": "<", b"MM\0*": ">"}  # a TIFF header's first 4 bytes: the order of what follows


def edited_exif(exif: bytes, dropped: frozenset[int]) -> bytes:
    """An EXIF block changed in place: orientation 1, the ``dropped`` tags out of its first directory (their
    values stay, unread), and its thumbnail's directory unlinked; every other byte kept. (The thumbnail
    shows the photo as it was: uncorrected, and on its side where the pixels were turned upright. File
    browsers that show it would show the photo recnet was asked to fix.)

    Nothing moves, so every offset in the block stays right, those in a camera's maker note included:
    re-serialising the block moves its data, and Canon's lens name then read empty. Raises where the first
    directory is not all in the block (damaged EXIF)."""
    block = bytearray(_HEADERS.sub(b"", exif))
    order, start, entries = first_directory(block)
    _blank_nikon_preview(block, order, entries)
    upright = struct.pack(order + "HHIH2x", ORIENTATION, SHORT, 1, 1)  # one SHORT, held in the entry itself
    kept = [entry for entry in entries if entry_tag(entry, order) not in dropped]
    kept = [upright if entry_tag(entry, order) == ORIENTATION else entry for entry in kept]
    end = entries_at(start, len(entries)).stop
    directory = struct.pack(order + "H", len(kept)) + b"".join(kept) + bytes(4)  # no next directory
    block[start : end + 4] = directory.ljust(end + 4 - start, b"\0")
    return EXIF_HEADER + bytes(block)


def _blank_nikon_preview(block: bytearray, order: str, entries: list[bytes]) -> None:
    """Takes out, in place, the preview a Nikon camera keeps in its maker note (a 640 x 424 JPEG of the photo
    as it was, which ExifTool and photo browsers that read embedded previews show): its bytes zeroed, and
    the maker note's entry that points to it left out of its directory. A maker note of another make, or
    one damaged, is left as it is."""
    try:
        note = _value_of(block, order, _pointed_to(order, entries, EXIF_IFD), MAKER_NOTE)
        if note is None or block[note : note + len(_NIKON)] != _NIKON:
            return
        base = note + _NIKON_TIFF_AT  # where the offsets of the maker note count from
        note_order = BYTE_ORDERS.get(bytes(block[base : base + 4]))
        if note_order is None:
            return
        directory = base + struct.unpack_from(note_order + "I", block, base + 4)[0]
        pointer_at = _entry_at(block, note_order, directory, _NIKON_PREVIEW_IFD)
        if pointer_at is None:
            return
        preview = base + struct.unpack_from(note_order + "I", block, pointer_at + 8)[0]
        start = _value_of(block, note_order, preview, _PREVIEW_START)
        length = _value_of(block, note_order, preview, _PREVIEW_LENGTH)
        if start is None or length is None or base + start + length > len(block):
            return
    except struct.error:  # a directory cut short
        return
    block[base + start : base + start + length] = bytes(length)
    (count,) = struct.unpack_from(note_order + "H", block, directory)
    end = entries_at(directory, count).stop + 4  # past the next directory's offset
    kept = block[pointer_at + 12 : end]  # the entries after it, and the next directory's offset
    struct.pack_into(note_order + "H", block, directory, count - 1)
    block[pointer_at:end] = kept + bytes(12)


def _pointed_to(order: str, entries: list[bytes], tag: int) -> int | None:
    """Where the directory that the first directory's ``tag`` points to starts; None where it has none."""
    pointers = [struct.unpack(order + "8xI", entry)[0] for entry in entries if entry_tag(entry, order) == tag]
    return pointers[0] if pointers else None


def _entry_at(block: bytearray, order: str, directory: int | None, tag: int) -> int | None:
    """Where the entry of ``tag`` starts in the directory at ``directory``; None where it has none, or the
    directory is not all in the block."""
    starts = _entry_starts(block, order, directory) if directory is not None else None
    return next((at for at in starts or () if struct.unpack_from(order + "H", block, at)[0] == tag), None)


def _value_of(block: bytearray, order: str, directory: int | None, tag: int) -> int | None:
    """The LONG value (or offset) of ``tag`` in the directory at ``directory``; None where it has none."""
    at = _entry_at(block, order, directory, tag)
    return None if at is None else struct.unpack_from(order + "I", block, at + 8)[0]


def with_software(exif: bytes, software: str) -> bytes:
    """An EXIF block whose first directory names ``software`` as the program that made the file (Software),
    as photo editors set it on export. Where its Software already has room for the name (stored apart as the
    name is, or in the entry as a name of 3 letters is), the name is written over it; else the directory is
    written again at the block's end, with the name before it, and the header points there (a photo
    corrected again and again would gain a dead copy each time). Nothing else moves, so every offset stays
    right (see ``edited_exif``). Its next directory (a thumbnail's) is unlinked."""
    block = bytearray(_HEADERS.sub(b"", exif))
    order, start, entries = first_directory(block)
    name = software.encode("ascii", "replace") + b"\0"
    if _software_written_over(block, order, start, entries, name):
        return EXIF_HEADER + bytes(block)
    block += bytes(len(block) % 2)  # values and directories start on a word boundary
    if len(name) <= 4:
        entry = struct.pack(order + "HHI", SOFTWARE, ASCII, len(name)) + name.ljust(4, b"\0")
    else:
        entry = struct.pack(order + "HHII", SOFTWARE, ASCII, len(name), len(block))
        block += name + bytes(len(name) % 2)
    kept = [each for each in entries if entry_tag(each, order) != SOFTWARE] + [entry]
    kept.sort(key=lambda each: entry_tag(each, order))  # a directory's tags ascend
    struct.pack_into(order + "I", block, 4, len(block))
    block += struct.pack(order + "H", len(kept)) + b"".join(kept) + bytes(4)
    return EXIF_HEADER + bytes(block)


def _software_written_over(
    block: bytearray, order: str, start: int, entries: list[bytes], name: bytes
) -> bool:
    """Writes ``name`` (ended by its NUL) over the first directory's Software where that is ASCII with room
    for it, held as the name would be (apart, or in the entry), and unlinks the directory's next one;
    whether it did."""
    at = next((index for index, entry in enumerate(entries) if entry_tag(entry, order) == SOFTWARE), None)
    if at is None:
        return False
    starts = entries_at(start, len(entries))
    entry, link = starts[at], starts.stop  # the link: the next directory's offset, after the entries
    kind, count, value = struct.unpack_from(order + "HII", block, entry + 2)
    place = entry + 8 if count <= 4 else value
    if kind != ASCII or len(name) > count or (count <= 4) != (len(name) <= 4):
        return False
    overlaps = place < link + 4 and place + count > start
    if count > 4 and (place < 8 or place + count > len(block) or overlaps):  # a damaged EXIF's offset
        return False
    block[place : place + count] = name.ljust(count, b"\0")
    struct.pack_into(order + "I", block, entry + 4, len(name))
    if link + 4 <= len(block):
        block[link : link + 4] = bytes(4)
    return True


QUARTER_TURNS = frozenset({5, 6, 7, 8})  # orientations that turn the stored picture a quarter round
RESOLUTIONS = (0x011A, 0x011B)  # XResolution, YResolution: pixels per unit across and down


def turned_resolution(exif: bytes) -> bytes:
    """An EXIF block whose first directory's XResolution and YResolution trade values, for a picture turned
    a quarter round to stand upright (its rows were its columns); every other byte kept, and a block without
    both left as it is. Raises where the first directory is not all in the block (damaged EXIF)."""
    block = bytearray(_HEADERS.sub(b"", exif))
    order, start, entries = first_directory(block)
    at = {
        entry_tag(entry, order): offset
        for entry, offset in zip(entries, entries_at(start, len(entries)), strict=True)
    }
    if all(tag in at for tag in RESOLUTIONS):
        x, y = (at[tag] for tag in RESOLUTIONS)
        block[x + 2 : x + 12], block[y + 2 : y + 12] = block[y + 2 : y + 12], block[x + 2 : x + 12]
    return EXIF_HEADER + bytes(block)


def sized_exif(exif: bytes, width: int, height: int) -> bytes:
    """An EXIF block whose Exif directory says the picture is ``width`` x ``height``, every other byte kept.

    PixelXDimension and PixelYDimension, where the Exif directory has them (one SHORT or LONG each, held in
    the entry), are overwritten in place; a SHORT becomes a LONG past 65,535. A camera's values describe the
    picture as stored, on its side where the orientation turns it, and the output's pixels are upright.
    A damaged Exif directory is left as it is."""
    block = bytearray(_HEADERS.sub(b"", exif))
    order, _, entries = first_directory(block)
    exif_directory = _pointed_to(order, entries, EXIF_IFD)
    starts = _entry_starts(block, order, exif_directory) if exif_directory is not None else None
    sizes = {PIXEL_X_DIMENSION: width, PIXEL_Y_DIMENSION: height}
    for at in starts or ():
        tag, kind, count = struct.unpack_from(order + "HHI", block, at)
        if tag in sizes and kind in (SHORT, LONG) and count == 1:
            short = kind == SHORT and sizes[tag] <= 0xFFFF
            layout, kind = ("HHIH2x", SHORT) if short else ("HHII", LONG)
            struct.pack_into(order + layout, block, at, tag, kind, 1, sizes[tag])
    return EXIF_HEADER + bytes(block)


# The types the EXIF standard gives tags that a block made anew (Pillow's, of a TIFF's tags) types with the
# same bytes otherwise: UNDEFINED as BYTE, SRATIONAL as RATIONAL. Stricter readers (exiv2, Adobe's) flag them.
_STANDARD_TYPES = {
    EXIF_IFD: {
        0x8828: UNDEFINED,  # OECF
        0x9000: UNDEFINED,  # ExifVersion
        0x9101: UNDEFINED,  # ComponentsConfiguration
        0x9201: SRATIONAL,  # ShutterSpeedValue
        0x9203: SRATIONAL,  # BrightnessValue
        0x9204: SRATIONAL,  # ExposureBiasValue
        0x927C: UNDEFINED,  # MakerNote
        0x9286: UNDEFINED,  # UserComment
        0xA000: UNDEFINED,  # FlashpixVersion
        0xA300: UNDEFINED,  # FileSource
        0xA301: UNDEFINED,  # SceneType
        0xA302: UNDEFINED,  # CFAPattern
        0xA40B: UNDEFINED,  # DeviceSettingDescription
    },
    GPS_IFD: {0x001B: UNDEFINED, 0x001C: UNDEFINED},  # GPSProcessingMethod, GPSAreaInformation
    INTEROP_IFD: {0x0002: UNDEFINED},  # InteroperabilityVersion
}
_SAME_BYTES = {(BYTE, UNDEFINED), (RATIONAL, SRATIONAL)}


def with_standard_types(exif: bytes) -> bytes:
    """An EXIF block whose Exif, GPS and Interoperability entries have the types the standard gives them,
    where they were written with others of the same bytes (a BYTE for an UNDEFINED; a RATIONAL of at most
    2**31 - 1 for an SRATIONAL); every other byte kept. A damaged directory is left as it is."""
    block = bytearray(_HEADERS.sub(b"", exif))
    order, _, entries = first_directory(block)
    pointers = {
        tag: struct.unpack(order + "8xI", entry)[0]
        for entry in entries
        if (tag := entry_tag(entry, order)) in (EXIF_IFD, GPS_IFD)
    }
    directories = dict(pointers)
    exif_entries = _entry_starts(block, order, pointers[EXIF_IFD]) if EXIF_IFD in pointers else None
    for at in exif_entries or ():
        if struct.unpack_from(order + "H", block, at)[0] == INTEROP_IFD:
            directories[INTEROP_IFD] = struct.unpack_from(order + "I", block, at + 8)[0]
    for directory, start in directories.items():
        for at in _entry_starts(block, order, start) or ():
            tag, kind, count, value = struct.unpack_from(order + "HHII", block, at)
            standard = _STANDARD_TYPES[directory].get(tag)
            if (kind, standard) not in _SAME_BYTES:
                continue
            if standard == SRATIONAL:  # its numbers lie apart (8 bytes each); none at all is damage
                numbers = block[value : value + 8 * count]
                if (
                    not count
                    or len(numbers) != 8 * count
                    or max(struct.unpack(f"{order}{2 * count}I", numbers)) >= 2**31
                ):
                    continue
            struct.pack_into(order + "H", block, at + 2, standard)
    return EXIF_HEADER + bytes(block)


def first_directory(block: bytes | bytearray) -> tuple[str, int, list[bytes]]:
    """A TIFF block's byte order ("<" or ">"), and the offset and 12-byte entries of its first directory.
    Raises where these are not all in the block (the next directory's offset after them may be missing, as
    some writers leave it out of a block that ends with the directory)."""
    order = BYTE_ORDERS[bytes(block[:4])]
    (start,) = struct.unpack_from(order + "I", block, 4)
    starts = _entry_starts(block, order, start)
    if starts is None:
        raise ValueError("the first directory is not all in the block")
    return order, start, [bytes(block[at : at + 12]) for at in starts]


def _entry_starts(block: bytes | bytearray, order: str, start: int) -> range | None:
    """Where each 12-byte entry of the directory at offset ``start`` begins; None where the directory's count
    and entries are not all in the block (past the header)."""
    if start < 8 or start + 2 > len(block):
        return None
    (count,) = struct.unpack_from(order + "H", block, start)
    starts = entries_at(start, count)
    return starts if starts.stop <= len(block) else None


def entries_at(start: int, count: int) -> range:
    """Where each 12-byte entry of a directory of ``count`` entries at offset ``start`` begins; the range's
    stop is where the next directory's offset is."""
    return range(start + 2, start + 2 + 12 * count, 12)


# Bytes per value of each TIFF field type; and the tags whose value is where another directory starts.
TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_DIRECTORY_POINTERS = frozenset({EXIF_IFD, GPS_IFD, INTEROP_IFD})


def in_block(entry: bytes, order: str, length: int) -> bool:
    """Whether what a directory entry points to (its value, where it is not held in the entry; the directory
    it points to) lies within an EXIF block of ``length`` bytes. A TIFF output puts its own directory and
    pixels after the block, where a damaged entry's value would otherwise be read."""
    tag, kind, count, value = struct.unpack(order + "HHII", entry)
    if tag in _DIRECTORY_POINTERS:
        return value < length
    size = TIFF_TYPE_SIZES.get(kind, 0) * count
    return 0 < size <= 4 or (size > 4 and value + size <= length)


def entry_tag(entry: bytes | bytearray, order: str) -> int:
    return struct.unpack_from(order + "H", entry)[0]
