"""recnet_cli.weights: reading the authors' checkpoints, the project's own format, bundled models, listing."""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import pickle
import random
import shlex
import shutil
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from fake_hub import FakeHub, commit_of, point_huggingface_hub_at, set_offline
from huggingface_hub import hf_hub_download
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor

import recnet_cli
from recnet_cli.autostrength import FEATURE_COUNT, StrengthCalibration
from recnet_cli.model import RECNet, parameter_count
from recnet_cli.train.run_folder import CHECKPOINT_FILE
from recnet_cli.weights import (
    ModelEntry,
    ModelNotFoundError,
    WeightsError,
    download,
    foreign_card,
    load_model,
    models_to_list,
    save_model,
)
from recnet_cli.weights import save as saving
from recnet_cli.weights.card import card_summary, read_card
from recnet_cli.weights.hub import HUB_DEFAULT_FILENAME, HubRef, parse_hub_ref
from recnet_cli.weights.listing import bundled_models, cached_ref
from recnet_cli.weights.locate import WEIGHTS_DIR_ENV, bundled_model, reference_problem

StateDict = dict[str, Tensor]
REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "weights" / "recnet-mixed.safetensors"
NOT_SAFE = "not a RECNet checkpoint recnet can read safely"
WHAT_RECNET_READS = "recnet reads .safetensors, or a .pth/.pt/.ckpt/.bin/.pth.tar state dict"


def seeded_model(channels: int = 4, blocks: int = 2, seed: int = 0) -> RECNet:
    torch.manual_seed(seed)
    return RECNet(channels, blocks).eval()


@pytest.fixture
def small_model() -> RECNet:
    return seeded_model()


@pytest.fixture
def image() -> Tensor:
    return torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(7))


@pytest.fixture
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(folder))
    return folder


def same_outputs(model: RECNet, other: RECNet, image: Tensor) -> bool:
    with torch.no_grad():
        return torch.equal(model(image), other(image))


def load_error(ref: str | None, kind: type[WeightsError] = WeightsError) -> str:
    """The one-line message ``load_model(ref)`` fails with."""
    with pytest.raises(kind) as caught:
        load_model(ref)
    message = str(caught.value)
    assert "\n" not in message
    return message


# ---- the authors' checkpoints ----

CHECKPOINT_LAYOUTS: dict[str, tuple[str, Callable[[StateDict], object]]] = {
    "bare state_dict": (".pth", lambda sd: sd),
    "DataParallel module. prefix": (".pth", lambda sd: {f"module.{key}": value for key, value in sd.items()}),
    "torch.compile's _orig_mod. prefix": (
        ".pth",
        lambda sd: {f"_orig_mod.{key}": value for key, value in sd.items()},
    ),
    "DataParallel twice": (".pth", lambda sd: {f"module.module.{key}": value for key, value in sd.items()}),
    "a Lightning module's model. prefix, in its checkpoint": (
        ".ckpt",
        lambda sd: {
            "epoch": 3,
            "global_step": 1200,
            "pytorch-lightning_version": "2.5.0",
            "state_dict": {f"model._orig_mod.{key}": value for key, value in sd.items()},
            "optimizer_states": [
                {"state": {0: {"step": torch.tensor(1200.0)}}, "param_groups": [{"lr": 1e-4}]}
            ],
            "lr_schedulers": [],
            "hparams_name": "kwargs",
            "hyper_parameters": {"lr": 1e-4, "crop": 384},
            "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"current": {"completed": 3}}}},
        },
    ),
    "a Lightning module with its loss's network beside the model": (
        ".ckpt",
        lambda sd: {
            "state_dict": {f"model._orig_mod.{key}": value for key, value in sd.items()}
            | {"loss.vgg.features.0.weight": torch.zeros(64, 3, 3, 3), "ema.decay": torch.tensor(0.999)},
            "epoch": 3,
        },
    ),
    "in state_dict, with extras": (".pt", lambda sd: {"state_dict": sd, "epoch": 12, "lr": 1e-4}),
    "in params": (".pth", lambda sd: {"params": sd}),
    "in model, with the optimizer's": (
        ".pth",
        lambda sd: {"model": sd, "optimizer": {"state": {}}, "epoch": 3},
    ),
    "in model_state_dict (PyTorch's tutorial)": (".pt", lambda sd: {"epoch": 3, "model_state_dict": sd}),
    "in net": (".pth", lambda sd: {"net": sd}),
    "as the Hub names PyTorch's weights (pytorch_model.bin)": (".bin", lambda sd: sd),
    "as older research code named its checkpoints": (".PTH.tar", lambda sd: {"state_dict": sd, "epoch": 3}),
    "params_ema preferred over params": (
        ".pth",
        lambda sd: {"params": {key: torch.zeros_like(value) for key, value in sd.items()}, "params_ema": sd},
    ),
}


@pytest.mark.parametrize("layout", CHECKPOINT_LAYOUTS)
def test_authors_checkpoint_loads_with_the_same_outputs(
    tmp_path: Path, small_model: RECNet, image: Tensor, layout: str
) -> None:
    suffix, wrap = CHECKPOINT_LAYOUTS[layout]
    path = tmp_path / f"model{suffix}"
    torch.save(wrap(small_model.state_dict()), path)

    loaded = load_model(str(path))

    assert same_outputs(loaded.model, small_model, image)
    assert (loaded.source, loaded.path, loaded.card) == (str(path), path, {})


@pytest.mark.parametrize(("channels", "blocks"), [(8, 5), (4, 2), (16, 1)])
def test_architecture_is_read_from_the_state_dict(
    tmp_path: Path, image: Tensor, channels: int, blocks: int
) -> None:
    model = seeded_model(channels, blocks, seed=3)
    path = tmp_path / "model.pth"
    torch.save(model.state_dict(), path)

    loaded = load_model(str(path)).model

    assert (loaded.channels, loaded.num_blocks) == (channels, blocks)
    assert same_outputs(loaded, model, image)


def test_loaded_model_is_float32_eval_on_cpu(tmp_path: Path, small_model: RECNet) -> None:
    path = tmp_path / "half.pth"
    torch.save({key: value.half() for key, value in small_model.state_dict().items()}, path)

    model = load_model(str(path)).model

    assert not model.training
    assert {(p.dtype, p.device.type) for p in model.parameters()} == {(torch.float32, "cpu")}


def without(sd: StateDict, *keys: str) -> StateDict:
    return {key: value for key, value in sd.items() if key not in keys}


NORM_KEYS = [f"dualprocess.conv2.norm.{name}" for name in ("IN.bias", "IN.weight", "alpha", "blur.kernel")]
STRICT_CASES: dict[str, tuple[Callable[[StateDict], StateDict], str]] = {
    "missing": (
        lambda sd: without(sd, "dualprocess.conv2.norm.alpha"),
        "missing key dualprocess.conv2.norm.alpha",
    ),
    "several missing": (
        lambda sd: without(sd, *NORM_KEYS),
        f"missing keys {', '.join(NORM_KEYS[:3])}, and 1 more",
    ),
    "the last block missing": (  # it was read as a model of one block less, whose join did not fit
        lambda sd: {key: value for key, value in sd.items() if not key.startswith("dualprocess.conv2.")},
        "missing keys dualprocess.conv2.fuse1.bias, dualprocess.conv2.fuse1.weight, "
        "dualprocess.conv2.fuse2.bias, and 38 more",
    ),
    "unexpected": (lambda sd: sd | {"foo": torch.zeros(1)}, "unexpected key foo"),
    "a join of a million blocks": (  # a few bytes on disk: no model of that many blocks is built
        lambda sd: sd | {"dualprocess.cat.weight": torch.zeros(1).expand(4, 4 * 10**6, 1, 1)},
        "shape mismatch for dualprocess.cat.weight: file (4, 4000000, 1, 1) vs model (4, 8, 1, 1)",
    ),
    "shape": (
        lambda sd: sd | {"dualprocess.cat.weight": torch.zeros(4, 6, 1, 1)},
        "shape mismatch for dualprocess.cat.weight: file (4, 6, 1, 1) vs model (4, 8, 1, 1)",
    ),
}


