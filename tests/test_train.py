"""Training data, schedule, the loop's checkpoints and exact resume, and DDP on two CPU processes."""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import RECNET, numpy_out_of_memory, opencv_out_of_memory, run, torch_out_of_memory
from typer.testing import CliRunner

from recnet_cli.atomicfile import write_atomic
from recnet_cli.cli import app
from recnet_cli.engine import Corrector
from recnet_cli.metrics import SSIM_WINDOW, quantised_scores
from recnet_cli.model import RECNet
from recnet_cli.train import data as training_data
from recnet_cli.train import loop, memory, run_folder
from recnet_cli.train.data import (
    ImageFileError,
    PairSource,
    PhotoSource,
    Prefetcher,
    crop_box,
    downscale_photos,
    holdout_split,
    list_photos,
    load_pairs,
    load_photos,
    pair_data,
    photo_data,
    photo_validation,
    random_flips,
    read_rgb,
    sample_rng,
    split_pairs,
    split_photos,
)
from recnet_cli.train.loop import ForwardWithMask, learning_rate, resume, train
from recnet_cli.train.losses import VGG16Features, VggWeightsError
from recnet_cli.train.pairs import ImagePair
from recnet_cli.train.run_folder import (
    ADDED_LATER,
    CHECKPOINT_FILE,
    RunState,
    TrainConfig,
    TrainingError,
    TrainingFailed,
    claimed,
    read_run_checkpoint,
)
from recnet_cli.train.synthesis import DegradationConfig
from recnet_cli.weights import load_model
from recnet_cli.weights.formats import safetensors_header

REPO = Path(__file__).resolve().parents[1]
PHOTOS = Path(__file__).parent / "data" / "train-photos"
CPU = torch.device("cpu")


def tiny_config(run_dir: Path, **changes: object) -> TrainConfig:
    settings: dict = dict(
        run_dir=run_dir,
        photos=PHOTOS,
        steps=6,
        batch=2,
        crop=32,
        channels=8,
        blocks=2,
        ecr=False,
        val_every=3,
        checkpoint_every=3,
        val_size=48,
        warmup=1,
        device="cpu",
    )
    return TrainConfig(**(settings | changes))


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(run_dir / "final.safetensors")


def checkpoint_step(run_dir: Path) -> int:
    return int(safetensors_header(run_dir / "checkpoint.safetensors")[1]["step"])


def rewrite_checkpoint_metadata(run_dir: Path, metadata: dict[str, str]) -> None:
    path = run_dir / "checkpoint.safetensors"
    path.write_bytes(safetensors.torch.save(safetensors.torch.load_file(path), metadata=metadata))


def test_schedule_warms_up_then_decays_to_zero() -> None:
    config = TrainConfig(run_dir=Path("x"), steps=1000, warmup=50, lr=1e-3)
    rates = [learning_rate(step, config) for step in range(1000)]
    assert rates[0] == pytest.approx(1e-3 / 50)
    assert rates[49] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(rates[49:]))
    assert rates[-1] < 1e-7


def test_a_short_run_warms_up_over_a_tenth_of_it_and_its_config_says_so() -> None:
    # config.json said "warmup": 500 of a 20-step run, which warmed up over 2
    config = TrainConfig(run_dir=Path("x"), steps=20, lr=1e-3)
    assert config.warmup == 2 and config.to_json()["warmup"] == 2
    assert [learning_rate(step, config) for step in range(2)] == pytest.approx([5e-4, 1e-3])
    saved = json.loads(json.dumps(config.to_json())) | {"warmup": 500}  # as earlier versions saved it
    earlier = TrainConfig.from_json(saved)
    assert earlier.warmup == 2 and learning_rate(0, earlier) == pytest.approx(5e-4)
    assert TrainConfig(run_dir=Path("x"), steps=20_000).warmup == 500


def test_holdout_is_fixed_by_name_and_keeps_groups_together() -> None:
    names = [f"scene{i // 5}_{i % 5}" for i in range(100)]
    train_names, val_names = holdout_split(names, key=lambda n: n.split("_")[0])
    assert len(val_names) == 10  # 2 of 20 scenes, all 5 renderings each
    assert {n.split("_")[0] for n in val_names}.isdisjoint({n.split("_")[0] for n in train_names})
    assert holdout_split(list(reversed(names)), key=lambda n: n.split("_")[0])[1] == list(reversed(val_names))


