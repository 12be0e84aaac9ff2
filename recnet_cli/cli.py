"""The `recnet` command line: thin commands over the library."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from recnet_cli import __version__, console
from recnet_cli.batch import replaces_companions, unattributable_outputs
from recnet_cli.calibrate_command import (
    fitted_strength,
    refuse_calibrating_a_local_model_in_place,
    refuse_calibrating_in_place,
    report_calibration,
)
from recnet_cli.click_classes import RecnetCommand, RecnetGroup
from recnet_cli.console import fail
from recnet_cli.entry import INTERRUPTED, ignore_further_stops, ignored_hub_timeouts, library_failure
from recnet_cli.eval_command import report_evaluation
from recnet_cli.explain_command import explain_photo
from recnet_cli.files import describe_os_error, error_line
from recnet_cli.imaging import OUTPUT_CHOICES
from recnet_cli.options import (
    MODEL_FORMS,
    BatchOverwriteOpt,
    BatchQuietOpt,
    DeviceOpt,
    DevicesOpt,
    DryRunOpt,
    FusedOpt,
    InputsArg,
    InputsOpt,
    JsonOpt,
    KeepColourOpt,
    LossPresetName,
    ModelOpt,
    OutputOpt,
    PairsOpt,
    PhotosOpt,
    Precision,
    PrecisionOpt,
    QuietOpt,
    RecursiveOpt,
    ShardOpt,
    SkipOpt,
    SplitOpt,
    StrengthOpt,
    TargetsOpt,
    TileOpt,
    TrainQuietOpt,
    checked_megapixels,
    checked_time_limit,
    flag,
    folder_option,
    format_option,
    given_options,
    model_file_to_write,
    model_names,
    named,
    output_option,
    parse_strength,
    quality_option,
    refuse_both,
    refuse_split_without_pairs,
    suffix_option,
)
from recnet_cli.outputs import (
    CORRECT_SUFFIX,
    MASK_SUFFIX,
    calibrated_model_problem,
    names_image_file,
    side_path,
)
from recnet_cli.runner import (
    BatchMode,
    ModelChoice,
    collect_jobs,
    device_names,
    finish,
    notice_quality_unused,
    notice_suffix_unused,
    notice_unattributable,
    open_models,
    open_models_if_needed,
    refuse_device_list,
    run_batch,
    write_report,
)
from recnet_cli.train.pairs import (
    chosen_pairs,
    data_notes,
    data_set_folders,
    data_source_problem,
    own_targets_note,
    unsplit_note,
)
from recnet_cli.train_command import (
    notice_slow_precision,
    refuse_unusable_options,
    refuse_unusable_settings,
    regime_shares,
    say_how_it_ended,
    training_failure,
)
from recnet_cli.wording import counted, shell_word

# The model, its weights and the pictures need PyTorch, which takes 1.5 s to import on 2 CPU cores: commands
# import them when they run, so --help, --version and mistakes in the arguments answer at once.


app = typer.Typer(
    name="recnet",
    cls=RecnetGroup,
    help="Correct photos with mixed over- and under-exposure (blown skies and crushed shadows in one frame) "
    "with RECNet.\n\n[dim]Start with:[/]  recnet correct photo.jpg   (writes photo_recnet.jpg; "
    "recnet correct --help says more)",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
command = partial(app.command, cls=RecnetCommand)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"recnet {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, flag("--version", callback=version_callback, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Correct mixed over- and under-exposure in photos with RECNet."""


