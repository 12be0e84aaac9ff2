"""Finding (badly exposed input, ground truth) pairs on disk.

Layouts: LCDP (``input/`` + ``gt/``, ``test-input/`` + ``test-gt/``, ``valid-input/`` + ``valid-gt/``),
MSEC (``INPUT_IMAGES/<name>_{N1.5,N1,0,P1,P1.5}.JPG`` against ``GT_IMAGES/<name>.jpg`` or
``expert_c_testing_set/<name>.jpg``, either in the given folder or in its ``training/``, ``testing/``,
``validation/`` subfolder), and any two folders whose files match by stem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from recnet_cli.files import broken_link, real_path
from recnet_cli.imaging import conversion_remedy
from recnet_cli.inputs import (
    Source,
    images_below,
    is_image,
    left_out_note,
    other_files,
    unreadable_folder,
    visible_files,
)
from recnet_cli.outputs import CORRECT_SUFFIX, earlier_outputs, passed_over_line
from recnet_cli.wording import counted, listed, plural

SPLITS = ("train", "test", "valid")
LCDP_FOLDERS = {
    "train": ("input", "gt"),
    "test": ("test-input", "test-gt"),
    "valid": ("valid-input", "valid-gt"),
}
MSEC_SPLIT_FOLDERS = {"train": "training", "test": "testing", "valid": "validation"}
MSEC_INPUTS = "INPUT_IMAGES"
MSEC_TARGET_FOLDERS = ("GT_IMAGES", "expert_c_testing_set")
MSEC_EXPOSURES = ("N1.5", "N1", "0", "P1", "P1.5")
SHOWN_NAMES = 5


class PairingError(ValueError):
    """The folders given do not form a set of image pairs."""


@dataclass(frozen=True)
class ImagePair:
    input: Path
    target: Path


def data_source_problem(
    pairs: Path | None,
    inputs: Path | None,
    targets: Path | None,
    photos: Path | None = None,
    *,
    takes_photos: bool,
) -> str | None:
    """Why the data given is not one source (``photos`` too where ``takes_photos``): a folder of photos, a
    paired dataset, or a folder of inputs and one of their ground truths; None when it is."""
    sources = (photos is not None, pairs is not None, inputs is not None or targets is not None)
    if sum(sources) == 1 and (inputs is None) == (targets is None):
        return None
    if sum(sources) == 1:  # one of the two folders of pairs
        given, missing = ("--inputs", "--targets") if targets is None else ("--targets", "--inputs")
        partner = "their ground truths" if missing == "--targets" else "the photos to correct"
        return f"{given} needs {missing} DIR, the folder of {partner} (paired by file name)"
    both = "both --inputs DIR and --targets DIR"
    return (
        f"give one of --photos DIR, --pairs DIR, or {both}"
        if takes_photos
        else f"give either --pairs DIR or {both}"
    )


def chosen_pairs(
    pairs: Path | None, split: str, inputs: Path | None, targets: Path | None
) -> list[ImagePair]:
    """The image pairs of a paired dataset's split (``pairs``), else of ``inputs`` and ``targets``."""
    if pairs is not None:
        return find_pairs(pairs, split)
    assert inputs is not None and targets is not None
    return match_by_stem(inputs, targets)


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in a folder (and its subfolders when ``recursive``), sorted by path, as ``recnet correct``
    finds them: hidden files and folders (a Mac's ``._IMG_1.jpg``) are left out."""
    if not folder.is_dir():
        raise PairingError(not_a_folder(folder))
    unreadable: list[OSError] = []
    files = visible_files(folder, recursive, unreadable)
    if unreadable:  # a training or test set silently short of a folder's images
        raise PairingError(listed([str(unreadable_folder(error)) for error in unreadable], separator="; "))
    images = [path for path in files if is_image(path)]
    if broken := [f"{path}: {why}" for path in images if (why := broken_link(path))]:
        raise PairingError(listed(broken, separator="; "))
    return images


def not_a_folder(path: Path) -> str:
    """Why a folder of images cannot be read: ``photos: no such folder``, or ``photos: not a folder``."""
    return f"{path}: {'not a folder' if path.exists() else 'no such folder'}"


def pairs_to_learn_from(
    pairs: Path | None, split: str, inputs: Path | None, targets: Path | None
) -> list[ImagePair]:
    """``chosen_pairs`` for training and calibrating, which refuse inputs that are their own targets (one
    folder given as both, or a data set's gt/ a link to its input/): what they would learn is to change
    nothing. (``recnet eval`` scores such pairs: the identity's score.)"""
    found = chosen_pairs(pairs, split, inputs, targets)
    if own_targets(found):
        raise PairingError(
            f"{pair_folders(found)}: the inputs and the targets are one folder: each image would be its own "
            "target, and the model would learn to change nothing"
        )
    return found


def own_targets(found: list[ImagePair]) -> bool:
    """Whether every pair's input is its own target: one folder given as both, or a data set's gt/ a link
    to its input/."""
    return bool(found) and all(pair.input.samefile(pair.target) for pair in found)


def own_targets_note(found: list[ImagePair]) -> str | None:
    """``recnet eval``'s note where every input is its own target: it scores them (how far the model moves
    a photo that needs no correction), which a typing slip would make look like results."""
    if not own_targets(found):
        return None
    return (
        f"{pair_folders(found)}: the inputs and the targets are one folder: each image is its own target, so "
        "the scores say how far the model moves a photo from itself"
    )


def pair_folders(found: list[ImagePair]) -> str:
    """The folder of the first pair's input and that of its target, once where they are one."""
    return " and ".join(map(str, sorted({found[0].input.parent, found[0].target.parent})))


def find_pairs(root: Path, split: str = "train") -> list[ImagePair]:
    """Pairs of a dataset folder in the LCDP or MSEC layout; ``split`` is train, test or valid."""
    if split not in SPLITS:
        raise PairingError(f"unknown split {split!r} (choose one of {', '.join(SPLITS)})")
    if not root.is_dir():
        raise PairingError(not_a_folder(root))
    if (root / "input").is_dir() or (root / "test-input").is_dir():
        folders = [root / name for name in LCDP_FOLDERS[split]]
        if missing := next((folder for folder in folders if not folder.is_dir()), None):
            held = other_splits(root, lambda each: all((root / name).is_dir() for name in LCDP_FOLDERS[each]))
            raise PairingError(f"{not_a_folder(missing)} (the LCDP layout's {split} split{held})")
        return match_by_stem(*folders)
    msec_root = root if (root / MSEC_INPUTS).is_dir() else root / MSEC_SPLIT_FOLDERS[split]
    if (msec_root / MSEC_INPUTS).is_dir():
        return msec_pairs(msec_root)
    if any((root / folder / MSEC_INPUTS).is_dir() for folder in MSEC_SPLIT_FOLDERS.values()):
        missing = msec_root / MSEC_INPUTS if msec_root.is_dir() else msec_root
        held = other_splits(root, lambda each: (root / MSEC_SPLIT_FOLDERS[each] / MSEC_INPUTS).is_dir())
        raise PairingError(f"{not_a_folder(missing)} (the MSEC layout's {split} split{held})")
    raise PairingError(
        f"{root}: no known layout (expected input/ + gt/ as in LCDP, or INPUT_IMAGES/ + GT_IMAGES/ as in "
        "MSEC); give two folders to match by file name instead"
    )


def other_splits(root: Path, holds: Callable[[str], bool]) -> str:
    """What a data set ``root`` that lacks the split asked for holds instead (the splits ``holds`` says it
    does), to go in the error's brackets: ``; pairs holds the train split: give --split train`` (as
    examples/make_synthetic_pairs.py writes one)."""
    present = [split for split in SPLITS if holds(split)]
    if not present:
        return ""
    held = f"{' and '.join(present)} {plural('split', len(present))}"
    return f"; {root} holds the {held}: give --split {present[0]}"


def data_set_folders(root: Path) -> list[Path]:
    """The folders of images that a data set in the LCDP or MSEC layout holds, of every split: an image
    saved in one would join the pairing of its split (or break it)."""
    lcdp = [root / name for names in LCDP_FOLDERS.values() for name in names]
    msec_roots = (root, *(root / folder for folder in MSEC_SPLIT_FOLDERS.values()))
    msec = [base / name for base in msec_roots for name in (MSEC_INPUTS, *MSEC_TARGET_FOLDERS)]
    return [folder for folder in lcdp + msec if folder.is_dir()]


def unsplit_note(root: Path, split: str) -> str | None:
    """What to know of a folder in the MSEC layout without its split folders (INPUT_IMAGES/ at the top):
    every ``split`` gives all its pairs, so a model trained on it is scored on what it trained on; None
    for other folders."""
    if not (root / MSEC_INPUTS).is_dir():
        return None
    folders = "/, ".join(MSEC_SPLIT_FOLDERS.values())
    return f"{root} has no split folders ({folders}/): --split {split} is all its pairs"


def unread_below_note(inputs: Path | None, targets: Path | None) -> str | None:
    """What to know of two folders of pairs whose sub-folders hold images too: those are not read (pairs are
    matched in the folders themselves); None where they hold none."""
    one_folder = inputs and targets and real_path(inputs) == real_path(targets)
    folders = ((inputs, None),) if one_folder else ((inputs, targets), (targets, inputs))
    below = [  # where one folder lies in the other, its images are read, not below the other
        f"{folder}'s {counted(count, 'image')}"
        for folder, other in folders
        if folder and folder.is_dir() and (count := images_below(folder, leaving_out=other))
    ]
    if not below:
        return None
    return f"not read: {' and '.join(below)} in sub-folders (pairs are matched in the two folders themselves)"


def data_notes(photos: Path | None, inputs: Path | None, targets: Path | None) -> list[str]:
    """What to know of the data's folders before a run: images in the sub-folders of two folders of pairs,
    which are not read (``unread_below_note``); photo files recnet cannot read (camera RAW, HEIF without
    pillow-heif), left out as ``recnet correct`` leaves them out (``left_out_note``)."""
    read = ((photos, True), (inputs, False), (targets, False))  # --photos is searched recursively
    files = {
        folder: visible_files(folder, recursive, [])
        for folder, recursive in read
        if folder and folder.is_dir()
    }
    unread = [path for found in files.values() for path in found if conversion_remedy(path)]
    passed_over = photo_sources(photos, files[photos])[1] if photos in files else []
    notes = [
        unread_below_note(inputs, targets),
        left_out_note(unread) if unread else None,
        passed_over_note(passed_over) if passed_over else None,
    ]
    return [note for note in notes if note]


def photo_sources(folder: Path, files: Iterable[Path]) -> tuple[list[Source], list[Source]]:
    """The images among ``files`` of a folder of photos (--photos), and apart those recnet wrote there, on
    a run of ``recnet correct`` (``earlier_outputs``), passed over as a second run passes them over: taken
    as well-exposed photos, they would teach a model its own corrections."""
    found = [Source(path, path.relative_to(folder), from_folder=True) for path in files if is_image(path)]
    earlier = set(earlier_outputs(found, None, CORRECT_SUFFIX))
    return [source for source in found if source not in earlier], [
        source for source in found if source in earlier
    ]


def passed_over_note(sources: list[Source]) -> str:
    """Says which images of a folder of photos were passed over as recnet's outputs (``photo_sources``)."""
    line = passed_over_line([source.path for source in sources], "mark or name")
    return f"{line}: not the well-exposed photos needed"


def match_by_stem(inputs: Path, targets: Path) -> list[ImagePair]:
    """Pairs the files of two folders with the same name up to the extension."""
    input_files = stem_index(list_images(inputs), inputs)
    target_files = stem_index(list_images(targets), targets)
    check_partners(
        ({input_files[s].name for s in input_files.keys() - target_files.keys()}, inputs, targets),
        ({target_files[s].name for s in target_files.keys() - input_files.keys()}, targets, inputs),
    )
    return [ImagePair(input_files[stem], target_files[stem]) for stem in sorted(input_files)]


def msec_pairs(folder: Path) -> list[ImagePair]:
    """MSEC pairs: each target photo against its five exposure renderings."""
    target_folder = next((folder / name for name in MSEC_TARGET_FOLDERS if (folder / name).is_dir()), None)
    if target_folder is None:
        raise PairingError(f"{folder}: no {' or '.join(MSEC_TARGET_FOLDERS)} folder beside {MSEC_INPUTS}/")
    targets = stem_index(list_images(target_folder), target_folder)
    inputs = list_images(folder / MSEC_INPUTS)
    scenes_with_input = {msec_scene(p) for p in inputs}
    check_partners(
        ({p.name for p in inputs if msec_scene(p) not in targets}, folder / MSEC_INPUTS, target_folder),
        ({targets[s].name for s in targets.keys() - scenes_with_input}, target_folder, folder / MSEC_INPUTS),
    )
    return [ImagePair(p, targets[msec_scene(p)]) for p in inputs]


def msec_scene(path: Path) -> str:
    """The scene name of an MSEC input: its stem without the ``_<exposure>`` suffix."""
    scene, _, exposure = path.stem.rpartition("_")
    return scene if scene and exposure in MSEC_EXPOSURES else path.stem


def stem_index(files: list[Path], folder: Path) -> dict[str, Path]:
    """Files by stem; two files with one stem are an error."""
    index: dict[str, Path] = {}
    for path in files:
        if path.stem in index:
            raise PairingError(
                f"{folder}: both {index[path.stem].name} and {path.name} have the name {path.stem}"
            )
        index[path.stem] = path
    if not index:
        raise PairingError(f"{folder}: no images{no_images_hint(folder)}")
    return index


def no_images_hint(folder: Path) -> str:
    """Why a folder of pairs gave no image: its images are in sub-folders, which pairs are not read from, or
    its files are of other types."""
    if below := images_below(folder):
        return f" (its sub-folders have {below}; pairs are read from the folder itself, not below it)"
    return other_files(visible_files(folder))


def check_partners(*sides: tuple[Iterable[str], Path, Path]) -> None:
    """Raises listing, for each side (file names in a folder, the folder, its partner folder), the first few
    names that have no partner: both folders' in one error, so that one run says all there is to fix."""
    problems = []
    for unmatched, folder, partner_folder in sides:
        if names := sorted(unmatched):
            without = f"{counted(len(names), 'image')} without a partner in {partner_folder}"
            problems.append(f"{folder}: {without}: {listed(names, SHOWN_NAMES)}")
    if problems:
        raise PairingError("; ".join(problems))
