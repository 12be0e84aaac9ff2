"""The parts of photo files, walked as bytes: a PNG's chunks, a JPEG's segments before its scan. Pure
functions on bytes (or a file at a PNG's start)."""

from __future__ import annotations

import io
import mmap
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from recnet_cli.imaging.formats import PNG_SIGNATURE

_STANDALONE_MARKERS = frozenset({0x00, 0x01, *range(0xD0, 0xDA)})  # a stuffed 0, TEM, RST0 to RST7, SOI, EOI
_START_OF_SCAN = 0xDA
JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0 to SOF15: not DHT, JPG or DAC


def held_chunks(png: bytes) -> Iterator[tuple[bytes, int, int, bool]]:
    """The chunks a PNG held in memory holds whole, in order, up to one cut short: each one's type, where it
    starts (its length, then its type) and ends (past its CRC, 12 bytes more than its data), and whether its
    CRC is its data's."""
    view, stream = memoryview(png), io.BytesIO(png)
    for kind, length in png_chunks(stream):
        start = stream.tell() - 8
        end = start + 12 + length
        if end > len(png):
            return
        crc = struct.unpack_from(">I", png, end - 4)[0]
        yield kind, start, end, zlib.crc32(view[start + 4 : end - 4]) == crc


def png_chunks(file: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """The type and data length of each chunk of a PNG, in order, with ``file`` at its data (to be read)."""
    file.seek(len(PNG_SIGNATURE))
    while len(header := file.read(8)) == 8:
        length, kind = struct.unpack(">I4s", header)
        start = file.tell()
        yield kind, length
        file.seek(start + length + 4)  # past the chunk's data and CRC


def jpeg_segments(data: bytes | mmap.mmap) -> Iterator[tuple[int, int, int]]:
    """The marker of each of a JPEG's segments before its scan, where it starts and where it ends, found by
    walking them as Pillow does (past fill bytes and stray bytes between them)."""
    at = 2  # past the SOI marker
    while (at := data.find(b"\xff", at)) != -1 and at + 1 < len(data):
        marker = data[at + 1]
        if marker == _START_OF_SCAN:
            return
        if marker == 0xFF:  # a fill byte
            at += 1
            continue
        # a marker without a length (RSTn, SOI, EOI, TEM), or one with its length
        end = at + 2 + (0 if marker in _STANDALONE_MARKERS else int.from_bytes(data[at + 2 : at + 4], "big"))
        yield marker, at, end
        at = end
