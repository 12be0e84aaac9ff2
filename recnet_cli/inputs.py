"""Finding a batch's inputs: image files named one by one, in folders (optionally recursive) or by glob
patterns, each photo once, and a deterministic share of them for ``--shard``."""

from __future__ import annotations

import fnmatch
import functools
import glob
import os
import stat
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from recnet_cli.files import UNEXPANDED_HOME, broken_link, describe_os_error, real_path, unexpanded_home
from recnet_cli.imaging import IMAGE_EXTENSIONS, READABLE, conversion_remedy
from recnet_cli.wording import counted, listed, typed_number

T = TypeVar("T")

# What ``-`` (standard input or output, to other tools) is told; a file named ``-`` is read as any other.
NO_STANDARD_STREAMS = "recnet reads and writes photo files, not standard input or output"


@dataclass(frozen=True)
class Source:
    """An input image and its path relative to the folder it was found in (for mirroring); ``aliases``: other
    names it was given under (links to it, or it a link), corrected once under ``path``."""

    path: Path
    relative: Path
    from_folder: bool = False
    aliases: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Unmatched:
    """An input that gave no image: a missing path, an empty folder, a pattern that matched none."""

    input: str
    reason: str

    def __str__(self) -> str:
        return f"{self.input or repr(self.input)}: {self.reason}"


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not is_hidden(path.name)


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def hidden_folder(root: str, name: str) -> bool:
    """A folder a walk leaves out: a dot folder, or one Windows hides (``hidden_by_windows``)."""
    return is_hidden(name) or hidden_by_windows(os.path.join(root, name))


def hidden_by_windows(folder: str) -> bool:
    """Whether Windows marks ``folder`` hidden or a system one, as Explorer hides it: ``$RECYCLE.BIN`` and
    ``System Volume Information`` on every drive and card, whose reading is refused, and the links to
    other folders that ``Documents`` holds (``My Music``). False elsewhere."""
    if sys.platform != "win32":
        return False
    try:
        attributes = getattr(os.stat(folder, follow_symlinks=False), "st_file_attributes", 0)
    except OSError:
        return False  # walked, and then said to be unreadable
    return bool(attributes & (stat.FILE_ATTRIBUTE_HIDDEN | stat.FILE_ATTRIBUTE_SYSTEM))


def visible_files(
    folder: Path,
    recursive: bool = False,
    unreadable: list[OSError] | None = None,
    every_name: bool = False,
    hidden: bool = False,
) -> list[Path]:
    """The files in ``folder`` (and links to nothing, FIFOs, sockets and devices, which fail, named, as they
    do named alone), and with ``recursive`` in its sub-folders, linked ones too, sorted, leaving
    out (unless ``hidden``) hidden files and everything in hidden folders (such as a report's
    ``.recnet-report/``). Each folder is walked once, under its own name where the walk finds it by that
    name too and by a link (the links are walked after the folders), or with ``every_name`` under each name
    a link gives it, as a pattern's folders are matched by name (a link back to a folder above is never
    followed); folders that cannot be read give nothing, and their errors go in ``unreadable``."""
    files: list[Path] = []
    walked: set[FileIdentity] = set()
    # the folders the one named is in (a link to one of them would walk them all), and for each folder
    # walked, the folders it is in
    outside = frozenset(file_identity(parent) for parent in Path(folder).resolve().parents)
    above: dict[str, frozenset[FileIdentity]] = {}
    tops: list[str | os.PathLike[str]] = [folder]
    while tops:  # the folders below these, then the links to folders found there
        links: list[str] = []
        for top in tops:
            for root, folders, names in os.walk(
                top, onerror=None if unreadable is None else unreadable.append, followlinks=False
            ):
                identity = file_identity(Path(root))
                # a link back to a folder above, or (unless every_name) a second name for one
                if identity in outside or identity in (
                    above.get(root, frozenset()) if every_name else walked
                ):
                    folders.clear()
                    continue
                walked.add(identity)
                # In name order, so that of two links to one folder the same is walked every time (--shard)
                folders[:] = (
                    sorted(n for n in folders if hidden or not hidden_folder(root, n)) if recursive else []
                )
                chain = above.get(root, frozenset()) | {identity}
                above.update((os.path.join(root, name), chain) for name in folders)
                links.extend(
                    os.path.join(root, name) for name in folders if os.path.islink(os.path.join(root, name))
                )
                files.extend(Path(root, name) for name in names if hidden or not is_hidden(name))
        tops = sorted(links)
    return sorted(files)


