"""Naming a batch's outputs and planning its jobs: where each input's corrected image (and companions)
go, and the outputs refused before any photo is read (an input's own file, one output for two inputs, a
format recnet cannot write, a folder that cannot take files)."""

from __future__ import annotations

import os
import stat
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recnet_cli.files import (
    describe_os_error,
    file_kind,
    nearest_existing,
    real_path,
    special_file_kind,
    special_input,
)
from recnet_cli.imaging import (
    HEIF_EXTENSIONS,
    IMAGE_EXTENSIONS,
    OUTPUT_CHOICES,
    READABLE,
    conversion_needed,
    enable_heif,
    has_supported_signature,
    kept_from_overwrite,
    names_unsupported_image,
    written_by_recnet,
)
from recnet_cli.inputs import FileIdentity, Source, file_identity, input_identities
from recnet_cli.wording import counted, listed

# What recnet names the files it writes beside a photo: <stem><suffix>.<ext> (correct: _recnet, mask:
# _mask; explain writes <stem>_explain.png), and companions <output stem>_<tag>.png.
CORRECT_SUFFIX, MASK_SUFFIX, EXPLAIN_SUFFIX = "_recnet", "_mask", "_explain"
COMPANION_TAGS = ("mask", "features", "raw")


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path
    problem: str | None = None  # set when the job must not run (e.g. it would overwrite its input)
    companions: tuple[Path, ...] = ()  # extra files written beside the target (mask pictures)
    named: bool = False  # the target is the file -o names, which --overwrite replaces whoever wrote it

    @property
    def outputs(self) -> tuple[Path, ...]:
        return (self.target, *self.companions)


def side_path(target: Path, tag: str) -> Path:
    """A companion file beside an output: photo.jpg -> photo_<tag>.png."""
    return target.with_name(f"{target.stem}_{tag}.png")


def earlier_outputs(
    sources: Sequence[Source], output: str | os.PathLike[str] | None, suffix: str
) -> list[Source]:
    """The images found in folders or by patterns that recnet itself wrote, on an earlier run: those that
    bear its mark as it left them (``written_by_recnet``), those named as recnet names what it writes beside
    another image found there (photo_recnet.jpg, photo_mask.png, photo_recnet_mask.png or photo_explain.png
    beside photo.jpg; ``suffix`` is this run's), and those in an output folder inside the input folder. Of
    files named one by one, only those named after another given that bear the mark: what the shell's
    expansion of an unquoted ``*.jpg`` names on a second run. A file named on its own is always corrected."""
    tags = ("", *(f"_{tag}" for tag in COMPANION_TAGS))
    endings = {name + tag for name in (suffix, CORRECT_SUFFIX, MASK_SUFFIX) for tag in tags if name + tag}
    endings.add(EXPLAIN_SUFFIX)
    stems = {(source.path.parent, source.path.stem) for source in sources}
    inner_output = real_path(output) if output is not None and os.path.isdir(output) else None

    def looks_like_earlier_output(source: Source) -> bool:
        path = source.path
        named_after = (path.stem[: -len(ending)] for ending in endings if path.stem.endswith(ending))
        named_after_another = any((path.parent, stem) in stems for stem in named_after)
        if not source.from_folder:
            return named_after_another and written_by_recnet(path) is True
        # The folder (or pattern's fixed start) it was found in, ``relative`` being the rest of its path.
        root = real_path(Path(os.path.abspath(path)).parents[len(source.relative.parts) - 1])
        inside_output = inner_output is not None and inner_output in real_path(path).parents
        if inside_output and root in inner_output.parents:
            return True
        return named_after_another or written_by_recnet(path) is True

    return [source for source in sources if looks_like_earlier_output(source)]


def passed_over_line(paths: Sequence[Path], by: str) -> str:
    """``passed over 2 images that look like recnet's outputs, by <by> (a.jpg, b.jpg)``: the start of a
    note on the images ``earlier_outputs`` found."""
    look = "looks like one of" if len(paths) == 1 else "look like"
    shown = listed([str(path) for path in paths])
    return f"passed over {counted(len(paths), 'image')} that {look} recnet's outputs, by {by} ({shown})"


def names_folder(output: str | os.PathLike[str]) -> bool:
    """Whether -o names a folder whatever its extension: one that exists, or a name typed with a trailing
    slash (``fixed.jpg/``), as ``output`` keeps it when it is the text typed (a Path drops the slash)."""
    return os.path.basename(output) in ("", ".") or os.path.isdir(output)


