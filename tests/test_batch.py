"""Finding inputs, naming outputs and running a batch past failures."""

import errno
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from conftest import as_recnet_wrote, skip_unless_marks_kept
from safetensors.numpy import save_file
from typer.testing import CliRunner

from recnet_cli import imaging, inputs
from recnet_cli.batch import (
    IN_FLIGHT_BYTES_PER_PIXEL,
    IN_FLIGHT_MEMORY_SHARE,
    Lane,
    Outcome,
    Summary,
    gpu_lane_depth,
    output_folder_problem,
    plan_outcomes,
    refusal,
    run_jobs,
    unattributable_outputs,
)
from recnet_cli.cli import app
from recnet_cli.evaluate import save_problem
from recnet_cli.imaging import ImageWriteError, write_rgb8
from recnet_cli.inputs import Unmatched, find_sources, parse_shard, pattern_base, take_shard
from recnet_cli.outputs import (
    Job,
    calibrated_model_problem,
    earlier_outputs,
    misnamed_output_folder,
    names_image_file,
    output_taken_as_folder,
    plan_jobs,
    sheet_problem,
    side_path,
)
from recnet_cli.train.data import list_photos
from recnet_cli.train.pairs import ImagePair, PairingError, data_notes, list_images
from recnet_cli.train.run_folder import TrainConfig, save_config


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    root = tmp_path / "shots"
    (root / "day" / "sub").mkdir(parents=True)
    for name in ["a.jpg", "b.PNG", "notes.txt", ".hidden.jpg", "day/c.tif", "day/sub/d.webp"]:
        (root / name).write_bytes(b"x")
    return root


def names(sources) -> list[str]:
    return [s.relative.as_posix() for s in sources]


def touch(folder: Path, *names: str) -> Path:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    return folder


def test_a_folder_yields_its_images_only(shots: Path) -> None:
    sources, missing = find_sources([str(shots)])
    assert names(sources) == ["a.jpg", "b.PNG"]
    assert missing == []


def test_jfif_and_jpe_files_are_jpegs_and_keep_their_extension(tmp_path: Path) -> None:
    for name in ["saved.jfif", "old.JPE"]:
        (tmp_path / name).write_bytes(b"x")
    sources, _ = find_sources([str(tmp_path)])
    jobs = plan_jobs(sources, None, suffix="_recnet")
    assert [(job.target.name, job.problem) for job in jobs] == [
        ("old_recnet.JPE", None),
        ("saved_recnet.jfif", None),
    ]


