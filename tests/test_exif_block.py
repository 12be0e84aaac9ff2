"""Editing an EXIF block in place: every byte but the edited entries stays where it was."""

from __future__ import annotations

import dataclasses
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from recnet_cli.imaging import read_photo, write_photo
from recnet_cli.imaging.exif_block import (
    EXIF_HEADER,
    EXIF_IFD,
    GPS_IFD,
    INTEROP_IFD,
    LONG,
    ORIENTATION,
    PIXEL_X_DIMENSION,
    PIXEL_Y_DIMENSION,
    SHORT,
    edited_exif,
    entry_tag,
    first_directory,
    in_block,
    sized_exif,
    turned_resolution,
    with_software,
    with_standard_types,
)

MAKE, SOFTWARE, EXPOSURE_TIME = 0x010F, 0x0131, 0x829A
EXIFTOOL = shutil.which("exiftool")
X_RESOLUTION, Y_RESOLUTION = 0x011A, 0x011B


def block(order: str) -> bytes:
    """A header, Make's value out of line, then IFD0 (Make, Orientation 6, Software, the Exif pointer) and
    the offset of IFD1 (a thumbnail's directory) after it."""
    mark = {"<": b"II*\0", ">": b"MM\0*"}[order]
    make = b"Camera\0\0"
    ifd0 = struct.pack(order + "H", 4)
    ifd0 += struct.pack(order + "HHII", MAKE, 2, 7, 8)
    ifd0 += struct.pack(order + "HHIH2x", ORIENTATION, 3, 1, 6)
    ifd0 += struct.pack(order + "HHI4s", SOFTWARE, 2, 4, b"abc\0")
    ifd0 += struct.pack(order + "HHII", EXIF_IFD, 4, 1, 8)
    ifd0 += struct.pack(order + "I", 200)  # IFD1
    return mark + struct.pack(order + "I", 8 + len(make)) + make + ifd0


@pytest.mark.parametrize("order", ["<", ">"])
def test_an_edit_changes_the_directory_in_place_and_moves_nothing(order: str) -> None:
    original = block(order)
    edited = edited_exif(EXIF_HEADER + original, frozenset({SOFTWARE})).removeprefix(EXIF_HEADER)
    assert len(edited) == len(original) and edited[:16] == original[:16]  # header and Make's value
    found_order, start, entries = first_directory(edited)
    assert (found_order, start) == (order, 16)
    assert [entry_tag(entry, order) for entry in entries] == [MAKE, ORIENTATION, EXIF_IFD]
    assert struct.unpack_from(order + "H", entries[1], 8) == (1,)  # upright now
    end = start + 2 + 12 * 3
    assert edited[end : end + 4] == bytes(4)  # no link to the thumbnail of the uncorrected photo
    assert edited[end + 4 :] == bytes(len(original) - end - 4)  # where the left-out entry was


def test_a_block_whose_writer_repeated_its_header_is_edited_as_pillow_reads_it() -> None:
    # some writers put "Exif\0\0" twice before the TIFF header: the block is edited all the same
    twice = EXIF_HEADER * 2 + block("<")
    assert edited_exif(twice, frozenset({SOFTWARE})) == edited_exif(
        EXIF_HEADER + block("<"), frozenset({SOFTWARE})
    )
    assert with_software(twice, "recnet 0.1.0") == with_software(EXIF_HEADER + block("<"), "recnet 0.1.0")


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("software", ["recnet 0.1.0", "abc"])  # a name held apart, one held in the entry
def test_software_is_named_in_a_directory_written_again_at_the_end(order: str, software: str) -> None:
    # The block's Software ("abc", in its entry) has no room for a name held apart; and where it is held
    # apart (Lightroom's), none for one held in the entry
    original = block(order) if len(software) > 3 else with_software(EXIF_HEADER + block(order), "x" * 20)
    original = original.removeprefix(EXIF_HEADER)
    named = with_software(EXIF_HEADER + original, software).removeprefix(EXIF_HEADER)
    assert named[8 : len(original)] == original[8:]  # nothing moved: only the header's link changed
    found_order, start, entries = first_directory(named)
    assert found_order == order and start >= len(original) and start % 2 == 0
    assert [entry_tag(entry, order) for entry in entries] == [MAKE, ORIENTATION, SOFTWARE, EXIF_IFD]
    assert entries[:2] == first_directory(original)[2][:2] and entries[3] == first_directory(original)[2][3]
    kind, count, value = struct.unpack(order + "2xHII", entries[2])
    held = entries[2][8:] if count <= 4 else named[value : value + count]
    assert (kind, held[:count]) == (2, software.encode() + b"\0")  # ASCII, ended by a NUL
    assert named[start + 2 + 12 * 4 :] == bytes(4)  # no next directory (the thumbnail's)