def find_sources(
    inputs: Sequence[str], recursive: bool = False, left_out: list[Path] | None = None
) -> tuple[list[Source], list[Unmatched]]:
    """Expands files, folders and globs into images; also returns the inputs that gave none, and why. The
    photo files of folders and patterns that recnet cannot read (camera RAW; HEIF without pillow-heif) go in
    ``left_out``."""
    sources: list[Source] = []
    missing: list[Unmatched] = []
    unread_photos = [] if left_out is None else left_out
    for text in inputs:
        path = Path(text)
        unreadable: list[OSError] = []  # folders below that could not be listed, said as failures
        reason = ""
        if not text:  # Path("") is the current folder
            found, reason = [], "an empty name is no file or folder"
        elif os.path.isdir(path):  # os.path's tests say False for a name too long; Path's raise
            files = visible_files(path, recursive, unreadable)
            found = [Source(p, p.relative_to(path), from_folder=True) for p in files if is_image(p)]
            unread_photos.extend(filter(conversion_remedy, files))
            if not (found or unreadable):  # only then: the hint walks the sub-folders, a whole library
                reason = "no images in this folder" + folder_hint(path, files, recursive)
        elif os.path.exists(path):
            found = [Source(path, Path(path.name))]
        elif glob.has_magic(text) and not unexpanded_home(text):  # '~/shots/*.jpg' is said below
            files = pattern_files(text, recursive, unreadable)
            base = pattern_base(path)
            found = [Source(p, pattern_relative(p, base), from_folder=True) for p in files if is_image(p)]
            unread_photos.extend(filter(conversion_remedy, files))
            if not (found or unreadable):
                reason = "no images match this pattern" + pattern_hint(text, files, recursive)
        else:
            found, reason = [], missing_reason(text)
        if reason:
            missing.append(Unmatched(text, reason))
        missing.extend(map(unreadable_folder, unreadable))
        sources.extend(found)
    unread_photos[:] = dict.fromkeys(unread_photos)  # once each, where inputs overlap
    return unique_sources(sources), missing


def missing_reason(text: str) -> str:
    """Why an input names nothing here: a home folder the shell left as typed (``'~/shots/*.jpg'``, quoted for
    recnet to expand the pattern), standard input, a link to nothing, or no such file."""
    if home := unexpanded_home(text):
        return f"{UNEXPANDED_HOME}; write {home}"
    if text == "-":
        return f"{NO_STANDARD_STREAMS}; save the photo to a file first"
    return broken_link(text) or "no such file or folder"


def unreadable_folder(error: OSError) -> Unmatched:
    """A folder that could not be listed, and why: its photos, if any, are not found."""
    return Unmatched(os.fsdecode(error.filename), f"cannot read this folder: {describe_os_error(error)}")