@command()
def correct(
    ctx: typer.Context,
    inputs: InputsArg,
    output: OutputOpt = None,
    model: ModelOpt = None,
    device: DevicesOpt = "auto",
    tile: TileOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    strength: StrengthOpt = "auto",
    fused: FusedOpt = False,
    suffix: Annotated[
        str, suffix_option("Added to each output's name beside its photo, and in an -o folder when typed.")
    ] = CORRECT_SUFFIX,
    ext: Annotated[
        str | None, format_option(f"Output format: {OUTPUT_CHOICES}; by default the input's.")
    ] = None,
    quality: Annotated[
        int | None,
        quality_option(
            "JPEG, WebP, AVIF, HEIF quality: 95 if not given, and then a lossless WebP stays lossless."
        ),
    ] = None,
    recursive: RecursiveOpt = False,
    skip_existing: SkipOpt = False,
    overwrite: BatchOverwriteOpt = False,
    keep_colour: KeepColourOpt = True,
    save_mask: Annotated[
        bool, flag("--save-mask", help="Also write the exposure-mask picture beside each output.")
    ] = False,
    save_features: Annotated[
        bool,
        flag(
            "--save-features",
            help="Also write <name>_features.png: what each of the model's blocks does (see explain).",
        ),
    ] = False,
    report: Annotated[
        bool,
        flag(
            "--report",
            help="Write OUT/report.html: before/after sliders, masks and exposure numbers for every photo "
            "corrected into OUT with --report (this run's, the other shards', earlier runs'). Needs -o "
            "FOLDER; implies --save-mask.",
        ),
    ] = False,
    shard: ShardOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    quiet: BatchQuietOpt = False,
) -> None:
    """Correct the exposure of photos.

    [dim]Examples:[/]
      recnet correct photo.jpg -o fixed.jpg
      recnet correct shots/ -o fixed/ --recursive --report
      recnet correct 'shots/*.tif' --suffix _fixed --save-mask
      recnet correct photo.jpg --strength 0.6 --model-colour
      recnet correct shots/ -o fixed/ --recursive --dry-run
    """
    if report and (output is None or names_image_file(output)):
        raise fail("--report needs an output folder: -o FOLDER")
    save_mask = save_mask or report
    tags = tuple(tag for tag, wanted in (("mask", save_mask), ("features", save_features)) if wanted)
    suffix_typed = "--suffix" in given_options(ctx)
    refuse_both(overwrite, skip_existing)
    amount = parse_strength(strength)
    # what --json says until the model loads
    given = {"model": model, "device": device, "strength": amount, "keep_colour": keep_colour}
    mode = BatchMode("correct", overwrite, skip_existing, quiet, as_json, dry_run)
    jobs, found, batch = collect_jobs(
        mode,
        inputs,
        output,
        recursive=recursive,
        suffix=suffix,
        folder_suffix=suffix if suffix_typed else "",
        ext=ext,
        shard=shard,
        about=given,
        companions=lambda target: tuple(side_path(target, tag) for tag in tags),
    )
    notice_suffix_unused(suffix_typed, jobs, quiet)
    notice_quality_unused(quality, jobs, quiet)
    notice_unattributable(overwrite, unattributable_outputs(jobs), quiet)
    report_at = None
    if report:
        from recnet_cli.viz.report import report_files, report_problem

        if problem := report_problem(Path(output), [job.target for job in jobs]):
            raise fail(problem)
        report_at = report_files(Path(output))
    choice = ModelChoice(model, device, precision, tile, amount, fused, keep_colour)
    # with --report, the model is loaded whatever the batch holds: the page names it
    correctors, loaded = open_models_if_needed(
        mode, jobs, found, choice, given, report=report_at, always=report
    )
    from recnet_cli.correct_command import PhotoCorrection
    from recnet_cli.viz.report import ReportBuilder

    builder = ReportBuilder(Path(output), [job.target for job in batch]) if report else None
    correction = PhotoCorrection(
        save_mask=save_mask,
        save_features=save_features,
        quality=quality,
        overwrite=overwrite,
        replace_companions=replaces_companions(overwrite, skip_existing),
        quiet=quiet,
        report=builder,
    )
    summary = run_batch(mode, jobs, found, correctors, correction.compute, correction.write, "Correcting")
    about = (
        given if loaded is None else {**given, "model": loaded.reference, "device": device_names(correctors)}
    )
    report_failed = builder is not None and not write_report(
        builder, summary, about, correctors[0], loaded.source, shard, len(jobs), quiet
    )
    strengths = correction.strengths
    if strengths and correctors[0].strength_setting == "auto" and not quiet:
        console.notice(f"strength auto: {console.strength_range(list(strengths.values()))}")
    finish(summary, "corrected", quiet, as_json, about, strengths, failed=report_failed)


