"""How messages list and count things, show control characters, quote what a command to copy gives, and read
a number typed on a command line."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Sequence

GIB = 2**30


def gibibytes(size: float, digits: int = 1) -> str:
    """``size`` bytes in GiB, to ``digits`` decimals, with thousands separated; past a million GiB (a typing
    slip in a batch or crop size), in scientific notation."""
    value = size / GIB
    return f"{value:,.{digits}f} GiB" if value < 1e6 else f"{value:.1e} GiB"


# The characters a word may hold and be read as itself by cmd and PowerShell alike, unquoted.
WINDOWS_PLAIN = re.compile(r"[\w@+=:,./\\-]+")


def shell_word(value: object) -> str:
    """A path or value as a command to copy from a message must give it: quoted where the shell would split
    or expand it (a folder with a space, an &); on Windows in double quotes, which cmd and PowerShell both
    take (cmd keeps single quotes as part of the word)."""
    text = str(value)
    if sys.platform != "win32":
        return shlex.quote(text)
    if WINDOWS_PLAIN.fullmatch(text):
        return text
    # as Windows programs read their command line: a quote in the word escaped (\"), and the backslashes
    # before it, or before the closing quote, doubled
    escaped = re.sub(r'(\\*)"', r'\1\1\\"', text)
    return '"' + re.sub(r"(\\+)$", r"\1\1", escaped) + '"'


def in_words(items: Sequence[str], conjunction: str) -> str:
    """'a, b and c'; 'a'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def listed(items: Sequence[str], shown: int = 3, separator: str = ", ") -> str:
    """'a, b, c, and 2 more': the first ``shown`` items, then how many more there are."""
    more = len(items) - shown
    return separator.join(items[:shown]) + (f"{separator}and {more} more" if more > 0 else "")


def plural(noun: str, count: int) -> str:
    """The noun as it goes with ``count``: 'pair' for one, 'pairs' for none or several."""
    return noun if count == 1 else noun + "s"


def counted(count: int, noun: str) -> str:
    """'1 pair', '3 pairs'."""
    return f"{count} {plural(noun, count)}"


def duration(seconds: float) -> str:
    """A time taken, in the unit that reads best as rounded: ``42.3 s``, ``12.5 min``, ``3.2 h``."""
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    if round(seconds / 60, 1) < 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def typed_number(text: str) -> int | None:
    """ASCII digits as the whole number they write; None for anything else (a sign, a space, a full-width
    digit or ², which ``str.isdigit`` takes) and for more digits than Python converts (4,300)."""
    if not (text.isascii() and text.isdigit()):
        return None
    try:
        return int(text)
    except ValueError:
        return None


# Control characters (a newline or an escape sequence in a file name or a typed value) shown as escapes, so
# that a message stays one line and cannot move the cursor or colour the terminal, and a figure's title one
# line of its strip; and the bytes of a file name that are not UTF-8, which Python holds as lone surrogates
# (U+DC80 to U+DCFF, PEP 383) that a terminal cannot show.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\udc80-\udcff]")


def visible(text: str) -> str:
    """``text`` with its control characters written as Python writes them (a\\nb, \\x1b[31m), and a file
    name's bytes that are not UTF-8 as the bytes they are: caf\\xe9.jpg."""
    return _CONTROL.sub(lambda match: _escape(match[0]), text)


def _escape(character: str) -> str:
    if "\udc80" <= character <= "\udcff":  # the byte that os.fsdecode could not decode
        return f"\\x{ord(character) - 0xDC00:02x}"
    return repr(character)[1:-1]
