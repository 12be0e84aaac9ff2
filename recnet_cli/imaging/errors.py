"""The errors of reading and writing photo files, and what running out of host memory on the way says."""

from __future__ import annotations

import errno
import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2

from recnet_cli.files import first_line


class PhotoFileError(Exception):
    """A photo that cannot be read or written; str() is one line naming the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = Path(path)
        self.reason = reason


class ImageReadError(PhotoFileError):
    """An input that is missing, unreadable, corrupt, too large or not a supported image."""


class ImageWriteError(PhotoFileError):
    """An output that cannot be written (unsupported format, permissions, full disk...); ``errno`` is the
    system's error number when the system refused."""

    def __init__(self, path: str | os.PathLike[str], reason: str, errno: int | None = None) -> None:
        super().__init__(path, reason)
        self.errno = errno


class OutputExistsError(ImageWriteError):
    """A file at an output's path, found as the output was about to take its name (without ``overwrite``:
    one made since the run checked, by another program or the user)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, "exists (use --overwrite)", errno.EEXIST)


class PhotoFault(PhotoFileError):
    """A photo that failed to be read or written by a fault of recnet's own: an error nothing there foresaw (a
    bug, met on some file's metadata, say); the reason names it, and where in recnet's code it came from."""


@contextmanager
def faults_fail_alone(path: Path) -> Iterator[None]:
    """Reading or writing the photo ``path`` (the files' share of a batch's work, not the device's), where an
    error nothing foresaw fails that photo alone (``PhotoFault``), in one line to report, and the batch goes
    on. What is foreseen (a PhotoFileError), and what memory and the system say, are raised as they are."""
    try:
        yield
    except (PhotoFileError, MemoryError, OSError):
        raise
    except Exception as error:
        raise PhotoFault(path, fault_reason(error)) from error


PACKAGE_FOLDER = Path(__file__).resolve().parent.parent


def fault_reason(error: Exception) -> str:
    """What went wrong, and where in recnet's code (the innermost of its lines it passed), to report."""
    kind = type(error)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    what = f"{name}: {first_line(error)}"
    frames = traceback.StackSummary.extract(traceback.walk_tb(error.__traceback__), lookup_lines=False)
    ours = [frame for frame in frames if Path(frame.filename).resolve().is_relative_to(PACKAGE_FOLDER)]
    if frames:  # an error never raised has none
        place = (ours or frames)[-1]
        file = Path(place.filename).resolve()
        shown = file.relative_to(PACKAGE_FOLDER.parent) if ours else Path(file.name)
        what += f", at {shown.as_posix()}:{place.lineno}"
    return f"failed by a fault in recnet ({what}); please report it, with this file if you can"


class Unencodable(ValueError):
    """A picture its format's encoder refuses, or larger encoded than the format's files can be."""


# What every "not enough memory" error advises, where no setting would help.
FREE_MEMORY_ADVICE = "free some memory (close other programs) and try again"
NO_MEMORY = "not enough memory to {} this {:.1f} MP image: " + FREE_MEMORY_ADVICE


def out_of_host_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation in host memory that failed: Python's and NumPy's MemoryError, or
    OpenCV's (PyTorch's: ``devices.is_host_out_of_memory``)."""
    return isinstance(error, MemoryError) or (
        isinstance(error, cv2.error) and error.code == cv2.Error.StsNoMem
    )