@pytest.mark.parametrize("case", STRICT_CASES)
def test_strict_loading_names_the_key(tmp_path: Path, small_model: RECNet, case: str) -> None:
    damage, reason = STRICT_CASES[case]
    path = tmp_path / "model.pth"
    torch.save(damage(small_model.state_dict()), path)

    assert load_error(str(path)) == f"{path}: {reason}"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ({"fc.weight": torch.zeros(2, 2)}, "not a RECNet state_dict"),
        ({"state_dict": {"extract.weight": 1}}, "not a RECNet checkpoint"),
        ([torch.zeros(1)], "not a RECNet checkpoint"),
        ({0: torch.zeros(1)}, "not a RECNet checkpoint (expected a state_dict of tensors; found key 0)"),
        (
            {"params": {1: torch.zeros(1)}},
            "not a RECNet checkpoint (expected a state_dict of tensors; found key 1)",
        ),
        (
            {"weights": {"extract.weight": torch.zeros(1)}, "epoch": 3},
            "not a RECNet checkpoint (expected a state_dict of tensors; found keys epoch, weights)",
        ),
        (
            {"extract.weight": torch.zeros(1), "dualprocess.conv1.weight": torch.zeros(1), "epoch": 3},
            "not a RECNet checkpoint (expected a state_dict of tensors; epoch (int) is not a tensor)",
        ),
        *(  # a width the model built for it would fail on at the first photo
            (
                {"extract.weight": torch.zeros(width, 3, 3, 3), "dualprocess.conv1.weight": torch.zeros(1)},
                f"not a RECNet checkpoint of a supported layout: RECNet needs an even number of channels, "
                f"at least 4, not {width}",
            )
            for width in (0, 2, 5)
        ),
    ],
    ids=[
        "other network",
        "not tensors",
        "a list",
        "number keys",
        "wrapped number keys",
        "other wrapper",
        "a state_dict with a number in it",
        "0",
        "2",
        "5",
    ],
)
def test_non_recnet_checkpoints_are_rejected(tmp_path: Path, content: object, reason: str) -> None:
    path = tmp_path / "model.pth"
    torch.save(content, path)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor a raw PyTorch warning, as building a model 0 wide gave
        assert load_error(str(path)).startswith(f"{path}: {reason}")


@pytest.mark.parametrize("shape", [(), (8,), (8, 3)], ids=["a number", "a vector", "a matrix"])
def test_a_first_layer_that_is_not_a_convolution_is_not_taken_for_recnet(
    tmp_path: Path, shape: tuple[int, ...]
) -> None:
    # Another network's layer under RECNet's names: its width is not a RECNet's channel count
    path = tmp_path / "model.pth"
    torch.save({"extract.weight": torch.zeros(shape), "dualprocess.conv1.weight": torch.zeros(1)}, path)

    assert load_error(str(path)) == (
        f"{path}: not a RECNet state_dict (no extract.weight and dualprocess.convN keys)"
    )


def leave_marker(path: str) -> None:
    Path(path).touch()


class LeavesMarker:
    """Unpickling this object runs ``leave_marker``, or the shell's ``touch`` through ``os.system``: code
    from the file."""

    def __init__(self, marker: Path, through_shell: bool = False) -> None:
        self.marker, self.through_shell = str(marker), through_shell

    def __reduce__(self) -> tuple[Callable[[str], object], tuple[str]]:
        if self.through_shell:
            return os.system, (f"touch {shlex.quote(self.marker)}",)
        return leave_marker, (self.marker,)


# PyTorch names the two kinds of refused global differently: one outside its allowed list ("GLOBAL
# tests.test_weights.leave_marker was not an allowed global") and one in a blocked module ("unsupported
# GLOBAL posix.system whose module posix is blocked")
@pytest.mark.parametrize("through_shell", [False, True])
def test_checkpoint_with_pickled_code_is_refused_without_running_it(
    tmp_path: Path, small_model: RECNet, through_shell: bool
) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "model.pth"
    torch.save({"state_dict": small_model.state_dict(), "extra": LeavesMarker(marker, through_shell)}, path)

    code = f"{os.system.__module__}.system" if through_shell else f"{__name__}.leave_marker"
    reason = f"a pickle that would run code: {code}"
    assert load_error(str(path)) == f"{path}: {NOT_SAFE} ({reason}); {WHAT_RECNET_READS}"
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the file really runs code when unpickled the unsafe way
    assert marker.exists()


def test_pickled_whole_module_is_refused(tmp_path: Path, small_model: RECNet) -> None:
    path = tmp_path / "model.pt"
    torch.save(small_model, path)

    reason = "a pickle that would run code: recnet_cli.model.recnet.RECNet"
    assert load_error(str(path)) == f"{path}: {NOT_SAFE} ({reason}); {WHAT_RECNET_READS}"


def test_a_torchscript_archive_is_refused_in_one_line_without_torchs_advice(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scripted.pt"
    with warnings.catch_warnings():  # "`torch.jit.script` is deprecated": making the file, not reading it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = load_error(str(path))

    assert message == f"{path}: a TorchScript archive (code, not weights), {NOT_SAFE}; {WHAT_RECNET_READS}"
    assert "weights_only" not in message
    assert [str(warning.message) for warning in caught] == []  # torch's "looks like a TorchScript archive"
    assert capfd.readouterr().err == ""


def test_a_pickle_the_safe_loader_cannot_read_is_refused_quietly(tmp_path: Path, small_model: RECNet) -> None:
    """A pickle of protocol 4 (a plain pickle.dump, or torch.save's pickle_protocol=4): torch's safe loader
    warns about the protocol, then cannot read it."""
    path = tmp_path / "plain.pt"
    path.write_bytes(pickle.dumps(small_model.state_dict(), protocol=4))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = load_error(str(path))

    reason = "a pickle the safe loader cannot read: Unsupported operand 149"
    assert message == f"{path}: {NOT_SAFE} ({reason}); {WHAT_RECNET_READS}"
    assert [str(warning.message) for warning in caught] == []


def test_a_checkpoint_saved_as_before_pytorch_1_6_loads(
    tmp_path: Path, small_model: RECNet, image: Tensor
) -> None:
    path = tmp_path / "model.pth"
    torch.save(small_model.state_dict(), path, _use_new_zipfile_serialization=False)  # a bare pickle

    assert same_outputs(load_model(str(path)).model, small_model, image)


SAVERS: dict[str, Callable[[RECNet, Path], object]] = {
    "model.pth": lambda model, path: torch.save(model.state_dict(), path),
    "model.safetensors": lambda model, path: path.write_bytes(safetensors_bytes(model.state_dict())),
}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("model.pth", "not a readable PyTorch checkpoint (cut short or damaged: its end is missing; copy"),
        ("model.safetensors", "cut short or damaged: its end is missing; copy or download it again"),
    ],
)
def test_damaged_files_are_reported(tmp_path: Path, small_model: RECNet, name: str, reason: str) -> None:
    path = tmp_path / name
    SAVERS[name](small_model, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a download cut short

    assert load_error(str(path)).startswith(f"{path}: {reason}")


def test_a_pickled_checkpoint_cut_short_is_called_so(tmp_path: Path, small_model: RECNet) -> None:
    path = tmp_path / "old.pth"
    torch.save(small_model.state_dict(), path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:-100])

    assert "(cut short or damaged: its end is missing;" in load_error(str(path))


