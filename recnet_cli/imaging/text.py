"""A photo's text: a PNG's text chunks (Title, Author, Description, Copyright, Comment: tEXt, zTXt, iTXt)
and a JPEG's comments (COM segments). Read as the file holds them; an output keeps what its format has a
place for: a PNG all of it (a JPEG's comment as its Comment text, as ImageMagick and ExifTool have it), a
JPEG its comments (a PNG's Comment text among them); the rest is named by a note."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from recnet_cli import __version__

PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")
COMMENT = b"COM"  # a JPEG's comment segment, as (COMMENT, its bytes) among the text
COMMENT_KEYWORD = "Comment"
_MAX_COMMENT_BYTES = 65533  # a JPEG segment's data: 65,535 bytes less its length
# A PNG's text that is not copied as text: metadata in hex (ImageMagick's and Krita's "Raw profile type
# exif", xmp, icc, iptc, 8bim: recnet carries EXIF, XMP and ICC profiles in chunks of their own), the XMP
# packet (carried so too), and ImageMagick's record of the file's own times (it writes them anew for each
# file it writes).
_RAW_PROFILE = "Raw profile type "
_NOT_COPIED = frozenset({"XML:com.adobe.xmp", "date:create", "date:modify", "date:timestamp"})
# The program that made the file: where a photo's text names one, a PNG output names recnet instead, as
# photo editors do on export (as EXIF's Software and XMP's CreatorTool are changed where a photo has them).
_SOFTWARE_CHUNK = (b"tEXt", f"Software\0recnet {__version__}".encode())
Text = tuple[tuple[bytes, bytes], ...]  # (chunk type or COMMENT, data) in the file's order


def keyword(kind: bytes, data: bytes) -> str:
    """What a piece of text is named by: a PNG chunk's keyword ("Title"), or "Comment" for a JPEG's."""
    return COMMENT_KEYWORD if kind == COMMENT else data.split(b"\0", 1)[0].decode("latin-1")


def copied_text(chunks: Iterable[tuple[bytes, bytes]]) -> Text:
    """The text an output may copy of the text chunks or comments a photo's file holds: none that is empty,
    nor what is not text (``_NOT_COPIED``, ``_RAW_PROFILE``)."""
    return tuple((kind, data) for kind, data in chunks if _is_copied(kind, data))


def _is_copied(kind: bytes, data: bytes) -> bool:
    if kind == COMMENT:
        return bool(data)
    name = keyword(kind, data)
    return name not in _NOT_COPIED and not name.startswith(_RAW_PROFILE) and _png_text_value(kind, data) != ""


def text_for(text: Text, output_format: str) -> tuple[Text, list[str]]:
    """The text an output in ``output_format`` holds, in its own terms (PNG chunks; a JPEG's comments, as
    (COMMENT, bytes)), and the keyword of each piece it cannot hold ("Comment" for a comment). A PNG's
    Software text, where the photo has one, names recnet."""
    placed, left = [], []
    for kind, data in text:
        if kind in PNG_TEXT and keyword(kind, data) == "Software":
            placed += [_SOFTWARE_CHUNK] * (output_format == "PNG")
        elif output_format == "PNG":
            placed.append(_as_png_chunk(kind, data))
        elif output_format == "JPEG" and (comment := _as_comment(kind, data)) is not None:
            placed.append((COMMENT, comment))
        else:
            left.append(keyword(kind, data))
    return tuple(placed), left


def _as_png_chunk(kind: bytes, data: bytes) -> tuple[bytes, bytes]:
    """A text chunk as it is, or a JPEG's comment as a Comment chunk: tEXt where its text is Latin-1 (PNG's
    tEXt), iTXt (UTF-8) otherwise."""
    if kind != COMMENT:
        return kind, data
    comment = _decoded_comment(data).replace("\0", "")
    try:
        return b"tEXt", f"{COMMENT_KEYWORD}\0{comment}".encode("latin-1")
    except UnicodeEncodeError:
        return b"iTXt", f"{COMMENT_KEYWORD}\0\0\0\0\0{comment}".encode()


def _as_comment(kind: bytes, data: bytes) -> bytes | None:
    """A JPEG comment of a JPEG's comment or of a PNG's Comment text (in UTF-8), where it fits a segment;
    None for other text."""
    if kind != COMMENT:
        value = _png_text_value(kind, data) if keyword(kind, data) == COMMENT_KEYWORD else None
        data = b"" if value is None else value.encode()
    return data if 0 < len(data) <= _MAX_COMMENT_BYTES else None


def _decoded_comment(data: bytes) -> str:
    """A JPEG comment's text: UTF-8, as most programs now write it, or else Latin-1."""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _png_text_value(kind: bytes, data: bytes) -> str | None:
    """The text of a tEXt, zTXt or iTXt chunk; None where it cannot be read (damaged compressed text)."""
    _, _, rest = data.partition(b"\0")
    try:
        if kind == b"tEXt":
            return rest.decode("latin-1")
        if kind == b"zTXt":
            return zlib.decompress(rest[1:]).decode("latin-1")
        compressed, rest = rest[:1] == b"\1", rest[2:]  # the flag and method, then language and keyword
        value = rest.split(b"\0", 2)[2]
        return (zlib.decompress(value) if compressed else value).decode()
    except (zlib.error, IndexError, UnicodeDecodeError):
        return None
