"""PSNR/SSIM against their definitions (and scikit-image where installed), and evaluation over pairs."""

from __future__ import annotations

import errno
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import as_recnet_wrote, keeps_marks, skip_unless_marks_kept

from recnet_cli.engine import Corrector, PhotoOutOfMemoryError
from recnet_cli.evaluate import EvalReport, ImageScore, PairFailure, evaluate_pairs, save_problem
from recnet_cli.imaging import ImageWriteError, read_photo, write_photo
from recnet_cli.imaging.pixels import quantise
from recnet_cli.metrics import UnscorableError, psnr, quantised_scores, ssim, ssim_tensor
from recnet_cli.model import RECNet
from recnet_cli.train.data import read_rgb
from recnet_cli.train.pairs import ImagePair, data_set_folders


def noisy_pair(seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape).astype(np.uint8)
    a = cv2.GaussianBlur(a, (5, 5), 1.0)  # some structure, not pure noise
    b = np.clip(a + rng.normal(0, 12, shape), 0, 255).astype(np.uint8)
    return a, b


def test_psnr_of_a_constant_error() -> None:
    a = np.full((8, 9, 3), 100, np.uint8)
    assert psnr(a, a + 10) == pytest.approx(20 * math.log10(255 / 10), abs=1e-12)
    assert psnr(a, a) == math.inf


def test_ssim_is_one_for_identical_images_and_drops_with_noise() -> None:
    a, b = noisy_pair(0, (32, 40, 3))
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ssim(a, b) < 0.99
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-12)


def test_ssim_of_constant_images_follows_the_luminance_term() -> None:
    """With no variance SSIM reduces to (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)."""
    x, y = 100.0, 120.0
    c1 = (0.01 * 255) ** 2
    expected = (2 * x * y + c1) / (x * x + y * y + c1)
    assert ssim(np.full((16, 16, 3), x), np.full((16, 16, 3), y)) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("shape", [(32, 40, 3), (23, 57, 3)])
def test_ssim_and_psnr_match_scikit_image(shape: tuple[int, int, int]) -> None:
    metrics = pytest.importorskip("skimage.metrics")
    a, b = noisy_pair(1, shape)
    expected = metrics.structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1
    )
    assert ssim(a, b) == pytest.approx(expected, abs=1e-6)
    assert psnr(a, b) == pytest.approx(metrics.peak_signal_noise_ratio(a, b, data_range=255), abs=1e-6)


def test_ssim_scores_photos_of_eleven_pixels_a_side_and_no_smaller() -> None:
    a, b = noisy_pair(2, (11, 11, 3))
    assert 0 < ssim(a, b) < 1
    with pytest.raises(UnscorableError, match="10x11 pixels is too small to score"):
        ssim(a[:, :10], b[:, :10])


def test_quantising_to_8_bits_rounds_half_to_even_and_clips() -> None:
    floats = np.array([-0.2, 0.0, 0.5 / 255, 1.5 / 255, 0.5, 1.0, 1.3])
    assert quantise(floats, 8).tolist() == [0, 0, 0, 2, 128, 255, 255]  # half-way rounds to even, as np.rint


def test_ssim_tensor_is_differentiable_and_batched() -> None:
    a, b = noisy_pair(2, (24, 24, 3))
    x = torch.tensor(np.stack([a, b]), dtype=torch.float32).permute(0, 3, 1, 2).div(255).requires_grad_()
    y = torch.tensor(np.stack([a, a]), dtype=torch.float32).permute(0, 3, 1, 2).div(255)
    scores = ssim_tensor(x, y)
    assert scores[0].item() == pytest.approx(1.0, abs=1e-5)
    assert scores[1].item() == pytest.approx(ssim(b, a), abs=1e-4)
    scores.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_quantised_scores_round_to_8_bits_first() -> None:
    a, b = noisy_pair(3, (20, 20, 3))
    x = torch.tensor(a / 255 + 0.4 / 255, dtype=torch.float32).permute(2, 0, 1)[None]  # rounds back to a
    y = torch.tensor(b / 255, dtype=torch.float32).permute(2, 0, 1)[None]
    p, s = quantised_scores(x, y)
    assert float(p) == pytest.approx(psnr(a, b), abs=1e-9)
    assert float(s) == pytest.approx(ssim(a, b), abs=1e-9)