@pytest.mark.parametrize("order", ["<", ">"])
def test_software_with_room_for_the_name_is_written_over_so_a_photo_corrected_again_keeps_its_size(
    order: str,
) -> None:
    # Each pass wrote the directory again at the block's end: 140 bytes more each time a recnet output was
    # corrected again (5 passes, 5 copies of "recnet 0.1.0")
    once = with_software(EXIF_HEADER + block(order), "recnet 0.1.0")
    twice = with_software(once, "recnet 0.1.0")
    assert twice == once
    longer = with_software(EXIF_HEADER + block(order), "Adobe Photoshop Lightroom Classic 13.0 (Windows)")
    over = with_software(longer, "recnet 0.1.0").removeprefix(EXIF_HEADER)
    assert len(over) == len(longer) - len(EXIF_HEADER)  # written over, nothing added
    _, start, entries = first_directory(over)
    kind, count, value = struct.unpack(order + "2xHII", entries[2])
    assert (kind, count, over[value : value + 49]) == (2, 13, b"recnet 0.1.0".ljust(49, b"\0"))
    assert over[start + 2 + 12 * 4 : start + 2 + 12 * 4 + 4] == bytes(4)  # the thumbnail is unlinked still
    # a damaged EXIF whose Software points at its own header: written again, not over the header
    damaged = bytearray(longer.removeprefix(EXIF_HEADER))
    software_entry = first_directory(damaged)[1] + 2 + 12 * 2
    struct.pack_into(order + "I", damaged, software_entry + 8, 0)
    rewritten = with_software(EXIF_HEADER + bytes(damaged), "recnet 0.1.0").removeprefix(EXIF_HEADER)
    assert rewritten[:8] == damaged[:4] + rewritten[4:8] and len(rewritten) > len(damaged)
    assert first_directory(rewritten)[0] == order
    in_entry = with_software(EXIF_HEADER + block(order), "ab").removeprefix(EXIF_HEADER)  # over "abc"
    assert len(in_entry) == len(block(order))
    (*_, software), link = first_directory(in_entry)[2][:3], in_entry[-4:]  # the block ends with the link
    assert (software[2:8], software[8:], link) == (struct.pack(order + "HI", 2, 3), b"ab\0\0", bytes(4))


def test_a_directory_written_again_after_a_block_of_odd_length_starts_on_a_word_boundary() -> None:
    original = block("<") + b"x"  # its last value is a byte: TIFF starts directories on a word boundary
    named = with_software(EXIF_HEADER + original, "recnet 0.1.0").removeprefix(EXIF_HEADER)
    _, start, entries = first_directory(named)
    assert start % 2 == 0 and named[8 : len(original)] == original[8:]
    _, count, value = struct.unpack("<2xHII", entries[2])
    assert named[value : value + count] == b"recnet 0.1.0\0"


def software_apart(order: str, at: int = 26, tail: int = 20) -> bytes:
    """A header, then at 8 a directory of one entry, Software (20 bytes held apart, said to be ``at``), and
    its link; the camera's name at 26, then ``tail`` bytes of other values."""
    mark = {"<": b"II*\0", ">": b"MM\0*"}[order]
    directory = struct.pack(order + "HHHII", 1, SOFTWARE, 2, 20, at) + bytes(4)
    return mark + struct.pack(order + "I", 8) + directory + b"Camera Firmware 1.0\0" + bytes(tail)


@pytest.mark.parametrize("order", ["<", ">"])
def test_software_whose_value_ends_the_block_is_written_over(order: str) -> None:
    original = software_apart(order, tail=0)
    named = with_software(EXIF_HEADER + original, "recnet 0.1.0").removeprefix(EXIF_HEADER)
    name = b"recnet 0.1.0".ljust(20, b"\0")
    assert named == original[:14] + struct.pack(order + "I", 13) + original[18:26] + name