def test_photo_folders_split_by_path_inside_the_folder(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        for path in sorted(PHOTOS.glob("*.jpg")):
            (tmp_path / sub / path.name).write_bytes(path.read_bytes())
    train_paths, val_paths = split_photos(tmp_path)
    assert len(train_paths) + len(val_paths) == 10 and len(val_paths) == 1
    assert split_photos(tmp_path) == (train_paths, val_paths)


def test_a_photo_and_links_to_it_are_one_photo(tmp_path: Path) -> None:
    """Counted once per name, one picture could be trained on and held out for validation too."""
    photos, elsewhere = shutil.copytree(PHOTOS, tmp_path / "photos"), tmp_path / "elsewhere.jpg"
    originals = sorted(photos.glob("*.jpg"))
    (photos / "sub").mkdir()
    (photos / "sub" / "again.jpg").symlink_to(originals[0])
    (photos / "zz-again.jpg").symlink_to(Path("sub") / "again.jpg")
    shutil.copyfile(originals[1], elsewhere)
    (photos / "a-link.jpg").symlink_to(elsewhere)
    (photos / "b-link.jpg").symlink_to(elsewhere)
    os.link(originals[2], photos / "zz-hard.jpg")  # a hard link is a second name for the same photo too
    train_paths, val_paths = split_photos(photos)
    assert sorted(train_paths + val_paths) == sorted([*originals, photos / "a-link.jpg"])
    assert downscale_photos(photos, tmp_path / "small", max_side=40) == len(originals) + 1


def test_pairs_split_by_the_ground_truth_s_name_wherever_the_folder_is_and_however_it_is_typed() -> None:
    """Keyed by the whole path, train's split (``--pairs LCDP/``) and calibrate's (``--pairs /data/LCDP``)
    differed, and a run's moved data would have given another validation set."""
    names = [f"scene{i}.jpg" for i in range(40)]
    here = [ImagePair(Path("in") / name, Path("gt") / name) for name in names]
    elsewhere = [ImagePair(Path("/mnt/data/in") / name, Path("/mnt/data/gt") / name) for name in names]
    held_out = [pair.target.name for pair in split_pairs(here)[1]]
    assert len(held_out) == 4 and [pair.target.name for pair in split_pairs(elsewhere)[1]] == held_out
    # by their names' hashes, as every version held them out: a run resumed or calibrated by another
    # version validates on the very pairs its training left out
    assert held_out == ["scene13.jpg", "scene19.jpg", "scene20.jpg", "scene27.jpg"]


def test_training_data_is_held_at_max_side_and_validation_is_val_images_pairs_at_val_size(
    tmp_path: Path,
) -> None:
    source, validation = photo_data(PHOTOS, 32, 0, DegradationConfig(), 64, 4, 48)
    assert [max(photo.shape[:2]) for photo in source.photos] == [64] * 4
    assert [max(pair.input.shape[1:]) for pair in validation] == [48]
    rng = np.random.default_rng(0)
    for folder in ("in", "gt"):
        (tmp_path / folder).mkdir()
        for index in range(20):  # 20 ground truths: 2 held out, of which --val-images 1 validates
            cv2.imwrite(str(tmp_path / folder / f"{index}.png"), rng.integers(0, 256, (40, 60, 3), np.uint8))
    pairs = [ImagePair(tmp_path / "in" / f"{i}.png", tmp_path / "gt" / f"{i}.png") for i in range(20)]
    source, validation = pair_data(pairs, "in/ and gt/", 16, 0, 48, 1, 32)
    assert [max(image.shape[:2]) for pair in source.pairs for image in pair] == [48] * 36
    assert [max(pair.input.shape[1:]) for pair in validation] == [32]


def test_each_validation_photo_has_its_own_exposure_error() -> None:
    path = next(PHOTOS.glob("*.jpg"))
    first, second = photo_validation([path, path], DegradationConfig(), 48, 2)
    assert torch.equal(first.target, second.target) and not torch.equal(first.input, second.input)


def test_training_photos_are_degraded_in_the_regimes_asked_for() -> None:
    photos = [read_rgb(p) for p in sorted(PHOTOS.glob("*.jpg"))]
    source = PhotoSource(photos, crop=32, seed=5, degradation=DegradationConfig.only("under"))
    inputs, targets = source.batch(0, range(8), CPU)
    assert (inputs.mean((1, 2, 3)) < targets.mean((1, 2, 3)) - 0.05).all()


def test_one_photo_is_not_enough_to_train_on(tmp_path: Path) -> None:
    (tmp_path / "only.jpg").write_bytes(next(PHOTOS.glob("*.jpg")).read_bytes())
    with pytest.raises(ImageFileError, match=r"need at least 2 photos .* found 1$"):
        photo_data(tmp_path, 32, 0, DegradationConfig(), 64, 4, 48)
    (tmp_path / "IMG_0002.NEF").write_bytes(b"raw")  # it said nothing of the files it did not read
    with pytest.raises(ImageFileError, match=r"found 1 \(1 other file: \.nef; recnet reads JPEG, "):
        photo_data(tmp_path, 32, 0, DegradationConfig(), 64, 4, 48)


def test_pairs_of_one_ground_truth_are_not_enough_to_train_on(tmp_path: Path) -> None:
    # MSEC's five exposures of one photo stay together: none could be held out for validation
    exposures = [ImagePair(tmp_path / f"a_{ev}.jpg", tmp_path / "a.jpg") for ev in ("N1", "0", "P1")]
    for pairs, found in ((exposures[:1], "1 pair, with 1 ground truth"), (exposures, "3 pairs, with 1 ")):
        with pytest.raises(ImageFileError) as refused:
            pair_data(pairs, "in/ and gt/", 32, 0, 64, 4, 48)
        assert str(refused.value).startswith(
            "in/ and gt/: need pairs with at least 2 different ground truths (training and validation), "
            f"found {found}"
        )


def test_panoramas_and_strips_train_and_validate(tmp_path: Path) -> None:
    """Photos of any shape give training crops and validation pairs SSIM can score."""
    rng = np.random.default_rng(0)
    for index, shape in enumerate([(8, 600, 3), (40, 480, 3), (600, 6, 3)] * 4):
        cv2.imwrite(str(tmp_path / f"strip{index}.png"), rng.integers(0, 256, shape, dtype=np.uint8))
    source, validation = photo_data(tmp_path, 32, 0, DegradationConfig(), 64, 4, 48)
    inputs, targets = source.batch(0, [0, 1, 2], torch.device("cpu"))
    assert inputs.shape == targets.shape == (3, 3, 32, 32)
    assert validation and all(min(pair.input.shape[1:]) >= SSIM_WINDOW for pair in validation)
    _, ssim = quantised_scores(validation[0].input[None], validation[0].target[None])
    assert torch.isfinite(ssim).all()


def test_an_image_too_thin_to_crop_is_refused_not_scaled_up_to_an_enormous_size(tmp_path: Path) -> None:
    """Its short side was scaled up to the crop whatever its long side became: a 1 x 2000 strip at the
    default crop of 384 took 0.9 GB, a 1 x 20000 one 8.8 GB."""
    photos = copy_photos(tmp_path / "photos")
    strip = photos / "strip.png"
    cv2.imwrite(str(strip), np.full((1, 2000, 3), 128, np.uint8))
    with pytest.raises(
        ImageFileError, match=rf"^{re.escape(str(strip))}: 2000x1 pixels is too thin to train or calibrate on"
    ):
        photo_data(photos, 32, 0, DegradationConfig(), 64, 4, 48)
    strip.unlink()
    inputs = shutil.copytree(photos, tmp_path / "inputs")
    cv2.imwrite(str(inputs / "strip.png"), np.full((3000, 2, 3), 64, np.uint8))
    cv2.imwrite(str(photos / "strip.png"), np.full((3000, 2, 3), 128, np.uint8))
    pairs = [ImagePair(path, photos / path.name) for path in sorted(inputs.iterdir())]
    with pytest.raises(
        ImageFileError, match=r"strip\.png: 2x3000 pixels is too thin to train or calibrate on"
    ):
        pair_data(pairs, "inputs/", 32, 0, 64, 4, 48)


def test_downscale_photos_keeps_folders_names_and_limits_size(tmp_path: Path) -> None:
    (tmp_path / "src" / "set").mkdir(parents=True)
    names = ["plain.jpg", os.fsdecode(b"not-utf8-\xff.jpg")]  # OpenCV crashed writing the second
    for name, path in zip(names, sorted(PHOTOS.glob("*.jpg")), strict=False):
        (tmp_path / "src" / "set" / name).write_bytes(path.read_bytes())
    assert downscale_photos(tmp_path / "src", tmp_path / "out", max_side=40) == 2
    written = sorted((tmp_path / "out" / "set").iterdir())
    assert [p.name for p in written] == sorted(names)
    assert all(max(read_rgb(p).shape[:2]) == 40 for p in written)
    # photos to train on, which train --photos passed over as recnet's outputs: they bore its mark
    assert list_photos(tmp_path / "out") == written
    shutil.copy(sorted(PHOTOS.glob("*.jpg"))[0], tmp_path / "src" / "set" / "plain.png")
    with pytest.raises(ValueError, match=r"plain\.jpg and .*plain\.png would both be written as"):
        downscale_photos(tmp_path / "src", tmp_path / "again")  # the second replaced the first
    assert not (tmp_path / "again").exists()


def test_a_batch_is_the_union_of_its_shards() -> None:
    photos = [read_rgb(p) for p in sorted(PHOTOS.glob("*.jpg"))]
    source = PhotoSource(photos, crop=32, seed=5, degradation=DegradationConfig())
    inputs, targets = source.batch(7, [0, 1, 2, 3], CPU)
    assert inputs.shape == (4, 3, 32, 32)
    for shard in ([0, 2], [1, 3]):
        shard_inputs, shard_targets = source.batch(7, shard, CPU)
        assert torch.equal(shard_inputs, inputs[shard])
        assert torch.equal(shard_targets, targets[shard])
    assert not torch.equal(source.batch(8, [0], CPU)[1], targets[:1])


def test_prefetched_batches_are_the_same_and_the_next_is_made_ahead() -> None:
    photos = [read_rgb(p) for p in sorted(PHOTOS.glob("*.jpg"))]
    source = PhotoSource(photos, crop=32, seed=5, degradation=DegradationConfig())
    requested: list[tuple[int, str]] = []
    started = {step: threading.Event() for step in range(5)}

    class Recording:
        description = "recording"

        def batch(self, step: int, indices, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
            requested.append((step, threading.current_thread().name))
            started[step].set()
            return source.batch(step, indices, device)

    with Prefetcher(Recording(), [0, 1], CPU, end_step=5) as batches:
        for step in (2, 3, 4):  # a run resumed at step 2
            inputs, targets = batches.batch(step)
            if step < 4:  # the next step's batch is on its way before it is asked for
                assert started[step + 1].wait(timeout=30)
            expected_inputs, expected_targets = source.batch(step, [0, 1], CPU)
            assert torch.equal(inputs, expected_inputs) and torch.equal(targets, expected_targets)
    assert [step for step, _ in requested] == [2, 3, 4]  # each made once, none past the end
    assert all(thread.startswith("recnet-batches") for _, thread in requested)


def test_batches_for_apple_s_mps_are_made_in_the_training_thread() -> None:
    # MPS takes work from one thread at a time: no batch is made ahead, in another thread
    made: list[str] = []

    class Recording:
        description = "recording"

        def batch(self, step: int, indices, device: torch.device) -> int:
            made.append(threading.current_thread().name)
            return step

    with Prefetcher(Recording(), [0], torch.device("mps"), end_step=3) as batches:
        assert [batches.batch(step) for step in range(3)] == [0, 1, 2]
    assert made == [threading.current_thread().name] * 3


def test_pair_crops_and_flips_stay_aligned() -> None:
    rng = np.random.default_rng(0)
    targets = [rng.integers(0, 256, (40, 50, 3)).astype(np.uint8) for _ in range(3)]
    source = PairSource([(t // 2, t) for t in targets], crop=16, seed=1)
    for step in range(5):
        inputs, target = source.batch(step, [0, 1], CPU)
        assert torch.equal(torch.floor(target * 255 / 2), torch.round(inputs * 255))


def test_training_crops_reach_every_offset_including_the_last_row_and_column() -> None:
    # A crop that never reaches the last row or column would never train on the photos' bottom/right edges
    shape, crop = (7, 9, 3), 4
    boxes = [crop_box(sample_rng(seed, 0, 0), shape, crop) for seed in range(50)]
    tops = {rows.start for rows, _ in boxes}
    lefts = {cols.start for _, cols in boxes}
    assert tops == set(range(shape[0] - crop + 1)) and lefts == set(range(shape[1] - crop + 1))
    assert all(rows.stop - rows.start == cols.stop - cols.start == crop for rows, cols in boxes)


def test_random_flips_give_all_four_combinations_the_same_for_each_image() -> None:
    # Flips that never happen would train on upright photos only (no augmentation)
    image = np.arange(2 * 3).reshape(2, 3)  # its top-left corner says which flips it had: 0, 2, 3 or 5
    corners = set()
    for seed in range(50):
        first, second = random_flips(sample_rng(seed, 0, 0), image, image.copy())
        assert np.array_equal(first, second)
        corners.add(int(first[0, 0]))
    assert corners == {0, 2, 3, 5}  # none, left-right, upside down, both


def test_run_writes_final_model_card_and_metrics(tmp_path: Path) -> None:
    reports = []
    result = train(tiny_config(tmp_path / "run"), progress=reports.append)
    assert [r.step for r in reports] == list(range(1, 7))
    assert reports[2].val is not None and reports[0].val is None
    assert result.val is not None and result.val.identity_psnr > 0
    card = json.loads((tmp_path / "run" / "final.json").read_text())
    assert card["steps"] == 6 and card["ecr"] is False and card["loss_preset"] == "paper"
    assert (card["device"], card["precision"]) == ("cpu", "fp32")  # what --precision auto chose, as device
    assert card["blocks"] == 2 and "synthetic exposure" in card["training_data"]
    assert card["val_identity_psnr"] == pytest.approx(result.val.identity_psnr, abs=1e-3)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "total" in x] == list(range(1, 7))
    assert [x["step"] for x in lines if "val_psnr" in x] == [3, 6]
    run = tmp_path / "run"
    with pytest.raises(TrainingError) as finished:  # --resume would only say it has finished
        train(tiny_config(run))
    assert str(finished.value) == (
        f"{run}: already holds a finished training run; choose another folder, or train further from its "
        f"model into another: --init {run / 'final.safetensors'} --out NEW_FOLDER"
    )


def test_progress_says_the_images_of_the_whole_batch_trained_on_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [0.0]
    real_step = loop.take_step

    def step_of_half_a_second(*args: object) -> dict[str, float]:
        clock[0] += 0.5
        return real_step(*args)

    monkeypatch.setattr(loop, "take_step", step_of_half_a_second)
    monkeypatch.setattr(
        loop, "time", types.SimpleNamespace(perf_counter=lambda: clock[0], monotonic=time.monotonic)
    )
    reports: list[loop.Progress] = []
    train(tiny_config(tmp_path / "run", steps=2, val_every=2, batch=2), progress=reports.append)
    assert [report.images_per_second for report in reports] == pytest.approx([4.0, 4.0])  # 2 crops in 0.5 s


def test_a_new_run_into_a_folder_says_what_the_folder_holds(tmp_path: Path) -> None:
    train(tiny_config(tmp_path / "stopped"), time_limit=0)
    with pytest.raises(TrainingError) as stopped:
        train(tiny_config(tmp_path / "stopped"))
    assert str(stopped.value) == (
        f"{tmp_path / 'stopped'}: already holds a training run; resume it (recnet train --resume "
        f"{tmp_path / 'stopped'}) or choose another folder"
    )
    spaced = tmp_path / "my runs" / "first try"
    train(tiny_config(spaced), time_limit=0)
    with pytest.raises(TrainingError) as quoted:  # the command to copy works as printed
        train(tiny_config(spaced))
    assert f"(recnet train --resume '{spaced}')" in str(quoted.value)
    with claimed(tmp_path / "stopped"), pytest.raises(TrainingError) as held:  # as another process holds it
        train(tiny_config(tmp_path / "stopped"))
    assert str(held.value).startswith(f"{tmp_path / 'stopped'}: another recnet train is writing this run;")
    mine = tmp_path / "mine"  # the user's own model, named as a run's: not a run to resume
    mine.mkdir()
    shutil.copy(tmp_path / "stopped" / "checkpoint.safetensors", mine / "final.safetensors")
    (mine / "final.md").write_text("my notes")
    with pytest.raises(TrainingError) as theirs:
        train(tiny_config(mine))
    assert str(theirs.value) == (
        f"{mine}: already holds files a training run writes (final.safetensors, final.md); choose another "
        "folder"
    )


def test_a_run_killed_while_writing_its_final_model_is_to_be_resumed_not_called_finished(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    train(tiny_config(run, steps=2, val_every=2))
    (run / "final.md").unlink()  # the card was still to be written: --resume writes it
    with pytest.raises(TrainingError) as refused:
        train(tiny_config(run, steps=2, val_every=2))
    assert str(refused.value) == (
        f"{run}: already holds a training run; resume it (recnet train --resume {run}) or choose another "
        "folder"
    )


def test_the_card_says_how_many_held_out_photos_validate_the_run(tmp_path: Path) -> None:
    # More photos held out than validate (--val-images, 24 by default): the card said they all did
    photos = tmp_path / "photos"
    photos.mkdir()
    for copy in range(3):  # 15 photos: 2 held out
        for path in PHOTOS.iterdir():
            shutil.copy(path, photos / f"{copy}-{path.name}")
    train(tiny_config(tmp_path / "run", photos=photos, steps=1, val_images=1))
    card = json.loads((tmp_path / "run" / "final.json").read_text())
    assert card["val_images"] == 1
    assert card["training_data"] == (  # 13 trained on and 2 more: it read as 2 of the 13
        "13 photos from photos/ with synthetic exposure errors (and 2 more held out, 1 of them for "
        "validation)"
    )


def test_the_card_counts_one_photo_in_the_singular(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in sorted(PHOTOS.glob("*.jpg"))[:2]:  # one trained on, one held out
        shutil.copy(path, photos / path.name)
    monkeypatch.chdir(photos)
    train(tiny_config(tmp_path / "run", photos=Path("."), steps=1, val_images=1))  # named as "." (it said /)
    card = json.loads((tmp_path / "run" / "final.json").read_text())
    assert card["training_data"] == (  # it said "1 photos"
        "1 photo from photos/ with synthetic exposure errors (and 1 more held out for validation)"
    )


def test_a_run_folder_that_another_training_holds_is_refused_and_left_alone(tmp_path: Path) -> None:
    # Two trainings into one folder (a run started twice, a requeued job resuming while the first still
    # ran) both went on, and their steps mixed in metrics.jsonl
    run, held = tmp_path / "runs" / "run", "another recnet train is writing this run"
    with run_folder.claimed(run):  # as a process training into it holds it (flock: per open file)
        with pytest.raises(TrainingError, match=held):
            train(tiny_config(run))
        with pytest.raises(TrainingError, match=held):  # not "no checkpoint to resume from": it has none yet
            resume(run)
        assert list(run.iterdir()) == []
    assert not (tmp_path / "runs").exists()  # made for the claim and left empty: removed
    train(tiny_config(run), time_limit=0)  # stops at its first checkpoint, to be resumed
    metrics, config = (run / "metrics.jsonl").read_bytes(), (run / "config.json").read_bytes()
    with run_folder.claimed(run), pytest.raises(TrainingError, match=held):
        resume(run)
    photos = copy_photos(tmp_path / "same-photos")  # as where the run's photos moved to: refused too
    with run_folder.claimed(run), pytest.raises(TrainingError, match=held):
        resume(run, moved={"photos": photos})
    assert (run / "metrics.jsonl").read_bytes() == metrics
    assert (run / "config.json").read_bytes() == config  # it was written with the new place all the same
    assert resume(run).model_path == run / "final.safetensors"


def test_a_run_that_fails_to_start_removes_the_folders_it_made_and_no_others(tmp_path: Path) -> None:
    photos = copy_photos(tmp_path / "photos")
    (photos / "broken.jpg").write_bytes(b"not a photo")
    runs = tmp_path / "runs"
    runs.mkdir()  # the user's, empty: kept
    with pytest.raises(ImageFileError):
        train(tiny_config(runs / "today" / "run", photos=photos))
    assert runs.is_dir() and list(runs.iterdir()) == []


@pytest.mark.skipif(run_folder.fcntl is None, reason="no flock here")
def test_a_file_system_that_takes_no_locks_trains_unguarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NFS without its lock service answers flock with ENOLCK: training was refused with only that errno
    def no_locks(*args: object) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(run_folder.fcntl, "flock", no_locks)
    assert train(tiny_config(tmp_path / "run")).model_path == tmp_path / "run" / "final.safetensors"


@pytest.mark.parametrize("name", run_folder.RUN_FILES)
def test_a_folder_holding_a_file_a_run_writes_is_refused_and_left_as_it_was(
    tmp_path: Path, name: str
) -> None:
    """Here the user's own files: a run would write over them."""
    (tmp_path / name).write_text("the user's, not JSON\n")
    with pytest.raises(
        TrainingError, match=rf"already holds (a training run|files .* \({re.escape(name)}\))"
    ):
        train(tiny_config(tmp_path))
    assert [(p.name, p.read_text()) for p in tmp_path.iterdir()] == [(name, "the user's, not JSON\n")]


def test_the_files_in_the_way_of_a_run_are_named(tmp_path: Path) -> None:
    for name in ("final.md", "config.json", "notes.txt"):
        (tmp_path / name).write_text("mine")
    with pytest.raises(
        TrainingError,
        match=rf"^{re.escape(str(tmp_path))}: already holds files a training run writes "
        r"\(config\.json, final\.md\); choose another folder$",
    ):
        train(tiny_config(tmp_path))


def test_another_programs_json_settings_named_config_json_are_in_the_way_of_a_run(tmp_path: Path) -> None:
    # a JSON object, but not a run's settings: neither a run to resume nor one to write over
    (tmp_path / "config.json").write_text('{"theme": "dark"}\n')
    with pytest.raises(
        TrainingError,
        match=r"already holds files a training run writes \(config\.json\); choose another folder$",
    ):
        train(tiny_config(tmp_path, steps=1, val_every=1))
    assert (tmp_path / "config.json").read_text() == '{"theme": "dark"}\n'


def test_a_broken_link_named_as_a_run_file_is_in_the_way_of_a_run(tmp_path: Path) -> None:
    (tmp_path / "final.safetensors").symlink_to(tmp_path / "gone")
    with pytest.raises(
        TrainingError, match=r"already holds files a training run writes \(final\.safetensors\); choose"
    ):
        train(tiny_config(tmp_path, steps=1, val_every=1))
    assert (tmp_path / "final.safetensors").is_symlink() and not (tmp_path / "config.json").exists()


def test_a_folder_where_a_run_stopped_before_its_first_checkpoint_takes_a_new_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Such a run (out of memory at the first step, a loss that went on being NaN) leaves its config and
    metrics: nothing to resume, and not in the way of a new run, which replaces them."""
    (tmp_path / "notes.txt").write_text("mine")
    real_build = loop.build_loss
    with monkeypatch.context() as patch, pytest.raises(TrainingError, match="not finite for 2 steps"):
        patch.setattr(loop, "build_loss", lambda *a: NanEvery(real_build(*a), bad={1, 2}))
        train(tiny_config(tmp_path, max_bad_steps=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "metrics.jsonl", "notes.txt"]
    with pytest.raises(TrainingError, match="no checkpoint to resume from"):
        resume(tmp_path)
    assert train(tiny_config(tmp_path, steps=2, val_every=2)).complete
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 2] and (tmp_path / "notes.txt").read_text() == "mine"


def test_a_run_goes_into_an_existing_folder_beside_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert train(tiny_config(tmp_path, steps=1, val_every=1)).complete
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "final.safetensors").is_file()


def test_damaged_photos_to_train_on_and_to_validate_on_are_named_in_one_error(tmp_path: Path) -> None:
    # a bad photo held out for validation was said only once those to train on were mended
    photos = copy_photos(tmp_path / "photos")
    for index in range(40):  # so that some are held out (about 10%)
        (photos / f"broken-{index}.jpg").write_bytes(b"not a photo")
    train_paths, val_paths = split_photos(photos)
    bad_to_train = next(path for path in train_paths if path.stem.startswith("broken"))
    bad_to_validate = next(path for path in val_paths if path.stem.startswith("broken"))
    for path in photos.glob("broken-*.jpg"):
        if path not in (bad_to_train, bad_to_validate):
            path.unlink()
    with pytest.raises(ImageFileError) as raised:
        photo_data(photos, 32, 0, DegradationConfig(), 64, 24, 48)
    assert str(raised.value).startswith("2 images cannot be used: ")
    assert f"{bad_to_train}: " in str(raised.value) and f"{bad_to_validate}: " in str(raised.value)


def test_a_damaged_photo_stops_training_before_anything_is_written(tmp_path: Path) -> None:
    """OpenCV would decode the half a truncated JPEG holds; the photo is refused as `recnet correct` does."""
    photos = copy_photos(tmp_path / "photos")
    broken = photos / "broken.jpg"
    data = (PHOTOS / "bsd100-img_007.jpg").read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageFileError, match=rf"^{re.escape(str(broken))}: truncated or corrupt image data$"):
        train(tiny_config(tmp_path / "run", photos=photos))
    assert not (tmp_path / "run").exists()


def test_every_damaged_image_is_named_in_one_error_not_one_per_run(tmp_path: Path) -> None:
    good = sorted(PHOTOS.glob("*.jpg"))
    data = good[0].read_bytes()
    broken = [tmp_path / f"broken-{index}.jpg" for index in range(5)]
    for path in broken:
        path.write_bytes(data[: len(data) // 2])
    thin = tmp_path / "thin.png"
    cv2.imwrite(str(thin), np.zeros((1, 200, 3), np.uint8))
    with pytest.raises(ImageFileError) as raised:
        load_photos([good[0], *broken[:2], good[1], thin], 32, 256)
    truncated = "truncated or corrupt image data"
    assert str(raised.value) == (
        f"3 images cannot be used: {broken[0]}: {truncated}; {broken[1]}: {truncated}; "
        f"{thin}: 200x1 pixels is too thin to train or calibrate on (its long side may be at most 100 times "
        "its short side, which training scales up to its --crop)"
    )
    with pytest.raises(ImageFileError, match=r"^5 images cannot be used: .*; and 2 more$"):
        load_photos(broken, 32, 256)
    # a damaged ground truth that five pairs share (MSEC's exposures of one scene) is named once
    pairs = [ImagePair(photo, broken[0]) for photo in good] + [ImagePair(good[0], broken[1])]
    with pytest.raises(ImageFileError, match=rf"^2 images cannot be used: {re.escape(str(broken[0]))}: "):
        load_pairs(pairs, 32, 256)
    with pytest.raises(ImageFileError, match=rf"^{re.escape(str(broken[0]))}: {truncated}$"):
        load_pairs(pairs[:3], 32, 256)
    # each of the five pairs held a scaled copy of the shared ground truth (and every decoded one until the
    # last pair was loaded): MSEC's 2,500 pairs held five copies of each of its 500 ground truths
    exposures = [tmp_path / f"exposure{index}.png" for index in range(5)]
    for exposure in exposures:
        exposure.write_bytes(good[0].read_bytes())
    shared = [ImagePair(exposure, good[0]) for exposure in exposures]
    targets = [target for _, target in load_pairs(shared, 16, 48)]  # scaled down
    assert len(shared) > 1 and all(target is targets[0] for target in targets)


def test_photos_whose_names_are_not_utf8_are_read_and_trained_on(tmp_path: Path) -> None:
    """Names from another system's archive: bytes that are not UTF-8 reach Python as surrogates."""
    photos = tmp_path / "photos"
    photos.mkdir()
    originals = sorted(PHOTOS.glob("*.jpg"))
    for index, original in enumerate(originals):
        (photos / os.fsdecode(b"photo-\xff%d.jpg" % index)).write_bytes(original.read_bytes())
    expected = cv2.cvtColor(cv2.imread(str(originals[0])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(read_rgb(photos / os.fsdecode(b"photo-\xff0.jpg")), expected)
    assert sum(map(len, split_photos(photos))) == len(originals)
    assert train(tiny_config(tmp_path / "run", photos=photos, steps=1, val_every=1)).complete


def test_a_run_folder_whose_name_is_not_utf8_resumes_and_its_models_load(tmp_path: Path) -> None:
    """safetensors opens only names that are valid UTF-8: the checkpoint was reported damaged."""
    run_dir = tmp_path / os.fsdecode(b"run-\xe9")
    train(tiny_config(run_dir), time_limit=0)
    assert load_model(str(run_dir / "checkpoint.safetensors")).model.num_blocks == 2
    assert resume(run_dir).complete
    assert load_model(str(run_dir / "final.safetensors")).card["steps"] == 6


def test_a_photo_folder_whose_name_is_not_utf8_reaches_the_model_card(tmp_path: Path) -> None:
    """The card names the folder: saving the final model, once the run was done, was a UnicodeEncodeError."""
    photos = copy_photos(tmp_path / os.fsdecode(b"photos-\xe9"))
    assert train(tiny_config(tmp_path / "run", photos=photos, steps=1, val_every=1)).complete
    loaded = load_model(str(tmp_path / "run" / "final.safetensors"))
    assert "from photos-\udce9/" in loaded.card["training_data"]
    assert "from photos-\\udce9/" in (tmp_path / "run" / "final.md").read_text(encoding="utf-8")
    assert (
        "from photos-\\udce9/"
        in safetensors_header(tmp_path / "run" / "final.safetensors")[1]["training_data"]
    )


@pytest.mark.parametrize(
    ("function", "out_of_memory"),
    [("fit_size", numpy_out_of_memory), ("fit_size", opencv_out_of_memory), ("degrade", torch_out_of_memory)],
)
def test_data_too_large_for_memory_says_so_not_to_shrink_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function: str, out_of_memory: object
) -> None:
    """Every photo is held in memory: the command advised a smaller --batch or --crop, which cannot help."""
    monkeypatch.setattr(f"recnet_cli.train.data.{function}", out_of_memory)
    with pytest.raises(TrainingError) as error:
        train(tiny_config(tmp_path / "run"))
    assert str(error.value) == (
        f"{PHOTOS}: not enough memory to hold the data (each image is kept in memory, at up to 1024 px): "
        "train on fewer images, or free some memory (close other programs)"
    )
    assert not (tmp_path / "run").exists()


def test_a_crop_larger_than_the_images_are_kept_at_is_named_when_memory_runs_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each image is scaled up so that its short side holds a crop: a mistyped --crop 200000 asked OpenCV for
    # 180 GB, whose error escaped as a traceback
    monkeypatch.setattr("recnet_cli.train.data.fit_size", opencv_out_of_memory)
    with pytest.raises(TrainingError) as error:
        train(tiny_config(tmp_path / "run", crop=2000))
    assert str(error.value) == (
        f"{PHOTOS}: not enough memory to hold the data: at --crop 2000 every image is scaled up to that on "
        "its short side, so that a crop fits; use a smaller --crop (images are kept at up to 1024 px)"
    )
    assert not (tmp_path / "run").exists()


def copy_photos(folder: Path) -> Path:
    folder.mkdir()
    for path in PHOTOS.glob("*.jpg"):
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_missing_data_folders_and_an_output_file_are_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="nowhere: no such folder"):
        train(tiny_config(tmp_path / "run", photos=tmp_path / "nowhere"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(TrainingError, match=r"notes\.txt: not a folder"):
        train(tiny_config(tmp_path / "notes.txt"))
    with pytest.raises(TrainingError, match=r"notes\.txt: not a folder"):
        train(tiny_config(tmp_path / "run", photos=None, inputs=tmp_path / "notes.txt", targets=tmp_path))
    with pytest.raises(
        TrainingError, match=r"notes\.txt/runs/a: cannot make the run folder \(.*notes\.txt is a file\)$"
    ):
        train(tiny_config(tmp_path / "notes.txt" / "runs" / "a"))
    with pytest.raises(
        TrainingError, match=r"^/dev/null/run: cannot make the run folder \(/dev/null is a device\)$"
    ):
        train(tiny_config(Path("/dev/null/run")))
    assert not (tmp_path / "run").exists()


def test_a_run_that_recorded_cpu_n_resumes_on_the_cpu(tmp_path: Path) -> None:
    # --device cpu:1 was taken (PyTorch's name for the one CPU) and kept in config.json; it is refused now
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir, steps=2, checkpoint_every=1), time_limit=0)
    settings = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**settings, "device": "cpu:1"}))
    assert TrainConfig.from_json(json.loads((run_dir / "config.json").read_text())).device == "cpu"
    assert resume(run_dir).model_path == run_dir / "final.safetensors"


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads Linux's list of mapped files")
def test_a_checkpoint_read_to_resume_holds_no_mapping_of_its_file(tmp_path: Path) -> None:
    # A resumed run saves its next checkpoint over the one it read: Windows refuses that while the file is
    # mapped, and Adam kept the tensors it was given, views of the file, for the rest of the run
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir, steps=2, checkpoint_every=1), time_limit=0)
    _, _, tensors = read_run_checkpoint(run_dir)
    assert tensors and str(run_dir / CHECKPOINT_FILE) not in Path("/proc/self/maps").read_text()


def test_the_regime_mix_reaches_the_data_the_card_and_a_resumed_run(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "run", steps=2, val_every=2, checkpoint_every=1, regimes=(0, 0, 0, 1.0))
    train(config, time_limit=0)  # stops after one step with a checkpoint
    resumed = TrainConfig.from_json(json.loads((tmp_path / "run" / "config.json").read_text()))
    assert resumed.degradation().mode_probabilities == (0, 0, 0, 1.0)
    train_resumed = resume(tmp_path / "run")
    card = json.loads((train_resumed.run_dir / "final.json").read_text())
    assert "regimes under 0, over 0, mixed 0, mild 1" in card["degradations"]
    # validation pairs come from the same mix: nearly right inputs score far above under-exposed ones
    under = train(tiny_config(tmp_path / "under", steps=1, val_every=1, regimes=(1.0, 0, 0, 0)))
    assert train_resumed.val is not None and under.val is not None
    assert train_resumed.val.identity_psnr > under.val.identity_psnr + 5


def test_validation_scores_the_float32_model_whatever_the_training_precision(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "run", steps=2, val_every=2, precision="bf16")
    result = train(config)
    _, validation = loop.build_data(config)
    model = load_model(str(result.model_path)).model
    scores = [
        quantised_scores(loop.corrected(model, pair.input, torch.device("cpu")), pair.target[None])
        for pair in validation
    ]
    assert result.val is not None
    assert result.val.psnr == pytest.approx(float(np.mean([float(p) for p, _ in scores])), abs=1e-9)
    assert result.val.ssim == pytest.approx(float(np.mean([float(s) for _, s in scores])), abs=1e-9)


def test_validation_psnr_and_ssim_are_the_means_of_the_held_out_photos_scores() -> None:
    # A median would hide one held-out photo the model ruins behind the others' scores
    scores = [(torch.tensor(20.0), torch.tensor(0.5)), (torch.tensor(30.0), torch.tensor(0.6))]
    scores.append((torch.tensor(46.0), torch.tensor(0.94)))
    psnr, ssim = loop.mean_scores(scores)
    assert psnr == pytest.approx(32.0) and ssim == pytest.approx(0.68)  # the medians are 30 and 0.6


def test_killed_and_resumed_run_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    train(tiny_config(tmp_path / "whole"))

    def kill_after_step_4(progress: loop.Progress) -> None:
        if progress.step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path / "split"), progress=kill_after_step_4)
    assert not (tmp_path / "split" / "final.safetensors").exists()
    result = resume(tmp_path / "split")
    assert result.steps == 6
    whole, split = final_weights(tmp_path / "whole"), final_weights(tmp_path / "split")
    assert all(torch.equal(whole[k], split[k]) for k in whole)
    steps = [json.loads(x)["step"] for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 3, 4, 5, 6, 6]  # step 4, redone after the resume, is logged once


