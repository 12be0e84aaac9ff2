"""What `recnet train` does around the training loop: options no run could take, its failures as
one-line errors, and how the run ended. A problem ends the command (``console.fail``)."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from recnet_cli import console
from recnet_cli.console import fail
from recnet_cli.entry import INTERRUPTED
from recnet_cli.options import Precision, refuse_split_without_pairs, shown_number
from recnet_cli.wording import counted, duration, shell_word

if TYPE_CHECKING:  # these need PyTorch, which the commands import only when they run
    from recnet_cli.train.loop import StopSignals, TrainResult

# How often a run validates and saves a checkpoint: neither touches a random state, the batches or the
# optimizer, so a resumed run may change them and still train the weights it would have (config.json keeps
# them, for the next --resume).
CADENCE_OPTIONS = ("--checkpoint-every", "--val-every")
# What may change when a training run is resumed; everything else is the run's own setting. The data and
# the VGG weights may have moved (to another machine, say); the run is told where they are now.
OPTIONS_WITH_RESUME = (
    "--resume",
    "--device",
    "--time-limit",
    "--quiet",
    *CADENCE_OPTIONS,
    "--photos",
    "--pairs",
    "--inputs",
    "--targets",
    "--vgg-weights",
)


def refuse_unusable_options(
    given: list[str], resume_run: Path | None, pairs: Path | None, ecr: bool, settings: dict[str, object]
) -> None:
    """Options that a resumed run keeps as it was set up (unless typed with its own values: the command
    that started it, typed again with --resume, as a batch job's script does), or that nothing in the run
    would use."""
    if resume_run is not None:
        run_values = settings_of_run(resume_run)
        if changed := [
            option
            for option in given
            if option not in OPTIONS_WITH_RESUME
            and not typed_as_set_up(option, settings, run_values)
            # --out the folder resumed is its own, wherever the run was set up (a run copied or moved)
            and not (option == "--out" and same_setting("run_dir", settings.get("run_dir"), resume_run))
        ]:
            from recnet_cli.train.loop import check_resumable
            from recnet_cli.train.run_folder import TrainingError

            try:
                check_resumable(resume_run)  # no run to resume: that is what to fix, not the options
            except TrainingError as error:
                raise training_failure(error) from None
            raise fail(
                f"{', '.join(changed)}: --resume continues {resume_run} as it was set up"
                f"{as_set_up(changed, run_values)}; to train it further in another way, start a new run with "
                f"--init {shell_word(resume_run / 'checkpoint.safetensors')}"
            )
        return
    refuse_split_without_pairs(given, pairs)
    if "--vgg-weights" in given and not ecr:
        raise fail("--vgg-weights: the weights are for the ECR loss, which --no-ecr turns off")


# The run's setting each option of ``recnet train`` sets, where it is not the option's own name
_SETTING_OF = {"--out": "run_dir", "--no-ecr": "ecr"}


def setting_name(option: str) -> str:
    """The field of the run's settings (``TrainConfig``) that an option of ``recnet train`` sets."""
    return _SETTING_OF.get(option, option.removeprefix("--").replace("-", "_"))


def cadence_given(given: list[str], **every: int) -> dict[str, int]:
    """Those of a run's cadence settings (``CADENCE_OPTIONS`` by field name: ``val_every=...``) whose options
    were typed: what a resumed run changes; those not typed keep the run's own."""
    from recnet_cli.train.loop import option_name

    return {name: steps for name, steps in every.items() if option_name(name) in given}


def settings_of_run(run_dir: Path) -> dict[str, object]:
    """The settings a run was set up with, by field name; none where they cannot be read (``resume`` says
    why)."""
    from recnet_cli.train.run_folder import CONFIG_FILE, TrainConfig, read_record

    try:
        return asdict(TrainConfig.from_json(read_record(run_dir / CONFIG_FILE)))
    except Exception:  # a damaged or missing record
        return {}


def typed_as_set_up(option: str, settings: dict[str, object], run_values: dict[str, object]) -> bool:
    """Whether an option typed with --resume has the value (``settings``, by the run's field names,
    --regimes as typed) the run was set up with."""
    name = setting_name(option)
    return name in settings and name in run_values and same_setting(name, settings[name], run_values[name])


def as_set_up(options: list[str], run_values: dict[str, object]) -> str:
    """`` (--steps 2, --no-ecr)``: the run's own values of options typed with --resume, as they would be
    typed; nothing where the run's settings cannot be read."""
    typed = [
        typed_form(option, run_values[setting_name(option)])
        for option in options
        if setting_name(option) in run_values
    ]
    return f" ({', '.join(typed)})" if typed else ""


def typed_form(option: str, value: object) -> str:
    """A run's setting as the option that sets it would be typed: ``--steps 2``, ``--no-ecr``,
    ``--regimes under=0.5,mild=0.5``."""
    from recnet_cli.train.synthesis import MODES

    if isinstance(value, bool):
        return f"--{'' if value else 'no-'}{option.removeprefix('--').removeprefix('no-')}"
    if value is None:
        return f"no {option}"
    if setting_name(option) == "regimes" and isinstance(value, tuple):
        shares = zip(MODES, value, strict=True)
        return f"{option} " + ",".join(f"{mode}={share:.3g}" for mode, share in shares if share)
    return f"{option} {value}"


# How far a share of --regimes typed with --resume may be from the run's own (``typed_form`` writes them with
# 3 digits) and still be the run's own
SHARE_TOLERANCE = 1e-3


def same_setting(name: str, typed: object, own: object) -> bool:
    """Whether a setting as typed is the run's own: --regimes as the shares it gives, --out as the same
    folder from any folder, --init as the model the run started from (``same_init``), and --precision auto
    as what it is."""
    from recnet_cli.train.synthesis import parse_regimes

    if name == "precision":
        from recnet_cli.devices import AUTO_PRECISION  # PyTorch: only for the one option

        return {typed, own} <= {"auto", AUTO_PRECISION} or typed == own
    if name == "regimes":  # typed as the run was set up, or as a refusal writes them (``typed_form``)
        try:
            shares = parse_regimes(str(typed))
        except ValueError:
            return False
        return isinstance(own, tuple) and all(
            math.isclose(a, b, abs_tol=SHARE_TOLERANCE) for a, b in zip(shares, own, strict=True)
        )
    if name == "init" and isinstance(typed, str) and isinstance(own, str):
        return same_init(typed, own)
    if name == "run_dir" and isinstance(typed, str | Path) and isinstance(own, str | Path):
        return os.path.abspath(typed) == os.path.abspath(own)
    return typed == own


def same_init(typed: str, own: str) -> bool:
    """Whether --init as typed names the model a run started from (``own``): the same file from any folder,
    the bundled model by its name or its path, or the Hub model the run pinned to a commit as it started
    (org/name@<commit>) with no revision, that commit whole or short, or a branch or tag that named it when
    the cache last fetched it (org/name@v1)."""
    from recnet_cli.weights.hub import parse_hub_ref, pinned_commit
    from recnet_cli.weights.locate import bundled_model

    typed_ref, own_ref = parse_hub_ref(typed), parse_hub_ref(own)
    if typed_ref is not None and own_ref is not None and not os.path.exists(typed):
        same_file = (typed_ref.repo_id, typed_ref.filename) == (own_ref.repo_id, own_ref.filename)
        revision, pinned = typed_ref.revision, own_ref.revision
        if not same_file or revision in (None, pinned):
            return same_file
        return pinned is not None and pinned_commit(typed_ref.repo_id, revision) == pinned
    files = [name if os.path.isfile(name) else bundled_model(name) for name in (typed, own)]
    if None not in files:
        with contextlib.suppress(OSError):
            return os.path.samefile(*files)
    return os.path.abspath(typed) == os.path.abspath(own)


def refuse_unusable_settings(seed: int, lr: float, precision: Precision) -> None:
    """Settings no run can train with (asked after ``refuse_unusable_options``: with --resume, any given is
    the run's own)."""
    # PyTorch's generators take 64 bits (as a range in the option, help would print 20 digits)
    if seed >= 2**64:
        raise fail(f"--seed {seed}: use a seed below 2^64 (18446744073709551616)")
    if not 0 < lr <= 1:
        raise fail(f"--lr {shown_number(lr)}: use a positive learning rate of at most 1, such as 1e-4")
    if precision is Precision.fp16:  # its small range needs the loss scaled, or small gradients vanish
        raise fail("--precision fp16: training takes bf16 (the same speed on GPUs since Ampere) or fp32")


def regime_shares(regimes: str | None, photos: Path | None) -> tuple[float, float, float, float] | None:
    """--regimes of a new run as the shares of under, over, mixed and mild; None where it was not given."""
    if regimes is None:
        return None
    if photos is None:
        raise fail("--regimes applies to a new run on --photos (inputs synthesised from good photos)")
    from recnet_cli.train.synthesis import parse_regimes

    try:
        return parse_regimes(regimes)
    except ValueError as exc:
        raise fail(f"--regimes: {exc}") from None


def on_cpu(device: str) -> bool:
    """Whether ``--device`` means the CPU (False for names it cannot resolve: those fail later, clearly)."""
    from recnet_cli.devices import DeviceError, pick_device

    try:
        return pick_device(device).type == "cpu"
    except DeviceError:
        return False


def notice_slow_precision(precision: str, device: str) -> None:
    if precision == "bf16" and on_cpu(device):
        console.notice(
            "bf16 on the CPU trains several times slower than fp32 (4.5x per step on a 2-core AMD EPYC); "
            "half precision pays on GPUs"
        )


def training_failure(error: BaseException) -> typer.Exit:
    """The one-line error for a run that could not start or go on: exit 1 where the run failed (out of
    memory, a step that went wrong), 2 where what it was given is at fault."""
    from recnet_cli.devices import is_host_out_of_memory, is_out_of_memory
    from recnet_cli.files import error_line
    from recnet_cli.train.run_folder import TrainingFailed

    if is_out_of_memory(error):
        where = "memory" if is_host_out_of_memory(error) else "GPU memory"
        return fail(
            f"not enough {where} to train at this batch and crop size: try a smaller --batch or --crop", 1
        )
    return fail(error_line(error), 1 if isinstance(error, TrainingFailed) else 2)


def say_how_it_ended(result: TrainResult, signals: StopSignals, quiet: bool, speaks: bool = True) -> None:
    """Finished, stopped early with a checkpoint saved, or interrupted by a signal (exit 130: what was asked
    is not done, as with a batch); finished with a model whose output is NaN, it failed (exit 1). Only the
    process that ``speaks`` says so (under torchrun, rank 0: the others would say it again, and only rank 0
    validates); the others exit 130 where a signal stopped them too."""
    if not speaks:
        if not result.complete and signals.received() is not None:
            raise typer.Exit(INTERRUPTED)
        return
    if result.already_finished:
        if not quiet:
            console.notice(
                f"{result.run_dir}: already finished at step {result.steps}; its model: {result.model_path}"
            )
    elif not result.complete:
        interrupted = "" if signals.received() is None else "interrupted: "
        console.notice(
            f"{interrupted}stopped at step {result.steps} by {result.stopped_by}: checkpoint saved; continue "
            f"with recnet train --resume {shell_word(result.run_dir)}, or use it as it is: --model "
            f"{shell_word(result.model_path)}"
        )
        if interrupted:
            raise typer.Exit(INTERRUPTED)
    else:
        if (stop := signals.received()) is not None:  # it said it would stop after the step: the last one
            console.notice(f"{stop} came in the last step: the run is complete")
        if result.val is not None and math.isnan(result.val.psnr):  # it exited 0 with a model of no use
            raise fail(
                f"{result.model_path}: its output on the validation photos is not a number (NaN): the run "
                "diverged; try a lower learning rate in a new run",
                1,
            )
        if result.val is not None and not quiet:
            val = result.val
            console.done(
                f"trained {counted(result.steps, 'step')}",
                f" in {duration(result.wall_seconds)}: validation {val.psnr:.2f} dB / SSIM {val.ssim:.4f} "
                f"(input alone {val.identity_psnr:.2f} dB / {val.identity_ssim:.4f}); model: "
                f"{result.model_path}",
            )
