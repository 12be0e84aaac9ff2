"""The explanatory figures (feature magnitudes, feature errors, contact sheet) and their commands."""

from __future__ import annotations

import itertools
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import as_recnet_wrote, make_photo, run
from PIL import Image

from recnet_cli.engine import EDGE_PAD, Corrector, with_border
from recnet_cli.imaging.pixels import quantise
from recnet_cli.model import RECNet
from recnet_cli.model.recnet import RegionAwareDeExposure
from recnet_cli.viz import draw
from recnet_cli.viz import features as features_module
from recnet_cli.viz.features import (
    FIGURE_WIDTH,
    TEXT,
    TILE,
    Features,
    bears_out,
    distance_chart,
    extract_features,
    feature_error_figure,
    feature_figure,
    heat_row,
    image_error,
    missing_region,
    region_distances,
    robust_top,
    signed_error_limit,
    stage_names,
)
from recnet_cli.viz.mask import mask_overlay
from recnet_cli.viz.sheet import FRAME, Explained, contact_sheet, explain, photo_panel, strength_caption


def two_region_features(gaps: list[float], channels: int = 8, size: int = 32) -> Features:
    """Left half under-exposed, right half over-exposed; stage k's region means are gaps[k] apart."""
    mask = np.zeros((size, size), np.float32)
    mask[:, : size // 2] = 1
    stages = []
    for gap in gaps:
        stage = np.full((size, size, channels), 0.3, np.float32)
        stage[:, : size // 2, 0] += gap / 2
        stage[:, size // 2 :, 0] -= gap / 2
        stages.append(stage)
    return Features(mask=mask, stages=stages)


def bar_lengths(chart: np.ndarray) -> list[int]:
    """The length of each bar in a chart: runs of columns holding the bar colour, measured in the middle."""
    is_bar = np.all(chart == draw.BLUE, axis=-1)
    columns = np.flatnonzero(is_bar.any(axis=0))
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1) if columns.size else []
    return [int(is_bar[:, run[len(run) // 2]].sum()) for run in runs]


def test_region_distance_is_the_gap_between_the_region_means() -> None:
    gaps = [6.0, 5.0, 3.5, 2.0, 1.0, 0.5]
    assert region_distances(two_region_features(gaps)) == pytest.approx(gaps, rel=1e-5)


def test_the_bar_chart_shrinks_with_the_distances() -> None:
    lengths = bar_lengths(distance_chart(two_region_features([6.0, 5.0, 3.5, 2.0, 1.0, 0.5])))
    assert len(lengths) == 6
    assert all(a > b > 0 for a, b in itertools.pairwise(lengths))
    assert lengths[0] / lengths[-1] == pytest.approx(12, rel=0.1)


@pytest.mark.parametrize(
    ("distances", "said"),
    [
        (
            [0.413, 0.6, 0.554],
            "In this photo: 0.413 extracted, 0.554 after block 2: 34% further apart than extracted",
        ),
        ([2.0, 1.0, 0.5], "In this photo: 2 extracted, 0.5 after block 2: 75% closer than extracted"),
        ([1.0, 3.0, 1.001], "In this photo: 1 extracted, 1 after block 2: as far apart as extracted"),
        ([0.0, 1.0, 0.0], "In this photo: 0 extracted, 0 after block 2: as far apart as extracted"),
        ([0.0, 1.0, 0.5], "In this photo: 0 extracted, 0.5 after block 2: further apart than extracted"),
    ],
)
def test_the_chart_says_whether_the_photo_bears_the_claim_out(distances: list[float], said: str) -> None:
    assert bears_out(distances) == said


@pytest.mark.parametrize(("mask_value", "word"), [(1.0, "over-exposed"), (0.0, "under-exposed")])
def test_an_empty_region_is_said_not_drawn(mask_value: float, word: str) -> None:
    features = two_region_features([1.0] * 6)
    features.mask[:] = mask_value
    assert word in missing_region(features.mask)
    assert bar_lengths(distance_chart(features)) == []
    figure = feature_figure(features)
    assert figure.shape[1] >= FIGURE_WIDTH


@pytest.fixture
def cli_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def model() -> RECNet:
    torch.manual_seed(0)
    return RECNet().eval()


def test_features_are_computed_on_a_downscaled_copy(model: RECNet) -> None:
    photo = np.random.default_rng(0).random((90, 300, 3), dtype=np.float32)
    features = extract_features(model, photo, long_side=120)
    assert features.mask.shape == (36, 120)
    assert len(features.stages) == 6 and features.stages[3].shape == (36, 120, 8)


def test_the_features_mask_is_the_one_correcting_gives(model: RECNet) -> None:
    """With the mirrored border correcting adds: without it the mask differed near the edges (by up to 0.36)
    and the regions the distances are taken over were not those of the mask shown."""
    photo = np.random.default_rng(2).random((40, 64, 3), dtype=np.float32)
    shown = Corrector(model, torch.device("cpu"), tile=0).correct(photo).mask
    np.testing.assert_allclose(extract_features(model, photo).mask, shown, atol=1e-5)


def test_features_blur_the_mask_once_for_every_block_as_the_reference_does_block_by_block(
    model: RECNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference's two 31x31 convolutions a block took most of ``explain``'s time: the features come
    from one FFT of the mask for all blocks, with the same values."""
    photo = np.random.default_rng(3).random((40, 64, 3), dtype=np.float32)
    with torch.inference_mode():
        by_block = model.forward_with_intermediates(with_border(photo, torch.device("cpu")))

    def blur_block_by_block(*_: object) -> None:
        raise AssertionError("the reference's blur, block by block")

    monkeypatch.setattr(RegionAwareDeExposure, "branch_masks", blur_block_by_block)
    features = extract_features(model, photo)
    inside = (0, slice(None), slice(EDGE_PAD, -EDGE_PAD), slice(EDGE_PAD, -EDGE_PAD))
    names = ["extract", "block1", "block2", "block3", "block4", "block5"]
    for stage, name in zip(features.stages, names, strict=True):
        np.testing.assert_allclose(stage, by_block[name][inside].permute(1, 2, 0).numpy(), atol=1e-4)


def test_features_of_a_one_pixel_photo_are_those_of_two_and_read_only_pixels_need_no_copy(
    model: RECNet,
) -> None:
    photo = np.full((1, 1, 3), 0.5, np.float32)
    photo.flags.writeable = False  # as a decoded photo's may be: no warning from torch
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features = extract_features(model, photo)
    assert features.mask.shape == (2, 2) and features.stages[0].shape == (2, 2, 8)


def test_feature_figure_has_the_layout_size_and_is_not_blank(model: RECNet) -> None:
    photo = np.random.default_rng(1).random((48, 72, 3), dtype=np.float32)
    figure = feature_figure(extract_features(model, photo))
    assert figure.dtype == np.uint8 and figure.shape[2] == 3
    assert FIGURE_WIDTH <= figure.shape[1] <= FIGURE_WIDTH + 40
    assert 400 < figure.shape[0] < 1200
    assert len(np.unique(figure.reshape(-1, 3), axis=0)) > 100  # heat maps, not a blank page


def test_feature_figure_of_a_panorama_keeps_its_titles(model: RECNet) -> None:
    """A 75:1 strip gives heat maps a few pixels high; the figure keeps its width and its titles."""
    photo = np.random.default_rng(1).random((8, 600, 3), dtype=np.float32)
    wide = feature_figure(extract_features(model, photo))
    assert wide.shape[1] <= FIGURE_WIDTH + 40 and wide.shape[0] > 300


def error_colours(corrected: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The mean colour of the signed error picture (the left part of ``image_error``)."""
    picture = image_error(corrected, reference)
    return picture[10:100, 10:100].reshape(-1, 3).mean(axis=0)


def test_signed_error_is_blue_when_too_dark_and_red_when_too_bright() -> None:
    reference = np.random.default_rng(2).uniform(0.3, 0.7, (40, 60, 3)).astype(np.float32)
    red, _, blue = error_colours(reference * 0.6, reference)
    assert blue > red + 60
    red, _, blue = error_colours(np.clip(reference * 1.4, 0, 1), reference)
    assert red > blue + 60


def test_error_figure_needs_a_reference_of_the_photo_size(model: RECNet) -> None:
    photo = np.random.default_rng(3).random((32, 48, 3), dtype=np.float32)
    reference = np.random.default_rng(4).random((48, 32, 3), dtype=np.float32)
    features = extract_features(model, photo)
    with pytest.raises(ValueError, match="32 x 48 pixels but the photo is 48 x 32"):
        feature_error_figure(features, extract_features(model, reference), photo, reference)


def test_the_error_figure_s_block_k_shows_the_distance_after_block_k(monkeypatch: pytest.MonkeyPatch) -> None:
    # off by one stage, each "block k" panel would show block k-1's distance (the first, the extracted
    # features') and the last block's none: the sheet would blame the wrong block
    def stage(value: float) -> np.ndarray:
        return np.full((8, 8, 1), value, np.float32)

    mask = np.zeros((8, 8), np.float32)
    photo = Features(mask=mask, stages=[stage(0.0)] * 4)
    reference = Features(mask=mask, stages=[stage(0.9), stage(0.1), stage(0.2), stage(0.4)])
    drawn: list[tuple[list[np.ndarray], list[str]]] = []

    def recording(maps: list[np.ndarray], titles: list[str], *rest: object) -> np.ndarray:
        drawn.append((maps, titles))
        return heat_row(maps, titles, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(features_module, "heat_row", recording)
    rgb = np.full((16, 16, 3), 0.5, np.float32)
    feature_error_figure(photo, reference, rgb, rgb)
    [(maps, titles)] = drawn
    assert [float(m.mean()) for m in maps] == pytest.approx([0.1, 0.2, 0.4])
    assert titles == ["block 1: mean 0.1", "block 2: mean 0.2", "block 3: mean 0.4"]


def test_contact_sheet_stacks_photos_features_and_errors(model: RECNet) -> None:
    photo = np.random.default_rng(5).random((48, 72, 3), dtype=np.float32)
    reference = np.clip(photo * 1.2, 0, 1)
    features, truth = extract_features(model, photo), extract_features(model, reference)
    errors = feature_error_figure(features, truth, photo, reference)
    thumbnail = np.full((300, 450, 3), 128, np.uint8)
    explained = Explained(thumbnail, thumbnail, thumbnail, feature_figure(features), errors)
    sheet = contact_sheet(explained, "title", "subtitle")
    without = contact_sheet(
        Explained(thumbnail, thumbnail, thumbnail, explained.features), "title", "subtitle"
    )
    assert sheet.shape[1] == without.shape[1] >= FIGURE_WIDTH
    assert sheet.shape[0] > without.shape[0] + errors.shape[0]
    assert without.shape[0] > 300 + explained.features.shape[0]


def test_a_white_photo_has_an_edge_against_the_sheets_paper() -> None:
    # A blown-out photo, what recnet is for, vanished into the white sheet
    panel = photo_panel(np.full((300, 450, 3), 255, np.uint8), ["1. Input", ""])
    framed = np.argwhere((panel == FRAME).all(axis=2))
    (top, left), (bottom, right) = framed.min(axis=0), framed.max(axis=0)
    assert (right - left - 1) / (bottom - top - 1) == pytest.approx(1.5, abs=0.02)  # the photo inside
    assert (panel[top + 1 : bottom, left + 1 : right] == 255).all()
    for edge in (
        panel[top, left:right],
        panel[bottom, left:right],
        panel[top:bottom, left],
        panel[top:bottom, right],
    ):
        assert (edge == FRAME).all()


def test_the_sheet_says_how_much_of_the_correction_it_shows(model: RECNet) -> None:
    photo = np.random.default_rng(6).random((40, 56, 3), dtype=np.float32)
    half = explain(Corrector(model, torch.device("cpu"), strength=0.5), photo)
    assert half.strength == 0.5
    assert strength_caption(half.strength, False) == "strength 0.5 of the correction, the model's colours"
    assert strength_caption(1.0, False) == "the full correction (strength 1), the model's colours"
    kept = explain(Corrector(model, torch.device("cpu"), keep_colour=True), photo)
    assert kept.keep_colour and not half.keep_colour
    assert (
        strength_caption(kept.strength, kept.keep_colour)
        == "the full correction (strength 1), the photo's colours"
    )


def test_the_sheet_s_captions_say_the_strength_shown_and_the_mask_s_colours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    captions: list[list[str]] = []
    text_lines = draw.text_lines

    def recording(lines: list[str], *rest: object) -> np.ndarray:
        captions.append(list(lines))
        return text_lines(lines, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(draw, "text_lines", recording)
    picture = np.full((30, 45, 3), 128, np.uint8)
    contact_sheet(Explained(picture, picture, picture, picture, strength=0.999), "title", "subtitle")
    assert ["2. Corrected by RECNet", "strength 0.999 of the correction, the photo's colours"] in captions
    # the tints of mask_overlay (test_the_mask_overlay_is_blue_where_under_and_orange_where_over_exposed)
    assert ["3. Exposure mask seen by the model", "blue: under-exposed, orange: over-exposed"] in captions


def test_the_sheet_shows_a_grey_photo_corrected_in_grey_as_correct_writes_it(model: RECNet) -> None:
    # The model's output of a grey photo has a little colour, which correct drops (it writes grey): the
    # sheet showed a colour cast that the corrected file does not have
    grey = np.repeat(np.random.default_rng(7).random((40, 56, 1), dtype=np.float32), 3, axis=2)
    corrector = Corrector(model, torch.device("cpu"))
    coloured = explain(corrector, grey).corrected
    assert np.ptp(coloured.astype(int), axis=2).max() > 0  # the model's own output
    explained = explain(corrector, grey, grey=True)  # the model's colours asked for, and none shown
    shown = explained.corrected
    assert (shown == shown[..., :1]).all() and explained.keep_colour  # the caption says the photo's
    luma = corrector.correct(grey).image @ np.asarray([0.299, 0.587, 0.114], np.float32)
    assert np.array_equal(shown[..., 0], quantise(luma, 8))


def test_the_sheet_draws_the_photo_and_its_correction_in_the_colours_shown_gives(model: RECNet) -> None:
    # `recnet explain` passes the photo's conversion to sRGB: the sheet carries no colour profile
    photo = np.random.default_rng(8).random((40, 56, 3), dtype=np.float32)
    corrector = Corrector(model, torch.device("cpu"))
    explained = explain(corrector, photo, shown=lambda pixels: pixels**2)
    assert np.array_equal(explained.photo, quantise(photo**2, 8))
    assert np.array_equal(explained.corrected, quantise(corrector.correct(photo).image ** 2, 8))
    mask = corrector.correct(photo).mask
    assert np.array_equal(explained.mask, mask_overlay(photo**2, mask, legend=False))


def test_the_sheet_draws_what_a_photo_s_alpha_hides_as_a_checkerboard(model: RECNet) -> None:
    photo = np.random.default_rng(9).random((40, 56, 3), dtype=np.float32)
    alpha = np.zeros((40, 56), np.uint8)
    alpha[16:, 16:] = 255
    explained = explain(Corrector(model, torch.device("cpu")), photo, alpha=alpha)
    for picture in (explained.photo, explained.corrected, explained.mask):
        assert (picture[:8, :8] == 204).all() and (picture[:8, 8:16] == 153).all()
    assert np.array_equal(explained.photo[16:, 16:], quantise(photo[16:, 16:], 8))  # what shows, as it is


def test_explain_writes_a_contact_sheet(
    tmp_path: Path,
    cli_env: dict[str, str],
    model_file: Path,
) -> None:
    photo = make_photo(tmp_path / "shot.png")
    reference = make_photo(tmp_path / "truth.png")
    with_reference = run(
        [
            "explain",
            str(photo),
            "-r",
            str(reference),
            "-o",
            str(tmp_path / "sheet.png"),
            "--model",
            str(model_file),
        ],
        cli_env,
    )
    assert with_reference.returncode == 0, with_reference.stderr
    alone = run(["explain", str(photo), "--model", str(model_file)], cli_env)
    assert alone.returncode == 0, alone.stderr
    assert alone.stderr.endswith(f"note: wrote {tmp_path / 'shot_explain.png'}\n")
    quiet = run(
        ["explain", str(photo), "-o", str(tmp_path / "quiet.png"), "--model", str(model_file), "-q"], cli_env
    )
    assert (quiet.returncode, quiet.stderr) == (0, "") and (tmp_path / "quiet.png").is_file()
    sheet = Image.open(tmp_path / "sheet.png")
    default = Image.open(tmp_path / "shot_explain.png")
    assert sheet.width == default.width >= FIGURE_WIDTH
    assert sheet.height > default.height + 300  # the error section


def test_explain_refuses_bad_references_and_existing_sheets(
    tmp_path: Path,
    cli_env: dict[str, str],
    model_file: Path,
) -> None:
    photo = make_photo(tmp_path / "shot.png")
    other_size = make_photo(tmp_path / "big.png", size=(80, 48))
    mismatch = run(["explain", str(photo), "-r", str(other_size), "--model", str(model_file)], cli_env)
    assert mismatch.returncode == 1
    assert "big.png" in mismatch.stderr and "same size" in mismatch.stderr
    assert "Traceback" not in mismatch.stderr
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(b"not a model")  # found only as it loads: the reference was seen before, unloaded
    early = run(["explain", str(photo), "-r", str(other_size), "--model", str(damaged)], cli_env)
    assert (early.returncode, early.stderr) == (
        1,
        f"error: {other_size}: the reference is 80 x 48 pixels but the photo is 72 x 48: they must be the "
        "same size\n",
    )
    (tmp_path / "shot_explain.png").write_bytes(b"keep")
    as_recnet_wrote(tmp_path / "shot_explain.png")  # an earlier run's (a user's is kept even so)
    # A sheet that cannot be written exits 1, as correct's photo does; a mistake in the options, 2.
    exists = run(["explain", str(photo), "--model", str(model_file)], cli_env)
    assert exists.returncode == 1 and "--overwrite" in exists.stderr
    assert (tmp_path / "shot_explain.png").read_bytes() == b"keep"
    onto_photo = run(["explain", str(photo), "-o", str(photo), "--model", str(model_file)], cli_env)
    assert (
        onto_photo.returncode == 1 and f"{photo} is an input; refusing to overwrite it" in onto_photo.stderr
    )
    gif = run(["explain", str(photo), "-o", str(tmp_path / "sheet.gif"), "--model", str(model_file)], cli_env)
    assert gif.returncode == 2 and "cannot write .gif files" in gif.stderr
    notes = tmp_path / "notes.txt"
    notes.write_text("a file where the sheet's folder would go")
    blocked = run(["explain", str(photo), "-o", str(notes / "sheets"), "--model", str(model_file)], cli_env)
    assert blocked.returncode == 1 and f"{notes} is a file" in blocked.stderr
    assert "Traceback" not in blocked.stderr
    unread = run(["explain", str(tmp_path / "none.png"), "-o", str(tmp_path / "new" / "sheets")], cli_env)
    assert unread.returncode == 1 and "none.png: no such file" in unread.stderr
    assert not (tmp_path / "new").exists()  # no folder made for a sheet that was never drawn
    no_model = run(["explain", str(photo), "-o", str(tmp_path / "new" / "sheets"), "-m", str(notes)], cli_env)
    assert no_model.returncode == 2 and "notes.txt: unknown model file type" in no_model.stderr
    assert not (tmp_path / "new").exists()
    new_folder = ["-o", str(tmp_path / "new" / "sheets"), "--model", str(model_file)]
    unscored = run(["explain", str(photo), "-r", str(other_size), *new_folder], cli_env)
    assert unscored.returncode == 1 and "same size" in unscored.stderr
    assert not (tmp_path / "new").exists()


def test_explain_puts_its_sheet_in_a_folder_given_as_output(
    tmp_path: Path,
    cli_env: dict[str, str],
    model_file: Path,
) -> None:
    photo = make_photo(tmp_path / "shot.png")
    for folder in (tmp_path, tmp_path / "sheets"):  # an existing folder, a new one named without extension
        result = run(["explain", str(photo), "-o", str(folder), "--model", str(model_file)], cli_env)
        assert result.returncode == 0, result.stderr
        assert Image.open(folder / "shot_explain.png").width >= FIGURE_WIDTH
    typo = tmp_path / "sheet.jgp"  # not an image extension: a folder, as correct takes it, and said so
    result = run(["explain", str(photo), "-o", str(typo), "--model", str(model_file)], cli_env)
    assert result.returncode == 0 and (typo / "shot_explain.png").is_file()
    assert f"note: -o {typo}: .jgp is not an image extension, so it is taken as a folder" in result.stderr
    for typed in ("sheet.png/", "2024.06.01/"):  # a trailing slash makes any name a folder, with no note
        result = run(["explain", str(photo), "-o", typed, "--model", str(model_file)], cli_env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / typed / "shot_explain.png").is_file()
        assert result.stderr == f"note: wrote {typed}shot_explain.png\n"


def test_explain_draws_a_file_name_that_is_not_valid_utf8(
    tmp_path: Path,
    cli_env: dict[str, str],
    model_file: Path,
) -> None:
    # Linux keeps a name's bytes as they are: a Latin-1 "café" from an old camera or a copied card.
    photo = make_photo(tmp_path / os.fsdecode(b"caf\xe9.png"))
    result = run(["explain", str(photo), "-r", str(photo), "--model", str(model_file)], cli_env)
    assert result.returncode == 0, result.stderr  # OpenCV crashed drawing the title (SIGSEGV)
    assert Image.open(photo.with_name(f"{photo.stem}_explain.png")).width >= FIGURE_WIDTH


def test_save_features_writes_a_companion_with_overwrite_rules(
    tmp_path: Path,
    cli_env: dict[str, str],
    model_file: Path,
) -> None:
    photo = make_photo(tmp_path / "shot.jpg")
    args = [
        "correct",
        str(photo),
        "-o",
        str(tmp_path / "out.jpg"),
        "--save-features",
        "--model",
        str(model_file),
    ]
    first = run(args, cli_env)
    assert first.returncode == 0, first.stderr
    figure = Image.open(tmp_path / "out_features.png")
    assert figure.width >= FIGURE_WIDTH
    (tmp_path / "out.jpg").unlink()
    again = run(args, cli_env)
    assert again.returncode == 1 and "out_features.png exists" in again.stderr


def test_a_caption_wider_than_its_picture_widens_the_panel_instead_of_being_cut() -> None:
    narrow = np.zeros((40, 10, 3), dtype=np.uint8)
    panel = draw.captioned(narrow, "recnet mask (blue under, orange over)", height=40, scale=0.5)
    caption_width = draw.text_size("recnet mask (blue under, orange over)", 0.5)[0]
    assert panel.shape[1] >= caption_width + 2 * draw.text_margin(0.5)
    strip = panel[:-40]
    assert (strip[:, -draw.text_margin(0.5) :] == 255).all()  # white right margin: nothing cut off
    assert (panel[-40:, :10] == 0).all() and (panel[-40:, 10:] == 255).all()


def test_grid_lays_captioned_panels_out_in_rows_on_white() -> None:
    red = np.full((10, 20, 3), (255, 0, 0), dtype=np.uint8)
    panel = draw.captioned(red, "red", height=30, scale=0.4)
    assert panel.shape[1] == 60 and panel.shape[0] > 30 and (panel[-30:] == red[0, 0]).all()
    sheet = draw.grid([[panel, panel], [panel]], gap=4)
    assert sheet.shape == (2 * panel.shape[0] + 4, 2 * 60 + 4, 3)
    assert (sheet[panel.shape[0] + 4 :, 60:] == 255).all()  # the short row is padded with white


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0, 2.1, ["0", "0.5", "1", "1.5", "2"]),
        (0, 1, ["0", "0.2", "0.4", "0.6", "0.8", "1"]),
        (-0.137, 0.137, ["-0.1", "-0.05", "0", "0.05", "0.1"]),
        (0, 612.3, ["0", "200", "400", "600"]),
        (0, 0.3, ["0", "0.05", "0.1", "0.15", "0.2", "0.25", "0.3"]),
        (0, 1e-6, ["0", "2e-07", "4e-07", "6e-07", "8e-07", "1e-06"]),
        (0, 14, ["0", "2.5", "5", "7.5", "10", "12.5"]),
        (0, 3000, ["0", "500", "1000", "1500", "2000", "2500", "3000"]),
        (0.5, 0.5, ["0.5"]),
    ],
)
def test_colour_bars_are_numbered_at_round_values_within_their_range(
    low: float, high: float, ticks: list[str]
) -> None:
    values = draw.round_ticks(low, high)
    assert [draw.tick_label(value) for value in values] == ticks
    assert all(low - 1e-12 <= value <= high + 1e-12 for value in values)


def test_a_heat_row_of_narrow_maps_keeps_its_titles_whole() -> None:
    titles = stage_names(5)
    maps = [np.ones((300, 3), np.float32) for _ in titles]  # a tall, thin photo's
    row = heat_row(maps, titles, top=1.0)
    title_width = draw.text_size(titles[-1], TEXT)[0]
    assert row.shape[1] >= len(titles) * title_width


def test_a_heat_row_fills_the_figure_with_a_portrait_photo_as_with_a_landscape_one() -> None:
    titles = stage_names(5)
    for shape in ((200, 300), (300, 200)):
        row = heat_row([np.ones(shape, np.float32) for _ in titles], titles, top=1.0)
        assert FIGURE_WIDTH * 0.8 < row.shape[1] <= FIGURE_WIDTH, shape


def test_a_line_too_long_for_its_strip_is_shortened_in_the_middle_not_cut() -> None:
    name = "holiday_photo_from_the_long_trip_to_the_mountains_" * 3 + "final.jpg"
    line = draw.fitted_line(f"recnet explain: {name}", 600, 0.8)
    head, tail = line.split("...")  # where it splits depends on the font's widths (OpenCV 4 and 5 differ)
    assert head.startswith("recnet explain: holi") and tail.endswith("_mountains_final.jpg")
    assert draw.text_size(line, 0.8)[0] <= 600 - 2 * draw.text_margin(0.8)
    assert draw.fitted_line("short.jpg", 600, 0.8) == "short.jpg"
    strip = draw.text_lines([f"recnet explain: {name}"], 600, 0.8)
    assert (strip[:, -draw.text_margin(0.8) :] == 255).all()  # the right margin stays white


def drawn(text: str, scale: float = 1.0) -> np.ndarray:
    """The ink of one line of text drawn from (10, 45): True where it touched the white paper."""
    strip = draw.blank(60, 400)
    draw.put_text(strip, text, (10, 45), scale)
    return (strip < 255).any(axis=-1)


def test_a_name_with_a_newline_is_drawn_on_one_line_with_the_newline_escaped() -> None:
    # A photo named "new\nyear.jpg" was titled "recnet explain: new": its second line fell outside the strip
    one_line = draw.text_lines(["a\\nb.jpg"], 400, 0.8)
    assert np.array_equal(draw.text_lines(["a\nb.jpg"], 400, 0.8), one_line)


def test_a_feature_figure_of_its_own_is_titled_with_its_photo(model: RECNet) -> None:
    features = extract_features(model, np.random.default_rng(8).random((40, 56, 3), dtype=np.float32))
    titled, untitled = feature_figure(features, "recnet features: a.jpg"), feature_figure(features)
    assert titled.shape[1] == untitled.shape[1] and titled.shape[0] > untitled.shape[0]
    assert np.array_equal(titled[-untitled.shape[0] + 12 :], untitled[12:])  # the same figure below it


def test_latin_greek_and_cyrillic_letters_are_drawn_as_themselves() -> None:
    missing = drawn("\ue000")  # a private-use character: no font has it, so its ink is the font's box
    assert missing.any()
    for letter, plain in (("é", "e"), ("ü", "u"), ("ã", "a"), ("Ω", "O"), ("Ж", "X")):
        ink = drawn(letter)
        assert ink.any(), letter
        for other in (plain, "?", "\ue000"):  # its own glyph: neither its base letter, a ?, nor the box
            assert (ink != drawn(other)).any(), (letter, other)
    assert (drawn("café-Ωmega.jpg") != drawn("caf?-?mega.jpg")).any()


def test_text_at_an_edge_is_cut_at_the_edge_and_text_outside_draws_nothing() -> None:
    for origin in ((-20, 30), (370, 30), (10, 8), (10, 75)):
        strip = draw.blank(60, 400)
        draw.put_text(strip, "Ag edge", origin, 1.0)
        assert (strip < 255).any(), origin  # part of it shows
    strip = draw.blank(60, 400)
    for origin in ((-300, 30), (420, 30), (10, -20), (10, 120)):
        draw.put_text(strip, "Ag edge", origin, 1.0)
    assert (strip == 255).all()


def test_text_size_measures_the_ink_put_text_draws() -> None:
    for text, scale in (("recnet explain: café.jpg", 0.8), ("0.526", 0.47), ("Ag", 0.55), ("Жgy", 1.2)):
        ink = drawn(text, scale)
        width, height = draw.text_size(text, scale)
        right = np.flatnonzero(ink.any(axis=0)).max() + 1 - 10  # from the origin to the last inked column
        assert right <= width <= right + 2, text  # smoothing may leave its last column blank
        rows = np.flatnonzero(ink.any(axis=1))
        assert rows.max() - rows.min() < height, text


@pytest.mark.parametrize(
    ("size", "drawn"), [((200, 2000), True), ((400, 600), True), ((200, 300), False), ((60, 220), False)]
)
def test_the_mask_legend_is_legible_or_left_out(
    monkeypatch: pytest.MonkeyPatch, size: tuple[int, int], drawn: bool
) -> None:
    # On a picture 315 pixels or less on its short side, its labels were 5 pixels high: smudges. Legible,
    # the legend would hide much of a small picture's mask (69% of a 220 x 60 one): it goes.
    heights: list[int] = []
    put_text = draw.put_text

    def measured(image: np.ndarray, text: str, origin: tuple[int, int], scale: float, *rest: object) -> None:
        heights.append(draw.font_at(scale).size)
        put_text(image, text, origin, scale, *rest)

    monkeypatch.setattr(draw, "put_text", measured)
    photo = np.full((*size, 3), 0.5, np.float32)
    picture = mask_overlay(photo, np.linspace(0, 1, size[0] * size[1], dtype=np.float32).reshape(size))
    assert picture.shape == (*size, 3)
    assert len(heights) == 3 * drawn  # over, ok, under
    assert all(height >= 10 for height in heights)  # the font's size in pixels
    legend = picture != mask_overlay(photo, np.linspace(0, 1, size[0] * size[1]).reshape(size), legend=False)
    rows, columns = np.nonzero(legend.any(axis=2))
    if drawn:  # in the bottom-left corner, a third of the height and half the width at most
        assert rows.min() >= size[0] * 2 / 3 and columns.max() < size[1] / 2


def test_the_mask_legend_runs_from_over_to_under_exposed_on_a_dark_box(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    labels: list[tuple[int, str]] = []
    put_text = draw.put_text

    def recording(image: np.ndarray, text: str, origin: tuple[int, int], *rest: object) -> None:
        labels.append((origin[0], text))
        put_text(image, text, origin, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(draw, "put_text", recording)
    photo, unsure = np.ones((600, 900, 3), np.float32), np.full((600, 900), 0.5, np.float32)
    picture = mask_overlay(photo, unsure).astype(int)
    assert [text for _, text in sorted(labels)] == ["over", "ok", "under"]  # left to right, under the bar
    red, blue = picture[..., 0], picture[..., 2]
    orange_columns, blue_columns = np.nonzero(red > blue + 40)[1], np.nonzero(blue > red + 40)[1]
    assert orange_columns.mean() < blue_columns.mean()  # the bar's over-exposed end is on the left
    plain = mask_overlay(photo, unsure, legend=False).astype(int)
    assert (picture[-1, 0] < plain[-1, 0] / 2).all()  # light labels on a dark box, on any photo


@pytest.mark.parametrize(
    ("figure", "colour_map"), [("features", cv2.COLORMAP_VIRIDIS), ("errors", cv2.COLORMAP_CIVIDIS)]
)
def test_a_figure_s_heat_maps_and_its_colour_bar_share_one_colour_map(
    monkeypatch: pytest.MonkeyPatch, figure: str, colour_map: int
) -> None:
    used: list[int] = []
    sequential = draw.sequential

    def recording(values: np.ndarray, top: float, colour_map: int = cv2.COLORMAP_VIRIDIS) -> np.ndarray:
        used.append(colour_map)
        return sequential(values, top, colour_map)

    monkeypatch.setattr(draw, "sequential", recording)
    photo, reference = two_region_features([1.0, 0.5, 0.25]), two_region_features([0.5, 0.4, 0.3])
    if figure == "features":
        feature_figure(photo)
    else:
        rgb = np.full((16, 16, 3), 0.5, np.float32)
        feature_error_figure(photo, reference, rgb, rgb)
    assert len(used) > 1 and set(used) == {colour_map}


@pytest.mark.parametrize(("mask_value", "colour"), [(1.0, "blue"), (0.0, "orange")])  # 1: under-exposed
def test_the_mask_overlay_is_blue_where_under_and_orange_where_over_exposed(
    mask_value: float, colour: str
) -> None:
    # the caption reads "blue under, orange over": with the colours swapped, every mask shown says the
    # opposite of what the model found
    photo = np.full((40, 60, 3), 0.5, np.float32)
    picture = mask_overlay(photo, np.full((40, 60), mask_value, np.float32), legend=False)
    red, _, blue = picture[20, 30].astype(int)
    assert (blue > red + 40) if colour == "blue" else (red > blue + 40), (red, blue)


@pytest.mark.parametrize(("other", "word"), [(0.0, "under-exposed"), (1.0, "over-exposed")])
def test_a_mask_of_exactly_one_half_is_in_neither_region(other: float, word: str) -> None:
    # the distances are taken over mask > 0.5 and mask < 0.5: a half-way pixel counts for neither
    features = two_region_features([1.0] * 6)
    features.mask[:, :16] = 0.5
    features.mask[:, 16:] = other
    assert word in missing_region(features.mask)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mean of an empty region
        assert bar_lengths(distance_chart(features)) == []


@pytest.mark.parametrize(
    ("distances", "verdict"),
    [([1.0, 0.5, 0.98], "2% closer than extracted"), ([1.0, 0.5, 1.004], "as far apart as extracted")],
)
def test_a_change_from_half_a_percent_on_is_said_as_a_change(distances: list[float], verdict: str) -> None:
    assert bears_out(distances).endswith(f": {verdict}")


def test_one_outlier_pixel_does_not_set_the_heat_maps_colour_scale() -> None:
    maps = [np.ones((100, 100), np.float32), np.ones((100, 100), np.float32)]
    maps[1][50, 50] = 1000.0
    assert robust_top(maps) == pytest.approx(1.0)


def test_a_heat_row_of_few_maps_draws_them_up_to_twice_the_tile_size() -> None:
    row = heat_row([np.ones((200, 300), np.float32)] * 2, ["a", "b"], top=1.0)
    assert row.shape[1] == 2 * (2 * TILE) + 8  # two maps and the gap between them


def test_the_distance_chart_says_how_much_of_the_photo_is_under_exposed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    features = two_region_features([1.0, 0.5])
    features.mask[:8] = 0.0  # a quarter of the photo moves to the over-exposed region: 37.5% under
    lines: list[str] = []

    def recording(text: list[str], *rest: object) -> np.ndarray:
        lines.extend(text)
        return draw.blank(10, FIGURE_WIDTH)

    monkeypatch.setattr(draw, "text_lines", recording)
    distance_chart(features)
    assert "(mask > 0.5: 38% of the photo)" in lines[0]


def test_the_signed_error_scale_spans_most_errors_and_at_least_a_fiftieth() -> None:
    rng = np.random.default_rng(0)
    assert signed_error_limit(rng.uniform(-0.005, 0.005, (50, 50))) == 0.02
    assert signed_error_limit(rng.uniform(-0.1, 0.1, (50, 50))) == pytest.approx(0.1, rel=0.02)