def test_a_run_resumed_at_another_cadence_trains_the_weights_of_an_unbroken_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation and checkpoints touch no random state, batch or optimizer state: --resume takes a new
    --checkpoint-every and --val-every, and config.json keeps them for the next --resume."""
    train(tiny_config(tmp_path / "whole"))  # validates and saves every 3 steps
    run_dir = tmp_path / "split"
    train(tiny_config(run_dir), time_limit=0)  # stops after step 1
    saved: list[int] = []
    real_save = loop.save_checkpoint

    def noting_the_step(config: TrainConfig, state: RunState, *rest: object) -> None:
        saved.append(state.step)
        real_save(config, state, *rest)

    monkeypatch.setattr(loop, "save_checkpoint", noting_the_step)
    with pytest.raises(TrainingError, match=r"^--val-every: use 1 or more steps \(got 0\)$"):
        resume(run_dir, cadence={"val_every": 0})
    stop_at_step_three = iter([None, "Ctrl-C"]).__next__  # asked after steps 2 and 3
    cadence = {"checkpoint_every": 2, "val_every": 4}
    assert resume(run_dir, stop_requested=stop_at_step_three, cadence=cadence).steps == 3
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["checkpoint_every"], config["val_every"]) == (2, 4)
    assert resume(run_dir).complete  # keeps the new cadence
    assert saved == [2, 3, 4, 6]
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records if "val_psnr" in record] == [4, 6]
    whole, split = final_weights(tmp_path / "whole"), final_weights(run_dir)
    assert all(torch.equal(whole[k], split[k]) for k in whole)


def test_recnet_train_resumes_with_another_cadence_but_not_with_other_steps(tmp_path: Path) -> None:
    # More frequent checkpoints after a preemption were refused: only a new run with --init had them
    run_dir = tmp_path / "run"
    tiny = "--steps 3 --batch 2 --crop 32 --no-ecr --device cpu -q"
    started = CliRunner().invoke(
        app, ["train", "--photos", str(PHOTOS), "--out", str(run_dir), *tiny.split(), "--time-limit", "0"]
    )
    assert started.exit_code == 0 and checkpoint_step(run_dir) == 1, started.stderr
    steps = CliRunner().invoke(app, ["train", "--resume", str(run_dir), "--steps", "4", "--val-every", "1"])
    assert steps.exit_code == 2 and steps.stderr.startswith("error: --steps: --resume continues")
    resumed = CliRunner().invoke(
        app, ["train", "--resume", str(run_dir), "--val-every", "1", "--checkpoint-every", "2", "-q"]
    )
    assert resumed.exit_code == 0, resumed.stderr
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["val_every"], config["checkpoint_every"], config["steps"]) == (1, 2, 3)
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records if "val_psnr" in record] == [2, 3]


def test_a_run_resumes_from_any_folder_on_the_data_it_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative paths in config.json would be read from where --resume runs: here, other photos."""
    (tmp_path / "start").mkdir()
    copy_photos(tmp_path / "start" / "photos")
    (tmp_path / "elsewhere" / "photos").mkdir(parents=True)
    for path in sorted(PHOTOS.glob("*.jpg"))[:3]:
        shutil.copy(path, tmp_path / "elsewhere" / "photos")
    monkeypatch.chdir(tmp_path / "start")
    train(tiny_config(Path("run"), photos=Path("photos")), time_limit=0)
    config = json.loads(Path("run", "config.json").read_text())
    assert (config["photos"], config["run_dir"]) == (str(Path.cwd() / "photos"), str(Path.cwd() / "run"))
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert resume(Path("../start/run")).complete
    train(tiny_config(tmp_path / "whole"))
    whole, resumed = final_weights(tmp_path / "whole"), final_weights(tmp_path / "start" / "run")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_a_config_with_relative_paths_resumes_from_the_folder_it_was_started_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As earlier versions wrote it."""
    monkeypatch.chdir(tmp_path)
    train(tiny_config(Path("run"), photos=copy_photos(Path("photos"))), time_limit=0)
    config = json.loads(Path("run", "config.json").read_text())
    Path("run", "config.json").write_text(json.dumps(config | {"run_dir": "run", "photos": "photos"}))
    assert resume(Path("run")).complete


def test_a_run_whose_photos_moved_says_how_to_resume_and_resumes_on_them_where_they_are_now(
    tmp_path: Path,
) -> None:
    """As when a run folder is copied to another machine: config.json's absolute paths lead nowhere."""
    train(tiny_config(tmp_path / "run", photos=copy_photos(tmp_path / "photos")), time_limit=0)
    (tmp_path / "photos").rename(tmp_path / "moved")
    with pytest.raises(TrainingError) as missing:
        resume(tmp_path / "run")
    assert str(missing.value) == (
        f"{tmp_path / 'photos'}: no such folder; if the run's --photos moved, say where: "
        f"recnet train --resume {tmp_path / 'run'} --photos NEW"
    )
    with pytest.raises(TrainingError, match=r"^--pairs: .* was not trained with one \(it used --photos\)$"):
        resume(tmp_path / "run", moved={"pairs": tmp_path / "moved"})
    with pytest.raises(
        TrainingError, match=r"^--vgg-weights: .* was not trained with one \(it trained with --no-ecr\)$"
    ):
        resume(tmp_path / "run", moved={"vgg_weights": tmp_path / "vgg16.pth"})
    assert resume(tmp_path / "run", moved={"photos": tmp_path / "moved"}, time_limit=0).steps == 2
    assert json.loads((tmp_path / "run" / "config.json").read_text())["photos"] == str(tmp_path / "moved")
    assert resume(tmp_path / "run").complete  # config.json keeps the new place
    train(tiny_config(tmp_path / "whole"))
    whole, resumed = final_weights(tmp_path / "whole"), final_weights(tmp_path / "run")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_vgg_weights_named_for_a_run_without_ecr_need_not_be_there_to_resume(tmp_path: Path) -> None:
    """They are never read, and --vgg-weights, refused for such a run, could not say where they went."""
    vgg = tmp_path / "vgg16.safetensors"
    vgg.write_bytes(b"unused")
    train(tiny_config(tmp_path / "run", vgg_weights=vgg), time_limit=0)
    vgg.unlink()
    assert resume(tmp_path / "run").complete


