"""How messages list and count things."""

from __future__ import annotations

import sys

import pytest

from recnet_cli.wording import counted, duration, gibibytes, in_words, listed, plural, shell_word, visible


def test_lists_name_the_first_items_and_mark_the_rest() -> None:
    assert listed(["a"]) == "a"
    assert listed(["a", "b", "c"]) == "a, b, c"
    assert listed(["a", "b", "c", "d"]) == "a, b, c, and 1 more"
    assert listed(["a", "b", "c"], shown=2) == "a, b, and 1 more"
    assert listed(["a: x", "b: y", "c: z"], shown=2, separator="; ") == "a: x; b: y; and 1 more"
    assert listed(["a", "b"]) == "a, b"
    assert in_words(["JPEG"], "or") == "JPEG"
    assert in_words(["JPEG", "PNG", "TIFF"], "and") == "JPEG, PNG and TIFF"


def test_counts_take_the_plural_for_none_and_several() -> None:
    assert [counted(count, "pair") for count in (0, 1, 2)] == ["0 pairs", "1 pair", "2 pairs"]
    assert plural("key", 1) == "key" and plural("key", 3) == "keys"


def test_visible_shows_control_characters_and_undecodable_name_bytes_as_escapes() -> None:
    assert visible("a\nb \x1b[31mred\x7f") == "a\\nb \\x1b[31mred\\x7f"
    # a Latin-1 name (caf\xe9.jpg) reaches Python as a lone surrogate, printed as \udce9, which a terminal
    # cannot show and which names no byte of the file
    assert visible("caf\udce9.jpg") == "caf\\xe9.jpg" and visible("café ✓") == "café ✓"


def test_visible_shows_the_c1_control_characters_too() -> None:
    # U+009B is the one-character CSI some terminals take as the start of an escape sequence
    assert visible("a\x9b31mb\x85c") == "a\\x9b31mb\\x85c"


def test_a_size_is_said_in_gibibytes_and_a_size_past_a_million_of_them_in_scientific_notation() -> None:
    # a typing slip in a batch or crop size asks for more memory than any machine has
    assert gibibytes(2**30 * 1234.5) == "1,234.5 GiB"
    assert gibibytes(2**30 * 999_999) == "999,999.0 GiB"
    assert gibibytes(2**30 * 3e7) == "3.0e+07 GiB"


def test_a_duration_is_said_in_the_unit_that_reads_best() -> None:
    # a short training run said "in 0.0 min"
    assert [duration(s) for s in (0.04, 59.9, 59.96, 61, 3590, 3599, 3600 * 5.25)] == [
        "0.0 s",
        "59.9 s",
        "1.0 min",  # not "60.0 s"
        "1.0 min",
        "59.8 min",
        "1.0 h",  # not "60.0 min"
        "5.2 h",
    ]


@pytest.mark.parametrize(
    ("platform", "quoted"),
    [("linux", "'runs/my first'"), ("darwin", "'runs/my first'"), ("win32", '"runs/my first"')],
)
def test_a_word_to_copy_into_a_shell_is_quoted_as_its_shell_takes_it(
    monkeypatch: pytest.MonkeyPatch, platform: str, quoted: str
) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    assert shell_word("runs/my first") == quoted
    assert shell_word("runs/mine") == "runs/mine"
    if platform == "win32":  # cmd keeps single quotes as part of the word
        assert shell_word(r"C:\Users\ann\runs\first") == r"C:\Users\ann\runs\first"
        assert shell_word(r"C:\R&D\run") == r'"C:\R&D\run"'  # unquoted, cmd runs two commands
        assert shell_word("C:\\my runs\\") == r'"C:\my runs\\"'  # not \" : an escaped quote


def test_a_word_with_a_quote_is_quoted_for_windows_as_its_programs_read_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the quote escaped (\"), and the backslashes before it doubled, else they would escape each other
    monkeypatch.setattr(sys, "platform", "win32")
    assert shell_word('C:\\my "runs"') == r'"C:\my \"runs\""'
    assert shell_word('run\\"x') == r'"run\\\"x"'