def names_image_file(output: str | os.PathLike[str] | None) -> bool:
    """Whether -o names an image file: an image extension, and not a folder (see ``names_folder``)."""
    return output is not None and not names_folder(output) and Path(output).suffix.lower() in IMAGE_EXTENSIONS


def single_output_file(sources: Sequence[Source], output: str | os.PathLike[str] | None) -> bool:
    """Whether ``output`` is the output file itself: one file named as the input, -o naming an image."""
    return len(sources) == 1 and not sources[0].from_folder and names_image_file(output)


def misnamed_output_folder(
    sources: Sequence[Source], output: str | os.PathLike[str] | None, unmatched: int = 0
) -> str | None:
    """Why -o cannot be the folder the outputs go in: named like an image file, while several inputs, or a
    folder or pattern, are given (``unmatched`` counts those that gave no image: a photo not there would
    still make -o a folder), so their images are written into a folder (an existing folder named like an
    image is used as it is); or a file (or device) is where the folder is, or one of its parents."""
    if output is None or not sources or (single_output_file(sources, output) and not unmatched):
        return None
    if not names_image_file(output):
        nearest = nearest_existing(Path(output))
        if os.path.exists(nearest) and not os.path.isdir(nearest):
            where = "" if nearest == Path(output) else f": {nearest}"
            return f"-o {output}{where} is {file_kind(nearest)}, not a folder to put the outputs in"
        return None
    if len(sources) > 1:
        given = f"the inputs give {len(sources)} images"
    elif sources[0].from_folder:
        given = "a folder or pattern is given"
    else:
        given = f"{1 + unmatched} inputs are given"
    return (
        f"-o {output} names one image file, but {given}: name a folder, such as -o "
        f"{Path(output).with_suffix('')}"
    )


def output_taken_as_folder(sources: Sequence[Source], output: str | os.PathLike[str] | None) -> str | None:
    """For one photo and an -o that does not exist, with an extension but not an image's (a typo such as
    fixed.jgp) and no trailing slash (which says folder): that it is taken as a folder; else None."""
    if output is None or names_folder(output) or os.path.exists(output) or names_image_file(output):
        return None
    suffix = Path(output).suffix
    if not suffix or len(sources) != 1 or sources[0].from_folder:
        return None
    return f"-o {output}: {suffix} is not an image extension, so it is taken as a folder"


def plan_jobs(
    sources: Sequence[Source],
    output: str | os.PathLike[str] | None,
    *,
    suffix: str,
    folder_suffix: str = "",
    extension: str | None = None,
    companions: Callable[[Path], tuple[Path, ...]] = lambda target: (),
    dead_links: Sequence[Path] = (),
) -> list[Job]:
    """Names each source's output; marks jobs that would overwrite an input or another job's output, or be
    written where an input that is a link to nothing (among ``dead_links``, named on the command line)
    leads, which would then be that input.

    One file and an ``output`` with an image extension (and no trailing slash): that file. Otherwise
    ``output`` is a folder that mirrors the inputs' sub-folders, of outputs named
    ``<stem><folder_suffix><ext>``. Without ``output``, and where it puts an output in its input's own
    folder: ``<stem><suffix><ext>`` beside each input.
    """
    single_target = single_output_file(sources, output)
    inputs = input_identities([*(s.path for s in sources), *dead_links])
    claims = Claims()
    jobs = []
    for source in sources:
        ext = Path(output).suffix if single_target else extension or source.path.suffix
        if single_target:
            target = Path(output)
        else:
            target = source.path.with_name(f"{source.path.stem}{suffix}{ext}")
            if output is not None:
                mirrored = Path(
                    output, source.relative.with_name(f"{source.relative.stem}{folder_suffix}{ext}")
                )
                if file_identity(mirrored.parent) != file_identity(source.path.parent):
                    target = mirrored
        outputs = (target, *companions(target))
        problems = (
            conversion_needed(source.path),
            unread_format(source.path),
            input_kind_problem(source.path),
            unrecognised_input(source.path),
            unwritable_format(ext),
            *(output_path_problem(path) for path in outputs),
            *(target_problem(path, source.path, inputs, claims) for path in outputs),
        )
        problem = next((p for p in problems if p), None)
        jobs.append(Job(source.path, target, problem, outputs[1:], named=single_target))
    return jobs


def unread_format(source: Path) -> str | None:
    """Why a file named as an input is not read, going by its name: an image format recnet does not read
    (.gif, .ico), so that it is not told to choose an output format first."""
    if not names_unsupported_image(source):
        return None
    return f"{source.suffix} files are not read ({READABLE}): convert it first"