def pattern_files(pattern: str, recursive: bool, unreadable: list[OSError]) -> list[Path]:
    """The files a glob pattern matches, and those in the folders it matches (as a folder named alone
    gives them: with ``recursive``, its sub-folders' too), sorted. A ``**`` pattern (any depth of
    sub-folders, with or without -r) is matched against a walk that never follows a link back up, where
    glob's own ``**`` follows such links again and again. Other patterns, and a ``**`` one that climbs with
    ``..``, are glob's. Folders that cannot be listed go in ``unreadable`` (but for that last kind)."""
    parts = Path(pattern).parts
    base = pattern_base(Path(pattern))
    below = parts[len(base.parts) :]
    if "**" not in below:
        unreadable.extend(unlisted_folders(as_glob(pattern, base)))
    if "**" not in below or ".." in below:
        files: set[Path] = set()
        for path in map(Path, glob.glob(as_glob(pattern, base), recursive=True)):
            if os.path.isdir(path):
                files.update(visible_files(path, recursive, unreadable))
            else:  # a file, or a link to nothing, a FIFO, a socket or a device: these fail, named
                files.add(path)
        return sorted(files)
    if not os.path.isdir(base):
        return []
    named_hidden = any(map(is_hidden, below))  # only then walked, as glob walks them
    walked = visible_files(base, recursive=True, unreadable=unreadable, every_name=True, hidden=named_hidden)
    return [path for path in walked if matched_or_inside(below, path.relative_to(base).parts, recursive)]


def matched_or_inside(pattern: Sequence[str], parts: Sequence[str], recursive: bool) -> bool:
    """Whether a file's parts match a pattern's, or lie in a folder that does: its own folder, or with
    ``recursive`` any folder above it, with no hidden folder between (as a folder named alone is walked)."""
    if parts_match(pattern, parts):
        return True
    folders = range(len(parts)) if recursive else [len(parts) - 1]
    return any(
        parts_match(pattern, parts[:depth]) and not any(map(is_hidden, parts[depth:])) for depth in folders
    )


def unlisted_folders(pattern: str) -> list[OSError]:
    """Why glob could not list the folders a pattern without ``**`` matches names in: glob passes over them in
    silence, and the photos there with them."""
    head, tail = os.path.split(pattern)
    errors = unlisted_folders(head) if glob.has_magic(head) else []
    if glob.has_magic(tail):
        for folder in sorted(glob.glob(head)) if glob.has_magic(head) else [head]:
            try:
                with os.scandir(folder or os.curdir):
                    pass
            except (FileNotFoundError, NotADirectoryError):  # no folder there: nothing to match
                pass
            except OSError as error:
                errors.append(error)
    return errors