@pytest.mark.parametrize("length", [3, 10, 200, 400, 800, 1500])
def test_a_pickled_checkpoint_cut_inside_its_pickles_is_called_cut_short(
    tmp_path: Path, small_model: RECNet, length: int
) -> None:
    # Cut before its tensors' data, the unpickler meets anything: the end of its input (EOFError), a name
    # cut short that it took for code to run, an index out of range, too few bytes for a number
    path = tmp_path / "old.pth"
    torch.save(small_model.state_dict(), path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:length])

    assert load_error(str(path)) == (
        f"{path}: not a readable PyTorch checkpoint (cut short or damaged: its end is missing; copy or"
        " download it again)"
    )


def test_a_pre_1_6_checkpoint_whose_damage_reads_as_a_length_of_exabytes_is_called_damaged(
    tmp_path: Path,
) -> None:
    # reading its pickles to tell damage from code asked for the 4 EiB, and the MemoryError was a traceback
    path = tmp_path / "old.pth"
    huge_bytearray = b"\x80\x05\x96" + (2**62).to_bytes(8, "little") + b"abc"
    path.write_bytes(pickle.dumps(torch.serialization.MAGIC_NUMBER, protocol=2) + huge_bytearray)

    assert load_error(str(path)) == (
        f"{path}: not a readable PyTorch checkpoint (cut short or damaged: its end is missing; copy or"
        " download it again)"
    )