def write(path: Path, image: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def written_pairs(folder: Path, numbers: range, seed: int = 0) -> list[ImagePair]:
    """Noisy pairs written as ``in<n>.png`` and ``gt<n>.png`` in ``folder``."""
    pairs = []
    for i in numbers:
        target, source = noisy_pair(seed + i, (24, 32, 3))
        pairs.append(ImagePair(write(folder / f"in{i}.png", source), write(folder / f"gt{i}.png", target)))
    return pairs


def test_evaluate_pairs_scores_output_and_identity(tmp_path: Path) -> None:
    torch.manual_seed(0)
    corrector = Corrector(RECNet(channels=4, blocks=1), torch.device("cpu"))
    pairs = written_pairs(tmp_path, range(2), seed=10)
    seen = []
    report = evaluate_pairs(
        pairs, corrector, save_dir=tmp_path / "out", progress=lambda *done: seen.append(done)
    )
    assert seen == [(1, 2), (2, 2)]
    for pair, score in zip(pairs, report.scores, strict=True):
        source, target = read_rgb(pair.input), read_rgb(pair.target)
        saved = read_rgb(tmp_path / "out" / f"{pair.input.stem}.png")
        expected = quantise(corrector.correct(source.astype(np.float32) / 255).image, 8)
        assert np.array_equal(saved, expected)
        assert score.identity_psnr == pytest.approx(psnr(source, target))
        assert score.identity_ssim == pytest.approx(ssim(source, target))
        assert score.psnr == pytest.approx(psnr(saved, target))
        assert score.ssim == pytest.approx(ssim(saved, target))
    assert report.mean("psnr") == pytest.approx(np.mean([s.psnr for s in report.scores]))
    assert report.to_dict()["images"] == 2


def test_saving_keeps_a_file_saved_there_during_the_run_unless_overwrite_and_recnet_s(
    tmp_path: Path,
) -> None:
    corrector = Corrector(RECNet(channels=4, blocks=1), torch.device("cpu"))
    pairs = written_pairs(tmp_path, range(3))
    later = tmp_path / "out" / "in1.png"  # checked before the run (save_problem), saved during it
    saved_by: list[Callable[[Path], object]] = [as_recnet_wrote]  # another run's

    def save_later(done: int, total: int) -> None:
        if done == 1:
            later.write_bytes(b"MY EDIT")
            saved_by[0](later)

    seen: list[PairFailure] = []
    report = evaluate_pairs(
        pairs, corrector, tmp_path / "out", progress=save_later, on_failure=seen.append, overwrite=False
    )
    assert later.read_bytes() == b"MY EDIT"
    assert len(report.scores) == 3 and report.failures == [] and seen == report.unsaved
    assert [failure.reason for failure in report.unsaved] == [f"{later}: exists (use --overwrite)"]
    assert (tmp_path / "out" / "in2.png").exists()  # a file in the way costs only its own image
    assert report.to_dict()["unsaved"] == [
        {
            "input": str(pairs[1].input),
            "target": str(pairs[1].target),
            "error": f"{later}: exists (use --overwrite)",
        }
    ]
    report = evaluate_pairs(pairs, corrector, tmp_path / "out", progress=save_later, overwrite=True)
    assert later.read_bytes().startswith(b"\x89PNG") and report.unsaved == []
    skip_unless_marks_kept(later.parent)
    saved_by[0] = Path.touch  # the user's (it lacks recnet's mark): kept even so
    report = evaluate_pairs(pairs, corrector, tmp_path / "out", progress=save_later, overwrite=True)
    assert later.read_bytes() == b"MY EDIT" and [failure.reason for failure in report.unsaved] == [
        f"{later}: exists, and recnet did not write it (it lacks recnet's mark: a file of yours, a copy, or "
        "an edited output): move it away, or choose another folder"
    ]


def test_a_failed_save_ends_the_saving_not_the_scoring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corrector = Corrector(RECNet(channels=4, blocks=1), torch.device("cpu"))
    pairs = written_pairs(tmp_path, range(3))
    written: list[Path] = []

    def disk_fills_after_one(path: Path, rgb: np.ndarray, **_: object) -> None:
        if written:
            raise ImageWriteError(path, "no space left on device", errno.ENOSPC)
        written.append(path)

    monkeypatch.setattr("recnet_cli.evaluate.write_rgb8", disk_fills_after_one)
    said: list[PairFailure] = []
    report = evaluate_pairs(pairs, corrector, tmp_path / "out", on_failure=said.append)
    assert len(report.scores) == 3 and written == [tmp_path / "out" / "in0.png"]
    full = f"{tmp_path / 'out' / 'in1.png'}: no space left on device"
    assert [failure.reason for failure in report.unsaved] == [  # in2 as well: it was left out of the count
        f"{full}; not saving the rest (the scoring goes on)",
        f"not saved: the saving ended at {pairs[1].input} ({full})",
    ]
    assert said == report.unsaved[:1]  # the end of the saving is said once


@pytest.mark.parametrize("platform", ["darwin", "linux"])
def test_images_saved_under_names_differing_only_in_case_clash_where_the_system_ignores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    # in/Sky.png and in/sky.png are both saved as <stem>.png: one file on APFS and NTFS
    target, source = noisy_pair(4, (16, 16, 3))
    for folder in ("in", "gt"):
        (tmp_path / folder).mkdir()
    names = ("Sky.png", "sky.png")
    pairs = [ImagePair(write(tmp_path / "in" / n, source), write(tmp_path / "gt" / n, target)) for n in names]
    monkeypatch.setattr(sys, "platform", platform)
    problem = save_problem(pairs, tmp_path / "saved", overwrite=False, data_set=[])
    if platform == "linux":
        assert problem is None
    else:
        assert problem is not None and "would both be saved as sky.png" in problem


def test_the_save_folder_is_made_only_when_an_image_is_saved(tmp_path: Path) -> None:
    target, source = noisy_pair(4, (24, 32, 3))
    (tmp_path / "damaged.png").write_bytes(write(tmp_path / "in.png", source).read_bytes()[:60])
    pair = ImagePair(tmp_path / "damaged.png", write(tmp_path / "gt.png", target))
    corrector = Corrector(RECNet(channels=4, blocks=1), torch.device("cpu"))
    report = evaluate_pairs([pair], corrector, tmp_path / "out" / "deep")
    assert len(report.failures) == 1 and not (tmp_path / "out").exists()


def test_a_grey_pair_is_scored_as_recnet_correct_writes_its_correction(tmp_path: Path) -> None:
    # eval scored (and saved) the model's RGB output, where correct writes a grey photo's luma
    torch.manual_seed(0)
    corrector = Corrector(RECNet(channels=4, blocks=1), torch.device("cpu"))
    target, source = noisy_pair(5, (24, 32))
    pair = ImagePair(tmp_path / "in.png", tmp_path / "gt.png")
    cv2.imwrite(str(pair.input), source)
    cv2.imwrite(str(pair.target), target)
    (score,) = evaluate_pairs([pair], corrector, save_dir=tmp_path / "saved").scores
    photo = read_photo(pair.input)
    assert photo.grayscale
    write_photo(tmp_path / "corrected.png", corrector.correct(photo.pixels).image, like=photo)
    delivered = read_rgb(tmp_path / "corrected.png")
    assert np.array_equal(read_rgb(tmp_path / "saved" / "in.png"), delivered)
    assert score.psnr == pytest.approx(psnr(delivered, read_rgb(pair.target)))
    assert not np.array_equal(delivered, quantise(corrector.correct(photo.pixels).image, 8))  # not RGB's


def test_evaluate_at_strength_zero_scores_the_input_itself(tmp_path: Path) -> None:
    target, source = noisy_pair(7, (24, 32, 3))
    pair = ImagePair(write(tmp_path / "in.png", source), write(tmp_path / "gt.png", target))
    corrector = Corrector(RECNet(channels=4, blocks=1), torch.device("cpu"), strength=0.0)
    (score,) = evaluate_pairs([pair], corrector).scores
    assert score.psnr == pytest.approx(score.identity_psnr) and score.ssim == pytest.approx(
        score.identity_ssim
    )


def test_a_pair_of_identical_images_counts_as_max_psnr_in_the_means(tmp_path: Path) -> None:
    target, source = noisy_pair(3, (16, 16, 3))
    same = write(tmp_path / "same.png", target)
    other = ImagePair(write(tmp_path / "in.png", source), write(tmp_path / "gt.png", target))
    corrector = Corrector(RECNet(channels=4, blocks=1), torch.device("cpu"))
    report = evaluate_pairs([ImagePair(same, same), other], corrector)
    assert report.scores[0].identity_psnr == float("inf")
    values = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert values["per_image"][0]["identity_psnr"] is None  # as measured: no JSON number says infinity
    # counted as 100 dB, as the README says
    assert values["identity_psnr"] == pytest.approx((100 + report.scores[1].identity_psnr) / 2)
    assert values["identity_ssim"] < 1.0 and values["psnr"] > 0


def test_pairs_that_cannot_be_scored_are_named_and_left_out_of_the_means(tmp_path: Path) -> None:
    target, source = noisy_pair(5, (24, 32, 3))
    good = ImagePair(write(tmp_path / "good.png", source), write(tmp_path / "good-gt.png", target))
    strip = np.full((8, 600, 3), 90, np.uint8)
    (tmp_path / "damaged.png").write_bytes((tmp_path / "good.png").read_bytes()[:60])
    bad = [
        ImagePair(write(tmp_path / "a.png", source), write(tmp_path / "b.png", source[:, :-1])),
        ImagePair(tmp_path / "damaged.png", tmp_path / "good-gt.png"),
        ImagePair(write(tmp_path / "strip.png", strip), write(tmp_path / "strip-gt.png", strip + 10)),
    ]
    corrector = Corrector(RECNet(channels=4, blocks=1), torch.device("cpu"))
    seen: list[PairFailure] = []
    progress: list[tuple[int, int]] = []
    report = evaluate_pairs(
        [bad[0], good, *bad[1:]],
        corrector,
        save_dir=tmp_path / "out",
        progress=lambda *done: progress.append(done),
        on_failure=seen.append,
    )
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [score.input for score in report.scores] == [good.input]
    assert report.mean("psnr") == report.scores[0].psnr
    assert seen == report.failures and [f.input for f in seen] == [pair.input for pair in bad]
    reasons = [failure.reason for failure in seen]
    assert reasons[0].startswith(f"{tmp_path / 'a.png'}: size 32x24 differs from its ground truth")
    assert reasons[1] == f"{tmp_path / 'damaged.png'}: truncated or corrupt image data"
    assert reasons[2].startswith(f"{tmp_path / 'strip.png'}: 600x8 pixels is too small to score")
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["good.png"]
    values = report.to_dict()
    assert values["images"] == 1 and [f["input"] for f in values["failed"]] == [str(p.input) for p in bad]


def test_a_photo_too_large_for_the_memory_is_a_named_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, source = noisy_pair(6, (24, 32, 3))
    pair = ImagePair(write(tmp_path / "huge.png", source), write(tmp_path / "gt.png", target))
    corrector = Corrector(RECNet(channels=4, blocks=1), torch.device("cpu"))

    def out_of_memory(*_: object) -> None:
        raise PhotoOutOfMemoryError("not enough memory for this 0.0 MP photo: try a smaller --tile")

    monkeypatch.setattr(corrector, "correct", out_of_memory)
    report = evaluate_pairs([pair], corrector)
    assert report.scores == []
    assert [failure.reason for failure in report.failures] == [
        f"{pair.input}: not enough memory for this 0.0 MP photo: try a smaller --tile"
    ]


def test_a_save_folder_named_as_an_image_file_is_refused_before_a_folder_of_that_name_is_made(
    tmp_path: Path,
) -> None:
    # eval --save results/out.png made a folder named out.png, without a word
    pair = ImagePair(tmp_path / "in" / "a.jpg", tmp_path / "gt" / "a.png")
    assert save_problem([pair], tmp_path / "out.png", overwrite=False) == (
        f"--save {tmp_path / 'out.png'}: names an image file; --save takes a folder, which gets <input "
        "stem>.png (for a folder of that name, end it with /)"
    )
    assert save_problem([pair], f"{tmp_path / 'out.png'}/", overwrite=False) is None  # as typed, a folder
    (tmp_path / "out.png").mkdir()  # a folder that is there already is the user's choice of name
    assert save_problem([pair], tmp_path / "out.png", overwrite=False) is None


def test_saving_never_replaces_an_evaluated_image_nor_a_user_s_file_nor_an_earlier_one_unasked(
    tmp_path: Path,
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "gt").mkdir()
    pair = ImagePair(tmp_path / "in" / "a.jpg", tmp_path / "gt" / "a.png")
    for folder in ("in", "gt", "in/../gt"):  # a.png beside a.jpg would pair with nothing next time
        problem = save_problem([pair], tmp_path / folder, overwrite=True)
        assert problem == (
            f"--save {tmp_path / folder}: a folder of the images being evaluated; choose another folder"
        )
    twins = [pair, ImagePair(tmp_path / "in" / "a.png", tmp_path / "gt" / "b.png")]
    assert save_problem(twins, tmp_path / "out", overwrite=True) == (
        f"--save {tmp_path / 'out'}: {tmp_path / 'in' / 'a.jpg'} and {tmp_path / 'in' / 'a.png'} would both "
        "be saved as a.png"
    )
    assert save_problem([pair], tmp_path / "out", overwrite=False) is None
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(b"mine")
    if keeps_marks(tmp_path / "out"):
        for overwrite in (False, True):  # a file of the user's is never replaced
            assert save_problem([pair], tmp_path / "out", overwrite=overwrite) == (
                f"--save {tmp_path / 'out'}: {tmp_path / 'out' / 'a.png'} exists, and recnet did not write "
                "it (it lacks recnet's mark: a file of yours, a copy, or an edited output): move it away, or "
                "choose another folder"
            )
    as_recnet_wrote(tmp_path / "out" / "a.png")  # an earlier run's
    assert "exists (use --overwrite)" in save_problem([pair], tmp_path / "out", overwrite=False)
    assert save_problem([pair], tmp_path / "out", overwrite=True) is None
    (tmp_path / "out" / "a.png").unlink()
    (tmp_path / "out" / "a.png").mkdir()  # a folder where the image goes: it costs that image alone
    for overwrite in (False, True):  # without --overwrite, it was told to use --overwrite, which cannot help
        assert save_problem([pair], tmp_path / "out", overwrite=overwrite) is None
    (tmp_path / "out" / "a.png").rmdir()
    (tmp_path / "out" / "a.png").symlink_to(tmp_path / "in")  # a link to a folder: kept, as any link is
    assert "a link" in save_problem([pair], tmp_path / "out", overwrite=True)
    (tmp_path / "notes.txt").write_text("mine")
    assert save_problem([pair], tmp_path / "notes.txt", overwrite=True) == (
        f"--save {tmp_path / 'notes.txt'}: a file, not a folder"
    )
    os.mkfifo(tmp_path / "pipe")
    assert (
        save_problem([pair], tmp_path / "pipe", overwrite=True)
        == f"--save {tmp_path / 'pipe'}: a FIFO, not a folder"
    )


def test_saving_into_another_split_of_the_data_set_is_refused(tmp_path: Path) -> None:
    # eval --pairs lcdp --split test --save lcdp/input left images without partners in the train split
    for folder in ("input", "gt", "test-input", "test-gt"):
        (tmp_path / "lcdp" / folder).mkdir(parents=True)
        (tmp_path / "lcdp" / folder / "a.png").touch()
    pair = ImagePair(tmp_path / "lcdp" / "test-input" / "a.png", tmp_path / "lcdp" / "test-gt" / "a.png")
    data_set = data_set_folders(tmp_path / "lcdp")
    assert sorted(folder.name for folder in data_set) == ["gt", "input", "test-gt", "test-input"]
    for folder in ("input", "gt"):
        assert save_problem([pair], tmp_path / "lcdp" / folder, overwrite=True, data_set=data_set) == (
            f"--save {tmp_path / 'lcdp' / folder}: a folder of another split of the data set; choose another "
            "folder"
        )
    assert save_problem([pair], tmp_path / "lcdp" / "saved", overwrite=True, data_set=data_set) is None


def test_saving_below_a_link_to_nothing_is_refused_before_any_pair_is_run(tmp_path: Path) -> None:
    pair = ImagePair(tmp_path / "in" / "a.jpg", tmp_path / "gt" / "a.png")
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "moved").symlink_to("nowhere")
    assert save_problem([pair], tmp_path / "loop" / "sub", overwrite=True) == (
        f"--save {tmp_path / 'loop' / 'sub'}: cannot create folder {tmp_path / 'loop' / 'sub'}: "
        f"{tmp_path / 'loop'} is a link to loop, which leads round a loop of links"
    )
    assert save_problem([pair], tmp_path / "moved" / "sub", overwrite=True) == (
        f"--save {tmp_path / 'moved' / 'sub'}: cannot create folder {tmp_path / 'moved' / 'sub'}: "
        f"{tmp_path / 'moved'} is a link to nowhere, which does not exist"
    )