def parts_match(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """Whether a path's parts match a glob pattern's as glob matches them: ``**`` stands for any number of
    folders, a hidden name matches only a part that starts with a dot too, and case is ignored where the
    system ignores it (on Windows)."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        visible = next((index for index, part in enumerate(parts) if is_hidden(part)), len(parts))
        return any(parts_match(pattern[1:], parts[start:]) for start in range(visible + 1))
    if not parts or is_hidden(parts[0]) != is_hidden(pattern[0]):
        return False
    return fnmatch.fnmatch(parts[0], pattern[0]) and parts_match(pattern[1:], parts[1:])


def pattern_base(pattern: Path) -> Path:
    """The folder a glob pattern starts from: its parts before the first with a wildcard, but for one that
    names an existing file or folder as typed: a quoted ``'Wedding [2023]/*.jpg'`` starts from the folder
    ``Wedding [2023]``, whose name glob reads as a wildcard (``[2023]``: one of 2, 0, 3)."""
    fixed = Path()
    for part in pattern.parts:
        if glob.has_magic(part) and not os.path.lexists(fixed / part):
            break
        fixed /= part
    return fixed


def as_glob(pattern: str, base: Path) -> str:
    """``pattern`` as glob is to read it: its start, the folder it starts from (``base``, its
    ``pattern_base``), taken literally."""
    if not glob.has_magic(str(base)):
        return pattern
    return os.path.join(glob.escape(str(base)), *Path(pattern).parts[len(base.parts) :])


def pattern_relative(path: Path, base: Path) -> Path:
    """A pattern's match below the pattern's fixed start, which an output folder mirrors (its name alone
    where the pattern climbs with ``..``)."""
    relative = path.relative_to(base)
    return Path(path.name) if ".." in relative.parts else relative


def folder_hint(folder: Path, files: Sequence[Path], recursive: bool) -> str:
    """Why a folder gave no image: its images are in sub-folders, or hidden (``.IMG_1.jpg``, left out as
    hidden folders are), or its files are of other types."""
    if not recursive and images_below(folder):
        return " (its sub-folders have some: add --recursive)"
    # hidden files, not those in hidden folders (a report's previews); not ._IMG_1.jpg, macOS's record of
    # IMG_1.jpg's attributes on a card, which is no image
    hidden = [
        path
        for path in visible_files(folder, recursive, hidden=True)
        if is_hidden(path.name) and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith("._")
    ]
    if hidden:
        such = f", such as {hidden[0].name}" if len(hidden) > 1 else f": {hidden[0].name}"
        return f" ({counted(len(hidden), 'hidden image')} left out{such}; name one to include it)"
    return other_files(files)


def pattern_hint(pattern: str, files: Sequence[Path], recursive: bool) -> str:
    """Why a pattern gave no image: its folders' images are in their sub-folders, or its files are of other
    types."""
    if not recursive and any(map(is_image, pattern_files(pattern, True, []))):
        return " (the folders it matches have some in sub-folders: add --recursive)"
    return other_case_hint(pattern, recursive) or other_files(files)


def has_case(character: str) -> bool:
    """Whether ``character`` is a letter with a lower and an upper case, each one character."""
    lower, upper = character.lower(), character.upper()
    return lower != upper and len(lower) == len(upper) == 1


def other_case_hint(pattern: str, recursive: bool) -> str:
    """`` (2 images match it in another case: IMG_1.JPG, IMG_2.JPG; patterns are case-sensitive)`` where
    its file name's letters in any case match images: ``'card/*.jpg'`` for a camera's ``IMG_1.JPG``. A
    name with a ``[...]`` set is left as it is."""
    head, name = os.path.split(pattern)
    if "[" in name or name.lower() == name.upper():
        return ""
    cased = "".join(f"[{c.lower()}{c.upper()}]" if has_case(c) else c for c in name)
    found = pattern_files(os.path.join(head, cased), recursive, [])
    images = [path.name for path in found if is_image(path)]
    if not images:
        return ""
    match = "matches" if len(images) == 1 else "match"
    matched = f"{counted(len(images), 'image')} {match} it in another case: {listed(images)}"
    return f" ({matched}; patterns are case-sensitive)"


def images_below(folder: Path, leaving_out: Path | None = None) -> int:
    """The images in ``folder``'s sub-folders, at any depth: not those in the folder itself, nor those in
    ``leaving_out`` (a folder read on its own, by any name: a link to it too) where it lies below."""
    outside = None if leaving_out is None else real_path(leaving_out)
    if outside is not None and real_path(folder).is_relative_to(outside):
        outside = None  # the folder lies in the other, or is it: nothing of the other lies below it

    @functools.cache  # once per folder, whose links it follows
    def read_elsewhere(parent: Path) -> bool:
        return outside is not None and real_path(parent).is_relative_to(outside)

    return sum(
        is_image(path) and path.parent != folder and not read_elsewhere(path.parent)
        for path in visible_files(folder, recursive=True)
    )


def other_files(files: Sequence[Path]) -> str:
    """`` (3 other files: .nef, .txt; recnet reads ...)`` when ``files`` are there but none is an image."""
    counts = Counter(p.suffix.lower() or "no extension" for p in files if not is_hidden(p.name))
    if not counts:
        return ""
    total = sum(counts.values())
    kinds = listed([kind for kind, _ in counts.most_common()])
    return f" ({counted(total, 'other file')}: {kinds}; {READABLE})"


def left_out_note(paths: Sequence[Path]) -> str:
    """What the photo files left out of folders and patterns are, and what lets recnet read them: ``left out
    2 photo files (.nef, .dng) that recnet cannot read, each a camera RAW file: convert it ...``."""
    by_remedy: dict[str, list[str]] = {}
    for path in paths:
        by_remedy.setdefault(conversion_remedy(path) or "", []).append(path.suffix.lower())
    kinds = []  # (how many, their extensions, what they are and what to do)
    for remedy, suffixes in by_remedy.items():
        each = "each " if len(suffixes) > 1 else ""
        kinds.append((len(suffixes), f"({listed(list(dict.fromkeys(suffixes)))})", each + remedy))
    files = counted(len(paths), "photo file")
    if len(kinds) == 1:
        ((_, extensions, remedy),) = kinds
        return f"left out {files} {extensions} that recnet cannot read, {remedy}"
    each_kind = "; ".join(f"{count} {extensions}, {remedy}" for count, extensions, remedy in kinds)
    return f"left out {files} that recnet cannot read: {each_kind}"


# What makes two names one file (see ``file_identity``)
FileIdentity = tuple[int, int] | Path


def file_identity(path: Path) -> FileIdentity:
    """What makes two names one file: its device and inode (a symbolic or a hard link shares them); for a
    link to nothing (or in a loop) the link's own, so that links to one missing file stay apart while one
    link seen through a linked folder does not; for a name through a folder not made yet (``new/../a.jpg``,
    which is ``a.jpg`` once ``new`` is made), the file its real name is; else, where nothing is there, its
    real name (the links of the folders above it followed)."""
    for status_of in (os.stat, os.lstat):
        try:
            status = status_of(path)
        except OSError:
            continue
        return status.st_dev, status.st_ino
    real = real_path(path)  # only now: resolving every folder of the name costs 12 times a stat
    try:
        status = os.stat(real)
    except OSError:
        return real
    return status.st_dev, status.st_ino


def input_identities(paths: Iterable[Path]) -> set[FileIdentity]:
    """The identities of the input files ``paths``, and the name each of them that is a link to nothing
    leads to: a file written there would become that input (the link would lead to it)."""
    paths = list(paths)
    return {file_identity(path) for path in paths} | {real_path(path) for path in paths if broken_link(path)}


def unique_sources(sources: Iterable[Source]) -> list[Source]:
    """Each file once, under the first name it was given, or where folders gave both, under the file's own
    name rather than one through a symbolic link (to it, or to a folder on the way: the one through fewer);
    the other names for it (links) are kept among its ``aliases``."""
    first: dict[FileIdentity, int] = {}
    unique: list[Source] = []
    for source in sources:
        key = file_identity(source.path)
        if key not in first:
            first[key] = len(unique)
            unique.append(source)
            continue
        kept = unique[first[key]]
        names = {os.path.abspath(path) for path in (kept.path, *kept.aliases)}
        if os.path.abspath(source.path) in names:
            continue
        both_found = kept.from_folder and source.from_folder  # not named one by one, in the user's order
        if both_found and links_on_the_way(source.path) < links_on_the_way(kept.path):
            unique[first[key]] = replace(source, aliases=(kept.path, *kept.aliases))
        else:
            unique[first[key]] = replace(kept, aliases=(*kept.aliases, source.path))
    return unique


def links_on_the_way(path: Path) -> int:
    """How many of the names in ``path`` (its folders' and its own) are symbolic links."""
    return sum(os.path.islink(name) for name in (path, *path.parents))


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' (1 <= K <= N) as (K, N); raises ValueError with a one-line reason."""
    part, total = (typed_number(number) for number in text.partition("/")[::2])
    if part is None or total is None or not 1 <= part <= total:
        raise ValueError(f"--shard {text}: use K/N with 1 <= K <= N, e.g. 2/8")
    return part, total


def take_shard(items: Sequence[T], shard: tuple[int, int], key: Callable[[T], str]) -> list[T]:
    """Part K of N: every N-th item from the K-th, counted in the order of ``key``, so that N machines given
    the same items in any order split them with no overlap and none left out (items of one key keep their
    own order). In the items' own order."""
    part, total = shard
    taken = {id(item) for item in sorted(items, key=key)[part - 1 :: total]}
    return [item for item in items if id(item) in taken]
