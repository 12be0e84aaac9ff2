"""The options and arguments that recnet's commands share, and the checks that run as the command line is
read (so that a mistake is refused before any photo is read or any model loaded)."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from recnet_cli.console import fail
from recnet_cli.files import UNEXPANDED_HOME, unexpanded_home
from recnet_cli.imaging import (
    IMAGE_EXTENSIONS,
    OUTPUT_CHOICES,
    OUTPUT_EXTENSIONS,
    format_for,
    install_hint,
    names_unsupported_image,
)
from recnet_cli.inputs import NO_STANDARD_STREAMS, parse_shard
from recnet_cli.outputs import names_folder, names_image_file
from recnet_cli.train.pairs import SPLITS
from recnet_cli.wording import typed_number


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


class LossPresetName(str, Enum):
    paper = "paper"
    authors_code = "authors-code"


def flag(*names: str, **settings: Any) -> Any:
    """An on/off option, shown in help without a value type (Typer 0.29 would print <bool> beside it)."""
    return typer.Option(*names, metavar="", **settings)


InputsArg = Annotated[
    list[str],
    typer.Argument(
        metavar="PHOTOS",
        help="Image files, folders or globs (quote globs: 'shots/*.jpg').",
        show_default=False,
    ),
]
T = TypeVar("T")


def named(option: str, what: str, kind: Callable[[str], T]) -> Callable[[str], T]:
    """The parser of an option that names a file, a folder or a model: an empty value (which pathlib takes
    for the current folder), or one of spaces alone (an empty shell variable beside a space, as a folder
    named " "), is refused in one line that says what to give."""

    def parse(text: str) -> T:
        if isinstance(text, str) and not text.strip():
            raise fail(f'{option} "{text}": give {what}')
        if isinstance(text, str) and (home := unexpanded_home(text)):  # a str: typed, not a Path default
            raise fail(f"{option} {text}: {UNEXPANDED_HOME}; write {home}")
        return kind(text)

    return parse


def output_option(help: str) -> Any:
    """-o of correct, mask and explain, as typed: a Path would drop the trailing slash that makes it a
    folder."""
    return typer.Option(
        "--output", "-o", parser=named("-o", "an output file or folder", str), metavar="PATH", help=help
    )


OutputOpt = Annotated[
    str | None,
    output_option(
        "Output file (one input) or folder (several inputs or a folder; a name ending in / is one). In "
        "a photo's own folder, outputs are named with --suffix, as without -o."
    ),
]


def model_names(incomplete: str) -> list[tuple[str, str]]:
    """Shell completion of --model: the bundled models and the RECNet models in the Hugging Face cache (but
    those whose files are plainly damaged: their weights are not loaded); with none that match, the shell
    completes file names."""
    from recnet_cli.weights import WeightsError, models_to_list

    try:
        entries = models_to_list(load=False)[0]  # at the speed of typing: no PyTorch
    except WeightsError:  # a Hugging Face cache that cannot be read
        return []
    return [(e.name, e.origin) for e in entries if e.name.startswith(incomplete) and e.problem is None]


def completing(*choices: str) -> Callable[[str], list[str]]:
    """Shell completion of an option from fixed ``choices``."""
    return lambda incomplete: [choice for choice in choices if choice.startswith(incomplete)]


# What --model and --init name.
MODEL_FORMS = "a model file, a Hub repository (org/name) or a bundled model's name"
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        parser=named("--model", MODEL_FORMS, str),
        autocompletion=model_names,
        metavar="MODEL",
        help="A model file (.safetensors, .pth, .pt, .ckpt, .bin, .pth.tar), a Hub repo (org/name, "
        "org/name@rev, org/name:FILE) or a bundled name. Default: the bundled recnet-mixed "
        "(recnet models lists the others).",
    ),
]


def quality_option(help: str) -> Any:
    """--quality: 1 to 100, for the lossy formats."""
    return typer.Option(min=1, max=100, metavar="Q", help=help, show_default=False)


def format_option(help: str) -> Any:
    """--ext: an output format, completed from the formats recnet writes."""
    return typer.Option(metavar="FORMAT", autocompletion=completing(*OUTPUT_EXTENSIONS), help=help)


# ``tiling.MIN_TILE``, which is not imported here: it would import PyTorch (tests keep the two equal)
SMALLEST_TILE = 128


def parse_tile(text: str) -> int | str:
    """'auto', or a whole number: 0 or at least ``SMALLEST_TILE``."""
    if text == "auto":
        return text
    if (size := typed_number(text)) is not None and (size == 0 or size >= SMALLEST_TILE):
        return size
    raise fail(f"--tile {text}: use auto, 0 (whole image) or a size of at least {SMALLEST_TILE} pixels")


def checked_tile(text: str) -> str:
    """--tile, checked as the command line is read: a dry run refuses what the run would."""
    parse_tile(text)
    return text


def shown_number(value: float) -> str:
    """A number as an error shows it: short (1e+300), but not rounded (1.0000001, not the 1 of ``:g``)."""
    return f"{value:g}" if float(f"{value:g}") == value else repr(value)


# The photo sizes bench times, in megapixels.
MIN_MEGAPIXELS, MAX_MEGAPIXELS = 0.01, 1e6


def checked_time_limit(value: float | None) -> float | None:
    """--time-limit: NaN passes the bound of 0 in Typers before 0.29 (as no number is below it), and would
    never stop the run; refused as a number below 0 is."""
    if value is not None and math.isnan(value):
        raise typer.BadParameter("give a number of 0 or more")
    return value


def checked_megapixels(value: float) -> float:
    """--mp, checked as the command line is read: NaN and infinity are refused as sizes out of range are."""
    if not MIN_MEGAPIXELS <= value <= MAX_MEGAPIXELS:
        raise fail(
            f"--mp {shown_number(value)}: use a photo size from {MIN_MEGAPIXELS:g} to {MAX_MEGAPIXELS:,.0f} "
            "megapixels, such as 12"
        )
    return value


DEVICES = ("auto", "cpu", "cuda", "mps")
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",  # named: typer 0.27 took a metavar equal to the name for it (--DEVICE)
        metavar="DEVICE",
        autocompletion=completing(*DEVICES),
        help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps.",
    ),
]
DevicesOpt = Annotated[
    str,
    typer.Option(
        "--device",
        metavar="DEVICE",
        autocompletion=completing(*DEVICES),
        help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps; a list such as cuda:0,cuda:1 "
        "spreads the photos over several GPUs, one copy of the model on each.",
    ),
]
TileOpt = Annotated[
    str,
    typer.Option(
        callback=checked_tile,
        metavar="SIZE",
        help="auto: whole image or tiles, as runs best on the device and fits its memory; 0: the whole "
        f"image; N >= {SMALLEST_TILE}: tiles of at most N x N pixels, longer where the photo is thinner "
        "than N (on a GPU, full-width strips of that area). Tiles give the whole image's result, to within "
        "one 8-bit level.",
    ),
]
PrecisionOpt = Annotated[
    Precision,
    typer.Option(
        "--precision",
        metavar="PRECISION",  # the choices, in the help: as <auto|fp32|fp16|bf16> they left it no room
        help="auto, fp32, fp16 or bf16: auto is fp32; fp16 (GPUs only) and bf16 take half the memory and, "
        "on GPUs, less time, and are less exact.",
    ),
]
FusedOpt = Annotated[
    bool,
    flag(
        "--fused",
        help="Run the network's blocks through fused Triton kernels (CUDA GPUs; experimental; the result "
        "is the default path's to within one 8-bit level).",
    ),
]


def parse_strength(text: str) -> float | str:
    """'auto', or a number from 0 to 1."""
    if text == "auto":
        return text
    try:
        strength = float(text)
    except ValueError:
        strength = float("nan")
    if not 0 <= strength <= 1:
        raise fail(f"--strength {text}: use auto or a number from 0 (no change) to 1 (the full correction)")
    return strength + 0.0  # -0 as 0, which --json would print as -0.0


def checked_strength(text: str) -> str:
    """--strength, checked as the command line is read: neither a dry run nor a photo not found hides it."""
    parse_strength(text)
    return text


StrengthOpt = Annotated[
    str,
    typer.Option(
        callback=checked_strength,
        metavar="AMOUNT",
        help="How much of the correction to apply: auto = as much as the model's calibration predicts for "
        "each photo (little for photos that were nearly right), 1 = the full correction, 0.5 = halfway "
        "between the photo and it, 0 = the photo unchanged.",
    ),
]
KeepColourOpt = Annotated[
    bool,
    flag(
        "--keep-colour/--model-colour",
        help="--keep-colour: take only the lightness from the model and keep the photo's hue and "
        "saturation, smoothed over 2 pixels (no colour cast; blown highlights stay neutral; the finest "
        "colour detail comes out paler). --model-colour: the model's output as it is, colours included.",
    ),
]
RecursiveOpt = Annotated[
    bool,
    flag(
        "--recursive",
        "-r",
        help="Walk sub-folders (not hidden ones) and mirror them under the output folder.",
    ),
]
BatchOverwriteOpt = Annotated[
    bool,
    flag(
        "--overwrite",
        help="Replace outputs that already exist: images recnet wrote (they bear its mark) and the file "
        "-o names, not photos of yours that have an output's name. Where no marks are kept (FAT cards, "
        "macOS, Windows) it cannot tell them apart, and says what it will replace.",
    ),
]
SkipOpt = Annotated[bool, flag("--skip-existing", help="Skip inputs whose output already exists.")]
JsonOpt = Annotated[bool, flag("--json", help="Print a machine-readable summary on stdout.")]
QuietOpt = Annotated[bool, flag("--quiet", "-q", help="No progress bar or notes: only errors.")]
TrainQuietOpt = Annotated[
    bool,
    flag(
        "--quiet",
        "-q",
        help="No progress bar or notes: only errors, and how to go on where a run stopped short.",
    ),
]
BatchQuietOpt = Annotated[
    bool,
    flag(
        "--quiet",
        "-q",
        help="No progress bar, notes or summary: only errors (and the counts, when something failed).",
    ),
]
DryRunOpt = Annotated[
    bool,
    flag(
        "--dry-run",
        "-n",
        help="Only list each input and what it would write (and replace), and which would be skipped or "
        "fail; reads and writes nothing, loads no model.",
    ),
]


# What Windows keeps out of file names besides the separators: ``photo:x.jpg`` would even be written, to a
# hidden stream of photo (NTFS), with no file of that name to be seen.
NOT_IN_WINDOWS_NAMES = frozenset('<>:"|?*' + "".join(map(chr, range(1, 32))))


def name_part(suffix: str) -> str:
    """Refuses a --suffix that is not part of a file name (``/x``, ``../x``; on Windows ``:x`` too)."""
    if "/" in suffix or os.sep in suffix or "\0" in suffix:
        raise typer.BadParameter("a suffix is added to file names, so it cannot hold a folder separator")
    if sys.platform == "win32" and (refused := sorted(NOT_IN_WINDOWS_NAMES.intersection(suffix))):
        shown = " ".join(ascii(c)[1:-1] if c < " " else c for c in refused)  # a tab as \t
        raise typer.BadParameter(f"a suffix is added to file names, and Windows takes no {shown} there")
    return suffix


def folder_option(option: str, what: str, help: str) -> Any:
    """``option FOLDER`` (``what`` says what it is, as ``named`` refuses an empty one)."""
    return typer.Option(option, parser=named(option, what, Path), metavar="FOLDER", help=help)


def suffix_option(help: str) -> Any:
    """--suffix of correct and mask: a part of a file name."""
    return typer.Option(metavar="TEXT", help=help, callback=name_part)


PhotosOpt = Annotated[
    Path | None,
    folder_option(
        "--photos",
        "a folder of photos",
        "Folder of well-exposed photos (searched recursively): badly exposed inputs are synthesised.",
    ),
]
PairsOpt = Annotated[
    Path | None,
    folder_option("--pairs", "a data set folder", "Paired data set folder (LCDP or MSEC layout)."),
]


def checked_split(split: str) -> str:
    """--split, checked as the command line is read, so that its error names it."""
    if split not in SPLITS:
        raise fail(f"--split {split}: unknown split (choose one of {', '.join(SPLITS)})")
    return split


SplitOpt = Annotated[
    str,
    typer.Option(
        "--split", callback=checked_split, metavar="SPLIT", help="Split of --pairs: train, test or valid."
    ),
]
InputsOpt = Annotated[
    Path | None,
    folder_option("--inputs", "a folder of inputs", "Folder of inputs, matched by file name to --targets."),
]
TargetsOpt = Annotated[
    Path | None,
    folder_option("--targets", "a folder of ground truths", "Folder of ground truths for --inputs."),
]


def shard_part(text: str) -> tuple[int, int]:
    """--shard K/N as (K, N), or exits with a one-line error."""
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise fail(str(exc)) from None


def checked_shard(text: str | None) -> str | None:
    """--shard, checked as the command line is read: before a large folder or pattern is walked."""
    if text is not None:
        shard_part(text)
    return text


ShardOpt = Annotated[
    str | None,
    typer.Option(
        callback=checked_shard,
        metavar="K/N",
        help="Process only part K of N of the inputs (1 <= K <= N), to split a collection "
        "over N machines that see the same files, e.g. --shard $((SLURM_ARRAY_TASK_ID+1))/8 (array "
        "indices count from 0).",
    ),
]


def given_options(ctx: typer.Context) -> list[str]:
    """The options typed on the command line (not left at their defaults), by their long names: of a flag
    pair (``--ecr/--no-ecr``), the one typed."""
    typed = []
    for param in ctx.command.params:
        if param.name and ctx.get_parameter_source(param.name).name == "COMMANDLINE":
            flag_off = param.secondary_opts and ctx.params.get(param.name) is False
            names = param.secondary_opts if flag_off else param.opts
            typed.append(next((name for name in names if name.startswith("--")), names[0]))
    return typed


def refuse_split_without_pairs(given: list[str], pairs: Path | None) -> None:
    """--split typed without --pairs is refused rather than ignored (two folders have no splits)."""
    if "--split" in given and pairs is None:
        raise fail("--split applies to --pairs (which split of a data set's folders)")


def refuse_both(overwrite: bool, skip_existing: bool) -> None:
    if overwrite and skip_existing:
        raise fail("--overwrite replaces existing outputs and --skip-existing keeps them: choose one")


def model_file_to_write(text: str) -> Path:
    """calibrate's -o: a file, so a folder (one there, or a name typed with a trailing slash) is refused."""
    if names_folder(text):
        raise fail(f"-o {text}: a folder; name the calibrated model's .safetensors file")
    return Path(text)