@pytest.mark.parametrize("at", [10, 22])  # its own entry, the directory's link
def test_a_software_value_said_to_lie_in_its_own_directory_is_written_again_not_over_it(at: int) -> None:
    damaged = software_apart("<", at=at)
    named = with_software(EXIF_HEADER + damaged, "recnet 0.1.0").removeprefix(EXIF_HEADER)
    assert named[8 : len(damaged)] == damaged[8:]
    _, _, (entry,) = first_directory(named)
    _, count, value = struct.unpack("<2xHII", entry)
    assert named[value : value + count] == b"recnet 0.1.0\0"


def test_a_block_whose_first_directory_runs_past_its_end_is_refused() -> None:
    with pytest.raises(ValueError, match="not all in the block"):
        first_directory(block("<")[:40])
    with pytest.raises(ValueError, match="not all in the block"):  # nor one said to start in the header
        first_directory(b"II*\0" + struct.pack("<I", 6) + block("<")[8:])
    assert first_directory(block("<")[:-4])[2]  # without the next directory's offset it is whole


def test_an_entry_points_inside_the_block_or_holds_its_value() -> None:
    def entry(tag: int, kind: int, count: int, value: int) -> bytes:
        return struct.pack("<HHII", tag, kind, count, value)

    assert in_block(entry(ORIENTATION, 3, 1, 1), "<", 30)  # held in the entry
    assert in_block(entry(MAKE, 2, 7, 8), "<", 30) and not in_block(entry(MAKE, 2, 7, 28), "<", 30)
    assert in_block(entry(MAKE, 2, 7, 23), "<", 30) and not in_block(
        entry(MAKE, 2, 7, 24), "<", 30
    )  # to the end
    assert in_block(entry(EXIF_IFD, 4, 1, 20), "<", 30) and not in_block(entry(EXIF_IFD, 4, 1, 30), "<", 30)
    assert not in_block(entry(MAKE, 99, 7, 8), "<", 30)  # a type TIFF does not know
    assert in_block(entry(X_RESOLUTION, 5, 1, 22), "<", 30) and not in_block(
        entry(X_RESOLUTION, 5, 1, 26), "<", 30
    )  # a RATIONAL is 8 bytes: never held in the entry


def resolution_block(*tags: int) -> bytes:
    """A header, then IFD0 of these resolution tags (RATIONALs held apart: 72/1 across, 300/1 down) and its
    link, then their values."""
    values_at = 8 + 2 + 12 * len(tags) + 4
    ifd0 = struct.pack("<H", len(tags))
    for index, tag in enumerate(tags):
        ifd0 += struct.pack("<HHII", tag, 5, 1, values_at + 8 * index)
    values = b"".join(struct.pack("<II", {X_RESOLUTION: 72, Y_RESOLUTION: 300}[tag], 1) for tag in tags)
    return b"II*\0" + struct.pack("<I", 8) + ifd0 + bytes(4) + values


def test_a_picture_turned_upright_trades_its_resolution_across_and_down() -> None:
    both = resolution_block(X_RESOLUTION, Y_RESOLUTION)
    turned = turned_resolution(EXIF_HEADER + both).removeprefix(EXIF_HEADER)
    _, _, entries = first_directory(turned)
    values = {
        entry_tag(entry, "<"): struct.unpack_from("<II", turned, struct.unpack("<8xI", entry)[0])
        for entry in entries
    }
    assert values == {X_RESOLUTION: (300, 1), Y_RESOLUTION: (72, 1)} and len(turned) == len(both)
    across = resolution_block(X_RESOLUTION)  # no YResolution to trade with: kept as it is, not an error
    assert turned_resolution(EXIF_HEADER + across) == EXIF_HEADER + across


def sized_block(order: str, exif_ifd_at: int = 38) -> bytes:
    """A header, IFD0 (Orientation 6, the Exif pointer), then at 38 the Exif directory of a 6000 x 4000
    picture as stored (ExposureTime's value out of line, PixelXDimension a SHORT, PixelYDimension a LONG)."""
    mark = {"<": b"II*\0", ">": b"MM\0*"}[order]
    ifd0 = struct.pack(order + "H", 2)
    ifd0 += struct.pack(order + "HHIH2x", ORIENTATION, SHORT, 1, 6)
    ifd0 += struct.pack(order + "HHII", EXIF_IFD, LONG, 1, exif_ifd_at) + bytes(4)
    exif_ifd = struct.pack(order + "H", 3)
    exif_ifd += struct.pack(order + "HHII", EXPOSURE_TIME, 5, 1, 38 + 2 + 3 * 12 + 4)
    exif_ifd += struct.pack(order + "HHIH2x", PIXEL_X_DIMENSION, SHORT, 1, 6000)
    exif_ifd += struct.pack(order + "HHII", PIXEL_Y_DIMENSION, LONG, 1, 4000) + bytes(4)
    return mark + struct.pack(order + "I", 8) + ifd0 + exif_ifd + struct.pack(order + "II", 1, 250)


