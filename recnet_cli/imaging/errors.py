"""The errors of reading and writing photo files, and what running out of host memory on the way says."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import cv2


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
