"""The training loop: Adam with a warmed-up cosine schedule, validation, checkpoints, exact resume, and
DistributedDataParallel when started by ``torchrun``.

What a run keeps in its folder, and how it is read back, is ``run_folder``'s. Batches are a function of
(seed, step), the schedule a function of the step, so resuming from a checkpoint continues exactly as the
uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import signal
import socket
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from recnet_cli.devices import (
    is_out_of_memory,
    keep_freed_host_memory,
    pick_device,
    pick_dtype,
    precision_name,
)
from recnet_cli.engine import EDGE_PAD, with_border
from recnet_cli.entry import SIGTERM_HEARD
from recnet_cli.files import error_line, file_kind, folder_name, nearest_existing
from recnet_cli.metrics import mean_psnr, quantised_scores
from recnet_cli.model import RECNet
from recnet_cli.model.fast import every_blocks_branch_masks, fast_forward
from recnet_cli.model.recnet import width_problem
from recnet_cli.train.data import Prefetcher, SampleSource, ValidationPair, list_photos, pair_data, photo_data
from recnet_cli.train.losses import RecnetLoss, build_loss, default_vgg_weights
from recnet_cli.train.memory import step_memory_problem
from recnet_cli.train.pairs import ImagePair, data_source_problem, not_a_folder, pairs_to_learn_from
from recnet_cli.train.run_folder import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    DATA_FIELDS,
    FINAL_MODEL_FILE,
    METRICS_FILE,
    MOVABLE_FIELDS,
    RunState,
    TrainConfig,
    TrainingError,
    TrainingFailed,
    ValScores,
    append_metrics,
    check_run_folder,
    claimed,
    damaged,
    final_model_whole,
    load_checkpoint,
    read_record,
    read_run_checkpoint,
    refuse_a_run_being_written,
    save_checkpoint,
    save_config,
    saved_step,
    trim_metrics,
)
from recnet_cli.weights import WeightsError, load_model, save_model
from recnet_cli.wording import shell_word

ADAM_BETAS = (0.9, 0.99)


@dataclass
class Progress:
    step: int
    steps: int
    losses: dict[str, float]
    lr: float
    images_per_second: float
    val: ValScores | None  # the latest validation, if any
    validated: bool = False  # at this step


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path
    steps: int
    val: ValScores | None  # None on the processes other than rank 0
    wall_seconds: float
    skipped_steps: int
    stopped_by: str | None = None  # what stopped the run early, a checkpoint saved: "the time limit", ...
    already_finished: bool = False  # a resumed run that had finished before: nothing was trained or written

    @classmethod
    def at(cls, run_dir: Path, model_path: Path, state: RunState, **outcome: Any) -> TrainResult:
        """The result of the run in ``run_dir`` whose counters are ``state``; ``outcome``: ``stopped_by`` or
        ``already_finished``."""
        return cls(
            run_dir=run_dir,
            model_path=model_path,
            steps=state.step,
            val=state.val_scores(),
            wall_seconds=state.wall_seconds,
            skipped_steps=state.skipped_steps,
            **outcome,
        )

    @property
    def complete(self) -> bool:
        return self.stopped_by is None


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1  # the processes on this machine

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class Session:
    """What one process holds while training."""

    config: TrainConfig
    ranks: Ranks
    device: torch.device
    dtype: torch.dtype
    model: RECNet
    network: nn.Module
    optimizer: torch.optim.Adam
    loss: RecnetLoss
    source: SampleSource
    validation: list[ValidationPair]
    identity: tuple[float, float]
    state: RunState
    progress: Callable[[Progress], None] | None
    deadline: float | None = None  # time.monotonic() after which the run saves a checkpoint and stops
    stop_requested: Callable[[], str | None] = lambda: None  # asked after each step (see ``train``)
    stop_signals: StopSignals | None = None  # listened to once this call's first step is done
    clock: float = field(default_factory=time.perf_counter)  # when ``state.wall_seconds`` was last updated
    checkpoint_due: bool = False  # one fell due while the loss was not finite: saved at the next step it is


STOP_SIGNALS = MappingProxyType({signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"})


class StopSignals:
    """Turns Ctrl-C (SIGINT) and SIGTERM (what schedulers send before they end a job) into a request to
    stop after the current step, with a checkpoint: pass it to ``train`` or ``resume``, which listen once
    their first step is done (before, with nothing new to save, the signals interrupt at once). After the
    first, the signals act as before (a second Ctrl-C interrupts at once). Signal handlers can only be set
    in the main thread; elsewhere this does nothing.

    Python runs a handler in the main thread only between operations, and a step's backward pass on a CPU
    is one, of many seconds: the request was said only once it ended, and a second Ctrl-C within it was
    lost (two signals before a handler runs make one call). So a thread hears each signal as it arrives,
    from the wakeup file descriptor the interpreter writes each one's number to (a socket, which Windows
    can make non-blocking, as the interpreter asks, on every Python), and says the request at once; and the
    handler stops at once where it finds two heard."""

    def __init__(self, on_request: Callable[[str], None] = lambda name: None) -> None:
        self.on_request = on_request
        self.name: str | None = None
        self.previous: dict[int, Any] = {}
        self.heard = 0  # stop signals that arrived, counted by ``listen``
        self.lock = threading.Lock()
        self.wakeup: tuple[socket.socket, int] | None = None  # the write end, and the wakeup fd it replaced

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self.previous = {number: signal.signal(number, self.receive) for number in STOP_SIGNALS}
            self.wakeup = self.start_listening()
        return self

    def start_listening(self) -> tuple[socket.socket, int] | None:
        """Starts ``listen`` on a socket pair made the wakeup fd: its write end, and the fd it replaced. None
        where the system refuses a socket (a sandbox): the handler alone hears the signals then."""
        try:
            read_end, write_end = socket.socketpair()
        except OSError:
            return None
        write_end.setblocking(False)  # the interpreter's writes must not wait
        read_end.settimeout(None)  # whatever socket.setdefaulttimeout says: ``listen`` waits for signals
        try:
            replaced = signal.set_wakeup_fd(write_end.fileno(), warn_on_full_buffer=False)
        except (OSError, ValueError):
            read_end.close()
            write_end.close()
            return None
        threading.Thread(target=self.listen, args=(read_end,), name="stop-signals", daemon=True).start()
        return write_end, replaced

    def __exit__(self, *exc_info: object) -> None:
        self.restore()
        if self.wakeup is not None:
            write_end, replaced = self.wakeup
            signal.set_wakeup_fd(replaced)
            write_end.close()  # ends ``listen``
            self.wakeup = None

    def listen(self, read_end: socket.socket) -> None:
        """Counts the stop signals as they arrive, and says the first (``request``)."""
        with read_end:
            while arrived := read_end.recv(64):
                for number in arrived:
                    if number in STOP_SIGNALS:
                        with self.lock:
                            self.heard += 1
                        self.request(STOP_SIGNALS[signal.Signals(number)])

    def receive(self, number: int, frame: object) -> None:
        self.restore()
        self.request(STOP_SIGNALS[signal.Signals(number)])
        with self.lock:
            again = self.heard > 1
        if again:  # a second signal, in the same operation as the first: it stops at once
            raise KeyboardInterrupt

    def request(self, name: str) -> None:
        """Takes the first stop signal heard, by ``listen`` or by the handler, as the request, said once."""
        with self.lock:
            first = self.name is None
            if first:
                self.name = name
        if first:
            if name == STOP_SIGNALS[signal.SIGTERM]:
                SIGTERM_HEARD.set()  # the program exits 143, as SIGTERM ends it elsewhere
            self.on_request(name)

    def received(self) -> str | None:
        return self.name

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}


class ForwardWithMask(nn.Module):
    """RECNet's output and mask from ``forward``, so DistributedDataParallel sees both."""

    def __init__(self, model: RECNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        result = self.model.forward_with_intermediates(image, blurred_masks=every_blocks_branch_masks)
        return result["output"], result["mask"]


def train(
    config: TrainConfig,
    progress: Callable[[Progress], None] | None = None,
    time_limit: float | None = None,
    stop_requested: Callable[[], str | None] = lambda: None,
    stop_signals: StopSignals | None = None,
) -> TrainResult:
    """Starts a new run in ``config.run_dir``; under ``torchrun`` every process calls this.

    ``time_limit`` (seconds, from this call): past it, save a checkpoint and stop, to be resumed later. So
    too when ``stop_requested``, asked after every step, gives a reason, or ``stop_signals`` hear Ctrl-C
    or SIGTERM once this call's first step is done. A failure once the steps have begun is a
    ``TrainingFailed``."""
    check_config(config)
    check_run_folder(config.run_dir)
    config.data_fingerprint = data_fingerprint(config)
    return run(config, False, progress, time_limit, stop_requested, stop_signals)


def resume(
    run_dir: Path,
    progress: Callable[[Progress], None] | None = None,
    device: str | None = None,
    time_limit: float | None = None,
    stop_requested: Callable[[], str | None] = lambda: None,
    stop_signals: StopSignals | None = None,
    moved: Mapping[str, Path] = MappingProxyType({}),
    cadence: Mapping[str, int] = MappingProxyType({}),
) -> TrainResult:
    """Continues the run in ``run_dir`` from its last checkpoint, optionally on another device; the
    other arguments as for ``train``. ``moved`` gives the new places of the run's data folders or VGG
    weights (field name to path; see ``MOVABLE_FIELDS``), ``cadence`` how often it validates and saves a
    checkpoint from now on (``val_every``, ``checkpoint_every``: neither changes the weights it trains),
    which config.json then keeps. A run that had finished, its final model written, is reported as it is
    (``already_finished``), its data not read."""
    config_path = run_dir / CONFIG_FILE
    check_resumable(run_dir)
    try:
        config = TrainConfig.from_json(read_record(config_path))
    except TypeError as error:  # a field missing or of the wrong kind
        raise damaged(config_path, error) from None
    try:
        check_settings(config)
    except TrainingError as error:  # edited by hand
        raise damaged(config_path, error) from None
    config.run_dir = run_dir
    for name, path in moved.items():
        if not (config.ecr if name == "vgg_weights" else getattr(config, name) is not None):
            used = "it trained with --no-ecr" if name == "vgg_weights" else used_data(config)
            raise TrainingError(f"{option_name(name)}: {run_dir} was not trained with one ({used})")
        setattr(config, name, path)
    for name, every in cadence.items():
        if every < 1:
            raise TrainingError(f"{option_name(name)}: use 1 or more steps (got {every})")
        setattr(config, name, every)
    state = read_run_checkpoint(run_dir)[0]
    if state.step >= config.steps and final_model_whole(run_dir):
        return TrainResult.at(run_dir, run_dir / FINAL_MODEL_FILE, state, already_finished=True)
    check_data_found(config)
    check_same_data(config)
    # the data's new places and the new cadence, kept once the run is held (the device is this call's)
    config_to_save = replace(config) if moved or cadence else None
    if device is not None:
        config.device = device
    return run(config, True, progress, time_limit, stop_requested, stop_signals, config_to_save)


def check_resumable(run_dir: Path) -> None:
    """Refuses to resume what is not a run, or holds no checkpoint or settings to resume from, or is a run
    another ``recnet train`` is writing."""
    config_path = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise TrainingError(f"{run_dir}: {'not a run folder' if run_dir.exists() else 'no such folder'}")
    refuse_a_run_being_written(run_dir)  # before its first checkpoint, it has none to resume from
    has_checkpoint, has_config = (run_dir / CHECKPOINT_FILE).is_file(), config_path.is_file()
    if not has_checkpoint and not has_config:
        raise TrainingError(f"{run_dir}: not a run folder (no {CONFIG_FILE}: recnet train --out makes one)")
    if not has_checkpoint:
        raise TrainingError(
            f"{run_dir}: no checkpoint to resume from (the run stopped before its first): start it again "
            "with the command that started it, without --resume"
        )
    if not has_config:
        raise TrainingError(f"{config_path}: no such file; --resume needs the run's settings, kept there")


def check_data_found(config: TrainConfig) -> None:
    """Refuses to resume a run whose data or VGG weights are not where they were, saying how to give their
    new place. VGG weights named for a run with ECR off are never read, so they may be gone."""
    for name in MOVABLE_FIELDS:
        path = getattr(config, name)
        if path is not None and not os.path.exists(path) and (config.ecr or name != "vgg_weights"):
            option = option_name(name)
            raise TrainingError(
                f"{path}: no such {'file' if name == 'vgg_weights' else 'folder'}; if the run's {option} "
                f"moved, say where: recnet train --resume {shell_word(config.run_dir)} {option} NEW"
            )


def check_same_data(config: TrainConfig) -> None:
    """Refuses to resume on data that changed since the run started: its batches and validation set would
    too. (A run started by an earlier version has no fingerprint to compare.)"""
    if config.data_fingerprint is None:
        return
    now = data_fingerprint(config)
    if now != config.data_fingerprint:
        folders = data_folders(config)
        raise TrainingError(
            f"{folders}: not the files the run started with (now {now}, then {config.data_fingerprint}), so "
            "its batches and validation set would change; put them back as they were, or start a new run "
            f"with --init {shell_word(config.run_dir / CHECKPOINT_FILE)}"
        )


def take_vgg_fingerprint(config: TrainConfig, loss: RecnetLoss, resuming: bool) -> None:
    """Keeps the VGG16 weights' digest of a new run's ECR loss in its config; refuses to resume a run on
    other weights than it started with (its loss would change). (A run started by an earlier version has no
    digest to compare.)"""
    now = loss.ecr.fingerprint() if loss.ecr is not None else None
    if not resuming:
        config.vgg_fingerprint = now
    elif None not in (now, config.vgg_fingerprint) and now != config.vgg_fingerprint:
        weights = config.vgg_weights or default_vgg_weights()
        raise TrainingError(
            f"{weights}: not the VGG16 weights the run started with, so its ECR loss would change; give the "
            "run's own with --vgg-weights, or start a new run with --init "
            + shell_word(config.run_dir / CHECKPOINT_FILE)
        )


def data_folders(config: TrainConfig) -> str:
    """The run's data folders, for a message: ``/data/photos``, or ``/data/in, /data/gt``."""
    return ", ".join(str(getattr(config, name)) for name in DATA_FIELDS if getattr(config, name))


def data_fingerprint(config: TrainConfig) -> str:
    """The count of the data's image files and a digest of their names (inside the data's folders, with /
    on every system) and sizes: what a run's batches and validation set are made from, wherever the folders
    are."""
    if config.photos is not None:
        files = [(path.relative_to(config.photos), path) for path in list_photos(config.photos)]
    else:
        files = [(Path(path.name), path) for pair in data_pairs(config) for path in (pair.input, pair.target)]
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(os.fsencode(name.as_posix()) + b"\0" + str(path.stat().st_size).encode() + b"\0")
    return f"{len(files)} files, sha256 {digest.hexdigest()[:16]}"


def option_name(field_name: str) -> str:
    """The ``recnet train`` option that sets a config field: ``vgg_weights`` is ``--vgg-weights``."""
    return "--" + field_name.replace("_", "-")


def used_data(config: TrainConfig) -> str:
    """What a run trains on, as the options that named it: ``it used --photos``."""
    given = [option_name(name) for name in DATA_FIELDS if getattr(config, name) is not None]
    return f"it used {' and '.join(given)}"


def check_config(config: TrainConfig) -> None:
    """Refuses a new run whose data or run folder cannot be used, or whose settings no run can take (the
    pairs' own check, inputs that are their own targets, comes as the data is fingerprinted)."""
    if problem := data_source_problem(
        config.pairs, config.inputs, config.targets, config.photos, takes_photos=True
    ):
        raise TrainingError(problem)
    for folder in (config.photos, config.pairs, config.inputs, config.targets):
        if folder is not None and not folder.is_dir():
            raise TrainingError(not_a_folder(folder))
    if config.run_dir.exists() and not config.run_dir.is_dir():
        raise TrainingError(f"{config.run_dir}: not a folder (--out names the folder of the run)")
    existing = nearest_existing(config.run_dir)
    if not existing.is_dir():
        raise TrainingError(
            f"{config.run_dir}: cannot make the run folder ({existing} is {file_kind(existing)})"
        )
    check_settings(config)


def check_settings(config: TrainConfig) -> None:
    """Refuses settings no run can take, as a config.json edited by hand may hold (the command line refuses
    them as options): it failed at the first step with PyTorch's words (``Invalid learning rate: nan``)."""
    for name in ("steps", "batch", "crop", "val_every", "checkpoint_every", "val_images"):
        if getattr(config, name) < 1:
            raise TrainingError(f"{name} must be at least 1 (got {getattr(config, name)})")
    if not 0 <= config.lr <= 1:  # NaN too; 0 trains nothing, but runs (a test of the loop)
        raise TrainingError(f"lr must be from 0 to 1 (got {config.lr})")
    if not (all(share >= 0 for share in config.regimes) and 0 < sum(config.regimes) < math.inf):
        shares = list(config.regimes)
        raise TrainingError(f"regimes must be finite shares of 0 or more, not all 0 (got {shares})")
    if not 0 <= config.jpeg_probability <= 1:
        raise TrainingError(f"jpeg_probability must be from 0 to 1 (got {config.jpeg_probability})")
    if problem := width_problem(config.channels):
        raise TrainingError(f"channels: {problem}")
    if not 0 <= config.seed < 2**64:  # PyTorch's and NumPy's generators take 64 bits
        raise TrainingError(f"seed must be from 0 to 2^64 - 1 (got {config.seed})")
    if data_source_problem(config.pairs, config.inputs, config.targets, config.photos, takes_photos=True):
        given = " and ".join(name for name in DATA_FIELDS if getattr(config, name) is not None) or "none"
        raise TrainingError(f"the data must be photos, pairs, or inputs with targets (got {given})")


def run(
    config: TrainConfig,
    resuming: bool,
    progress: Callable[[Progress], None] | None,
    time_limit: float | None,
    stop_requested: Callable[[], str | None],
    stop_signals: StopSignals | None,
    config_to_save: TrainConfig | None = None,
) -> TrainResult:
    """Trains in the run folder once this process holds it (``claimed``): a second process into a folder held
    is refused before it changes anything there. ``config_to_save`` (a resumed run's data moved, or its
    cadence changed) goes in its config.json once the session opens (``open_session``)."""
    deadline = None if time_limit is None else time.monotonic() + time_limit
    ranks = start_distributed(config.device)
    try:
        with claimed(config.run_dir) if ranks.main else contextlib.nullcontext():
            session = open_session(config, ranks, resuming, progress, config_to_save)
            session.deadline = deadline
            session.stop_signals = stop_signals
            if stop_signals is None:
                session.stop_requested = stop_requested
            else:
                session.stop_requested = lambda: stop_requested() or stop_signals.received()
            try:
                return train_steps(session)
            # A step, a checkpoint or the final model (WeightsError) failed; out of memory is said as such.
            except (TrainingError, OSError, ValueError, RuntimeError, WeightsError) as error:
                if is_out_of_memory(error):
                    raise
                raise TrainingFailed(error_line(error)) from error
    finally:
        if ranks.world > 1:
            dist.destroy_process_group()


ONE_PROCESS = "to train in one process, unset WORLD_SIZE"


def start_distributed(device_spec: str) -> Ranks:
    """Joins the ``torchrun`` process group when WORLD_SIZE > 1 (NCCL for CUDA, gloo otherwise)."""
    ranks = launcher_ranks()
    if ranks.world == 1:
        return ranks
    use_cuda = (device_spec == "auto" or device_spec.startswith("cuda")) and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return ranks


def launcher_ranks() -> Ranks:
    """This process's place among those ``torchrun`` started, from the variables it sets (one process where
    WORLD_SIZE is not over 1); a TrainingError where they make no sense."""
    world = launcher_number("WORLD_SIZE", 1, least=1)
    if world == 1:
        return Ranks()
    if "RANK" not in os.environ:
        raise TrainingError(
            f"WORLD_SIZE={world} without RANK: torchrun sets both for each process; {ONE_PROCESS}"
        )
    ranks = Ranks(
        rank=launcher_number("RANK", 0, least=0),
        world=world,
        local_rank=launcher_number("LOCAL_RANK", 0, least=0),
        local_world=launcher_number("LOCAL_WORLD_SIZE", 1, least=1),
    )
    if ranks.rank >= world:
        raise TrainingError(
            f"RANK={ranks.rank} with WORLD_SIZE={world}: torchrun counts ranks from 0; {ONE_PROCESS}"
        )
    return ranks


def launched_as_main() -> bool:
    """Whether this process speaks for the run: the only one, or rank 0 of those ``torchrun`` started (read
    before the process group is joined). One whose variables make no sense does: ``start_distributed``
    refuses them, in every process, and the notes before that are said."""
    try:
        return launcher_ranks().main
    except TrainingError:
        return True


def launcher_number(name: str, default: int, least: int) -> int:
    """The whole number torchrun sets in the environment variable ``name``, or ``default`` where it is not
    set; a TrainingError naming it where it is not a whole number of at least ``least``."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        number = int(text)
    except ValueError:
        number = least - 1
    if number < least:
        raise TrainingError(
            f"{name}={text!r}: torchrun sets it to a whole number of at least {least}; {ONE_PROCESS}"
        )
    return number


def training_device(spec: str, ranks: Ranks) -> torch.device:
    device = pick_device(spec)
    if ranks.world > 1 and device.type == "cuda":
        return torch.device("cuda", ranks.local_rank)
    return device


def write_run_files(config: TrainConfig, resumed_at: int | None, config_to_save: TrainConfig | None) -> None:
    """A new run's folder and config.json; a resumed run's metrics cut back to its checkpoint's step
    (``resumed_at``), and its config.json written again where ``config_to_save`` (its data moved, or its
    cadence changed)."""
    if resumed_at is not None:
        trim_metrics(config.run_dir / METRICS_FILE, resumed_at)
        if config_to_save is not None:
            save_config(config_to_save)
        return
    config.run_dir.mkdir(parents=True, exist_ok=True)
    (config.run_dir / METRICS_FILE).unlink(missing_ok=True)  # of a run that never reached a checkpoint
    save_config(config)


def open_session(
    config: TrainConfig,
    ranks: Ranks,
    resuming: bool,
    progress: Callable[[Progress], None] | None,
    config_to_save: TrainConfig | None = None,
) -> Session:
    """The model, data and loss of a run, ready to train; a resumed run's ``config_to_save`` is written only
    once everything has checked out, so a resume refused (other VGG weights, a bad photo) changes nothing."""
    if config.batch % ranks.world:
        raise TrainingError(f"batch {config.batch} does not split evenly over {ranks.world} processes")
    device = training_device(config.device, ranks)
    dtype = pick_dtype(config.precision, device)
    loss = build_loss(config.loss_preset, config.ecr, config.vgg_weights).to(device)  # fails fast without VGG
    take_vgg_fingerprint(config, loss, resuming)
    torch.manual_seed(config.seed)
    model = initial_model(config, resuming)
    model.to(device)
    if device.type == "cpu":
        keep_freed_host_memory()
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=ADAM_BETAS)
    state = load_checkpoint(config.run_dir, model, optimizer) if resuming else RunState()
    network: nn.Module = ForwardWithMask(model)
    if ranks.world > 1:
        network = DistributedDataParallel(
            network, device_ids=[device.index] if device.type == "cuda" else None
        )
    try:
        source, validation = build_data(config)
    except Exception as error:  # MemoryError, PyTorch's RuntimeError or OpenCV's error: each image is held
        if not is_out_of_memory(error):
            raise
        held = f"{data_folders(config)}: not enough memory to hold the data"
        if config.crop > config.max_side:
            message = f"{held}: at --crop {config.crop} every image is scaled up to that on its short "
            message += "side, so that a crop fits; use a smaller --crop "
            message += f"(images are kept at up to {config.max_side} px)"
        else:  # no --batch or --crop helps
            message = f"{held} (each image is kept in memory, at up to {config.max_side} px): train on fewer "
            message += "images, or free some memory (close other programs)"
        raise TrainingError(message) from None
    refuse_steps_too_large(config, ranks, model, device, dtype, resuming)
    identity = identity_scores(validation)
    # Written once the data has loaded, so a bad photo leaves nothing behind, and after
    # DistributedDataParallel's first broadcast, so every process has checked the folder (``train``).
    if ranks.main:
        write_run_files(config, state.step if resuming else None, config_to_save)
    return Session(
        config=config,
        ranks=ranks,
        device=device,
        dtype=dtype,
        model=model,
        network=network,
        optimizer=optimizer,
        loss=loss,
        source=source,
        validation=validation,
        identity=identity,
        state=state,
        progress=progress,
    )


def refuse_steps_too_large(
    config: TrainConfig, ranks: Ranks, model: RECNet, device: torch.device, dtype: torch.dtype, resuming: bool
) -> None:
    """Raises a TrainingError where the CPU steps of this machine's processes cannot fit in its memory (a
    GPU that runs out says so; the host's memory overfilled ends the process without a word)."""
    if device.type != "cpu":
        return
    crops = config.batch // ranks.world * ranks.local_world
    if problem := step_memory_problem(crops, config.crop, model.channels, model.num_blocks, dtype, resuming):
        raise TrainingError(problem)


def initial_model(config: TrainConfig, resuming: bool) -> RECNet:
    """A fresh RECNet, or the ``init`` model, whose size then replaces the configured one, and whose
    reference ``init`` becomes: one that names those very weights from any folder (see ``LoadedModel``)."""
    if config.init and not resuming:
        loaded = load_model(config.init)
        config.init = loaded.reference
        config.channels, config.blocks = loaded.model.channels, loaded.model.num_blocks
        return loaded.model
    return RECNet(config.channels, config.blocks)


def build_data(config: TrainConfig) -> tuple[SampleSource, list[ValidationPair]]:
    val = dict(max_side=config.max_side, val_count=config.val_images, val_size=config.val_size)
    if config.photos is not None:
        return photo_data(config.photos, config.crop, config.seed, config.degradation(), **val)
    if config.pairs is not None:
        name = f"{folder_name(config.pairs)} ({config.split})"
    else:
        assert config.inputs is not None and config.targets is not None
        name = f"{folder_name(config.inputs)} and {folder_name(config.targets)}"
    return pair_data(data_pairs(config), name, config.crop, config.seed, **val)


def data_pairs(config: TrainConfig) -> list[ImagePair]:
    """The image pairs of a run on ``pairs`` or ``inputs`` and ``targets``."""
    return pairs_to_learn_from(config.pairs, config.split, config.inputs, config.targets)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to zero over the remaining steps (``step`` counts from 0)."""
    warmup = config.warmup
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


def train_steps(session: Session) -> TrainResult:
    config, state, ranks = session.config, session.state, session.ranks
    first_step, loop_started = state.step, time.perf_counter()
    shard = range(ranks.rank, config.batch, ranks.world)  # this process's samples of every batch
    # Listening from the first step's end until the final model is written: a stop once the last step is done
    # is too late to save anything by, and the run is complete.
    with contextlib.ExitStack() as listening:
        with Prefetcher(session.source, shard, session.device, config.steps) as batches:
            for step in range(state.step, config.steps):
                lr = learning_rate(step, config)
                for group in session.optimizer.param_groups:
                    group["lr"] = lr
                losses = take_step(session, step, *batches.batch(step))
                state.step = step + 1
                # Until then there was nothing new to save, so a stop interrupted at once (a first step that
                # never ends, at a mistyped --batch, could not be stopped by the first signal)
                if step == first_step and session.stop_signals is not None:
                    listening.enter_context(session.stop_signals)
                if ranks.main:
                    seconds_per_step = (time.perf_counter() - loop_started) / (state.step - first_step)
                    after_step(session, losses, lr, seconds_per_step)
                reason = stop_reason(session) if state.step < config.steps else None
                if reason is not None:
                    return stop_early(session, reason)
        if ranks.world > 1:
            dist.barrier()
        return finish(session)


def stop_reason(session: Session) -> str | None:
    """Why the run should stop now (a stop request, the time limit), agreed by all processes so that they
    stop at the same step; None to go on."""
    reason = session.stop_requested()
    if reason is None and session.deadline is not None and time.monotonic() >= session.deadline:
        reason = "the time limit"
    if session.ranks.world == 1:
        return reason
    flag = torch.tensor([float(reason is not None)], device=session.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return reason or ("another process's stop request" if flag.item() else None)


def stop_early(session: Session, reason: str) -> TrainResult:
    """Saves a checkpoint to resume from and reports the unfinished run."""
    if session.ranks.main:
        save_run_checkpoint(session)
    if session.ranks.world > 1:
        dist.barrier()
    return TrainResult.at(
        session.config.run_dir, session.config.run_dir / CHECKPOINT_FILE, session.state, stopped_by=reason
    )


def after_step(session: Session, losses: dict[str, float], lr: float, seconds_per_step: float) -> None:
    """The main process's bookkeeping: metrics, validation, checkpoints and progress."""
    config, state = session.config, session.state
    state.wall_seconds += time.perf_counter() - session.clock
    session.clock = time.perf_counter()
    append_metrics(
        config.run_dir, {"step": state.step, "lr": lr, **losses, "skipped_steps": state.skipped_steps}
    )
    validating = state.step % config.val_every == 0 or state.step == config.steps
    if validating:
        state.val = asdict(validate(session))
        append_metrics(config.run_dir, {"step": state.step, **{f"val_{k}": v for k, v in state.val.items()}})
    # A checkpoint that falls due while the loss is not finite waits for a step whose loss is: the weights
    # that gave it do not replace the last ones that did not (the last step's is saved whatever).
    due = session.checkpoint_due or state.step % config.checkpoint_every == 0
    if state.step == config.steps or (due and state.bad_in_a_row == 0):
        save_run_checkpoint(session)
        due = False
    session.checkpoint_due = due
    if session.progress is not None:
        session.progress(progress_report(session, losses, lr, seconds_per_step, validating))


def save_run_checkpoint(session: Session) -> None:
    """Saves the run's checkpoint. One that cannot be written (a full disk, a run folder made read-only)
    stops the run saying where it can go on from: the one before is intact, as a checkpoint is replaced
    whole."""
    try:
        save_checkpoint(session.config, session.state, session.model, session.optimizer)
    except OSError as error:
        run_dir = session.config.run_dir
        if (step := saved_step(run_dir)) is None:
            then = "no checkpoint was saved yet: once that is fixed, the same command starts the run again"
        else:
            then = (
                f"the last one saved, at step {step}, is intact: once that is fixed, continue with recnet "
                f"train --resume {shell_word(run_dir)}"
            )
        raise TrainingFailed(f"{error_line(error)}; {then}") from error


def take_step(session: Session, step: int, inputs: Tensor, targets: Tensor) -> dict[str, float]:
    """One optimisation step on this process's share of the batch; skips it if the loss is not finite."""
    config, ranks, state = session.config, session.ranks, session.state
    if session.device.type == "cuda":
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    with torch.autocast(session.device.type, dtype=session.dtype, enabled=session.dtype != torch.float32):
        output, mask = session.network(inputs)
    terms = session.loss(output, mask, inputs, targets)
    values = mean_over_ranks(torch.stack([t.detach() for t in terms.values()]), ranks)
    session.optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()  # even when not finite, so DistributedDataParallel's processes stay in step
    if torch.isfinite(values).all():
        session.optimizer.step()
        state.bad_in_a_row = 0
    else:
        state.skipped_steps += 1
        state.bad_in_a_row += 1
        if state.bad_in_a_row >= config.max_bad_steps:
            # Not from this run's checkpoint: weights whose loss was still finite on the crops may already
            # give NaN on whole photos (a tester's run at --lr 0.6 did), so the run's own start is advised
            raise TrainingError(
                f"the loss was not finite for {state.bad_in_a_row} steps in a row (last at step {step + 1}); "
                "try a lower learning rate"
                + (" or fp32" if session.dtype != torch.float32 else "")
                + " in a new run (--resume keeps this one's)"
            )
    return dict(zip(terms, values.tolist(), strict=True))


def mean_over_ranks(values: Tensor, ranks: Ranks) -> Tensor:
    if ranks.world > 1:
        dist.all_reduce(values)
        values = values / ranks.world
    return values


@torch.no_grad()
def validate(session: Session) -> ValScores:
    """Mean PSNR/SSIM (8-bit) of the model on the fixed validation pairs, one whole image at a time, in
    float32 whatever the training precision: the scores of the network's own output at full strength (what
    `recnet eval --strength 1 --model-colour` scores), since training fits that, colours and all."""
    session.model.eval()
    scores = [
        quantised_scores(corrected(session.model, pair.input, session.device), pair.target[None])
        for pair in session.validation
    ]
    session.model.train()
    return ValScores(*mean_scores(scores), *session.identity)


def corrected(model: RECNet, image: Tensor, device: torch.device) -> Tensor:
    """The model's output for one (3, H, W) image, as a batch of one, as ``recnet correct --strength 1
    --model-colour`` makes it: with the mirrored border it gives a photo, cropped off after
    (``engine.EDGE_PAD``)."""
    bordered = with_border(image.permute(1, 2, 0).numpy(), device)
    return fast_forward(model, bordered)[0][..., EDGE_PAD:-EDGE_PAD, EDGE_PAD:-EDGE_PAD]


def identity_scores(validation: list[ValidationPair]) -> tuple[float, float]:
    """Mean PSNR/SSIM of the validation inputs themselves: what doing nothing scores."""
    if not validation:
        raise TrainingError("no validation images: the data set is too small to hold any out")
    return mean_scores([quantised_scores(p.input[None], p.target[None]) for p in validation])


def mean_scores(scores: list[tuple[Tensor, Tensor]]) -> tuple[float, float]:
    """The mean PSNR (``mean_psnr``) and mean SSIM of (PSNR, SSIM) pairs."""
    return mean_psnr(float(psnr) for psnr, _ in scores), statistics.fmean(float(ssim) for _, ssim in scores)


def progress_report(
    session: Session, losses: dict[str, float], lr: float, seconds_per_step: float, validated: bool
) -> Progress:
    state, config = session.state, session.config
    return Progress(
        step=state.step,
        steps=config.steps,
        losses=losses,
        lr=lr,
        images_per_second=config.batch / seconds_per_step,
        val=state.val_scores(),
        validated=validated,
    )


def finish(session: Session) -> TrainResult:
    """Writes the final model and its card (on the main process) and reports the run."""
    model_path = session.config.run_dir / FINAL_MODEL_FILE
    result = TrainResult.at(session.config.run_dir, model_path, session.state)
    if session.ranks.main and result.val is not None:
        save_model(session.model, model_path, model_card(session, result.val))
    return result


def model_card(session: Session, val: ValScores) -> dict[str, Any]:
    config = session.config
    degradations = config.degradation().describe() if config.photos else "none"
    return {
        "training_data": session.source.description,
        "degradations": degradations,
        "steps": config.steps,
        "batch": config.batch,
        "crop": config.crop,
        "lr": config.lr,
        "seed": config.seed,
        "loss_preset": config.loss_preset,
        "ecr": config.ecr,
        "init": config.init or "random",
        "val_images": len(session.validation),
        "val_psnr": round(val.psnr, 3),
        "val_ssim": round(val.ssim, 4),
        "val_identity_psnr": round(val.identity_psnr, 3),
        "val_identity_ssim": round(val.identity_ssim, 4),
        "skipped_steps": session.state.skipped_steps,
        "wall_seconds": round(session.state.wall_seconds, 1),
        "device": device_name(session.device),
        "processes": session.ranks.world,
        "precision": precision_name(session.dtype),  # what --precision auto chose too
    }


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
