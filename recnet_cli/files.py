"""What the file system says of a path, whatever the file: what stands there (a FIFO, a device, a link to
nothing), what keeps an input from being read before it is opened, and OSErrors as one-line reasons."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists, if only as a link to nothing: where a folder for
    ``path`` would be made (a file or such a link there means none can be)."""
    return next(candidate for candidate in (path, *path.parents) if os.path.lexists(candidate))


UNEXPANDED_HOME = "~ is a home folder only where the shell expands it (unquoted)"


def unexpanded_home(path: str) -> str | None:
    """The path a shell would have made of ``path``, where it begins with a home folder left as typed (``~``,
    ``~/...``, ``~user/...``: quoted, or after ``--option=``) and no such file or folder is here; else None
    (``~fixed.jpg``, where no user fixed.jpg exists, is a name)."""
    home = os.path.expanduser(path)
    if home == path or os.path.lexists(path.split("/", 1)[0]):
        return None
    return home


def input_file_problem(path: str | os.PathLike[str]) -> str | None:
    """What the file system says is wrong with an input before it is read (a FIFO or a device, an empty
    file, no permission to read it), or None; an input that cannot be looked at is said when opened."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return broken_link(path)
    if special := special_input(info.st_mode):
        return special
    if stat.S_ISREG(info.st_mode) and info.st_size == 0:
        return "empty file"
    return None if os.access(path, os.R_OK) else "permission denied"


def folder_name(folder: str | os.PathLike[str]) -> str:
    """A folder's own name as a model card gives it, ``photos/``: for ``.`` or ``photos/..``, the name of the
    folder they are (whose name a card would otherwise give as ``/``)."""
    return f"{Path(os.path.abspath(folder)).name}/"


def real_path(path: str | os.PathLike[str]) -> Path:
    """``path`` absolute, with its links followed, as ``Path.resolve`` gives it, but where links go round in
    a loop as far as they lead (``Path.resolve`` raises RuntimeError there before Python 3.13)."""
    return Path(os.path.realpath(path))


def broken_link(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` names no file where it is a symbolic link to nothing (its target was moved or deleted,
    or links lead back to it), else None."""
    try:
        target = os.fsdecode(os.readlink(path))
    except (OSError, ValueError):  # not a link (or no name at all)
        return None
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return f"a link to {target}, which leads round a loop of links"
        return f"a link to {target}, which does not exist"
    return None


def special_input(mode: int) -> str | None:
    """Why an input of this ``st_mode`` is no photo file, by its kind (a device, a FIFO), or None."""
    special = special_file_kind(mode)
    return None if special is None else f"{special}, not a photo file"


def special_file_kind(mode: int) -> str | None:
    """ "a FIFO", "a device" or "a socket" for a file of such a ``st_mode`` (a photo read from one would
    never end, or be endless noise; one written over would be lost); None for a file or a folder."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else None


def file_kind(path: str | os.PathLike[str]) -> str:
    """What stands at ``path`` where a folder is wanted but is not one: "a file", "a device" (/dev/null), "a
    FIFO", "a socket", or a link to nothing (and where it leads)."""
    if not os.path.exists(path):
        return broken_link(path) or "a link to nothing"
    return special_file_kind(os.stat(path).st_mode) or "a file"


def first_line(error: Exception) -> str:
    """An error's message, first line only (its type's name when it has none)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


@contextmanager
def naming_the_file(path: str | os.PathLike[str]) -> Iterator[None]:
    """An OSError inside that names no file (a write to a full disk) names ``path``."""
    try:
        yield
    except OSError as error:
        if error.filename is not None:
            raise
        raise OSError(error.errno, error.strerror or first_line(error), os.fspath(path)) from error


# The C library's words for folders, as the rest of recnet's messages say them
FOLDER_WORDING = {
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "not a folder",
    errno.EISDIR: "is a folder",
}


def describe_os_error(error: OSError) -> str:
    """A lower-case one-line reason, e.g. "permission denied"."""
    if error.errno in FOLDER_WORDING:
        return FOLDER_WORDING[error.errno]
    reason = error.strerror or str(error) or type(error).__name__
    return reason[0].lower() + reason[1:]


def error_line(error: Exception) -> str:
    """An error's first line; an OSError that names a file as "<file>: <reason>" (not "[Errno 36] ...")."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{os.fsdecode(error.filename)}: {describe_os_error(error)}"
    return first_line(error)