def input_kind_problem(source: Path) -> str | None:
    """Why an input is no photo to read, by its kind: a device (/dev/null) or a FIFO; said before what its
    output's name lacks (``--ext`` for a name without an extension)."""
    try:
        return special_input(os.stat(source).st_mode)
    except (OSError, ValueError):  # said when it is read
        return None


def unrecognised_input(source: Path) -> str | None:
    """Why a file named as an input whose name is no image's (notes.txt) is not read: it does not start as
    an image does; said before what its output's name lacks (``--ext``). Files of other names, an empty
    file or one that cannot be opened are said when read."""
    if source.suffix.lower() in IMAGE_EXTENSIONS or not os.path.isfile(source):  # a FIFO would block
        return None
    try:
        with open(source, "rb") as file:
            head = file.read(12)
    except OSError:
        return None
    return None if not head or has_supported_signature(head) else "not an image, or an unsupported format"


def unwritable_format(extension: str) -> str | None:
    """Why recnet cannot write an output with ``extension`` (the output's, or its photo's), or None."""
    if extension.lower() in HEIF_EXTENSIONS and (heif_broken := enable_heif()):
        return f"cannot write HEIF: {heif_broken}, or choose another format with --ext ({OUTPUT_CHOICES})"
    if extension.lower() in IMAGE_EXTENSIONS:
        return None
    what = f"{extension} files" if extension else "a file without an extension"
    return f"cannot write {what}: choose the output format with --ext ({OUTPUT_CHOICES})"