def test_a_run_is_not_resumed_on_other_vgg_weights_than_it_started_with(tmp_path: Path) -> None:
    # --resume --vgg-weights OTHER changed the ECR loss of the run it claimed to continue exactly
    torch.manual_seed(0)
    torch.save(VGG16Features().state_dict(), tmp_path / "vgg.pth")
    torch.manual_seed(1)
    torch.save(VGG16Features().state_dict(), tmp_path / "other.pth")
    config = tiny_config(
        tmp_path / "run", steps=2, checkpoint_every=1, ecr=True, vgg_weights=tmp_path / "vgg.pth"
    )
    train(config, time_limit=0)
    assert len(json.loads((tmp_path / "run" / "config.json").read_text())["vgg_fingerprint"]) == 16
    with pytest.raises(TrainingError) as other:
        resume(tmp_path / "run", moved={"vgg_weights": tmp_path / "other.pth"})
    assert str(other.value) == (
        f"{tmp_path / 'other.pth'}: not the VGG16 weights the run started with, so its ECR loss would "
        "change; give the run's own with --vgg-weights, or start a new run with --init "
        f"{tmp_path / 'run' / CHECKPOINT_FILE}"
    )
    # the refused resume left the run as it was: it resumes as it would have before
    assert json.loads((tmp_path / "run" / "config.json").read_text())["vgg_weights"] == str(
        tmp_path / "vgg.pth"
    )
    (tmp_path / "vgg.pth").rename(tmp_path / "moved.pth")  # the same weights elsewhere: resumed
    assert resume(tmp_path / "run", moved={"vgg_weights": tmp_path / "moved.pth"}).complete