@pytest.mark.parametrize("name", SAVERS)
def test_an_empty_file_is_called_empty(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.touch()

    assert load_error(str(path)) == f"{path}: empty file"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            random.Random(0).randbytes(4096),
            "not a PyTorch checkpoint (torch.save writes a zip archive or a pickle)",
        ),
        (b"this is not a model at all", 'a text file, not weights (it begins "this is not a model at all")'),
    ],
    ids=["random bytes", "text"],
)
def test_a_file_that_is_no_checkpoint_at_all_is_not_said_to_hold_pickled_code(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "model.pth"
    path.write_bytes(content)

    assert load_error(str(path)) == f"{path}: {reason}"


def zip_of(path: Path) -> bytes:
    """A zip archive holding the file at ``path``."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(path, path.name)
    return archive.getvalue()


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_a_file_that_is_something_else_is_called_what_it_is(
    tmp_path: Path, small_model: RECNet, suffix: str
) -> None:
    # Each was "not a valid safetensors file (Error while deserializing header: header too large)", or "not
    # a PyTorch checkpoint", whatever it was: a git clone without git-lfs, a saved web page, a photo.
    other_format = {".safetensors": ".pth", ".pth": ".safetensors"}[suffix]
    SAVERS[f"model{other_format}"](small_model, tmp_path / f"weights{other_format}")
    kinds = {
        "lfs": (
            b"version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 190000\n",
            "a Git LFS pointer, not the weights: fetch them (git lfs pull in the clone)",
        ),
        **{
            name: (
                page,
                "a web page, not the weights (the page that shows the file, or a server's error? download "
                "the file itself: on the Hub, its resolve/ address, not blob/)",
            )
            for name, page in (
                ("page", b"\n<!DOCTYPE html>\n<html><head><title>model</title></head></html>"),
                ("saved-page", b"\xef\xbb\xbf<!-- saved from url=(0014)about:internet -->\n<html></html>"),
                ("error-page", b'<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>'),
            )
        },
        "gzip": (gzip.compress(b"weights"), "an archive, not the weights: unpack it"),
        "zip": (zip_of(tmp_path / f"weights{other_format}"), "an archive, not the weights: unpack it"),
        "answer": (b"Entry not found", 'a text file, not weights (it begins "Entry not found")'),
        "photo": (
            (REPO / "tests" / "data" / "train-photos" / "bsd100-img_007.jpg").read_bytes(),
            "a JPEG image, not weights",
        ),
        "renamed": (
            (tmp_path / f"weights{other_format}").read_bytes(),
            "a PyTorch checkpoint (torch.save), not a safetensors file: rename it renamed.pth"
            if suffix == ".safetensors"
            else "a safetensors file, not a PyTorch checkpoint: rename it renamed.safetensors",
        ),
    }
    for name, (content, reason) in kinds.items():
        path = tmp_path / f"{name}{suffix}"
        path.write_bytes(content)
        assert load_error(str(path)) == f"{path}: {reason}"


def test_a_checkpoint_saved_as_before_pytorch_1_6_named_safetensors_is_called_a_checkpoint(
    tmp_path: Path, small_model: RECNet
) -> None:
    path = tmp_path / "old.safetensors"
    torch.save(small_model.state_dict(), path, _use_new_zipfile_serialization=False)  # a bare pickle

    assert load_error(str(path)) == (
        f"{path}: a PyTorch checkpoint (torch.save), not a safetensors file: rename it old.pth"
    )


def test_a_safetensors_file_named_pth_tar_is_to_be_renamed_without_either(
    tmp_path: Path, small_model: RECNet
) -> None:
    path = tmp_path / "run.pth.tar"
    path.write_bytes(safetensors_bytes(small_model.state_dict()))

    assert (
        load_error(str(path))
        == f"{path}: a safetensors file, not a PyTorch checkpoint: rename it run.safetensors"
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("x" * 40, "x" * 40),  # the longest line shown whole
        ("x" * 41, "x" * 40 + "…"),
        ("a" + "é" * 300, "a" + "é" * 39 + "…"),  # the 512 bytes read end inside an é
    ],
    ids=["40 characters", "41 characters", "a character cut at the end of what is read"],
)
def test_a_text_file_is_quoted_by_its_first_line_up_to_40_characters(
    tmp_path: Path, text: str, shown: str
) -> None:
    path = tmp_path / "model.pth"
    path.write_text(text + "\n", encoding="utf-8")

    assert load_error(str(path)) == f'{path}: a text file, not weights (it begins "{shown}")'


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_that_are_not_finite_are_refused(tmp_path: Path, small_model: RECNet, value: float) -> None:
    """Such a model would turn every photo black, fail calibration and poison training."""
    with torch.no_grad():
        small_model.extract.weight[0, 0, 0, 0] = value
        small_model.dualprocess.conv1.fuse1.bias.fill_(value)
    path = tmp_path / "model.safetensors"
    save_model(small_model, path, {})

    assert load_error(str(path)) == (
        f"{path}: damaged weights: NaN or infinite values in keys "
        "dualprocess.conv1.fuse1.bias, extract.weight"
    )


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool, torch.float8_e4m3fn])
def test_weights_of_a_type_no_model_is_stored_in_are_refused(
    tmp_path: Path, small_model: RECNet, dtype: torch.dtype
) -> None:
    # Integers and booleans loaded without a word and corrected photos into noise; float8 was a traceback
    path = tmp_path / "model.safetensors"
    tensors = {key: value.to(dtype) for key, value in small_model.state_dict().items()}
    path.write_bytes(safetensors_bytes(tensors))
    problem = load_error(str(path))
    assert problem.startswith(f"{path}: {str(dtype).removeprefix('torch.')} values in keys ")
    assert problem.endswith("; RECNet's weights are float32, float16, bfloat16 or float64")


def test_weights_stored_in_float64_load_with_the_same_outputs(
    tmp_path: Path, small_model: RECNet, image: Tensor
) -> None:
    # The authors' reference arrays are float64: weights exported with them are weights
    path = tmp_path / "model.safetensors"
    path.write_bytes(safetensors_bytes({k: v.double() for k, v in small_model.state_dict().items()}))

    assert same_outputs(load_model(str(path)).model, small_model, image)


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("sparse", "sparse_coo tensors in key extract.weight; RECNet's weights are dense tensors"),
        (
            "meta",
            "tensors without values (on the meta device) in key extract.weight; save the model once its "
            "weights are loaded",
        ),
    ],
)
def test_weights_that_are_not_dense_values_are_refused(
    tmp_path: Path, small_model: RECNet, kind: str, problem: str
) -> None:
    # A sparse tensor, or one of the meta device (a shape without values), ended in PyTorch's traceback
    tensors = dict(small_model.state_dict())
    weight = tensors["extract.weight"]
    tensors["extract.weight"] = (
        weight.to_sparse() if kind == "sparse" else torch.empty_like(weight, device="meta")
    )
    path = tmp_path / "model.pth"
    torch.save(tensors, path)
    assert load_error(str(path)) == f"{path}: {problem}"


def test_a_card_with_another_calibration_than_the_weights_file_is_refused(
    weights_dir: Path, small_model: RECNet
) -> None:
    # A model calibrated again and shared with its old card got no calibration, or another model's card
    # gave it that model's calibration, without a word
    from recnet_cli.weights.card import card_fields
    from recnet_cli.weights.formats import safetensors_header

    calibrated, plain = weights_dir / "calibrated.safetensors", weights_dir / "plain.safetensors"
    save_model(small_model, calibrated, {"auto_strength": {"intercept": 0.5}})
    save_model(small_model, plain, {"steps": 10})
    own_cards = {path: path.with_suffix(".json").read_text() for path in (calibrated, plain)}
    assert card_fields(safetensors_header(calibrated)[1])["auto_strength"] == {"intercept": 0.5}
    assert load_model(str(calibrated)).card["auto_strength"] == {"intercept": 0.5}  # its own card: loads
    for path, card, differs in (
        (calibrated, plain, "no strength calibration, where the file holds one"),
        (plain, calibrated, "a strength calibration, where the file holds none"),
    ):
        path.with_suffix(".json").write_text(own_cards[card])
        assert load_error(str(path)) == (
            f"{path}: its card ({path.stem}.json) holds {differs}: the card of other weights; replace it "
            "with the card saved with them, or remove it (the file's own card is then read)"
        )
    card = json.loads(own_cards[calibrated]) | {"auto_strength": {"intercept": 0.7}}
    calibrated.with_suffix(".json").write_text(json.dumps(card))
    assert "holds another strength calibration than the file: " in load_error(str(calibrated))
    card["auto_strength"] = {"intercept": 0.5000}  # saved again by a tool that writes numbers its own way
    calibrated.with_suffix(".json").write_text(json.dumps(card).replace("0.5", "5e-1"))
    assert load_model(str(calibrated)).card["auto_strength"] == {"intercept": 0.5}
    calibrated.with_suffix(".json").unlink()  # the file's own card is read
    assert load_model(str(calibrated)).card["auto_strength"] == {"intercept": 0.5}


def test_a_card_of_another_model_beside_the_weights_is_refused(
    weights_dir: Path, small_model: RECNet
) -> None:
    # The card beside them said 16 channels x 3 blocks of 4 x 2 weights, and its strength calibration, of
    # another model, would have set every photo's strength
    path = weights_dir / "model.safetensors"
    save_model(small_model, path, {"steps": 10})
    card = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps(card | {"channels": 16, "blocks": 3}))
    problem = (
        f"{path}: its card (model.json) describes 16 channels x 3 blocks, but the weights are 4 channels x 2 "
        "blocks: the card of another model; replace or remove it"
    )
    assert load_error(str(path)) == problem
    assert [entry.problem for entry in models_to_list()[0]] == [problem]  # listed as damaged
    # one size right is not enough: with its channels right, a card of 3 blocks would be taken for 2's
    path.with_suffix(".json").write_text(json.dumps(card | {"blocks": 3}))
    assert load_error(str(path)) == (
        f"{path}: its card (model.json) describes 4 channels x 3 blocks, but the weights are 4 channels x 2 "
        "blocks: the card of another model; replace or remove it"
    )
    path.with_suffix(".json").write_text(json.dumps(card | {"channels": 16, "auto_strength": {}}))
    assert load_error(str(path)) == (
        f"{path}: its card (model.json) describes 16 channels x 2 blocks, but the weights are 4 channels x 2 "
        "blocks: the card of another model (its strength calibration is that model's); replace or remove it"
    )
    path.with_suffix(".json").write_text(json.dumps({"blocks": 3}))  # one size alone, said alone
    assert "its card (model.json) describes 3 blocks, but the weights are" in load_error(str(path))
    path.with_suffix(".json").write_text(json.dumps(card | {"channels": "4"}))  # as written by hand: loads
    assert load_model(str(path)).model.num_blocks == 2


def test_a_quantized_checkpoint_is_refused_in_one_line_without_pytorch_s_warnings(
    tmp_path: Path, small_model: RECNet
) -> None:
    # Two lines of PyTorch's deprecation warnings (TypedStorage, quantized tensors) came before the error
    tensors = dict(small_model.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tensors["extract.weight"] = torch.quantize_per_tensor(tensors["extract.weight"], 0.01, 0, torch.qint8)
    path = tmp_path / "model.pth"
    torch.save(tensors, path)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        problem = load_error(str(path))
    assert problem.startswith(f"{path}: qint8 values in key extract.weight; RECNet's weights are")
    assert [str(warning.message) for warning in said] == []


def test_the_shapes_a_file_declares_are_checked_before_a_model_of_them_is_built(tmp_path: Path) -> None:
    # A 217 KB file naming 2000 channels and 20 blocks: the model built for it would take about 40 GB.
    tensors = {"extract.weight": torch.zeros(2000, 3, 3, 3)}
    tensors |= {f"dualprocess.conv{block}.x": torch.zeros(0) for block in range(1, 21)}
    path = tmp_path / "wide.safetensors"
    path.write_bytes(safetensors_bytes(tensors))
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))\n"
        "from recnet_cli.weights import WeightsError, load_model\n"
        "try:\n"
        "    load_model(sys.argv[1])\n"
        "except WeightsError as error:\n"
        "    print(error)\n"
    )
    command = [sys.executable, "-c", code, str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"{path}: missing keys dualprocess.cat.bias, dualprocess.cat.weight, ")


def test_loading_a_model_leaves_pytorchs_compiler_unloaded() -> None:
    # The shape check builds a model on the meta device, where PyTorch makes arange in Python code that loads
    # TorchDynamo and SymPy: 1.2 s more of every command's start on two cores, for nothing recnet uses.
    code = (
        "import sys\n"
        "from recnet_cli.weights import load_model\n"
        "load_model(sys.argv[1])\n"
        "print(sorted(name for name in ('torch._dynamo', 'sympy') if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(BUNDLED)], capture_output=True, text=True, timeout=120
    )
    assert (result.returncode, result.stdout) == (0, "[]\n"), result.stderr[-2000:]


# ---- the project's own format ----


def test_save_and_load_round_trip(tmp_path: Path, small_model: RECNet, image: Tensor) -> None:
    card = {
        "training_data": "MSEC subset",
        "steps": 1200,
        "validation": {"psnr": 21.5, "per_image": [20.0] * 9, "pair": [1, 2]},
        "held_out": {"under": {"pairs": 28, "auto_psnr": 21.79}},
        "channels": 99,
    }
    path = tmp_path / "out" / "mini.safetensors"

    save_model(small_model, path, card)
    loaded = load_model(str(path))

    assert same_outputs(loaded.model, small_model, image)
    architecture = {"architecture": "RECNet", "channels": 4, "blocks": 2}
    expected_card = (
        architecture | {"parameters": parameter_count(small_model)} | without_key(card, "channels")
    )
    assert loaded.card == expected_card
    assert sorted(p.name for p in path.parent.iterdir()) == ["mini.json", "mini.md", "mini.safetensors"]
    markdown = path.with_suffix(".md").read_text()
    for line in (
        "# mini",
        "- **channels**: 4",
        "- **training_data**: MSEC subset",
        "  - psnr: 21.5",
        "  - per_image: 9 numbers (in the .json card)",  # long lists only by their length, for people
        "  - pair: [1, 2]",
        "  - under: pairs 28, auto_psnr 21.79",  # a mapping by its names and values, not as Python writes it
    ):
        assert line in markdown.splitlines()


def without_key(card: dict[str, object], key: str) -> dict[str, object]:
    return {name: value for name, value in card.items() if name != key}


def test_safetensors_metadata_carries_the_card_fields_with_mappings_as_json(
    tmp_path: Path, small_model: RECNet
) -> None:
    path = tmp_path / "mini.safetensors"
    save_model(
        small_model, path, {"training_data": "MSEC subset", "steps": 1200, "validation": {"psnr": 21.5}}
    )
    with safe_open(path, framework="pt") as file:
        metadata = file.metadata()

    expected = {"architecture": "RECNet", "channels": "4", "blocks": "2", "training_data": "MSEC subset"}
    expected |= {"parameters": str(parameter_count(small_model)), "steps": "1200"}
    assert metadata == expected | {"validation": '{"psnr": 21.5}'}
    card = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").unlink()
    # without the JSON card (a Hub repository with no model.json), the metadata is the card, as it was
    assert load_model(str(path)).card == card and card["steps"] == 1200


def test_a_card_s_text_that_reads_as_a_json_list_stays_text_in_the_metadata_alone(
    tmp_path: Path, small_model: RECNet
) -> None:
    path = tmp_path / "mini.safetensors"
    save_model(small_model, path, {"tags": "[1, 2]", "notes": "[draft]"})
    path.with_suffix(".json").unlink()

    card = load_model(str(path)).card
    assert (card["tags"], card["notes"]) == ("[1, 2]", "[draft]")


def test_a_model_whose_name_is_not_utf8_loads(tmp_path: Path, small_model: RECNet, image: Tensor) -> None:
    # safetensors takes only UTF-8 names; a Latin-1 one (café from an old system) is bytes on Linux
    path = tmp_path / os.fsdecode(b"caf\xe9.safetensors")
    save_model(small_model, path, {"steps": 3})

    loaded = load_model(str(path))
    assert same_outputs(loaded.model, small_model, image) and loaded.card["steps"] == 3


def test_a_card_read_from_the_metadata_alone_has_its_numbers_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "recnet-mixed.safetensors"
    path.write_bytes(BUNDLED.read_bytes())  # the bundled model, without its JSON card
    card = read_card(path)
    assert card == json.loads(BUNDLED.with_suffix(".json").read_text())
    assert (card["steps"], card["ecr"], card["val_psnr"]) == (5321, False, 19.675)
    assert card_summary(card).startswith("8 channels x 5 blocks, 5,321 steps, validation 19.68 dB")


def test_a_model_named_in_capitals_keeps_its_card(tmp_path: Path, small_model: RECNet) -> None:
    """MODEL.SAFETENSORS loaded with an empty card, so --strength auto lost its calibration."""
    path = tmp_path / "MODEL.SAFETENSORS"
    save_model(small_model, path, {"training_data": "mine"})
    assert path.with_suffix(".json").is_file()
    assert load_model(str(path)).card["training_data"] == "mine"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"[1, 2]", "not a JSON object"),
        (b"null", "not a JSON object"),
        (b'"RECNet"', "not a JSON object"),
        (b'{"steps": 1', "Expecting ',' delimiter: line 1 column 12 (char 11)"),
        (b"\xff{}", "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
    ],
    ids=["a list", "null", "a string", "cut short", "not UTF-8"],
)
def test_a_damaged_card_is_a_one_line_error(
    tmp_path: Path, small_model: RECNet, content: bytes, reason: str
) -> None:
    path = tmp_path / "mini.safetensors"
    save_model(small_model, path, {})
    path.with_suffix(".json").write_bytes(content)

    assert load_error(str(path)) == f"{path.with_suffix('.json')}: not a valid model card ({reason})"


def lock(monkeypatch: pytest.MonkeyPatch, *locked: Path) -> None:
    """Files that cannot be opened for want of permission (chmod cannot keep root out)."""
    opened = Path.open

    def refusing(path: Path, *args: object, **kwargs: object) -> object:
        if path in locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing)


def test_a_model_or_card_that_cannot_be_read_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, weights_dir: Path, small_model: RECNet
) -> None:
    for name in ("model", "card"):
        save_model(small_model, weights_dir / f"{name}.safetensors", {})
    model, card = weights_dir / "model.safetensors", weights_dir / "card.json"
    lock(monkeypatch, model, card)

    assert load_error(str(model)) == f"{model}: cannot read it (permission denied)"
    assert load_error(str(card.with_suffix(".safetensors"))) == (
        f"{card}: cannot read the model card (permission denied)"
    )
    assert {entry.name: entry.problem for entry in models_to_list()[0]} == {
        "card": f"{card}: cannot read the model card (permission denied)",
        "model": f"{model}: cannot read it (permission denied)",
    }


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without read permission")
def test_a_model_without_read_permission_is_not_said_to_be_missing(
    tmp_path: Path, small_model: RECNet
) -> None:
    path = tmp_path / "mini.safetensors"
    save_model(small_model, path, {})
    path.chmod(0)

    assert load_error(str(path)) == f"{path}: cannot read it (permission denied)"


def test_a_training_checkpoint_has_no_card(tmp_path: Path, small_model: RECNet, image: Tensor) -> None:
    """A run stopped early is used through its checkpoint (the stop notice says so): its metadata is the
    run's state, with Adam's settings, which must not pass for a card (calibrate would copy it); nor does a
    checkpoint.json beside it, named as the card of a checkpoint.safetensors would be."""
    tensors = {f"model.{key}": value for key, value in small_model.state_dict().items()}
    tensors |= {"optimizer.0.exp_avg": torch.zeros(2), "rng.torch": torch.get_rng_state()}
    path = tmp_path / CHECKPOINT_FILE
    state = {"state": {"step": 4}, "loss_preset": "paper", "ecr": False, "param_groups": [{"lr": 1e-4}]}
    path.write_bytes(safetensors_bytes(tensors, metadata={"step": "4", "training_state": json.dumps(state)}))
    (tmp_path / "checkpoint.json").write_text(json.dumps(state))  # a card's name beside it

    loaded = load_model(str(path))

    assert same_outputs(loaded.model, small_model, image)
    assert loaded.card == {}


def test_a_card_beside_a_model_that_recnet_did_not_write_is_found(
    tmp_path: Path, small_model: RECNet
) -> None:
    # What calibrate's --overwrite keeps: it replaced a user's mine.md and mine.json beside mine.safetensors
    path = tmp_path / "mine.safetensors"
    save_model(small_model, path, {})
    assert foreign_card(path) is None  # recnet's own cards
    path.with_suffix(".md").write_text("my notes on this model\n")
    assert foreign_card(path) == path.with_suffix(".md")
    path.with_suffix(".md").unlink()
    for mine in ('{"mine": 1}', "not JSON", '["RECNet"]'):
        path.with_suffix(".json").write_text(mine)
        assert foreign_card(path) == path.with_suffix(".json")
    path.with_suffix(".json").unlink()
    path.with_suffix(".json").symlink_to(tmp_path / "elsewhere.json")
    assert foreign_card(path) == path.with_suffix(".json")  # a link, which recnet never writes
    assert foreign_card(tmp_path / "new.safetensors") is None
    latin_1 = tmp_path / os.fsdecode(b"caf\xe9.safetensors")  # a name that is not UTF-8: its card escapes it
    save_model(small_model, latin_1, {})
    assert foreign_card(latin_1) is None


def test_save_model_errors(tmp_path: Path, small_model: RECNet) -> None:
    with pytest.raises(WeightsError, match=r"model\.pth: models are saved as \.safetensors$"):
        save_model(small_model, tmp_path / "model.pth", {})
    (tmp_path / "a-file").write_text("")
    blocked = tmp_path / "a-file" / "sub" / "model.safetensors"
    with pytest.raises(
        WeightsError, match=r"/a-file/sub/model\.safetensors: cannot write the model \(.*/a-file is a file\)$"
    ):
        save_model(small_model, blocked, {})
    with pytest.raises(WeightsError, match=r"cannot write the model \(/dev/null is a device\)$"):
        save_model(small_model, Path("/dev/null/model.safetensors"), {})
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o500)
    try:
        if os.access(tmp_path / "locked", os.W_OK):
            return  # root writes anywhere
        with pytest.raises(WeightsError, match=r"cannot write the model \(permission denied\)$"):
            save_model(small_model, tmp_path / "locked" / "model.safetensors", {})
    finally:
        (tmp_path / "locked").chmod(0o700)


def test_save_model_without_overwrite_writes_nothing_where_a_link_to_nothing_holds_a_card_s_name(
    tmp_path: Path, small_model: RECNet
) -> None:
    path = tmp_path / "model.safetensors"
    path.with_suffix(".md").symlink_to(tmp_path / "gone.md")

    with pytest.raises(WeightsError, match=r"model\.safetensors: not written, since .*/model\.md exists"):
        save_model(small_model, path, {}, overwrite=False)
    assert not path.exists() and not path.with_suffix(".json").exists()


def test_a_model_saved_in_the_bundled_folder_is_used_by_its_name(
    weights_dir: Path, small_model: RECNet
) -> None:
    path = weights_dir / "mine.safetensors"
    save_model(small_model, path, {})

    assert (
        path.with_suffix(".md")
        .read_text()
        .startswith("# mine\n\nRECNet weights bundled with `recnet`: use them with `--model mine`.")
    )


def test_a_json_file_over_a_card_s_size_beside_a_model_is_not_taken_for_its_card(
    tmp_path: Path, small_model: RECNet
) -> None:
    # A card holds a few kilobytes: a file of a megabyte by its name is another (a dataset's index, say)
    path = tmp_path / "model.safetensors"
    save_model(small_model, path, {})
    card = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps(card | {"index": "x" * saving.CARD_SIZE_LIMIT}))

    assert foreign_card(path) == path.with_suffix(".json")


# ---- resolving --model ----


def test_missing_default_model_says_how_to_pass_one(weights_dir: Path) -> None:
    message = load_error(None, ModelNotFoundError)

    assert message.startswith("no bundled default model is present yet")
    # the folder a variable named, which the message did not say: a stale RECNET_WEIGHTS_DIR went unseen
    assert (
        f"({weights_dir / 'recnet-mixed.safetensors'} does not exist, in the folder RECNET_WEIGHTS_DIR names)"
        in (message)
    )
    assert "--model path/to/model.safetensors" in message
    assert "--model org/name" in message
    assert load_error("recnet-mixed", ModelNotFoundError).startswith(
        "recnet-mixed: not a model file, a bundled model name (bundled: none yet, in the folder "
        "RECNET_WEIGHTS_DIR names)"
    )
    save_model(seeded_model(seed=1), weights_dir / "recnet-mixed.safetensors", {})
    assert load_error("recnet-mixed.safetensors", ModelNotFoundError) == (
        "recnet-mixed.safetensors: file not found (the bundled model's name is recnet-mixed)"
    )


def test_bundled_models_resolve_by_name(weights_dir: Path, image: Tensor) -> None:
    default, mini = seeded_model(seed=1), seeded_model(seed=2)
    save_model(default, weights_dir / "recnet-mixed.safetensors", {})
    save_model(mini, weights_dir / "mini.safetensors", {})

    loaded_default, loaded_mini = load_model(None), load_model("mini")

    assert same_outputs(loaded_default.model, default, image)
    assert loaded_default.source == "recnet-mixed (bundled)"
    assert same_outputs(loaded_mini.model, mini, image)
    assert (loaded_mini.source, loaded_mini.path) == ("mini (bundled)", weights_dir / "mini.safetensors")


def test_a_path_names_no_bundled_model_even_where_the_bundled_folder_holds_its_name(
    tmp_path: Path, weights_dir: Path, small_model: RECNet
) -> None:
    # --model /tmp/x/mine would load /tmp/x/mine.safetensors, said to be "/tmp/x/mine (bundled)"
    save_model(small_model, weights_dir / "mine.safetensors", {})
    elsewhere = tmp_path / "x" / "mine"
    save_model(small_model, elsewhere.with_suffix(".safetensors"), {})
    assert bundled_model("mine") == weights_dir / "mine.safetensors"
    for ref in (str(elsewhere), "../x/mine"):  # the second from the bundled folder, to the same file
        assert bundled_model(ref) is None
    assert load_error(str(elsewhere), ModelNotFoundError) == (
        f"{elsewhere}: not a model file, a bundled model name (bundled: mine) or a Hub reference "
        "(org/name[@revision][:file])"
    )


def test_existing_file_wins_over_a_hub_shaped_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_model: RECNet, image: Tensor
) -> None:
    monkeypatch.chdir(tmp_path)
    set_offline(monkeypatch, True)  # a Hub look-up would fail
    (tmp_path / "acme").mkdir()
    torch.save(small_model.state_dict(), tmp_path / "acme" / "recnet@v1.pt")

    assert parse_hub_ref("acme/recnet@v1.pt") is not None
    assert same_outputs(load_model("acme/recnet@v1.pt").model, small_model, image)


def test_unknown_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights_dir: Path) -> None:
    monkeypatch.chdir(tmp_path)
    save_model(seeded_model(), weights_dir / "mini.safetensors", {})

    assert load_error("missing.safetensors", ModelNotFoundError) == "missing.safetensors: file not found"
    assert load_error("some/dir/missing.pth", ModelNotFoundError) == "some/dir/missing.pth: file not found"
    # in capitals, taken for a Hub repository: --dry-run would see no problem, and the run ask the Hub for it
    assert reference_problem("runs/Final.SAFETENSORS") == "runs/Final.SAFETENSORS: file not found"
    run = tmp_path / "run"  # a training run not finished yet: its checkpoint is what there is to use
    save_model(seeded_model(), run / "checkpoint.safetensors", {})
    assert load_error("run/final.safetensors", ModelNotFoundError) == (
        "run/final.safetensors: file not found (its folder holds checkpoint.safetensors)"
    )
    save_model(seeded_model(), tmp_path / "mine.safetensors", {})
    assert load_error("mien.safetensors", ModelNotFoundError) == (
        "mien.safetensors: file not found (the current folder holds mine.safetensors)"
    )
    (tmp_path / "backup.tar").write_bytes(b"")  # a tar archive, not a checkpoint named .pth.tar
    assert load_error("backup.tar") == (
        "backup.tar: unknown model file type '.tar' (expected .safetensors, .pth, .pt, .ckpt, .bin, .pth.tar)"
    )
    assert load_error("nonsense", ModelNotFoundError) == (
        "nonsense: not a model file, a bundled model name (bundled: mini)"
        " or a Hub reference (org/name[@revision][:file])"
    )
    with pytest.raises(WeightsError, match=r"^mini: not a Hub reference"):
        download("mini")
    for name in ("org/a..b", "org/ok--x", "org/" + "y" * 256):  # what the Hub's own checks refuse
        assert load_error(name).startswith(f"{name}: not a valid Hub name (")
    for name in (
        "org/name:../x.safetensors",
        "org/name:/x.pth",
    ):  # the Hub client asked its owner to rename it
        file = name.partition(":")[2]
        assert load_error(name) == f"{name}: {file} names no file inside the repository (give its path there)"


def test_a_folder_is_not_taken_for_a_model_file_or_a_hub_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_model: RECNet, weights_dir: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    set_offline(monkeypatch, True)  # a Hub look-up would fail with another message
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    (tmp_path / "old.safetensors").mkdir()

    assert load_error("runs/mine", ModelNotFoundError) == "runs/mine: a folder, not a model file"
    assert load_error("old.safetensors") == "old.safetensors: a folder, not a model file"
    save_model(small_model, tmp_path / "runs" / "mine" / "final.safetensors", {})
    assert load_error("runs/mine") == "runs/mine: a folder, not a model file (it holds final.safetensors)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acme/recnet-test", ("acme/recnet-test", None, HUB_DEFAULT_FILENAME)),
        ("acme/recnet-test@v1", ("acme/recnet-test", "v1", HUB_DEFAULT_FILENAME)),
        ("acme/recnet-test:sub/other.safetensors", ("acme/recnet-test", None, "sub/other.safetensors")),
        ("acme/recnet.v2@refs/pr/1:model.pth", ("acme/recnet.v2", "refs/pr/1", "model.pth")),
        ("model.safetensors", None),
        ("dir/model.safetensors", None),
        ("runs/Final.SAFETENSORS", None),  # a file's name in capitals, not a Hub repository's
        ("./acme/recnet", None),
        ("/abs/recnet", None),
        ("a/b/c", None),
        ("recnet-mixed", None),
    ],
)
def test_parse_hub_ref(text: str, expected: tuple[str, str | None, str] | None) -> None:
    parsed = parse_hub_ref(text)
    assert parsed == (None if expected is None else HubRef(text, *expected))


# ---- listing ----


def test_a_cached_commit_named_by_several_refs_but_not_main_is_listed_by_the_first_in_name_order() -> None:
    # `recnet models` names such a commit by the first of its refs in name order, the same on every run
    assert cached_ref("a/b", frozenset({"v2", "v1"}), "c0ffee", HUB_DEFAULT_FILENAME) == "a/b@v1"
    assert cached_ref("a/b", frozenset({"v2", "v1"}), "c0ffee", "other.pth") == "a/b@v1:other.pth"


def test_a_hub_cache_that_is_a_file_leaves_the_bundled_models_listed_with_a_one_line_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_folder = tmp_path / "cache.txt"
    not_a_folder.write_text("mine")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(not_a_folder))
    assert models_to_list() == (
        bundled_models(),
        f"the Hugging Face cache {not_a_folder} is a file, not a folder; set HF_HUB_CACHE to one",
    )


def test_an_unreadable_hub_cache_is_named_as_other_errors_name_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    listed = Path.iterdir

    def iterdir(folder: Path) -> Iterator[Path]:  # no permission (chmod cannot keep root out)
        if folder == cache:
            raise PermissionError(errno.EACCES, "Permission denied", str(folder))
        return listed(folder)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(WeightsError) as caught:
        models_to_list()[0]
    assert str(caught.value) == f"{cache}: cannot read the Hugging Face cache (permission denied)"


NONE = (0.0,) * FEATURE_COUNT


def test_list_models_shows_bundled_and_cached_hub_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights_dir: Path, small_model: RECNet
) -> None:
    card = {
        "training_data": "tiny set",
        "steps": 3000,
        "val_psnr": 20.5,
        "val_identity_psnr": 12.25,
        "auto_strength": StrengthCalibration(NONE, (1.0,) * FEATURE_COUNT, NONE, 0.0).as_card(),
    }
    save_model(small_model, weights_dir / "mini.safetensors", card)
    model_bytes = (weights_dir / "mini.safetensors").read_bytes()
    bundled = ModelEntry(
        "mini",
        "bundled",
        weights_dir / "mini.safetensors",
        len(model_bytes),
        summary="4 channels x 2 blocks, 3,000 steps, validation 20.50 dB (input 12.25 dB), "
        "strength calibrated",
    )
    torch.save(small_model.state_dict(), tmp_path / "extra.pth")
    checkpoint_bytes = (tmp_path / "extra.pth").read_bytes()
    with FakeHub() as hub:
        point_huggingface_hub_at(monkeypatch, hub.url, tmp_path / "hf-home")
        assert models_to_list()[0] == [bundled]  # no Hub cache yet
        hub.add("acme/recnet-test", "model.safetensors", model_bytes)
        hub.add("acme/recnet-test", "extra.pth", checkpoint_bytes, revision="v1")
        hub.add("acme/llm", "model.safetensors", safetensors_bytes({"lm_head.weight": torch.zeros(2)}))
        download("acme/recnet-test")
        download("acme/recnet-test@v1:extra.pth")
        with pytest.raises(WeightsError, match="not a RECNet state_dict"):
            download("acme/llm")  # refused, but in the cache, as another library would leave it

    cached = [entry for entry in models_to_list()[0] if entry.origin == "hub cache"]

    assert models_to_list()[0][0] == bundled
    assert sorted((entry.name, entry.revision, entry.size) for entry in cached) == [
        ("acme/recnet-test", commit_of("acme/recnet-test", "main"), len(model_bytes)),
        ("acme/recnet-test@v1:extra.pth", commit_of("acme/recnet-test", "v1"), len(checkpoint_bytes)),
    ]
    assert all(entry.path.is_file() for entry in cached)
    assert bundled.row() == ("mini", "bundled", f"{len(model_bytes) / 1000:.1f} kB", bundled.summary)
    main = next(entry for entry in cached if entry.name == "acme/recnet-test")
    assert main.row()[1] == f"hub cache @ {commit_of('acme/recnet-test', 'main')[:8]}"
    assert json.loads(json.dumps(main.as_dict()))["path"] == str(main.path)


def test_a_damaged_model_or_card_is_listed_with_its_problem_beside_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights_dir: Path, small_model: RECNet
) -> None:
    save_model(small_model, weights_dir / "good.safetensors", {"steps": 10})
    save_model(small_model, weights_dir / "listed.safetensors", {})
    (weights_dir / "listed.json").write_text("[1, 2]")
    (weights_dir / "cut.safetensors").write_bytes(b"cut short")
    (weights_dir / "moved.safetensors").symlink_to(tmp_path / "elsewhere.safetensors")
    with torch.no_grad():
        overflowed = seeded_model(4, 2)
        overflowed.extract.weight[0, 0, 0, 0] = float("nan")
    save_model(overflowed, weights_dir / "nan.safetensors", {})  # which --model refuses to load
    model_bytes = (weights_dir / "good.safetensors").read_bytes()
    with FakeHub() as hub:
        point_huggingface_hub_at(monkeypatch, hub.url, tmp_path / "hf-home")
        for repo in ("acme/broken-card", "acme/recnet-test"):
            hub.add(repo, "model.safetensors", model_bytes)
        hub.add("acme/broken-card", "model.json", b'{"steps": 1')
        hub.add("acme/cut-short", "model.safetensors", model_bytes[:-1000])  # its header whole
        # Fetched as the Hub client does: recnet download refuses them (tests/test_hub.py)
        broken_card = Path(hf_hub_download("acme/broken-card", "model.json"))
        hf_hub_download("acme/broken-card", "model.safetensors")
        cut_short = Path(hf_hub_download("acme/cut-short", "model.safetensors"))
        download("acme/recnet-test")

    entries = {entry.name: entry for entry in models_to_list()[0]}

    assert {name: entry.problem for name, entry in entries.items()} == {
        "cut": f'{weights_dir / "cut.safetensors"}: a text file, not weights (it begins "cut short")',
        "good": None,
        "listed": f"{weights_dir / 'listed.json'}: not a valid model card (not a JSON object)",
        "moved": f"{weights_dir / 'moved.safetensors'}: a link to nothing",
        "nan": f"{weights_dir / 'nan.safetensors'}: damaged weights: NaN or infinite values in key "
        "extract.weight",
        "acme/broken-card": f"{broken_card}: not a valid model card"
        " (Expecting ',' delimiter: line 1 column 12 (char 11))",
        "acme/recnet-test": None,
        "acme/cut-short": f"{cut_short}: cut short or damaged: its end is missing; copy or download it again",
    }
    assert entries["good"].row()[3] == "4 channels x 2 blocks, 10 steps"
    assert entries["cut"].row() == ("cut", "bundled", "9 bytes", "damaged (see the error below)")
    assert json.loads(json.dumps(entries["listed"].as_dict()))["problem"] == entries["listed"].problem
    unloaded = {entry.name: entry.problem for entry in models_to_list(load=False)[0]}  # shell completion's
    assert unloaded["nan"] is None and unloaded["cut"] == entries["cut"].problem


def test_a_file_whose_data_left_the_cache_hides_no_model_of_its_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights_dir: Path, small_model: RECNet
) -> None:
    """huggingface_hub's cache scan drops a whole repository when one file's data (its blob) is missing."""
    save_model(small_model, tmp_path / "model.safetensors", {"steps": 7})
    model_bytes = (tmp_path / "model.safetensors").read_bytes()
    with FakeHub() as hub:
        point_huggingface_hub_at(monkeypatch, hub.url, tmp_path / "hf-home")
        hub.add("acme/recnet-test", "model.safetensors", model_bytes)
        hub.add("acme/recnet-test", "model.json", (tmp_path / "model.json").read_bytes())
        save_model(small_model, tmp_path / "extra.safetensors", {"steps": 8})  # each file its own data
        save_model(small_model, tmp_path / "lost.safetensors", {"steps": 9})
        hub.add("acme/recnet-test", "extra.safetensors", (tmp_path / "extra.safetensors").read_bytes(), "v1")
        hub.add("acme/lost", "model.safetensors", (tmp_path / "lost.safetensors").read_bytes())
        hub.add("acme/lost", "model.json", (tmp_path / "model.json").read_bytes())
        hub.add("acme/llm", "model.safetensors", safetensors_bytes({"lm_head.weight": torch.zeros(2)}))
        download("acme/recnet-test")
        extra = Path(download("acme/recnet-test@v1:extra.safetensors"))
        lost = Path(download("acme/lost"))
        llm = Path(hf_hub_download("acme/llm", "model.safetensors"))
        for link in (extra, lost, llm):
            link.resolve().unlink()  # the data gone, the snapshot's link left

        entries = {entry.name: entry for entry in models_to_list()[0] if entry.origin == "hub cache"}

        missing = "its data is missing from the Hugging Face cache (recnet download gets it)"
        assert {name: entry.problem for name, entry in entries.items()} == {
            "acme/lost": f"{lost}: {missing}",  # its card says it is RECNet's
            "acme/recnet-test": None,
            "acme/recnet-test@v1:extra.safetensors": f"{extra}: {missing}",  # beside a RECNet model
        }  # acme/llm's lost file is nobody's business here
        intact = entries["acme/recnet-test"]
        assert intact.revision == commit_of("acme/recnet-test", "main") and intact.size == len(model_bytes)
        assert intact.summary == "4 channels x 2 blocks, 7 steps"
        download("acme/recnet-test@v1:extra.safetensors")
        fetched = {entry.name: entry for entry in models_to_list()[0]}[
            "acme/recnet-test@v1:extra.safetensors"
        ]
        assert fetched.problem is None and fetched.size == (tmp_path / "extra.safetensors").stat().st_size


def test_cached_checkpoints_are_listed_by_the_keys_they_hold_not_by_their_suffix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights_dir: Path, small_model: RECNet
) -> None:
    """The keys are read from the checkpoint's pickle, without loading it (another network's may be big)."""
    state_dict = small_model.state_dict()
    checkpoints = {  # name: content, saved as before PyTorch 1.6
        "recnet.pth": ({"params": {f"module.{key}": value for key, value in state_dict.items()}}, False),
        "recnet-old.pth": (state_dict, True),
        "yolov8n.pt": ({"model": torch.nn.Conv2d(3, 16, 3), "epoch": -1}, False),  # a network pickled whole
        "other-old.pt": ({"conv.weight": torch.zeros(1)}, True),
    }
    files = {}
    for name, (content, old) in checkpoints.items():
        torch.save(content, tmp_path / name, _use_new_zipfile_serialization=not old)
        files[name] = (tmp_path / name).read_bytes()
    files["cut.pth"] = files["recnet.pth"][: len(files["recnet.pth"]) // 2]
    files["notes.pt"] = b"not a checkpoint"
    deflated = io.BytesIO()
    with zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}X\x0e\x00\x00\x00extract.weightK\x01s." * 50)
    damaged = bytearray(deflated.getvalue())
    damaged[46:66] = bytes(byte ^ 0xFF for byte in damaged[46:66])
    files["bad-deflate.pth"] = bytes(damaged)  # zlib.error
    encrypted = bytearray(deflated.getvalue())
    encrypted[6] |= 1
    encrypted[encrypted.find(b"PK\x01\x02") + 8] |= 1
    files["encrypted.pth"] = bytes(encrypted)  # RuntimeError
    files["huge.pth"] = b"\x80\x04\x8d" + (2**62).to_bytes(8, "little") + b"abc"  # MemoryError
    with FakeHub() as hub:
        point_huggingface_hub_at(monkeypatch, hub.url, tmp_path / "hf-home")
        for name, content in files.items():
            hub.add("acme/mixed", name, content)
            hf_hub_download("acme/mixed", name)  # as any tool that shares the cache fetches files

    listed = models_to_list()[0]
    assert [entry.name for entry in listed] == ["acme/mixed:recnet-old.pth", "acme/mixed:recnet.pth"]
    # without a card, "about" says what the weights hold (it was empty)
    about = f"{small_model.channels} channels x {small_model.num_blocks} blocks, no model card"
    assert [entry.summary for entry in listed] == [about, about]


def test_a_source_checkout_bundles_its_own_weights_folder(tmp_path: Path) -> None:
    """``python -m recnet_cli`` in a second checkout: an editable install of another one must not lend it
    that one's model, and without any install the package's bundle is missing, not a traceback."""
    checkout = tmp_path / "checkout"
    shutil.copytree(Path(recnet_cli.__file__).parent, checkout / "recnet_cli")
    (checkout / "pyproject.toml").write_text("[project]\nname = 'recnet'\n")
    environment = {k: v for k, v in os.environ.items() if k != "RECNET_WEIGHTS_DIR"}
    found = subprocess.run(
        [sys.executable, "-c", "from recnet_cli.weights.locate import weights_dir; print(weights_dir())"],
        cwd=checkout,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == str(checkout / "weights")


def test_without_overwrite_a_model_is_not_saved_over_a_file_made_meanwhile(
    tmp_path: Path, small_model: RECNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # calibrate checks its -o at the start and saves minutes later: a card written meanwhile is kept
    path = tmp_path / "calibrated.safetensors"
    path.with_suffix(".md").write_text("my notes")
    with pytest.raises(WeightsError) as refused:
        save_model(small_model, path, {}, overwrite=False)
    notes = path.with_suffix(".md")
    assert str(refused.value) == f"{path}: not written, since {notes} exists (use --overwrite)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibrated.md"]
    assert path.with_suffix(".md").read_text() == "my notes"
    # Made between that check and the write: the file there is kept all the same
    real_write = saving.write_atomic

    def card_made_first(file: Path, data: bytes, *, overwrite: bool = True, marked: bool = False) -> None:
        if file.suffix == ".json":
            file.write_text("theirs")
        real_write(file, data, overwrite=overwrite, marked=marked)

    path.with_suffix(".md").unlink()
    monkeypatch.setattr(saving, "write_atomic", card_made_first)
    with pytest.raises(WeightsError, match=r"not written in full, since .*calibrated\.json exists$"):
        save_model(small_model, path, {}, overwrite=False)
    assert path.with_suffix(".json").read_text() == "theirs"
    save_model(small_model, path, {})  # overwrite, as train's own run files are
    assert json.loads(path.with_suffix(".json").read_text())["architecture"] == "RECNet"