def output_path_problem(path: Path) -> str | None:
    """Why nothing can be written at ``path`` (a folder or a device there, a name too long), or None."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there yet (see ``folder_problem``)
        return name_too_long(path)
    except OSError as exc:
        return f"output {path}: {describe_os_error(exc)}"
    if stat.S_ISDIR(mode):
        return f"output {path} is a folder"
    special = special_file_kind(mode)
    return None if special is None else f"output {path} is {special}, not a file; refusing to replace it"


def name_too_long(path: Path) -> str | None:
    """Why a file cannot be at ``path``, in a folder still to be made, whose file system would say so only
    once it is made: its name, or a folder's to be made, longer than the nearest folder there takes (255
    bytes, mostly)."""
    if not hasattr(os, "pathconf"):  # Windows
        return None
    nearest = nearest_existing(path.parent)
    try:
        longest = os.pathconf(nearest, "PC_NAME_MAX")
    except (OSError, ValueError):  # unknown there
        return None
    names = path.relative_to(nearest).parts
    return f"output {path}: file name too long" if any(len(os.fsencode(n)) > longest for n in names) else None


@dataclass
class Claims:
    """The outputs of the jobs planned so far, and the folders they go in: each with the output (in the
    folder) and its input."""

    files: dict[Path, tuple[Path, Path]] = field(default_factory=dict)
    folders: dict[Path, tuple[Path, Path]] = field(default_factory=dict)


def claim_key(path: Path) -> Path:
    """``path`` as the file system tells names apart: on macOS and Windows, by default, not by case (nor by
    the Unicode form of an accent, on macOS), so ``Sky_recnet.jpg`` and ``sky_recnet.jpg`` are one file.
    Lower case, not casefold: ß and ss are two names there."""
    name = str(path)
    if sys.platform == "darwin":
        name = unicodedata.normalize("NFC", name)
    return Path(name.lower()) if sys.platform in ("darwin", "win32") else path


def target_problem(target: Path, source: Path, inputs: set[FileIdentity], claims: Claims) -> str | None:
    """Why ``target`` cannot be written: it is an input (by any name: a link, a bind mount, another case on
    a card's file system), or another job's output, or the folder of one, or inside one; else None, and it
    is claimed for ``source``."""
    key = claim_key(real_path(target))
    if file_identity(target) in inputs:
        return f"output {target} is an input file; refusing to overwrite it"
    if key in claims.files:
        return (
            f"output {target} would also be written for {claims.files[key][1]}: give one of them another -o, "
            "in a run of its own"
        )
    if key in claims.folders:
        inside, other = claims.folders[key]
        return f"output {target} would also be the folder of {inside}, the output of {other}"
    if outer := next((claims.files[folder] for folder in key.parents if folder in claims.files), None):
        return f"output {target} would go in {outer[0]}, which is the output of {outer[1]}"
    claims.files[key] = (target, source)
    for folder in key.parents:
        claims.folders.setdefault(folder, (target, source))
    return None


def folder_problem(folder: Path, *, create: bool) -> str | None:
    """Why ``folder`` cannot take outputs (a file in the way, a read-only card or share, no permission), or
    None; with ``create``, makes it and its parents first, else checks the nearest one that exists."""
    if os.path.islink(folder) and not os.path.exists(folder):
        return f"cannot create folder {folder}: it is a link to nothing"
    nearest = nearest_existing(folder)
    if not nearest.is_dir():
        return f"cannot create folder {folder}: {nearest} is {file_kind(nearest)}"
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create folder {folder}: {describe_os_error(exc)}"
        nearest = folder
    if not os.access(nearest, os.W_OK | os.X_OK):
        read_only = hasattr(os, "statvfs") and os.statvfs(nearest).f_flag & os.ST_RDONLY
        why = "read-only file system" if read_only else "permission denied"
        return f"cannot {'write in' if nearest == folder else 'create'} folder {folder}: {why}"
    return None


def existing_output_problem(
    target: Path, *, named: bool, overwrite: bool, elsewhere: str = "choose another -o"
) -> str | None:
    """Why a command must not write ``target`` (explain's sheet, eval's saved image), which may exist: it
    is there without ``overwrite``, or it is kept even from that (``kept_from_overwrite``: a file of the
    user's, a link, one made read-only), unless -o names it (``named``); ``elsewhere`` says where else to
    write."""
    if not os.path.lexists(target):
        return None
    if not named and (why := kept_from_overwrite(target)):
        return f"{target} exists, and {why}: move it away, or {elsewhere}"
    return None if overwrite else f"{target} exists (use --overwrite)"


def sheet_target(image: Path, output: str | None) -> Path:
    """Where ``recnet explain`` draws the sheet of ``image``: ``<stem>_explain.png`` beside it, or in the
    folder -o names (made if need be, as it is for correct), or the file -o names."""
    sheet_name = f"{image.stem}{EXPLAIN_SUFFIX}.png"
    if output is None:
        return image.with_name(sheet_name)
    return Path(output) if names_image_file(output) else Path(output, sheet_name)


def sheet_problem(
    target: Path, inputs: Sequence[Path], *, named: bool, overwrite: bool, create: bool
) -> str | None:
    """Why ``recnet explain`` must not write its sheet at ``target``: it is one of the ``inputs``, a name that
    cannot be written, a file there to keep (``existing_output_problem``), or a folder that cannot take it
    (``folder_problem``, which makes it with ``create``)."""
    if file_identity(target) in input_identities(inputs):
        return f"{target} is an input; refusing to overwrite it"
    return (
        output_path_problem(target)
        or existing_output_problem(target, named=named, overwrite=overwrite)
        or folder_problem(target.parent, create=create)
    )


def calibrated_model_problem(path: Path, overwrite: bool) -> str | None:
    """Why ``recnet calibrate`` must not write its model at ``path`` (with its cards beside it), said before
    minutes of calibrating: not a .safetensors name, a name that cannot be written, a card of the user's
    there or one of recnet's that was edited (kept even with ``overwrite``), a training run's own model
    (even with ``overwrite``, and where the run has not made it yet), a file there without ``overwrite``,
    or a folder that cannot take it."""
    from recnet_cli.train.run_folder import CONFIG_FILE, FINAL_MODEL_FILE, is_run_config
    from recnet_cli.weights import foreign_card, is_safetensors, model_files
    from recnet_cli.weights.save import edited_card, is_saved_model

    if not is_safetensors(path):
        return f"-o {path}: the calibrated model is written as .safetensors"
    written = model_files(path)
    if problem := next(filter(None, map(output_path_problem, written)), None):
        return problem
    if card := foreign_card(path):
        return f"-o {path}: {card} exists, and recnet did not write it (no model card): move it away"
    if overwrite and (card := edited_card(path)):
        return (
            f"-o {path}: {card} was changed since recnet wrote it, and --overwrite would lose that: move it "
            "away, or choose another -o"
        )
    if os.path.lexists(path) and not is_saved_model(path):  # a run's checkpoint: --overwrite would end it
        return (
            f"-o {path}: {path} exists, and is no model recnet saved (a training checkpoint, another "
            "network's weights): move it away, or choose another -o"
        )
    if path.name == FINAL_MODEL_FILE and is_run_config(path.parent / CONFIG_FILE):  # finished or not
        run = path.parent if path.parent.name else Path(os.path.abspath(path.parent))  # not "."
        return f"-o {path}: the training run {run}'s own model (there, or to come): choose another -o"
    existing = [file for file in written if os.path.lexists(file)]
    if existing and not overwrite:
        return f"-o {path}: {existing[0]} exists (use --overwrite)"
    if problem := folder_problem(path.parent, create=False):
        return f"-o {path}: {problem}"
    return None
