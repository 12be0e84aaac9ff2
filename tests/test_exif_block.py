"""Editing an EXIF block in place: every byte but the edited entries stays where it was."""

from __future__ import annotations

import struct

import pytest

from recnet_cli.exif_block import EXIF_HEADER, ORIENTATION, edited_exif, entry_tag, first_directory, in_block

MAKE, SOFTWARE, EXIF_IFD = 0x010F, 0x0131, 0x8769


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


def test_a_block_whose_first_directory_runs_past_its_end_is_refused() -> None:
    with pytest.raises(ValueError, match="not all in the block"):
        first_directory(block("<")[:40])
    assert first_directory(block("<")[:-4])[2]  # without the next directory's offset it is whole


def test_an_entry_points_inside_the_block_or_holds_its_value() -> None:
    def entry(tag: int, kind: int, count: int, value: int) -> bytes:
        return struct.pack("<HHII", tag, kind, count, value)

    assert in_block(entry(ORIENTATION, 3, 1, 1), "<", 30)  # held in the entry
    assert in_block(entry(MAKE, 2, 7, 8), "<", 30) and not in_block(entry(MAKE, 2, 7, 28), "<", 30)
    assert in_block(entry(EXIF_IFD, 4, 1, 20), "<", 30) and not in_block(entry(EXIF_IFD, 4, 1, 30), "<", 30)
    assert not in_block(entry(MAKE, 99, 7, 8), "<", 30)  # a type TIFF does not know