def test_a_run_whose_photos_changed_is_not_resumed_on_them(tmp_path: Path) -> None:
    """More photos would change the validation set and the batches: not the run that stopped."""
    photos = copy_photos(tmp_path / "photos")
    train(tiny_config(tmp_path / "run", photos=photos), time_limit=0)
    started_on = json.loads((tmp_path / "run" / "config.json").read_text())["data_fingerprint"]
    assert started_on.startswith("5 files, sha256 ")
    extra = photos / "extra.jpg"
    extra.write_bytes(next(PHOTOS.glob("*.jpg")).read_bytes())
    with pytest.raises(TrainingError) as changed:
        resume(tmp_path / "run")
    assert str(changed.value).startswith(
        f"{photos}: not the files the run started with (now 6 files, sha256 "
    ) and str(changed.value).endswith(
        f"start a new run with --init {tmp_path / 'run' / 'checkpoint.safetensors'}"
    )
    extra.unlink()
    assert resume(tmp_path / "run").complete


def test_a_run_whose_photo_was_replaced_by_another_of_the_same_name_is_not_resumed_on_it(
    tmp_path: Path,
) -> None:
    photos = copy_photos(tmp_path / "photos")
    train(tiny_config(tmp_path / "run", photos=photos), time_limit=0)
    replaced, other = sorted(photos.glob("*.jpg"))[:2]
    assert replaced.stat().st_size != other.stat().st_size
    replaced.write_bytes(other.read_bytes())
    with pytest.raises(TrainingError, match=r"not the files the run started with \(now 5 files, sha256 "):
        resume(tmp_path / "run")


def test_a_run_started_by_a_version_that_kept_no_fingerprints_resumes(tmp_path: Path) -> None:
    # config.json of such a run has neither data_fingerprint nor vgg_fingerprint: nothing to compare with
    torch.manual_seed(0)
    torch.save(VGG16Features().state_dict(), tmp_path / "vgg.pth")
    run_dir = tmp_path / "run"
    train(
        tiny_config(run_dir, steps=2, checkpoint_every=1, ecr=True, vgg_weights=tmp_path / "vgg.pth"),
        time_limit=0,
    )
    settings = json.loads((run_dir / "config.json").read_text())
    earlier = {name: value for name, value in settings.items() if not name.endswith("_fingerprint")}
    (run_dir / "config.json").write_text(json.dumps(earlier))
    assert resume(run_dir).complete


def test_resume_needs_a_checkpoint(tmp_path: Path) -> None:
    # a folder of photos given as the run: it said "no checkpoint to resume from"
    with pytest.raises(TrainingError) as no_run:
        resume(tmp_path)
    assert str(no_run.value) == f"{tmp_path}: not a run folder (no config.json: recnet train --out makes one)"
    with pytest.raises(TrainingError, match=r"nowhere: no such folder$"):
        resume(tmp_path / "nowhere")
    assert run_folder.saved_step(tmp_path) is None
    assert run_folder.how_to_go_on(tmp_path) == (
        f"{tmp_path} has no checkpoint, so the same command starts the run again"
    )
    assert run_folder.how_to_go_on(tmp_path / "nowhere") == (
        f"the run had not started ({tmp_path / 'nowhere'} was not made), so the same command starts it"
    )
    safetensors.torch.save_file(
        {"w": torch.zeros(1)}, tmp_path / "checkpoint.safetensors", metadata={"step": "40"}
    )
    assert run_folder.how_to_go_on(tmp_path) == (
        f"{tmp_path}'s last checkpoint is at step 40; continue with recnet train --resume {tmp_path}"
    )


def test_a_checkpoint_without_its_config_is_not_called_missing(tmp_path: Path) -> None:
    """As when only checkpoint.safetensors was copied to another machine: the error said there was none."""
    train(tiny_config(tmp_path / "run"), time_limit=0)
    (tmp_path / "run" / "config.json").unlink()
    with pytest.raises(TrainingError) as error:
        resume(tmp_path / "run")
    assert (
        str(error.value)
        == f"{tmp_path / 'run' / 'config.json'}: no such file; --resume needs the run's settings, kept there"
    )


RUN_FILE_DAMAGE = [  # (file, its new content, what the error says about it)
    ("checkpoint.safetensors", b"", "SafetensorError: Error while deserializing header: header too small"),
    ("checkpoint.safetensors", b"cut", "SafetensorError: Error while deserializing header: header too small"),
    ("config.json", b"", "JSONDecodeError: Expecting value"),
    ("config.json", b"[1, 2]", "not a JSON object"),
    ("metrics.jsonl", b'{"step": 1}\nnot JSON\n', "JSONDecodeError: Expecting value"),
]
CHECKPOINT_STATE_DAMAGE = [  # (the counters in the checkpoint's metadata, what the error says about them)
    ("{step: 1", "JSONDecodeError: Expecting property name enclosed in double quotes"),
    ('{"param_groups": []}', "KeyError: 'state'"),
]


def test_a_damaged_run_file_stops_a_resume_with_one_line_naming_it(tmp_path: Path) -> None:
    train(tiny_config(tmp_path / "run", steps=2, checkpoint_every=1), time_limit=0)
    damages = [
        *RUN_FILE_DAMAGE,
        *(("checkpoint.safetensors", state, reason) for state, reason in CHECKPOINT_STATE_DAMAGE),
    ]
    for index, (name, content, reason) in enumerate(damages):
        damaged = shutil.copytree(tmp_path / "run", tmp_path / f"damaged{index}")
        if isinstance(content, bytes):
            (damaged / name).write_bytes(content)
        else:
            rewrite_checkpoint_metadata(damaged, {"step": "1", "training_state": content})
        with pytest.raises(TrainingError) as caught:
            resume(damaged)
        assert str(caught.value).startswith(f"{damaged / name}: damaged ({reason}")
        assert "\n" not in str(caught.value)
    assert resume(tmp_path / "run").complete  # the undamaged run resumes


CONFIG_FIELD_DAMAGE = [  # (a field of config.json, a value of the wrong type, what the error says)
    ("steps", "many", 'steps is "many", not int'),
    ("lr", None, "lr is null, not float"),
    ("crop", "64", 'crop is "64", not int'),
    ("regimes", [1, 2], "regimes is [1, 2], not tuple[float, float, float, float]"),
    ("ecr", 1, "ecr is 1, not bool"),
    ("photos", ["a"], 'photos is ["a"], not Path | None'),
]


def test_a_config_field_of_the_wrong_type_stops_a_resume_with_one_line_naming_the_file(
    tmp_path: Path,
) -> None:
    train(tiny_config(tmp_path / "run", steps=2, checkpoint_every=1), time_limit=0)
    config_path = tmp_path / "run" / "config.json"
    config = json.loads(config_path.read_text())
    for name, value, reason in CONFIG_FIELD_DAMAGE:
        config_path.write_text(json.dumps(config | {name: value}))
        with pytest.raises(TrainingError) as caught:
            resume(tmp_path / "run")
        assert str(caught.value) == f"{config_path}: damaged (TypeError: {reason})"
    # a field missing: its default (20,000 steps, 384 px crops) would not be the run's setting
    without = {name: value for name, value in config.items() if name not in ("steps", "crop")}
    config_path.write_text(json.dumps(without))
    with pytest.raises(TrainingError) as caught:
        resume(tmp_path / "run")
    assert str(caught.value) == f"{config_path}: damaged (TypeError: steps, crop missing)"
    old = {name: value for name, value in config.items() if name not in ADDED_LATER}
    assert TrainConfig.from_json(old).regimes == TrainConfig(tmp_path).regimes  # as earlier versions wrote it
    config_path.write_text(json.dumps(config | {"batch": 0}))  # of the right type, but no batch
    with pytest.raises(TrainingError) as caught:
        resume(tmp_path / "run")
    assert str(caught.value) == f"{config_path}: damaged (TrainingError: batch must be at least 1 (got 0))"
    for edit, reason in (  # each failed at the first step, in PyTorch's words (Invalid learning rate: nan)
        ({"lr": float("nan")}, "lr must be from 0 to 1 (got nan)"),
        ({"lr": -1e-4}, "lr must be from 0 to 1 (got -0.0001)"),
        (
            {"regimes": [-1, 1, 1, 1]},
            "regimes must be finite shares of 0 or more, not all 0 (got [-1, 1, 1, 1])",
        ),
        (
            {"regimes": [0, 0, 0, 0]},
            "regimes must be finite shares of 0 or more, not all 0 (got [0, 0, 0, 0])",
        ),
        ({"jpeg_probability": 2}, "jpeg_probability must be from 0 to 1 (got 2)"),
        ({"channels": 3}, "channels: RECNet needs an even number of channels, at least 4, not 3"),
        ({"seed": -1}, "seed must be from 0 to 2^64 - 1 (got -1)"),
        ({"seed": 2**64}, "seed must be from 0 to 2^64 - 1 (got 18446744073709551616)"),
        ({"photos": None}, "the data must be photos, pairs, or inputs with targets (got none)"),
        (
            {"pairs": str(tmp_path)},
            "the data must be photos, pairs, or inputs with targets (got photos and pairs)",
        ),
        (
            {"photos": None, "inputs": str(tmp_path)},
            "the data must be photos, pairs, or inputs with targets (got inputs)",
        ),
    ):
        config_path.write_text(json.dumps(config | edit))
        with pytest.raises(TrainingError) as caught:
            resume(tmp_path / "run")
        assert str(caught.value) == f"{config_path}: damaged (TrainingError: {reason})"
    config_path.write_text(json.dumps(config | {"jpeg_probability": 1}))  # an integer is a float to JSON
    assert resume(tmp_path / "run").complete