@command()
def explain(
    image: Annotated[
        Path,
        typer.Argument(
            parser=named("PHOTO", "a photo", Path),
            metavar="PHOTO",
            help="The photo to explain.",
            show_default=False,
        ),
    ],
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            "-r",
            parser=named("--reference", "a photo", Path),
            metavar="PHOTO",
            help="The photo's ground truth (same size): adds how far each block's features and the output "
            "are from it, with PSNR and SSIM. (In correct and mask, -r is --recursive.)",
        ),
    ] = None,
    output: Annotated[
        str | None,
        output_option(
            "The contact sheet, in the format its extension names (any that correct writes), or a folder to "
            "put it in (a name without an image extension, or ending in /). Default: <name>_explain.png "
            "beside the photo."
        ),
    ] = None,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    tile: TileOpt = "auto",
    keep_colour: KeepColourOpt = True,
    overwrite: BatchOverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Draw one contact sheet that shows what the model did to a photo and why.

    At the top: the photo, the corrected photo and the exposure mask.

    Then inside the network, on a copy reduced to 512 pixels: the features as extracted and after each block.

    And how far apart each block leaves the features of the under- and over-exposed regions.

    With --reference: how far each block's features and the output are from the reference's.

    [dim]Example:[/]  recnet explain photo.jpg -r photo-edited.jpg -o sheet.png
    """
    explain_photo(image, reference, output, model, device, tile, keep_colour, overwrite, quiet)


@command()
def mask(
    ctx: typer.Context,
    inputs: InputsArg,
    output: OutputOpt = None,
    model: ModelOpt = None,
    device: DevicesOpt = "auto",
    tile: TileOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    suffix: Annotated[
        str, suffix_option("Added to each picture's name, beside its photo or in an -o folder.")
    ] = MASK_SUFFIX,
    ext: Annotated[
        str | None, format_option(f"Output format of the picture (default png): {OUTPUT_CHOICES}.")
    ] = None,
    raw: Annotated[
        bool,
        flag(
            "--raw",
            help="Also write the mask itself as 16-bit grayscale PNG (white = under-exposed, black = "
            "over-exposed).",
        ),
    ] = False,
    quality: Annotated[
        int | None, quality_option("Quality of JPEG, WebP, AVIF and HEIF pictures: 95 if not given.")
    ] = None,
    recursive: RecursiveOpt = False,
    skip_existing: SkipOpt = False,
    overwrite: BatchOverwriteOpt = False,
    shard: ShardOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    quiet: BatchQuietOpt = False,
) -> None:
    """Show where the model sees over- and under-exposure.

    The photo is dimmed; under-exposed areas are tinted blue and over-exposed ones orange.

    The tint is stronger where the model is more certain.

    [dim]Example:[/]  recnet mask photo.jpg --raw
    """
    refuse_both(overwrite, skip_existing)
    given = {"model": model, "device": device}  # what --json says until the model loads
    mode = BatchMode("mask", overwrite, skip_existing, quiet, as_json, dry_run)
    jobs, found, _ = collect_jobs(
        mode,
        inputs,
        output,
        recursive=recursive,
        suffix=suffix,
        folder_suffix=suffix,  # a mask picture's name says what it is in any folder, as beside the photo
        ext=ext,
        shard=shard,
        about=given,
        companions=lambda target: (side_path(target, "raw"),) if raw else (),
        default_ext=".png",
    )
    notice_suffix_unused("--suffix" in given_options(ctx), jobs, quiet)
    notice_quality_unused(quality, jobs, quiet)
    notice_unattributable(overwrite, unattributable_outputs(jobs), quiet)
    choice = ModelChoice(model, device, precision, tile, keep_colour=False)  # the mask only: no colours
    correctors, loaded = open_models_if_needed(mode, jobs, found, choice, given)
    from recnet_cli.mask_command import MaskDrawing

    drawing = MaskDrawing(raw, quality, overwrite, replaces_companions(overwrite, skip_existing), quiet)
    summary = run_batch(mode, jobs, found, correctors, drawing.compute, drawing.write, "Masking")
    about = given if loaded is None else {"model": loaded.reference, "device": device_names(correctors)}
    finish(summary, "masked", quiet, as_json, about)


@command()
def models(as_json: JsonOpt = False) -> None:
    """List the bundled models and the RECNet models in the Hugging Face cache.

    A damaged model or card is listed as such, with a one-line error; the exit code is then 1.

    [dim]Example:[/]  recnet models --json
    """
    from recnet_cli.weights import WeightsError, models_to_list

    try:
        entries, cache_problem = models_to_list()
    except WeightsError as exc:
        raise fail(str(exc)) from None
    from recnet_cli.weights.locate import weights_dir, weights_dir_problem

    # HF_HOME or HF_HUB_CACHE naming a file, RECNET_WEIGHTS_DIR no folder: the others are listed all the same
    for problem in filter(None, (cache_problem, weights_dir_problem())):
        console.notice(problem)
    if as_json:
        typer.echo(json.dumps([entry.as_dict() for entry in entries], indent=2))
    elif entries:
        console.out.print(console.models_table(entries, console.out.width))
    else:
        bundled = console.visible(str(weights_dir()))  # plain text: a folder may be named [red] or hold \n
        console.err.print(
            f"No models yet: none bundled in {bundled} and none in the Hugging Face cache.", markup=False
        )
    problems = [entry.problem for entry in entries if entry.problem]
    for problem in problems:
        console.error(problem)
    if problems:
        raise typer.Exit(1)


@command("download")
def download_command(
    ref: Annotated[
        str,
        typer.Argument(
            parser=named("REPO", "a Hub repository (org/name)", str),
            metavar="REPO",
            help="Hub reference: org/name, org/name@revision or org/name:file.",
        ),
    ],
    filename: Annotated[
        str | None,
        typer.Argument(
            parser=named("FILE", "a file of the repository", str),
            metavar="FILE",
            help="The file to fetch, as after org/name: (default model.safetensors).",
            show_default=False,
        ),
    ] = None,
    revision: Annotated[
        str | None,
        typer.Option(
            parser=named("--revision", "a branch, tag or commit", str),
            metavar="REV",
            help="A branch, tag or commit, as after org/name@ (default main).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Fetch a model from the Hugging Face Hub into the local cache, for use offline later.

    [dim]Examples:[/]
      recnet download org/recnet-mixed@v1
      recnet download org/recnet-mixed model.safetensors --revision v1
    """
    from recnet_cli.weights import WeightsError, download
    from recnet_cli.weights.hub import joined_hub_ref, parse_hub_ref
    from recnet_cli.weights.locate import bundled_model

    if parse_hub_ref(ref) is None and bundled_model(ref):
        raise fail(
            f"{ref}: bundled with recnet, so there is nothing to download: use it as --model "
            + shell_word(ref)
        )
    try:
        ref = joined_hub_ref(ref, filename, revision)
    except ValueError as exc:
        raise fail(str(exc)) from None
    for name, value in ignored_hub_timeouts.items():
        console.notice(f"{name}={value}: not a whole number of seconds, so the default is used")
    try:
        path = download(ref, on_cached_copy=lambda why: console.notice(f"{ref}: {why}"))
    except WeightsError as exc:
        raise fail(str(exc)) from None
    typer.echo(str(path))


