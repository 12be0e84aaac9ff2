"""The `recnet` console script end to end, as a user runs it (a subprocess per command; in-process only
where a subprocess cannot be steered, as for Ctrl-C at a chosen photo)."""

from __future__ import annotations

import errno
import functools
import importlib
import inspect
import io
import json
import os
import re
import resource
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import typer
from conftest import RECNET, as_recnet_wrote, keeps_marks, make_photo, run, skip_unless_marks_kept
from fake_hub import FakeHub
from PIL import Image, ImageCms
from rich.console import Console
from safetensors.torch import save as safetensors_bytes
from typer.testing import CliRunner

from recnet_cli import (
    batch,
    cli,
    click_classes,
    console,
    engine,
    entry,
    eval_command,
    explain_command,
    imaging,
    runner,
)
from recnet_cli.autostrength import StrengthCalibration
from recnet_cli.batch import Summary
from recnet_cli.cli import app
from recnet_cli.engine import Corrector, PhotoOutOfMemoryError
from recnet_cli.imaging import OUTPUT_EXTENSIONS, Photo, icc
from recnet_cli.imaging import read as imaging_read
from recnet_cli.imaging import write as imaging_write
from recnet_cli.imaging.pixels import luma
from recnet_cli.model import RECNet
from recnet_cli.options import checked_megapixels
from recnet_cli.outputs import Job
from recnet_cli.runner import BatchMode, finish, run_batch
from recnet_cli.train import loop
from recnet_cli.train import memory as train_memory
from recnet_cli.train.data import read_rgb
from recnet_cli.train.run_folder import TrainConfig, TrainingError, ValScores
from recnet_cli.viz.mask import mask_overlay
from recnet_cli.weights import ModelEntry, save_model
from recnet_cli.weights.formats import safetensors_header
from recnet_cli.weights.save import model_files

TRAIN_PHOTOS = Path(__file__).parent / "data" / "train-photos"
# run_batch for correct, as -q runs it: no bar, no line per photo
QUIET_CORRECT = BatchMode(
    "correct", overwrite=False, skip_existing=False, quiet=True, as_json=False, dry_run=False
)


def test_console_script_and_module_entry_point(env: dict[str, str]) -> None:
    assert RECNET is not None, "the recnet console script is not installed"
    help_text = run(["--help"], env)
    assert help_text.returncode == 0
    for command in ("correct", "mask", "models", "download"):
        assert command in help_text.stdout
    version = subprocess.run(
        [sys.executable, "-m", "recnet_cli", "--version"], capture_output=True, text=True, check=False
    )
    assert version.returncode == 0 and version.stdout.startswith("recnet ")


def test_every_option_is_explained_and_flags_take_no_value() -> None:
    # What --help shows: a line of help for every option, and on/off switches as one flag each, with no
    # value type beside them (no "--no-overwrite", no "<bool>"); but a switch that is on by default
    # (--keep-colour/--model-colour), and --ecr/--no-ecr, which a fine-tune may turn either way.
    from typer.main import get_command

    from recnet_cli.cli import app

    for name, command in get_command(app).commands.items():
        for param in command.params:
            assert param.help, f"recnet {name} {param.opts[0]} has no help"
            if getattr(param, "is_flag", False):
                assert param.metavar == "", f"recnet {name} {param.opts[0]} shows a value type"
                paired = param.opts in (["--ecr"], ["--keep-colour"])
                assert not param.secondary_opts or paired, param.secondary_opts


def test_the_colour_options_take_their_american_spellings_too(tmp_path: Path) -> None:
    source = make_photo(tmp_path / "shot.png")
    for option, keep_colour in (("--keep-color", True), ("--model-color", False), ("--model-colour", False)):
        result = CliRunner().invoke(app, ["correct", str(source), "--dry-run", "--json", option])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["keep_colour"] is keep_colour
    as_file = CliRunner().invoke(app, ["correct", "--dry-run", "--", "--model-color"])  # a file's name there
    assert (as_file.exit_code, as_file.stderr) == (1, "error: --model-color: no such file or folder\n")
    elsewhere = CliRunner().invoke(app, ["mask", str(source), "--model-color"])  # mask has no such option
    assert elsewhere.exit_code == 2 and "no such option: --model-color" in elsewhere.stderr


def test_options_whose_value_name_is_their_own_name_declare_it() -> None:
    """typer 0.27.0-0.27.2 named such an option after its metavar (--DEVICE), so `--device` was refused."""
    from typer.models import OptionInfo
    from typer.utils import get_params_from_function

    for command in cli.app.registered_commands:
        for name, param in get_params_from_function(command.callback).items():
            option = param.default
            if isinstance(option, OptionInfo) and option.metavar == name.upper():
                assert option.param_decls, f"{command.callback.__name__}: {name} leaves its name to typer"


def test_help_has_a_short_form_and_shows_no_value_type(env: dict[str, str]) -> None:
    for args in (["-h"], ["correct", "-h"], ["train", "--help"], ["explain", "-h"]):
        shown = run(args, env)
        assert shown.returncode == 0 and "Usage: recnet" in shown.stdout, shown.stderr
        assert "<bool>" not in shown.stdout and "-h " in shown.stdout
        assert "<list[str]>" not in shown.stdout and "<path>" not in shown.stdout and "{" not in shown.stdout
    for command, usage in (("correct", "PHOTOS..."), ("explain", "PHOTO"), ("download", "REPO [FILE]")):
        lines = [line.strip() for line in run([command, "-h"], env).stdout.splitlines()]
        assert f"Usage: recnet {command} [OPTIONS] {usage}" in lines


@pytest.mark.parametrize(
    ("args", "line"),
    [
        pytest.param(
            ["correct", "--bogus", "x.jpg"],
            "no such option: --bogus (recnet correct --help lists the options)",
            id="unknown-option",
        ),
        pytest.param(
            ["--bogus"],
            "no such option: --bogus (recnet --help lists the options)",
            id="unknown-group-option",
        ),
        pytest.param(
            ["correct", "--tyle", "512", "x.jpg"],
            "no such option: --tyle. Did you mean --tile? (recnet correct --help lists the options)",
            id="close-option",
        ),
        pytest.param(
            ["correct", "x.jpg", "--format", "png"],  # mogrify's name: it suggested --report
            "no such option: --format. Did you mean --ext? (recnet correct --help lists the options)",
            id="other-tool-s-option",
        ),
        pytest.param(
            ["mask", "x.jpg", "--fp16"],  # Real-ESRGAN's
            "no such option: --fp16. Did you mean --precision fp16? (recnet mask --help lists the options)",
            id="other-tool-s-flag",
        ),
        pytest.param(
            ["models", "--fp16"],
            "no such option: --fp16 (recnet models --help lists the options)",
            id="other-tool-s-flag-where-recnet-has-no-such-option",
        ),
        pytest.param(
            ["corect", "x.jpg"],
            "no such command 'corect'. Did you mean 'correct'? (recnet --help lists the commands)",
            id="unknown-command",
        ),
        pytest.param(
            ["bench", "--repeats", "0"],
            "--repeats 0: give a number of 1 or more (see recnet bench --help)",
            id="below-min",
        ),
        pytest.param(
            ["correct", "x.jpg", "--quality=101"],  # Typer 0.29 named the bound passed alone
            "--quality 101: give a number from 1 to 100 (see recnet correct --help)",
            id="above-max",
        ),
        pytest.param(
            ["train", "--photos", "x", "--time-limit", "nan"],  # Typers before 0.29 took it: no limit then
            "--time-limit nan: give a number of 0 or more (see recnet train --help)",
            id="nan-for-a-bound",
        ),
        pytest.param(
            ["bench", "--repeats", "1.5"],
            (  # within the bounds, refused for what it is: in typer's words since 0.29, in click's before
                "--repeats 1.5: input should be a valid integer, unable to parse string as an integer "
                "(see recnet bench --help)",
                "--repeats 1.5: '1.5' is not a valid integer range (see recnet bench --help)",
            ),
            id="not-a-whole-number",
        ),
        pytest.param(
            ["bench", "--mp", "lots"],
            (
                "--mp lots: input should be a valid number, unable to parse string as a number "
                "(see recnet bench --help)",
                "--mp lots: 'lots' is not a valid float (see recnet bench --help)",
            ),
            id="not-a-number",
        ),
        pytest.param(
            ["correct", "x.jpg", "--precision", "fp8"],
            "--precision fp8: 'fp8' is not one of 'auto', 'fp32', 'fp16', 'bf16' (see recnet correct --help)",
            id="not-a-choice",
        ),
        pytest.param(
            ["correct", "x.jpg", "--suffix", "a/b"],
            "--suffix a/b: a suffix is added to file names, so it cannot hold a folder separator "
            "(see recnet correct --help)",
            id="own-callback",
        ),
        pytest.param(
            ["correct"], "missing argument 'PHOTOS' (see recnet correct --help)", id="missing-argument"
        ),
        pytest.param(
            ["correct", "x.jpg", "--tile"],
            "option '--tile' requires an argument (see recnet correct --help)",
            id="missing-value",
        ),
        pytest.param(
            ["models", "extra"],
            "got unexpected extra argument(s) (extra) (see recnet models --help)",
            id="extra-argument",
        ),
    ],
)
def test_a_usage_error_is_one_line_that_points_to_the_help(
    args: list[str], line: str | tuple[str, ...]
) -> None:
    # Click's own errors (an unknown option or command, a value out of range, a missing argument) were
    # Typer's box under a usage line; they read as recnet's other errors do. ``line``: the line, or the
    # lines that the typer versions recnet supports give.
    result = CliRunner().invoke(app, args, prog_name="recnet")
    assert result.exit_code == 2
    assert result.stderr in {f"error: {each}\n" for each in ((line,) if isinstance(line, str) else line)}
    assert result.stdout == ""


def test_a_file_whose_name_starts_with_a_dash_is_told_how_to_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    make_photo(tmp_path / "-1.png")
    result = CliRunner().invoke(app, ["mask", "-1.png"], prog_name="recnet")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: no such option: -1: to name -1.png, write ./-1.png, or put -- before it\n",
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["-1.png"]


@pytest.mark.parametrize(
    ("command", "name"), [("correct", "-o.png"), ("mask", "-oldest.png"), ("explain", "-qr.png")]
)
def test_a_file_named_as_short_options_with_their_values_is_not_read_as_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, name: str
) -> None:
    # `recnet correct *` beside -o.png read "-o .png": the photos went into a hidden folder .png, -o.png
    # itself left out
    monkeypatch.chdir(tmp_path)
    make_photo(tmp_path / name)
    make_photo(tmp_path / "a.png")
    result = CliRunner().invoke(app, [command, name, "a.png"], prog_name="recnet")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {name} names a file, but was read as the option {name[:2]} and what follows it: to name the "
        f"file, write ./{name}, or put -- before it (see recnet {command} --help)\n",
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([name, "a.png"])


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["correct", "a.png", "-overwrite"],
            "-overwrite was read as -o verwrite: write --overwrite, with two dashes, or -o verwrite, with a "
            "space (see recnet correct --help)",
        ),
        (  # exiftool's spelling
            ["mask", "a.png", "-overwrite_original"],
            "-overwrite_original was read as -o verwrite_original: write --overwrite, with two dashes, or -o "
            "verwrite_original, with a space (see recnet mask --help)",
        ),
        (
            ["explain", "a.png", "-output"],
            "-output was read as -o utput: write --output, with two dashes, or -o utput, with a space "
            "(see recnet explain --help)",
        ),
        (  # read as -q -u ...: Click names -u alone
            ["correct", "a.png", "-quality", "90"],
            "no such option: -quality: write --quality, with two dashes (recnet correct --help lists the "
            "options)",
        ),
        (
            ["correct", "a.png", "-strength=0.5"],
            "no such option: -strength=0.5: write --strength, with two dashes (recnet correct --help lists "
            "the options)",
        ),
    ],
)
def test_a_long_option_spelt_with_one_dash_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], line: str
) -> None:
    # ImageMagick and exiftool spell options with one dash: `recnet correct a.png -overwrite` was read as
    # `-o verwrite` and wrote the photo into a new folder named verwrite
    monkeypatch.chdir(tmp_path)
    make_photo(tmp_path / "a.png")
    result = CliRunner().invoke(app, args, prog_name="recnet")
    assert (result.exit_code, result.stderr) == (2, f"error: {line}\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.png"]


def test_a_one_dash_long_option_may_still_be_a_value_or_follow_double_dash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    make_photo(tmp_path / "a.png")
    for args in (["correct", "a.png", "--suffix", "-overwrite"], ["correct", "a.png", "-o", "-output/"]):
        result = CliRunner().invoke(app, [*args, "--dry-run"], prog_name="recnet")
        assert result.exit_code == 0, result.stderr
    after_dashes = CliRunner().invoke(app, ["correct", "--dry-run", "a.png", "--", "-overwrite"])
    assert after_dashes.stderr.startswith("error: -overwrite: no such file or folder\n")


def test_a_file_named_as_options_may_still_be_an_option_s_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_file: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    make_photo(tmp_path / "a.png")
    result = CliRunner().invoke(app, ["correct", "a.png", "-o", "-o.png", "--model", str(model_file)])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "-o.png").is_file()
    # as typed, not as read: a Path drops the slashes (tab completion ends a folder's name with one)
    (tmp_path / "-edited").mkdir()
    make_photo(tmp_path / "-edited" / "a.png")
    arguments = ["explain", "a.png", "-r", "-edited//a.png", "-o", "sheet.png", "--model", str(model_file)]
    explained = CliRunner().invoke(app, arguments)
    assert explained.exit_code == 0, explained.stderr


def test_an_option_taken_for_another_option_s_value_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # -o --dry-run (its value forgotten) corrected the photo into a folder named --dry-run: no dry run
    monkeypatch.chdir(tmp_path)
    make_photo(tmp_path / "a.png")
    for args, option, value in [
        (["correct", "a.png", "-o", "--dry-run"], "--output", "--dry-run"),
        (["correct", "a.png", "-o", "-n"], "--output", "-n"),
        (["mask", "a.png", "--suffix", "--json"], "--suffix", "--json"),
        (["train", "--photos", ".", "--out", "--no-ecr"], "--out", "--no-ecr"),
    ]:
        result = CliRunner().invoke(app, args, prog_name="recnet")
        assert (result.exit_code, result.stderr) == (
            2,
            f"error: {option} {value}: {value} is an option, so {option} was given no value (a file named "
            f"so: ./{value}) (see recnet {args[0]} --help)\n",
        )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.png"]
    named = CliRunner().invoke(app, ["correct", "a.png", "-o", "./-n", "-n"], prog_name="recnet")
    assert named.exit_code == 0 and named.stdout == "a.png -> -n/a.png\n"