def test_true_or_false_in_a_config_field_that_holds_a_number_is_refused(tmp_path: Path) -> None:
    # Python takes True for 1: a config.json saying "steps": true would train one step
    settings = json.loads(json.dumps(tiny_config(tmp_path / "run").to_json()))
    with pytest.raises(TypeError, match=r"^steps is true, not int$"):
        TrainConfig.from_json(settings | {"steps": True})
    with pytest.raises(TypeError, match=r"^lr is false, not float$"):
        TrainConfig.from_json(settings | {"lr": False})


def test_regimes_whose_shares_add_up_past_the_largest_float_are_refused(tmp_path: Path) -> None:
    # each share is finite, their sum is not: the mix would be NaN
    with pytest.raises(TrainingError) as refused:
        train(tiny_config(tmp_path / "run", regimes=(1e308, 1e308, 0.0, 0.0)))
    assert str(refused.value) == (
        "regimes must be finite shares of 0 or more, not all 0 (got [1e+308, 1e+308, 0.0, 0.0])"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("written", [False, True])
def test_a_crash_while_saving_a_checkpoint_leaves_a_run_that_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: bool
) -> None:
    """The checkpoint is one file, replaced whole: a crash before it is in place leaves the previous one,
    a crash right after it (where a second file was still to come) the new one."""
    checkpoints: list[Path] = []

    def write_then_crash(path: Path, data: bytes) -> None:
        if path.name == "checkpoint.safetensors":
            checkpoints.append(path)
        if len(checkpoints) == 2 and not written:
            raise KeyboardInterrupt
        write_atomic(path, data)
        if len(checkpoints) == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(run_folder, "write_atomic", write_then_crash)
        train(tiny_config(tmp_path / "run", checkpoint_every=2))
    assert checkpoint_step(tmp_path / "run") == (4 if written else 2)
    assert resume(tmp_path / "run").complete
    train(tiny_config(tmp_path / "whole", checkpoint_every=2))
    whole, resumed = final_weights(tmp_path / "whole"), final_weights(tmp_path / "run")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_a_checkpoint_that_cannot_be_written_says_where_the_run_can_go_on_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run folder made read-only mid-run: the error said only that, not that the checkpoint before was
    intact and how to resume from it."""
    run_dir = tmp_path / "run"
    checkpoints: list[Path] = []

    def refused_from_the_second(path: Path, data: bytes) -> None:
        if path.name == "checkpoint.safetensors":
            checkpoints.append(path)
            if len(checkpoints) >= 2:
                raise PermissionError(errno.EPERM, "Operation not permitted", str(path))
        write_atomic(path, data)

    with monkeypatch.context() as patch:
        patch.setattr(run_folder, "write_atomic", refused_from_the_second)
        with pytest.raises(TrainingFailed) as failed:
            train(tiny_config(run_dir, checkpoint_every=2))
    assert str(failed.value) == (
        f"{run_dir / 'checkpoint.safetensors'}: operation not permitted; the last one saved, at step 2, is "
        f"intact: once that is fixed, continue with recnet train --resume {run_dir}"
    )
    assert resume(run_dir).complete


def test_a_checkpoint_without_its_run_state_or_at_odds_with_it_is_refused_naming_it(tmp_path: Path) -> None:
    """Its metadata's step and the step of the run state in it agree, or the file was tampered with."""
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir), time_limit=0)
    path = run_dir / "checkpoint.safetensors"
    state = safetensors_header(path)[1]["training_state"]
    rewrite_checkpoint_metadata(run_dir, {"step": "2", "training_state": state})
    with pytest.raises(TrainingError) as torn:
        resume(run_dir)
    assert str(torn.value) == f"{path}: damaged (its step and its run state's step differ)"
    rewrite_checkpoint_metadata(run_dir, {"step": "1"})
    with pytest.raises(TrainingError) as stateless:
        resume(run_dir)
    assert str(stateless.value) == f"{path}: not a recnet train checkpoint (its metadata holds no run state)"
    rewrite_checkpoint_metadata(run_dir, {"step": "1", "training_state": state})
    assert resume(run_dir).steps == 6


def test_recnet_train_reports_a_damaged_checkpoint_in_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    """SafetensorError is none of the errors the command catches: this was a traceback."""
    train(tiny_config(tmp_path / "run", steps=2, checkpoint_every=1), time_limit=0)
    (tmp_path / "run" / "checkpoint.safetensors").write_bytes(b"")
    result = run(["train", "--resume", str(tmp_path / "run")], env)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: {tmp_path / 'run' / 'checkpoint.safetensors'}: damaged "
        "(SafetensorError: Error while deserializing header: header too small)\n"
    )


def test_a_run_file_that_cannot_be_written_is_named_in_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    """A write past the file size limit fails as on a full disk (EFBIG for ENOSPC), naming no file."""
    limit = 100_000  # config.json and the metrics fit, the checkpoint does not
    options = "--steps 2 --checkpoint-every 1 --batch 2 --crop 32 --no-ecr --device cpu -q"
    result = subprocess.run(
        [RECNET, "train", "--photos", str(PHOTOS), "--out", str(tmp_path / "run"), *options.split()],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
        check=False,
    )
    assert (result.returncode, result.stdout) == (1, "")  # 1: it failed after it had started
    assert result.stderr == (
        f"error: {tmp_path / 'run' / 'checkpoint.safetensors'}: file too large; no checkpoint was saved yet: "
        "once that is fixed, the same command starts the run again\n"
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's always-full device")
def test_metrics_that_cannot_be_written_name_their_file(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").symlink_to("/dev/full")
    with pytest.raises(OSError) as caught:
        run_folder.append_metrics(tmp_path, {"step": 1})
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(tmp_path / "metrics.jsonl"))


def test_a_metrics_line_cut_short_by_a_full_disk_does_not_stop_a_resume(tmp_path: Path) -> None:
    # The disk filled while a step's line was appended: part of it is there, and the run stopped with a
    # one-line error. Once there is room, the run resumes from its checkpoint, the cut line dropped.
    train(tiny_config(tmp_path, steps=4, checkpoint_every=2, val_every=4), time_limit=0)
    with (tmp_path / "metrics.jsonl").open("a") as metrics:
        metrics.write('{"step": 3, "lr": 5e-05, "pix')
    assert resume(tmp_path).complete
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 4]


def test_a_file_that_is_not_vgg_weights_is_refused_without_pytorchs_advice(tmp_path: Path) -> None:
    """PyTorch's message would advise loading the file with weights_only=False: running code from it."""
    config = tiny_config(tmp_path / "run", ecr=True, vgg_weights=PHOTOS / "bsd100-img_007.jpg")
    with pytest.raises(VggWeightsError) as caught:
        train(config)
    assert str(caught.value) == f"{PHOTOS / 'bsd100-img_007.jpg'}: a JPEG image, not weights"
    assert not (tmp_path / "run").exists()


def test_init_from_a_saved_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train(tiny_config(tmp_path / "first", steps=2))
    model_path = tmp_path / "first" / "final.safetensors"
    monkeypatch.chdir(tmp_path)  # the model named as typed, relative to the working folder
    init = str(model_path.relative_to(tmp_path))
    train(tiny_config(tmp_path / "second", steps=1, lr=0.0, channels=4, blocks=1, init=init))
    first, second = final_weights(tmp_path / "first"), final_weights(tmp_path / "second")
    assert all(torch.equal(first[k], second[k]) for k in first)  # the init model's size wins
    config = json.loads((tmp_path / "second" / "config.json").read_text())
    assert config["channels"] == 8
    # the run folder says where it started from wherever it is read
    card = json.loads((tmp_path / "second" / "final.json").read_text())
    assert config["init"] == card["init"] == str(model_path)


def test_ecr_run_records_the_term_and_the_card_says_so(tmp_path: Path) -> None:
    vgg = VGG16Features()
    torch.save(vgg.state_dict(), tmp_path / "vgg.pth")
    config = tiny_config(
        tmp_path / "run", steps=2, ecr=True, vgg_weights=tmp_path / "vgg.pth", precision="bf16"
    )
    train(config)
    assert json.loads((tmp_path / "run" / "final.json").read_text())["ecr"] is True
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert np.isfinite(first["ecr"])