@command()
def train(
    ctx: typer.Context,
    photos: PhotosOpt = None,
    pairs: PairsOpt = None,
    split: SplitOpt = "train",
    inputs: InputsOpt = None,
    targets: TargetsOpt = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "--output",
            "-o",
            parser=named("--out", "a run folder", Path),
            metavar="FOLDER",
            help="Run folder: checkpoints, metrics.jsonl, final model.",
        ),
    ] = Path("runs/recnet"),
    resume_run: Annotated[
        Path | None,
        folder_option(
            "--resume",
            "a run folder",
            "Continue the run in this folder exactly where it stopped, as it was set up (only --device, "
            "--time-limit, --quiet, --checkpoint-every and --val-every may be given with it, the new place "
            "of its data or VGG weights if they moved, and other options only with the run's own values).",
        ),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            parser=named("--init", MODEL_FORMS, str),
            autocompletion=model_names,
            metavar="MODEL",
            help="Fine-tune from this model (file, Hub or bundled name).",
        ),
    ] = None,
    steps: Annotated[int, typer.Option(min=1, metavar="N", help="Optimizer steps to train.")] = 20_000,
    batch: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="Crops per step, in all (under torchrun, split evenly over the processes).",
        ),
    ] = 8,
    crop: Annotated[
        int,
        # 8192 px crops would take 650 GiB a step: more than any GPU holds (OpenCV cannot scale to 2^31 px)
        typer.Option(min=32, max=8192, metavar="PIXELS", help="Square training crop."),
    ] = 384,
    lr: Annotated[
        float,
        typer.Option(metavar="RATE", help="Peak learning rate (cosine schedule after warm-up)."),
    ] = 1e-4,
    seed: Annotated[
        int,
        typer.Option(
            min=0, metavar="N", help="Seed for the weights, the crops and the synthesis (below 2^64)."
        ),
    ] = 0,
    val_every: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="Validate every N steps. With --resume: from then on, kept in the run's config.json "
            "(the weights trained are the same).",
        ),
    ] = 1000,
    checkpoint_every: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="Save a resumable checkpoint every N steps. With --resume: from then on, kept in the run's "
            "config.json (the weights trained are the same).",
        ),
    ] = 500,
    loss_preset: Annotated[
        LossPresetName,
        typer.Option(
            metavar="PRESET",
            help="paper: MSE + colour + mask BCE + ECR; authors-code: L1 + SSIM instead of MSE.",
        ),
    ] = LossPresetName.paper,
    ecr: Annotated[
        bool,
        flag("--ecr/--no-ecr", help="Exposure contrastive loss (needs VGG16 ImageNet weights)."),
    ] = True,
    vgg_weights: Annotated[
        Path | None,
        typer.Option(
            parser=named("--vgg-weights", "a VGG16 weights file", Path),
            metavar="FILE",
            help="torchvision's vgg16-397923af.pth, for ECR.",
        ),
    ] = None,
    regimes: Annotated[
        str | None,
        typer.Option(
            metavar="SHARES",
            help="With --photos: how often each kind of bad exposure is synthesised, as shares of under, "
            "over, mixed and mild (nearly right), such as mixed=0.6,mild=0.4 (scaled to sum to 1: "
            "mixed=3,mild=2 is the same); those not named get none. "
            "Default: under 0.225, over 0.225, mixed 0.45, mild 0.1.",
        ),
    ] = None,
    device: DeviceOpt = "auto",
    precision: Annotated[
        Precision,
        typer.Option(
            "--precision",
            metavar="PRECISION",
            help="auto (fp32) or fp32; bf16 autocasts the forward pass, which pays on GPUs (on the CPU it is "
            "several times slower); fp16 is for correcting only.",
        ),
    ] = Precision.auto,
    time_limit: Annotated[
        float | None,
        typer.Option(
            min=0,
            callback=checked_time_limit,
            metavar="MINUTES",
            help="Minutes this invocation may run, from its start (loading the data too); then it saves a "
            "checkpoint and stops (0: after its first step), to be continued with --resume (for batch-job "
            "time limits). Default: no limit.",
        ),
    ] = None,
    quiet: TrainQuietOpt = False,
) -> None:
    """Train RECNet, or fine-tune a model on your own photos or pairs.

    [dim]Examples:[/]
      recnet train --photos my-photos/ --out runs/mine --steps 5000 --no-ecr
      recnet train --pairs LCDP/ --init recnet-mixed --lr 2e-5 --steps 2000
      recnet train --photos my-photos/ --init recnet-mixed --regimes mixed=0.6,mild=0.4 --steps 2000
      recnet train --resume runs/mine --time-limit 50
      torchrun --nproc_per_node 4 -m recnet_cli train --photos my-photos/ --batch 32
    """
    from recnet_cli.train.loop import StopSignals, launched_as_main, resume
    from recnet_cli.train.loop import train as start_training
    from recnet_cli.train.run_folder import TrainConfig, how_to_go_on
    from recnet_cli.train_command import cadence_given
    from recnet_cli.weights import WeightsError

    settings = dict(  # those a run is set up with (its TrainConfig's), as typed
        run_dir=out,
        split=split,
        steps=steps,
        batch=batch,
        crop=crop,
        lr=lr,
        seed=seed,
        val_every=val_every,
        checkpoint_every=checkpoint_every,
        loss_preset=loss_preset.value,
        ecr=ecr,
        init=init,
        precision=precision.value,
    )
    given = given_options(ctx)
    refuse_unusable_options(given, resume_run, pairs, ecr, settings | {"regimes": regimes})
    refuse_unusable_settings(seed, lr, precision)
    seconds = None if time_limit is None else time_limit * 60
    shares = regime_shares(regimes, photos) if resume_run is None else None
    refuse_device_list(device)
    # Under torchrun, rank 0 alone says what every process would say alike; errors, which one process may
    # meet alone, each says.
    speaks = launched_as_main()
    for note in data_notes(photos, inputs, targets) if resume_run is None and not quiet and speaks else ():
        console.notice(note)
    if resume_run is None and not quiet and speaks:
        notice_slow_precision(precision.value, device)
    # listened to from the first step on
    signals = StopSignals(console.notice_stopping) if speaks else StopSignals()
    try:
        with console.TrainingProgress(quiet or not speaks) as progress:
            if resume_run is not None:
                moved = dict(
                    photos=photos, pairs=pairs, inputs=inputs, targets=targets, vgg_weights=vgg_weights
                )
                result = resume(
                    resume_run,
                    progress=progress,
                    device=None if device == "auto" else device,
                    time_limit=seconds,
                    stop_signals=signals,
                    moved={name: path for name, path in moved.items() if path is not None},
                    cadence=cadence_given(given, val_every=val_every, checkpoint_every=checkpoint_every),
                )
            else:
                config = TrainConfig(
                    **settings,
                    photos=photos,
                    pairs=pairs,
                    inputs=inputs,
                    targets=targets,
                    vgg_weights=vgg_weights,
                    device=device,
                    regimes=shares or TrainConfig.regimes,
                )
                result = start_training(config, progress=progress, time_limit=seconds, stop_signals=signals)
    except KeyboardInterrupt:  # before the first step, or a second Ctrl-C or SIGTERM
        ignore_further_stops()
        if speaks:
            console.notice(f"interrupted: {how_to_go_on(resume_run or out)}")
        raise typer.Exit(INTERRUPTED) from None
    except (MemoryError, ValueError, RuntimeError, OSError, WeightsError) as exc:
        raise training_failure(exc) from None
    say_how_it_ended(result, signals, quiet, speaks)


