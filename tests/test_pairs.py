"""Finding image pairs in the LCDP, MSEC and plain two-folder layouts; scoring pairs of awkward files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from recnet_cli.engine import Corrector
from recnet_cli.evaluate import PairFailure, evaluate_pairs
from recnet_cli.model import RECNet
from recnet_cli.train.pairs import (
    ImagePair,
    PairingError,
    chosen_pairs,
    data_source_problem,
    find_pairs,
    list_images,
    match_by_stem,
    msec_scene,
    own_targets_note,
    pairs_to_learn_from,
    unsplit_note,
)

EXPOSURES = ("N1.5", "N1", "0", "P1", "P1.5")


def test_the_data_is_one_source_a_photo_folder_a_paired_dataset_or_inputs_with_targets() -> None:
    folder = Path("data")
    for photos, pairs, inputs, targets in [
        (folder, None, None, None),
        (None, folder, None, None),
        (None, None, folder, folder),
    ]:
        assert data_source_problem(pairs, inputs, targets, photos, takes_photos=True) is None
    for photos, pairs, inputs, targets in [
        (None, None, None, None),
        (folder, folder, None, None),
        (folder, None, folder, folder),
        (None, folder, folder, folder),
    ]:
        problem = data_source_problem(pairs, inputs, targets, photos, takes_photos=True)
        assert problem == "give one of --photos DIR, --pairs DIR, or both --inputs DIR and --targets DIR"
    assert data_source_problem(None, folder, folder, takes_photos=False) is None
    assert data_source_problem(folder, folder, None, takes_photos=False) == (
        "give either --pairs DIR or both --inputs DIR and --targets DIR"
    )
    # one of the two folders of pairs (train --inputs in/ alone said "give one of --photos DIR, ...")
    for takes_photos in (True, False):
        assert (
            data_source_problem(None, folder, None, takes_photos=takes_photos)
            == "--inputs needs --targets DIR, the folder of their ground truths (paired by file name)"
        )
        assert (
            data_source_problem(None, None, folder, takes_photos=takes_photos)
            == "--targets needs --inputs DIR, the folder of the photos to correct (paired by file name)"
        )


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_lcdp_layout_train_test_and_valid_splits(tmp_path: Path) -> None:
    touch(tmp_path / "input", "a.png", "b.png")
    touch(tmp_path / "gt", "a.png", "b.png")
    touch(tmp_path / "test-input", "c.png")
    touch(tmp_path / "test-gt", "c.png")
    touch(tmp_path / "valid-input", "d.png")
    touch(tmp_path / "valid-gt", "d.png")
    assert find_pairs(tmp_path, "train") == [
        ImagePair(tmp_path / "input" / "a.png", tmp_path / "gt" / "a.png"),
        ImagePair(tmp_path / "input" / "b.png", tmp_path / "gt" / "b.png"),
    ]
    assert find_pairs(tmp_path, "test") == [
        ImagePair(tmp_path / "test-input/c.png", tmp_path / "test-gt/c.png")
    ]
    # paired with another split's ground truths, --split valid would give wrong scores, or no pairs at all
    assert find_pairs(tmp_path, "valid") == [
        ImagePair(tmp_path / "valid-input/d.png", tmp_path / "valid-gt/d.png")
    ]


def test_msec_five_inputs_per_target(tmp_path: Path) -> None:
    testing = tmp_path / "testing"
    touch(
        testing / "INPUT_IMAGES",
        *[f"a0001-x_{e}.JPG" for e in EXPOSURES],
        *[f"a0002_{e}.JPG" for e in EXPOSURES],
    )
    touch(testing / "expert_c_testing_set", "a0001-x.jpg", "a0002.jpg")
    touch(testing / "expert_a_testing_set", "a0001-x.jpg", "a0002.jpg")
    pairs = find_pairs(tmp_path, "test")
    assert len(pairs) == 10
    assert {p.target.name for p in pairs} == {"a0001-x.jpg", "a0002.jpg"}
    assert all(p.target.parent.name == "expert_c_testing_set" for p in pairs)
    assert all(p.input.stem.startswith(p.target.stem + "_") for p in pairs)
    assert find_pairs(testing) == pairs  # the split folder itself works too
    # ... and gives the same pairs for every split, which eval says (a model may have trained on them)
    assert find_pairs(testing, "train") == pairs
    assert unsplit_note(testing, "test") == (
        f"{testing} has no split folders (training/, testing/, validation/): --split test is all its pairs"
    )
    assert unsplit_note(tmp_path, "test") is None


def test_msec_training_uses_gt_images(tmp_path: Path) -> None:
    touch(tmp_path / "training" / "INPUT_IMAGES", "s_0.JPG", "s_P1.JPG")
    touch(tmp_path / "training" / "GT_IMAGES", "s.jpg")
    assert [p.target.name for p in find_pairs(tmp_path, "train")] == ["s.jpg", "s.jpg"]


def test_an_msec_input_without_an_exposure_suffix_is_its_own_scene_underscores_too(tmp_path: Path) -> None:
    # Taken for scene "sun" at exposure "set", sun_set.JPG would have no partner in GT_IMAGES/, and training
    # and eval refuse the whole data set
    assert msec_scene(Path("sun_set.JPG")) == "sun_set"
    assert msec_scene(Path("sun_set_N1.5.JPG")) == "sun_set"
    assert msec_scene(Path("_P1.JPG")) == "_P1"  # no scene name before the exposure: the name is the scene
    touch(tmp_path / "INPUT_IMAGES", "sun_set.JPG", "sun_set_N1.5.JPG")
    touch(tmp_path / "GT_IMAGES", "sun_set.jpg")
    assert [(p.input.name, p.target.name) for p in find_pairs(tmp_path)] == [
        ("sun_set.JPG", "sun_set.jpg"),
        ("sun_set_N1.5.JPG", "sun_set.jpg"),
    ]


def test_two_folders_matched_by_stem_across_extensions(tmp_path: Path) -> None:
    touch(tmp_path / "in", "x.jpg", "y.png", "notes.txt", "._x.jpg")  # ._x.jpg: a Mac's resource fork
    touch(tmp_path / "out", "x.png", "y.tif", ".y.tif")
    pairs = match_by_stem(tmp_path / "in", tmp_path / "out")
    assert [(p.input.name, p.target.name) for p in pairs] == [("x.jpg", "x.png"), ("y.png", "y.tif")]


def test_one_folder_as_inputs_and_targets_is_refused_by_any_name_to_learn_from(tmp_path: Path) -> None:
    # calibrate wrote a model that never corrected (every image its own target); train --pairs of a data set
    # whose gt/ was a link to input/ trained without a word. eval scores such pairs: the identity's score.
    touch(tmp_path / "input", "a.png", "b.png")
    with pytest.raises(PairingError) as same:
        pairs_to_learn_from(None, "train", tmp_path / "input", tmp_path / "input")
    assert str(same.value) == (
        f"{tmp_path / 'input'}: the inputs and the targets are one folder: each image would be its own "
        "target, and the model would learn to change nothing"
    )
    (tmp_path / "gt").symlink_to("input")
    assert len(find_pairs(tmp_path, "train")) == 2
    with pytest.raises(PairingError) as linked:
        pairs_to_learn_from(tmp_path, "train", None, None)
    assert str(linked.value).startswith(f"{tmp_path / 'gt'} and {tmp_path / 'input'}: the inputs and the ")


def test_a_ground_truth_that_is_its_input_s_file_does_not_make_the_folders_one(tmp_path: Path) -> None:
    # a photo that needed no correction, its ground truth a link to it, among other pairs
    touch(tmp_path / "input", "a.png", "b.png")
    touch(tmp_path / "gt", "b.png")
    (tmp_path / "gt" / "a.png").symlink_to(tmp_path / "input" / "a.png")
    assert len(pairs_to_learn_from(None, "train", tmp_path / "input", tmp_path / "gt")) == 2
    assert own_targets_note(chosen_pairs(None, "test", tmp_path / "input", tmp_path / "gt")) is None


def test_eval_is_told_where_every_input_is_its_own_target(tmp_path: Path) -> None:
    # eval scores such pairs (how far the model moves a photo from itself); a typing slip looked like results
    touch(tmp_path / "input", "a.png", "b.png")
    touch(tmp_path / "gt", "a.png", "b.png")
    assert own_targets_note(chosen_pairs(None, "test", tmp_path / "input", tmp_path / "gt")) is None
    assert own_targets_note(chosen_pairs(None, "test", tmp_path / "input", tmp_path / "input")) == (
        f"{tmp_path / 'input'}: the inputs and the targets are one folder: each image is its own target, so "
        "the scores say how far the model moves a photo from itself"
    )


def test_photos_for_training_leave_out_hidden_files_and_folders(tmp_path: Path) -> None:
    touch(tmp_path / "photos", "a.jpg", "b.JPEG", "c.jfif", "._a.jpg")
    touch(tmp_path / "photos" / ".thumbnails", "a.jpg")
    touch(tmp_path / "photos" / "trip", "d.tif")
    found = list_images(tmp_path / "photos", recursive=True)
    assert [p.relative_to(tmp_path / "photos").as_posix() for p in found] == [
        "a.jpg",
        "b.JPEG",
        "c.jfif",
        "trip/d.tif",
    ]


def test_a_folder_of_photos_that_cannot_all_be_read_is_refused_not_used_in_part(
    tmp_path: Path, unreadable_folders
) -> None:
    touch(tmp_path / "photos", "a.jpg")
    touch(tmp_path / "photos" / "trip", "d.tif")
    unreadable_folders.add(tmp_path / "photos" / "trip")
    with pytest.raises(PairingError) as refused:
        list_images(tmp_path / "photos", recursive=True)
    assert str(refused.value) == f"{tmp_path / 'photos' / 'trip'}: cannot read this folder: permission denied"


def test_missing_partners_are_listed_with_a_count(tmp_path: Path) -> None:
    touch(tmp_path / "in", *[f"img{i}.png" for i in range(8)])
    touch(tmp_path / "out", "img0.png")
    with pytest.raises(
        PairingError, match=r"7 images without a partner.*img1.png, img2.png.*img5.png, and 2 more$"
    ) as error:
        match_by_stem(tmp_path / "in", tmp_path / "out")
    assert "img7.png" not in str(error.value)  # only the first few are named


def test_targets_without_inputs_are_an_error_too(tmp_path: Path) -> None:
    touch(tmp_path / "in", "a.png")
    touch(tmp_path / "out", "a.png", "extra.png")
    with pytest.raises(PairingError, match=r"out: 1 image without a partner in .*in: extra.png$"):
        match_by_stem(tmp_path / "in", tmp_path / "out")


def test_images_without_partners_on_both_sides_are_named_in_one_error(tmp_path: Path) -> None:
    # Only the inputs' were named: fixed, the next run named the targets'
    touch(tmp_path / "in", "a.png", "q03.png")
    touch(tmp_path / "gt", "a.png", "p03.png", "extra.png")
    with pytest.raises(PairingError) as error:
        match_by_stem(tmp_path / "in", tmp_path / "gt")
    assert str(error.value) == (
        f"{tmp_path / 'in'}: 1 image without a partner in {tmp_path / 'gt'}: q03.png; "
        f"{tmp_path / 'gt'}: 2 images without a partner in {tmp_path / 'in'}: extra.png, p03.png"
    )


def test_an_msec_split_whose_folder_is_missing_is_named(tmp_path: Path) -> None:
    """It said `no known layout` of a folder in the MSEC layout."""
    touch(tmp_path / "training" / "INPUT_IMAGES", "s_0.JPG")
    touch(tmp_path / "training" / "GT_IMAGES", "s.jpg")
    with pytest.raises(PairingError) as missing:
        find_pairs(tmp_path, "test")
    held = f"{tmp_path} holds the train split: give --split train"
    assert str(missing.value) == (
        f"{tmp_path / 'testing'}: no such folder (the MSEC layout's test split; {held})"
    )
    touch(tmp_path / "validation", "notes.txt")
    with pytest.raises(PairingError) as empty:
        find_pairs(tmp_path, "valid")
    assert str(empty.value) == (
        f"{tmp_path / 'validation' / 'INPUT_IMAGES'}: no such folder (the MSEC layout's valid split; {held})"
    )


def test_an_lcdp_split_whose_folder_is_missing_is_named_as_an_msec_one_is(tmp_path: Path) -> None:
    touch(tmp_path / "input", "a.png")
    touch(tmp_path / "gt", "a.png")
    with pytest.raises(PairingError) as missing:
        find_pairs(tmp_path, "test")
    # the train split alone, as examples/make_synthetic_pairs.py writes it, where eval's default is test
    assert str(missing.value) == (
        f"{tmp_path / 'test-input'}: no such folder (the LCDP layout's test split; "
        f"{tmp_path} holds the train split: give --split train)"
    )
    touch(tmp_path / "test-input", "a.png")
    (tmp_path / "test-gt").write_text("a file")
    with pytest.raises(PairingError) as not_folder:
        find_pairs(tmp_path, "test")
    assert str(not_folder.value) == (
        f"{tmp_path / 'test-gt'}: not a folder (the LCDP layout's test split; "
        f"{tmp_path} holds the train split: give --split train)"
    )
    touch(tmp_path / "valid-input", "a.png")
    touch(tmp_path / "valid-gt", "a.png")
    with pytest.raises(PairingError, match=r"holds the train and valid splits: give --split train\)$"):
        find_pairs(tmp_path, "test")


def test_an_lcdp_data_set_of_its_test_split_alone_is_in_the_lcdp_layout(tmp_path: Path) -> None:
    touch(tmp_path / "test-input", "c.png")
    touch(tmp_path / "test-gt", "c.png")
    assert find_pairs(tmp_path, "test") == [
        ImagePair(tmp_path / "test-input/c.png", tmp_path / "test-gt/c.png")
    ]
    with pytest.raises(PairingError) as missing:
        find_pairs(tmp_path, "train")
    assert str(missing.value) == (
        f"{tmp_path / 'input'}: no such folder (the LCDP layout's train split; "
        f"{tmp_path} holds the test split: give --split test)"
    )


def test_msec_input_without_target_is_an_error(tmp_path: Path) -> None:
    touch(tmp_path / "INPUT_IMAGES", "a_0.JPG", "b_0.JPG")
    touch(tmp_path / "GT_IMAGES", "a.jpg")
    with pytest.raises(PairingError, match=r"1 image without a partner.*b_0.JPG"):
        find_pairs(tmp_path)


def test_unknown_layout_empty_folder_duplicates_and_bad_split(tmp_path: Path) -> None:
    touch(tmp_path / "photos", "a.jpg")
    with pytest.raises(PairingError, match="no known layout"):
        find_pairs(tmp_path)
    with pytest.raises(PairingError, match="unknown split"):
        find_pairs(tmp_path, "holdout")
    touch(tmp_path / "empty")
    with pytest.raises(PairingError, match="no images"):
        match_by_stem(tmp_path / "photos", tmp_path / "empty")
    touch(tmp_path / "nested", "notes.txt")
    touch(tmp_path / "nested" / "2024", "a.jpg", "b.jpg")
    with pytest.raises(PairingError) as nested:
        match_by_stem(tmp_path / "nested", tmp_path / "photos")
    assert str(nested.value) == (
        f"{tmp_path / 'nested'}: no images (its sub-folders have 2; pairs are read from the folder itself, "
        "not below it)"
    )
    touch(tmp_path / "notes", "notes.txt")
    with pytest.raises(PairingError, match=r"notes: no images \(1 other file: \.txt; "):
        match_by_stem(tmp_path / "notes", tmp_path / "photos")
    touch(tmp_path / "twice", "a.jpg", "a.png")
    with pytest.raises(PairingError, match=r"both a\.jpg and a\.png"):
        match_by_stem(tmp_path / "twice", tmp_path / "photos")
    with pytest.raises(PairingError, match="missing: no such folder"):
        match_by_stem(tmp_path / "missing", tmp_path / "photos")
    with pytest.raises(PairingError, match=r"a\.jpg: not a folder"):
        match_by_stem(tmp_path / "photos" / "a.jpg", tmp_path / "photos")


def test_pairs_named_in_bytes_that_are_not_utf8_are_scored_and_a_damaged_one_fails_alone(
    tmp_path: Path,
) -> None:
    """Names from another system's archive reach Python as surrogates (OpenCV crashed on them); a truncated
    image is refused as `recnet correct` refuses it, and only its pair is left out."""
    photo = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    inputs, targets = tmp_path / "in", tmp_path / "gt"
    for folder in (inputs, targets):
        folder.mkdir()
        for stem in (b"good\xff", b"cut\xff"):
            Image.fromarray(photo).save(folder / os.fsdecode(stem + b".jpg"))
    cut = inputs / os.fsdecode(b"cut\xff.jpg")
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    pairs = match_by_stem(inputs, targets)
    report = evaluate_pairs(pairs, Corrector(RECNet(channels=4, blocks=1), torch.device("cpu")))
    assert [score.input for score in report.scores] == [inputs / os.fsdecode(b"good\xff.jpg")]
    assert report.failures == [
        PairFailure(cut, targets / cut.name, f"{cut}: truncated or corrupt image data"),
    ]
    assert json.loads(json.dumps(report.to_dict()))["failed"][0]["input"] == str(cut)