def exif_entries(block: bytes, order: str) -> list[tuple[int, int, int]]:
    """(tag, type, value) of the entries of ``sized_block``'s Exif directory, the value read as its type."""
    entries = []
    for at in range(40, 40 + 3 * 12, 12):
        tag, kind = struct.unpack_from(order + "HH", block, at)
        entries.append(
            (tag, kind, struct.unpack_from(order + ("H" if kind == SHORT else "I"), block, at + 8)[0])
        )
    return entries


@pytest.mark.parametrize("order", ["<", ">"])
def test_the_exif_directory_says_the_size_of_the_upright_picture(order: str) -> None:
    original = sized_block(order)
    sized = sized_exif(EXIF_HEADER + original, 4000, 6000).removeprefix(EXIF_HEADER)
    assert exif_entries(sized, order) == [
        (EXPOSURE_TIME, 5, 80),
        (PIXEL_X_DIMENSION, SHORT, 4000),
        (PIXEL_Y_DIMENSION, LONG, 6000),
    ]
    changed = {at for at, (was, now) in enumerate(zip(original, sized, strict=True)) if was != now}
    assert changed <= {*range(60, 64), *range(72, 76)}  # the two entries' values, nothing else
    wide = sized_exif(EXIF_HEADER + original, 70000, 6000).removeprefix(EXIF_HEADER)
    assert exif_entries(wide, order)[1] == (PIXEL_X_DIMENSION, LONG, 70000)  # past what a SHORT holds


@pytest.mark.parametrize(("width", "kind"), [(65535, SHORT), (65536, LONG)])
def test_a_short_pixel_dimension_becomes_a_long_only_past_what_a_short_holds(width: int, kind: int) -> None:
    sized = sized_exif(EXIF_HEADER + sized_block("<"), width, 6000).removeprefix(EXIF_HEADER)
    assert exif_entries(sized, "<")[1] == (PIXEL_X_DIMENSION, kind, width)


def test_an_exif_directory_past_the_block_is_left_as_it_is() -> None:
    damaged = sized_block("<", exif_ifd_at=200)
    assert sized_exif(EXIF_HEADER + damaged, 4000, 6000) == EXIF_HEADER + damaged


COMPONENTS, BRIGHTNESS, EXPOSURE_BIAS, GPS_PROCESSING_METHOD = 0x9101, 0x9203, 0x9204, 0x001B
INTEROP_VERSION = 0x0002
BYTE, RATIONAL, UNDEFINED, SRATIONAL = 1, 5, 7, 10


def entry_types(exif: bytes) -> dict[tuple[int, int], int]:
    """(directory, tag) -> type of each entry of an EXIF block's Exif and GPS directories."""
    tiff = exif.removeprefix(EXIF_HEADER)
    order, _, entries = first_directory(tiff)
    pointers = {entry_tag(entry, order): struct.unpack(order + "8xI", entry)[0] for entry in entries}
    types = {}
    for directory in (EXIF_IFD, GPS_IFD):
        (count,) = struct.unpack_from(order + "H", tiff, pointers[directory])
        for at in range(pointers[directory] + 2, pointers[directory] + 2 + 12 * count, 12):
            tag, kind = struct.unpack_from(order + "HH", tiff, at)
            types[directory, tag] = kind
    return types


def camera_tags() -> Image.Exif:
    """EXIF tags as Pillow reads them from a TIFF: values without the types they were written with."""
    exif = Image.Exif()
    exif[MAKE] = "Camera"
    exif_directory = exif.get_ifd(EXIF_IFD)
    exif_directory[COMPONENTS] = b"\x01\x02\x03\x00"
    exif_directory[EXPOSURE_BIAS] = TiffImagePlugin.IFDRational(0, 1)
    exif_directory[BRIGHTNESS] = TiffImagePlugin.IFDRational(3_000_000_000, 1)  # no SRATIONAL holds it
    exif.get_ifd(GPS_IFD)[GPS_PROCESSING_METHOD] = b"ASCII\0\0\0GPS"
    return exif