@command()
def calibrate(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            parser=named("-o", "a .safetensors file to write", model_file_to_write),
            metavar="PATH",
            help="The calibrated model to write (.safetensors, with its card as .json and .md beside it).",
            show_default=False,
        ),
    ],
    photos: PhotosOpt = None,
    pairs: PairsOpt = None,
    split: SplitOpt = "train",
    inputs: InputsOpt = None,
    targets: TargetsOpt = None,
    model: ModelOpt = None,
    size: Annotated[
        int,
        typer.Option(
            min=64,
            metavar="PIXELS",
            help="Long side of the pairs, at most: none is enlarged (but to the 11 pixels SSIM needs).",
        ),
    ] = 384,
    count: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help="At most this many photos per kind of exposure error, or pairs, to fit on.",
        ),
    ] = 250,
    device: DeviceOpt = "auto",
    keep_colour: KeepColourOpt = True,
    overwrite: Annotated[
        bool,
        flag(
            "--overwrite",
            help="Replace the model -o names, and the cards recnet wrote beside it, where they exist.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Fit how much of the model's correction each photo gets with --strength auto.

    The model changes photos that were nearly right as well as badly exposed ones.

    It corrects pairs (made from --photos, or real ones) and fits the share nearest the ground truth.

    It corrects them as correct would: in the photo's colours, or the model's with --model-colour.

    The share goes by each photo's exposure; the pairs that train holds out score the fit.

    It writes a copy of the model with this calibration in its card: correct and eval use it by default.

    [dim]Examples:[/]
      recnet calibrate --photos photos/ -m mine.safetensors -o auto.safetensors
      recnet calibrate --inputs shots/ --targets edited/ -o tuned.safetensors
    """
    from recnet_cli.weights import WeightsError, save_model

    refuse_calibrating_a_local_model_in_place(output, model)
    if problem := calibrated_model_problem(output, overwrite):
        raise fail(problem)
    refuse_split_without_pairs(given_options(ctx), pairs)
    if problem := data_source_problem(pairs, inputs, targets, photos, takes_photos=True):
        raise fail(problem)
    from recnet_cli.train.calibration import calibrated_card, calibration_data, rounded_scores

    about = {"model": model, "output": str(output)}  # the model as given, until it loads
    with console.reported_if_stopped("calibrate", about, as_json, f": {output} was not written"):
        for note in () if quiet else data_notes(photos, inputs, targets):  # before the error they may explain
            console.notice(note)
        try:
            data = calibration_data(photos, pairs, split, inputs, targets, size, count)
        except (ValueError, OSError) as exc:
            raise fail(error_line(exc)) from None
        choice = ModelChoice(model, device, Precision.auto, "auto", keep_colour=keep_colour)
        (corrector,), loaded = open_models(choice, quiet=quiet, one_device=True)
        about["model"] = loaded.reference
        refuse_calibrating_in_place(output, loaded.path, loaded.source)
        calibration, scores = fitted_strength(corrector, data, loaded.source, size, quiet)
    ignore_further_stops()  # the model and its cards are written whole: a stop now would leave a part
    card = calibrated_card(loaded.card, loaded.reference, output.stem, calibration, rounded_scores(scores))
    try:
        save_model(corrector.model.to("cpu"), output, card, overwrite=overwrite)
    except WeightsError as exc:
        raise fail(str(exc), 1) from None
    report_calibration(loaded, output, data, calibration, scores, as_json, quiet)


@command("eval")
def evaluate(
    ctx: typer.Context,
    pairs: PairsOpt = None,
    split: SplitOpt = "test",
    inputs: InputsOpt = None,
    targets: TargetsOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    tile: TileOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    strength: StrengthOpt = "auto",
    keep_colour: KeepColourOpt = True,
    save: Annotated[
        str | None,
        typer.Option(
            "--save",
            parser=named("--save", "a folder", str),  # as typed: a Path would drop a trailing slash
            metavar="FOLDER",
            help="Also write the corrected images to this folder (not the pairs' own), as <input stem>.png.",
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        flag(
            "--overwrite",
            help="Replace images in the --save folder that recnet wrote (they bear its mark), not files of "
            "yours.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    quiet: Annotated[
        bool, flag("--quiet", "-q", help="No progress bar and no notes: only the scores and errors.")
    ] = False,
) -> None:
    """Score a model on input/ground-truth pairs (PSNR, SSIM), beside the uncorrected input as a baseline.

    Each input is corrected as correct would: at its strength, in the photo's colours or the model's.

    A pair that cannot be scored (a damaged file, images of different sizes) gets an error line.

    Such a pair is left out of the means, and the command then exits with status 1.

    [dim]Examples:[/]
      recnet eval --pairs LCDP/ --split test
      recnet eval --inputs shots/ --targets edited/ --model my.safetensors --json
    """
    refuse_split_without_pairs(given_options(ctx), pairs)
    if overwrite and save is None:  # as --vgg-weights without ECR: an option that would do nothing
        raise fail("--overwrite replaces the images --save writes; without --save, eval writes none")
    if problem := data_source_problem(pairs, inputs, targets, takes_photos=False):
        raise fail(problem)
    try:
        found = chosen_pairs(pairs, split, inputs, targets)
    except (ValueError, OSError) as exc:
        raise fail(error_line(exc)) from None
    for note in [
        unsplit_note(pairs, split) if pairs else None,
        *data_notes(None, inputs, targets),
        own_targets_note(found),
    ]:
        if note and not quiet:
            console.notice(note)
    from recnet_cli.evaluate import evaluate_pairs, save_problem

    amount = parse_strength(strength)
    data_set = data_set_folders(pairs) if pairs is not None else []
    problem = save_problem(found, save, overwrite, data_set) if save is not None else None
    if problem:
        raise fail(problem)
    choice = ModelChoice(model, device, precision, tile, strength=amount, keep_colour=keep_colour)
    (corrector,), loaded = open_models(choice, quiet=quiet, one_device=True)

    with console.counting(len(found), "Evaluating", "pair", quiet) as count_one:
        try:
            report = evaluate_pairs(
                found,
                corrector,
                None if save is None else Path(save),
                progress=lambda *_: count_one(),
                on_failure=lambda failure: console.error(failure.reason),
                overwrite=overwrite,
                on_notice=None if quiet else console.notice,
            )
        except (ValueError, OSError) as exc:
            raise fail(error_line(exc)) from None
    report_evaluation(report, len(found), loaded, amount, as_json, corrector.keep_colour)


@command()
def bench(
    megapixels: Annotated[
        float,
        typer.Option(
            "--megapixels", "--mp", callback=checked_megapixels, metavar="MP", help="Photo size to time."
        ),
    ] = 12.0,
    repeats: Annotated[int, typer.Option(min=1, metavar="N", help="Timed runs after one warm-up run.")] = 3,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    tile: TileOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    compiled: Annotated[
        bool,
        flag(
            "--compile",
            help="Run the whole-image path through torch.compile (the warm-up run compiles it: half a "
            "minute or more). Falls back to the uncompiled path if compiling fails.",
        ),
    ] = False,
    fused: FusedOpt = False,
    keep_colour: KeepColourOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Time a correction on this machine at a given photo size, as correct makes it.

    The photo is 4:3 random pixels; times include copying it to and from the device.

    By default they include giving the correction the photo's colours; --model-colour leaves that out.

    [dim]Example:[/]  recnet bench --mp 24 --device cuda --precision fp16
    """
    from recnet_cli.devices import describe_peak_memory
    from recnet_cli.engine import PhotoRunError, time_correction

    about = {"model": model}  # as given, until it loads
    with console.reported_if_stopped("bench", about, as_json):
        choice = ModelChoice(
            model, device, precision, tile, fused=fused, keep_colour=keep_colour, compiled=compiled
        )
        (corrector,), loaded = open_models(choice, quiet=True, one_device=True)
        about["model"] = loaded.reference
        try:
            timing = time_correction(corrector, megapixels, repeats)
        except MemoryError:
            raise fail(
                f"--mp {megapixels:g}: a photo this large does not fit in this machine's memory"
            ) from None
        except PhotoRunError as error:
            raise fail(f"--mp {megapixels:g}: {error}", 1) from None
    if compiled and timing["tile"]:
        console.notice("--compile speeds up the whole-image path only; this size ran in tiles (try --tile 0)")
    if corrector.compile_failure:
        console.notice(
            f"torch.compile failed, so this timed the uncompiled path ({corrector.compile_failure})"
        )
    if timing["interrupted"]:
        ignore_further_stops()  # the runs timed are said in full
    if as_json:
        typer.echo(json.dumps(about | timing, indent=2))
    else:
        memory = describe_peak_memory(corrector.device, timing["peak_memory_bytes"])
        console.out.print(console.timing_line(timing, megapixels, memory))
    if timing["interrupted"]:
        console.notice(f"interrupted: {timing['runs']} of {counted(repeats, 'run')} timed")
        raise typer.Exit(INTERRUPTED)


def run() -> None:
    """The ``recnet`` program once its modules are loaded (``entry.run`` starts it, having made SIGTERM end
    it as Ctrl-C does): a stop at any point exits 130 (143 for SIGTERM), and a batch says how far it got."""
    console.write_stdout_whole()
    try:
        try:
            app(prog_name="recnet")
        finally:
            sys.stdout.flush()  # here, where a failure is the command's, not at exit
    except OSError as error:  # what the commands print could not be written (stdout on a full disk)
        if library_failure(error) is not None:
            raise  # not a write: a library that could not load, which ``entry.run`` reports
        unnamed = f"cannot write to standard output: {describe_os_error(error)}"
        console.error(error_line(error) if error.filename is not None else unnamed)
        sys.stdout = None  # nothing more to flush at exit (Python then skips it)
        raise SystemExit(1) from None
    finally:  # all is written and said: a stop while Python shuts down would only change the exit code
        ignore_further_stops()