def test_a_home_folder_the_shell_left_as_a_tilde_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # -o '~/fixed.jpg' (quoted, or --output=~/...) wrote ./~/fixed.jpg and said "-> ~/fixed.jpg"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    make_photo(tmp_path / "a.png")
    for args in (["correct", "a.png", "-o", "~/fixed.jpg"], ["correct", "a.png", "--output=~/fixed.jpg"]):
        result = CliRunner().invoke(app, args, prog_name="recnet")
        assert (result.exit_code, result.stderr) == (
            2,
            "error: -o ~/fixed.jpg: ~ is a home folder only where the shell expands it (unquoted); write "
            f"{tmp_path / 'home' / 'fixed.jpg'}\n",
        )
    pattern = CliRunner().invoke(app, ["correct", "~/shots/*.png"])  # quoted, for recnet to expand
    assert pattern.stderr.startswith(
        "error: ~/shots/*.png: ~ is a home folder only where the shell expands it (unquoted); write "
        f"{tmp_path / 'home' / 'shots' / '*.png'}\n"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.png"]
    assert CliRunner().invoke(app, ["correct", "a.png", "-o", "~fixed.png"]).exit_code == 0  # a name: no user
    (tmp_path / "~").mkdir()  # a folder that is named ~ is the user's choice
    assert CliRunner().invoke(app, ["correct", "a.png", "-o", "~/fixed.png"]).exit_code == 0
    assert (tmp_path / "~" / "fixed.png").is_file() and (tmp_path / "~fixed.png").is_file()


def test_another_click_error_is_one_line_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(*_: object, **__: object) -> None:
        raise click_classes.click_errors.FileError("model.bin", "permission denied")

    monkeypatch.setattr(runner, "open_models", unreadable)  # as correct loads its model
    photo = make_photo(tmp_path / "a.png")
    result = CliRunner().invoke(app, ["correct", str(photo)], prog_name="recnet")
    assert result.exit_code == 1
    assert result.stderr == "error: could not open file 'model.bin': permission denied\n"


def test_no_arguments_still_show_the_help() -> None:
    result = CliRunner().invoke(app, [], prog_name="recnet")
    assert result.exit_code == 2 and "Usage: recnet [OPTIONS] COMMAND" in result.stdout
    assert "error" not in result.stderr.lower()


def completions(words: str, env: dict[str, str]) -> list[str]:
    """What bash's tab completion offers after ``words``, as ``recnet --install-completion`` sets it up (the
    shell completes file names where nothing is offered)."""
    index = len(words.split()) - (0 if words.endswith(" ") else 1)
    shell = {"_RECNET_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(index)}
    result = subprocess.run([RECNET], env=env | shell, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.split()


def test_tab_completion_offers_commands_options_models_and_formats(
    env: dict[str, str], model_file: Path
) -> None:
    weights = Path(env["RECNET_WEIGHTS_DIR"])
    (weights / "mine.safetensors").write_bytes(model_file.read_bytes())
    (weights / "damaged.safetensors").write_bytes(b"cut short")
    assert completions("recnet co", env) == ["correct"]
    assert completions("recnet correct --str", env) == ["--strength"]
    assert completions("recnet correct --model ", env) == ["mine"]  # not the damaged one
    assert completions("recnet train --init mi", env) == ["mine"]
    assert completions("recnet correct --model ./my", env) == []  # a file's name: the shell completes it
    assert completions("recnet correct shots/", env) == []
    assert completions("recnet correct --device cu", env) == ["cuda"]
    assert completions("recnet mask --ext ", env) == OUTPUT_EXTENSIONS and "jpg" in OUTPUT_EXTENSIONS
    # The script is for the shell recnet runs in; Typer's switch for tests lets the test name it instead.
    script = run(["--show-completion", "bash"], env | {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert script.returncode == 0 and "complete -o default -F _recnet_completion recnet" in script.stdout


def loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {modules!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def test_commands_that_run_no_model_answer_without_importing_torch(tmp_path: Path) -> None:
    # PyTorch takes 1.5 s to import on 2 CPU cores: only commands that get as far as loading a model pay it.
    photo = make_photo(tmp_path / "shot.jpg")
    calls = [
        ["--help"],
        ["correct", "--help"],
        ["correct", "missing.jpg"],
        ["correct", str(photo), "--tile", "5"],
        ["correct", str(photo), "--overwrite", "--skip-existing"],
        ["correct", str(photo), "--dry-run"],
        ["mask", str(photo), "-n", "--json"],
        ["explain", "missing.jpg"],
        ["eval"],
        ["bench", "--tile", "5"],
        ["bench", "--mp", "nan"],
        ["download", "example/not-cached"],
    ]  # not models, which loads each model as --model would, to list those that cannot be used as damaged
    offline_cache = f"import os\nos.environ.update(HF_HUB_OFFLINE='1', HF_HOME={str(tmp_path / 'hf')!r})\n"
    code = offline_cache + (
        f"from recnet_cli.cli import app\nfor args in {calls!r}:\n    app(args, standalone_mode=False)"
    )
    assert loaded_after(code, ("torch", "recnet_cli.model")) == []


def test_loading_the_model_leaves_the_compiler_unloaded() -> None:
    # torch._dynamo (torch.compile's tracer) takes another 1.5 s to import: only --compile pays it.
    code = "import recnet_cli.engine, recnet_cli.viz.sheet, recnet_cli.weights"
    assert loaded_after(code, ("torch", "torch._dynamo", "triton")) == ["torch"]


def test_correct_one_photo_keeps_metadata(tmp_path: Path, env: dict[str, str], model_file: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    source = make_photo(tmp_path / "shot.jpg", exif=exif.tobytes(), dpi=(300, 300))
    result = run(
        ["correct", str(source), "-o", str(tmp_path / "fixed.jpg"), "--model", str(model_file), "--json"], env
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["done"], summary["failed"], summary["model"]) == (1, 0, str(model_file))
    with Image.open(tmp_path / "fixed.jpg") as out:
        assert out.size == (48, 72)  # orientation applied
        assert out.getexif()[0x0112] == 1
        assert out.getexif()[0x010F] == "TestCam"
        assert round(out.info["dpi"][0]) == 300


def test_extended_xmp_left_out_of_an_output_is_said(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    source = Path(__file__).parent / "data" / "extended-xmp.jpg"  # a 74 KB caption, past a JPEG's XMP segment
    result = run(["correct", str(source), "-o", str(tmp_path / "fixed.png"), "--model", str(model_file)], env)
    assert result.returncode == 0, result.stderr
    assert (
        f"note: {source}: its extended XMP (76.3 kB, what did not fit in the JPEG's XMP segment) is left out "
        "of PNG; a JPEG output keeps it"
    ) in " ".join(result.stderr.split())


def test_a_batch_goes_past_bad_files_and_exits_1(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    make_photo(shots / "good.png")
    (shots / "empty.jpg").write_bytes(b"")
    (shots / "text.jpg").write_text("not a photo")
    good_jpeg = make_photo(tmp_path / "whole.jpg").read_bytes()
    (shots / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    lzw = make_photo(shots / "lzw.tif", compression="tiff_lzw")
    with Image.open(lzw) as tiff:
        strip, length = tiff.tag_v2[273][0], tiff.tag_v2[279][0]
    with lzw.open("r+b") as file:  # codes LZW has not defined: libtiff wrote its own line to stderr
        file.seek(strip + 10)
        file.write(b"\xff" * (length - 10))
    samples = bytearray(make_photo(shots / "samples.tif").read_bytes())  # little-endian, as Pillow writes
    (first,) = struct.unpack_from("<I", samples, 4)
    entries = range(first + 2, first + 2 + 12 * struct.unpack_from("<H", samples, first)[0], 12)
    per_pixel = next(at for at in entries if struct.unpack_from("<H", samples, at)[0] == 277)
    struct.pack_into("<H", samples, per_pixel + 8, 515)  # Pillow logged a line of its own for it
    (shots / "samples.tif").write_bytes(samples)
    result = run(["correct", str(shots), "-o", str(tmp_path / "out"), "--model", str(model_file)], env)
    assert result.returncode == 1
    assert (tmp_path / "out" / "good.png").exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]  # no partial or temp files
    bad = ("empty.jpg", "lzw.tif", "samples.tif", "text.jpg", "truncated.jpg")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 5
    for name in bad:
        assert any(name in line for line in errors), name
    assert all(sum(line.count(name) for name in bad) == 1 for line in errors)
    assert f"error: {lzw}: truncated or corrupt image data" in errors
    assert "corrected 1, skipped 0, failed 5" in result.stderr
    if sys.platform == "linux":  # where recnet finds libtiff to silence it
        recnet_s = r"(note|error): |\d+/\d+ .* -> |corrected "  # no other program's lines (libtiff's)
        others = [line for line in result.stderr.splitlines() if not re.match(recnet_s, line)]
        assert others == [], result.stderr


def test_a_multi_page_tiff_is_corrected_from_its_first_page_with_a_notice(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    scan = make_photo(tmp_path / "scan.tif", save_all=True, append_images=[Image.new("RGB", (72, 48))])
    target = tmp_path / "fixed.tif"
    result = run(["correct", str(scan), "-o", str(target), "--model", str(model_file)], env)
    assert result.returncode == 0, result.stderr
    assert f"note: {scan}: has 2 pages; only the first is used" in result.stderr
    with Image.open(target) as written:
        assert written.n_frames == 1 and written.size == (72, 48)


@pytest.mark.parametrize("recursive", [[], ["-r"]])
def test_overwrite_replaces_recnet_s_earlier_outputs_but_not_the_user_s_photos(
    tmp_path: Path, model_file: Path, recursive: list[str]
) -> None:
    # -o a folder inside the input folder (with -r its images are found, and passed over as recnet's)
    photos, edited = tmp_path / "photos", tmp_path / "photos" / "edited"
    edited.mkdir(parents=True)
    for name in ("a.png", "b.png"):
        make_photo(photos / name)
    options = ["-o", str(edited), "--model", str(model_file)]
    first = CliRunner().invoke(app, ["correct", str(photos / "b.png"), *options])
    assert first.exit_code == 0, first.stderr
    mine = make_photo(edited / "a.png", size=(30, 20))  # the user's own edit, named as a.png's output
    skip_unless_marks_kept(mine.parent)
    again = CliRunner().invoke(app, ["correct", str(photos), *recursive, *options, "--overwrite"])
    assert again.exit_code == 1
    assert f"error: {photos / 'a.png'}: output {mine} exists, and recnet did not write it" in again.stderr
    assert "corrected 1, skipped 0, failed 1" in again.stderr  # b.png's earlier output, replaced
    with Image.open(mine) as kept:
        assert kept.size == (30, 20)


def test_overwrite_replaces_the_file_o_names_but_not_a_users_file_at_its_companions_name(
    tmp_path: Path, model_file: Path
) -> None:
    # -o fixed.png --overwrite asks for fixed.png, whoever wrote it; not for the user's fixed_mask.png
    photo, named = make_photo(tmp_path / "a.png"), make_photo(tmp_path / "fixed.png", size=(30, 20))
    mine = make_photo(tmp_path / "fixed_mask.png", size=(30, 20))
    skip_unless_marks_kept(tmp_path)
    options = [str(photo), "-o", str(named), "--save-mask", "--model", str(model_file), "--overwrite"]
    kept = CliRunner().invoke(app, ["correct", *options])
    assert kept.exit_code == 1
    assert f"error: {photo}: output {mine} exists, and recnet did not write it" in kept.stderr
    assert all(Image.open(path).size == (30, 20) for path in (named, mine))  # the job did not run
    mine.unlink()
    replaced = CliRunner().invoke(app, ["correct", *options])
    assert replaced.exit_code == 0, replaced.stderr
    assert all(Image.open(path).size == (72, 48) for path in (named, mine))


def test_overwrite_says_beforehand_what_it_replaces_where_no_marks_are_kept(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a FAT card recnet cannot tell a photo of the user's from its outputs: --overwrite replaced it unsaid
    photos, edited = tmp_path / "photos", tmp_path / "edited"
    photos.mkdir()
    edited.mkdir()
    for name in ("a.png", "b.png"):
        make_photo(photos / name)
    mine = make_photo(edited / "a.png", size=(30, 20))
    options = ["-o", str(edited), "--model", str(model_file), "--overwrite"]
    if keeps_marks(edited):
        marked = CliRunner().invoke(app, ["correct", str(photos / "a.png"), *options])
        assert marked.exit_code == 1 and "without knowing" not in marked.stderr  # the user's photo: kept

    def unsupported(*_: object) -> bytes:
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "getxattr", unsupported)
    result = CliRunner().invoke(app, ["correct", str(photos), *options])

    assert result.exit_code == 0, result.stderr
    assert (
        f"note: --overwrite replaces 1 existing output ({mine}) without knowing whether recnet wrote it: "
        "their file system keeps no marks (FAT, exFAT, some network shares), so photos of yours with an "
        "output's name are replaced too\n"
    ) in result.stderr
    assert result.stderr.index("without knowing") < result.stderr.index("corrected 2")
    sheet = make_photo(edited / "a_explain.png", size=(30, 20))  # a picture of the user's, so named
    explained = CliRunner().invoke(app, ["explain", str(photos / "a.png"), *options])
    assert explained.exit_code == 0, explained.stderr
    assert f"note: --overwrite replaces 1 existing output ({sheet}) without knowing" in explained.stderr
    named = CliRunner().invoke(app, ["explain", str(photos / "a.png"), *options[2:], "-o", str(sheet)])
    assert named.exit_code == 0 and "without knowing" not in named.stderr  # -o names it: the user's wish


def test_a_folder_passes_over_what_recnet_wrote_there_under_another_suffix_or_output_folder(
    tmp_path: Path, model_file: Path
) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    make_photo(shots / "a.png")
    model = ["--model", str(model_file)]
    for earlier_run in (["--suffix", "_v1"], ["-o", str(shots / "fixed"), "-r"]):
        result = CliRunner().invoke(app, ["correct", str(shots), *earlier_run, *model])
        assert result.exit_code == 0, result.stderr
    skip_unless_marks_kept(shots)
    plan = CliRunner().invoke(
        app, ["correct", str(shots), "-r", "-o", str(shots / "fixed2"), "-n", "--json", *model]
    )
    assert plan.exit_code == 0, plan.stderr
    assert json.loads(plan.stdout)["passed_over"] == [str(shots / "a_v1.png"), str(shots / "fixed" / "a.png")]
    assert "by mark, name or folder" in plan.stderr
    with Image.open(shots / "a_v1.png") as output:  # edited in place: the user's photo from then on
        output.rotate(180).save(shots / "a_v1.png")
    edited = CliRunner().invoke(app, ["correct", str(shots), "-n", "--json", *model])
    assert json.loads(edited.stdout)["passed_over"] == []
    planned = [entry["input"] for entry in json.loads(edited.stdout)["files"]]
    assert planned == [str(shots / "a.png"), str(shots / "a_v1.png")]


def test_a_name_too_long_for_a_folder_still_to_be_made_is_refused_before_the_model_runs(
    tmp_path: Path,
) -> None:
    # The dry run planned it; the run corrected the photo, then could not write its mask
    photo = make_photo(tmp_path / f"{'a' * 248}.png")  # its mask picture's name: 255 + 2 bytes
    output = tmp_path / "new" / "folder"
    for dry_run in (["-n"], []):
        result = CliRunner().invoke(app, ["correct", str(photo), "-o", f"{output}/", "--save-mask", *dry_run])
        assert result.exit_code == 1
        assert f"output {output / photo.stem}_mask.png: file name too long" in result.stderr
    assert not (tmp_path / "new").exists()
    folder = tmp_path / "new" / ("f" * 256)  # a folder's name too long, to be made
    result = CliRunner().invoke(app, ["correct", str(photo), "-o", f"{folder}/", "-n"])
    assert result.exit_code == 1 and f"output {folder / photo.name}: file name too long" in result.stderr


def test_a_dry_run_with_json_still_says_its_errors_and_counts_on_stderr(tmp_path: Path) -> None:
    # stdout had the JSON, and stderr nothing of the errors and counts a dry run without --json gives
    photo = make_photo(tmp_path / "a.png")
    (tmp_path / "a_recnet.png").write_bytes(b"a photo of yours")
    command = ["correct", str(photo), str(tmp_path / "gone.png"), "-n"]
    plain, as_json = (CliRunner().invoke(app, [*command, *json_option]) for json_option in ([], ["--json"]))
    assert plain.exit_code == as_json.exit_code == 1
    assert as_json.stderr == plain.stderr and plain.stderr.endswith(
        "dry run: would correct 0, skip 0, fail 2; nothing was read or written\n"
    )
    assert f"error: {tmp_path / 'gone.png'}: no such file or folder" in plain.stderr
    assert f"error: {photo}: output {tmp_path / 'a_recnet.png'} exists" in plain.stderr
    assert json.loads(as_json.stdout)["failed"] == 2 and plain.stdout == ""


def test_a_dry_run_counts_a_photo_skipped_for_its_existing_output_as_skipped_not_as_to_correct(
    tmp_path: Path,
) -> None:
    # --skip-existing keeps a's earlier output: the counts must say so, not that both would be corrected
    photos = [make_photo(tmp_path / name) for name in ("a.png", "b.png")]
    (tmp_path / "a_recnet.png").write_bytes(b"an earlier run's")
    result = CliRunner().invoke(app, ["correct", *map(str, photos), "--skip-existing", "-n"])
    assert result.exit_code == 0, result.stderr
    assert (
        result.stderr.splitlines()[-1]
        == "dry run: would correct 1, skip 1, fail 0; nothing was read or written"
    )


def test_a_folder_shot_in_raw_and_jpeg_corrects_the_jpegs_and_says_what_it_left_out(
    tmp_path: Path, model_file: Path
) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    make_photo(shots / "a.png")
    (shots / "a.NEF").write_bytes(b"raw")
    model = ["--model", str(model_file)]
    result = CliRunner().invoke(app, ["correct", str(shots), "-o", str(tmp_path / "out"), "--json", *model])
    assert result.exit_code == 0, result.stderr
    assert "note: left out 1 photo file (.nef) that recnet cannot read, a camera RAW file" in result.stderr
    report = json.loads(result.stdout)
    assert report["left_out"] == [str(shots / "a.NEF")] and report["done"] == 1
    quiet = CliRunner().invoke(app, ["correct", str(shots), "-o", str(tmp_path / "out"), "-n", "-q", *model])
    assert quiet.exit_code == 1 and "left out" not in quiet.stderr  # a.png's output is there now


def test_an_output_file_for_a_folder_counts_the_images_to_correct_not_those_passed_over(
    tmp_path: Path, model_file: Path
) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    for name in ("a.png", "a_recnet.png", "a_mask.png", "b.png"):  # a's earlier outputs are passed over
        make_photo(shots / name)
    out = tmp_path / "out.png"
    result = CliRunner().invoke(
        app, ["correct", str(shots), "-o", str(out), "--model", str(model_file), "-n"]
    )
    assert result.exit_code == 2
    assert f"-o {out} names one image file, but the inputs give 2 images: name a folder" in result.stderr


def test_running_twice_on_a_folder_does_not_correct_its_own_outputs(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    make_photo(shots / "a.png")
    first = run(["correct", str(shots), "--model", str(model_file), "--save-mask"], env)
    assert first.returncode == 0, first.stderr
    again = run(["correct", str(shots), "--model", str(model_file), "--skip-existing"], env)
    assert again.returncode == 0, again.stderr
    assert (
        "note: passed over 2 images that look like recnet's outputs, by mark, name or folder" in again.stderr
    )
    assert "corrected 0, skipped 1, failed 0" in again.stderr
    assert sorted(p.name for p in shots.iterdir()) == ["a.png", "a_recnet.png", "a_recnet_mask.png"]
    quiet = run(["correct", str(shots), "--model", str(model_file), "--skip-existing", "-q", "--json"], env)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert json.loads(quiet.stdout)["passed_over"] == [
        str(shots / "a_recnet.png"),
        str(shots / "a_recnet_mask.png"),
    ]
    only_earlier = tmp_path / "only"
    (only_earlier / "fixed").mkdir(parents=True)
    make_photo(only_earlier / "fixed" / "b.png")
    command = [
        "correct",
        str(only_earlier),
        "-r",
        "-o",
        str(only_earlier / "fixed"),
        "--model",
        str(model_file),
    ]
    nothing = run([*command, "--json"], env)
    assert (
        nothing.returncode == 0
        and "passed over 1 image that looks like one of recnet's outputs" in nothing.stderr
    )
    assert "strength calibration" not in nothing.stderr  # exits before loading a model
    assert json.loads(nothing.stdout)["passed_over"] == [str(only_earlier / "fixed" / "b.png")]
    several = run(["correct", str(shots), "-o", str(tmp_path / "fixed.png"), "--model", str(model_file)], env)
    assert several.returncode == 2 and "name a folder, such as -o" in several.stderr
    assert not (tmp_path / "fixed.png").exists()


def test_an_unquoted_pattern_run_again_passes_over_the_outputs_the_shell_names(
    tmp_path: Path, model_file: Path
) -> None:
    """`recnet correct *.jpg` again: the shell names a_recnet.png too, which was corrected into
    a_recnet_recnet.png and made a.png fail as writing over an input."""
    make_photo(tmp_path / "a.png")
    model = ["--model", str(model_file)]
    assert CliRunner().invoke(app, ["correct", str(tmp_path / "a.png"), *model]).exit_code == 0
    skip_unless_marks_kept(tmp_path)
    named = [str(tmp_path / "a.png"), str(tmp_path / "a_recnet.png")]  # as the shell expands *.png
    again = CliRunner().invoke(app, ["correct", *named, *model, "--skip-existing"])
    assert again.exit_code == 0, again.stderr
    assert "passed over 1 image that looks like one of recnet's outputs" in again.stderr
    assert "corrected 0, skipped 1, failed 0" in again.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.png", "a_recnet.png"]
    # named on its own, or edited since (its mark lost), it is corrected as any photo given
    alone = CliRunner().invoke(app, ["correct", named[1], *model])
    assert alone.exit_code == 0 and (tmp_path / "a_recnet_recnet.png").is_file()
    (tmp_path / "a_recnet_recnet.png").unlink()
    make_photo(tmp_path / "a_recnet.png")  # written over by another program
    edited = CliRunner().invoke(app, ["correct", *named, *model, "--skip-existing"])
    assert edited.exit_code == 1 and "is an input file" in edited.stderr
    assert (tmp_path / "a_recnet_recnet.png").is_file()


def test_a_link_given_beside_its_file_is_corrected_once_with_a_note(
    tmp_path: Path, env: dict[str, str]
) -> None:
    photo = make_photo(tmp_path / "a.png")
    (tmp_path / "b.png").symlink_to("a.png")
    listed = run(["correct", str(photo), str(tmp_path / "b.png"), "--dry-run"], env)
    note = f"note: {tmp_path / 'b.png'}: the same file as {photo} (by a link), corrected once, as {photo}"
    assert listed.returncode == 0 and note in listed.stderr, listed.stderr
    assert listed.stdout.count(" -> ") == 1
    quiet = run(["correct", str(photo), str(tmp_path / "b.png"), "--dry-run", "-q"], env)
    assert "note:" not in quiet.stderr


def test_a_mask_without_its_photo_is_kept_unless_recnet_left_it_and_the_photo_is_written_last(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    photo = make_photo(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    mask, corrected = out / "a_mask.png", out / "a.png"
    mask.write_bytes(b"left by a run that stopped on a full disk")
    as_recnet_wrote(mask)
    command = ["correct", str(photo), "-o", str(out), "--model", str(model_file), "--save-mask"]
    kept = run(command, env)
    assert (
        kept.returncode == 1 and f"output {mask} exists, but not {corrected} (use --overwrite)" in kept.stderr
    )
    assert mask.read_bytes().startswith(b"left by") and not corrected.exists()
    if not keeps_marks(mask.parent):  # no marks: it may be the user's, for --overwrite only
        assert run([*command, "--skip-existing"], env).returncode == 1
        redone = run([*command, "--overwrite"], env)
    else:  # recnet's, as it left it: --skip-existing, which goes on with a batch, writes it again
        redone = run([*command, "--skip-existing"], env)
    assert redone.returncode == 0 and "corrected 1, skipped 0, failed 0" in redone.stderr, redone.stderr
    with Image.open(mask) as picture:
        assert picture.size == (72, 48)
    assert mask.stat().st_mtime_ns <= corrected.stat().st_mtime_ns  # the photo last: it marks the job done
    again = run([*command, "--skip-existing"], env)
    assert again.returncode == 0 and "corrected 0, skipped 1, failed 0" in again.stderr


def test_a_features_figure_left_without_its_photo_is_drawn_again_by_skip_existing(
    tmp_path: Path, model_file: Path
) -> None:
    skip_unless_marks_kept(tmp_path)  # --skip-existing replaces only what recnet left
    photo = make_photo(tmp_path / "a.png")
    out = tmp_path / "out"
    command = ["correct", str(photo), "-o", str(out), "--save-features", "--model", str(model_file)]
    first = CliRunner().invoke(app, command)
    assert first.exit_code == 0, first.output
    (out / "a.png").unlink()  # as a run stopped between the figure and the photo leaves them
    resumed = CliRunner().invoke(app, [*command, "--skip-existing"])
    assert resumed.exit_code == 0 and "corrected 1, skipped 0, failed 0" in resumed.stderr, resumed.output
    assert (out / "a.png").is_file()
    assert (out / "a_features.png").stat().st_mtime_ns <= (out / "a.png").stat().st_mtime_ns


def ctrl_c(*_: object, **__: object) -> None:
    """Stops as Ctrl-C does (and SIGTERM, as recnet takes it): a stand-in for any step of a command."""
    raise KeyboardInterrupt


def sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # what kill, docker stop and SLURM's time limit send


def stopped_at_the_third_photo(jobs: list[Job], stop: Callable[[], None], overwrite: bool) -> Summary:
    """``run_batch`` of ``jobs`` (each writes "corrected"), which ``stop`` stops as the third photo is
    corrected; a second Ctrl-C or SIGTERM, while the summary, the JSON and the report are written, is
    ignored."""
    computed: list[Photo] = []

    def compute(corrector: Corrector, photo: Photo, progress: object) -> Photo:
        if len(computed) == 2:
            stop()
        computed.append(photo)
        return photo

    def write(job: Job, photo: Photo, computed: Photo) -> float:
        job.target.write_bytes(b"corrected")
        return photo.megapixels

    corrector = Corrector(RECNet(channels=4, blocks=1), torch.device("cpu"))
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as the program, entry.run, does
    try:
        mode = BatchMode("correct", overwrite, skip_existing=False, quiet=True, as_json=False, dry_run=False)
        summary = run_batch(mode, jobs, Summary(), [corrector], compute, write, "Correcting")
        assert {signal.getsignal(number) for number in before} == {signal.SIG_IGN}
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)
    return summary


@pytest.mark.parametrize(
    ("stop", "overwrite", "advice"),
    [(ctrl_c, False, "--skip-existing"), (sigterm, True, "--skip-existing in place of --overwrite")],
)
def test_ctrl_c_or_sigterm_says_how_far_the_batch_got_and_how_to_go_on(
    tmp_path: Path, capsys, stop: Callable[[], None], overwrite: bool, advice: str
) -> None:
    jobs = [Job(make_photo(tmp_path / f"{name}.png"), tmp_path / f"{name}_out.png") for name in "abc"]
    summary = stopped_at_the_third_photo(jobs, stop, overwrite)
    assert [job.target.exists() for job in jobs] == [True, True, False]
    assert capsys.readouterr().err.splitlines() == [
        f"note: interrupted: 2 of 3 written, none half-written; run the same command with {advice} "
        "to do the rest"
    ]
    with pytest.raises(typer.Exit) as stopped:
        finish(summary, "corrected", quiet=True, as_json=True, extra={"model": "m"})
    assert stopped.value.exit_code == 130
    printed = capsys.readouterr()
    report = json.loads(printed.out)
    assert printed.err == "" and report["interrupted"] and (report["done"], report["not_run"]) == (2, 1)
    assert [(entry["input"], entry["status"]) for entry in report["files"]] == [
        (str(job.source), status) for job, status in zip(jobs, ["done", "done", "not run"], strict=True)
    ]


def test_a_stopped_overwrite_run_does_not_advise_skipping_the_earlier_outputs_it_left(
    tmp_path: Path, capsys
) -> None:
    # --skip-existing would have kept c's output of an earlier run as it was, and called the batch done
    jobs = [Job(make_photo(tmp_path / f"{name}.png"), tmp_path / f"{name}_out.png") for name in "abc"]
    for job in jobs:
        job.target.write_bytes(b"earlier run")
        as_recnet_wrote(job.target)

    stopped_at_the_third_photo(jobs, ctrl_c, overwrite=True)
    assert [job.target.read_bytes() for job in jobs] == [b"corrected", b"corrected", b"earlier run"]
    assert capsys.readouterr().err.splitlines() == [
        "note: interrupted: 2 of 3 written, none half-written; run the same command again to do the rest "
        f"(--skip-existing would keep 1 output from before it as it was: {jobs[2].target})"
    ]


def test_the_program_takes_sigterm_as_ctrl_c_from_its_start(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    monkeypatch.setattr(cli, "app", lambda prog_name: seen.append(signal.getsignal(signal.SIGTERM)))
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        entry.run()  # the entry point of the `recnet` program
        # Once the command is done, a stop while Python shuts down cannot turn exit 0 or 130 into 143.
        assert {signal.getsignal(number) for number in before} == {signal.SIG_IGN}
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)
    assert seen == [entry.stop_as_ctrl_c]


class StoppedWhileImporting(types.ModuleType):
    """What ``from recnet_cli.cli import run`` meets when Ctrl-C or SIGTERM comes while it loads."""

    @property
    def run(self) -> None:
        raise KeyboardInterrupt


def test_a_stop_while_the_program_loads_is_said_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The half second of imports before the command line exists: a traceback (Ctrl-C) or silence (SIGTERM)
    monkeypatch.setitem(sys.modules, "recnet_cli.cli", StoppedWhileImporting("recnet_cli.cli"))
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(SystemExit) as stopped:
            entry.run()  # the entry point of the `recnet` program
        assert stopped.value.code == 130 and capsys.readouterr().err == (
            "note: interrupted: recnet stopped before it started\n"
        )
        assert {signal.getsignal(number) for number in before} == {signal.SIG_IGN}
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


@pytest.mark.parametrize("parser", [typer.core.TyperGroup, typer.core.TyperCommand])
def test_a_stop_while_the_command_line_is_read_is_said_in_one_line(
    monkeypatch: pytest.MonkeyPatch, parser: type
) -> None:
    # recnet's own options, then the command's: Typer turned a stop in either into exit 130 without a word
    monkeypatch.setattr(parser, "parse_args", ctrl_c)
    result = CliRunner().invoke(app, ["correct", "a.jpg"])
    assert (result.exit_code, result.stderr) == (130, "note: interrupted: recnet stopped before it started\n")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("arguments", [["--version"], ["models", "--json"]])
def test_output_that_cannot_be_written_is_a_one_line_error(env: dict[str, str], arguments: list[str]) -> None:
    # What `recnet ... --json > results.json` meets on a full disk.
    with open("/dev/full", "w") as full:
        result = subprocess.run([RECNET, *arguments], env=env, stdout=full, stderr=subprocess.PIPE, text=True)
    assert result.returncode == 1
    assert result.stderr == "error: cannot write to standard output: no space left on device\n"


@pytest.mark.parametrize("closed", [1, 2])
def test_a_closed_standard_stream_drops_what_goes_there_and_the_command_runs(
    tmp_path: Path, env: dict[str, str], model_file: Path, closed: int
) -> None:
    # `recnet correct a.jpg -o b.jpg >&-` wrote the photo, then ended in three tracebacks (exit 1)
    photo = make_photo(tmp_path / "a.jpg")
    correct = ["correct", str(photo), "-o", str(tmp_path / "b.jpg"), "--model", str(model_file)]
    for arguments in (["models"], correct):
        result = subprocess.run(
            [RECNET, *arguments],
            env=env,
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.close(closed),  # what the shell does for >&- and 2>&-
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stdout + result.stderr
    assert (tmp_path / "b.jpg").is_file()


def test_a_working_folder_deleted_since_the_shell_entered_it_is_named_as_the_cause(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # `cd gone && rmdir ../gone && recnet correct a.jpg -o b.jpg` said "cannot write to standard output"
    photo = make_photo(tmp_path / "a.jpg")
    gone = tmp_path / "gone"
    gone.mkdir()

    def enter_then_delete() -> None:
        os.chdir(gone)
        os.rmdir(gone)

    result = subprocess.run(
        [RECNET, "correct", str(photo), "-o", "b.jpg"],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=enter_then_delete,
        timeout=300,
    )
    assert result.returncode == 2
    assert (
        result.stderr == "error: the current folder no longer exists (it was deleted); cd to one that does\n"
    )


def test_a_name_the_output_s_encoding_lacks_is_escaped_not_a_traceback(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # Windows writes a redirected stdout in the locale's encoding (cp1252), which has no 東京
    photo = make_photo(tmp_path / "東京.png")
    plan = run(["correct", str(photo), "--dry-run"], {**env, "PYTHONIOENCODING": "cp1252"})
    assert plan.returncode == 0, plan.stderr
    escaped = str(tmp_path / "\\u6771\\u4eac")
    assert plan.stdout == f"{escaped}.png -> {escaped}_recnet.png\n"


def test_a_terminal_width_of_zero_in_the_environment_is_ignored(env: dict[str, str]) -> None:
    # COLUMNS=0, as some environments set it: Rich printed every line 0 characters wide, that is nothing
    for columns in ("0", "wide", "\u00b2", "1" * 5000):  # ², a digit to isdigit that int() does not take
        result = run(["correct", "no-such.jpg"], {**env, "COLUMNS": columns})
        assert (result.returncode, result.stderr) == (1, "error: no-such.jpg: no such file or folder\n")
        listed = run(["models"], {**env, "COLUMNS": columns})
        assert listed.stderr.startswith(
            f"No models yet: none bundled in {env['RECNET_WEIGHTS_DIR']} and none"
        )
    # a width beyond any terminal's: help laid out that wide was an OverflowError, or took gigabytes
    for columns in ("99999999999999999999", "9999999999"):
        helped = run(["correct", "--help"], {**env, "COLUMNS": columns})
        assert helped.returncode == 0 and "Usage: recnet correct" in helped.stdout, helped.stderr[-300:]
        assert max(map(len, helped.stdout.splitlines())) <= 200  # the terminal's width, or 80


def test_no_models_names_the_folder_the_bundled_ones_are_looked_for_in(
    env: dict[str, str], model_file: Path
) -> None:
    # It said weights/ whatever RECNET_WEIGHTS_DIR named
    odd = run(["models"], {**env, "RECNET_WEIGHTS_DIR": "/no/[red]such\nfolder"})  # plain text, one line
    assert (odd.returncode, odd.stderr) == (
        0,
        "note: RECNET_WEIGHTS_DIR names /no/[red]such\\nfolder: no such folder, so no bundled models are "
        "read\nNo models yet: none bundled in /no/[red]such\\nfolder and none in the Hugging Face cache.\n",
    )
    # a model file named in place of its folder: "no such folder", and nothing said where others were listed
    model = run(["models"], {**env, "RECNET_WEIGHTS_DIR": str(model_file)})
    assert model.stderr.startswith(
        f"note: RECNET_WEIGHTS_DIR names {model_file}: a file, not a folder, so no bundled models are read\n"
    )


def test_a_hub_timeout_that_is_not_a_whole_number_is_dropped_and_named_by_download(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    # huggingface_hub reads them with int() as it is imported: every command that loads a model, the bundled
    # one too, ended in a traceback
    photo = make_photo(tmp_path / "a.jpg")
    timeouts = {**env, "HF_HUB_ETAG_TIMEOUT": "0.5", "HF_HUB_DOWNLOAD_TIMEOUT": ""}
    result = run(["correct", str(photo), "--model", str(model_file)], timeouts)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert (
        "TIMEOUT" not in result.stderr
    )  # a note for every command, --help and tab completion too, was noise
    assert (tmp_path / "a_recnet.jpg").is_file()
    fetched = run(["download", "acme/not-cached"], {**env, "HF_HUB_DOWNLOAD_TIMEOUT": "10s"})
    assert fetched.returncode == 2 and "Traceback" not in fetched.stderr
    assert fetched.stderr.startswith(
        "note: HF_HUB_DOWNLOAD_TIMEOUT=10s: not a whole number of seconds, so the default is used\n"
    )


def test_a_dry_run_lists_the_plan_and_touches_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        make_photo(shots / name)
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.png").write_bytes(b"earlier")
    plan = run(["correct", str(shots), "-o", str(out), "--save-mask", "--dry-run"], env)
    assert plan.returncode == 1  # b.png's output exists
    assert plan.stdout.splitlines() == [
        f"{shots / 'a.png'} -> {out / 'a.png'}, {out / 'a_mask.png'}",
        f"{shots / 'c.png'} -> {out / 'c.png'}, {out / 'c_mask.png'}",
    ]
    assert f"error: {shots / 'b.png'}: output {out / 'b.png'} exists" in plan.stderr
    assert "dry run: would correct 2, skip 0, fail 1; nothing was read or written" in plan.stderr
    (out / "b_mask.png").write_bytes(b"earlier")  # a mask picture keeps its suffix in an -o folder
    skipping = run(["mask", str(shots), "-o", str(out), "-n", "--skip-existing", "--json"], env)
    assert skipping.returncode == 0, skipping.stderr
    summary = json.loads(skipping.stdout)
    assert (summary["dry_run"], summary["planned"], summary["skipped"]) == (True, 2, 1)
    assert [f["status"] for f in summary["files"]] == ["planned", "skipped", "planned"]
    # -q printed the counts line all the same: it is left for a plan that would fail, as after a run
    quiet = run(["mask", str(shots), "-o", str(out), "-n", "--skip-existing", "-q"], env)
    assert (quiet.returncode, quiet.stderr) == (0, "") and len(quiet.stdout.splitlines()) == 3
    failing = run(["correct", str(shots), "-o", str(out), "--dry-run", "-q"], env)
    assert failing.stderr.endswith("dry run: would correct 2, skip 0, fail 1; nothing was read or written\n")
    assert sorted(p.name for p in out.iterdir()) == ["b.png", "b_mask.png"]
    assert (out / "b.png").read_bytes() == (out / "b_mask.png").read_bytes() == b"earlier"
    for command in ("correct", "mask"):  # options the run would refuse, the plan refuses too
        refused = run([command, str(shots), "-o", str(out), "-n", "--tile", "5"], env)
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr.startswith("error: --tile 5: use auto, 0 (whole image) or a size of at least")
    for command, options, error in (  # nor does a plan pass what the run stops on as it loads the model
        ("correct", ["--device", "gpu"], "unknown device 'gpu' (use auto, cpu, cuda, cuda:N or mps)"),
        ("correct", ["--device", "xpu"], "device 'xpu': recnet runs on the CPU, CUDA GPUs and Apple MPS"),
        ("mask", ["--model", "nosuch.safetensors"], "nosuch.safetensors: file not found"),
        (
            "mask",
            ["--model", str(out / "b.png")],
            f"{out / 'b.png'}: unknown model file type '.png' (expected",
        ),
        ("mask", ["--precision", "fp16", "--device", "cpu"], "fp16 is not supported on the CPU"),
        ("correct", ["--fused", "--device", "cpu"], "--fused needs a CUDA GPU, and the device is cpu"),
    ):
        refused = CliRunner().invoke(app, [command, str(shots), "-o", str(out), "-n", *options])
        assert (refused.exit_code, refused.stdout) == (2, "") and refused.stderr.startswith(f"error: {error}")
    hub = CliRunner().invoke(app, ["correct", str(shots / "a.png"), "-n", "--model", "someone/recnet-x"])
    assert hub.exit_code == 0, hub.stderr  # a Hub model is not looked up for a plan
    # ², full-width 128: digits to isdigit, not int; and more digits than int() converts (4,300)
    for digits in ("\u00b2", "\uff11\uff12\uff18", "1" * 5000):
        refused = CliRunner().invoke(app, ["correct", str(shots), "-n", "--tile", digits])
        assert (refused.exit_code, refused.stderr) == (
            2,
            f"error: --tile {digits}: use auto, 0 (whole image) or a size of at least 128 pixels\n",
        )


def test_a_dry_run_with_overwrite_names_the_files_it_would_replace(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # --overwrite -n listed an earlier output to be replaced as it listed a new one
    for name in ("a", "b"):
        make_photo(tmp_path / f"{name}.png")
    skip_unless_marks_kept(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    as_recnet_wrote(make_photo(out / "a.png"))
    as_recnet_wrote(make_photo(out / "b_mask.png"))  # a mask left by a run that stopped before b's photo
    plan = run(
        ["correct", "a.png", "b.png", "-o", "out/", "--save-mask", "--overwrite", "-n"], env, cwd=tmp_path
    )
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.splitlines() == [
        "a.png -> out/a.png, out/a_mask.png (replaces out/a.png)",
        "b.png -> out/b.png, out/b_mask.png (replaces out/b_mask.png)",
    ]
    as_json = json.loads(
        run(["correct", "a.png", "-o", "out/", "--overwrite", "-n", "--json"], env, cwd=tmp_path).stdout
    )
    assert [(f["status"], f["reason"]) for f in as_json["files"]] == [("planned", "replaces out/a.png")]


def test_an_output_ending_in_a_slash_is_a_folder_whatever_its_name(
    tmp_path: Path, env: dict[str, str]
) -> None:
    make_photo(tmp_path / "a.jpg")
    for command, typed, planned in (
        ("correct", "trail/out.jpg/", "trail/out.jpg/a.jpg"),
        ("mask", "m.png/", "m.png/a_mask.png"),
        ("correct", "out.gif/", "out.gif/a.jpg"),  # a folder, not a format recnet cannot write
        ("correct", "2024.06.01/", "2024.06.01/a.jpg"),
    ):
        plan = run([command, "a.jpg", "-o", typed, "-n"], env, cwd=tmp_path)
        assert plan.returncode == 0, plan.stderr
        assert plan.stdout == f"a.jpg -> {planned}\n"
        assert "note:" not in plan.stderr  # 2024.06.01 without the slash is said to be taken as a folder


def test_a_typed_suffix_names_outputs_in_an_output_folder_and_a_mask_keeps_its_own(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # --suffix was passed over in another folder, so the advice on a clash (another -o or --suffix) could not
    # help; and mask -o OUT named its pictures as correct -o OUT names PNG photos, so one replaced the other.
    make_photo(tmp_path / "a.png")
    for command, options, planned in (
        ("correct", [], "out/a.png"),
        ("correct", ["--suffix", "_v2"], "out/a_v2.png"),
        ("correct", ["--suffix", "_recnet"], "out/a_recnet.png"),  # typed: the default's text, but asked for
        ("mask", [], "out/a_mask.png"),
        ("mask", ["--suffix", "_m", "--raw"], "out/a_m.png, out/a_m_raw.png"),
        ("mask", ["--suffix", ""], "out/a.png"),
    ):
        plan = run([command, "a.png", "-o", "out/", *options, "-n"], env, cwd=tmp_path)
        assert (plan.returncode, plan.stdout) == (0, f"a.png -> {planned}\n"), plan.stderr
        assert "--suffix is not used" not in plan.stderr
    for command in ("correct", "mask"):  # -o names the file: a suffix typed would name nothing, said so
        plan = run([command, "a.png", "-o", "named.png", "--suffix", "_v2", "-n"], env, cwd=tmp_path)
        assert plan.stdout == "a.png -> named.png\n"
        assert "note: --suffix is not used: -o names the output file" in plan.stderr


def test_two_inputs_that_would_share_an_output_clash_in_every_shard(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # Named before sharding: otherwise each shard held one of them, and both wrote out/x.jpg.
    photos = [
        str(make_photo(tmp_path / folder / "x.jpg"))
        for folder in ("a", "b")
        if (tmp_path / folder).mkdir() is None
    ]
    plans = [
        run(["correct", *photos, "-o", str(tmp_path / "out"), "--shard", f"{k}/2", "-n"], env) for k in (1, 2)
    ]
    assert [plan.returncode for plan in plans] == [0, 1]
    assert plans[0].stdout.strip() == f"{photos[0]} -> {tmp_path / 'out' / 'x.jpg'}"
    assert (
        f"error: {photos[1]}: output {tmp_path / 'out' / 'x.jpg'} would also be written for {photos[0]}: "
        "give one of them another -o, in a run of its own\n" in plans[1].stderr
    )


def test_machines_given_the_photos_in_other_orders_split_them_with_none_twice_or_left_out(
    tmp_path: Path, model_file: Path
) -> None:
    # as $(find ...) or ls -t name them: each machine in the order its file system lists them
    photos = [str(make_photo(tmp_path / name)) for name in ("a.png", "b.png", "c.png", "z9.png")]
    planned = []
    for shard, given in (("1/2", photos), ("2/2", photos[::-1])):
        command = [
            "correct",
            *given,
            "-o",
            str(tmp_path / "out"),
            "--shard",
            shard,
            "-n",
            "--model",
            str(model_file),
        ]
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.stderr
        planned += [line.split(" -> ")[0] for line in result.stdout.splitlines()]
    assert sorted(planned) == photos


def test_a_shard_beyond_the_images_found_says_it_has_nothing_to_do(tmp_path: Path, model_file: Path) -> None:
    photos = [str(make_photo(tmp_path / name)) for name in ("a.png", "b.png")]
    for shard, said in (
        ("3/8", "shard 3/8 has nothing to do: the 2 images found go to shards 1 to 2"),
        ("2/3", "shard 2/3 has nothing to do: the 1 image found goes to shard 1"),
    ):
        given = photos if shard == "3/8" else photos[:1]
        command = ["correct", *given, "--shard", shard, "-n", "--model", str(model_file)]
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0 and f"note: {said}\n" in result.stderr, result.stderr
    busy = CliRunner().invoke(app, ["correct", *photos, "--shard", "2/8", "-n", "--model", str(model_file)])
    assert busy.exit_code == 0 and "nothing to do" not in busy.stderr


def test_quality_for_lossless_outputs_only_says_it_does_nothing(tmp_path: Path, model_file: Path) -> None:
    jpeg, tiff, png = (str(make_photo(tmp_path / name)) for name in ("a.jpg", "b.tif", "c.png"))
    lossless = "note: --quality sets JPEG, WebP, AVIF and HEIF outputs: {} outputs are lossless"
    for given, note in (
        ([jpeg, "--ext", "png"], lossless.format("PNG")),
        ([tiff, png], lossless.format("PNG and TIFF")),
        ([jpeg, tiff], None),  # a JPEG output, which --quality sets
        ([tiff, "--ext", "webp"], None),
    ):
        command = ["correct", *given, "--quality", "50", "-n", "--model", str(model_file)]
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.stderr
        assert (note in result.stderr) if note else "--quality" not in result.stderr, result.stderr
    quiet = CliRunner().invoke(
        app, ["correct", png, "--quality", "50", "-n", "-q", "--model", str(model_file)]
    )
    assert "--quality" not in quiet.stderr


def test_inputs_with_no_output_format_fail_alone_beside_a_photo_that_is_corrected(
    tmp_path: Path, model_file: Path
) -> None:
    photo = make_photo(tmp_path / "a.jpg")
    for name in ("DSC_0001.NEF", "backup.jpg_original"):
        (tmp_path / name).write_bytes(photo.read_bytes())
    inputs = [str(tmp_path / name) for name in ("DSC_0001.NEF", "a.jpg", "backup.jpg_original")]
    for extra in ([], ["--quality", "90"], ["-n"]):
        result = CliRunner().invoke(app, ["correct", *inputs, *extra, "--model", str(model_file)])
        assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.exception
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert [line.split(": ")[1] for line in errors] == [inputs[0], inputs[2]], result.stderr
        assert (tmp_path / "a_recnet.jpg").exists() is (extra != ["-n"])
        (tmp_path / "a_recnet.jpg").unlink(missing_ok=True)


def test_a_bad_shard_is_refused_before_the_inputs_are_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def walk(*args: object) -> None:
        raise AssertionError("the inputs were walked before --shard was checked")

    monkeypatch.setattr(runner, "find_sources", walk)
    for command in ("correct", "mask"):
        for shard in ("3/2", "0/4", "2"):
            result = CliRunner().invoke(
                app, [command, str(tmp_path / "nothing-here"), "--shard", shard, "-n"]
            )
            assert result.exit_code == 2, result.output
            assert result.output == f"error: --shard {shard}: use K/N with 1 <= K <= N, e.g. 2/8\n"


def test_the_strength_and_blend_run_in_the_writer_threads_not_the_compute_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The compute thread feeds the device; on a GPU the host's share of a photo (the strength, the blend:
    # about 0.15 s at 12 MP) would otherwise cap a batch at a few photos a second.
    threads: dict[str, list[str]] = {"predict": [], "blend": []}
    predict, blend = StrengthCalibration.predict, engine.blend

    def predict_and_note_the_thread(self: StrengthCalibration, *args: np.ndarray) -> float:
        threads["predict"].append(threading.current_thread().name)
        return predict(self, *args)

    def blend_and_note_the_thread(*args: Any) -> np.ndarray:
        threads["blend"].append(threading.current_thread().name)
        return blend(*args)

    monkeypatch.setattr(StrengthCalibration, "predict", predict_and_note_the_thread)
    monkeypatch.setattr(engine, "blend", blend_and_note_the_thread)
    photos = [str(make_photo(tmp_path / f"{name}.png")) for name in "ab"]
    bundled = Path(__file__).parents[1] / "weights" / "recnet-mixed.safetensors"
    arguments = ["correct", *photos, "-o", str(tmp_path / "out"), "--model", str(bundled), "--device", "cpu"]
    result = CliRunner().invoke(app, [*arguments, "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    for names in threads.values():  # each photo's strength, then its blend (auto gave less than 1)
        assert len(names) == 2 and all(name.startswith("recnet-write") for name in names), threads


@pytest.mark.parametrize(
    ("command", "companion", "named"),
    [("correct", ("--save-mask", "mask"), ""), ("mask", ("--raw", "raw"), "_mask")],  # named: in -o too
)
def test_an_output_saved_while_the_batch_runs_is_kept_unless_overwrite(
    tmp_path: Path,
    model_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    companion: tuple[str, str],
    named: str,
) -> None:
    # The outputs are checked as the batch starts, and again just before each photo is computed; a file
    # saved at one afterwards (the user's edit, another run) is kept all the same: a's photo, and b's
    # companion, appear as the photos are computed (a, then b, in the one lane).
    flag, tag = companion
    photos = [str(make_photo(tmp_path / f"{name}.png")) for name in "ab"]
    out = tmp_path / "out"
    a, b = f"a{named}", f"b{named}"  # the stems of the outputs
    appearing = {"a": out / f"{a}.png", "b": out / f"{b}_{tag}.png"}
    start = Corrector.start
    started: list[str] = []
    saved_by: list[Callable[[Path], object]] = [Path.touch]  # the user saves them (they lack recnet's mark)

    def save_over_then_start(corrector: Corrector, *args: Any) -> Any:
        started.append("ab"[len(started) % 2])  # each run computes a, then b
        appearing[started[-1]].write_bytes(b"MY EDIT")
        saved_by[0](appearing[started[-1]])
        return start(corrector, *args)

    monkeypatch.setattr(Corrector, "start", save_over_then_start)
    arguments = [command, *photos, "-o", str(out), flag, "--model", str(model_file), "--device", "cpu"]
    kept = CliRunner().invoke(app, arguments)
    assert kept.exit_code == 1, kept.output
    skip_unless_marks_kept(out)
    theirs = (
        "exists, and recnet did not write it (it lacks recnet's mark: a file of yours, a copy, or an edited "
        "output)"
    )
    elsewhere = "move it away, or write elsewhere (-o, --suffix)"
    assert f"output {out / f'{a}.png'} {theirs}: use --skip-existing, {elsewhere}" in kept.output
    assert f"output {out / f'{b}_{tag}.png'} {theirs}: {elsewhere}" in kept.output
    assert all(path.read_bytes() == b"MY EDIT" for path in appearing.values())
    # a's companion, written before its photo, is this run's; no temporary is left
    assert sorted(path.name for path in out.iterdir()) == [f"{a}.png", f"{a}_{tag}.png", f"{b}_{tag}.png"]
    for path in out.iterdir():
        path.unlink()
    still_kept = CliRunner().invoke(app, [*arguments, "--overwrite"])  # not even --overwrite replaces them
    assert still_kept.exit_code == 1 and still_kept.output.count(f"{theirs}: not replacing it") == 2
    assert all(path.read_bytes() == b"MY EDIT" for path in appearing.values())
    for path in out.iterdir():
        path.unlink()
    saved_by[0] = as_recnet_wrote  # another run's, which --overwrite replaces
    replaced = CliRunner().invoke(app, [*arguments, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in appearing.values())


def no_space(*args: object) -> None:
    raise imaging.ImageWriteError("out/report.html", "no space left on device")


@pytest.mark.parametrize("stop", [no_space, ctrl_c], ids=["full-disk", "ctrl-c"])
def test_a_report_that_is_not_written_leaves_the_batch_s_summary_and_json_whole(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch, stop: Callable[[], None]
) -> None:
    # The photos are written before the page, which waits for the other shards' (a Ctrl-C, a scheduler's
    # SIGTERM) and may find the disk full: what the batch did is said all the same.
    from recnet_cli.viz.report import ReportBuilder

    monkeypatch.setattr(ReportBuilder, "write", lambda *args: stop())
    photo, out = make_photo(tmp_path / "a.png"), tmp_path / "out"
    arguments = ["correct", str(photo), "-o", str(out), "--report", "--json", "--model", str(model_file)]
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = CliRunner().invoke(app, [*arguments, "--device", "cpu", "--quiet"])
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)
    report = json.loads(result.stdout)
    assert (report["done"], report["interrupted"]) == (1, stop is ctrl_c) and (out / "a.png").is_file()
    if stop is ctrl_c:
        assert result.exit_code == 130
        assert result.stderr == (
            "note: interrupted: 1 of 1 written, but not the report; run the same command with "
            "--skip-existing to write it\n"
        )
    else:
        assert (result.exit_code, result.stderr) == (1, "error: out/report.html: no space left on device\n")


def test_a_sheet_saved_while_explain_runs_is_kept_unless_overwrite_and_recnet_s(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo, sheet = make_photo(tmp_path / "a.png"), tmp_path / "a_explain.png"
    read_input = runner.read_input
    saved_by: list[Callable[[Path], object]] = [Path.touch]  # the user saves it (it lacks recnet's mark)

    def read_then_save_over(path: Path, quiet: bool) -> Photo:
        sheet.write_bytes(b"MY EDIT")
        saved_by[0](sheet)
        return read_input(path, quiet)

    monkeypatch.setattr(runner, "read_input", read_then_save_over)
    arguments = ["explain", str(photo), "--model", str(model_file), "--device", "cpu"]
    for overwrite in ([], ["--overwrite"]):
        sheet.unlink(missing_ok=True)
        kept = CliRunner().invoke(app, [*arguments, *overwrite])
        assert kept.exit_code == 1, kept.output
        skip_unless_marks_kept(sheet.parent)
        assert kept.output == (
            f"error: {sheet} exists, and recnet did not write it (it lacks recnet's mark: a file of yours, a "
            "copy, or an edited output): move it away, or choose another -o\n"
        )
        assert sheet.read_bytes() == b"MY EDIT" and sorted(p.name for p in tmp_path.iterdir()) == [
            "a.png",
            sheet.name,
        ]
    saved_by[0] = as_recnet_wrote  # another run's
    sheet.unlink()
    assert CliRunner().invoke(app, arguments).output == f"error: {sheet} exists (use --overwrite)\n"
    sheet.unlink()
    replaced = CliRunner().invoke(app, [*arguments, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert sheet.read_bytes().startswith(b"\x89PNG")


def fault_line(photo: Path, fault: str, where: str) -> str:
    """The pattern of the line saying that a fault of recnet's met ``photo``: the error ``fault`` (its type
    and the start of its message) at a line of ``where`` in recnet's code."""
    return (
        rf"error: {re.escape(str(photo))}: failed by a fault in recnet \({re.escape(fault)}.*, at "
        rf"recnet_cli/{where}:\d+\); please report it, with this file if you can"
    )


@pytest.mark.parametrize("command", ["correct", "mask"])
@pytest.mark.parametrize("stage", ["read", "write"])
def test_a_fault_of_recnet_s_own_fails_its_photo_alone_in_one_line_that_says_where(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch, command: str, stage: str
) -> None:
    """A PNG's gamma recnet could not put in a profile (struct.error) ended a batch with a traceback, the
    photos after it uncorrected."""
    photos = [make_photo(tmp_path / f"{name}.png") for name in "abc"]
    read_photo, save = runner.read_photo, imaging_write._save

    def read_but_b(path: Path) -> Photo:
        if stage == "read" and path.name == "b.png":
            {}["colour"]  # the fault
        return read_photo(path)

    def save_but_b(path: Path, *args: Any, **kwargs: Any) -> None:
        if stage == "write" and Path(path).name.startswith("b"):
            struct.pack("<i", 2**40)
        save(path, *args, **kwargs)

    monkeypatch.setattr(runner, "read_photo", read_but_b)
    monkeypatch.setattr(imaging_write, "_save", save_but_b)
    out = tmp_path / "out"
    arguments = [command, *map(str, photos), "-o", str(out), "--model", str(model_file), "--device", "cpu"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 1, result.output
    fault, where = (
        ("KeyError: 'colour'", "runner.py") if stage == "read" else ("struct.error: ", "imaging/write.py")
    )
    assert re.search(f"^{fault_line(photos[1], fault, where)}$", result.output, re.MULTILINE), result.output
    assert "Traceback" not in result.output
    assert sorted(path.name[0] for path in out.iterdir()) == ["a", "c"]  # the batch went on


@pytest.mark.parametrize("stage", ["read", "write"])
def test_a_fault_of_recnet_s_own_in_explain_is_one_line(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    photo = make_photo(tmp_path / "a.png")
    if stage == "read":
        monkeypatch.setattr(imaging_read, "_read_open_file", lambda path, file: {}["colour"])
    else:
        monkeypatch.setattr(imaging_write, "_save", lambda *args, **kwargs: struct.pack("<i", 2**40))
    result = CliRunner().invoke(app, ["explain", str(photo), "--model", str(model_file), "--device", "cpu"])
    assert result.exit_code == 1, result.output
    fault, where = (
        ("KeyError: 'colour'", "imaging/read.py") if stage == "read" else ("struct.error", "imaging/write.py")
    )
    assert re.fullmatch(f"{fault_line(photo, fault, where)}\n", result.output), result.output
    assert not (tmp_path / "a_explain.png").exists()


@pytest.mark.parametrize("stage", ["header", "notices", "raw mask"])
def test_a_fault_of_recnet_s_own_in_a_header_a_notice_or_a_raw_mask_fails_its_photo_alone(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    """Each is the files' share of the work: the header read for its size, the notices of how the photo was
    read, mask's --raw picture. A fault of recnet's there must not end the batch with a traceback."""
    photos = [make_photo(tmp_path / f"{name}.png", (40, 32) if name == "b" else (72, 48)) for name in "abc"]
    header_size, reading_notices, save = runner.header_size, Photo.reading_notices, imaging_write._save

    def header_size_but_b(path: Path) -> tuple[int, int] | None:
        if stage == "header" and path.name == "b.png":
            {}["colour"]  # the fault
        return header_size(path)

    def reading_notices_but_b(photo: Photo, *args: Any, **kwargs: Any) -> list[str]:
        if stage == "notices" and photo.pixels.shape[:2] == (32, 40):
            {}["colour"]
        return reading_notices(photo, *args, **kwargs)

    def save_but_b_s_raw_mask(path: Path, *args: Any, **kwargs: Any) -> None:
        if stage == "raw mask" and re.fullmatch(r"b.*_raw\.png", Path(path).name):
            {}["colour"]
        save(path, *args, **kwargs)

    monkeypatch.setattr(runner, "header_size", header_size_but_b)
    monkeypatch.setattr(Photo, "reading_notices", reading_notices_but_b)
    monkeypatch.setattr(imaging_write, "_save", save_but_b_s_raw_mask)
    out = tmp_path / "out"
    command = ["mask", "--raw"] if stage == "raw mask" else ["correct"]
    arguments = [*command, *map(str, photos), "-o", str(out), "--model", str(model_file), "--device", "cpu"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 1, result.output
    line = fault_line(photos[1], "KeyError: 'colour'", r"[\w/]+\.py")
    assert re.search(f"^{line}$", result.output, re.MULTILINE), result.output
    assert "Traceback" not in result.output
    assert {path.name[0] for path in out.iterdir()} == {"a", "c"}  # the batch went on


@pytest.mark.parametrize("error", [MemoryError(), OSError(errno.EIO, "Input/output error")])
def test_memory_or_the_system_failing_as_a_photo_is_read_is_no_fault_of_recnet_s(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """What memory and the system say is raised as it is, as before recnet's net for its own faults: not
    reported as a bug of recnet's to fail the photo alone."""
    photos = [make_photo(tmp_path / f"{name}.png") for name in "abc"]
    read_photo = runner.read_photo

    def read_but_b(path: Path) -> Photo:
        if path.name == "b.png":
            raise error
        return read_photo(path)

    monkeypatch.setattr(runner, "read_photo", read_but_b)
    arguments = ["correct", *map(str, photos), "-o", str(tmp_path / "out"), "--model", str(model_file)]
    result = CliRunner().invoke(app, [*arguments, "--device", "cpu"])
    assert result.exception is error, result.output
    assert "fault in recnet" not in result.output


@pytest.mark.parametrize("command", ["correct", "mask"])
@pytest.mark.parametrize("stage", ["read", "write"])
def test_a_gpu_that_fails_as_a_photo_is_read_or_written_stops_the_batch(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch, command: str, stage: str
) -> None:
    """A GPU's asynchronous error is met as the reader asks its free memory or the writer waits for the
    model's output: not a fault in one photo, to report, but the end of the batch (every photo would fail)."""
    photos = [make_photo(tmp_path / f"{name}.png") for name in "abc"]
    lost = RuntimeError("CUDA error: an illegal memory access was encountered")

    def fail(*args: object) -> None:
        raise lost

    if stage == "read":
        monkeypatch.setattr(Corrector, "check_room", fail)
    else:
        monkeypatch.setattr(engine.PendingCorrection, "wait_for_copy", fail)
    out = tmp_path / "out"
    arguments = [command, *map(str, photos), "-o", str(out), "--model", str(model_file), "--device", "cpu"]
    result = CliRunner().invoke(app, arguments)
    assert result.exception is lost, result.output
    assert "fault in recnet" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_a_photo_that_runs_out_of_memory_fails_alone(tmp_path: Path) -> None:
    jobs = [Job(make_photo(tmp_path / f"{name}.png"), tmp_path / f"{name}_out.png") for name in "abc"]

    computed: list[Photo] = []

    def compute(corrector: Corrector, photo: Photo, progress: object) -> Photo:
        computed.append(photo)
        if len(computed) == 2:
            raise PhotoOutOfMemoryError("not enough memory for this 0.0 MP photo: try --tile 1024")
        return photo

    def write(job: Job, photo: Photo, computed: Photo) -> float:
        job.target.write_bytes(b"corrected")
        return photo.megapixels

    corrector = Corrector(RECNet(channels=4, blocks=1), torch.device("cpu"))
    summary = run_batch(QUIET_CORRECT, jobs, Summary(), [corrector], compute, write, "Correcting")
    assert [o.status for o in summary.outcomes] == ["done", "failed", "done"]
    assert summary.outcomes[1].reason == "not enough memory for this 0.0 MP photo: try --tile 1024"


def test_a_photo_too_wide_for_its_output_format_fails_before_the_model_runs(tmp_path: Path) -> None:
    wide = make_photo(tmp_path / "panorama.png", size=(16_384, 2))
    jobs = [Job(wide, tmp_path / "panorama.webp"), Job(wide, tmp_path / "panorama.tif")]
    computed: list[Path] = []

    def compute(corrector: Corrector, photo: Photo, progress: object) -> Photo:
        computed.append(photo)
        return photo

    def write(job: Job, photo: Photo, computed: Photo) -> float:
        imaging.write_rgb8(job.target, np.zeros((2, 16_384, 3), np.uint8))
        return photo.megapixels

    corrector = Corrector(RECNet(channels=4, blocks=1), torch.device("cpu"))
    summary = run_batch(QUIET_CORRECT, jobs, Summary(), [corrector], compute, write, "Correcting")
    assert [o.status for o in summary.outcomes] == ["failed", "done"] and len(computed) == 1
    assert summary.outcomes[0].reason == (
        f"{tmp_path / 'panorama.webp'}: too large for WebP: 16384 x 2 pixels, and WebP holds at most 16,383 "
        "per side; write PNG or TIFF instead"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["panorama.png", "panorama.tif"]


@pytest.mark.parametrize(
    ("devices", "steps", "depths"),
    [
        # Half the host memory holds 3.5 steps (92 B/px) of the larger photo: one for the photo on the GPU,
        # two read ahead and written behind; the small photos alone would allow 6 (16 cores).
        (["cuda"], 3.5, [2]),
        # A CPU lane beside the GPU reads one photo ahead, and takes its share of the memory: 7 steps for
        # two lanes leave the GPU lane 3.5.
        (["cuda", "cpu"], 7, [2, 1]),
    ],
)
def test_gpu_lanes_read_ahead_as_far_as_the_largest_photo_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, devices: list[str], steps: float, depths: list[int]
) -> None:
    jobs = [  # 72 x 48 and 300 x 200 photos
        Job(make_photo(tmp_path / f"{name}.png", size), tmp_path / f"{name}_out.png")
        for name, size in (("small", (72, 48)), ("large", (300, 200)), ("small2", (72, 48)))
    ]
    step = 60_000 * batch.IN_FLIGHT_BYTES_PER_PIXEL  # the large photo's
    monkeypatch.setattr(batch, "available_host_memory", lambda: 2 * steps * step)
    monkeypatch.setattr(batch, "usable_cores", lambda: 16)
    lane_depths: list[list[int]] = []

    def run_jobs_noting_the_depths(
        jobs: list[Job], lanes: list[batch.Lane], **kwargs: object
    ) -> batch.Summary:
        lane_depths.append([lane.depth for lane in lanes])
        return batch.run_jobs(jobs, lanes, **kwargs)

    monkeypatch.setattr("recnet_cli.runner.run_jobs", run_jobs_noting_the_depths)
    # run_batch only asks where a lane runs, and whether it has room for a photo
    lanes = [
        types.SimpleNamespace(device=torch.device(device), check_room=lambda height, width: None)
        for device in devices
    ]

    def write(job: Job, photo: Photo, computed: Photo) -> float:
        job.target.write_bytes(b"corrected")
        return photo.megapixels

    summary = run_batch(QUIET_CORRECT, jobs, Summary(), lanes, lambda *args: None, write, "Correcting")
    assert [outcome.status for outcome in summary.outcomes] == ["done"] * 3
    assert lane_depths == [depths]


def test_help_paragraphs_are_one_line_each_so_the_terminal_wraps_them() -> None:
    # Typer keeps a docstring's line breaks: a paragraph wrapped in the source breaks mid-sentence in --help.
    for command in app.registered_commands:
        paragraphs = inspect.getdoc(command.callback).split("\n\n")
        for paragraph in paragraphs:
            if "Example" not in paragraph:  # example commands go one to a line
                assert "\n" not in paragraph, (command.callback.__name__, paragraph)


def test_overwrite_and_skip_existing_together_are_refused(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "shots").mkdir()
    photo = make_photo(tmp_path / "shots" / "shot.png")
    for command in ("correct", "mask"):
        result = run([command, str(photo), "--overwrite", "--skip-existing"], env)
        assert result.returncode == 2 and "choose one" in result.stderr
    assert sorted(p.name for p in photo.parent.iterdir()) == ["shot.png"]


def test_a_run_with_nothing_to_do_loads_no_model(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    # --skip-existing with every output there loaded the model, and a Hub model could not be reached offline
    (tmp_path / "shots").mkdir()
    photos = [make_photo(tmp_path / "shots" / name) for name in ("a.png", "b.png")]
    for command in ("correct", "mask"):
        done = run(
            [command, str(tmp_path / "shots"), "-o", str(tmp_path / command), "--model", str(model_file)], env
        )
        assert done.returncode == 0, done.stderr
        again = [command, str(tmp_path / "shots"), "-o", str(tmp_path / command), "--skip-existing", "--json"]
        skipped = run([*again, "--model", "acme/not-in-the-cache"], env)  # offline: fetching it would fail
        assert skipped.returncode == 0, skipped.stderr
        summary = json.loads(skipped.stdout)
        assert (summary["model"], summary["device"], summary["skipped"]) == (
            "acme/not-in-the-cache",
            "auto",
            2,
        )
        missing = run([*again, "--model", str(tmp_path / "nope.pth")], env)  # checked, as --dry-run checks it
        assert (missing.returncode, missing.stderr) == (
            2,
            f"error: {tmp_path / 'nope.pth'}: file not found\n",
        )
    (tmp_path / "empty.jpg").write_bytes(b"")  # fails as it would have with a model loaded: not "not run"
    out = str(tmp_path / "out")
    empty = run(["correct", str(tmp_path / "empty.jpg"), "-o", out, "--model", "acme/x"], env)
    assert (empty.returncode, empty.stderr.splitlines()[0]) == (
        1,
        f"error: {tmp_path / 'empty.jpg'}: empty file",
    )
    assert all(photo.is_file() for photo in photos)


def test_an_empty_suffix_without_an_output_folder_is_a_usage_error(tmp_path: Path) -> None:
    # each photo failed in its turn ("is an input file"), exit 1, for what no photo could have escaped
    photos = [str(make_photo(tmp_path / name)) for name in ("a.png", "b.png")]
    result = CliRunner().invoke(app, ["correct", *photos, "--suffix", ""])
    assert (result.exit_code, result.stderr) == (
        2,
        'error: --suffix "": without -o or --ext each output would be its photo; give a suffix, or -o '
        "a folder\n",
    )
    as_jpeg = CliRunner().invoke(app, ["correct", photos[0], "--suffix", "", "--ext", "jpg", "-n"])
    assert as_jpeg.exit_code == 0 and as_jpeg.stdout == f"{photos[0]} -> {tmp_path / 'a.jpg'}\n"
    jpeg = make_photo(tmp_path / "c.jpg")  # mask writes PNG: a JPEG's mask is not the photo
    masked = CliRunner().invoke(app, ["mask", str(jpeg), "--suffix", "", "-n"])
    assert masked.exit_code == 0 and masked.stdout == f"{jpeg} -> {tmp_path / 'c.png'}\n"


def test_inputs_are_never_overwritten(tmp_path: Path, env: dict[str, str], model_file: Path) -> None:
    source = make_photo(tmp_path / "shot.png")
    before = source.read_bytes()
    same = run(["correct", str(source), "-o", str(source), "--model", str(model_file), "--overwrite"], env)
    assert same.returncode == 1 and "input file" in same.stderr
    assert source.read_bytes() == before


def test_existing_outputs_are_kept_unless_overwrite(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    source = make_photo(tmp_path / "shot.png")
    target = tmp_path / "shot_recnet.png"
    target.write_bytes(b"keep me")
    as_recnet_wrote(target)  # an earlier run's: --overwrite replaces only what recnet wrote (test_batch)
    kept = run(["correct", str(source), "--model", str(model_file)], env)
    assert kept.returncode == 1 and "--overwrite" in kept.stderr and target.read_bytes() == b"keep me"
    skipped = run(["correct", str(source), "--model", str(model_file), "--skip-existing"], env)
    assert skipped.returncode == 0 and target.read_bytes() == b"keep me"
    replaced = run(["correct", str(source), "--model", str(model_file), "--overwrite", "--quiet"], env)
    assert replaced.returncode == 0 and target.read_bytes() != b"keep me"
    with Image.open(target) as out:
        assert out.size == (72, 48)


def test_sixteen_bit_and_alpha_survive(tmp_path: Path, env: dict[str, str], model_file: Path) -> None:
    rgba = np.random.default_rng(1).integers(0, 256, (40, 56, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "cutout.png")  # four 8-bit channels: RGBA
    grey16 = np.arange(40 * 56, dtype=np.uint16).reshape(40, 56) * 29
    Image.fromarray(grey16).save(tmp_path / "scan.png")
    result = run(
        [
            "correct",
            str(tmp_path / "cutout.png"),
            str(tmp_path / "scan.png"),
            "-o",
            str(tmp_path / "out"),
            "--model",
            str(model_file),
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "out" / "cutout.png") as out:
        assert out.mode == "RGBA"
        assert np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    with Image.open(tmp_path / "out" / "scan.png") as out:
        assert out.mode.startswith("I")  # still 16-bit grayscale


def test_strength_blends_the_correction_into_the_photo(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    source = make_photo(tmp_path / "shot.png")
    outputs = {}
    for strength in ("1", "0.5", "0"):
        target = tmp_path / f"out-{strength}.png"
        arguments = ["correct", str(source), "-o", str(target), "--model", str(model_file), "--json"]
        result = run([*arguments, "--strength", strength], env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["strength"] == float(strength)
        outputs[strength] = read_rgb(target).astype(int)
    photo = read_rgb(source).astype(int)
    assert np.abs(outputs["0"] - photo).max() == 0
    assert np.abs(outputs["1"] - photo).max() > 10
    # halfway: 2 x (half a level of rounding) + half a level is under 2, so at most 1 in whole levels
    assert np.abs(2 * outputs["0.5"] - outputs["1"] - photo).max() <= 1
    refused = run(["correct", str(source), "--model", str(model_file), "--strength", "1.5"], env)
    assert refused.returncode == 2 and "--strength" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "shot_recnet.png").exists()


def test_correct_writes_the_corrections_lightness_in_the_photos_colours_unless_model_colour(
    tmp_path: Path, model_file: Path
) -> None:
    grey = np.repeat(np.linspace(0, 255, 48 * 72).reshape(48, 72, 1), 3, axis=2).astype(np.uint8)
    source = tmp_path / "grey-as-rgb.png"
    Image.fromarray(grey).save(source)  # an RGB photo without colour: nothing for a cast to hide in
    written = {}
    for options in ([], ["--keep-colour"], ["--model-colour"]):
        target = tmp_path / f"out{''.join(options)}.png"
        command = ["correct", str(source), "-o", str(target), "--model", str(model_file), "--strength", "1"]
        result = CliRunner().invoke(app, [*command, *options, "--json"])
        assert result.exit_code == 0, result.stderr
        keep_colour = options != ["--model-colour"]  # the default keeps the photo's colours
        assert json.loads(result.stdout)["keep_colour"] is keep_colour  # as --json records it
        written[tuple(options)] = read_rgb(target).astype(int)
    model_colours, kept = written[("--model-colour",)], written[()]
    assert np.ptp(model_colours, axis=2).max() > 10  # the untrained model's colours
    assert np.ptp(kept, axis=2).max() <= 1 and np.array_equal(kept, written[("--keep-colour",)])
    lightness = np.abs(kept[..., 0] - luma(model_colours.astype(np.float32)))
    assert lightness.max() <= 2  # the model's lightness (each output rounded to 8 bits)


def test_eval_and_explain_correct_in_the_colours_correct_writes(tmp_path: Path, model_file: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    make_photo(photos / "shot.png", size=(64, 48))
    pictures = {}
    for colours in ("--keep-colour", "--model-colour", None):
        options = ["--model", str(model_file), *([colours] if colours else [])]
        full = [*options, "--strength", "1"]  # what explain shows
        out = tmp_path / f"{colours}"
        commands = {
            "correct": ["correct", str(photos / "shot.png"), "-o", str(out / "correct.png"), *full],
            "eval": ["eval", "--inputs", str(photos), "--targets", str(photos), "--save", str(out), *full],
            "explain": ["explain", str(photos / "shot.png"), "-o", str(out / "explain.png"), *options],
        }
        for command in commands.values():
            result = CliRunner().invoke(app, command)
            assert result.exit_code == 0, result.output
        pictures[colours] = {name: read_rgb(out / f"{name}.png") for name in ("correct", "shot", "explain")}
    for colours in ("--keep-colour", "--model-colour"):
        assert np.array_equal(pictures[colours]["shot"], pictures[colours]["correct"])  # eval saved that
    kept, model_colours, default = pictures["--keep-colour"], pictures["--model-colour"], pictures[None]
    assert not np.array_equal(kept["correct"], model_colours["correct"])  # the untrained model's colours
    assert not np.array_equal(kept["explain"], model_colours["explain"])
    assert all(np.array_equal(default[name], kept[name]) for name in kept)  # the default keeps the colours


def test_eval_corrects_a_deep_or_transparent_photo_as_correct_does(tmp_path: Path, model_file: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(3)
    cv2.imwrite(str(photos / "deep.png"), rng.integers(0, 65536, (48, 64, 3), dtype=np.uint16))
    cutout = rng.integers(0, 256, (48, 64, 4), dtype=np.uint8)
    cutout[..., 3] = 255
    cutout[:, :20, 3] = 0  # hidden: the model corrects a fill there, not these colours
    Image.fromarray(cutout).save(photos / "cutout.png")
    options = ["--model", str(model_file), "--strength", "1"]
    evaluated = CliRunner().invoke(
        app,
        [
            "eval",
            "--inputs",
            str(photos),
            "--targets",
            str(photos),
            "--save",
            str(tmp_path / "saved"),
            *options,
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    # each input is its own ground truth: its PSNR is inf, which the mean below it counts as 100 dB
    caption = "a PSNR above 100 dB (inf: identical to the ground truth) counts as 100 in the mean"
    assert caption in " ".join(evaluated.stdout.split())
    for name in ("deep.png", "cutout.png"):
        corrected = tmp_path / "corrected" / name
        result = CliRunner().invoke(app, ["correct", str(photos / name), "-o", str(corrected), *options])
        assert result.exit_code == 0, result.output
        assert np.array_equal(read_rgb(tmp_path / "saved" / name), read_rgb(corrected)), name
    # The baseline is the input as corrected: at --strength 0 the scores are the baseline's, alpha or not
    unchanged = CliRunner().invoke(
        app, ["eval", "--inputs", str(photos), "--targets", str(photos), "--strength", "0", "--json"]
    )
    assert unchanged.exit_code == 0, unchanged.output
    scores = json.loads(unchanged.stdout)["per_image"]
    assert [(image["psnr"], image["ssim"]) for image in scores] == [
        (image["identity_psnr"], image["identity_ssim"]) for image in scores
    ]
    # Only what shows is scored: the cutout against itself is a perfect match (it scored 16 dB, the fill's)
    assert [(image["identity_psnr"], image["identity_ssim"]) for image in scores] == [(None, 1.0)] * 2


@pytest.mark.parametrize("strength", ["1.5", "-0.1", "half", "nan"])
def test_a_strength_that_is_not_auto_or_zero_to_one_is_refused(
    tmp_path: Path, env: dict[str, str], model_file: Path, strength: str
) -> None:
    source = make_photo(tmp_path / "shot.png")
    error = (
        f"error: --strength {strength}: use auto or a number from 0 (no change) to 1 (the full correction)"
    )
    refused = run(["correct", str(source), "--model", str(model_file), f"--strength={strength}"], env)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines() == [error]
    assert not (tmp_path / "shot_recnet.png").exists()
    # Checked as the command line is read: neither a dry run nor a photo or folder not found hides it.
    for command in (
        ["correct", str(source), "--dry-run"],
        ["correct", str(tmp_path / "missing.jpg")],
        ["eval", "--pairs", str(tmp_path / "missing")],
    ):
        early = run([*command, f"--strength={strength}"], env)
        assert (early.returncode, early.stderr.strip()) == (2, error), command


def test_json_gives_every_file_of_correct_a_strength_null_for_one_not_corrected(
    tmp_path: Path, model_file: Path
) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    make_photo(shots / "a.png")
    (shots / "b.jpg").write_bytes(b"")  # fails: an empty file
    options = [str(shots), "-o", str(tmp_path / "out"), "--model", str(model_file), "--json"]
    corrected = CliRunner().invoke(app, ["correct", *options, "--save-mask"])
    assert corrected.exit_code == 1
    files = {Path(entry["input"]).name: entry for entry in json.loads(corrected.stdout)["files"]}
    assert (files["a.png"]["strength"], files["b.jpg"]["strength"]) == (1.0, None)
    assert files["b.jpg"]["companions"] == [str(tmp_path / "out" / "b_mask.png")]  # named, not written
    masked = CliRunner().invoke(app, ["mask", *options])
    assert all("strength" not in entry for entry in json.loads(masked.stdout)["files"])


def test_auto_strength_without_a_calibration_is_the_full_correction_and_says_so(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    source = make_photo(tmp_path / "shot.png")
    auto = run(
        ["correct", str(source), "-o", str(tmp_path / "auto.png"), "--model", str(model_file), "--json"], env
    )
    assert auto.returncode == 0, auto.stderr
    report = json.loads(auto.stdout)
    assert report["strength"] == "auto" and report["files"][0]["strength"] == 1.0
    assert f"{model_file} has no strength calibration: photos get the full correction" in auto.stderr
    assert "strength auto:" not in auto.stderr  # the note has said it: every photo gets 1
    full = run(
        [
            "correct",
            str(source),
            "-o",
            str(tmp_path / "full.png"),
            "--model",
            str(model_file),
            "--strength",
            "1",
        ],
        env,
    )
    assert full.returncode == 0, full.stderr
    assert np.array_equal(read_rgb(tmp_path / "auto.png"), read_rgb(tmp_path / "full.png"))
    assert "calibration" not in full.stderr


def test_calibrate_writes_a_model_whose_strength_correct_and_eval_use(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    calibrated = tmp_path / "calibrated.safetensors"
    arguments = [
        "calibrate",
        "--photos",
        str(TRAIN_PHOTOS),
        "--model",
        str(model_file),
        "-o",
        str(calibrated),
    ]
    result = run([*arguments, "--size", "64", "--count", "4", "--json"], env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["about"].startswith(f"4 training photos in {TRAIN_PHOTOS} x 5 regimes at up to 64 px")
    assert report["about"].endswith(", corrected in the photos' colours")  # as correct applies it
    assert set(report["held_out"]) == {"under", "over", "mixed", "nearly right", "training mix"}
    assert all(score["pairs"] == 1 for score in report["held_out"].values())
    assert "note: fitted on only 20 pairs; a fit on fewer than 46" in result.stderr  # 4 photos x 5 regimes
    assert not result.stderr.startswith("calibrated") and "\ncalibrated" not in result.stderr  # JSON alone
    card = json.loads(calibrated.with_suffix(".json").read_text())
    assert card["description"] == "untrained test fixture"  # the model's card is kept
    assert (card["name"], card["calibrated_from"]) == ("calibrated", str(model_file))
    assert card["calibrated_note"].startswith(f"the weights of {model_file}, unchanged")
    assert card["auto_strength"]["features"] == "exposure-v1"
    usage = "RECNet weights for `recnet`: use them with `--model path/to/calibrated.safetensors`"
    assert calibrated.with_suffix(".md").read_text().startswith(f"# calibrated\n\n{usage}")
    note = {"auto_strength_command": "how the first calibration was made", "status": "default model"}
    calibrated.with_suffix(".json").write_text(json.dumps(card | note))  # as the bundled model's card has
    again = tmp_path / "again.safetensors"
    recalibrated = run(
        [*arguments[:-3], str(calibrated), "-o", str(again), "--size=64", "--count=4", "--model-colour"], env
    )
    assert recalibrated.returncode == 0, recalibrated.stderr
    again_card = json.loads(again.with_suffix(".json").read_text())
    assert not {"auto_strength_command", "status"} & again_card.keys()
    model_colours = ", corrected in the model's colours (--model-colour)"
    assert again_card["auto_strength"]["about"].endswith(model_colours)
    calibrated.with_suffix(".json").write_text(json.dumps(card))
    before = calibrated.read_bytes()
    in_place = run([*arguments[:-1], str(calibrated), "--model", str(calibrated), "--overwrite"], env)
    assert in_place.returncode == 2 and "that is the model being calibrated" in in_place.stderr
    # without --overwrite it said "exists (use --overwrite)", which was then refused
    unasked = run([*arguments[:-1], str(calibrated), "--model", str(calibrated)], env)
    assert unasked.stderr == (
        f"error: -o {calibrated}: that is the model being calibrated ({calibrated}); write to a new file\n"
    )
    assert calibrated.read_bytes() == before
    (tmp_path / "mine.md").write_text("my notes\n")  # a file of the user's where a card goes
    notes = run([*arguments[:-1], str(tmp_path / "mine.safetensors"), "--overwrite"], env)
    assert (notes.returncode, notes.stderr) == (
        2,
        f"error: -o {tmp_path / 'mine.safetensors'}: {tmp_path / 'mine.md'} exists, and recnet did not write "
        "it (no model card): move it away\n",
    )
    assert (tmp_path / "mine.md").read_text() == "my notes\n"

    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(3):
        make_photo(photos / f"shot{index}.png", size=(60 + 8 * index, 40))
    corrected = run(
        ["correct", str(photos), "-o", str(tmp_path / "out"), "--model", str(calibrated), "--json"], env
    )
    assert corrected.returncode == 0, corrected.stderr
    strengths = [entry["strength"] for entry in json.loads(corrected.stdout)["files"]]
    assert len(strengths) == 3 and all(0 <= s <= 1 and s == round(s, 2) for s in strengths)
    assert "strength auto: " in corrected.stderr and "calibration" not in corrected.stderr
    scored = run(
        ["eval", "--inputs", str(photos), "--targets", str(photos), "--model", str(calibrated), "--json"], env
    )
    assert scored.returncode == 0, scored.stderr
    assert [image["strength"] for image in json.loads(scored.stdout)["per_image"]] == strengths
    assert json.loads(scored.stdout)["keep_colour"] is True  # what correct wrote: the photos' colours
    table = run(["eval", "--inputs", str(photos), "--targets", str(photos), "--model", str(calibrated)], env)
    assert table.returncode == 0, table.stderr
    assert "strength" in table.stdout and f"{strengths[0]:.2f}" in table.stdout

    again = run(arguments, env)
    assert again.returncode == 2 and "exists (use --overwrite)" in again.stderr
    wrong = run([*arguments[:-1], str(tmp_path / "calibrated.pth")], env)
    assert wrong.returncode == 2 and "is written as .safetensors" in wrong.stderr
    slashed = f"{tmp_path / 'new.safetensors'}/"  # a file was written there
    folder = run([*arguments[:-1], slashed], env)
    reason = "a folder; name the calibrated model's .safetensors file"
    assert (folder.returncode, folder.stderr) == (2, f"error: -o {slashed}: {reason}\n")
    assert not (tmp_path / "new.safetensors").exists()
    missing = run(
        ["calibrate", "--photos", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.safetensors")], env
    )
    assert (missing.returncode, missing.stderr) == (2, f"error: {tmp_path / 'nowhere'}: no such folder\n")
    both = run([*arguments[:-1], str(tmp_path / "new.safetensors"), "--pairs", str(tmp_path)], env)
    assert both.returncode == 2 and "give one of --photos DIR, --pairs DIR, or both" in both.stderr
    blocked = tmp_path / "photos" / "shot0.png" / "calibrated.safetensors"  # refused before calibrating
    unwritable = run([*arguments[:-1], str(blocked)], env)
    assert unwritable.returncode == 2 and "Calibrating" not in unwritable.stderr
    file_in_the_way = f"cannot create folder {blocked.parent}: {blocked.parent} is a file"
    assert f"-o {blocked}: {file_in_the_way}" in unwritable.stderr
    for failed in (again, wrong, missing, both, unwritable):
        assert len(failed.stderr.strip().splitlines()) == 1


def test_the_strength_auto_line_gives_two_decimals_and_one_value_when_all_photos_share_it() -> None:
    # The README quotes `strength auto: 0.13 to 0.99, mean 0.65`: shares were printed as 0.3 and 1. The mean
    # of those four is 0.645, a tie, which Python 3.11 rounded down and 3.13 up (sum() became compensated).
    assert console.strength_range([0.31]) == "0.31"
    assert console.strength_range([0.3]) == "0.30"
    assert console.strength_range([0.13, 0.89, 0.99, 0.57]) == "0.13 to 0.99, mean 0.65"
    assert console.strength_range([0.27, 0.3]) == "0.27 to 0.30, mean 0.29"
    assert console.strength_range([0.5, 1.0]) == "0.50 to 1.00, mean 0.75"
    assert console.strength_range([0.89, 0.89, 0.89]) == "0.89 for each of the 3 photos"


def test_names_too_long_for_the_file_system_are_one_line_errors(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    photo = make_photo(tmp_path / "shot.png")
    long = str(tmp_path / ("a" * 300))
    longest = make_photo(tmp_path / ("b" * 251 + ".png"))  # 255 bytes: the sheet's name would not fit
    cases = [  # explain's sheet that cannot be written exits 1, as correct's photo does
        (["explain", str(photo), "-o", f"{long}.png"], f"output {long}.png: file name too long", 1),
        (["explain", str(longest)], f"output {tmp_path / ('b' * 251)}_explain.png: file name too long", 1),
        (["correct", str(photo), "--model", f"{long}.safetensors"], f"{long}.safetensors: file not found", 2),
        (["eval", "--pairs", long, "--model", str(model_file)], f"{long}: file name too long", 2),
        (["calibrate", "--photos", str(tmp_path), "-o", f"{long}.safetensors"], "file name too long", 2),
    ]
    for args, message, status in cases:
        result = run(args, env)
        assert result.returncode == status, (args, result.stderr)
        assert result.stderr.splitlines()[-1].startswith("error: ") and message in result.stderr, args
        assert "Traceback" not in result.stderr


def test_calibrate_fits_on_real_pairs(tmp_path: Path, env: dict[str, str], model_file: Path) -> None:
    inputs, targets = tmp_path / "shots", tmp_path / "edited"
    inputs.mkdir()
    targets.mkdir()
    for photo in sorted(TRAIN_PHOTOS.glob("*.jpg")):
        pixels = read_rgb(photo)
        cv2.imwrite(str(targets / f"{photo.stem}.png"), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
        dark = (pixels.astype(np.float32) * 0.4).astype(np.uint8)
        cv2.imwrite(str(inputs / f"{photo.stem}.png"), cv2.cvtColor(dark, cv2.COLOR_RGB2BGR))
    calibrated = tmp_path / "paired.safetensors"
    arguments = ["calibrate", "--inputs", str(inputs), "--targets", str(targets), "-o", str(calibrated)]
    result = run([*arguments, "--model", str(model_file), "--size", "64", "--json"], env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (
        report["about"]
        == f"4 image pairs of {inputs} and {targets} at up to 64 px, corrected in the photos' colours"
    )
    assert list(report["held_out"]) == ["pairs"] and report["held_out"]["pairs"]["pairs"] == 1
    assert (
        json.loads(calibrated.with_suffix(".json").read_text())["auto_strength"]["about"] == report["about"]
    )


def test_calibrate_says_in_one_line_when_memory_runs_out(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process: a subprocess cannot be made to run out of memory at a chosen photo.
    from recnet_cli.cli import app

    def out_of_memory(self: Corrector, rgb: np.ndarray, progress: object = None) -> object:
        raise PhotoOutOfMemoryError("not enough memory for this 0.0 MP photo: try --tile 1024")

    monkeypatch.setattr(Corrector, "correct", out_of_memory)
    monkeypatch.setenv("RECNET_WEIGHTS_DIR", str(tmp_path))
    calibrated = tmp_path / "calibrated.safetensors"
    arguments = ["calibrate", "--photos", str(TRAIN_PHOTOS), "--model", str(model_file), "--size", "64"]
    status = app([*arguments, "--count", "1", "-o", str(calibrated), "--quiet"], standalone_mode=False)
    assert status == 1
    error = capsys.readouterr().err.strip()
    assert error == "error: not enough memory to calibrate at --size 64: try a smaller --size"
    assert not calibrated.exists()


def test_mask_writes_a_picture_and_the_raw_16_bit_mask(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    source = make_photo(tmp_path / "shot.jpg")
    result = run(["mask", str(source), "--raw", "--model", str(model_file)], env)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "shot_mask.png") as picture:
        assert picture.mode == "RGB" and picture.size == (72, 48)
    with Image.open(tmp_path / "shot_mask_raw.png") as raw:
        assert raw.size == (72, 48) and raw.mode.startswith("I;16")
        values = np.asarray(raw)
        assert values.dtype == np.uint16 and 0 < values.mean() < 65535


def test_mask_draws_what_a_photo_s_alpha_hides_as_a_checkerboard(tmp_path: Path, model_file: Path) -> None:
    # as correct's mask pictures do: the colours under full transparency are no part of the photo shown
    rgba = np.random.default_rng(6).integers(0, 256, (48, 64, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:16, :16, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "cutout.png")
    result = CliRunner().invoke(app, ["mask", str(tmp_path / "cutout.png"), "--model", str(model_file)])
    assert result.exit_code == 0, result.output
    picture = np.asarray(Image.open(tmp_path / "cutout_mask.png"))
    assert (picture[:8, :8] == 204).all() and (picture[:8, 8:16] == 153).all()


def test_a_raw_mask_left_without_its_picture_is_written_again_by_skip_existing(
    tmp_path: Path, model_file: Path
) -> None:
    skip_unless_marks_kept(tmp_path)  # --skip-existing replaces only what recnet left
    photo = make_photo(tmp_path / "a.png")
    command = ["mask", str(photo), "-o", str(tmp_path / "out"), "--raw", "--model", str(model_file)]
    first = CliRunner().invoke(app, command)
    assert first.exit_code == 0, first.output
    (tmp_path / "out" / "a_mask.png").unlink()  # as a run stopped between the raw mask and the picture
    resumed = CliRunner().invoke(app, [*command, "--skip-existing"])
    assert resumed.exit_code == 0, resumed.output
    assert (tmp_path / "out" / "a_mask.png").is_file() and (tmp_path / "out" / "a_mask_raw.png").is_file()


ADOBE_RGB_JPEG = Path(__file__).parent / "data" / "adobe-rgb-option-file.jpg"  # a camera's, in Adobe RGB


def test_pictures_drawn_of_a_photo_in_another_colour_space_are_in_srgb_s_colours(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    # Masks, report previews and explain sheets carry no colour profile, so viewers show them as sRGB: an
    # Adobe RGB photo's pixels drawn as they are showed its saturated colours up to 127 levels off.
    photo = imaging.read_photo(ADOBE_RGB_JPEG)
    shown = imaging.shown_in_srgb(photo, photo.pixels)
    assert np.abs(shown - photo.pixels).max() > 0.2  # the two differ where it matters
    run_mask = run(
        ["mask", str(ADOBE_RGB_JPEG), "-o", str(tmp_path / "m.png"), "--raw", "--model", str(model_file)], env
    )
    assert run_mask.returncode == 0, run_mask.stderr
    mask = np.asarray(Image.open(tmp_path / "m_raw.png"), dtype=np.float32) / 65535
    expected = mask_overlay(shown, mask).astype(int)
    assert np.abs(np.asarray(Image.open(tmp_path / "m.png"), dtype=int) - expected).max() <= 1
    out = str(tmp_path / "out") + "/"
    command = [
        "correct",
        str(ADOBE_RGB_JPEG),
        "-o",
        out,
        "--report",
        "--strength",
        "0",
        "--model",
        str(model_file),
    ]
    corrected = run(command, env)
    assert corrected.returncode == 0, corrected.stderr
    previews = tmp_path / "out" / ".recnet-report"
    for kind in ("before", "after"):  # strength 0: the photo, both
        preview = np.asarray(Image.open(previews / f"{ADOBE_RGB_JPEG.name}-{kind}.jpg"), dtype=float) / 255
        assert np.abs(preview - shown).mean() < np.abs(preview - photo.pixels).mean() / 3


def test_what_full_transparency_hides_plays_no_part_in_the_correction(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    # A cutout exported on a transparent black background came out washed out (auto strength 0.99 against
    # 0.18 for the photo alone), on white darkened: the model's statistics of the whole image saw them.
    rng = np.random.default_rng(6)
    photo = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    alpha = np.zeros((48, 64, 1), np.uint8)
    alpha[12:36, 16:48] = 255
    for name, hidden in (("black", 0), ("white", 255)):
        rgba = np.concatenate([np.where(alpha > 0, photo, hidden).astype(np.uint8), alpha], axis=2)
        Image.fromarray(rgba).save(tmp_path / f"{name}.png")
    command = [
        "correct",
        str(tmp_path / "black.png"),
        str(tmp_path / "white.png"),
        "-o",
        str(tmp_path / "out"),
    ]
    result = run([*command, "--report", "--json", "--model", str(model_file)], env)  # and the mask pictures
    assert result.returncode == 0, result.stderr
    outputs = {Path(f["output"]).stem: f for f in json.loads(result.stdout)["files"]}
    assert outputs["black"]["strength"] == outputs["white"]["strength"]
    black, white = (np.asarray(Image.open(tmp_path / "out" / f"{name}.png")) for name in ("black", "white"))
    assert np.array_equal(black[..., 3], alpha[..., 0]) and np.array_equal(white[..., 3], alpha[..., 0])
    assert np.array_equal(black[12:36, 16:48], white[12:36, 16:48])
    masks = [np.asarray(Image.open(tmp_path / "out" / f"{name}_mask.png")) for name in ("black", "white")]
    assert np.array_equal(masks[0], masks[1])
    # The pictures drawn of it show what is transparent as image editors do, over a checkerboard (they showed
    # the fill); the report's numbers are those of what shows
    assert (masks[0][:8, :8] == 204).all() and (masks[0][:8, 8:16] == 153).all()
    previews = tmp_path / "out" / ".recnet-report"
    for kind in ("before", "after", "mask"):
        preview = np.asarray(Image.open(previews / f"black.png-{kind}.jpg"), np.float32)
        assert abs(preview[1:7, 1:7].mean() - 204) < 3 and abs(preview[1:7, 9:15].mean() - 153) < 3
    card = json.loads((previews / "black.png-card.json").read_text())
    visible_luma = (photo[12:36, 16:48].astype(np.float32) @ np.float32([0.299, 0.587, 0.114])).mean() / 255
    assert card["before_stats"]["mean_luma"] == pytest.approx(visible_luma, abs=1e-4)


def jpeg_sizes_by_quality(command: str, source: str, folder: Path, model_file: Path) -> dict[str, int]:
    """The sizes of ``command``'s JPEG output of ``source`` with no --quality ("default") and at 20 ("20")."""
    sizes = {}
    for quality, options in (("default", []), ("20", ["--quality", "20"])):
        target = folder / f"{command}-{quality}.jpg"
        result = CliRunner().invoke(
            app, [command, source, "-o", str(target), *options, "--model", str(model_file)]
        )
        assert result.exit_code == 0 and "--quality" not in result.stderr, result.stderr
        sizes[quality] = target.stat().st_size
    return sizes


def test_mask_pictures_take_a_quality_where_their_format_is_lossy(tmp_path: Path, model_file: Path) -> None:
    source = str(make_photo(tmp_path / "shot.jpg", size=(96, 64)))
    sizes = jpeg_sizes_by_quality("mask", source, tmp_path, model_file)
    assert sizes["20"] < sizes["default"] / 2  # 95 when none is given
    png = CliRunner().invoke(app, ["mask", source, "--quality", "20", "-n", "--model", str(model_file)])
    assert png.exit_code == 0, png.stderr
    assert "note: --quality sets JPEG, WebP, AVIF and HEIF outputs: PNG outputs are lossless" in png.stderr


def test_corrected_photos_take_a_quality_where_their_format_is_lossy(
    tmp_path: Path, model_file: Path
) -> None:
    source = str(make_photo(tmp_path / "shot.jpg", size=(96, 64)))
    sizes = jpeg_sizes_by_quality("correct", source, tmp_path, model_file)
    assert sizes["20"] < sizes["default"] / 2


def test_an_output_name_and_ext_that_disagree_are_refused_and_the_name_decides_otherwise(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    source = make_photo(tmp_path / "shot.jpg")
    clash = run(["correct", str(source), "-o", str(tmp_path / "out.png"), "--ext", "jpg"], env)
    assert clash.returncode == 2 and "is a PNG name but --ext asks for jpg" in clash.stderr
    assert not (tmp_path / "out.png").exists()
    named = run(["mask", str(source), "-o", str(tmp_path / "m.jpg"), "--model", str(model_file)], env)
    assert named.returncode == 0, named.stderr  # mask's PNG default gives way to a name
    with Image.open(tmp_path / "m.jpg") as picture:
        assert picture.format == "JPEG"


def test_every_device_of_a_list_takes_photos_of_the_batch(tmp_path: Path) -> None:
    jobs = [Job(make_photo(tmp_path / f"{i}.png"), tmp_path / f"{i}_out.png") for i in range(6)]
    lanes = [Corrector(RECNet(channels=4, blocks=1), torch.device("cpu")) for _ in range(2)]
    taken: dict[int, list[Photo]] = {0: [], 1: []}

    def compute(corrector: Corrector, photo: Photo, progress: object) -> Photo:
        taken[lanes.index(corrector)].append(photo)
        time.sleep(0.05)  # a photo's compute: the other lane takes the next
        return photo

    def write(job: Job, photo: Photo, computed: Photo) -> float:
        job.target.write_bytes(b"corrected")
        return photo.megapixels

    summary = run_batch(QUIET_CORRECT, jobs, Summary(), lanes, compute, write, "Correcting")
    assert summary.count("done") == 6 and all(taken.values()) and len(taken[0] + taken[1]) == 6


def test_a_device_list_gives_the_pictures_one_device_gives(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    names = [make_photo(shots / f"{i}.png", size=(40 + 8 * i, 32)).name for i in range(6)]
    outputs = {}
    for devices in ("cpu", "cpu,cpu"):
        out = tmp_path / devices.replace(",", "-")
        result = run(
            [
                "correct",
                str(shots),
                "-o",
                str(out),
                "--model",
                str(model_file),
                "--device",
                devices,
                "--json",
            ],
            env,
        )
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["device"] == devices and [Path(f["input"]).name for f in summary["files"]] == names
        outputs[devices] = [np.asarray(Image.open(out / name)) for name in names]
    assert all(np.array_equal(a, b) for a, b in zip(*outputs.values(), strict=True))
    refused = run(["explain", str(shots / names[0]), "--model", str(model_file), "--device", "cpu,cpu"], env)
    assert refused.returncode == 2 and "runs on one device" in refused.stderr
    (shots / f"{Path(names[0]).stem}_explain.png").write_bytes(b"mine")  # said after the mistake in --device
    again = run(["explain", str(shots / names[0]), "--model", str(model_file), "--device", "cpu,cpu"], env)
    assert again.returncode == 2 and "runs on one device" in again.stderr


def test_no_bundled_model_says_how_to_pass_one(tmp_path: Path, env: dict[str, str]) -> None:
    source = make_photo(tmp_path / "shot.jpg")
    result = run(["correct", str(source)], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no bundled default model" in lines[0] and "--model" in lines[0]
    assert not (tmp_path / "shot_recnet.jpg").exists()


def test_missing_input_is_a_one_line_error(tmp_path: Path, env: dict[str, str], model_file: Path) -> None:
    result = run(["correct", str(tmp_path / "nope.jpg"), "--model", str(model_file)], env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope.jpg'}: no such file or folder"]
    scripted = run(["mask", str(tmp_path / "nope.jpg"), str(tmp_path), "--json"], env)
    assert scripted.returncode == 1
    summary = json.loads(scripted.stdout)
    assert (summary["done"], summary["failed"]) == (0, 2)
    assert [f["reason"] for f in summary["files"]] == ["no such file or folder", "no images in this folder"]


def test_json_has_the_same_fields_whether_the_model_ran_or_not(tmp_path: Path, model_file: Path) -> None:
    photo, empty = str(make_photo(tmp_path / "a.png")), tmp_path / "empty"
    empty.mkdir()
    model = ["--model", str(model_file)]
    records = {}
    for name, command in (
        ("planned", ["correct", photo, str(empty), "-n", *model]),
        ("ran", ["correct", photo, str(empty), *model]),
        ("nothing found", ["correct", str(empty), *model]),
        ("nothing found to plan", ["correct", str(empty), "-n", *model]),
        ("mask planned", ["mask", photo, "-n", *model]),
        ("mask nothing found", ["mask", str(empty), *model]),
    ):
        result = CliRunner().invoke(app, [*command, "--json", "-q"])
        assert result.exit_code in (0, 1), result.stderr
        records[name] = json.loads(result.stdout)
    for name, record in records.items():
        corrected = "mask" not in name  # mask gives no strength
        assert {"model", "device"} <= record.keys() and ("strength" in record) is corrected, name
        assert all(("strength" in file) is corrected for file in record["files"]), name
    assert records["planned"]["model"] == str(model_file)  # as given
    assert records["ran"]["model"].endswith(model_file.name)
    assert [f["strength"] for f in records["ran"]["files"]] == [1.0, None]  # no calibration: all of it
    assert [f["strength"] for f in records["planned"]["files"]] == [None, None]
    assert records["nothing found"]["files"][0]["strength"] is None
    plans = {"planned": 1, "mask planned": 1, "nothing found to plan": 0}  # whether it found images or not
    for name, record in records.items():
        expected = (True, plans[name]) if name in plans else (None, None)
        assert (record.get("dry_run"), record.get("planned")) == expected, name


def test_json_names_the_model_so_that_it_can_be_given_again_from_any_folder(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = make_photo(tmp_path / "a.png")
    monkeypatch.chdir(model_file.parent)  # the model named relative to the working folder
    command = [
        "correct",
        str(photo),
        "-o",
        str(tmp_path / "b.png"),
        "--model",
        model_file.name,
        "--json",
        "-q",
    ]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["model"] == os.path.join(os.getcwd(), model_file.name)


def test_a_dash_is_refused_as_standard_input_or_output_but_read_as_a_file_named_so(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    # Other tools read `-` as standard input or output; recnet does neither, and says so rather than
    # looking for a file or making a folder named `-`.
    here = tmp_path / "here"
    here.mkdir()
    make_photo(here / "shot.jpg")
    piped = run(["correct", "-", "-o", "fixed.jpg", "--model", str(model_file)], env, cwd=here)
    assert piped.returncode == 1
    streams = "recnet reads and writes photo files, not standard input or output"
    assert piped.stderr.strip().splitlines() == [f"error: -: {streams}; save the photo to a file first"]
    for command in ("correct", "mask", "explain"):
        result = run([command, "shot.jpg", "-o", "-", "--model", str(model_file)], env, cwd=here)
        assert (result.returncode, result.stderr) == (
            2,
            f"error: -o -: {streams}; name a file or a folder (./- for a folder named -)\n",
        )
    assert sorted(path.name for path in here.iterdir()) == ["shot.jpg"]
    shutil.copy(here / "shot.jpg", here / "-")
    named = run(["correct", "-", "-o", "fixed.jpg", "--model", str(model_file), "-q"], env, cwd=here)
    assert named.returncode == 0, named.stderr
    assert (here / "fixed.jpg").is_file()


def test_a_suffix_with_a_folder_in_it_and_an_endless_size_are_usage_errors(
    tmp_path: Path, env: dict[str, str]
) -> None:
    photo = make_photo(tmp_path / "shot.jpg")
    for arguments, complaint in (
        (["correct", str(photo), "--suffix", "/x", "-n"], "cannot hold a folder separator"),
        (["bench", "--mp", "inf"], "use a photo size from 0.01 to 1,000,000 megapixels"),
    ):
        result = run(arguments, env)
        assert result.returncode == 2 and complaint in " ".join(result.stderr.split()), result.stderr
    assert not list(tmp_path.glob("shot_*"))


@pytest.mark.parametrize("platform", ["win32", "linux"])
def test_a_suffix_windows_takes_in_no_file_name_is_refused_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    # on NTFS, photo:x.jpg writes a hidden stream of photo, with no file of that name to be seen
    photo = make_photo(tmp_path / "shot.jpg")
    monkeypatch.setattr(sys, "platform", platform)
    result = CliRunner().invoke(app, ["correct", str(photo), "--suffix", ":x?\t", "-n"])
    if platform == "linux":
        assert result.exit_code == 0 and "shot:x?\\t.jpg" in result.stdout, result.output  # a tab shown as \t
    else:
        assert result.exit_code == 2
        message = "a suffix is added to file names, and Windows takes no \\t : ? there"
        assert message in " ".join(result.stderr.split()), result.stderr


MODEL_FORMS = "a model file, a Hub repository (org/name) or a bundled model's name"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["correct", "a.jpg", "--model", ""], f'--model "": give {MODEL_FORMS}'),
        (["correct", "a.jpg", "-o", ""], '-o "": give an output file or folder'),
        (["mask", "a.jpg", "-n", "-o", ""], '-o "": give an output file or folder'),
        (["correct", "a.jpg", "-o", " "], '-o " ": give an output file or folder'),
        (["train", "--photos", "p", "-o", "\t"], '--out "\\t": give a run folder'),  # shown as typed
        (["explain", ""], 'PHOTO "": give a photo'),
        (["explain", "a.jpg", "-r", ""], '--reference "": give a photo'),
        (["explain", "a.jpg", "-o", ""], '-o "": give an output file or folder'),
        (["eval", "--inputs", "", "--targets", "b"], '--inputs "": give a folder of inputs'),
        (["eval", "--inputs", "a", "--targets", ""], '--targets "": give a folder of ground truths'),
        (["eval", "--pairs", "p", "--save", ""], '--save "": give a folder'),
        (["calibrate", "--photos", "", "-o", "x.safetensors"], '--photos "": give a folder of photos'),
        (["calibrate", "--pairs", "", "-o", "x.safetensors"], '--pairs "": give a data set folder'),
        (["calibrate", "--photos", "p", "-o", ""], '-o "": give a .safetensors file to write'),
        (["train", "--photos", "p", "-o", ""], '--out "": give a run folder'),
        (["train", "--resume", ""], '--resume "": give a run folder'),
        (["train", "--photos", "p", "--init", ""], f'--init "": give {MODEL_FORMS}'),
        (["train", "--photos", "p", "--vgg-weights", ""], '--vgg-weights "": give a VGG16 weights file'),
        (["download", ""], 'REPO "": give a Hub repository (org/name)'),
    ],
)
def test_an_empty_name_is_refused_in_one_line_saying_what_to_give(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pathlib takes "" for the current folder: eval scored it, train wrote its run there, explain crashed.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert (result.exit_code, result.output) == (2, f"error: {message}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size", ["nan", "inf", "-1", "0", "1e7"])
def test_a_photo_size_bench_cannot_time_is_a_one_line_usage_error(env: dict[str, str], size: str) -> None:
    # NaN passed Typer's range check only to be called too large: the message names what was typed.
    result = run(["bench", "--mp", size], env)
    assert result.returncode == 2
    shown = "1e+07" if size == "1e7" else size
    assert result.stderr.splitlines() == [
        f"error: --mp {shown}: use a photo size from 0.01 to 1,000,000 megapixels, such as 12"
    ]


def test_bench_takes_the_sizes_its_error_names_and_shows_others_unrounded() -> None:
    assert [checked_megapixels(size) for size in (0.01, 1e6)] == [0.01, 1e6]
    result = CliRunner().invoke(app, ["bench", "--mp", "0.009999999"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --mp 0.009999999: use a photo size from 0.01 to 1,000,000")


def test_an_output_name_in_a_format_recnet_cannot_write_is_refused(
    tmp_path: Path, env: dict[str, str]
) -> None:
    photo = make_photo(tmp_path / "shot.jpg")
    for name in ["shot.jp2", "shot.gif"]:
        result = run(["correct", str(photo), "-o", str(tmp_path / name)], env)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1
        assert lines[0].startswith(f"error: -o {tmp_path / name}: cannot write {name[4:]} files")
        assert not (tmp_path / name).exists()  # not made into a folder either
    for ext, shown in [
        ("gif", "gif"),
        (".GIF", ".GIF"),
        ("", "''"),
        ("jpeg ", "'jpeg '"),
        ("jpg\n", "'jpg\\n'"),
    ]:
        result = run(["correct", str(photo), "--ext", ext, "--dry-run"], env)
        assert result.returncode == 2 and result.stderr.startswith(
            f"error: --ext {shown}: unsupported format"
        )


@pytest.mark.parametrize("ext", ["png", ".png", "PNG", ".PNG"])
def test_ext_is_taken_with_or_without_its_dot_in_either_case(
    tmp_path: Path, model_file: Path, ext: str
) -> None:
    # --ext as file names spell it (.PNG) is the format's name too, not an unsupported format
    photo = make_photo(tmp_path / "a.jpg")
    result = CliRunner().invoke(
        app, ["correct", str(photo), "--ext", ext, "--model", str(model_file), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "a_recnet.png") as written:
        assert written.format == "PNG"


def test_a_photo_s_transparency_lost_to_its_output_format_is_noted_once(
    tmp_path: Path, model_file: Path
) -> None:
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (48, 72, 4), dtype=np.uint8)
    see_through = tmp_path / "see-through.png"
    Image.fromarray(rgba).save(see_through)
    rgba[..., 3] = 255
    Image.fromarray(rgba).save(tmp_path / "opaque.png")  # an alpha channel, but nothing to see through
    for ext, name in (("jpg", "JPEG"), ("bmp", "BMP")):
        result = CliRunner().invoke(
            app, ["correct", str(tmp_path), "--ext", ext, "--model", str(model_file), "--device", "cpu"]
        )
        assert result.exit_code == 0, result.output
        note = (
            f"note: {see_through}: its transparency (alpha channel) cannot go into {name}: left out, so the "
            "colours under its transparent areas show; PNG or TIFF keeps it"
        )
        assert note in " ".join(result.output.split()) and result.output.count("(alpha channel)") == 1
    kept = CliRunner().invoke(app, ["correct", str(see_through), "--ext", "webp", "--model", str(model_file)])
    assert kept.exit_code == 0 and "(alpha channel)" not in kept.output, kept.output


def test_a_deeper_photo_written_at_fewer_bits_is_noted(tmp_path: Path, model_file: Path) -> None:
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), np.random.default_rng(0).integers(0, 65536, (40, 56, 3), dtype=np.uint16))
    Image.fromarray(np.zeros((40, 56, 3), np.uint8)).save(tmp_path / "plain.png")
    for ext, name, bits in (("jpg", "JPEG", 8), ("webp", "WebP", 8), ("png", None, 16)):
        result = CliRunner().invoke(
            app,
            ["correct", str(tmp_path), "-o", str(tmp_path / ext), "--ext", ext, "--model", str(model_file)],
        )
        assert result.exit_code == 0, result.output
        written = cv2.imread(str(tmp_path / ext / f"deep.{ext}"), cv2.IMREAD_UNCHANGED)
        assert written.dtype == (np.uint16 if bits == 16 else np.uint8)
        said = " ".join(result.output.split())
        if name is None:
            assert "-bit samples" not in said
        else:
            note = (
                f"note: {deep}: its 16-bit samples are written at 8 bits in {name}; PNG or TIFF keeps all 16"
            )
            assert note in said and said.count("-bit samples") == 1  # the 8-bit photo loses nothing


def test_a_photo_s_colour_profile_that_its_output_cannot_hold_is_converted_with_a_note(
    tmp_path: Path, model_file: Path
) -> None:
    adobe_rgb = icc.matrix_profile(
        [(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)], (0.3127, 0.329), "Adobe RGB", 2.2
    )
    wide = make_photo(tmp_path / "wide.jpg", icc_profile=adobe_rgb)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    plain = make_photo(tmp_path / "plain.jpg", icc_profile=srgb)  # sRGB: nothing to convert, nor to say
    before = wide.read_bytes()
    result = CliRunner().invoke(
        app, ["correct", str(tmp_path), "--ext", "bmp", "--model", str(model_file), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    note = (
        f"note: {wide}: BMP holds no colour profile: converted from Adobe RGB to sRGB; PNG or TIFF keeps the "
        "profile"
    )
    assert note in " ".join(result.output.split()) and f"{plain}:" not in result.output
    assert wide.read_bytes() == before and (tmp_path / "wide_recnet.bmp").is_file()
    kept = CliRunner().invoke(app, ["correct", str(wide), "--ext", "png", "--model", str(model_file)])
    assert kept.exit_code == 0 and "colour profile" not in kept.output, kept.output
    with Image.open(tmp_path / "wide_recnet.png") as written:
        assert written.info["icc_profile"] == adobe_rgb


@pytest.mark.parametrize("command", ["correct", "mask"])
def test_a_cmyk_photo_without_a_colour_profile_is_read_plainly_with_a_note(
    tmp_path: Path, model_file: Path, command: str
) -> None:
    printed = tmp_path / "printed.jpg"
    Image.open(make_photo(tmp_path / "shot.png")).convert("CMYK").save(printed)
    result = CliRunner().invoke(app, [command, str(printed), "--model", str(model_file), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    note = (
        f"note: {printed}: a CMYK photo without a colour profile: its colours were converted to RGB "
        "uncalibrated, and may be off"
    )
    assert note in " ".join(result.output.split()) and result.output.count("CMYK") == 1


def test_eval_notes_a_cmyk_photo_without_a_colour_profile_and_a_file_of_several_pages(
    tmp_path: Path, model_file: Path
) -> None:
    inputs, targets = tmp_path / "inputs", tmp_path / "targets"
    inputs.mkdir(), targets.mkdir()
    printed = inputs / "shot.jpg"
    Image.open(make_photo(targets / "shot.png", size=(24, 16))).convert("CMYK").save(printed)
    scanned = inputs / "scan.tif"  # as correct says it: only the first page is scored
    first = Image.open(make_photo(targets / "scan.png", size=(24, 16)))
    first.save(scanned, save_all=True, append_images=[first.rotate(180)])
    pairs = ["eval", "--inputs", str(inputs), "--targets", str(targets), "--model", str(model_file)]
    result = CliRunner().invoke(app, [*pairs, "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    note = (
        f"note: {printed}: a CMYK photo without a colour profile: its colours were converted to RGB "
        "uncalibrated, and may be off"
    )
    assert note in " ".join(result.stderr.split()) and result.stderr.count("CMYK") == 1
    assert f"note: {scanned}: has 2 pages; only the first is used" in " ".join(result.stderr.split())


@pytest.mark.skipif(not imaging.AVIF_SUPPORTED, reason="this Pillow has no AVIF plugin")
def test_avif_photos_are_corrected_as_avif(tmp_path: Path, env: dict[str, str], model_file: Path) -> None:
    photo = make_photo(tmp_path / "web.avif", quality=90)
    result = run(["correct", str(photo), "--model", str(model_file), "--quality", "80"], env)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "web_recnet.avif") as written:
        assert written.format == "AVIF" and written.size == (72, 48)


@pytest.mark.skipif(not imaging.HEIF_SUPPORTED, reason="pillow-heif is not installed")
def test_iphone_heic_photos_are_corrected_in_their_own_format_or_another(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    imaging.enable_heif()
    shots = tmp_path / "shots"
    shots.mkdir()
    make_photo(shots / "IMG_0001.HEIC", quality=90)  # described as sRGB
    display_p3 = {"color_primaries": 12, "transfer_characteristics": 13, "matrix_coefficients": 6}
    make_photo(shots / "DSCF0002.HIF", quality=90, nclx_profile={**display_p3, "full_range_flag": 1})
    result = run(["correct", str(shots), "--model", str(model_file), "--json", "-q"], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["done"] == 2
    for name in ("IMG_0001_recnet.HEIC", "DSCF0002_recnet.HIF"):
        with Image.open(shots / name) as written:
            assert written.format == "HEIF" and written.size == (72, 48)
    as_jpeg = run(["correct", str(shots), "--ext", "jpg", "--model", str(model_file)], env)
    assert as_jpeg.returncode == 0, as_jpeg.stderr
    assert imaging.read_photo(shots / "IMG_0001_recnet.jpg").pixels.shape == (48, 72, 3)
    assert "nclx" not in as_jpeg.stderr  # the Display P3 photo's JPEG says so in an ICC profile
    with Image.open(shots / "DSCF0002_recnet.jpg") as written:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(written.info["icc_profile"]))
        assert ImageCms.getProfileDescription(profile).strip() == "Display P3 (from HEIF nclx)"
    as_bmp = run(["correct", str(shots / "DSCF0002.HIF"), "--ext", "bmp", "--model", str(model_file)], env)
    assert as_bmp.returncode == 0, as_bmp.stderr
    assert (
        f"note: {shots / 'DSCF0002.HIF'}: BMP holds no colour profile: converted from Display P3 (from HEIF "
        "nclx) to sRGB; PNG or TIFF keeps the profile"
    ) in " ".join(as_bmp.stderr.split())
    assert "HDR" not in as_jpeg.stderr + as_bmp.stderr

    # Canon's HEIF is HDR, with the PQ curve (Sony's may be HLG): the model has only seen SDR photos.
    hdr = make_photo(
        tmp_path / "IMG_0003.HIF",
        quality=90,
        nclx_profile={**display_p3, "full_range_flag": 1, "transfer_characteristics": 16},
    )
    for command, output in (("correct", "IMG_0003_recnet.HIF"), ("mask", "IMG_0003_mask.png")):
        done = run([command, str(hdr), "--model", str(model_file)], env)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / output).is_file()
        assert (
            f"note: {hdr}: an HDR photo (PQ curve); the model, trained on SDR photos, sees it as if it were "
            "SDR, so check the result"
        ) in " ".join(done.stderr.split())


def test_download_then_models_then_offline_use(tmp_path: Path, env: dict[str, str], model_file: Path) -> None:
    source = make_photo(tmp_path / "shot.png")
    with FakeHub() as hub:
        hub.add("acme/recnet-test", "model.safetensors", model_file.read_bytes())
        online = {**env, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0"}
        fetched = run(["download", "acme/recnet-test"], online)
        assert fetched.returncode == 0, fetched.stderr
        assert Path(fetched.stdout.strip()).is_file()
        assert any("acme/recnet-test/resolve/main/model.safetensors" in r for r in hub.requests)
        as_hf_does = ["download", "acme/recnet-test", "model.safetensors", "--revision", "main"]  # hf's way
        assert run(as_hf_does, online).stdout == fetched.stdout
    listed = run(["models", "--json"], env)
    assert [entry["name"] for entry in json.loads(listed.stdout)] == ["acme/recnet-test"]
    narrow = run(["models"], {**env, "COLUMNS": "40"})  # the name --model takes is never cut
    assert narrow.returncode == 0 and "\n│ acme/recnet-test  " in narrow.stdout  # details on lines under it
    offline = run(["correct", str(source), "--model", "acme/recnet-test", "--quiet"], env)
    assert offline.returncode == 0, offline.stderr
    assert (tmp_path / "shot_recnet.png").exists()


def test_download_refuses_a_file_that_is_not_a_model_in_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    with FakeHub() as hub:
        hub.add("acme/llm", "model.safetensors", safetensors_bytes({"lm_head.weight": torch.zeros(2)}))
        refused = run(["download", "acme/llm"], {**env, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0"})
    assert (refused.returncode, refused.stdout) == (2, "")
    reason = "not a RECNet state_dict (no extract.weight and dualprocess.convN keys)"
    assert refused.stderr == f"error: acme/llm: {reason}\n"
    assert json.loads(run(["models", "--json"], env).stdout) == []  # in the cache, but not a model


def test_download_of_a_bundled_model_says_it_needs_none(env: dict[str, str], model_file: Path) -> None:
    (Path(env["RECNET_WEIGHTS_DIR"]) / "mine.safetensors").write_bytes(model_file.read_bytes())
    bundled = run(["download", "mine"], env)
    assert (bundled.returncode, bundled.stdout) == (2, "")
    nothing = "bundled with recnet, so there is nothing to download: use it as --model mine"
    assert bundled.stderr == f"error: mine: {nothing}\n"
    not_hub = "not a Hub reference (org/name[@revision][:file])"
    for ref in ("theirs", str(model_file.with_suffix("")), "x" * 300):  # a path names no bundled model
        unknown = run(["download", ref], env)
        assert (unknown.returncode, unknown.stderr) == (2, f"error: {ref}: {not_hub}\n")


def test_models_lists_the_others_beside_a_damaged_one_and_exits_1(
    env: dict[str, str], model_file: Path
) -> None:
    weights = Path(env["RECNET_WEIGHTS_DIR"])
    (weights / "good.safetensors").write_bytes(model_file.read_bytes())
    (weights / "bad.safetensors").write_bytes(model_file.read_bytes()[:9])  # cut short in its header
    problem = (
        f"{weights / 'bad.safetensors'}: cut short or damaged: its end is missing; copy or download it again"
    )

    listed = run(["models"], env)
    as_json = run(["models", "--json"], env)

    assert listed.returncode == as_json.returncode == 1
    assert "│ bad  │ bundled │ 9 bytes" in listed.stdout and "damaged (see the error below)" in listed.stdout
    assert "│ good │ bundled │" in listed.stdout
    assert listed.stderr == f"error: {problem}\n"
    assert as_json.stderr == listed.stderr
    entries = json.loads(as_json.stdout)
    assert [entry["name"] for entry in entries] == ["bad", "good"]
    assert entries[0]["problem"].startswith(problem) and entries[1]["problem"] is None


@pytest.mark.parametrize("variable", ["HF_HOME", "HF_HUB_CACHE"])
def test_a_hugging_face_cache_setting_naming_a_file_is_a_note_for_models_and_an_error_for_hub_models(
    tmp_path: Path, env: dict[str, str], model_file: Path, variable: str
) -> None:
    (Path(env["RECNET_WEIGHTS_DIR"]) / "good.safetensors").write_bytes(model_file.read_bytes())
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    settings = {**env, variable: str(notes)}
    reason = f"{variable} {notes} is a file, not a folder, so the Hugging Face cache cannot be read there"
    problem = f"{reason}; set {variable} to a folder"

    listed = run(["models"], settings)
    as_json = run(["models", "--json"], settings)
    refused = run(["correct", str(make_photo(tmp_path / "shot.jpg")), "--model", "org/name"], settings)

    assert listed.returncode == as_json.returncode == 0
    assert "│ good │ bundled │" in listed.stdout
    assert listed.stderr == as_json.stderr == f"note: {problem}\n"
    assert [entry["name"] for entry in json.loads(as_json.stdout)] == ["good"]
    assert (refused.returncode, refused.stderr) == (2, f"error: org/name: {problem}\n")
    assert notes.read_text() == "mine"


def test_bench_times_the_model_at_the_requested_size(env: dict[str, str], model_file: Path) -> None:
    result = run(["bench", "--mp", "0.02", "--repeats", "2", "--model", str(model_file), "--json"], env)
    assert result.returncode == 0, result.stderr
    timing = json.loads(result.stdout)
    assert abs(timing["width"] * timing["height"] - 20_000) < 200
    assert 0 < timing["best_seconds"] <= timing["median_seconds"]
    assert timing["device"] == "cpu" and timing["tile"] == 0
    assert timing["precision"] == "fp32"  # what --precision auto chose
    assert timing["compiled"] is False
    assert timing["keep_colour"] is True and timing["interrupted"] is False  # as correct makes it
    assert 100 * 2**20 < timing["peak_memory_bytes"] < 8 * 2**30  # a process holding PyTorch and a model
    shown = run(["bench", "--mp", "0.02", "--repeats", "1", "--model", str(model_file)], env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(
        f"{timing['width']}x{timing['height']} (0.02 MP) on cpu, fp32, whole image: best "
    )
    model_colours = run(
        ["bench", "--mp", "0.02", "--repeats", "1", "--model", str(model_file), "--model-colour"], env
    )
    assert model_colours.returncode == 0, model_colours.stderr
    assert "on cpu, fp32, whole image, the model's colours: best " in model_colours.stdout


def test_bench_stopped_says_so_and_its_json_says_it_was_interrupted(
    model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --json printed nothing on a stop, where eval and calibrate print that they were interrupted
    monkeypatch.setattr(engine, "time_correction", ctrl_c)
    result = CliRunner().invoke(app, ["bench", "--mp", "0.02", "--model", str(model_file), "--json"])
    assert result.exit_code == 130
    assert result.stderr.endswith("note: interrupted: recnet bench stopped before it finished\n")
    assert json.loads(result.stdout) == {"model": str(model_file.resolve()), "interrupted": True}


@pytest.mark.parametrize("as_json", [False, True])
def test_bench_stopped_after_a_timed_run_says_the_runs_it_timed(
    model_file: Path, monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    # a stop during 20 repeats gave only "interrupted", the finished runs' times thrown away
    real_correct, calls = Corrector.correct, []

    def stopped_at_the_third(self: Corrector, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:  # the warm-up, one timed run, then Ctrl-C
            raise KeyboardInterrupt
        return real_correct(self, *args, **kwargs)

    monkeypatch.setattr(Corrector, "correct", stopped_at_the_third)
    command = ["bench", "--mp", "0.02", "--repeats", "5", "--model", str(model_file)]
    result = CliRunner().invoke(app, [*command, *(["--json"] if as_json else [])])
    assert result.exit_code == 130
    assert result.stderr.endswith("note: interrupted: 1 of 5 runs timed\n")
    if as_json:
        timing = json.loads(result.stdout)
        assert (timing["runs"], timing["interrupted"]) == (1, True)
        assert 0 < timing["best_seconds"] == timing["median_seconds"]
    else:
        assert " (0.02 MP) on cpu, fp32, whole image: best " in result.stdout


def test_bench_says_when_compile_does_not_apply(env: dict[str, str], model_file: Path) -> None:
    command = ["bench", "--mp", "0.02", "--repeats", "1", "--model", str(model_file), "--tile", "128"]
    result = run([*command, "--compile", "--json"], env)
    assert result.returncode == 0, result.stderr
    assert "--compile speeds up the whole-image path only; this size ran in tiles" in result.stderr
    assert json.loads(result.stdout)["compiled"] is False
    piped = run(command, {**env, "COLUMNS": "40"})  # one line in a log, however narrow the terminal
    assert piped.returncode == 0 and len(piped.stdout.strip().splitlines()) == 1
    assert "peak" in piped.stdout


# The address space a recnet process is left for its data in the tests that run it out of memory, beyond
# what its libraries map: about 1 GiB with PyTorch's CPU builds, 3.4 GiB with a CUDA build (what pip takes
# from PyPI on Linux), in which a flat 3 GiB limit left PyTorch unable to load.
MEMORY_TO_SPARE = 2 * 2**30
# A step of 8 crops of 256 px takes about 4.5 GiB: more than the 2 GiB limit, less than the memory available,
# which train checks the step against before it starts (test_a_step_the_memory_cannot_hold_is_refused...).
TOO_LARGE_FOR_2_GIB = ["--no-ecr", "--batch", "8", "--crop", "256", "--steps", "1"]


@functools.cache
def started_address_space() -> int:
    """The address space (bytes, VmPeak) of a process that has loaded what recnet's commands load."""
    loads = "torch, recnet_cli.cli, recnet_cli.engine, recnet_cli.evaluate, recnet_cli.train.loop"
    script = f"import {loads}; torch.cuda.is_available(); print(open('/proc/self/status').read())"
    status = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"VmPeak:\s*(\d+) kB", status)[1]) * 1024


def limit_address_space(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS limits memory on Linux")
@pytest.mark.address_space
@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        # The tiles' full-size maps take 168 B/px in host memory whatever the tile: no --tile advice.
        (
            ["bench", "--mp", "20", "--repeats", "1"],
            "error: --mp 20: not enough memory for this 20.0 MP photo: its feature maps alone take",
        ),
        (
            ["train", "--photos", str(TRAIN_PHOTOS), *TOO_LARGE_FOR_2_GIB],
            "error: not enough memory to train at this batch and crop size: try a smaller --batch or --crop",
        ),
        (["explain", "PHOTO"], "error: PHOTO: not enough memory for this 20.0 MP photo: its feature maps"),
        # The pair's SSIM runs out first (then the command says no pair could be scored).
        (["eval", "--inputs", "FOLDER", "--targets", "FOLDER"], "error: PHOTO: not enough memory to score"),
    ],
)
def test_running_out_of_host_memory_is_a_one_line_error_with_advice(
    tmp_path: Path, env: dict[str, str], model_file: Path, arguments: list[str], expected: str
) -> None:
    # PyTorch's CPU allocator raises a RuntimeError, not MemoryError: it must still read as memory.
    photo = tmp_path / "photos" / "20mp.png"
    if "PHOTO" in arguments or "FOLDER" in arguments:
        photo.parent.mkdir()
        Image.new("RGB", (5000, 4000)).save(photo, compress_level=1)
        names = {"PHOTO": str(photo), "FOLDER": str(photo.parent)}
        arguments = [names.get(argument, argument) for argument in arguments]
    expected = expected.replace("PHOTO", str(photo))
    command = [RECNET, *arguments, "--device", "cpu"]
    command += ["--out", str(tmp_path / "run")] if arguments[0] == "train" else ["--model", str(model_file)]
    limit = functools.partial(limit_address_space, started_address_space() + MEMORY_TO_SPARE)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    said = [line for line in result.stderr.strip().splitlines() if not line.startswith("note: ")]
    errors = [line for line in said if line != "Evaluating 1 pair"]  # eval's first line in a log
    assert errors[0].startswith(expected) and all(line.startswith("error: ") for line in errors), errors


CANNOT_OPEN = "cannot open shared object file"


@pytest.mark.parametrize(
    ("library", "failure", "name", "reason"),
    [
        # A CUDA build of PyTorch that cannot find its CUDA libraries: ctypes raises an OSError (which was
        # taken for a failure to write to stdout).
        ("torch", f'raise OSError("libcudnn.so: {CANNOT_OPEN}")', "PyTorch", f"libcudnn.so: {CANNOT_OPEN}"),
        # A PyTorch whose compiled core will not load: an import inside it fails.
        ("torch", "from torch._C import *", "PyTorch", "No module named 'torch._C'"),
        # OpenCV without a system library, which fails as the command line loads, before any command.
        ("cv2", f'raise ImportError("libGL.so.1: {CANNOT_OPEN}")', "OpenCV", f"libGL.so.1: {CANNOT_OPEN}"),
    ],
)
def test_a_library_that_cannot_load_is_a_one_line_error(
    tmp_path: Path, env: dict[str, str], model_file: Path, library: str, failure: str, name: str, reason: str
) -> None:
    result, package = correct_with_stand_in(tmp_path, env, model_file, library, failure + "\n")
    assert result.stderr.splitlines() == [f"error: {name} could not be loaded from {package}: {reason}"]


def correct_with_stand_in(
    tmp_path: Path, env: dict[str, str], model_file: Path, library: str, source: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``recnet correct`` with a package of ``library``'s name, its ``__init__.py`` holding ``source``,
    first on the path: it fails at once (exit 2), writing nothing."""
    package = tmp_path / "stand-in" / library
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(source)
    command = ["correct", str(make_photo(tmp_path / "shot.jpg")), "-o", str(tmp_path / "out.jpg")]
    result = run([*command, "--model", str(model_file)], {**env, "PYTHONPATH": str(package.parent)})
    assert result.returncode == 2 and not (tmp_path / "out.jpg").exists()
    return result, package


def fake_library(
    root: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str, core: dict[str, str]
) -> Path:
    """A package ``name.lower()`` in ``root``, on the path and among recnet's ``LIBRARIES`` as ``name``: its
    ``__init__.py`` holds ``source``, and its sub-package ``core`` the modules in ``core`` (name: source)."""
    package = root / name.lower()
    (package / "core").mkdir(parents=True)
    (package / "__init__.py").write_text(source)
    (package / "core" / "__init__.py").write_text("")
    for module, code in core.items():
        (package / "core" / f"{module}.py").write_text(code)
    monkeypatch.syspath_prepend(root)
    monkeypatch.setitem(entry.LIBRARIES, package.name, name)
    return package


def test_library_failure_names_the_library_whose_import_failed_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loading = f"def load():\n    raise OSError('libfake.so: {CANNOT_OPEN}')\n\n\nload()\n"
    fake_library(tmp_path, monkeypatch, "FakeLib", "from fakelib.core import engine\n", {"engine": loading})
    (tmp_path / "not_a_library.py").write_text("raise OSError('No space left on device')\n")
    with pytest.raises(OSError) as raised:
        importlib.import_module("fakelib")
    expected = f"FakeLib could not be loaded from {tmp_path / 'fakelib'}: libfake.so: {CANNOT_OPEN}"
    assert entry.library_failure(raised.value) == expected
    with pytest.raises(OSError) as raised:
        importlib.import_module("not_a_library")
    assert entry.library_failure(raised.value) is None
    with pytest.raises(OSError) as raised:  # raised by a library once loaded, not while it loads
        Image.open(tmp_path / "missing.jpg")
    assert entry.library_failure(raised.value) is None
    monkeypatch.setitem(entry.LIBRARIES, "absentlib", "AbsentLib")
    with pytest.raises(ModuleNotFoundError) as raised:
        importlib.import_module("absentlib.core")
    missing = entry.library_failure(raised.value)
    assert missing == f"AbsentLib is not installed for this Python ({sys.executable})"


CHECK_VERSIONS = " (`pip check` says which version recnet needs)"


@pytest.mark.parametrize(
    ("library", "stand_in", "name"),
    [
        # A PyTorch without the names recnet uses (one older than recnet supports, installed with --no-deps).
        ("torch", '__version__ = "2.3.1"\n', "PyTorch"),
        # A Typer without the submodule recnet uses: it was said to be missing ("not installed").
        ("typer", "", "Typer"),
    ],
)
def test_a_library_version_without_what_recnet_uses_is_a_one_line_error(
    tmp_path: Path, env: dict[str, str], model_file: Path, library: str, stand_in: str, name: str
) -> None:
    result, package = correct_with_stand_in(tmp_path, env, model_file, library, stand_in)
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {name} at {package} is not a version recnet can use: ")
    assert line.endswith(CHECK_VERSIONS)


def test_library_failure_names_a_library_version_without_a_name_that_recnet_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = fake_library(tmp_path, monkeypatch, "OldLib", "", {})
    old = f"OldLib at {folder} is not a version recnet can use: "
    with pytest.raises(ImportError) as raised:
        exec("from oldlib import missing", {})
    assert raised.value.name == "oldlib"
    assert entry.library_failure(raised.value) == f"{old}{raised.value}{CHECK_VERSIONS}"
    with pytest.raises(ModuleNotFoundError) as raised:
        importlib.import_module("oldlib.core.missing")
    assert entry.library_failure(raised.value) == f"{old}{raised.value}{CHECK_VERSIONS}"
    core = importlib.import_module("oldlib.core")
    with pytest.raises(AttributeError) as raised:
        core.missing  # noqa: B018
    assert entry.library_failure(raised.value) == f"{old}{raised.value}{CHECK_VERSIONS}"
    with pytest.raises(AttributeError) as raised:  # not a library's: recnet's own, or a plain object's
        types.SimpleNamespace().missing  # noqa: B018
    assert entry.library_failure(raised.value) is None
    with pytest.raises(AttributeError) as raised:
        entry.missing  # noqa: B018
    assert entry.library_failure(raised.value) is None


def test_fused_kernels_off_a_cuda_gpu_are_a_one_line_error(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    source = make_photo(tmp_path / "shot.jpg")
    result = run(["correct", str(source), "--model", str(model_file), "--device", "cpu", "--fused"], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--fused needs a CUDA GPU" in lines[0]
    assert not (tmp_path / "shot_recnet.jpg").exists()
    both = run(["bench", "--mp", "0.02", "--model", str(model_file), "--compile", "--fused"], env)
    assert both.returncode == 2 and "choose one" in both.stderr and "Traceback" not in both.stderr


def test_half_precision_training_on_the_cpu_says_it_is_slow(tmp_path: Path, env: dict[str, str]) -> None:
    tiny = shlex.split("--steps 2 --batch 2 --crop 32 --no-ecr --device cpu --time-limit 0")
    command = ["train", "--photos", str(TRAIN_PHOTOS), "--precision", "bf16", *tiny]
    result = run([*command, "--out", str(tmp_path / "run")], env)
    assert result.returncode == 0, result.stderr
    assert "bf16 on the CPU trains several times slower than fp32" in result.stderr
    quiet = run([*command, "--out", str(tmp_path / "quiet"), "-q"], env)  # -q printed the note all the same
    assert quiet.returncode == 0 and "bf16" not in quiet.stderr


def test_auto_on_the_cpu_beside_an_unused_nvidia_gpu_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_file: Path
) -> None:
    (tmp_path / "gpus" / "0000:01:00.0").mkdir(parents=True)
    monkeypatch.setattr("recnet_cli.devices.NVIDIA_GPUS", tmp_path / "gpus")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as a CPU-only PyTorch sees it
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    photo = make_photo(tmp_path / "small.png", size=(24, 16))
    for device, said in (("auto", True), ("cpu", False)):
        args = ["correct", str(photo), "--model", str(model_file), "--device", device, "--overwrite"]
        result = CliRunner().invoke(app, args, prog_name="recnet")
        assert result.exit_code == 0, result.output
        assert ("though this machine has an NVIDIA GPU" in " ".join(result.stderr.split())) is said
    quiet = CliRunner().invoke(app, ["correct", str(photo), "--model", str(model_file), "-q", "--overwrite"])
    assert quiet.exit_code == 0 and "NVIDIA" not in quiet.stderr


def test_half_precision_correction_on_the_cpu_says_it_is_slow(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    photo = make_photo(tmp_path / "small.png", size=(24, 16))
    result = run(["correct", str(photo), "--model", str(model_file), "--precision", "bf16"], env)
    assert result.returncode == 0, result.stderr
    assert "bf16 on the CPU runs far slower than fp32" in " ".join(result.stderr.split())
    fp32 = run(["correct", str(photo), "--model", str(model_file), "--overwrite"], env)
    assert fp32.returncode == 0 and "bf16" not in fp32.stderr


def test_eval_says_in_one_line_when_save_cannot_write(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    inputs, targets, saved = tmp_path / "in", tmp_path / "gt", tmp_path / "saved"
    for folder in (inputs, targets):
        folder.mkdir()
        make_photo(folder / "shot.png")
    (saved / "shot.png").mkdir(parents=True)  # where the corrected image would go
    pairs = ["--inputs", str(inputs), "--targets", str(targets), "--model", str(model_file)]
    result = run(["eval", *pairs, "--save", str(saved), "--json"], env)  # with --overwrite or without
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: {saved / 'shot.png'}: is a folder\n" in result.stderr  # that image alone
    assert "error: the scores are complete, but 1 of 1 corrected images was not saved" in result.stderr
    values = json.loads(result.stdout)  # the score still counts
    assert values["images"] == 1 and [item["input"] for item in values["unsaved"]] == [
        str(inputs / "shot.png")
    ]
    under_a_file = inputs / "shot.png" / "saved"  # refused before the model is loaded
    result = run(["eval", *pairs, "--save", str(under_a_file)], env)
    folder = inputs / "shot.png"
    assert result.returncode == 2 and result.stderr == (
        f"error: --save {under_a_file}: cannot create folder {under_a_file}: {folder} is a file\n"
    )
    # --save out.png/ was refused as naming an image file: the typed slash was lost before it was asked
    result = run(["eval", *pairs, "--save", f"{tmp_path / 'out.png'}/"], env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.png" / "shot.png").is_file()


def test_eval_takes_pairs_or_inputs_and_targets_never_some_of_both(
    tmp_path: Path, env: dict[str, str]
) -> None:
    for name in ("pairs", "in", "gt"):
        (tmp_path / name).mkdir()
    pairs, inputs, targets = (
        ["--" + option, str(tmp_path / name)]
        for option, name in [("pairs", "pairs"), ("inputs", "in"), ("targets", "gt")]
    )
    # --pairs with --inputs (or --targets) alone scored --pairs, and said nothing of the folder left out
    for options in ([], [*pairs, *inputs], [*pairs, *targets], [*pairs, *inputs, *targets]):
        result = run(["eval", *options], env)
        reason = "give either --pairs DIR or both --inputs DIR and --targets DIR"
        assert (result.returncode, result.stderr) == (2, f"error: {reason}\n"), options
    alone = run(["eval", *inputs], env)
    reason = "--inputs needs --targets DIR, the folder of their ground truths (paired by file name)"
    assert (alone.returncode, alone.stderr) == (2, f"error: {reason}\n")
    # --overwrite without --save was taken without a word, as if it guarded something
    idle = CliRunner().invoke(app, ["eval", *inputs, *targets, "--overwrite"])
    reason = "--overwrite replaces the images --save writes; without --save, eval writes none"
    assert (idle.exit_code, idle.stderr) == (2, f"error: {reason}\n")


def test_eval_json_lists_the_failures_when_no_pair_could_be_scored(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    inputs, targets = tmp_path / "in", tmp_path / "gt"
    for folder in (inputs, targets):
        folder.mkdir()
        make_photo(folder / "tiny.png", size=(8, 6))  # smaller than SSIM's window
    pairs = ["--inputs", str(inputs), "--targets", str(targets), "--model", str(model_file)]
    result = run(["eval", *pairs, "--json"], env)
    assert result.returncode == 1 and "error: the pair could not be scored" in result.stderr
    report = json.loads(result.stdout)
    assert report["images"] == 0 and report["psnr"] is None and report["per_image"] == []
    assert [failure["input"] for failure in report["failed"]] == [str(inputs / "tiny.png")]
    for folder in (inputs, targets):
        make_photo(folder / "tiny.png", size=(24, 16))  # large enough now
    one = run(["eval", *pairs], env)
    assert one.returncode == 0 and one.stdout.splitlines()[0].strip() == f"{model_file} on 1 pair", one.stdout
    for options, title in (  # the title names what is not the default
        (["--strength", "0.5"], f"{model_file} on 1 pair, strength 0.5"),
        (["--model-colour"], f"{model_file} on 1 pair, the model's colours"),
    ):
        other = run(["eval", *pairs, *options], env)
        assert other.stdout.splitlines()[0].strip() == title, other.stdout


def test_a_stopped_eval_gives_the_scores_so_far_and_exits_130(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs, targets = tmp_path / "in", tmp_path / "gt"
    for folder in (inputs, targets):
        folder.mkdir()
        for name in ("a", "b", "c"):
            make_photo(folder / f"{name}.png", size=(24, 16))
    from recnet_cli import evaluate

    scored = evaluate.score_pair

    stop_at = ["c.png"]

    def stop_at_the_third(pair: evaluate.ImagePair, corrector: engine.Corrector, *notices: object) -> object:
        if pair.input.name in stop_at:
            raise KeyboardInterrupt  # Ctrl-C, or SIGTERM as recnet takes it
        return scored(pair, corrector, *notices)

    monkeypatch.setattr(evaluate, "score_pair", stop_at_the_third)
    pairs = ["eval", "--inputs", str(inputs), "--targets", str(targets), "--model", str(model_file)]
    result = CliRunner().invoke(app, [*pairs, "--json"])
    assert result.exit_code == 130
    assert "note: interrupted after 2 of 3 pairs; the JSON report holds their scores" in result.stderr
    report = json.loads(result.stdout)
    assert report["interrupted"] is True and report["images"] == 2 and report["psnr"] is not None
    table = CliRunner().invoke(app, pairs)
    assert table.exit_code == 130 and "on 2 pairs" in table.stdout
    stop_at[0] = "a.png"
    at_once = CliRunner().invoke(app, pairs)
    assert (at_once.exit_code, at_once.stdout) == (130, "")
    assert at_once.stderr.endswith("note: interrupted after 0 of 3 pairs; none was scored\n")
    for folder in (inputs, targets):
        make_photo(folder / "b.png", size=(8, 6))  # smaller than SSIM's window: the pair fails
    stop_at[0] = "c.png"
    one_failed = CliRunner().invoke(app, pairs)
    assert one_failed.exit_code == 130
    assert "note: interrupted after 2 of 3 pairs; the scores below are theirs" in one_failed.stderr


def test_a_stop_the_command_does_not_report_itself_is_said_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (explain_command, runner):  # explain's; correct's and mask's (open_models_if_needed)
        monkeypatch.setattr(module, "open_models", ctrl_c)
    photo = make_photo(tmp_path / "a.png")
    for command in (["explain", str(photo)], ["correct", str(photo)]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 130
        assert result.stderr == f"note: interrupted: recnet {command[0]} stopped before it finished\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.png"]
    # with --json a script still gets the batch's summary: every photo not run
    for command in ("correct", "mask"):
        result = CliRunner().invoke(app, [command, str(photo), str(tmp_path / "gone.png"), "--json"])
        assert result.exit_code == 130
        assert result.stderr == f"note: interrupted: recnet {command} stopped before it finished\n"
        report = json.loads(result.stdout)
        assert (report["interrupted"], report["not_run"], report["failed"], report["model"]) == (
            True,
            1,
            1,
            None,
        )
        assert [entry["status"] for entry in report["files"]] == ["not run", "failed"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.png"]


def test_a_stop_while_the_inputs_are_listed_still_prints_the_json_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Listing a folder of thousands of photos (on a network drive, minutes) ended with no JSON at all
    monkeypatch.setattr(runner, "find_sources", ctrl_c)
    photo = make_photo(tmp_path / "a.png")
    for command in ("correct", "mask"):
        result = CliRunner().invoke(app, [command, str(tmp_path), "--json", "-m", "owner/model"])
        assert result.exit_code == 130
        assert result.stderr == f"note: interrupted: recnet {command} stopped before it finished\n"
        report = json.loads(result.stdout)
        assert (report["interrupted"], report["files"], report["model"]) == (True, [], "owner/model")
    planning = CliRunner().invoke(app, ["correct", str(tmp_path), "--json", "--dry-run"])
    assert planning.exit_code == 130 and json.loads(planning.stdout)["dry_run"] is True  # said of a dry run
    assert sorted(tmp_path.iterdir()) == [photo]


def test_the_json_summary_and_scores_are_printed_whole_whatever_stop_comes(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stop while a slow reader took the JSON, the batch over, cut it off (65,536 bytes) with exit 130
    handlers: list[object] = []

    def noting_handlers(write: Callable[..., object]) -> Callable[..., object]:
        def written(*args: object, **kwargs: object) -> object:
            handlers.append(tuple(signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)))
            return write(*args, **kwargs)

        return written

    (tmp_path / "in").mkdir()
    photo = make_photo(tmp_path / "in" / "a.png", size=(24, 16))
    pairs = ["--inputs", str(photo.parent), "--targets", str(photo.parent)]
    for command, module, name in (
        (["correct", str(photo), "-o", str(tmp_path / "out.png")], runner, "json_summary"),
        (["eval", *pairs], eval_command.typer, "echo"),  # eval's JSON scores
    ):
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as the program starts
        signal.signal(signal.SIGTERM, entry.stop_as_ctrl_c)
        with monkeypatch.context() as patch:
            patch.setattr(module, name, noting_handlers(getattr(module, name)))
            result = CliRunner().invoke(app, [*command, "-m", str(model_file), "--json"])
        assert result.exit_code == 0 and json.loads(result.stdout), result.stderr
        assert handlers.pop() == (signal.SIG_IGN, signal.SIG_IGN) and not handlers


def test_a_stopped_calibration_prints_its_json_report_of_a_model_not_written(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # calibrate --json printed nothing on a stop, where eval and correct print their report
    output = tmp_path / "auto.safetensors"
    command = ["calibrate", "--photos", str(TRAIN_PHOTOS), "-o", str(output), "--size", "64", "--count", "2"]
    for step, model, loaded in (
        ("open_models", [], None),
        ("fitted_strength", ["-m", str(model_file)], True),
    ):
        with monkeypatch.context() as patch:
            patch.setattr(cli, step, ctrl_c)
            result = CliRunner().invoke(app, [*command, *model, "--json"])
        assert result.exit_code == 130
        assert result.stderr.endswith(
            f"note: interrupted: recnet calibrate stopped before it finished: {output} was not written\n"
        )
        report = json.loads(result.stdout)
        assert report == {
            "model": str(model_file) if loaded else None,
            "output": str(output),
            "interrupted": True,
        }
        assert not output.exists()
    # a stop as the model and its cards are written lets them be written whole, and the run end as done
    from recnet_cli import weights

    real_save = weights.save_model

    def stopped_while_saving(*arguments: object, **settings: object) -> None:
        signal.raise_signal(signal.SIGINT)
        real_save(*arguments, **settings)

    outside = signal.signal(signal.SIGINT, signal.default_int_handler)  # as the program (entry.run) sets it
    try:
        monkeypatch.setattr(weights, "save_model", stopped_while_saving)
        saved = CliRunner().invoke(app, [*command, "-m", str(model_file), "--json"])
    finally:
        signal.signal(signal.SIGINT, outside)
    assert saved.exit_code == 0, saved.stderr
    assert json.loads(saved.stdout)["interrupted"] is False
    assert all(path.is_file() for path in (output, output.with_suffix(".json"), output.with_suffix(".md")))


def test_bad_training_options_are_one_line_errors(tmp_path: Path) -> None:
    photos, quick = ["--photos", str(TRAIN_PHOTOS)], ["--no-ecr", "--steps", "1"]
    resumable = tmp_path / "resumable"  # as far as the options' check looks: a checkpoint and settings
    resumable.mkdir()
    (resumable / "checkpoint.safetensors").write_bytes(b"")
    (resumable / "config.json").write_text("{}")
    for options, reason in [
        ([*photos, "--regimes", "under=1,dark=2"], "--regimes: unknown regime 'dark'"),
        ([*photos, "--regimes", "under=1,under=2"], "--regimes: under is given twice in 'under=1,under=2'"),
        (["--pairs", str(tmp_path), "--regimes", "under=1"], "--regimes applies to a new run on --photos"),
        ([*photos, *quick, "--init", "nothing-like-it"], "nothing-like-it: not a model file"),
        (["--photos", str(tmp_path / "nowhere"), *quick], f"{tmp_path / 'nowhere'}: no such folder"),
        (["--resume", str(resumable), "--steps", "10"], "--out, --steps: --resume continues"),
        ([*photos, *quick, "--device", "cpu,cpu"], "--device cpu,cpu: this command runs on one device"),
        ([*photos, *quick, "--lr", "nan"], "--lr nan: use a positive learning rate"),
        ([*photos, *quick, "--crop", "3000000000"], "--crop 3000000000: "),  # the range, in Typer's words
        ([*photos, *quick, "--lr", "-1"], "--lr -1: use a positive learning rate"),
        ([*photos, *quick, "--lr", "1e300"], "--lr 1e+300: use a positive learning rate of at most 1"),
        ([*photos, *quick, "--precision", "fp16"], "--precision fp16: training takes bf16"),
        ([*photos, *quick, "--lr", "1.0000001"], "--lr 1.0000001: use a positive learning rate of at most 1"),
        (quick, "give one of --photos DIR, --pairs DIR, or both --inputs DIR and --targets DIR"),
        ([*photos, *quick, "--pairs", str(tmp_path)], "give one of --photos DIR, --pairs DIR, or both"),
        ([*quick, "--inputs", str(tmp_path)], "--inputs needs --targets DIR, the folder of their ground"),
        ([*photos, *quick, "--split", "test"], "--split applies to --pairs"),
        ([*photos, *quick, "--vgg-weights", "vgg16.pth"], "--vgg-weights: the weights are for the ECR loss"),
        (["--resume", str(resumable), "--no-ecr"], "--out, --no-ecr: --resume continues"),  # as typed
        (["--resume", str(resumable), "--ecr"], "--out, --ecr: --resume continues"),
        # a value no run takes: still that --resume takes no such option at all
        (["--resume", str(resumable), "--lr", "2"], "--out, --lr: --resume continues"),
        (
            ["--resume", str(resumable), "--precision", "fp16"],
            "--out, --precision: --resume continues",
        ),
        (
            [*quick, "--inputs", str(TRAIN_PHOTOS), "--targets", f"{TRAIN_PHOTOS}/"],
            f"{TRAIN_PHOTOS}: the inputs and",
        ),
        ([*photos, "--vgg-weights", str(tmp_path / "vgg16.pth")], f"{tmp_path / 'vgg16.pth'}: no such file;"),
        ([*photos, "--vgg-weights", str(tmp_path)], f"{tmp_path}: a folder, not a weights file;"),
    ]:
        result = CliRunner().invoke(
            app, ["train", "--out", str(tmp_path / "run"), *options]
        )  # in-process: quick
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {reason}")
        assert not (tmp_path / "run").exists()


def test_resume_takes_the_command_that_started_the_run_typed_again(tmp_path: Path) -> None:
    # A batch job's script runs one command line: with --resume added, its options were refused, unchanged
    run_dir = tmp_path / "run"
    tiny = "--steps 2 --batch 1 --crop 32 --no-ecr --device cpu --regimes mixed=1 --lr 2e-4 --seed 3 -q"
    started = ["train", "--photos", str(TRAIN_PHOTOS), "--out", str(run_dir), *shlex.split(tiny)]
    first = CliRunner().invoke(app, [*started, "--time-limit", "0"])  # stops after its first step
    assert first.exit_code == 0 and not (run_dir / "final.safetensors").exists(), first.stderr
    again = CliRunner().invoke(app, [*started, "--resume", str(run_dir)])
    assert again.exit_code == 0, again.stderr
    assert (run_dir / "final.safetensors").is_file()
    for changed, own in (
        (["--steps", "3"], "--steps 2"),
        (["--regimes", "mixed=0.5,mild=0.5"], "--regimes mixed=1"),
        (["--ecr"], "--no-ecr"),
        (["--out", "elsewhere"], f"--out {run_dir}"),
        (["--precision", "bf16"], "--precision auto"),
    ):
        refused = CliRunner().invoke(
            app, [*started, *changed, "--resume", str(run_dir)]
        )  # the last one counts
        assert refused.exit_code == 2
        assert refused.stderr.startswith(
            f"error: {changed[0]}: --resume continues {run_dir} as it was set up ({own}); "
        )


def test_a_run_copied_elsewhere_resumes_with_its_new_folder_as_out(tmp_path: Path) -> None:
    # --out the copy was refused as a change from the folder the run was set up in, which it named
    run_dir, copy = tmp_path / "run", tmp_path / "copy"
    tiny = ["--steps", "2", "--batch", "1", "--crop", "32", "--no-ecr", "--device", "cpu", "-q"]
    first = CliRunner().invoke(
        app, ["train", "--photos", str(TRAIN_PHOTOS), "--out", str(run_dir), *tiny, "--time-limit", "0"]
    )
    assert first.exit_code == 0 and not (run_dir / "final.safetensors").exists(), first.stderr
    shutil.copytree(run_dir, copy)
    resumed = CliRunner().invoke(
        app, ["train", "--photos", str(TRAIN_PHOTOS), "--out", f"{copy}/", *tiny, "--resume", str(copy)]
    )
    assert resumed.exit_code == 0, resumed.stderr
    assert (copy / "final.safetensors").is_file() and not (run_dir / "final.safetensors").exists()


def test_resume_typed_on_a_run_not_there_says_so_not_that_its_options_differ(tmp_path: Path) -> None:
    # A batch job's command with --resume, submitted before the run was ever started: it said the options
    # differed from the run's, and to start from a checkpoint that did not exist.
    run_dir = tmp_path / "job"
    tiny = ["--steps", "2", "--batch", "1", "--crop", "32", "--no-ecr", "--device", "cpu", "-q"]
    started = ["train", "--photos", str(TRAIN_PHOTOS), "--out", str(run_dir), *tiny, "--resume", str(run_dir)]
    refused = CliRunner().invoke(app, started)
    assert refused.exit_code == 2 and refused.stderr == f"error: {run_dir}: no such folder\n"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")  # stopped before its first checkpoint
    refused = CliRunner().invoke(app, started)
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: {run_dir}: no checkpoint to resume from")


def test_precision_typed_again_as_what_auto_is_is_the_run_s_own() -> None:
    # a run set up with auto, resumed with --precision fp32 (what auto is), was refused as changed
    from recnet_cli.train_command import same_setting

    assert same_setting("precision", "fp32", "auto") and same_setting("precision", "auto", "fp32")
    assert same_setting("precision", "bf16", "bf16")
    assert not same_setting("precision", "bf16", "auto") and not same_setting("precision", "auto", "bf16")


def test_regimes_typed_again_as_set_up_or_as_a_refusal_writes_them_are_the_run_s_own() -> None:
    # the default typed out (0.225 came back 0.22499999999999998), and the refusal's 3 digits, were refused
    from recnet_cli.train.synthesis import DegradationConfig
    from recnet_cli.train_command import same_setting, typed_form

    default = DegradationConfig().mode_probabilities
    assert same_setting("regimes", "under=0.225,over=0.225,mixed=0.45,mild=0.1", default)
    two_to_one = (2 / 3, 1 / 3, 0.0, 0.0)
    for typed in ("under=2,over=1", "under=0.667,over=0.333", typed_form("--regimes", two_to_one).split()[1]):
        assert same_setting("regimes", typed, two_to_one), typed
    assert not same_setting("regimes", "under=0.7,over=0.3", two_to_one)
    assert not same_setting("regimes", "under=2,over=1,mild=0.01", two_to_one)


def test_init_typed_again_is_the_run_s_model_where_the_run_pinned_it_to_a_commit(tmp_path: Path) -> None:
    # a run started from --init acme/model keeps acme/model@<commit>: typed again, it was refused; and so
    # was the tag or short commit it was started with, and the bundled model by its path
    from huggingface_hub import constants

    from recnet_cli.train_command import same_setting
    from recnet_cli.weights.locate import bundled_path

    commit = "0123456789abcdef0123456789abcdef01234567"
    pinned = f"acme/model@{commit}"
    assert same_setting("init", "acme/model", pinned)
    assert same_setting("init", f"acme/model@{commit}", pinned)
    assert not same_setting("init", "acme/model@v1", pinned)  # a tag the cache knows nothing of
    repository = Path(constants.HF_HUB_CACHE) / "models--acme--model"
    (repository / "snapshots" / commit).mkdir(parents=True)
    (repository / "refs").mkdir()
    (repository / "refs" / "v1").write_text(commit)
    (repository / "refs" / "v2").write_text("f" * 40)
    assert same_setting("init", "acme/model@v1", pinned) and same_setting(
        "init", "acme/model@0123456", pinned
    )
    assert not same_setting("init", "acme/model@v2", pinned)  # another revision
    assert not same_setting("init", "acme/model@abcdef0", pinned)
    assert not same_setting("init", "acme/model@v1", "acme/model")  # a run's init of no commit (hand-written)
    assert same_setting("init", str(bundled_path("recnet-mixed")), "recnet-mixed")
    assert not same_setting("init", str(tmp_path / "recnet-mixed.safetensors"), "recnet-mixed")
    assert not same_setting("init", "acme/model:other.safetensors", pinned)
    assert not same_setting("init", "acme/other", pinned)
    assert same_setting("init", "recnet-mixed", "recnet-mixed") and not same_setting(
        "init", None, "recnet-mixed"
    )
    assert same_setting("regimes", "mixed=1", (0.0, 0.0, 1.0, 0.0))


@pytest.mark.parametrize("spelling", ["--out", "--output", "-o"])
def test_train_takes_its_run_folder_as_the_other_commands_take_their_output(
    tmp_path: Path, spelling: str
) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    options = ["--photos", str(TRAIN_PHOTOS), spelling, str(taken), "--steps", "1", "--no-ecr"]
    result = CliRunner().invoke(app, ["train", *options])  # in-process: quick
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {taken}: not a folder (--out names the folder of the run)\n",
    )
    assert taken.read_text() == "mine"


def test_a_step_the_memory_cannot_hold_is_refused_before_training_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Linux ends a process that overfills the memory without a word: the step's memory is checked first.
    monkeypatch.setattr(train_memory, "available_host_memory", lambda: 2**30)
    options = ["--photos", str(TRAIN_PHOTOS), "--out", str(tmp_path / "run"), "--no-ecr", "--steps", "1"]
    result = CliRunner().invoke(app, ["train", *options, "--device", "cpu", "--batch", "4", "--crop", "256"])
    assert (result.exit_code, result.stderr) == (
        2,
        "error: not enough memory to train at this batch and crop size: a step on 4 crops of 256 px takes "
        "about 2.4 GiB on the CPU, more than the 1.0 GiB available; try a smaller --batch or --crop\n",
    )
    assert not (tmp_path / "run").exists()
    one = CliRunner().invoke(app, ["train", *options, "--device", "cpu", "--batch", "1", "--crop", "8192"])
    assert "a step on 1 crop of 8192 px takes about 625.0 GiB on the CPU" in one.stderr
    slip = CliRunner().invoke(app, ["train", *options, "--device", "cpu", "--batch", str(10**20)])
    assert (
        "a step on 100000000000000000000 crops of 384 px takes about 1.4e+20 GiB" in slip.stderr
    )  # 10,000 B a pixel


def test_split_without_pairs_is_refused_by_eval_and_calibrate_as_by_train(tmp_path: Path) -> None:
    # eval and calibrate ignored it: two folders have no splits
    folders = ["--inputs", str(TRAIN_PHOTOS), "--targets", str(tmp_path)]
    for command in (["eval"], ["calibrate", "-o", str(tmp_path / "c.safetensors")]):
        result = CliRunner().invoke(app, [*command, *folders, "--split", "train"])
        assert (result.exit_code, result.stderr) == (
            2,
            "error: --split applies to --pairs (which split of a data set's folders)\n",
        )


def test_images_in_sub_folders_of_two_pair_folders_are_said_to_be_unread(
    tmp_path: Path, model_file: Path
) -> None:
    inputs, targets = tmp_path / "in", tmp_path / "gt"
    for folder in (inputs, targets):
        (folder / "older").mkdir(parents=True)
        make_photo(folder / "a.png")
    make_photo(inputs / "older" / "b.png")  # scored nowhere, and nothing said of it
    options = [
        "--inputs",
        str(inputs),
        "--targets",
        str(targets),
        "--model",
        str(model_file),
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(app, ["eval", *options])
    assert result.exit_code == 0, result.stderr
    note = (
        f"note: not read: {inputs}'s 1 image in sub-folders (pairs are matched in the two folders themselves)"
    )
    assert note in result.stderr
    (targets / "older" / "b.png").write_bytes((inputs / "older" / "b.png").read_bytes())
    both = CliRunner().invoke(app, ["eval", *options, "--json"])
    assert f"{inputs}'s 1 image and {targets}'s 1 image in sub-folders" in both.stderr
    assert json.loads(both.stdout)["images"] == 1
    quiet = CliRunner().invoke(app, ["eval", *options, "-q"])
    assert "not read" not in quiet.stderr

    nested = inputs / "edited"  # the targets in a sub-folder of the inputs: read, so not "not read"
    (nested / "older").mkdir(parents=True)
    make_photo(nested / "a.png")
    make_photo(nested / "older" / "b.png")  # below the targets, not read
    options[options.index(str(targets))] = str(nested)
    within = CliRunner().invoke(app, ["eval", *options])
    assert within.exit_code == 0, within.stderr
    assert f"not read: {inputs}'s 1 image and {nested}'s 1 image in sub-folders" in within.stderr
    (inputs / "linked").symlink_to(nested)  # the targets by another name: still read, not "not read"
    options[options.index(str(nested))] = str(inputs / "linked")
    linked = CliRunner().invoke(app, ["eval", *options])
    assert f"not read: {inputs}'s 1 image and {inputs / 'linked'}'s 1 image in sub-folders" in linked.stderr
    options[options.index(str(inputs / "linked"))] = str(inputs)  # one folder as both: said once
    same = CliRunner().invoke(app, ["eval", *options])
    assert f"not read: {inputs}'s 3 images in sub-folders (pairs" in same.stderr  # linked/ is edited/


def test_an_unknown_split_is_refused_naming_the_option(tmp_path: Path, env: dict[str, str]) -> None:
    """The error said `unknown split 'foo'` without naming --split."""
    for command in ("train", "eval", "calibrate"):
        result = run([command, "--pairs", str(tmp_path), "--split", "foo"], env)
        assert (result.returncode, result.stderr) == (
            2,
            "error: --split foo: unknown split (choose one of train, test, valid)\n",
        ), command


def test_a_run_resumes_on_photos_that_moved_when_told_where_they_are(
    tmp_path: Path, env: dict[str, str]
) -> None:
    photos, run_dir = tmp_path / "photos", tmp_path / "run"
    shutil.copytree(TRAIN_PHOTOS, photos)
    tiny = shlex.split("--steps 2 --batch 2 --crop 32 --val-every 2 --no-ecr --device cpu -q --time-limit 0")
    assert run(["train", "--photos", str(photos), "--out", str(run_dir), *tiny], env).returncode == 0
    photos.rename(tmp_path / "moved")
    lost = run(["train", "--resume", str(run_dir)], env)
    assert (lost.returncode, lost.stderr) == (
        2,
        f"error: {photos}: no such folder; if the run's --photos moved, say where: "
        f"recnet train --resume {run_dir} --photos NEW\n",
    )
    found = run(["train", "--resume", str(run_dir), "--photos", str(tmp_path / "moved"), "-q"], env)
    assert found.returncode == 0, found.stderr
    assert (run_dir / "final.safetensors").is_file()


def test_a_seed_torch_cannot_take_is_refused_before_anything_is_written(
    tmp_path: Path, env: dict[str, str]
) -> None:
    for seed in ("-1", str(2**64)):
        options = ["--photos", str(TRAIN_PHOTOS), "--out", str(tmp_path / "run"), "--seed", seed]
        result = run(["train", *options, "--no-ecr", "--steps", "1"], env)
        reason = "give a number of 0 or more" if seed == "-1" else "use a seed below 2^64"
        assert result.returncode == 2 and result.stderr.startswith(f"error: --seed {seed}: {reason}")
        assert len(result.stderr.splitlines()) == 1
        assert not (tmp_path / "run").exists()


def test_a_dry_run_refuses_the_output_a_named_link_to_nothing_leads_to(tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "ok.png")
    (tmp_path / "lnk.png").symlink_to("ok_recnet.png")
    result = CliRunner().invoke(app, ["correct", str(photo), str(tmp_path / "lnk.png"), "-n"])
    assert result.exit_code == 1
    assert f"output {tmp_path / 'ok_recnet.png'} is an input file; refusing to overwrite it" in result.output


def test_a_stop_in_the_last_step_says_the_run_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It said "stopping after this step, with a checkpoint", then finished (exit 0) without a word of it
    from recnet_cli.train import loop

    monkeypatch.setattr(loop.StopSignals, "received", lambda self: "SIGTERM")  # heard during the only step
    options = "--steps 1 --batch 2 --crop 32 --val-every 1 --no-ecr --device cpu -q"
    command = ["train", "--photos", str(TRAIN_PHOTOS), "--out", str(tmp_path / "run"), *shlex.split(options)]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "note: SIGTERM came in the last step: the run is complete\n"  # -q: no scores
    unquiet = CliRunner().invoke(app, [*command[:-1], "--out", str(tmp_path / "run2")])
    lines = unquiet.stderr.splitlines()
    assert lines[-2] == "note: SIGTERM came in the last step: the run is complete"
    assert lines[-1].startswith("trained 1 step in ")  # the scores, as for any complete run


@pytest.mark.parametrize(
    ("stop", "name", "again", "status"),
    [
        (signal.SIGINT, "Ctrl-C", "Ctrl-C again stops at once", 130),
        (signal.SIGTERM, "SIGTERM", "a second signal stops at once", 143),  # 128 + 15, as shells report it
    ],
)
def test_ctrl_c_or_sigterm_stops_training_with_a_checkpoint(
    tmp_path: Path, env: dict[str, str], stop: signal.Signals, name: str, again: str, status: int
) -> None:
    run_dir = tmp_path / "run"
    options = "--steps 100000 --batch 2 --crop 32 --val-every 100000 --no-ecr --device cpu"
    command = [RECNET, "train", "--photos", str(TRAIN_PHOTOS), "--out", str(run_dir), *shlex.split(options)]
    training = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    metrics = run_dir / "metrics.jsonl"
    for _ in range(600):  # a step is done once it has a line of metrics
        if training.poll() is not None or (metrics.exists() and metrics.read_text().count("\n") >= 2):
            break
        time.sleep(0.1)
    training.send_signal(stop)
    _, stderr = training.communicate(timeout=120)
    assert training.returncode == status, stderr  # not 0, so `recnet train ... && recnet calibrate` stops
    assert f"note: {name}: stopping after this step, with a checkpoint ({again})" in stderr
    step = int(safetensors_header(run_dir / "checkpoint.safetensors")[1]["step"])
    assert 2 <= step < 100000 and f"note: interrupted: stopped at step {step} by {name}" in stderr
    assert "Traceback" not in stderr


def catches(pid: int, number: int) -> bool:
    """Whether process ``pid`` has a handler of its own for signal ``number`` (Linux's /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(caught >> (number - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads handlers from Linux's /proc")
def test_sigterm_from_the_programs_first_instant_exits_143(tmp_path: Path, env: dict[str, str]) -> None:
    # SIGTERM was taken as Ctrl-C, so a job that `kill`, `docker stop` or a scheduler ended exited 130
    photo = make_photo(tmp_path / "photo.png")
    correcting = subprocess.Popen([RECNET, "correct", str(photo)], env=env, stderr=subprocess.PIPE, text=True)
    while correcting.poll() is None and not catches(correcting.pid, signal.SIGTERM):
        time.sleep(0.001)  # before recnet's handler, SIGTERM would end Python with no word (-15)
    correcting.send_signal(signal.SIGTERM)
    _, stderr = correcting.communicate(timeout=120)
    assert correcting.returncode == 143, stderr
    assert stderr.startswith("note: interrupted: ") and "Traceback" not in stderr


def test_a_stop_before_the_first_step_interrupts_training_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the data loads there is nothing to save: Ctrl-C or SIGTERM stops at once, without a step."""
    real_build_data = loop.build_data

    def stopped_while_loading(config: TrainConfig) -> object:
        signal.raise_signal(signal.SIGINT)  # Ctrl-C, as Python takes it in a terminal (set below)
        return real_build_data(config)

    monkeypatch.setattr(loop, "build_data", stopped_while_loading)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as set up in a terminal (restored after)
    run_dir = tmp_path / "run"
    options = ["--photos", str(TRAIN_PHOTOS), "--out", str(run_dir), "--steps", "2", "--no-ecr"]
    result = CliRunner().invoke(app, ["train", *options, "--batch", "1", "--crop", "32"])
    assert result.exit_code == 130
    message = f"the run had not started ({run_dir} was not made), so the same command starts it"
    assert result.stderr == f"note: interrupted: {message}\n"
    assert not (run_dir / "checkpoint.safetensors").exists()


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (
            TrainingError("the loss was not finite for 10 steps in a row (last at step 10)"),
            "the loss was not finite for 10 steps in a row (last at step 10)",
        ),
        (
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB."),
            "not enough GPU memory to train at this batch and crop size: try a smaller --batch or --crop",
        ),
    ],
)
def test_training_that_fails_after_it_started_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception, said: str
) -> None:
    def failing(*_: object) -> dict[str, torch.Tensor]:
        raise failure

    monkeypatch.setattr(loop, "take_step", failing)
    options = ["--photos", str(TRAIN_PHOTOS), "--out", str(tmp_path / "run"), "--steps", "2", "--no-ecr"]
    result = CliRunner().invoke(app, ["train", *options, "--batch", "1", "--crop", "32", "-q"])
    assert (result.exit_code, result.stderr) == (1, f"error: {said}\n")


def test_a_run_that_diverged_by_its_end_fails_rather_than_offer_its_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its loss not finite at its last steps but too few in a row to stop it (a tester's at --lr 1), it
    # exited 0, naming a model whose output was NaN on every photo
    nan = float("nan")
    monkeypatch.setattr(loop, "validate", lambda session: ValScores(nan, nan, 20.0, 0.8))
    run_dir = tmp_path / "run"
    options = ["--photos", str(TRAIN_PHOTOS), "--out", str(run_dir), "--no-ecr", "--device", "cpu"]
    result = CliRunner().invoke(app, ["train", *options, *shlex.split("--steps 2 --batch 1 --crop 32 -q")])
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: {run_dir / 'final.safetensors'}: its output on the validation photos is not a number (NaN): "
        "the run diverged; try a lower learning rate in a new run\n",
    )


def test_train_and_eval_commands_as_a_user_runs_them(tmp_path: Path, env: dict[str, str]) -> None:
    run_dir = tmp_path / "run"
    tiny = shlex.split("--steps 3 --batch 2 --crop 32 --val-every 3 --no-ecr --device cpu -q --time-limit 0")
    first = run(["train", "--photos", str(TRAIN_PHOTOS), "--out", str(run_dir), *tiny], env)
    assert first.returncode == 0, first.stderr
    (note,) = first.stderr.strip().splitlines()  # quiet: no progress lines, only what to do next
    assert "stopped at step 1 by the time limit" in note and f"--resume {run_dir}" in note
    assert f"--model {run_dir / 'checkpoint.safetensors'}" in note
    finished = run(["train", "--resume", str(run_dir)], env)
    assert finished.returncode == 0, finished.stderr
    assert "step 3/3" in finished.stderr and "trained 3 steps" in finished.stderr
    again = run(["train", "--resume", str(run_dir)], env)  # a batch job that always resumes
    model = run_dir / "final.safetensors"
    assert (again.returncode, again.stderr) == (
        0,
        f"note: {run_dir}: already finished at step 3; its model: {model}\n",
    )
    silent = run(["train", "--resume", str(run_dir), "-q"], env)
    assert (silent.returncode, silent.stderr) == (0, "")
    inputs, targets = tmp_path / "in", tmp_path / "gt"
    inputs.mkdir()
    targets.mkdir()
    for path in sorted(TRAIN_PHOTOS.glob("*.jpg"))[:2]:
        photo = read_rgb(path)
        cv2.imwrite(str(targets / f"{path.stem}.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(inputs / f"{path.stem}.png"), cv2.cvtColor(photo // 3, cv2.COLOR_RGB2BGR))
    scored = run(
        ["eval", "--inputs", str(inputs), "--targets", str(targets), "--model", str(model), "--json"], env
    )
    assert scored.returncode == 0, scored.stderr
    report = json.loads(scored.stdout)
    assert report["model"] == str(model) and report["images"] == 2 and report["failed"] == []
    assert all(image["identity_psnr"] < 15 for image in report["per_image"])  # a third of the brightness
    damaged = inputs / "zz-damaged.png"  # scored last: the others are scored all the same
    damaged.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    (targets / "zz-damaged.png").write_bytes((targets / f"{path.stem}.png").read_bytes())
    with_damage = run(
        ["eval", "--inputs", str(inputs), "--targets", str(targets), "--model", str(model)], env
    )
    assert with_damage.returncode == 1
    assert f"error: {damaged}: truncated or corrupt image data" in with_damage.stderr
    assert "IHDR" not in with_damage.stderr  # OpenCV's own complaint about the file is not passed on
    said = " ".join(with_damage.stderr.split())
    assert "scored 2 of 3 pairs: 1 could not be scored (above) and is left out of the means" in said
    assert "on 2 pairs" in with_damage.stdout and "zz-damaged" not in with_damage.stdout


def test_a_photo_too_large_for_memory_and_disk_is_refused_from_its_header_before_it_is_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_file: Path
) -> None:
    # A 17 KB JPEG whose header claims 30000 x 30000 pixels was decoded first (1 min 43 s, 17 GB of memory)
    photo = make_photo(tmp_path / "a.jpg", (300, 200))
    data = bytearray(photo.read_bytes())
    start = data.find(b"\xff\xc0")
    data[start + 5 : start + 9] = (30000).to_bytes(2, "big") * 2
    claims = tmp_path / "claims.jpg"
    claims.write_bytes(
        bytes(data) + bytes(900_000)
    )  # as large as a JPEG of 900 MP may be (see the next test)
    monkeypatch.setattr(engine, "available_host_memory", lambda: 2**30)
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: types.SimpleNamespace(free=2**30))
    decoded: list[Path] = []
    monkeypatch.setattr(runner, "read_input", lambda path, quiet: decoded.append(path))
    for command in ("correct", "mask"):
        result = CliRunner().invoke(app, [command, str(claims), "--model", str(model_file)])
        assert result.exit_code == 1
        assert (
            f"error: {claims}: not enough memory for this 900.0 MP photo: its feature maps take 141.0 GiB"
        ) in result.stderr
    assert decoded == []
    # A header whose pixels alone no memory here holds is refused as a PNG's is when read: its feature maps'
    # advice (set TMPDIR to a folder with more room) could not help
    monkeypatch.setattr(imaging.read, "USABLE_MEMORY", 2**30)
    for command in ("correct", "mask"):
        result = CliRunner().invoke(app, [command, str(claims), "--model", str(model_file)])
        assert result.exit_code == 1
        assert (
            f"error: {claims}: image too large: its 30000 x 30000 pixels would take 10.1 GiB as float32, "
            "more than the 1.0 GiB of memory this process may use\n"
        ) in result.stderr
    assert decoded == []


def test_a_photo_whose_feature_maps_memory_cannot_hold_says_where_they_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(engine, "available_host_memory", lambda: 2**20)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    photo = make_photo(tmp_path / "big.png", (300, 200))
    bundled = Path(__file__).parents[1] / "weights" / "recnet-mixed.safetensors"
    for command in ("correct", "mask"):
        result = CliRunner().invoke(app, [command, str(photo), "--tile", "128", "--model", str(bundled)])
        assert result.exit_code == 0, result.output
        assert (
            f"note: {photo}: too large for the memory available, so some of its feature maps were kept in "
            f"files in {scratch} while it ran (slower)"
        ) in " ".join(result.output.split())
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "big.png",
        "big_mask.png",
        "big_recnet.png",
        "scratch",
    ]
    assert list(scratch.iterdir()) == []


def test_the_models_table_shows_control_characters_in_names_as_escapes() -> None:
    entry = ModelEntry("a\x1b[31mRED", "bundled", Path("a.safetensors"), 10, summary="line\nbreak")
    shown = Console(file=io.StringIO(), width=200)
    shown.print(console.models_table([entry], 200))
    table = shown.file.getvalue()
    assert "a\\x1b[31mRED" in table and "line\\nbreak" in table and "\x1b" not in table


def test_the_models_table_puts_details_under_a_long_name_on_a_narrow_terminal() -> None:
    # A Hub name pinned to its commit took 73 of 80 columns: where, size and about got a letter each
    pinned = "acme/other@fedcba9876543210fedcba9876543210fedcba98:weights.safetensors"
    entries = [
        ModelEntry(name, "hub cache", Path("w.safetensors"), 187_940, "fedcba98" * 5, "8 channels x 5 blocks")
        for name in (pinned, "acme/recnet")
    ]
    for width in (80, 100):
        shown = Console(file=io.StringIO(), width=width)
        shown.print(console.models_table(entries, width))
        lines = shown.file.getvalue().splitlines()
        assert lines[4].startswith(f"│ {pinned}")  # under the title and the heading
        assert lines[5].startswith("│   hub cache @ fedcba98 | 187.9 kB | 8 channels x 5 blocks")
    wide = Console(file=io.StringIO(), width=160)
    wide.print(console.models_table(entries, 160))
    assert f"│ {pinned} │ hub cache @ fedcba98 │ 187.9 kB │ 8 channels x 5 blocks" in wide.file.getvalue()


def test_a_model_whose_output_is_not_a_number_fails_each_photo_in_one_line(tmp_path: Path) -> None:
    # Weights that overflow (finite, 1e30 times the usual): a traceback in --strength auto's statistics, an
    # all-white picture at --strength 1
    torch.manual_seed(0)
    model = RECNet()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.mul_(1e30 if name.endswith("weight") else 1)
    model_path = tmp_path / "overflowing.safetensors"
    save_model(model, model_path, {})
    photos = [make_photo(tmp_path / name) for name in ("a.jpg", "b.png")]
    reason = (
        "the model's output is not a number (NaN): its weights make it overflow on this photo: try another "
        "model"
    )
    for command in (["correct", "-o", str(tmp_path / "out")], ["correct", "--strength", "1"], ["mask"]):
        result = CliRunner().invoke(app, [*command, *map(str, photos), "--model", str(model_path)])
        assert result.exit_code == 1
        said = reason.replace("output", "mask") if command == ["mask"] else reason  # what mask draws
        assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
            f"error: {photo}: {said}" for photo in photos
        ]
    assert set(tmp_path.iterdir()) == {*photos, *model_files(model_path), tmp_path / "out"}
    assert not any((tmp_path / "out").iterdir())  # no picture of NaN
    explained = CliRunner().invoke(app, ["explain", str(photos[0]), "--model", str(model_path)])
    assert (explained.exit_code, explained.stderr) == (1, f"error: {photos[0]}: {reason}\n")
    calibrating = ["calibrate", "--photos", str(TRAIN_PHOTOS), "-o", str(tmp_path / "c.safetensors")]
    calibrated = CliRunner().invoke(
        app, [*calibrating, "--model", str(model_path), "--size", "64", "--count", "1"]
    )
    assert calibrated.exit_code == 1
    stems = "|".join(re.escape(path.stem) for path in TRAIN_PHOTOS.iterdir())
    assert re.fullmatch(  # after the line that says, in a log, how many pairs there are
        f"Calibrating \\d+ pairs\nerror: {re.escape(str(model_path))}: ({stems}): {re.escape(reason)}\n",
        calibrated.stderr,
    )


def test_mask_draws_a_mask_that_is_a_number_whatever_the_corrected_photo_would_be(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = RECNet()
    with torch.no_grad():  # weights that overflow after the mask: the corrected photo alone is NaN
        for name, parameter in model.dualprocess.named_parameters():
            parameter.mul_(1e30 if name.startswith(("cat", "refine")) and name.endswith("weight") else 1)
    model_path = tmp_path / "broken-output.safetensors"
    save_model(model, model_path, {})
    photo = make_photo(tmp_path / "a.png")
    options = [str(photo), "--model", str(model_path), "-o", str(tmp_path / "out")]
    corrected = CliRunner().invoke(app, ["correct", *options])
    assert corrected.exit_code == 1 and "the model's output is not a number (NaN)" in corrected.stderr
    masked = CliRunner().invoke(app, ["mask", *options, "--raw"])
    assert masked.exit_code == 0, masked.output
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["a_mask.png", "a_mask_raw.png"]


def test_openmp_threads_spin_less_unless_the_user_says_how_they_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY"):
        monkeypatch.setenv(variable, "")  # so that monkeypatch puts back what was there, or nothing
        monkeypatch.delenv(variable)
    entry.spin_less_while_waiting()
    assert os.environ["GOMP_SPINCOUNT"] == entry.SPIN_COUNT
    monkeypatch.setenv("GOMP_SPINCOUNT", "infinite")
    entry.spin_less_while_waiting()
    assert os.environ["GOMP_SPINCOUNT"] == "infinite"
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    entry.spin_less_while_waiting()
    assert "GOMP_SPINCOUNT" not in os.environ


def test_a_strength_of_minus_zero_is_zero() -> None:
    # --strength -0 went into --json as -0.0
    from recnet_cli.options import parse_strength

    assert str(parse_strength("-0")) == "0.0" and parse_strength("0.25") == 0.25


def test_explain_names_its_reference_where_it_is_at_fault_and_never_writes_over_it(
    tmp_path: Path, model_file: Path
) -> None:
    photo, reference = make_photo(tmp_path / "a.png", (8, 6)), make_photo(tmp_path / "ref.png", (8, 6))
    options = ["explain", str(photo), "-r", str(reference), "--model", str(model_file), "--device", "cpu"]
    too_small = CliRunner().invoke(app, [*options, "-o", str(tmp_path / "sheet.png")])
    assert (too_small.exit_code, too_small.stderr) == (
        1,
        f"error: {reference}: 8x6 pixels is too small to score: SSIM needs 11 or more on each side\n",
    )
    before = reference.read_bytes()
    onto_reference = CliRunner().invoke(app, [*options, "-o", str(reference), "--overwrite"])
    assert (onto_reference.exit_code, onto_reference.stderr) == (
        1,
        f"error: {reference} is an input; refusing to overwrite it\n",
    )
    assert reference.read_bytes() == before


def test_explain_given_a_folder_says_it_takes_one_photo(tmp_path: Path) -> None:
    # it said "is a folder" (exit 1), and not what to give instead
    result = CliRunner().invoke(app, ["explain", str(tmp_path)])
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {tmp_path}: a folder; explain takes one photo (correct and mask take folders)\n",
    )


def test_training_on_a_folder_with_raw_files_says_they_are_left_out(tmp_path: Path) -> None:
    # correct said "left out 1 photo file (.cr2)"; train left it out without a word
    photos = tmp_path / "photos"
    shutil.copytree(TRAIN_PHOTOS, photos)
    (photos / "sub").mkdir()
    (photos / "sub" / "IMG_1.CR2").write_bytes(b"II*\0raw")
    tiny = "--steps 1 --batch 1 --crop 32 --no-ecr --device cpu"
    result = CliRunner().invoke(
        app, ["train", "--photos", str(photos), "-o", str(tmp_path / "run"), *tiny.split()]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith(
        "note: left out 1 photo file (.cr2) that recnet cannot read, a camera RAW file: convert it to TIFF "
        "or JPEG first\n"
    )