def test_a_block_made_anew_gets_the_types_the_standard_gives_its_tags() -> None:
    # Pillow writes an UNDEFINED value it does not know as BYTEs, and a rational of no sign as RATIONAL
    made = camera_tags().tobytes()
    assert entry_types(made)[EXIF_IFD, COMPONENTS] == BYTE
    assert entry_types(made)[EXIF_IFD, EXPOSURE_BIAS] == RATIONAL
    standard = with_standard_types(made)
    assert entry_types(standard) == entry_types(made) | {
        (EXIF_IFD, COMPONENTS): UNDEFINED,
        (EXIF_IFD, EXPOSURE_BIAS): SRATIONAL,
    }
    assert entry_types(standard)[EXIF_IFD, BRIGHTNESS] == RATIONAL  # kept: as signed it would be negative
    changed = [at for at, (old, new) in enumerate(zip(made, standard, strict=True)) if old != new]
    assert len(changed) == 2  # a byte of each entry's type, and nothing else


@pytest.mark.parametrize(
    ("numbers", "kind"), [((2**31 - 1, 1), SRATIONAL), ((2**31, 1), RATIONAL), ((1, 2**31), RATIONAL)]
)
def test_a_rational_becomes_signed_only_where_a_signed_one_holds_its_numbers(
    numbers: tuple[int, int], kind: int
) -> None:
    tags = camera_tags()
    tags.get_ifd(EXIF_IFD)[EXPOSURE_BIAS] = TiffImagePlugin.IFDRational(*numbers)
    assert entry_types(with_standard_types(tags.tobytes()))[EXIF_IFD, EXPOSURE_BIAS] == kind


def test_an_entry_whose_type_has_other_bytes_than_the_standard_one_keeps_its_type() -> None:
    tags = camera_tags()
    tags.get_ifd(EXIF_IFD)[COMPONENTS] = (1, 2, 3, 0)  # 4 SHORTs, 8 bytes: as UNDEFINED it would read 4
    made = tags.tobytes()
    assert entry_types(made)[EXIF_IFD, COMPONENTS] == SHORT
    assert entry_types(with_standard_types(made))[EXIF_IFD, COMPONENTS] == SHORT


def test_an_interoperability_version_written_as_bytes_gets_its_standard_type() -> None:
    tags = Image.Exif()
    tags.get_ifd(EXIF_IFD)[INTEROP_IFD] = {INTEROP_VERSION: b"0100"}
    standard = tags.tobytes()
    order = "<" if standard.removeprefix(EXIF_HEADER).startswith(b"II") else ">"
    made = bytearray(standard)
    at = made.index(struct.pack(order + "HH", INTEROP_VERSION, UNDEFINED))
    made[at + 2 : at + 4] = struct.pack(order + "H", BYTE)  # as a writer that does not know the tag types it
    assert with_standard_types(bytes(made)) == standard


def test_a_tiff_photo_s_exif_keeps_the_standard_types(tmp_path) -> None:
    # a TIFF as Pillow would write its EXIF (recnet's TIFF encoder copies the block's entries as they are)
    path = tmp_path / "camera.tif"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    photo = dataclasses.replace(read_photo(path), exif=camera_tags().tobytes())
    write_photo(path, photo.pixels, photo)
    assert entry_types(read_photo(path).exif) == entry_types(with_standard_types(camera_tags().tobytes()))


def test_a_rational_of_no_numbers_is_left_as_it_is() -> None:
    # damage: an ExposureBiasValue of count 0 (max() of no numbers raised, and the EXIF was lost)
    header = b"II*\0" + struct.pack("<I", 8)
    first = struct.pack("<HHHII", 1, EXIF_IFD, LONG, 1, 26) + bytes(4)
    exif_directory = struct.pack("<HHHII", 1, EXPOSURE_BIAS, RATIONAL, 0, 0) + bytes(4)
    damaged = EXIF_HEADER + header + first + exif_directory
    assert with_standard_types(damaged) == damaged


NIKON_PREVIEW = b"\xff\xd8 a 640 x 424 JPEG of the photo as it was \xff\xd9"