class NanEvery:
    """A loss whose total is NaN on the calls ``bad`` (0-based), the real loss otherwise."""

    def __init__(self, real: torch.nn.Module, bad: set[int]) -> None:
        self.real, self.bad, self.calls = real, bad, 0
        self.ecr = real.ecr

    def to(self, device: torch.device) -> NanEvery:
        return self

    def __call__(self, *args: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = self.real(*args)
        if self.calls in self.bad:
            terms["total"] = terms["total"] * float("nan")
        self.calls += 1
        return terms


def test_non_finite_steps_are_skipped_then_training_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = loop.build_loss
    monkeypatch.setattr(loop, "build_loss", lambda *a: NanEvery(real_build(*a), bad={1}))
    assert train(tiny_config(tmp_path / "once")).skipped_steps == 1
    once = [json.loads(line) for line in (tmp_path / "once" / "metrics.jsonl").read_text().splitlines()]
    assert once[1]["step"] == 2 and once[1]["total"] is None  # standard JSON: null, not NaN
    # Steps 4 to 6 not finite: the checkpoint due at step 4 is not saved, so step 2's is kept
    monkeypatch.setattr(loop, "build_loss", lambda *a: NanEvery(real_build(*a), bad={3, 4, 5}))
    with pytest.raises(TrainingFailed) as failed:
        train(tiny_config(tmp_path / "always", max_bad_steps=3, checkpoint_every=2))
    # fp32 already: fp32 is not advised; nor --resume, which keeps the learning rate; nor --init from this
    # run's checkpoint, whose weights may give NaN on whole photos though their loss was finite on crops
    assert str(failed.value).endswith(
        "not finite for 3 steps in a row (last at step 6); try a lower learning rate in a new run (--resume "
        "keeps this one's)"
    )
    assert checkpoint_step(tmp_path / "always") == 2


class FailingLoss(NanEvery):
    """A loss whose first call fails with ``error``, as a photo read mid-run can (Pillow's OSError names no
    file)."""

    def __init__(self, real: torch.nn.Module, error: OSError) -> None:
        super().__init__(real, bad=set())
        self.error = error

    def __call__(self, *args: torch.Tensor) -> dict[str, torch.Tensor]:
        raise self.error


def test_an_os_error_naming_no_file_stops_training_in_its_own_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = OSError("image file is truncated (3 bytes not processed)")
    real_build = loop.build_loss
    monkeypatch.setattr(loop, "build_loss", lambda *a: FailingLoss(real_build(*a), error))

    with pytest.raises(TrainingFailed) as failed:
        train(tiny_config(tmp_path / "run"))
    assert str(failed.value) == "image file is truncated (3 bytes not processed)"


def test_a_checkpoint_due_while_the_loss_is_not_finite_is_saved_at_the_next_step_whose_loss_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = loop.build_loss
    monkeypatch.setattr(loop, "build_loss", lambda *a: NanEvery(real_build(*a), bad={2}))  # step 3
    steps: list[int] = []
    saving = loop.save_checkpoint

    def noting_the_step(config: TrainConfig, state: RunState, *rest: object) -> None:
        steps.append(state.step)
        saving(config, state, *rest)

    monkeypatch.setattr(loop, "save_checkpoint", noting_the_step)
    train(tiny_config(tmp_path / "run", steps=7))
    assert steps == [4, 6, 7]  # 3 waited for 4; the last step's is saved whatever


def test_two_process_ddp_matches_one_process(tmp_path: Path) -> None:
    settings = {"steps": 3, "val_every": 3}
    train(tiny_config(tmp_path / "single", **settings))
    script = (
        "import sys, torch; from pathlib import Path; torch.set_num_threads(1)\n"
        "from tests.test_train import tiny_config; from recnet_cli.train.loop import train\n"
        f"train(tiny_config(Path(sys.argv[1]), **{settings!r}))\n"
    )
    (tmp_path / "ddp_run.py").write_text(script)
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(map(str, (REPO, REPO / "tests"))),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
    ]
    completed = subprocess.run(
        [*command, str(tmp_path / "ddp_run.py"), str(tmp_path / "ddp")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    single, ddp = final_weights(tmp_path / "single"), final_weights(tmp_path / "ddp")
    # The same samples, gradients summed in another order. Adam divides by |gradient|, which turns
    # rounding in near-zero gradients into up to ~1% of a step (lr = 1e-4); wrong sharding or missing
    # gradient averaging would differ by whole steps.
    assert max(float((single[k] - ddp[k]).abs().max()) for k in single) < 0.05 * 1e-4
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4  # three steps and one validation, written by rank 0 only


def test_training_forward_blurs_all_blocks_at_once_exactly() -> None:
    """The training forward's shared FFT blur gives the reference function, values and gradients."""
    torch.manual_seed(3)
    model = RECNet()
    for block in model.dualprocess.blocks:  # asymmetric kernels, as after training
        block.norm.blur.kernel.data += torch.rand_like(block.norm.blur.kernel) * 1e-3
    image = torch.rand(2, 3, 45, 67)
    fast_out, fast_mask = ForwardWithMask(model)(image)
    fast_grad = torch.autograd.grad(fast_out.square().mean(), model.dualprocess.conv2.norm.blur.kernel)[0]
    reference = model.forward_with_intermediates(image)
    reference_grad = torch.autograd.grad(
        reference["output"].square().mean(), model.dualprocess.conv2.norm.blur.kernel
    )[0]
    assert (fast_out - reference["output"]).abs().max() < 1e-5
    assert (fast_mask - reference["mask"]).abs().max() == 0
    assert torch.allclose(fast_grad, reference_grad, rtol=1e-3, atol=1e-7)


def test_time_limit_saves_a_checkpoint_and_resume_finishes_the_same_run(tmp_path: Path) -> None:
    stopped = train(tiny_config(tmp_path / "chunked"), time_limit=0)
    assert (stopped.complete, stopped.steps) == (False, 1)
    assert not (tmp_path / "chunked" / "final.safetensors").exists()
    again = resume(tmp_path / "chunked", time_limit=0)
    assert (again.complete, again.steps) == (False, 2)
    assert resume(tmp_path / "chunked").complete
    train(tiny_config(tmp_path / "whole"))
    whole, chunked = final_weights(tmp_path / "whole"), final_weights(tmp_path / "chunked")
    assert all(torch.equal(whole[k], chunked[k]) for k in whole)


def test_a_run_whose_time_runs_out_at_its_last_step_finishes(tmp_path: Path) -> None:
    # only its final model was left to write: a checkpoint to resume would be a step for nothing
    result = train(tiny_config(tmp_path / "run", steps=1, val_every=1), time_limit=0)
    assert (result.complete, result.steps) == (True, 1)
    assert result.model_path == tmp_path / "run" / "final.safetensors" and result.model_path.is_file()


def test_resuming_a_finished_run_reads_no_data_and_rewrites_nothing_unless_its_final_model_is_missing(
    tmp_path: Path,
) -> None:
    """A batch job that always runs --resume reloaded the data and wrote final.* again for nothing."""
    photos, run_dir = shutil.copytree(PHOTOS, tmp_path / "photos"), tmp_path / "run"
    train(tiny_config(run_dir, photos=photos, steps=2, val_every=2))
    written = {path.name: path.stat().st_mtime_ns for path in run_dir.iterdir()}
    shutil.rmtree(photos)  # not read
    finished = resume(run_dir)
    assert (finished.already_finished, finished.complete, finished.steps) == (True, True, 2)
    assert finished.model_path == run_dir / "final.safetensors" and finished.val is not None
    assert {path.name: path.stat().st_mtime_ns for path in run_dir.iterdir()} == written
    shutil.copytree(PHOTOS, photos)
    (run_dir / "final.md").unlink()  # killed while writing the final model
    written_again = resume(run_dir)
    assert (written_again.already_finished, written_again.steps) == (False, 2)
    assert (run_dir / "final.md").is_file()


def test_resuming_a_finished_run_whose_final_model_was_cut_short_writes_it_again(tmp_path: Path) -> None:
    """It said "already finished" and exited 0, leaving a model that no command could load."""
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir, steps=2, val_every=2))
    model = run_dir / "final.safetensors"
    trained = safetensors.torch.load(model.read_bytes())  # not mapped from the file cut next
    with model.open("r+b") as file:  # a copy, a sync or a disk that kept only part of it
        file.truncate(model.stat().st_size - 100)
    with pytest.raises(TrainingError, match="already holds a training run; resume it"):  # not --init it
        train(tiny_config(run_dir, steps=2, val_every=2))
    written_again = resume(run_dir)
    assert (written_again.already_finished, written_again.steps) == (False, 2)
    written = safetensors.torch.load_file(model)
    assert written.keys() == trained.keys()
    assert all(torch.equal(written[name], trained[name]) for name in trained)
    assert load_model(str(model)) is not None
    assert resume(run_dir).already_finished


@pytest.mark.parametrize(
    "damage", ["cut in its header", "a header without offsets", "longer than its header says"]
)
def test_resuming_a_finished_run_whose_final_model_is_damaged_otherwise_writes_it_again(
    tmp_path: Path, damage: str
) -> None:
    """Only a model as long as its header says is finished: one whose header cannot be read, or with bytes
    after its tensors (a copy or a write gone wrong), is written again from the checkpoint."""
    run_dir = tmp_path / "run"
    train(tiny_config(run_dir, steps=2, val_every=2))
    model = run_dir / "final.safetensors"
    whole = model.read_bytes()
    length = int.from_bytes(whole[:8], "little")
    damaged = {
        "cut in its header": whole[:12],
        "a header without offsets": whole[:8] + b'{"a": {}}'.ljust(length) + whole[8 + length :],
        "longer than its header says": whole + bytes(64),
    }
    model.write_bytes(damaged[damage])
    with pytest.raises(TrainingError, match="already holds a training run; resume it"):
        train(tiny_config(run_dir, steps=2, val_every=2))
    assert not resume(run_dir).already_finished
    written, trained = safetensors.torch.load_file(model), safetensors.torch.load(whole)
    assert written.keys() == trained.keys()
    assert all(torch.equal(written[name], trained[name]) for name in trained)
    assert resume(run_dir).already_finished


def test_a_stop_request_saves_a_checkpoint_that_resumes_the_same_run(tmp_path: Path) -> None:
    asked: list[int] = []

    def stop_at_step_two() -> str | None:
        asked.append(1)
        return "Ctrl-C" if len(asked) == 2 else None

    stopped = train(tiny_config(tmp_path / "chunked", checkpoint_every=100), stop_requested=stop_at_step_two)
    assert (stopped.stopped_by, stopped.steps, stopped.complete) == ("Ctrl-C", 2, False)
    assert checkpoint_step(tmp_path / "chunked") == 2
    assert resume(tmp_path / "chunked").complete
    train(tiny_config(tmp_path / "whole", checkpoint_every=100))
    whole, chunked = final_weights(tmp_path / "whole"), final_weights(tmp_path / "chunked")
    assert all(torch.equal(whole[k], chunked[k]) for k in whole)


@pytest.mark.parametrize("sockets_refused", [False, True])
def test_the_first_ctrl_c_or_sigterm_is_a_stop_request_and_the_second_acts_as_usual(
    monkeypatch: pytest.MonkeyPatch, sockets_refused: bool
) -> None:
    # Ctrl-C as Python sets it up in a terminal, also when pytest runs as a background job (`pytest &`),
    # which starts with SIGINT ignored. Where a sandbox refuses sockets, the handler alone hears them (the
    # run failed after its first step).
    def refused(*_: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    if sockets_refused:
        monkeypatch.setattr(socket, "socketpair", refused)
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)
    heard: list[str] = []
    try:
        with loop.StopSignals(heard.append) as signals:
            assert signals.received() is None and (signals.wakeup is None) == sockets_refused
            signal.raise_signal(signal.SIGTERM)  # to this thread, so its handler runs before the next line
            assert signals.received() == "SIGTERM" and heard == ["SIGTERM"]
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, outside)


def test_a_stop_is_said_at_once_and_a_second_in_the_same_operation_is_not_lost() -> None:
    # A CPU step's backward pass is one long operation, in which Python runs no signal handler: the request
    # was said when it ended, and of two Ctrl-C in it, the handler was called once: the second was lost.
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)
    heard: list[float] = []
    data = bytes(300_000_000)  # hashed without a chance for handlers to run
    started = time.monotonic()
    hashlib.sha256(data).digest()
    duration = time.monotonic() - started  # about 0.3-1 s
    sent: list[float] = []

    def two_ctrl_c() -> None:
        time.sleep(duration / 10)
        for _ in range(2):  # apart, as a person presses twice: pending at once, two signals make one
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.02)
        sent.append(time.monotonic())

    try:
        with loop.StopSignals(lambda name: heard.append(time.monotonic())):
            sender = threading.Thread(target=two_ctrl_c)
            started = time.monotonic()
            sender.start()
            try:
                hashlib.sha256(data).digest()
                time.sleep(0.5)  # where the operation ended before the signals came
            except KeyboardInterrupt:  # the second's, from the handler once the operation ended
                pass
            else:
                pytest.fail("the second Ctrl-C was lost")
            finally:
                sender.join()
        if sent[0] - started > duration / 2:
            pytest.skip("the machine was too busy to send the signals while the operation ran")
        assert len(heard) == 1 and heard[0] - started < duration * 0.75  # said while it ran
    finally:
        signal.signal(signal.SIGINT, outside)


