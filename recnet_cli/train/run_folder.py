"""A training run's folder, written and read back: ``config.json`` (the run's settings, ``TrainConfig``),
``metrics.jsonl`` (one JSON object per step and per validation), ``checkpoint.safetensors`` (model, Adam
state, torch RNG states, and in its metadata the step and counters: one file, replaced whole, so a crash
never leaves half a checkpoint), and at the end ``final.safetensors`` with its model card (``final.json``,
``final.md``)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import types
import typing
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import Tensor

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from recnet_cli.atomicfile import write_atomic
from recnet_cli.files import first_line, naming_the_file, nearest_existing
from recnet_cli.model import RECNet
from recnet_cli.train.synthesis import DegradationConfig
from recnet_cli.weights import WeightsError
from recnet_cli.weights.formats import open_safetensors, safetensors_data_end, safetensors_header, section
from recnet_cli.wording import shell_word

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_STATE_KEY = "training_state"  # the checkpoint's metadata entry holding its counters (JSON)
FINAL_MODEL_FILE = "final.safetensors"
FINAL_FILES = (FINAL_MODEL_FILE, "final.json", "final.md")  # with the model's card, which save_model writes
RUN_FILES = (CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, *FINAL_FILES)  # every file a run writes
DATA_FIELDS = ("photos", "pairs", "inputs", "targets")
# What a resumed run may find in a new place: its data and the VGG weights (``resume``'s ``moved``).
MOVABLE_FIELDS = (*DATA_FIELDS, "vgg_weights")
PATH_FIELDS = ("run_dir", *MOVABLE_FIELDS)


class TrainingError(RuntimeError):
    """Training cannot start or go on; the message says why."""


class TrainingFailed(TrainingError):
    """Training started and then failed (a loss that stays non-finite, a checkpoint that cannot be written);
    the message says why. The run folder keeps its last checkpoint, if it reached one."""


# The fields a run folder of an earlier version may lack, whose defaults are what that version did.
ADDED_LATER = frozenset({"regimes", "data_fingerprint", "vgg_fingerprint"})


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json`` in the run directory)."""

    run_dir: Path
    photos: Path | None = None  # folder of well-exposed photos: synthetic pairs
    pairs: Path | None = None  # dataset folder in the LCDP or MSEC layout
    split: str = "train"  # which split of ``pairs``
    inputs: Path | None = None  # with ``targets``: two folders matched by file name
    targets: Path | None = None
    steps: int = 20_000
    batch: int = 8
    crop: int = 384
    lr: float = 1e-4
    warmup: int = 500  # linear warm-up steps, at most a tenth of the run (``__post_init__`` keeps it so)
    seed: int = 0
    val_every: int = 1000
    val_images: int = 24
    val_size: int = 512  # validation images are scaled to this long side
    checkpoint_every: int = 500
    loss_preset: str = "paper"
    ecr: bool = True
    vgg_weights: Path | None = None
    init: str | None = None  # a model reference to start from instead of random weights
    channels: int = 8
    blocks: int = 5
    device: str = "auto"
    precision: str = "auto"  # bf16: autocast the network's forward
    max_side: int = 1024  # photos and pairs are held in memory at most this large
    jpeg_probability: float = 0.5
    # with photos: how often inputs are under-, over- or mixed-exposed, or nearly right (mild)
    regimes: tuple[float, float, float, float] = DegradationConfig().mode_probabilities
    max_bad_steps: int = 10  # consecutive non-finite losses before giving up
    data_fingerprint: str | None = None  # the data's files when the run started (``data_fingerprint``)
    vgg_fingerprint: str | None = None  # the VGG16 weights of its ECR loss (``ExposureContrastiveLoss``)

    def __post_init__(self) -> None:
        # the warm-up the run has, so that config.json says it (it said 500 of a 20-step run's 2)
        self.warmup = min(self.warmup, self.steps // 10)

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON, paths made absolute: a resume finds the data from any working folder."""
        return {
            k: str(v.absolute()) if k in PATH_FIELDS and v is not None else v for k, v in asdict(self).items()
        }

    def degradation(self) -> DegradationConfig:
        """How badly exposed inputs are synthesised from ``photos``."""
        return DegradationConfig(mode_probabilities=self.regimes, jpeg_probability=self.jpeg_probability)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        """The config ``to_json`` gave (fields it does not know are passed over); a TypeError names the fields
        missing (but those ``ADDED_LATER``: a default would not be the run's setting) or of the wrong type."""
        if missing := [f.name for f in fields(cls) if f.name not in data and f.name not in ADDED_LATER]:
            raise TypeError(f"{', '.join(missing)} missing")
        kinds, annotations = typing.get_type_hints(cls), {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name in kinds and not fits(value, kinds[name]):
                raise TypeError(f"{name} is {json.dumps(value)}, not {annotations[name]}")
            if name in PATH_FIELDS and value is not None:
                values[name] = Path(value)
            elif name in kinds:
                values[name] = tuple(value) if isinstance(value, list) else value
        if str(values.get("device", "")).startswith("cpu:"):  # earlier versions kept --device cpu:N as given
            values["device"] = "cpu"
        return cls(**values)


def fits(value: object, kind: Any) -> bool:
    """Whether a value read from JSON is of a field's type: a path is a string, a float any number, a tuple a
    list of as many items."""
    if isinstance(kind, types.UnionType):
        return any(fits(value, option) for option in typing.get_args(kind))
    if typing.get_origin(kind) is tuple:
        items = typing.get_args(kind)
        return isinstance(value, list) and len(value) == len(items) and all(map(fits, value, items))
    if isinstance(value, bool):  # an int to Python, not to JSON
        return kind is bool
    return isinstance(value, {Path: str, float: int | float}.get(kind, kind))


@dataclass
class ValScores:
    """Mean PSNR/SSIM of the model's output and of the input itself (identity) against the ground truth."""

    psnr: float
    ssim: float
    identity_psnr: float
    identity_ssim: float


@dataclass
class RunState:
    """The counters a checkpoint restores besides the tensors."""

    step: int = 0
    skipped_steps: int = 0
    bad_in_a_row: int = 0
    wall_seconds: float = 0.0
    val: dict[str, float] | None = None

    def val_scores(self) -> ValScores | None:
        """The last validation's scores, if the run has validated."""
        return ValScores(**self.val) if self.val else None


def save_config(config: TrainConfig) -> None:
    write_atomic(config.run_dir / CONFIG_FILE, (json.dumps(config.to_json(), indent=2) + "\n").encode())


@contextlib.contextmanager
def claimed(run_dir: Path) -> Iterator[None]:
    """Holds the run folder for this process while it trains, made if need be: a second ``recnet train``
    into it (a run started twice, a scheduler's requeued job resuming while the first still runs) is refused
    rather than let mix its steps into the run's files. An advisory lock (flock) on the folder, which the
    system lets go when the process ends, however it ends (none on Windows, which has no flock, nor on file
    systems that take no locks: NFS without its lock service, some network and FUSE mounts). A folder
    made here (with the folders above it) is removed again if the run left nothing in it (its data failed to
    load)."""
    there = nearest_existing(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(run_dir, os.O_RDONLY) if fcntl is not None else None
    try:
        if descriptor is not None:
            lock_or_refuse(descriptor, run_dir, fcntl.LOCK_EX)
        yield
    finally:
        if descriptor is not None:
            os.close(descriptor)
        made = [run_dir, *run_dir.parents][: len(run_dir.parts) - len(there.parts)]
        with contextlib.suppress(OSError):  # one not empty: the run's
            for folder in made:
                folder.rmdir()


def lock_or_refuse(folder: int, run_dir: Path, mode: int) -> None:
    """Takes the lock ``mode`` (flock's LOCK_EX or LOCK_SH) on the open run folder ``folder``, or refuses
    it where another ``recnet train`` holds it; on a file system that takes no locks (ENOLCK, EOPNOTSUPP)
    the run goes unguarded, as before."""
    try:
        fcntl.flock(folder, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        raise TrainingError(
            f"{run_dir}: another recnet train is writing this run; wait for it to end (then --resume it if "
            "it stopped), or choose another --out"
        ) from None
    except OSError:
        pass


def refuse_a_run_being_written(run_dir: Path) -> None:
    """Refuses a run folder that another ``recnet train`` holds (see ``claimed``), as --resume finds it
    before the run's first checkpoint: not to be taken for a run that stopped with none."""
    if fcntl is None:
        return
    try:
        folder = os.open(run_dir, os.O_RDONLY)
    except OSError:
        return
    try:
        lock_or_refuse(folder, run_dir, fcntl.LOCK_SH)
    finally:
        os.close(folder)  # lets go of the lock, where it was taken


def check_run_folder(run_dir: Path) -> None:
    """Refuses a folder holding files a new run would write over: a run's (one another ``recnet train`` is
    writing, a finished one, one to resume), or the user's of the same name. A run that stopped before its
    first checkpoint (out of memory at the first step) is not one: its config and metrics are replaced."""
    refuse_a_run_being_written(run_dir)
    a_run = is_run_config(run_dir / CONFIG_FILE)  # written once this check passed
    if a_run and final_model_whole(run_dir):  # one cut short is written again by --resume
        raise TrainingError(
            f"{run_dir}: already holds a finished training run; choose another folder, or train further from "
            f"its model into another: --init {shell_word(run_dir / FINAL_MODEL_FILE)} --out NEW_FOLDER"
        )
    if a_run and (run_dir / CHECKPOINT_FILE).is_file():
        raise TrainingError(
            f"{run_dir}: already holds a training run; resume it (recnet train --resume "
            f"{shell_word(run_dir)}) or choose another folder"
        )
    in_the_way = [name for name in RUN_FILES if os.path.lexists(run_dir / name)]  # a broken link too
    if a_run:  # a run that stopped before its first checkpoint: its metrics are the run's too
        in_the_way = [name for name in in_the_way if name not in (CONFIG_FILE, METRICS_FILE)]
    if in_the_way:
        raise TrainingError(
            f"{run_dir}: already holds files a training run writes ({', '.join(in_the_way)}); "
            "choose another folder"
        )


def final_model_whole(run_dir: Path) -> bool:
    """Whether the run's final model and its card are all there, the model as long as its header says: one
    damaged after it was written (cut short, say) is written again by ``--resume`` from the checkpoint."""
    if not all((run_dir / name).is_file() for name in FINAL_FILES):
        return False
    model = run_dir / FINAL_MODEL_FILE
    try:
        return safetensors_data_end(model) == model.stat().st_size
    except Exception:  # no readable header: JSON, key and type errors, as damaged bytes fall
        return False


def is_run_config(path: Path) -> bool:
    """Whether ``path`` is a run's ``config.json``."""
    if not path.is_file():  # never read a FIFO or a device
        return False
    try:
        TrainConfig.from_json(read_record(path))
    except (OSError, TrainingError, TypeError):  # none, not JSON, not a config
        return False
    return True


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """Appends a line to metrics.jsonl: standard JSON, with null for a loss that was not finite."""
    finite = {key: None if isinstance(v, float) and not math.isfinite(v) else v for key, v in record.items()}
    path = run_dir / METRICS_FILE
    with naming_the_file(path), path.open("a") as file:
        file.write(json.dumps(finite, allow_nan=False) + "\n")


def trim_metrics(path: Path, step: int) -> None:
    """Drops metric lines past ``step``: steps redone after a resume are logged once. A last line without
    its newline, cut short as it was appended (a full disk), goes too."""
    if path.is_file():
        try:
            whole = path.read_text().split("\n")[:-1]  # what follows the last newline: nothing, or a cut line
            lines = [line for line in whole if json.loads(line)["step"] <= step]
        except (ValueError, KeyError, TypeError) as error:  # not JSON, or not a record with a step
            raise damaged(path, error) from None
        write_atomic(path, "".join(line + "\n" for line in lines).encode())


def save_checkpoint(config: TrainConfig, state: RunState, model: RECNet, optimizer: torch.optim.Adam) -> None:
    """Writes the model, Adam state and RNG states with the counters in the metadata, in one file."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    for index, values in optimizer_state["state"].items():
        tensors |= {f"optimizer.{index}.{k}": v.detach().cpu().contiguous() for k, v in values.items()}
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors |= {f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    record = {
        "state": asdict(state),
        "loss_preset": config.loss_preset,
        "ecr": config.ecr,
        "param_groups": optimizer_state["param_groups"],
    }
    metadata = {"step": str(state.step), CHECKPOINT_STATE_KEY: json.dumps(record)}
    write_atomic(config.run_dir / CHECKPOINT_FILE, safetensors.torch.save(tensors, metadata=metadata))


def read_run_checkpoint(run_dir: Path) -> tuple[RunState, list[dict[str, Any]], dict[str, Tensor]]:
    """A run's checkpoint: its counters, Adam's parameter groups and the tensors. A damaged checkpoint file
    is a TrainingError naming it."""
    tensors_path = run_dir / CHECKPOINT_FILE
    try:
        with open_safetensors(tensors_path, "pt") as file:
            metadata = file.metadata() or {}
            # copies, not views of the mapped file: the run saves its next checkpoint over it, which Windows
            # refuses while a mapping of it is open (Adam keeps the tensors it is given on the CPU)
            tensors = {key: file.get_tensor(key).clone() for key in file.keys()}  # noqa: SIM118
    except SafetensorError as error:
        raise damaged(tensors_path, error) from None
    if CHECKPOINT_STATE_KEY not in metadata:
        raise TrainingError(
            f"{tensors_path}: not a recnet train checkpoint (its metadata holds no run state)"
        )
    record = read_record(tensors_path, metadata[CHECKPOINT_STATE_KEY])
    try:
        state = RunState(**record["state"])
        groups = [group | {"betas": tuple(group["betas"])} for group in record["param_groups"]]
    except (KeyError, TypeError) as error:
        raise damaged(tensors_path, error) from None
    if metadata.get("step") != str(state.step):
        raise TrainingError(f"{tensors_path}: damaged (its step and its run state's step differ)")
    return state, groups, tensors


def saved_step(run_dir: Path) -> int | None:
    """The step of the run's checkpoint, from its metadata alone; None where it has none readable."""
    try:
        return int(safetensors_header(run_dir / CHECKPOINT_FILE)[1]["step"])
    except (WeightsError, KeyError, ValueError):
        return None


def how_to_go_on(run_dir: Path) -> str:
    """How to go on with a run stopped before it saved its first checkpoint, or after."""
    if not run_dir.exists():
        return f"the run had not started ({run_dir} was not made), so the same command starts it"
    if (step := saved_step(run_dir)) is None:
        return f"{run_dir} has no checkpoint, so the same command starts the run again"
    resume = f"recnet train --resume {shell_word(run_dir)}"
    return f"{run_dir}'s last checkpoint is at step {step}; continue with {resume}"


def load_checkpoint(run_dir: Path, model: RECNet, optimizer: torch.optim.Adam) -> RunState:
    """Restores model, Adam state and RNG states; returns the counters. A damaged checkpoint file is a
    TrainingError naming it."""
    state, groups, tensors = read_run_checkpoint(run_dir)
    try:
        restore(tensors, groups, model, optimizer)
    except (KeyError, ValueError, RuntimeError) as error:  # tensors missing, misnamed or misshapen
        raise damaged(run_dir / CHECKPOINT_FILE, error) from None
    return state


def restore(
    tensors: dict[str, Tensor], groups: list[dict[str, Any]], model: RECNet, optimizer: torch.optim.Adam
) -> None:
    """Puts a checkpoint's tensors back: the model's weights, Adam's moments and the RNG states."""
    model.load_state_dict(section(tensors, "model."))
    moments: dict[int, dict[str, Tensor]] = {}
    for key, value in section(tensors, "optimizer.").items():
        index, name = key.split(".", 1)
        moments.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": moments, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [
        tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors
    ]
    if cuda_states:
        torch.cuda.set_rng_state_all(cuda_states)


def read_record(path: Path, text: str | None = None) -> dict[str, Any]:
    """One of a run's JSON records: a file (``config.json``), or ``text`` kept in ``path`` (the checkpoint's
    counters); a damaged one is a TrainingError."""
    try:
        record = json.loads(path.read_text(encoding="utf-8") if text is None else text)
    except ValueError as error:  # not JSON, or not UTF-8
        raise damaged(path, error) from None
    if not isinstance(record, dict):
        raise TrainingError(f"{path}: damaged (not a JSON object)")
    return record


def damaged(path: Path, error: Exception) -> TrainingError:
    """The one-line error for a run file that cannot be read back."""
    return TrainingError(f"{path}: damaged ({type(error).__name__}: {first_line(error)})")
