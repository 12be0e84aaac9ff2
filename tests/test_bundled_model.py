"""The bundled default model: it loads by default, it really corrects held-out synthetic pairs, and it
leaves no line along a photo's edges."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_photo, run

from recnet_cli.engine import Corrector
from recnet_cli.imaging import read_photo
from recnet_cli.imaging.pixels import quantise
from recnet_cli.metrics import psnr
from recnet_cli.weights import load_model
from recnet_cli.weights.locate import DEFAULT_MODEL
from recnet_cli.weights.save import card_markdown

SYNTHETIC = Path(__file__).resolve().parents[1] / "examples" / "synthetic"
TRAIN_PHOTOS = Path(__file__).resolve().parent / "data" / "train-photos"


def test_the_default_model_is_bundled_and_documented() -> None:
    loaded = load_model(None)
    assert loaded.source == f"{DEFAULT_MODEL} (bundled)"
    card_text = loaded.path.with_suffix(".md").read_text()
    assert card_text == card_markdown(loaded.path, json.loads(loaded.path.with_suffix(".json").read_text()))
    assert f"use them with `--model {DEFAULT_MODEL}`" in card_text  # a name that works from any folder
    for field in ("training_data", "steps", "ecr", "val_psnr", "val_identity_psnr", "known_limits"):
        assert field in loaded.card, field


def test_correct_uses_the_bundled_model_without_model_option(tmp_path: Path, env: dict[str, str]) -> None:
    bundled_env = {key: value for key, value in env.items() if key != "RECNET_WEIGHTS_DIR"}
    source = make_photo(tmp_path / "shot.jpg")
    result = run(["correct", str(source), "--json"], bundled_env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == DEFAULT_MODEL  # as --model takes it
    assert (tmp_path / "shot_recnet.jpg").is_file()


def test_the_bundled_model_improves_held_out_synthetic_pairs() -> None:
    """Pairs made from photos held out of training; the model must beat the uncorrected input clearly."""
    inputs = sorted(SYNTHETIC.glob("*_input.png"))
    assert len(inputs) >= 3
    corrector = Corrector(load_model(None).model, torch.device("cpu"))
    gains = []
    for source in inputs:
        photo = read_photo(source).pixels
        truth = quantise(read_photo(source.with_name(source.name.replace("_input", "_gt"))).pixels, 8)
        corrected = quantise(corrector.correct(photo).image, 8)
        gains.append(psnr(corrected, truth) - psnr(quantise(photo, 8), truth))
    assert min(gains) > 0, gains
    assert sum(gains) / len(gains) >= 5.0, gains


def edge_jump(image: np.ndarray) -> float:
    """The largest mean step between a photo's outermost row or column and the next one in, in levels."""
    x = image.astype(np.float64)
    steps = (x[0] - x[1], x[-1] - x[-2], x[:, 0] - x[:, 1], x[:, -1] - x[:, -2])
    return max(float(np.abs(step).mean()) for step in steps)


@pytest.mark.parametrize("photo", sorted(TRAIN_PHOTOS.glob("*.jpg")), ids=lambda path: path.stem)
def test_the_corrected_photo_has_no_line_along_its_edges(photo: Path) -> None:
    """The network pads its convolutions with zeros, which drew a one- or two-pixel line along every
    edge (13 to 32 levels of step on the example photos); the mirrored border the Corrector adds keeps
    the edges' steps like the photo's own."""
    rgb = read_photo(photo).pixels
    corrected = quantise(Corrector(load_model(None).model, torch.device("cpu")).correct(rgb).image, 8)
    interior = float(np.abs(np.diff(corrected[8:-8, 8:-8].astype(np.float64), axis=1)).mean())
    assert edge_jump(corrected) <= 1.25 * max(edge_jump(quantise(rgb, 8)), interior)


@pytest.mark.parametrize("tile", [128, 200])
def test_bundled_model_is_the_same_whole_and_tiled(tile: int) -> None:
    """Exact tiling holds for the trained weights too (not only for random ones)."""
    photo = read_photo(sorted(SYNTHETIC.glob("*_input.png"))[0]).pixels
    model = load_model(None).model
    whole = Corrector(model, torch.device("cpu"), tile=0).correct(photo).image
    tiled = Corrector(model, torch.device("cpu"), tile=tile).correct(photo).image
    assert abs(whole - tiled).max() <= 1e-4


def test_a_wheel_carries_the_bundled_model(tmp_path: Path) -> None:
    """`pip install .` (not only an editable checkout) must ship weights/ and the figures' font as package
    data."""
    root, source = Path(__file__).resolve().parents[1], tmp_path / "source"
    # Built from a copy: a build writes build/ and recnet.egg-info/ beside pyproject.toml, and in the
    # checkout an editable install reads the latter.
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, source / name)
    for folder in ("recnet_cli", "weights"):
        shutil.copytree(root / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("recnet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for suffix in (".safetensors", ".json", ".md"):
        assert f"recnet_cli/weights_bundle/{DEFAULT_MODEL}{suffix}" in names
    assert {"recnet_cli/viz/fonts/DejaVuSans.ttf", "recnet_cli/viz/fonts/LICENSE"} <= set(names)
    # every package of the source, which pyproject.toml lists one by one
    packages = {path.relative_to(root).as_posix() for path in (root / "recnet_cli").rglob("__init__.py")}
    assert "recnet_cli/weights/__init__.py" in packages and packages <= set(names)