@pytest.mark.parametrize("platform", ["darwin", "win32", "linux"])
def test_outputs_differing_only_in_case_or_accent_form_clash_where_the_system_ignores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    # Sky.jpg and sky.png both write ..._recnet.jpg with --ext jpg: one file on APFS and NTFS; é decomposed
    # (as a macOS folder lists it) and composed are one name on APFS only; ß and ss two names everywhere
    monkeypatch.setattr(sys, "platform", platform)
    names = ["Sky.jpg", "sky.png", "cafe\u0301.jpg", "caf\u00e9.png", "Stra\u00dfe.jpg", "Strasse.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    sources, _ = find_sources([str(tmp_path / name) for name in names])
    jobs = plan_jobs(sources, None, suffix="_recnet", extension=".jpg")
    clashes = [job.source.name for job in jobs if job.problem and "would also be written for" in job.problem]
    expected = {"linux": [], "win32": ["sky.png"], "darwin": ["sky.png", "caf\u00e9.png"]}
    assert clashes == expected[platform]


def test_a_folder_with_images_is_not_walked_below_without_recursive(
    shots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hint for a folder without images walked every folder's whole tree (a photo library's)."""
    walks: list[bool] = []
    real = inputs.visible_files
    monkeypatch.setattr(
        inputs,
        "visible_files",
        lambda folder, recursive, *rest: walks.append(recursive) or real(folder, recursive),
    )
    sources, _ = find_sources([str(shots)])
    assert names(sources) == ["a.jpg", "b.PNG"] and walks == [False]


def test_recursive_keeps_relative_paths(shots: Path) -> None:
    sources, _ = find_sources([str(shots)], recursive=True)
    assert names(sources) == ["a.jpg", "b.PNG", "day/c.tif", "day/sub/d.webp"]


def test_recursive_walks_linked_folders_as_a_pattern_does_and_each_folder_once(tmp_path: Path) -> None:
    # A library that links in a folder from another drive; and links back up, which must not loop
    library = touch(tmp_path / "library", "home.jpg")
    touch(tmp_path / "external", "trip/beach.jpg")
    (library / "trip").symlink_to(tmp_path / "external" / "trip", target_is_directory=True)
    (library / "trip" / "up").symlink_to(library, target_is_directory=True)
    (library / "again").symlink_to(tmp_path / "external" / "trip", target_is_directory=True)
    assert names(find_sources([str(library)], recursive=True)[0]) == ["again/beach.jpg", "home.jpg"]
    touch(tmp_path / "top", "notes.txt")
    (tmp_path / "top" / "linked").symlink_to(tmp_path / "external", target_is_directory=True)
    _, (unmatched,) = find_sources([str(tmp_path / "top")])
    assert unmatched.reason == "no images in this folder (its sub-folders have some: add --recursive)"


def test_a_link_to_a_folder_above_the_one_named_is_not_walked(tmp_path: Path) -> None:
    # shots/up -> .. walked the whole folder above: train --photos shots trained on every image there
    shots = touch(tmp_path / "shots", "a.jpg", "day/b.jpg")
    touch(tmp_path, "elsewhere.jpg", "other/c.jpg")
    (shots / "up").symlink_to("..", target_is_directory=True)
    (shots / "day" / "top").symlink_to(tmp_path, target_is_directory=True)
    assert names(find_sources([str(shots)], recursive=True)[0]) == ["a.jpg", "day/b.jpg"]
    assert list_photos(shots) == [shots / "a.jpg", shots / "day" / "b.jpg"]


def test_a_folder_of_photos_to_learn_from_passes_over_recnets_outputs(tmp_path: Path) -> None:
    # `recnet correct photos/` then `recnet train --photos photos/` learnt the model's own corrections
    photos = touch(
        tmp_path / "photos", "a.jpg", "a_recnet.jpg", "a_explain.png", "day/b.jpg", "day/b_fixed.jpg"
    )
    skip_unless_marks_kept(photos)
    as_recnet_wrote(photos / "day" / "b_fixed.jpg")  # written with --suffix _fixed: known by its mark
    assert list_photos(photos) == [photos / "a.jpg", photos / "day" / "b.jpg"]
    (note,) = data_notes(photos, None, None)
    assert note == (
        "passed over 3 images that look like recnet's outputs, by mark or name "
        f"({photos / 'a_explain.png'}, {photos / 'a_recnet.jpg'}, {photos / 'day' / 'b_fixed.jpg'}): not the "
        "well-exposed photos needed"
    )
    assert data_notes(tmp_path / "photos" / "day", None, None) == [  # b.jpg's output, by its mark only
        f"passed over 1 image that looks like one of recnet's outputs, by mark or name "
        f"({photos / 'day' / 'b_fixed.jpg'}): not the well-exposed photos needed"
    ]


def test_a_double_star_pattern_walks_each_folder_once_past_links_back_up(tmp_path: Path) -> None:
    # glob's own ** follows every link back up again: two such links made its paths grow without end
    shots = touch(tmp_path / "shots", "top.jpg", "a/x.jpg", "a/b/y.jpg", ".hidden/z.jpg")
    for link in ("up1", "up2"):
        (shots / "a" / link).symlink_to("..", target_is_directory=True)
    pattern = str(shots / "**" / "*.jpg")
    assert names(find_sources([pattern])[0]) == ["a/b/y.jpg", "a/x.jpg", "top.jpg"]
    assert names(find_sources([str(shots / "**" / "b" / "*.jpg")])[0]) == ["a/b/y.jpg"]
    assert names(find_sources([str(shots / "*" / "**" / "y.jpg")])[0]) == ["a/b/y.jpg"]
    # A folder a link also reaches is found under either name, as glob finds it; hidden ones when named
    (shots / "a" / "latest").symlink_to("b", target_is_directory=True)
    for folder in ("b", "latest"):
        assert names(find_sources([str(shots / "**" / folder / "*.jpg")])[0]) == [f"a/{folder}/y.jpg"]
    assert names(find_sources([str(shots / "**" / ".hidden" / "*.jpg")])[0]) == [".hidden/z.jpg"]
    # Folders only, as glob has it, and the photos in them: every one but in hidden folders
    assert names(find_sources([str(shots / "**") + "/"])[0]) == ["a/b/y.jpg", "a/x.jpg", "top.jpg"]


def test_a_folder_that_cannot_be_read_fails_and_is_named(tmp_path: Path, unreadable_folders) -> None:
    shots = touch(tmp_path / "shots", "top.jpg", "2024/locked/a.jpg")
    locked_path = shots / "2024" / "locked"
    unreadable_folders.add(locked_path)
    locked = Unmatched(str(locked_path), "cannot read this folder: permission denied")
    for given in (str(shots), str(shots / "**" / "*.jpg")):
        sources, missing = find_sources([given], recursive=True)
        assert (names(sources), missing) == (["top.jpg"], [locked])
    assert find_sources([str(locked_path)]) == ([], [locked])


def test_a_link_to_nothing_is_found_and_fails_naming_its_target(tmp_path: Path) -> None:
    # A photo moved or deleted while a link to it stayed: it was left out without a word
    shots = touch(tmp_path / "shots", "a.jpg")
    (shots / "b.jpg").symlink_to(tmp_path / "moved" / "b.jpg")
    (shots / "notes.txt").symlink_to(tmp_path / "gone.txt")
    broken = f"a link to {tmp_path / 'moved' / 'b.jpg'}, which does not exist"
    for given in (str(shots), str(shots / "*.jpg"), str(shots / "**" / "*.jpg")):
        sources, missing = find_sources([given])
        assert (names(sources), missing) == (["a.jpg", "b.jpg"], [])
    jobs = plan_jobs(find_sources([str(shots)])[0], tmp_path / "out", suffix="")
    summary = plan_outcomes(jobs, overwrite=False, skip_existing=False)
    assert [(outcome.status, outcome.reason) for outcome in summary.outcomes] == [
        ("planned", ""),
        ("failed", broken),
    ]
    assert find_sources([str(shots / "b.jpg")]) == ([], [Unmatched(str(shots / "b.jpg"), broken)])
    with pytest.raises(PairingError) as raised:  # a training or test set short of a photo
        list_images(shots)
    assert str(raised.value) == f"{shots / 'b.jpg'}: {broken}"


def test_links_in_a_loop_or_to_one_missing_file_each_fail_on_their_own(tmp_path: Path) -> None:
    shots = touch(tmp_path / "shots", "a.jpg")
    (shots / "loop.jpg").symlink_to("loop.jpg")  # leads back to itself
    for name in ("b1.jpg", "b2.jpg"):
        (shots / name).symlink_to(tmp_path / "gone.jpg")
    gone = f"a link to {tmp_path / 'gone.jpg'}, which does not exist"
    for given in (str(shots), str(shots / "*.jpg")):
        jobs = plan_jobs(find_sources([given])[0], tmp_path / "out", suffix="")
        summary = plan_outcomes(jobs, overwrite=False, skip_existing=False)
        assert [(outcome.job.source.name, outcome.reason) for outcome in summary.outcomes] == [
            ("a.jpg", ""),
            ("b1.jpg", gone),
            ("b2.jpg", gone),  # not taken for b1.jpg, another name of the one file
            ("loop.jpg", "a link to loop.jpg, which leads round a loop of links"),
        ]
    (tmp_path / "linked").symlink_to(shots)  # the same links seen through a linked folder: one file each
    sources, _ = find_sources([str(shots), str(tmp_path / "linked")])
    assert [source.path.name for source in sources] == ["a.jpg", "b1.jpg", "b2.jpg", "loop.jpg"]


def test_a_link_in_a_loop_is_no_earlier_output_and_raises_nothing(tmp_path: Path) -> None:
    shots = touch(tmp_path / "shots", "a.jpg")
    (shots / "loop.jpg").symlink_to("loop.jpg")
    (tmp_path / "out").mkdir()  # an output folder that exists: each image's real place is looked at
    sources, _ = find_sources([str(shots)])
    assert earlier_outputs(sources, tmp_path / "out", "_recnet") == []


def test_an_output_name_that_is_a_link_in_a_loop_fails_alone(tmp_path: Path) -> None:
    shots = touch(tmp_path / "shots", "a.jpg", "b.jpg")
    (shots / "a_recnet.jpg").symlink_to("a_recnet.jpg")  # Path.resolve raised on it (Python < 3.13)
    jobs = plan_jobs(find_sources([str(shots / "a.jpg"), str(shots / "b.jpg")])[0], None, suffix="_recnet")
    summary = plan_outcomes(jobs, overwrite=False, skip_existing=False)
    assert [(outcome.job.source.name, outcome.status) for outcome in summary.outcomes] == [
        ("a.jpg", "failed"),
        ("b.jpg", "planned"),
    ]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("2024/*/*.jpg", ["2024/open/b.jpg"]),
        ("*/*/*.jpg", ["2024/open/b.jpg"]),
        ("2024/locked/*.jpg", []),
    ],
)
def test_a_pattern_names_the_folders_it_cannot_list(
    tmp_path: Path, unreadable_folders, pattern: str, expected: list[str]
) -> None:
    """glob passes over a folder it cannot list without a word: the photos missed there are said."""
    shots = touch(tmp_path / "shots", "top.jpg", "2024/locked/a.jpg", "2024/open/b.jpg")
    locked_path = shots / "2024" / "locked"
    unreadable_folders.add(locked_path)
    sources, missing = find_sources([str(shots / pattern)])
    assert [str(source.path.relative_to(shots)) for source in sources] == expected
    assert missing == [Unmatched(str(locked_path), "cannot read this folder: permission denied")]
    assert find_sources([str(shots / "*.jpg")])[1] == []  # a pattern that lists no locked folder


def test_hidden_folders_are_not_walked(tmp_path: Path) -> None:
    shots = touch(tmp_path / "shots", "a.jpg", ".recnet-report/a.jpg-after.jpg", "day/.cache/b.jpg")
    assert names(find_sources([str(shots)], recursive=True)[0]) == ["a.jpg"]
    only_hidden = touch(tmp_path / "report", ".recnet-report/a.jpg-after.jpg", "notes.txt")
    _, (unmatched,) = find_sources([str(only_hidden)])
    assert "sub-folders" not in unmatched.reason and "1 other file: .txt" in unmatched.reason


def test_a_pattern_naming_a_hidden_folder_gives_its_photos_as_the_folder_named_alone(tmp_path: Path) -> None:
    edits = touch(tmp_path / "shots", ".edits/a.jpg", ".edits/.thumbs/b.jpg", ".edits/day/c.jpg") / ".edits"
    named = [source.path for source in find_sources([str(edits)], recursive=True)[0]]
    assert named == [edits / "a.jpg", edits / "day" / "c.jpg"]
    matched = find_sources([str(tmp_path / "shots" / "**" / ".edits")], recursive=True)[0]
    assert sorted(source.path for source in matched) == named


@pytest.mark.parametrize("pattern", [".*.jpg", "**/.*.jpg"])
def test_a_pattern_picks_no_hidden_file_even_one_written_to_match_them(tmp_path: Path, pattern: str) -> None:
    # Matched, a card's macOS ._IMG_3.jpg (a record of IMG_3.jpg's attributes, no image) would fail as a
    # damaged photo, and a phone's hidden photos be corrected, where the folder named alone leaves them out
    inbox = touch(tmp_path / "inbox", ".IMG_2.jpg", "._IMG_3.jpg", "IMG_3.jpg")
    sources, missing = find_sources([str(inbox / pattern)])
    assert sources == []
    assert missing == [Unmatched(str(inbox / pattern), "no images match this pattern")]
    assert names(find_sources([str(inbox / ".IMG_2.jpg")])[0]) == [".IMG_2.jpg"]  # named alone: read


def test_folders_windows_hides_are_not_walked_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Windows refuses to read System Volume Information, on every drive and card: -r ended in an error
    card = touch(tmp_path / "card", "DCIM/a.jpg", "System Volume Information/b.jpg", "$RECYCLE.BIN/c.jpg")
    marked = {
        # either mark hides a folder (Windows gives both of these both)
        str(card / "System Volume Information"): stat.FILE_ATTRIBUTE_HIDDEN,
        str(card / "$RECYCLE.BIN"): stat.FILE_ATTRIBUTE_SYSTEM,
    }
    real_stat = os.stat

    def windows_stat(path: str, **kwargs: Any) -> object:
        status = real_stat(path, **kwargs)  # a folder Windows marks: its attributes, as Windows gives them
        return SimpleNamespace(st_file_attributes=marked[str(path)]) if str(path) in marked else status

    every = ["$RECYCLE.BIN/c.jpg", "DCIM/a.jpg", "System Volume Information/b.jpg"]
    assert names(find_sources([str(card)], recursive=True)[0]) == every  # elsewhere, folders like others
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(inputs.os, "stat", windows_stat)
    assert names(find_sources([str(card)], recursive=True)[0]) == ["DCIM/a.jpg"]


def test_globs_files_and_missing_inputs(shots: Path) -> None:
    sources, missing = find_sources([str(shots / "*.jpg"), str(shots / "day/c.tif"), str(shots / "nope.jpg")])
    assert [s.path.name for s in sources] == ["a.jpg", "c.tif"]
    assert missing == [Unmatched(str(shots / "nope.jpg"), "no such file or folder")]


@pytest.mark.parametrize("pattern", ["d*", "d*/", "**/day", "**/d?y/"])
def test_a_folder_a_pattern_matches_gives_its_photos_as_if_named(tmp_path: Path, pattern: str) -> None:
    """As the shell's expansion of the same pattern would give it: quoted or not, the same photos."""
    shots = touch(
        tmp_path / "shots", "a.jpg", "day/c.tif", "day/notes.txt", "day/.cache/e.jpg", "day/sub/d.webp"
    )
    assert names(find_sources([str(shots / pattern)])[0]) == ["day/c.tif"]
    assert names(find_sources([str(shots / pattern)], recursive=True)[0]) == ["day/c.tif", "day/sub/d.webp"]
    # Why none, as for a folder named alone
    (shots / "day" / "c.tif").unlink()
    _, (unmatched,) = find_sources([str(shots / pattern)])
    assert unmatched.reason == (
        "no images match this pattern (the folders it matches have some in sub-folders: add --recursive)"
    )
    (shots / "day" / "sub" / "d.webp").unlink()
    _, (unmatched,) = find_sources([str(shots / pattern)])
    assert unmatched.reason.startswith("no images match this pattern (1 other file: .txt;")


@pytest.mark.parametrize("pattern", ["*.jpg", "**/*.jpg", "*"])
def test_a_pattern_starting_in_a_folder_named_with_brackets_reads_the_name_as_typed(
    tmp_path: Path, pattern: str
) -> None:
    # glob read 'Wedding [2023]/*.jpg' as Wedding 2, Wedding 0 or Wedding 3: "no images match this pattern"
    wedding = tmp_path / "Wedding [2023]"
    (wedding / "sub").mkdir(parents=True)
    for photo in (wedding / "a.jpg", wedding / "sub" / "b.jpg"):
        photo.write_bytes(b"x")
    (tmp_path / "Wedding 2").mkdir()  # what [2023] matches, were it read as a wildcard
    (tmp_path / "Wedding 2" / "c.jpg").write_bytes(b"x")

    sources, missing = find_sources([str(wedding / pattern)])

    assert missing == []
    found = sorted(source.relative.as_posix() for source in sources)
    assert found == (["a.jpg"] if pattern == "*.jpg" else ["a.jpg", "sub/b.jpg"])
    assert pattern_base(wedding / pattern) == wedding


def test_an_output_folder_mirrors_the_sub_folders_a_pattern_spans(shots: Path, tmp_path: Path) -> None:
    (shots / "night").mkdir()
    (shots / "night" / "c.tif").write_bytes(b"x")  # the same name as day/c.tif
    patterns = [str(shots / "*" / "c.tif"), str(shots / "**" / "*.webp")]
    jobs = plan_jobs(find_sources(patterns, recursive=True)[0], tmp_path / "out", suffix="")
    assert [(job.target.relative_to(tmp_path / "out").as_posix(), job.problem) for job in jobs] == [
        ("day/c.tif", None),
        ("night/c.tif", None),
        ("day/sub/d.webp", None),
    ]
    assert pattern_base(Path("*.jpg")) == Path() and pattern_base(Path("/a/b[0-9]/c")) == Path("/a")
    (shots / "out" / "day").mkdir(parents=True)
    (shots / "out" / "day" / "c.tif").write_bytes(b"x")  # an earlier run's output, inside the pattern
    spanned, _ = find_sources([str(shots / "**" / "c.tif")], recursive=True)
    assert [s.path for s in earlier_outputs(spanned, shots / "out", "")] == [shots / "out" / "day" / "c.tif"]
    anywhere, _ = find_sources([str(shots / "**" / "*.webp")])  # without -r: ** is any depth all the same
    assert [source.relative.as_posix() for source in anywhere] == ["day/sub/d.webp"]
    climbing, _ = find_sources([str(shots / "d*" / ".." / "*.jpg")])
    assert [source.relative for source in climbing] == [Path("a.jpg")]


def test_a_pattern_that_matches_images_in_another_case_says_so(tmp_path: Path) -> None:
    # a camera names its photos IMG_0001.JPG: 'card/*.jpg' said only "no images match this pattern"
    card = tmp_path / "card"
    card.mkdir()
    for name in ["IMG_0001.JPG", "IMG_0002.JPG", "IMG_0002.CR2"]:
        (card / name).write_bytes(b"x")
    _, missing = find_sources([str(card / "*.jpg"), str(card / "img_0001*"), str(card / "*.[j]pg")])
    assert [m.reason for m in missing] == [
        "no images match this pattern (2 images match it in another case: IMG_0001.JPG, IMG_0002.JPG; "
        "patterns are case-sensitive)",
        "no images match this pattern (1 image matches it in another case: IMG_0001.JPG; patterns are "
        "case-sensitive)",
        "no images match this pattern",  # a [set] is left as typed
    ]
    _, raws = find_sources([str(card / "*.cr3")])  # another case of no image: no hint
    assert [m.reason for m in raws] == ["no images match this pattern"]


def test_inputs_that_give_no_image_say_why(shots: Path, tmp_path: Path) -> None:
    raws = tmp_path / "raws"
    raws.mkdir()
    for name in ["a.NEF", "b.nef", "c.CR2", "notes", ".DS_Store"]:
        (raws / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "inbox").mkdir()  # a phone's hidden files: left out without a word, the folder "empty"
    for name in [".IMG_1.JPG", ".IMG_2.jpg", "._IMG_3.jpg"]:
        (tmp_path / "inbox" / name).write_bytes(b"x")
    (tmp_path / "trips" / "2024").mkdir(parents=True)
    (tmp_path / "trips" / "2024" / "a.jpg").write_bytes(b"x")
    inputs = [
        tmp_path / "trips",
        raws,
        raws / "*.nef",
        tmp_path / "empty",
        tmp_path / "*.gif",
        tmp_path / "inbox",
    ]
    sources, missing = find_sources([str(path) for path in inputs])
    readable = imaging.READABLE
    assert sources == []
    assert [m.reason for m in missing] == [
        "no images in this folder (its sub-folders have some: add --recursive)",
        f"no images in this folder (4 other files: .nef, .cr2, no extension; {readable})",
        f"no images match this pattern (1 other file: .nef; {readable})",  # globs are case-sensitive
        "no images in this folder",
        "no images match this pattern",
        "no images in this folder (2 hidden images left out, such as .IMG_1.JPG; name one to include it)",
    ]
    assert str(missing[0]) == f"{tmp_path / 'trips'}: {missing[0].reason}"
    (tmp_path / "empty" / ".recnet-report").mkdir()  # a hidden folder's images are none of the hidden photos
    (tmp_path / "empty" / ".recnet-report" / "a.png").write_bytes(b"x")
    _, walked = find_sources([str(tmp_path / "empty")], recursive=True)
    assert [m.reason for m in walked] == ["no images in this folder"]


def test_a_folder_of_one_hidden_image_names_it(tmp_path: Path) -> None:
    inbox = touch(tmp_path / "inbox", ".IMG_1.JPG")
    _, (unmatched,) = find_sources([str(inbox)])
    assert (
        unmatched.reason
        == "no images in this folder (1 hidden image left out: .IMG_1.JPG; name one to include it)"
    )


def test_the_same_file_twice_is_processed_once(shots: Path) -> None:
    sources, _ = find_sources([str(shots / "a.jpg"), str(shots / "*.jpg")])
    assert len(sources) == 1 and sources[0].aliases == ()


def test_a_link_to_a_file_given_too_is_processed_once_and_remembered(shots: Path) -> None:
    (shots / "link.jpg").symlink_to("a.jpg")
    (shots / "other.jpg").symlink_to(shots / "a.jpg")
    sources, _ = find_sources([str(shots / "a.jpg"), str(shots / "link.jpg"), str(shots / "*.jpg")])
    assert [source.path for source in sources] == [shots / "a.jpg"]
    assert sources[0].aliases == (shots / "link.jpg", shots / "other.jpg")  # once each, the file itself never
    os.link(shots / "a.jpg", shots / "hard.jpg")  # a second name for the same data: a hard link
    sources, _ = find_sources([str(shots / "a.jpg"), str(shots / "hard.jpg")])
    assert [source.path for source in sources] == [shots / "a.jpg"]
    assert sources[0].aliases == (shots / "hard.jpg",)


def test_a_folder_s_file_and_a_link_to_it_there_give_the_file_s_name_whatever_sorts_first(
    shots: Path,
) -> None:
    (shots / "0-best.jpg").symlink_to("a.jpg")  # sorts before a.jpg: its name was the one corrected
    for given in ([str(shots)], [str(shots / "*.jpg")]):
        sources, _ = find_sources(given)
        (photo,) = [source for source in sources if source.path.name in ("a.jpg", "0-best.jpg")]
        assert (photo.path, photo.relative, photo.aliases) == (
            shots / "a.jpg",
            Path("a.jpg"),
            (shots / "0-best.jpg",),
        )
    sources, _ = find_sources([str(shots / "0-best.jpg"), str(shots)])  # named first: the first name given
    assert sources[0].path == shots / "0-best.jpg" and sources[0].aliases == (shots / "a.jpg",)


def test_a_folder_s_two_links_to_one_file_elsewhere_give_the_first_name(tmp_path: Path) -> None:
    target = touch(tmp_path / "elsewhere", "a.jpg") / "a.jpg"
    shots = tmp_path / "shots"
    shots.mkdir()
    for name in ("b.jpg", "c.jpg"):
        (shots / name).symlink_to(target)
    for given in ([str(shots)], [str(shots / "*.jpg")]):
        (photo,) = find_sources(given)[0]
        assert (photo.path, photo.aliases) == (shots / "b.jpg", (shots / "c.jpg",))


def test_a_folder_and_a_link_to_it_there_give_the_folder_s_names_whatever_sorts_first(tmp_path: Path) -> None:
    # trips/current -> z2024 sorts first: -r mirrored current/ alone, and a pattern kept its names
    trips = touch(tmp_path / "trips", "z2024/a.jpg", "z2024/sub/b.jpg", "a-archive/keep.jpg")
    (trips / "current").symlink_to("z2024", target_is_directory=True)
    (trips / "a-archive" / "latest").symlink_to("../z2024/sub", target_is_directory=True)  # deeper, earlier
    walked, _ = find_sources([str(trips)], recursive=True)
    assert names(walked) == ["a-archive/keep.jpg", "z2024/a.jpg", "z2024/sub/b.jpg"]
    matched, _ = find_sources([str(trips / "*")], recursive=True)
    assert sorted(source.path.relative_to(trips).as_posix() for source in matched) == [
        "a-archive/keep.jpg",
        "z2024/a.jpg",
        "z2024/sub/b.jpg",
    ]
    aliases = {source.path.name: source.aliases for source in matched}
    assert aliases["a.jpg"] == (trips / "current" / "a.jpg",)
    assert set(aliases["b.jpg"]) == {
        trips / "a-archive" / "latest" / "b.jpg",
        trips / "current" / "sub" / "b.jpg",
    }


def test_photo_files_recnet_cannot_read_are_left_out_of_folders_and_patterns_and_said(
    shots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DSC_1.NEF", "DSC_2.nef", "day/DSC_3.dng", "IMG_4.HEIC", "day/.hidden.cr2"):
        (shots / name).write_bytes(b"x")
    left_out: list[Path] = []
    overlapping = [str(shots), str(shots / "day" / "*"), str(shots / "*")]  # the RAW files on top twice
    sources, missing = find_sources(overlapping, left_out=left_out)
    assert missing == [] and not any(source.path.suffix in (".NEF", ".nef", ".dng") for source in sources)
    raw = [shots / "DSC_1.NEF", shots / "DSC_2.nef", shots / "day" / "DSC_3.dng"]
    assert left_out == (raw if imaging.HEIF_SUPPORTED else [*raw[:2], shots / "IMG_4.HEIC", raw[2]])
    assert inputs.left_out_note(raw[:1]) == (
        "left out 1 photo file (.nef) that recnet cannot read, a camera RAW file: convert it to TIFF or JPEG "
        "first"
    )
    heif = "an HEIF photo: install pillow-heif to read it (pip install pillow-heif), or convert it to JPEG"
    monkeypatch.setitem(imaging.formats._CONVERT_FIRST, ".heic", heif)  # as without pillow-heif
    assert inputs.left_out_note([*raw, shots / "IMG_4.HEIC"]) == (
        "left out 4 photo files that recnet cannot read: 3 (.nef, .dng), each a camera RAW file: convert it "
        f"to TIFF or JPEG first; 1 (.heic), {heif}"
    )
    assert find_sources([str(shots / "DSC_1.NEF")], left_out=left_out)[0][0].path == shots / "DSC_1.NEF"


def test_jobs_that_cannot_work_are_refused_before_reading(tmp_path: Path) -> None:
    names = ["photo.jpg", "DSC_0001.NEF", "backup.jpg_original", "animation.GIF", "export."]
    sources, _ = find_sources([str(tmp_path / name) for name in names if (tmp_path / name).touch() is None])
    problems = [job.problem or "" for job in plan_jobs(sources, None, suffix="_recnet")]
    assert problems[0] == ""
    assert problems[1].startswith("a camera RAW file: convert it to TIFF or JPEG first")
    assert problems[2].startswith(
        "cannot write .jpg_original files: choose the output format with --ext (jpg,"
    )
    assert problems[3] == f".GIF files are not read ({imaging.READABLE}): convert it first"  # not --ext
    # not "cannot write ._recnet files": the output export._recnet takes its extension from the photo's name
    assert problems[4].startswith("cannot write a file without an extension: choose the output format")
    forced = plan_jobs(sources, None, suffix="_recnet", extension=".jpg")
    assert forced[2].problem is None and forced[2].target == tmp_path / "backup_recnet.jpg"
    assert forced[3].problem == problems[3]


def test_a_file_named_as_no_image_that_is_none_is_said_so_before_asking_for_ext(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a shopping list")
    (tmp_path / "backup.jpg_original").write_bytes(b"\xff\xd8\xff\xe0" + bytes(20))  # a JPEG by its start
    (tmp_path / "empty.dat").touch()  # said when read: "empty file"
    sources, _ = find_sources(
        [str(tmp_path / name) for name in ("notes.txt", "backup.jpg_original", "empty.dat")]
    )
    notes, backup, empty = (job.problem or "" for job in plan_jobs(sources, None, suffix="_recnet"))
    assert notes == "not an image, or an unsupported format"
    assert backup.startswith("cannot write .jpg_original files: choose the output format with --ext")
    assert empty.startswith("cannot write .dat files")


def test_outputs_that_cannot_be_written_there_are_refused_before_reading(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.touch()
    sources, _ = find_sources([str(photo)])
    (tmp_path / "into" / "photo.jpg").mkdir(parents=True)
    os.mkfifo(tmp_path / "pipe.jpg")
    problems = {
        str(name): plan_jobs(sources, tmp_path / name, suffix="_recnet")[0].problem
        for name in ("into", "pipe.jpg", "a" * 300 + ".jpg", "free.jpg")
    }
    assert problems["into"] == f"output {tmp_path / 'into' / 'photo.jpg'} is a folder"
    pipe = tmp_path / "pipe.jpg"
    assert problems["pipe.jpg"] == f"output {pipe} is a FIFO, not a file; refusing to replace it"
    assert problems["a" * 300 + ".jpg"].endswith(": file name too long")
    assert problems["free.jpg"] is None
    in_the_way = (tmp_path / "into",)
    companion = plan_jobs(sources, tmp_path / "out.jpg", suffix="", companions=lambda target: in_the_way)
    assert companion[0].problem == f"output {tmp_path / 'into'} is a folder"


@pytest.mark.parametrize("past_longest", [0, 1])
def test_an_output_name_in_a_folder_to_be_made_is_refused_only_past_the_longest_the_file_system_takes(
    tmp_path: Path, past_longest: int
) -> None:
    photo = touch(tmp_path, "photo.jpg") / "photo.jpg"
    name = "a" * (os.pathconf(tmp_path, "PC_NAME_MAX") + past_longest - 4) + ".jpg"
    output = tmp_path / "new" / name
    (job,) = plan_jobs(find_sources([str(photo)])[0], output, suffix="")
    assert job.problem == (f"output {output}: file name too long" if past_longest else None)


def test_a_link_at_the_output_counts_as_an_existing_output_even_when_it_leads_nowhere(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.touch()
    (tmp_path / "out.jpg").symlink_to(tmp_path / "missing" / "x.jpg")
    (job,) = plan_jobs(find_sources([str(photo)])[0], tmp_path / "out.jpg", suffix="")
    refused = refusal(job, overwrite=False, skip_existing=False)
    assert refused is not None and refused.reason.startswith(f"output {tmp_path / 'out.jpg'} exists")
    assert refusal(job, overwrite=True, skip_existing=False) is None


THEIRS = "recnet did not write it (it lacks recnet's mark: a file of yours, a copy, or an edited output)"
ELSEWHERE = "move it away, or write elsewhere (-o, --suffix)"


def masked_job(folder: Path, name: str) -> Job:
    """The job of ``<name>.jpg`` in ``folder``, writing ``<name>_out.jpg`` after ``<name>_mask.png``."""
    return Job(folder / f"{name}.jpg", folder / f"{name}_out.jpg", companions=(folder / f"{name}_mask.png",))


def test_skip_existing_passes_over_finished_jobs_and_writes_again_the_lone_companions_recnet_left(
    tmp_path: Path,
) -> None:
    finished, stopped, mask_added_later, theirs = (masked_job(tmp_path, name) for name in "abcd")
    for path in (finished.target, *finished.companions, *stopped.companions, mask_added_later.target):
        path.write_bytes(b"earlier")
        as_recnet_wrote(path)
    theirs.companions[0].write_bytes(b"a mask of the user's")
    skipped = refusal(finished, overwrite=False, skip_existing=True)
    assert skipped == Outcome(finished, "skipped", "output exists")
    kept_without_mask = refusal(mask_added_later, overwrite=False, skip_existing=True)
    mask = mask_added_later.companions[0]
    assert (kept_without_mask.status, kept_without_mask.reason) == (
        "skipped",
        f"output exists, without {mask}",
    )
    assert kept_without_mask.lacking == (mask,) and not mask.exists()  # said, not made (see notice_lacking)
    lone = f"output {stopped.companions[0]} exists, but not {stopped.target} (use --overwrite)"
    assert refusal(stopped, overwrite=False, skip_existing=False) == Outcome(stopped, "failed", lone)
    assert refusal(stopped, overwrite=True, skip_existing=False) is None
    skip_unless_marks_kept(theirs.companions[0].parent)
    # what a run that stopped short of the photo left is written again with it; a file of the user's is kept
    assert refusal(stopped, overwrite=False, skip_existing=True) is None
    linked = masked_job(tmp_path, "e")  # a link to recnet's picture is kept, as --overwrite keeps it
    linked.companions[0].symlink_to(stopped.companions[0])
    assert refusal(linked, overwrite=False, skip_existing=True).status == "failed"
    kept = f"output {theirs.companions[0]} exists, and {THEIRS}: {ELSEWHERE}"
    for skip_existing in (True, False):
        refused = refusal(theirs, overwrite=False, skip_existing=skip_existing)
        assert refused == Outcome(theirs, "failed", kept)
    # of two companions, recnet's mask and the user's features picture, neither is written over
    both = Job(
        tmp_path / "f.jpg",
        tmp_path / "f_out.jpg",
        companions=(tmp_path / "f_mask.png", tmp_path / "f_features.png"),
    )
    as_recnet_wrote(touch(tmp_path, "f_mask.png") / "f_mask.png")
    touch(tmp_path, "f_features.png")
    mixed = refusal(both, overwrite=False, skip_existing=True)
    assert mixed == Outcome(
        both, "failed", f"output {tmp_path / 'f_mask.png'} exists, but not {both.target} (use --overwrite)"
    )


def test_overwrite_replaces_only_what_recnet_wrote_but_the_file_o_names(tmp_path: Path) -> None:
    # -o an existing folder of the user's own edits, inside the input folder or not: one has the name a
    # photo's output would have, another is a mask picture of theirs named as a companion
    shots = touch(tmp_path / "shots", "a.jpg", "b.jpg", "c.jpg")
    edited = touch(tmp_path, "edited/a.jpg", "edited/c_mask.png") / "edited"
    as_recnet_wrote(touch(edited, "b.jpg") / "b.jpg")  # an earlier run's
    skip_unless_marks_kept(edited)
    sources, _ = find_sources([str(shots)])
    mine, written, mask = plan_jobs(sources, edited, suffix="", companions=lambda t: (side_path(t, "mask"),))
    because = f"output {mine.target} exists, and {THEIRS}"
    assert refusal(mine, overwrite=True, skip_existing=False) == Outcome(
        mine, "failed", f"{because}: not replacing it; {ELSEWHERE}"
    )
    assert refusal(mine, overwrite=False, skip_existing=False) == Outcome(
        mine, "failed", f"{because}: use --skip-existing, {ELSEWHERE}"
    )
    # nothing is lost by skipping it, and --overwrite would not write it again with the mask it lacks
    assert refusal(mine, overwrite=False, skip_existing=True) == Outcome(mine, "skipped", "output exists")
    assert refusal(written, overwrite=True, skip_existing=False) is None
    lone = (
        f"output {mask.companions[0]} exists, and {THEIRS}"  # --skip-existing skips no job without its photo
    )
    for overwrite, skip_existing, remedy in (
        (False, False, ""),
        (False, True, ""),
        (True, False, "not replacing it; "),
    ):
        assert refusal(mask, overwrite, skip_existing) == Outcome(
            mask, "failed", f"{lone}: {remedy}{ELSEWHERE}"
        )
    # the file -o names is replaced whoever wrote it: the user asked for it by name
    (named,) = plan_jobs(find_sources([str(shots / "a.jpg")])[0], edited / "c.jpg", suffix="")
    touch(edited, "c.jpg")
    assert named.named and refusal(named, overwrite=True, skip_existing=False) is None
    assert refusal(named, overwrite=False, skip_existing=False).reason == (
        f"output {edited / 'c.jpg'} exists (use --overwrite or --skip-existing)"
    )


@pytest.mark.parametrize("named", [True, False])
def test_explain_overwrite_replaces_a_read_only_sheet_only_where_o_names_it(
    tmp_path: Path, named: bool
) -> None:
    photo = touch(tmp_path, "photo.jpg") / "photo.jpg"
    sheet = touch(tmp_path, "photo_explain.png") / "photo_explain.png"
    sheet.chmod(0o444)  # kept from --overwrite, with recnet's mark or without
    problem = sheet_problem(sheet, [photo], named=named, overwrite=True, create=False)
    if named:
        assert problem is None
    else:
        assert problem.startswith(f"{sheet} exists, and ") and problem.endswith(
            ": move it away, or choose another -o"
        )


def test_overwrite_replaces_no_link_at_an_output_s_name(tmp_path: Path) -> None:
    # recnet writes no links, so one at an output's name is the user's, whatever it leads to
    shots = touch(tmp_path / "shots", "a.jpg", "b.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (out / "b.jpg").symlink_to(as_recnet_wrote(touch(tmp_path, "earlier.jpg") / "earlier.jpg"))
    jobs = plan_jobs(find_sources([str(shots)])[0], out, suffix="")
    assert [job.target for job in jobs] == [out / "a.jpg", out / "b.jpg"]
    for job in jobs:
        assert refusal(job, overwrite=True, skip_existing=False) == Outcome(
            job,
            "failed",
            f"output {job.target} exists, and it is a link, which recnet never writes: not replacing it; "
            f"{ELSEWHERE}",
        )


def test_overwrite_replaces_no_output_made_read_only_but_the_file_o_names(tmp_path: Path) -> None:
    # an earlier run's output that the user chmod'ed a-w to keep: replacing a file needs no write
    # permission on it (only on its folder), and root may write anything, so the mode itself is asked
    shots = touch(tmp_path / "shots", "a.jpg", "b.jpg")
    out = tmp_path / "out"
    kept, _ = (as_recnet_wrote(touch(out, name) / name) for name in ("a.jpg", "b.jpg"))
    skip_unless_marks_kept(kept.parent)
    kept.chmod(0o444)
    first, second = plan_jobs(find_sources([str(shots)])[0], out, suffix="")
    assert refusal(first, overwrite=True, skip_existing=False) == Outcome(
        first,
        "failed",
        f"output {kept} exists, and it is read-only (chmod u+w lets --overwrite replace it): not replacing "
        f"it; {ELSEWHERE}",
    )
    assert refusal(second, overwrite=True, skip_existing=False) is None
    assert refusal(first, overwrite=False, skip_existing=True) == Outcome(first, "skipped", "output exists")
    (named,) = plan_jobs(find_sources([str(shots / "a.jpg")])[0], kept, suffix="")
    assert named.named and refusal(named, overwrite=True, skip_existing=False) is None


def test_an_empty_input_name_is_not_taken_for_the_current_folder() -> None:
    sources, missing = find_sources([""])
    assert sources == [] and [str(each) for each in missing] == ["'': an empty name is no file or folder"]


def test_without_output_the_suffix_goes_beside_each_input(shots: Path) -> None:
    sources, _ = find_sources([str(shots)])
    jobs = plan_jobs(sources, None, suffix="_recnet")
    assert [j.target for j in jobs] == [shots / "a_recnet.jpg", shots / "b_recnet.PNG"]


def test_an_output_folder_that_is_the_inputs_own_takes_the_suffix(
    shots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Named as the inputs, the outputs would be the inputs, refused; masks (.png) would read as photos."""
    sources, _ = find_sources([str(shots)], recursive=True)
    jobs = plan_jobs(sources, shots, suffix="_mask", extension=".png")
    assert [(j.target.relative_to(shots).as_posix(), j.problem) for j in jobs] == [
        ("a_mask.png", None),
        ("b_mask.png", None),
        ("day/c_mask.png", None),
        ("day/sub/d_mask.png", None),
    ]
    monkeypatch.chdir(shots / "day")
    (job,) = plan_jobs(find_sources(["c.tif"])[0], ".", suffix="_recnet")
    assert (job.target, job.problem) == (Path("c_recnet.tif"), None)
    inner = plan_jobs(find_sources([str(shots)], recursive=True)[0], shots / "day", suffix="_recnet")
    assert [j.target.relative_to(shots).as_posix() for j in inner] == [
        "day/a.jpg",
        "day/b.PNG",
        "day/day/c.tif",
        "day/day/sub/d.webp",
    ]


@pytest.mark.parametrize("name", ["out.png", "OUT.JPG"])
def test_one_file_and_an_output_file(shots: Path, tmp_path: Path, name: str) -> None:
    sources, _ = find_sources([str(shots / "a.jpg")])
    (job,) = plan_jobs(sources, tmp_path / name, suffix="_recnet")
    assert job.target == tmp_path / name and job.problem is None


def test_a_folder_output_mirrors_sub_folders_and_forced_extension(shots: Path, tmp_path: Path) -> None:
    sources, _ = find_sources([str(shots)], recursive=True)
    jobs = plan_jobs(sources, tmp_path / "out", suffix="_recnet", extension=".png")
    assert [j.target.relative_to(tmp_path / "out").as_posix() for j in jobs] == [
        "a.png",
        "b.png",
        "day/c.png",
        "day/sub/d.png",
    ]


def test_recnet_s_earlier_outputs_in_a_folder_are_passed_over(tmp_path: Path) -> None:
    shots = touch(
        tmp_path,
        *("p.jpg", "p_recnet.jpg", "p_recnet_mask.png", "p_recnet_features.png", "p_mask.png"),
        *("p_mask_raw.png", "p_explain.png", "p_fixed.jpg", "p_recnet_recnet.jpg", "q_recnet.jpg"),
        *("r_mask.png", "r_final.jpg", "r.png"),
    )
    sources, _ = find_sources([str(shots)])
    passed_over = [s.path.name for s in earlier_outputs(sources, None, suffix="_fixed")]
    assert passed_over == [
        *("p_explain.png", "p_fixed.jpg", "p_mask.png", "p_mask_raw.png", "p_recnet.jpg"),
        *("p_recnet_features.png", "p_recnet_mask.png", "p_recnet_recnet.jpg", "r_mask.png"),
    ]  # q_recnet.jpg has no q.* beside it, r_final.jpg is no name recnet gives


def test_files_named_one_by_one_are_never_passed_over(tmp_path: Path) -> None:
    touch(tmp_path, "p.jpg", "p_recnet.jpg")
    sources, _ = find_sources([str(tmp_path / "p.jpg"), str(tmp_path / "p_recnet.jpg")])
    assert earlier_outputs(sources, None, suffix="_recnet") == []
    globbed, _ = find_sources([str(tmp_path / "*.jpg")])
    assert [s.path.name for s in earlier_outputs(globbed, None, suffix="_recnet")] == ["p_recnet.jpg"]


def test_an_output_folder_inside_the_input_folder_is_passed_over_but_not_the_input_folder(
    tmp_path: Path,
) -> None:
    shots = touch(tmp_path / "shots", "a.jpg", "day/b.jpg", "fixed/a.jpg", "fixed/day/b.jpg")
    sources, _ = find_sources([str(shots)], recursive=True)
    passed_over = earlier_outputs(sources, shots / "fixed", suffix="_recnet")
    assert [s.relative.as_posix() for s in passed_over] == ["fixed/a.jpg", "fixed/day/b.jpg"]
    assert earlier_outputs(sources, shots, suffix="_recnet") == []  # refused later: it is the input
    assert earlier_outputs(sources, tmp_path / "elsewhere", suffix="_recnet") == []
    assert earlier_outputs(sources, tmp_path, suffix="_recnet") == []  # a folder above the input folder
    elsewhere = touch(tmp_path / "elsewhere", "x.jpg")
    (shots / "day" / "sub").mkdir()
    (shots / "day" / "sub" / "link.jpg").symlink_to(elsewhere / "x.jpg")  # into the output folder
    linked, _ = find_sources([str(shots)], recursive=True)
    assert earlier_outputs(linked, elsewhere, suffix="_recnet") == []


def test_an_output_named_like_an_image_must_be_a_folder_for_several_images(tmp_path: Path) -> None:
    touch(tmp_path, "a.jpg", "b.jpg", "set/c.jpg")
    two, _ = find_sources([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")])
    assert misnamed_output_folder(two, tmp_path / "out.jpg") == (
        f"-o {tmp_path / 'out.jpg'} names one image file, but the inputs give 2 images: "
        f"name a folder, such as -o {tmp_path / 'out'}"
    )
    folder, _ = find_sources([str(tmp_path / "set")])
    assert "a folder or pattern is given" in misnamed_output_folder(folder, tmp_path / "out.png")
    one, _ = find_sources([str(tmp_path / "a.jpg")])
    assert misnamed_output_folder(one, tmp_path / "out.jpg") is None
    assert misnamed_output_folder(two, tmp_path / "out") is None
    (tmp_path / "existing.jpg").mkdir()
    assert misnamed_output_folder(two, tmp_path / "existing.jpg") is None
    # a.jpg b.jpg -o out.jpg with b.jpg not there (or a pattern that matched nothing) wrote a.jpg's output
    # as out.jpg: a folder once b.jpg is made
    assert misnamed_output_folder(one, tmp_path / "out.jpg", unmatched=1) == (
        f"-o {tmp_path / 'out.jpg'} names one image file, but 2 inputs are given: name a folder, such as -o "
        f"{tmp_path / 'out'}"
    )


def test_an_output_folder_that_is_a_file_is_refused_once(tmp_path: Path) -> None:
    """Each photo failed with the same line, and the exit status was 1 (a photo failed), not 2."""
    touch(tmp_path, "a.jpg", "b.jpg", "notes.txt", "notes")
    two, _ = find_sources([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")])
    one, _ = find_sources([str(tmp_path / "a.jpg")])
    for sources, name in [(two, "notes.txt"), (one, "notes.txt"), (one, "notes")]:
        reason = f"-o {tmp_path / name} is a file, not a folder to put the outputs in"
        assert misnamed_output_folder(sources, tmp_path / name) == reason
    assert (
        misnamed_output_folder(one, "/dev/null")
        == "-o /dev/null is a device, not a folder to put the outputs in"
    )
    assert misnamed_output_folder(one, tmp_path / "a.jpg") is None  # the output file itself: refused later
    # -o notes/ or notes/sub failed each photo in its turn (exit 1), as a folder that could not be made
    notes = tmp_path / "notes"
    for output, reason in [(f"{notes}/", f"{notes}/ is"), (notes / "sub", f"{notes / 'sub'}: {notes} is")]:
        for sources in (one, two):
            assert misnamed_output_folder(sources, output) == (
                f"-o {reason} a file, not a folder to put the outputs in"
            )


def test_one_photo_with_an_output_named_like_no_image_is_told_it_is_a_folder(tmp_path: Path) -> None:
    touch(tmp_path, "a.jpg", "b.jpg", "set/c.jpg")
    one, _ = find_sources([str(tmp_path / "a.jpg")])
    assert output_taken_as_folder(one, tmp_path / "fixed.jgp") == (
        f"-o {tmp_path / 'fixed.jgp'}: .jgp is not an image extension, so it is taken as a folder"
    )
    two, _ = find_sources([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")])
    folder, _ = find_sources([str(tmp_path / "set")])
    (tmp_path / "shots.2024").mkdir()
    for sources, output in [
        (one, tmp_path / "fixed.jpg"),  # a file
        (one, tmp_path / "fixed"),  # a folder, plainly
        (one, tmp_path / "shots.2024"),  # a folder that exists
        (two, tmp_path / "fixed.v2"),  # several photos go into a folder anyway
        (folder, tmp_path / "fixed.v2"),
        (one, f"{tmp_path / '2024.06.01'}/"),  # -o as typed: the slash already says it is a folder
        (
            one,
            touch(tmp_path, "notes.jgp") / "notes.jgp",
        ),  # a file there: refused as one, not taken as a folder
        (one, None),
    ]:
        assert output_taken_as_folder(sources, output) is None


def test_an_output_typed_with_a_trailing_slash_is_a_folder_whatever_its_name(tmp_path: Path) -> None:
    touch(tmp_path, "a.jpg", "b.jpg")
    one, _ = find_sources([str(tmp_path / "a.jpg")])
    two, _ = find_sources([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")])
    for typed in (f"{tmp_path / 'out.jpg'}/", f"{tmp_path / 'out.jpg'}/."):
        assert not names_image_file(typed)
        assert misnamed_output_folder(two, typed) is None
        (job,) = plan_jobs(one, typed, suffix="")
        assert job.target == tmp_path / "out.jpg" / "a.jpg" and job.problem is None
    assert names_image_file(str(tmp_path / "out.jpg"))  # without the slash, the file itself
    assert plan_jobs(one, str(tmp_path / "out.jpg"), suffix="")[0].target == tmp_path / "out.jpg"


def test_a_plan_says_what_a_run_would_do_and_creates_no_folder(tmp_path: Path) -> None:
    jobs = [
        Job(tmp_path / "a.jpg", tmp_path / "new" / "a.jpg"),
        Job(tmp_path / "b.jpg", as_recnet_wrote(touch(tmp_path, "b_out.jpg") / "b_out.jpg")),
        Job(tmp_path / "c.jpg", tmp_path / "c_out.jpg", problem="c is refused"),
    ]
    assert [o.status for o in plan_outcomes(jobs, overwrite=False, skip_existing=True).outcomes] == [
        "planned",
        "skipped",
        "failed",
    ]
    assert plan_outcomes(jobs, overwrite=False, skip_existing=False).outcomes[1].status == "failed"
    assert plan_outcomes(jobs, overwrite=True, skip_existing=False).outcomes[1].status == "planned"
    assert not (tmp_path / "new").exists()


def test_a_link_to_nothing_as_the_output_folder_fails_the_plan_as_the_run(tmp_path: Path) -> None:
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    job = Job(tmp_path / "a.jpg", tmp_path / "out" / "a.jpg")
    reason = f"cannot create folder {tmp_path / 'out'}: it is a link to nothing"
    assert plan_outcomes([job], overwrite=False, skip_existing=False).outcomes[0].reason == reason
    assert output_folder_problem(job).reason == reason and not (tmp_path / "nowhere").exists()


def test_a_link_to_a_folder_as_the_output_folder_takes_the_outputs(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "elsewhere")
    job = Job(tmp_path / "a.jpg", tmp_path / "out" / "a.jpg")
    assert plan_outcomes([job], overwrite=False, skip_existing=False).outcomes[0].status == "planned"
    assert output_folder_problem(job) is None


def test_a_plan_fails_inputs_the_file_system_says_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").touch()
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "photo.jpg").write_bytes(b"x")
    jobs = [Job(tmp_path / name, tmp_path / "out" / name) for name in ("empty.jpg", "pipe.jpg", "photo.jpg")]
    assert [
        (o.status, o.reason) for o in plan_outcomes(jobs, overwrite=False, skip_existing=False).outcomes
    ] == [
        ("failed", "empty file"),
        ("failed", "a FIFO, not a photo file"),
        ("planned", ""),
    ]


def test_a_fifo_or_a_device_among_a_folder_s_photos_fails_named_as_it_does_named_alone(
    tmp_path: Path,
) -> None:
    shots = touch(tmp_path / "shots", "a.jpg")
    (shots / "a.jpg").write_bytes(b"x")
    os.mkfifo(shots / "f.jpg")  # read, it would block for ever
    (shots / "z.jpg").symlink_to(os.devnull)
    for given in (shots, shots / "*.jpg"):
        sources, _ = find_sources([str(given)])
        jobs = [Job(source.path, tmp_path / "out" / source.path.name) for source in sources]
        outcomes = plan_outcomes(jobs, overwrite=False, skip_existing=False).outcomes
        assert [(o.job.source.name, o.status, o.reason) for o in outcomes] == [
            ("a.jpg", "planned", ""),
            ("f.jpg", "failed", "a FIFO, not a photo file"),
            ("z.jpg", "failed", "a device, not a photo file"),
        ]


def test_a_socket_is_neither_read_as_a_photo_nor_replaced_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a socket's address is short: its name, not tmp_path's
    (tmp_path / "photo.jpg").write_bytes(b"x")
    sources, _ = find_sources([str(tmp_path / "photo.jpg")])
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind("sock.jpg")
        job = Job(tmp_path / "sock.jpg", tmp_path / "out.jpg")
        outcome = plan_outcomes([job], overwrite=False, skip_existing=False).outcomes[0]
        replacing = plan_jobs(sources, tmp_path / "sock.jpg", suffix="")[0]
    assert (outcome.status, outcome.reason) == ("failed", "a socket, not a photo file")
    assert (
        replacing.problem == f"output {tmp_path / 'sock.jpg'} is a socket, not a file; refusing to replace it"
    )


def test_a_plan_fails_outputs_whose_folder_could_not_be_made_or_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes, card = touch(tmp_path, "notes.txt") / "notes.txt", tmp_path / "card"
    card.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != card and real_access(path, mode))
    jobs = [
        Job(tmp_path / "a.jpg", notes / "2024" / "a.jpg"),
        Job(tmp_path / "b.jpg", card / "b.jpg"),
        Job(tmp_path / "c.jpg", card / "new" / "c.jpg"),
        Job(tmp_path / "d.jpg", tmp_path / "new" / "d.jpg"),
    ]
    assert [
        (o.status, o.reason) for o in plan_outcomes(jobs, overwrite=False, skip_existing=False).outcomes
    ] == [
        ("failed", f"cannot create folder {notes / '2024'}: {notes} is a file"),
        ("failed", f"cannot write in folder {card}: permission denied"),
        ("failed", f"cannot create folder {card / 'new'}: permission denied"),
        ("planned", ""),
    ]
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_device_as_input_is_said_to_be_one_before_its_output_wants_an_extension(tmp_path: Path) -> None:
    # /dev/null has no extension: its output would need --ext, which was asked for first
    sources, _ = find_sources(["/dev/null"])
    (job,) = plan_jobs(sources, tmp_path, suffix="_recnet")
    assert job.problem == "a device, not a photo file"


def test_output_equal_to_an_input_is_refused(shots: Path) -> None:
    sources, _ = find_sources([str(shots / "a.jpg")])
    (job,) = plan_jobs(sources, shots / "a.jpg", suffix="")
    assert "is an input file" in job.problem
    folder_jobs = plan_jobs(find_sources([str(shots)])[0], shots, suffix="")
    assert all("is an input file" in j.problem for j in folder_jobs)


def test_an_input_under_another_name_is_no_output(shots: Path) -> None:
    # A second name for the file itself (a hard link here; a bind mount, or another case on a camera card's
    # file system) is the input: replacing it would lose the photo.
    os.link(shots / "a.jpg", shots / "linked.jpg")
    (job,) = plan_jobs(find_sources([str(shots / "a.jpg")])[0], shots / "linked.jpg", suffix="")
    assert job.problem == f"output {shots / 'linked.jpg'} is an input file; refusing to overwrite it"
    sheet = partial(sheet_problem, shots / "linked.jpg", named=True, overwrite=True, create=False)
    assert sheet([shots / "a.jpg"]) == f"{shots / 'linked.jpg'} is an input; refusing to overwrite it"


def test_an_input_named_through_a_folder_not_made_yet_is_no_output(shots: Path) -> None:
    # -o new/../a.jpg: new/ did not exist when the output was checked, then was made, and with --overwrite
    # the photo was replaced by its correction
    through = shots / "new" / ".." / "a.jpg"
    (job,) = plan_jobs(find_sources([str(shots / "a.jpg")])[0], through, suffix="")
    assert job.problem == f"output {through} is an input file; refusing to overwrite it"
    sheet = partial(sheet_problem, through, named=True, overwrite=True, create=False)
    assert sheet([shots / "a.jpg"]) == f"{through} is an input; refusing to overwrite it"
    assert not (shots / "new").exists()
    (own,) = plan_jobs(find_sources([str(shots / "a.jpg")])[0], shots / "new" / "..", suffix="_recnet")
    assert own.target.name == "a_recnet.jpg"  # the photo's own folder, by another name: named with --suffix


def test_no_output_is_written_where_an_input_link_to_nothing_leads(shots: Path, tmp_path: Path) -> None:
    # in/z.jpg leads to out/a.jpg, which is not there yet: an output written there would become input z.jpg.
    out = tmp_path / "out"
    out.mkdir()
    (shots / "z.jpg").symlink_to(Path("..", "out", "a.jpg"))
    jobs = {job.source.name: job for job in plan_jobs(find_sources([str(shots)])[0], out, suffix="")}
    assert jobs["a.jpg"].problem == f"output {out / 'a.jpg'} is an input file; refusing to overwrite it"
    assert jobs["b.PNG"].problem is None
    sheet = partial(sheet_problem, out / "a.jpg", named=True, overwrite=True, create=False)
    assert sheet([shots / "z.jpg"]) == f"{out / 'a.jpg'} is an input; refusing to overwrite it"


def test_no_output_is_written_where_a_named_input_link_to_nothing_leads(shots: Path) -> None:
    # `recnet correct a.jpg lnk.jpg` with lnk.jpg -> a_recnet.jpg: the output would become input lnk.jpg
    (shots / "lnk.jpg").symlink_to("a_recnet.jpg")
    sources, missing = find_sources([str(shots / "a.jpg"), str(shots / "lnk.jpg")])
    assert [unmatched.input for unmatched in missing] == [str(shots / "lnk.jpg")]
    (job,) = plan_jobs(sources, None, suffix="_recnet", dead_links=[shots / "lnk.jpg"])
    assert job.problem == f"output {shots / 'a_recnet.jpg'} is an input file; refusing to overwrite it"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_folder_mounted_at_another_path_is_the_input_folder(shots: Path, tmp_path: Path) -> None:
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    if subprocess.run(["mount", "--bind", str(shots), str(mounted)], capture_output=True).returncode:
        pytest.skip("bind mounts are not allowed here")
    try:
        (job,) = plan_jobs(find_sources([str(shots / "a.jpg")])[0], mounted / "a.jpg", suffix="")
        assert "is an input file" in job.problem
        (beside,) = plan_jobs(find_sources([str(shots / "a.jpg")])[0], mounted, suffix="_recnet")
        assert beside.target == shots / "a_recnet.jpg" and beside.problem is None
        pair = ImagePair(shots / "a.jpg", tmp_path / "a.png")  # eval --save: a.png beside a.jpg
        assert save_problem([pair], mounted, overwrite=True) == (
            f"--save {mounted}: a folder of the images being evaluated; choose another folder"
        )
    finally:
        subprocess.run(["umount", str(mounted)], check=True)


def test_two_inputs_claiming_one_output_are_caught(tmp_path: Path) -> None:
    for name in ["x.jpg", "x.png"]:
        (tmp_path / name).write_bytes(b"x")
    jobs = plan_jobs(find_sources([str(tmp_path)])[0], tmp_path / "out", suffix="", extension=".png")
    assert jobs[0].problem is None
    assert "would also be written" in jobs[1].problem


@pytest.mark.parametrize("inside", ["a.jpg", "sub/a.jpg"])
def test_an_output_that_would_be_the_folder_of_another_is_caught(tmp_path: Path, inside: str) -> None:
    # shots/x.jpg/a.jpg (in a folder named like a photo) and shots/x.png, both written as .jpg
    touch(tmp_path / "shots", f"x.jpg/{inside}", "x.png", "y.png")
    out = tmp_path / "out"
    sources, _ = find_sources([str(tmp_path / "shots")], recursive=True)
    jobs = plan_jobs(sources, out, suffix="", extension=".jpg")
    assert [(job.target, job.problem) for job in jobs] == [
        (out / "x.jpg" / inside, None),
        (
            out / "x.jpg",
            f"output {out / 'x.jpg'} would also be the folder of {out / 'x.jpg' / inside}, the output of "
            f"{tmp_path / 'shots' / 'x.jpg' / inside}",
        ),
        (out / "y.jpg", None),
    ]
    # The other way round: the file comes first, then outputs that would go in it
    file_first = sorted(sources, key=lambda source: source.path.suffix == ".jpg")  # the folder's last
    jobs = plan_jobs(file_first, out, suffix="", extension=".jpg")
    assert jobs[-1].problem == (
        f"output {out / 'x.jpg' / inside} would go in {out / 'x.jpg'}, which is the output of "
        f"{tmp_path / 'shots' / 'x.png'}"
    )
    assert [job.problem for job in jobs[:-1]] == [None, None]


class JobError(Exception):
    """A failure of one file that the batch is told to report and move past (``handled``)."""


def writing_stages(failing_stage: str | None = None, failing_name: str = "bad.jpg", depth: int = 1) -> Lane:
    """A lane that writes b"new" to the target; ``failing_stage`` raises a JobError for one input."""

    def maybe_fail(stage: str, job: Job) -> None:
        if stage == failing_stage and job.source.name == failing_name:
            raise JobError(f"{failing_name}: broken in {stage}")

    def read(job: Job) -> str:
        maybe_fail("read", job)
        return job.source.name

    def compute(job: Job, name: str) -> bytes:
        maybe_fail("compute", job)
        return b"new"

    def write(job: Job, name: str, data: bytes) -> float:
        maybe_fail("write", job)
        job.target.write_bytes(data)
        return 2.0

    return Lane(read, compute, write, depth)


def test_a_failure_does_not_stop_the_batch_and_existing_outputs_are_kept(tmp_path: Path) -> None:
    existing = tmp_path / "kept.png"
    existing.write_bytes(b"precious")
    as_recnet_wrote(existing)  # an earlier run's: --overwrite replaces it
    jobs = [
        Job(tmp_path / "bad.jpg", tmp_path / "bad_out.png"),
        Job(tmp_path / "good.jpg", tmp_path / "good_out.png"),
        Job(tmp_path / "old.jpg", existing),
    ]
    summary = run_jobs(jobs, [writing_stages("read")], handled=(JobError,))
    assert [o.status for o in summary.outcomes] == ["failed", "done", "failed"]
    assert "--overwrite" in summary.outcomes[2].reason
    assert existing.read_bytes() == b"precious"
    assert (summary.count("done"), summary.failed) == (1, 2)

    skipping = run_jobs(jobs[2:], [writing_stages()], skip_existing=True)
    assert skipping.outcomes[0].status == "skipped" and existing.read_bytes() == b"precious"
    replacing = run_jobs(jobs[2:], [writing_stages()], overwrite=True)
    assert replacing.outcomes[0].status == "done" and existing.read_bytes() == b"new"


def test_without_a_lane_skipped_jobs_are_recorded_and_one_runnable_since_is_not_run(tmp_path: Path) -> None:
    # No model is loaded where every job was refused as planned; an output removed meanwhile must not crash
    kept = as_recnet_wrote(touch(tmp_path, "kept.png") / "kept.png")
    (tmp_path / "empty.jpg").write_bytes(b"")  # a job refused as planned by its input: failed, as planned
    jobs = [
        Job(tmp_path / "a.jpg", kept),
        Job(tmp_path / "empty.jpg", tmp_path / "empty.png"),
        Job(tmp_path / "b.jpg", tmp_path / "gone.png"),
    ]
    (tmp_path / "b.jpg").write_bytes(b"a photo")
    summary = run_jobs(jobs, [], skip_existing=True)
    assert [(o.status, o.reason) for o in summary.outcomes] == [
        ("skipped", "output exists"),
        ("failed", "empty file"),
        ("not run", "its output was removed as the batch began: run the command again"),
    ]


@pytest.mark.parametrize("depth", [1, 3])
def test_an_output_that_appears_during_the_batch_is_kept_as_one_there_before(
    tmp_path: Path, depth: int
) -> None:
    # Checked for existence when the batch starts, the outputs appear before their job writes them (another
    # run's): the writers keep them and the job ends as if they had been there all along.
    jobs = [masked_job(tmp_path, name) for name in ("photo", "mask", "free")]

    def write(job: Job, name: str, data: bytes) -> float:
        appearing = {"photo": job.target, "mask": job.companions[0]}.get(job.source.stem)
        if appearing is not None:
            appearing.write_bytes(b"MY EDIT")
            as_recnet_wrote(appearing)  # another run's; a user's is refused otherwise (test_overwrite_…)
        for path in (*job.companions, job.target):  # as the commands write them: the photo last
            write_rgb8(path, np.zeros((2, 2, 3), np.uint8), overwrite=False)
        return 1.0

    stages = Lane(lambda job: job.source.name, lambda job, name: b"", write, depth)
    refused = ("failed", f"output {jobs[0].target} exists (use --overwrite or --skip-existing)")
    for skip_existing, photo_outcome in ((False, refused), (True, ("skipped", "output exists"))):
        for path in tmp_path.iterdir():
            path.unlink()
        summary = run_jobs(jobs, [stages], skip_existing=skip_existing)
        assert [(o.status, o.reason) for o in summary.outcomes] == [
            photo_outcome,
            ("failed", f"output {jobs[1].companions[0]} exists, but not {jobs[1].target} (use --overwrite)"),
            ("done", ""),
        ]
        assert jobs[0].target.read_bytes() == jobs[1].companions[0].read_bytes() == b"MY EDIT"
        assert not jobs[1].target.exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("stage", ["read", "compute", "write"])
def test_a_failure_in_any_stage_is_that_job_s_alone_and_order_is_kept(
    tmp_path: Path, stage: str, depth: int
) -> None:
    names = ["a.jpg", "bad.jpg", "c.jpg", "d.jpg"]
    jobs = [Job(tmp_path / name, tmp_path / f"{name}.out") for name in names]
    seen: list[str] = []
    summary = run_jobs(
        jobs,
        [writing_stages(stage, depth=depth)],
        on_outcome=lambda o: seen.append(o.job.source.name),
        handled=(JobError,),
    )
    assert seen == names
    assert [o.status for o in summary.outcomes] == ["done", "failed", "done", "done"]
    assert summary.outcomes[1].reason == f"bad.jpg: broken in {stage}"
    assert [(tmp_path / f"{n}.out").exists() for n in names] == [True, False, True, True]


@pytest.mark.parametrize("depth", [1, 3])
def test_on_ctrl_c_photos_already_corrected_are_written_and_counted(tmp_path: Path, depth: int) -> None:
    jobs = [Job(tmp_path / name, tmp_path / f"{name}.out") for name in ["a.jpg", "b.jpg", "stop.jpg"]]
    stages = writing_stages()

    def compute(job: Job, name: str) -> bytes:
        if name == "stop.jpg":
            raise KeyboardInterrupt
        return b"new"

    seen: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        run_jobs(
            jobs,
            [Lane(stages.read, compute, stages.write, depth)],
            on_outcome=lambda o: seen.append(f"{o.job.source.name} {o.status}"),
        )
    assert seen == ["a.jpg done", "b.jpg done"]
    assert [job.target.exists() for job in jobs] == [True, True, False]


@pytest.mark.parametrize("depth", [1, 3])
def test_a_full_disk_stops_the_batch_and_the_rest_is_not_run(tmp_path: Path, depth: int) -> None:
    jobs = [Job(tmp_path / f"{name}.jpg", tmp_path / f"{name}.out") for name in "abcdefgh"]
    computed: list[str] = []

    def compute(job: Job, name: str) -> bytes:
        computed.append(name)
        return b"new"

    def write(job: Job, name: str, data: bytes) -> float:
        if name != "a.jpg":
            raise ImageWriteError(job.target, "no space left on device", errno.ENOSPC)
        job.target.write_bytes(data)
        return 1.0

    stages = [Lane(writing_stages().read, compute, write, depth)]
    summary = run_jobs(jobs, stages, handled=(ImageWriteError,))
    statuses = [o.status for o in summary.outcomes]
    assert statuses[:2] == ["done", "failed"] and statuses[-3:] == ["not run"] * 3
    assert "done" not in statuses[1:] and len(computed) <= 2 + depth
    assert summary.as_dict()["not_run"] == statuses.count("not run")
    assert summary.outcomes[-1].reason == f"the batch stopped: {jobs[1].target}: no space left on device"


@pytest.mark.parametrize("skip_existing", [True, False])
def test_an_output_another_run_wrote_meanwhile_is_looked_at_before_its_photo_is_corrected(
    tmp_path: Path, skip_existing: bool
) -> None:
    # Two runs with --skip-existing on one folder corrected every photo twice, one throwing each away
    jobs = [Job(tmp_path / f"{name}.jpg", tmp_path / f"{name}.out") for name in "abc"]
    computed: list[str] = []

    def compute(job: Job, name: str) -> bytes:
        computed.append(name)
        for other in jobs[1:]:  # the other run got there first
            other.target.write_bytes(b"the other run's")
            as_recnet_wrote(other.target)
        return b"new"

    stages = writing_stages()
    summary = run_jobs(jobs, [Lane(stages.read, compute, stages.write)], skip_existing=skip_existing)
    outcomes = [(o.status, o.reason) for o in summary.outcomes]
    assert outcomes[0] == ("done", "") and computed == ["a.jpg"]
    for (status, reason), job in zip(outcomes[1:], jobs[1:], strict=True):
        if skip_existing:
            assert (status, reason) == ("skipped", "output exists")
        else:
            assert status == "failed" and reason.startswith(f"output {job.target} exists")
    assert jobs[2].target.read_bytes() == b"the other run's"


def test_a_file_of_the_users_saved_at_a_companion_while_its_photo_is_corrected_is_kept_with_skip_existing(
    tmp_path: Path,
) -> None:
    # --skip-existing writes over the companions a stopped run left: one the user saved there since the
    # batch looked is no longer that, and is kept
    skip_unless_marks_kept(tmp_path)
    job = masked_job(tmp_path, "photo")
    mask = job.companions[0]
    as_recnet_wrote(touch(tmp_path, mask.name) / mask.name)  # what a run that stopped short left

    def compute(job: Job, name: str) -> bytes:
        mask.write_bytes(b"MY EDIT")  # no mark: the user's
        return b""

    def write(job: Job, name: str, data: bytes) -> float:
        pixels = np.zeros((2, 2, 3), np.uint8)
        write_rgb8(mask, pixels, overwrite=True)  # as the commands write companions with --skip-existing
        write_rgb8(job.target, pixels, overwrite=False)
        return 1.0

    summary = run_jobs([job], [Lane(lambda job: job.source.name, compute, write)], skip_existing=True)
    assert [(o.status, o.reason) for o in summary.outcomes] == [
        ("failed", f"output {mask} exists, and {THEIRS}: {ELSEWHERE}")
    ]
    assert mask.read_bytes() == b"MY EDIT" and not job.target.exists()


def test_an_output_folder_made_read_only_or_removed_mid_batch_is_looked_at_before_each_photo(
    tmp_path: Path, monkeypatch
) -> None:
    # Made read-only: the photos left fail without being corrected for nothing; removed: it is made again.
    folders = {"locked": tmp_path / "locked", "removed": tmp_path / "removed"}
    jobs = [Job(tmp_path / f"{n}.jpg", folder / f"{n}.out") for folder in folders.values() for n in "abc"]
    computed: list[str] = []
    system_access = os.access

    def compute(job: Job, name: str) -> bytes:
        computed.append(f"{job.target.parent.name}/{name}")
        if len(computed) == 1:  # both folders made by the batch's start, then changed while it runs
            locked = lambda path, mode: path != folders["locked"] and system_access(path, mode)  # noqa: E731
            monkeypatch.setattr(os, "access", locked)  # chmod 555 (root writes in it anyway)
            shutil.rmtree(folders["removed"])
        return b"new"

    summary = run_jobs(jobs, [Lane(writing_stages().read, compute, writing_stages().write)])
    assert [(o.status, o.reason) for o in summary.outcomes] == [
        ("done", ""),
        *[("failed", f"cannot write in folder {folders['locked']}: permission denied")] * 2,
        *[("done", "")] * 3,
    ]
    assert computed == ["locked/a.jpg", "removed/a.jpg", "removed/b.jpg", "removed/c.jpg"]
    assert sorted(path.name for path in folders["removed"].iterdir()) == ["a.out", "b.out", "c.out"]


def test_an_error_of_one_file_does_not_stop_the_batch(tmp_path: Path) -> None:
    jobs = [Job(tmp_path / f"{name}.jpg", tmp_path / f"{name}.out") for name in "abc"]

    def write(job: Job, name: str, data: bytes) -> float:
        if name == "a.jpg":
            raise ImageWriteError(job.target, "permission denied", errno.EACCES)
        job.target.write_bytes(data)
        return 1.0

    stages = writing_stages()
    summary = run_jobs(jobs, [Lane(stages.read, stages.compute, write)], handled=(ImageWriteError,))
    assert [o.status for o in summary.outcomes] == ["failed", "done", "done"]


def test_an_output_folder_that_cannot_be_made_fails_its_job_with_the_reason(tmp_path: Path) -> None:
    fixed = tmp_path / "fixed"
    fixed.write_text("a file where the output folder should be")
    jobs = [Job(tmp_path / "a.jpg", fixed / "a.jpg"), Job(tmp_path / "b.jpg", fixed / "2024" / "b.jpg")]
    summary = run_jobs(jobs, [writing_stages()])
    assert [(o.status, o.reason) for o in summary.outcomes] == [
        ("failed", f"cannot create folder {fixed}: {fixed} is a file"),
        ("failed", f"cannot create folder {fixed / '2024'}: {fixed} is a file"),
    ]
    null = Path(os.devnull)  # -o /dev/null: a device, not a file, where a folder should be
    (job,) = run_jobs([Job(tmp_path / "a.jpg", null / "a.jpg")], [writing_stages()]).outcomes
    assert job.reason == f"cannot create folder {null}: {null} is a device"
    os.mkfifo(tmp_path / "pipe")
    (job,) = plan_outcomes([Job(tmp_path / "a.jpg", tmp_path / "pipe" / "a.jpg")], False, False).outcomes
    assert job.reason == f"cannot create folder {tmp_path / 'pipe'}: {tmp_path / 'pipe'} is a FIFO"


def test_a_folder_that_cannot_be_written_in_fails_its_jobs_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "card"
    jobs = [Job(tmp_path / "a.jpg", locked / "a.jpg"), Job(tmp_path / "b.jpg", tmp_path / "b_out.jpg")]
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    computed: list[str] = []
    stages = writing_stages()

    def compute(job: Job, name: str) -> bytes:
        computed.append(name)
        return b"new"

    summary = run_jobs(jobs, [Lane(stages.read, compute, stages.write)])
    assert [(o.status, o.reason) for o in summary.outcomes] == [
        ("failed", f"cannot write in folder {locked}: permission denied"),
        ("done", ""),
    ]
    assert computed == ["b.jpg"]


def test_reading_the_next_input_overlaps_the_compute(tmp_path: Path) -> None:
    """The second input is read while the first is being computed (a background read-ahead)."""
    second_read = threading.Event()
    jobs = [Job(tmp_path / f"{i}.jpg", tmp_path / f"{i}.out") for i in range(2)]

    def read(job: Job) -> str:
        if job.source.name == "1.jpg":
            second_read.set()
        return job.source.name

    def compute(job: Job, name: str) -> bool:
        return second_read.wait(timeout=10) if name == "0.jpg" else True

    overlapped: list[bool] = []
    stages = Lane(read, compute, lambda job, name, result: overlapped.append(result) or 1.0)
    assert run_jobs(jobs, [stages]).count("done") == 2
    assert overlapped == [True, True]


@pytest.mark.parametrize("depth", [1, 2])
def test_a_photo_is_counted_when_written_not_after_the_next_compute(tmp_path: Path, depth: int) -> None:
    """The first photo's outcome (its line, its time) comes while the second is still being computed."""
    first_counted = threading.Event()
    jobs = [Job(tmp_path / f"{i}.jpg", tmp_path / f"{i}.out") for i in range(2)]

    def compute(job: Job, name: str) -> bool:
        return first_counted.wait(timeout=5) if name == "1.jpg" else True

    computed: list[bool] = []
    stages = Lane(
        lambda job: job.source.name,
        compute,
        lambda job, name, result: computed.append(result) or 1.0,
        depth,
    )
    summary = run_jobs(jobs, [stages], on_outcome=lambda outcome: first_counted.set())
    assert summary.count("done") == 2 and computed == [True, True]
    assert summary.outcomes[0].seconds < 4  # its write and compute, not the second photo's compute


def test_a_deeper_lane_reads_several_inputs_ahead_but_no_more(tmp_path: Path) -> None:
    """With depth 2, inputs 1 and 2 are both read while input 0 is computed, no input after them (memory
    holds at most two photos ahead), and at most two reads run at once."""
    read_started = {name: threading.Event() for name in ("1.jpg", "2.jpg")}
    active, most_active, lock = 0, 0, threading.Lock()
    jobs = [Job(tmp_path / f"{i}.jpg", tmp_path / f"{i}.out") for i in range(6)]
    read_while_0_computed: set[str] = set()
    started: set[str] = set()

    def read(job: Job) -> str:
        nonlocal active, most_active
        with lock:
            active += 1
            most_active = max(most_active, active)
            started.add(job.source.name)
        if job.source.name in read_started:
            read_started[job.source.name].set()
        time.sleep(0.02)
        with lock:
            active -= 1
        return job.source.name

    def compute(job: Job, name: str) -> bool:
        if name != "0.jpg":
            return True
        both_read = all(event.wait(timeout=10) for event in read_started.values())
        time.sleep(0.3)  # time enough for a read of 3.jpg to start, were it let
        with lock:
            read_while_0_computed.update(started)
        return both_read

    overlapped: list[bool] = []
    stages = Lane(read, compute, lambda job, name, result: overlapped.append(result) or 1.0, depth=2)
    assert run_jobs(jobs, [stages]).count("done") == 6
    assert overlapped == [True] * 6
    assert read_while_0_computed == {"0.jpg", "1.jpg", "2.jpg"}
    assert most_active == 2


def test_a_deeper_lane_writes_several_outputs_behind_but_no_more(tmp_path: Path) -> None:
    """With depth 2, at most two corrected photos wait for their writes (memory holds no more of them)."""
    jobs = [Job(tmp_path / f"{i}.jpg", tmp_path / f"{i}.out") for i in range(5)]
    compute_started = [threading.Event() for _ in jobs]
    lock = threading.Lock()
    computed, written = 0, 0
    unwritten: list[int] = []  # corrected photos not yet written, as each compute starts

    def compute(job: Job, name: str) -> str:
        nonlocal computed
        with lock:
            unwritten.append(computed - written)
            computed += 1
        compute_started[int(job.source.stem)].set()
        return name

    def write(job: Job, name: str, result: str) -> float:
        nonlocal written
        later = int(job.source.stem) + 2  # a write takes as long as two computes, or longer
        if later < len(jobs):
            compute_started[later].wait(timeout=5)
        time.sleep(0.05)
        with lock:
            written += 1
        return 1.0

    assert run_jobs(jobs, [Lane(lambda job: job.source.name, compute, write, depth=2)]).count("done") == 5
    assert max(unwritten) == 2


def test_shards_split_a_collection_without_overlap(tmp_path: Path) -> None:
    for i in range(10):
        (tmp_path / f"{i:02d}.jpg").write_bytes(b"x")
    sources, _ = find_sources([str(tmp_path)])
    by_name = partial(take_shard, key=lambda source: source.path.name)
    shards = [by_name(sources, parse_shard(f"{k}/3")) for k in (1, 2, 3)]
    assert sorted(s.path.name for shard in shards for s in shard) == [s.path.name for s in sources]
    assert [len(shard) for shard in shards] == [4, 3, 3]
    assert by_name(sources, parse_shard("2/3")) == shards[1]  # the same on every machine
    # and the same set when another machine lists the inputs in another order, each in its own order
    for k in (1, 2, 3):
        assert by_name(sources[::-1], parse_shard(f"{k}/3")) == shards[k - 1][::-1]
    # full-width 1, superscript 3, more digits than int() converts
    for bad in ("0/3", "4/3", "1", "a/b", "1/0", "\uff11/3", "1/\u00b3", "1/" + "1" * 5000):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_companion_files_are_checked_and_protected_like_outputs(tmp_path: Path) -> None:
    source = tmp_path / "a.jpg"
    source.write_bytes(b"x")
    mask = tmp_path / "a_recnet_mask.png"
    mask.write_bytes(b"precious mask")
    (job,) = plan_jobs(find_sources([str(source)])[0], None, suffix="_recnet", companions=lambda t: (mask,))
    assert job.companions == (mask,)
    outcome = run_jobs([job], [writing_stages()]).outcomes[0]
    assert outcome.status == "failed" and str(mask) in outcome.reason
    assert mask.read_bytes() == b"precious mask"
    (clash,) = plan_jobs(find_sources([str(source)])[0], None, suffix="_x", companions=lambda t: (source,))
    assert "is an input file" in clash.problem


def lane(number: int, ran: list[tuple[int, str]], delay: float = 0.0) -> Lane:
    """A lane that records (lane number, input name) for every job it computes."""

    def compute(job: Job, name: str) -> bytes:
        ran.append((number, name))
        time.sleep(delay)
        if name == "bad.jpg":
            raise JobError("bad.jpg: broken in compute")
        return f"lane {number}".encode()

    def write(job: Job, name: str, data: bytes) -> float:
        job.target.write_bytes(data)
        return 1.0

    return Lane(lambda job: job.source.name, compute, write)


def test_several_lanes_share_one_queue_and_the_summary_keeps_input_order(tmp_path: Path) -> None:
    names = [f"{i:02d}.jpg" for i in range(12)]
    names[5] = "bad.jpg"
    jobs = [Job(tmp_path / name, tmp_path / f"{name}.out") for name in names]
    ran: list[tuple[int, str]] = []
    lanes = [lane(0, ran, 0.02), lane(1, ran, 0.02), lane(2, ran, 0.02)]
    summary = run_jobs(jobs, lanes, handled=(JobError,))
    assert sorted(name for _, name in ran) == sorted(names)  # every job once
    assert {number for number, _ in ran} == {0, 1, 2}  # every lane took work
    assert [o.job.source.name for o in summary.outcomes] == names
    assert [o.status for o in summary.outcomes].count("done") == 11
    assert summary.outcomes[5].status == "failed" and "broken" in summary.outcomes[5].reason
    written = {job.target.read_bytes().decode() for job in jobs if job.target.exists()}
    assert written == {"lane 0", "lane 1", "lane 2"}


def test_a_faster_lane_takes_more_jobs(tmp_path: Path) -> None:
    jobs = [Job(tmp_path / f"{i}.jpg", tmp_path / f"{i}.out") for i in range(12)]
    ran: list[tuple[int, str]] = []
    run_jobs(jobs, [lane(0, ran, 0.002), lane(1, ran, 0.1)])
    taken = [sum(number == lane_number for number, _ in ran) for lane_number in (0, 1)]
    assert taken[0] > taken[1] >= 1


def test_an_unexpected_error_in_one_lane_stops_the_others(tmp_path: Path) -> None:
    jobs = [Job(tmp_path / f"{i}.jpg", tmp_path / f"{i}.out") for i in range(40)]
    ran: list[tuple[int, str]] = []

    def crash(job: Job, name: str) -> bytes:
        raise RuntimeError("device lost")

    broken = Lane(lambda job: job.source.name, crash, lambda job, name, data: 1.0)
    with pytest.raises(RuntimeError, match="device lost"):
        run_jobs(jobs, [lane(0, ran, 0.05), broken])
    assert len(ran) < 10  # the healthy lane stopped soon after, instead of running the whole batch


@pytest.mark.parametrize(
    ("lanes", "cores", "depth"), [(1, 2, 3), (1, 8, 4), (1, 16, 6), (1, 64, 6), (2, 16, 4), (4, 16, 3)]
)
def test_gpu_lanes_read_ahead_as_far_as_their_share_of_the_cores_allows(
    lanes: int, cores: int, depth: int
) -> None:
    assert gpu_lane_depth(lanes, cores=cores) == depth


GIB = 2**30


@pytest.mark.parametrize(
    ("lanes", "megapixels", "memory", "depth"),
    [
        (1, 12, 128 * GIB, 6),
        (1, 100, 128 * GIB, 6),
        (1, 24, 22 * GIB, 4),
        (1, 35, 22 * GIB, 2),
        (1, 100, 22 * GIB, 1),
        (2, 18, 22 * GIB, 2),
    ],
)
def test_gpu_lanes_read_ahead_less_where_the_largest_photo_would_overfill_host_memory(
    lanes: int, megapixels: float, memory: int, depth: int
) -> None:
    assert gpu_lane_depth(lanes, megapixels, cores=16, memory=memory) == depth


def test_photos_in_flight_stay_within_their_share_of_host_memory_unless_one_step_is_too_much() -> None:
    for lanes in (1, 2, 3):
        depths = []
        for megapixels in (0.5, 1, 6, 12, 24, 33, 45, 61, 100, 150, 400):
            depth = gpu_lane_depth(lanes, megapixels, cores=64, memory=16 * GIB)
            held = lanes * (depth + 1) * megapixels * 1e6 * IN_FLIGHT_BYTES_PER_PIXEL
            assert depth == 1 or held <= IN_FLIGHT_MEMORY_SHARE * 16 * GIB
            assert depth <= gpu_lane_depth(lanes, cores=64)
            depths.append(depth)
        assert depths == sorted(depths, reverse=True) and depths[0] > depths[-1] == 1


def test_outputs_of_jobs_refused_are_not_among_those_overwrite_would_replace_without_marks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # where no marks are kept, --overwrite names beforehand what it replaces: a refused job replaces nothing
    touch(tmp_path, "a.jpg", "b.jpg", "b_out.jpg")

    def unsupported(*_: object) -> bytes:
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "getxattr", unsupported)
    itself = Job(tmp_path / "a.jpg", tmp_path / "a.jpg", problem="the output would be the input itself")
    replaced = Job(tmp_path / "b.jpg", tmp_path / "b_out.jpg")
    assert unattributable_outputs([itself, replaced]) == [tmp_path / "b_out.jpg"]


def test_every_file_of_a_json_summary_has_the_same_keys() -> None:
    """Missing inputs lacked seconds and megapixels, so a script reading them failed on those alone."""
    done = Outcome(Job(Path("a.jpg"), Path("a_recnet.jpg")), "done", seconds=1.5, megapixels=12.0)
    summary = Summary([done], missing=[Unmatched("nope.jpg", "no such file or folder")])
    files = summary.as_dict()["files"]
    assert files[0].keys() == files[1].keys() and files[1]["output"] is None


def test_calibrate_refuses_where_its_model_cannot_go_before_calibrating(tmp_path: Path) -> None:
    model = tmp_path / "tuned.safetensors"
    assert calibrated_model_problem(model, overwrite=False) is None
    assert calibrated_model_problem(tmp_path / "tuned.pth", overwrite=False) == (
        f"-o {tmp_path / 'tuned.pth'}: the calibrated model is written as .safetensors"
    )
    model.with_suffix(".json").mkdir()  # a folder where a card goes
    assert (
        calibrated_model_problem(model, overwrite=True) == f"output {model.with_suffix('.json')} is a folder"
    )
    model.with_suffix(".json").rmdir()
    save_file({"w": np.zeros(1, np.float32)}, model, metadata={"architecture": "RECNet"})  # as recnet saves
    assert calibrated_model_problem(model, overwrite=False) == f"-o {model}: {model} exists (use --overwrite)"
    assert calibrated_model_problem(model, overwrite=True) is None
    save_file({"w": np.zeros(1, np.float32)}, model, metadata={"step": "40"})  # a run's checkpoint, say
    for overwrite in (False, True):  # --overwrite ended the run it was the checkpoint of
        assert calibrated_model_problem(model, overwrite=overwrite) == (
            f"-o {model}: {model} exists, and is no model recnet saved (a training checkpoint, another "
            "network's weights): move it away, or choose another -o"
        )
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "piped.safetensors").symlink_to(tmp_path / "pipe")  # read, it would block for ever
    assert "is no model recnet saved" in calibrated_model_problem(tmp_path / "piped.safetensors", True)
    in_a_file = tmp_path / "tuned.safetensors" / "model.safetensors"
    assert calibrated_model_problem(in_a_file, overwrite=False) == (
        f"-o {in_a_file}: cannot create folder {model}: {model} is a file"
    )


def test_calibrate_overwrite_does_not_take_a_link_to_a_saved_model_for_one(tmp_path: Path) -> None:
    # The link is the user's: its target, a model recnet saved, does not make it one
    model = tmp_path / "tuned.safetensors"
    save_file({"w": np.zeros(1, np.float32)}, model, metadata={"architecture": "RECNet"})  # as recnet saves
    linked = tmp_path / "linked.safetensors"
    linked.symlink_to(model)

    assert calibrated_model_problem(model, overwrite=True) is None
    assert calibrated_model_problem(linked, overwrite=True) == (
        f"-o {linked}: {linked} exists, and is no model recnet saved (a training checkpoint, another "
        "network's weights): move it away, or choose another -o"
    )


def test_calibrate_overwrite_keeps_a_card_of_recnet_s_that_was_edited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # notes added to the card for people, or a field to the JSON card, went without a word
    import json

    from recnet_cli.model import RECNet
    from recnet_cli.weights.save import save_model

    model = tmp_path / "tuned.safetensors"
    card_md, card_json = model.with_suffix(".md"), model.with_suffix(".json")
    skip_unless_marks_kept(tmp_path)
    for edited, edit in (
        (card_md, lambda: card_md.write_bytes(card_md.read_bytes() + b"\nMy notes for the Hub.\n")),
        (card_json, lambda: card_json.write_text(card_json.read_text().replace("4", "16", 1))),
    ):
        save_model(RECNet(channels=4, blocks=1), model, {"source": "test"})
        monkeypatch.setenv("RECNET_WEIGHTS_DIR", str(tmp_path))  # its card's usage line would say otherwise
        assert calibrated_model_problem(model, overwrite=True) is None
        edit()
        assert calibrated_model_problem(model, overwrite=True) == (
            f"-o {model}: {edited} was changed since recnet wrote it, and --overwrite would lose that: move "
            "it away, or choose another -o"
        )
        assert (
            calibrated_model_problem(model, overwrite=False)
            == f"-o {model}: {model} exists (use --overwrite)"
        )
    # a JSON card without recnet's mark (an older recnet's, or saved by an editor that replaces the file):
    # told by its fields
    save_model(RECNet(channels=4, blocks=1), model, {"source": "test"})
    unmarked = card_json.read_text()
    card_json.unlink()
    card_json.write_text(unmarked)
    assert calibrated_model_problem(model, overwrite=True) is None
    card_json.unlink()
    card_json.write_text(json.dumps(json.loads(unmarked) | {"my_note": "tuned"}))
    assert f"{card_json} was changed since recnet wrote it" in calibrated_model_problem(model, overwrite=True)


def test_calibrate_says_why_a_folder_of_recnet_s_outputs_has_no_photos_before_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It said "found 0" of a folder of 3 images, where train says they were passed over as recnet's
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        write_rgb8(photos / name, np.full((8, 8, 3), 128, np.uint8))  # marked, as correct's outputs are
    skip_unless_marks_kept(photos)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["calibrate", "--photos", "photos", "-o", "x.safetensors"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "note: passed over 3 images that look like recnet's outputs, by mark or name (photos/a.png, "
        "photos/b.png, photos/c.png): not the well-exposed photos needed",
        "error: photos: need at least 2 photos (one is held out to score the fit), found 0",
    ]


def test_calibrate_never_writes_over_a_training_run_s_model(tmp_path: Path) -> None:
    # --overwrite put another model in the run's place; --resume then named it as the run's
    run = tmp_path / "run"
    run.mkdir()
    final = run / "final.safetensors"
    save_file({"w": np.zeros(1, np.float32)}, final, metadata={"architecture": "RECNet"})  # as recnet saves
    assert calibrated_model_problem(final, overwrite=True) is None  # a folder of models, not a run's
    save_config(TrainConfig(run_dir=run, photos=tmp_path))
    for overwrite in (False, True):
        assert calibrated_model_problem(final, overwrite=overwrite) == (
            f"-o {final}: the training run {run}'s own model (there, or to come): choose another -o"
        )
    final.unlink()  # an unfinished run: calibrate's model would make it look finished, with another's model
    assert calibrated_model_problem(final, overwrite=False) == (
        f"-o {final}: the training run {run}'s own model (there, or to come): choose another -o"
    )
    assert calibrated_model_problem(run / "calibrated.safetensors", overwrite=False) is None  # beside it