def normalise_extension(ext: str | None) -> str | None:
    if ext is None:
        return None
    given, ext = ext, ext.lower() if ext.startswith(".") else f".{ext.lower()}"
    if ext not in IMAGE_EXTENSIONS:
        shown = given if given.isprintable() and given.strip() == given != "" else repr(given)
        raise fail(f"--ext {shown}: unsupported format (use {OUTPUT_CHOICES}{install_hint(ext)})")
    return ext


def refuse_conflicting_format(output: str | None, extension: str | None) -> None:
    """-o naming a file of one format with --ext asking for another is refused rather than one ignored."""
    if extension and names_image_file(output) and format_for(output) != format_for(output, extension):
        raise fail(f"-o {output} is a {format_for(output)} name but --ext asks for {extension[1:]}: drop one")


def refuse_unwritable_output(output: str | None) -> None:
    """-o naming an image format recnet cannot write (out.heic, out.gif) is refused before any work; a
    folder of any name is not (``output`` as typed: see ``names_folder``). ``-o -``, which other tools
    take for standard output, is refused rather than made a folder named ``-``."""
    if output == "-":
        raise fail(f"-o -: {NO_STANDARD_STREAMS}; name a file or a folder (./- for a folder named -)")
    if output is not None and not names_folder(output) and names_unsupported_image(output):
        suffix = Path(output).suffix
        raise fail(
            f"-o {output}: cannot write {suffix} files (name a {OUTPUT_CHOICES} file, or a folder"
            f"{install_hint(suffix)})"
        )


def refuse_empty_suffix(suffix: str, output: str | None, extension: str | None) -> None:
    """An empty --suffix without -o, nor an ``extension`` the outputs take: each output would be its photo,
    refused one by one."""
    if suffix == "" and output is None and extension is None:
        raise fail(
            '--suffix "": without -o or --ext each output would be its photo; give a suffix, or -o a folder'
        )