def test_a_stop_in_the_first_step_interrupts_at_once_and_a_later_one_waits_for_its_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first step has nothing to save: a first step that never ends (a mistyped --batch) must stop at once
    real_step = loop.take_step

    def sigterm_in(at: int) -> Callable[..., dict[str, float]]:
        def take_step(session: loop.Session, step: int, *batch: torch.Tensor) -> dict[str, float]:
            if step == at:
                signal.raise_signal(signal.SIGTERM)
            return real_step(session, step, *batch)

        return take_step

    outside = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in outside:  # as the program (entry.run) sets them
        signal.signal(number, signal.default_int_handler)
    try:
        monkeypatch.setattr(loop, "take_step", sigterm_in(0))
        with pytest.raises(KeyboardInterrupt):
            train(tiny_config(tmp_path / "first"), stop_signals=loop.StopSignals())
        assert not (tmp_path / "first" / "checkpoint.safetensors").exists()
        monkeypatch.setattr(loop, "take_step", sigterm_in(1))
        stopped = train(tiny_config(tmp_path / "second"), stop_signals=loop.StopSignals())
        assert (stopped.stopped_by, stopped.steps, checkpoint_step(tmp_path / "second")) == ("SIGTERM", 2, 2)
    finally:
        for number, handler in outside.items():
            signal.signal(number, handler)


def test_a_stop_while_the_final_model_is_written_lets_the_run_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C once the last step was done, as the final model was written: exit 130 and "continue with
    # --resume", the model written or not, for a run that only had its model left to write
    real_finish = loop.finish

    def interrupted_finish(session: loop.Session) -> loop.TrainResult:
        signal.raise_signal(signal.SIGINT)
        return real_finish(session)

    outside = signal.signal(signal.SIGINT, signal.default_int_handler)  # as the program (entry.run) sets it
    try:
        monkeypatch.setattr(loop, "finish", interrupted_finish)
        heard: list[str] = []
        result = train(tiny_config(tmp_path / "run"), stop_signals=loop.StopSignals(heard.append))
        assert heard == ["Ctrl-C"] and result.complete and (tmp_path / "run" / "final.safetensors").is_file()
    finally:
        signal.signal(signal.SIGINT, outside)


def test_a_stopped_runs_checkpoint_loads_as_a_model(tmp_path: Path) -> None:
    train(tiny_config(tmp_path / "run", steps=4), time_limit=0)
    checkpoint = safetensors.torch.load_file(tmp_path / "run" / "checkpoint.safetensors")
    loaded = load_model(str(tmp_path / "run" / "checkpoint.safetensors"))
    assert loaded.card == {}  # checkpoint.json beside it is the run's state, not a model card
    state = loaded.model.state_dict()
    assert state.keys() == {key.removeprefix("model.") for key in checkpoint if key.startswith("model.")}
    assert all(torch.equal(state[key], checkpoint[f"model.{key}"]) for key in state)


def test_validation_scores_what_correct_gives_at_full_strength_in_the_models_colours() -> None:
    # with the mirrored border correcting gives a photo: without it, pixels near the edges differed by up
    # to 177 levels, and a held-out pair's PSNR by up to 0.97 dB from that of `recnet eval --strength 1
    # --model-colour` (training fits the network's own output, colours and all)
    model = load_model().model
    photo = read_rgb(PHOTOS / "mcmaster-5.jpg")[:61, :83].astype(np.float32) / 255
    validated = loop.corrected(model, torch.from_numpy(photo).permute(2, 0, 1), torch.device("cpu"))
    expected = Corrector(model, torch.device("cpu")).correct(photo).image
    assert validated.shape == (1, 3, 61, 83)
    assert np.abs(validated[0].permute(1, 2, 0).clamp(0, 1).numpy() - expected).max() < 1e-5


def test_a_steps_memory_is_checked_against_what_is_available_where_that_is_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundled_size = (8, 5, torch.float32)  # channels, blocks, precision
    needed = memory.step_bytes(8, 384, *bundled_size)
    # Refused only where the step cannot fit even if the estimate is as far over it as measured.
    edge = int(needed / memory.ESTIMATE_OVER_MEASURED)
    for available, problem in [(None, False), (needed, False), (edge, False), (edge - 1, True)]:
        monkeypatch.setattr(memory, "available_host_memory", lambda available=available: available)
        assert (memory.step_memory_problem(8, 384, *bundled_size, resuming=False) is not None) == problem
    # A resumed run keeps its batch and crop: the advice is about the machine.
    monkeypatch.setattr(memory, "available_host_memory", lambda: needed // 2)
    resumed = memory.step_memory_problem(8, 384, *bundled_size, resuming=True)
    assert resumed.endswith(
        "available; free some memory (close other programs), or resume the run on a machine with more"
    )


def test_a_step_in_bfloat16_is_estimated_to_take_less_memory_than_in_float32() -> None:
    # the bundled model's size (8 channels, 5 blocks) at the default 8 crops of 384 px
    float32, bfloat16 = (memory.step_bytes(8, 384, 8, 5, dtype) for dtype in (torch.float32, torch.bfloat16))
    assert float32 / 2**30 == pytest.approx(11.0, abs=0.05)
    assert bfloat16 < 0.6 * float32


def test_the_memory_check_counts_the_crops_of_every_process_on_the_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, model = tiny_config(Path("run"), batch=8, crop=384), RECNet(8, 2)
    share = memory.step_bytes(4, 384, 8, 2, torch.float32)  # one of two processes' half of the batch
    monkeypatch.setattr(memory, "available_host_memory", lambda: share)
    two_machines, one_machine = loop.Ranks(world=2, local_world=1), loop.Ranks(world=2, local_world=2)
    loop.refuse_steps_too_large(config, two_machines, model, CPU, torch.float32, resuming=False)
    with pytest.raises(TrainingError, match=r"^not enough memory to train .* a step on 8 crops of 384 px"):
        loop.refuse_steps_too_large(config, one_machine, model, CPU, torch.float32, resuming=False)


def stopped_by_ctrl_c(config: TrainConfig, *args: object) -> loop.TrainResult:
    """``loop.run`` for a run whose Ctrl-C came at step 2: its stop note, then its result."""
    stop_signals = args[4]
    assert isinstance(stop_signals, loop.StopSignals)
    stop_signals.request("Ctrl-C")
    return loop.TrainResult(config.run_dir, config.run_dir / CHECKPOINT_FILE, 2, None, 1.0, 0, "Ctrl-C")


def stopped_in_the_last_step(config: TrainConfig, *args: object) -> loop.TrainResult:
    """``loop.run`` for a run whose Ctrl-C came in its last step: complete all the same."""
    stop_signals = args[4]
    assert isinstance(stop_signals, loop.StopSignals)
    stop_signals.request("Ctrl-C")
    return loop.TrainResult(config.run_dir, config.run_dir / "final.safetensors", 3, None, 1.0, 0)


def interrupted_at_once(*_: object) -> loop.TrainResult:
    raise KeyboardInterrupt  # a second Ctrl-C, or the first before the first step was done


def failed_on_this_process(*_: object) -> loop.TrainResult:
    raise TrainingFailed("this process's GPU failed")


@pytest.mark.parametrize(
    ("outcome", "exit_code", "rank_0_says", "every_rank_says"),
    [
        (
            stopped_by_ctrl_c,
            130,
            "note: Ctrl-C: stopping after this step, with a checkpoint (Ctrl-C again stops at once)\n"
            "note: interrupted: stopped at step 2 by Ctrl-C: checkpoint saved; continue with recnet train "
            "--resume {run}, or use it as it is: --model {run}/checkpoint.safetensors\n",
            "",
        ),
        (
            interrupted_at_once,
            130,
            "note: interrupted: the run had not started ({run} was not made), so the same command "
            "starts it\n",
            "",
        ),
        (failed_on_this_process, 1, "", "error: this process's GPU failed\n"),
        (
            stopped_in_the_last_step,
            0,
            "note: Ctrl-C: stopping after this step, with a checkpoint (Ctrl-C again stops at once)\n"
            "note: Ctrl-C came in the last step: the run is complete\n",
            "",
        ),
    ],
)
def test_under_torchrun_rank_0_alone_says_the_notes_and_how_the_run_ended_and_every_rank_its_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    outcome: Callable[..., loop.TrainResult],
    exit_code: int,
    rank_0_says: str,
    every_rank_says: str,
) -> None:
    # Every process said the notes: after Ctrl-C, "stopping after this step" and "interrupted" once each
    monkeypatch.setattr(loop, "run", outcome)
    run_dir = tmp_path / "run"
    options = f"--photos {PHOTOS} --out {run_dir} --steps 3 --no-ecr --device cpu --precision bf16"
    bf16_note = (
        "note: bf16 on the CPU trains several times slower than fp32 (4.5x per step on a 2-core AMD EPYC); "
        "half precision pays on GPUs\n"
    )
    for rank in ("0", "1"):
        torchrun_sets = {"WORLD_SIZE": "2", "RANK": rank, "LOCAL_RANK": rank, "LOCAL_WORLD_SIZE": "2"}
        for name, value in torchrun_sets.items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(app, ["train", *options.split()])
        said = bf16_note + rank_0_says.format(run=run_dir) if rank == "0" else ""
        assert (result.exit_code, result.stderr) == (exit_code, said + every_rank_says)


@pytest.mark.parametrize(
    ("precision", "device", "said"), [("bf16", "cpu", True), ("bf16", "cuda", False), ("fp32", "cpu", False)]
)
def test_only_bf16_on_the_cpu_is_said_to_train_slowly(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    precision: str,
    device: str,
    said: bool,
) -> None:
    from recnet_cli.train_command import notice_slow_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    notice_slow_precision(precision, device)
    assert ("bf16 on the CPU trains several times slower" in capsys.readouterr().err) is said


def test_torchrun_s_variables_that_make_no_sense_are_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # WORLD_SIZE=2 alone (RANK unset) was a KeyError traceback; WORLD_SIZE=abc said only "invalid literal"
    for variables, message in [
        ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 without RANK: torchrun sets both for each process"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE='0': torchrun sets it to a whole number of at least 1"),
        ({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc': torchrun sets it to a whole number of at least 1"),
        ({"WORLD_SIZE": "2", "RANK": "x"}, "RANK='x': torchrun sets it to a whole number of at least 0"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 with WORLD_SIZE=2: torchrun counts ranks from 0"),
    ]:
        for name in ("WORLD_SIZE", "RANK"):
            monkeypatch.delenv(name, raising=False)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(TrainingError) as raised:
            loop.start_distributed("cpu")
        assert str(raised.value) == f"{message}; to train in one process, unset WORLD_SIZE"
        assert loop.launched_as_main()  # its notes are said: it is to be seen until it says why it stops
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert loop.start_distributed("cpu").world == 1


def test_a_fault_of_recnet_s_in_reading_a_photo_to_learn_from_or_score_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``correct`` says of a photo it met a bug of its own on, ``train``, ``eval`` and ``calibrate`` say
    too: not a traceback."""
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setattr(training_data, "read_photo", lambda path: {}["colour"])
    fault = r"failed by a fault in recnet \(KeyError: 'colour', at recnet_cli/train/data\.py:\d+\); please"
    with pytest.raises(ImageFileError, match=rf"^{re.escape(str(photo))}: {fault} report it"):
        read_rgb(photo)