def nikon_block(order: str, maker: bytes = b"Nikon\0\x02\x10\0\0") -> bytes:
    """An EXIF block whose Exif directory holds a Nikon maker note: its header and TIFF header of its own,
    then its directory (MakerNoteVersion, the preview's directory, a tag after it), the preview's directory
    (where its JPEG starts, how long it is) and the JPEG, each at an offset counted from that TIFF header."""
    mark = {"<": b"II*\0", ">": b"MM\0*"}[order]
    note_directory = struct.pack(order + "H", 3)
    note_directory += struct.pack(order + "HHI4s", 0x0001, 7, 4, b"0210")
    note_directory += struct.pack(order + "HHII", 0x0011, 4, 1, 8 + 2 + 36 + 4)  # the preview's directory
    note_directory += struct.pack(order + "HHI4s", 0x0012, 7, 4, b"\x01\x02\x03\x04")
    note_directory += bytes(4)
    preview_at = 8 + len(note_directory) + 2 + 24 + 4
    preview = struct.pack(order + "H", 2)
    preview += struct.pack(order + "HHII", 0x0201, 4, 1, preview_at)
    preview += struct.pack(order + "HHII", 0x0202, 4, 1, len(NIKON_PREVIEW))
    preview += bytes(4)
    note = maker + mark + struct.pack(order + "I", 8) + note_directory + preview + NIKON_PREVIEW
    ifd0 = struct.pack(order + "H", 1) + struct.pack(order + "HHII", EXIF_IFD, 4, 1, 26) + bytes(4)
    exif_ifd = struct.pack(order + "H", 1) + struct.pack(order + "HHII", 0x927C, 7, len(note), 44) + bytes(4)
    return mark + struct.pack(order + "I", 8) + ifd0 + exif_ifd + note


@pytest.mark.parametrize("order", ["<", ">"])
def test_a_nikon_maker_note_s_preview_of_the_uncorrected_photo_is_taken_out(order: str) -> None:
    # ExifTool and photo browsers that read embedded previews showed the photo as it was, as the thumbnail
    # recnet leaves out would have
    original = nikon_block(order)
    edited = edited_exif(EXIF_HEADER + original, frozenset()).removeprefix(EXIF_HEADER)
    assert len(edited) == len(original) and NIKON_PREVIEW not in edited
    assert edited.endswith(bytes(len(NIKON_PREVIEW)))
    directory = 44 + 10 + 8  # the maker note's, after its header and its TIFF header
    entries = [struct.unpack_from(order + "HHI4s", edited, directory + 2 + 12 * at) for at in range(2)]
    assert struct.unpack_from(order + "H", edited, directory) == (2,)
    kept = [(0x0001, b"0210"), (0x0012, b"\x01\x02\x03\x04")]  # MakerNoteVersion, the tag after the preview's
    assert [(tag, value) for tag, _, _, value in entries] == kept
    assert edited[directory + 2 + 24 : directory + 2 + 36 + 4] == bytes(16)  # no next directory
    assert edited[:directory] == original[:directory]


@pytest.mark.parametrize(
    "note",
    [
        pytest.param(lambda block: block.replace(b"Nikon\0", b"Canon\0"), id="another-make"),
        pytest.param(lambda block: block[:-70], id="cut-short"),  # its preview's directory, and the JPEG
        pytest.param(lambda block: block[: -len(NIKON_PREVIEW) // 2], id="preview-cut-short"),
    ],
)
def test_another_maker_note_or_a_damaged_one_is_left_as_it_is(note) -> None:
    original = note(nikon_block("<"))
    edited = edited_exif(EXIF_HEADER + original, frozenset()).removeprefix(EXIF_HEADER)
    assert edited[26:] == original[26:]  # all but the first directory


def exiftool_tags(path: Path) -> str:
    """What ExifTool reads of a file, a line for each tag, with its group ("[PreviewIFD] ...")."""
    command = [str(EXIFTOOL), "-a", "-s", "-G1", str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(EXIFTOOL is None, reason="ExifTool is not installed")
def test_exiftool_finds_no_preview_in_a_corrected_nikon_photo(tmp_path: Path) -> None:
    source = tmp_path / "nikon.jpg"
    Image.new("RGB", (16, 16), "grey").save(source, exif=EXIF_HEADER + nikon_block("<"))
    assert "PreviewImageLength" in exiftool_tags(source)
    photo = read_photo(source)
    write_photo(tmp_path / "out.jpg", photo.pixels, photo)
    written = exiftool_tags(tmp_path / "out.jpg")
    assert "Preview" not in written and "MakerNoteVersion" in written