def test_eval_says_what_was_not_done_after_the_scores() -> None:
    scored = ImageScore(Path("a.jpg"), Path("a.png"), 20.0, 0.8, 15.0, 0.7, 1.0)
    failed = PairFailure(Path("b.jpg"), Path("b.png"), "b.jpg: cannot be read")
    assert EvalReport([scored]).shortfall(1) is None
    assert EvalReport([], [failed]).shortfall(1) == "the pair could not be scored"
    assert EvalReport([], [failed, failed]).shortfall(2) == "none of the 2 pairs could be scored"
    assert EvalReport([scored], [failed]).shortfall(2) == (
        "scored 1 of 2 pairs: 1 could not be scored (above) and is left out of the means"
    )
    assert (
        EvalReport([scored], [failed, failed])
        .shortfall(3)
        .endswith("2 could not be scored (above) and are left out of the means")
    )
    assert EvalReport([scored], unsaved=[failed]).shortfall(1) == (
        "the scores are complete, but 1 of 1 corrected images was not saved"
    )


def test_what_shows_through_partial_transparency_is_scored(tmp_path: Path) -> None:
    # only full transparency hides a pixel: a half-transparent one still shows its colours
    target, source = noisy_pair(8, (24, 32, 3))
    shown = target.copy()
    shown[:, 16:] = source[:, 16:]
    alpha = np.full((24, 32, 1), 255, np.uint8)
    alpha[:, :8] = 0  # hidden: scored as a match whatever its colours
    alpha[:, 16:] = 128
    rgba = np.concatenate([np.where(alpha == 0, source, shown), alpha], axis=2)
    cv2.imwrite(str(tmp_path / "in.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    pair = ImagePair(tmp_path / "in.png", write(tmp_path / "gt.png", target))
    corrector = Corrector(RECNet(channels=4, blocks=1), torch.device("cpu"), strength=0.0)
    (score,) = evaluate_pairs([pair], corrector).scores
    assert score.identity_psnr == pytest.approx(psnr(shown, target))
    assert score.psnr == pytest.approx(score.identity_psnr)
