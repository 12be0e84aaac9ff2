"""Files that appear whole under their name, or not at all.

On Linux a file is written without a name (``O_TMPFILE``) and named once it is complete, so a process killed
while writing (the out-of-memory killer, a scheduler's time limit) leaves nothing behind. Elsewhere, and on
file systems without unnamed files, it is written under a hidden temporary name beside the target, which is
removed on any error (but stays if the process is killed).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from recnet_cli.files import naming_the_file

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


@contextmanager
def atomic_file(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[BinaryIO]:
    """A new file open for writing that takes the name ``path`` when the block ends without an exception.

    With ``overwrite`` it replaces a file of that name; without, a file there when the block ends (even one
    made while the block ran) is kept and FileExistsError raised. On any exception nothing is left and
    ``path`` is untouched. The data reaches the disk before the name does, so a power cut or a crash of
    the machine leaves the old file or the whole new one, not an empty or partial one; the name reaches
    it before the block's caller goes on. A file replaced passes its permissions on to the new one.
    """
    target = Path(path)
    descriptor = _open_unnamed(target.parent)
    if descriptor is not None:
        with os.fdopen(descriptor, "wb") as file:
            yield file
            if overwrite:
                _take_mode(file, target)
            _to_disk(file)
            with _naming(target):
                _name_unnamed(descriptor, target, overwrite)
        _folder_to_disk(target.parent)
        return
    temporary = hidden_temporary(target)
    try:
        with _naming(target):
            file = temporary.open("xb")
        with file:
            yield file
            if overwrite:
                _take_mode(file, target)
            _to_disk(file)
        with _naming(target):
            if overwrite:
                os.replace(temporary, target)
            else:
                _take_name_if_free(temporary, target)
        _folder_to_disk(target.parent)
    finally:
        with contextlib.suppress(OSError):  # none made (a read-only folder: EROFS, not ENOENT), or renamed
            temporary.unlink()


def _take_mode(file: BinaryIO, target: Path) -> None:
    """Gives the new file the permissions of the regular file it will replace at ``target``, as ``cp`` and
    editors keep them (a photo shared with a group stays shared); none where nothing is there to replace."""
    try:
        mode = os.stat(target, follow_symlinks=False).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) and hasattr(os, "fchmod"):
        os.fchmod(file.fileno(), stat.S_IMODE(mode))


def _to_disk(file: BinaryIO) -> None:
    """Waits until what was written to ``file`` is on the disk (a few milliseconds for a photo)."""
    file.flush()
    _sync(file.fileno())


def _sync(descriptor: int) -> None:
    """fsync, or on macOS F_FULLFSYNC: its fsync leaves the data in the drive's cache, which a power cut
    loses. Raises OSError as fsync does."""
    if hasattr(fcntl, "F_FULLFSYNC"):
        with contextlib.suppress(OSError):  # a file system that does not take it (some network shares)
            fcntl.fcntl(descriptor, fcntl.F_FULLFSYNC)
            return
    os.fsync(descriptor)


def _folder_to_disk(folder: Path) -> None:
    """Waits until the names in ``folder`` are on the disk, where the system can say so (not Windows)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            _sync(descriptor)
        finally:
            os.close(descriptor)


@functools.cache
def unnamed_files_work() -> bool:
    """Whether this system makes unnamed files and can name them (through /proc/self/fd)."""
    return hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")


def _open_unnamed(folder: Path) -> int | None:
    """The descriptor of a new unnamed file in ``folder``, open for writing; None where there are none."""
    if not unnamed_files_work():
        return None
    try:
        return os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o666)
    except OSError:  # a file system without them (EOPNOTSUPP), or a real problem the fallback meets again
        return None


def hidden_temporary(target: Path) -> Path:
    """A hidden name beside ``target`` for its file while it is written."""
    # The name's first 200 bytes: with the dot and the 13 bytes after, it fits where the target's 255 do.
    stem = os.fsdecode(os.fsencode(target.name)[:200])
    return target.with_name(f".{stem}.tmp-{secrets.token_hex(4)}")


def _name_unnamed(descriptor: int, target: Path, overwrite: bool) -> None:
    """Gives the unnamed file open as ``descriptor`` the name ``target``: a hard link, which takes a name only
    if it is free. To replace a file there, it is linked under a hidden name, then renamed over it."""
    try:
        _link(descriptor, target)
    except FileExistsError:
        if not overwrite:
            raise
        temporary = hidden_temporary(target)
        try:
            _link(descriptor, temporary)
            os.replace(temporary, target)
        except BaseException:  # also a Ctrl-C between the two
            with contextlib.suppress(OSError):  # none made, or renamed already
                temporary.unlink()
            raise


def _link(descriptor: int, name: Path) -> None:
    """A hard link to the unnamed file open as ``descriptor``, through its /proc/self/fd entry (linkat with
    AT_SYMLINK_FOLLOW: Python calls that only given a folder's descriptor)."""
    folder = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(str(descriptor), name, src_dir_fd=folder, follow_symlinks=True)
    finally:
        os.close(folder)


@contextmanager
def _naming(target: Path) -> Iterator[None]:
    """An OSError giving the file its name names ``target``, not a temporary name or a /proc path."""
    try:
        yield
    except OSError as error:
        raise OSError(error.errno, error.strerror, os.fspath(target)) from None


def _take_name_if_free(temporary: Path, target: Path) -> None:
    """Gives ``temporary``'s file the name ``target`` too, unless something has that name: FileExistsError.

    A hard link takes a name only if it is free, in one step. Where the file system has no hard links,
    the name is checked, then taken by a rename: only a file made in the instant between is replaced.
    """
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT: EPERM; FUSE mounts: ENOSYS; Windows: EINVAL), or another
        # failure, which the rename meets again
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST)) from None
        os.replace(temporary, target)


def write_atomic(path: Path, data: bytes, *, overwrite: bool = True, marked: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all (see ``atomic_file``): no reader sees half a file;
    ``marked``, with recnet's mark (``mark_written``). An error writing (a full disk) names ``path``."""
    with naming_the_file(path), atomic_file(path, overwrite=overwrite) as file:
        file.write(data)
        if marked:
            mark_written(file)


# Set on every image and model card recnet writes, where the file system keeps extended attributes: it tells
# the files recnet wrote from a user's own (``written_by_recnet``). It holds the file's size and time of last
# change as recnet left them, so that a file copied onto an output (``cp`` keeps the file, and its
# attributes) or an output edited in place is the user's from then on.
WRITTEN_MARK = "user.recnet.written"


def written_mark(status: os.stat_result) -> bytes:
    """The mark of a file as recnet wrote it: its size, time of last change and inode number (a copy that
    keeps the attribute and the time, as ``cp -a`` and ``rsync -aX`` make, is another file)."""
    return f"{status.st_size} {status.st_mtime_ns} {status.st_ino}".encode()


def mark_written(file: BinaryIO) -> None:
    """Sets recnet's mark (``WRITTEN_MARK``) on a file it wrote, once its last byte is in."""
    if hasattr(os, "setxattr"):  # Linux; not a file system without extended attributes (FAT, some shares)
        file.flush()  # the data in the buffer would change the time of last change once written
        with contextlib.suppress(OSError):
            os.setxattr(file.fileno(), WRITTEN_MARK, written_mark(os.fstat(file.fileno())))


def written_by_recnet(path: str | os.PathLike[str]) -> bool | None:
    """Whether the file at ``path`` is as recnet wrote it (it bears recnet's mark, and its size, time of last
    change and inode are the mark's); None where that cannot be told: a file system that keeps no mark, or a
    system without extended attributes."""
    if not hasattr(os, "getxattr"):
        return None
    try:
        return _as_marked(path)
    except OSError as error:
        return False if error.errno == errno.ENODATA else None


def changed_since_written(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` bears recnet's mark but is no longer as recnet wrote it: edited in place
    (a file without the mark, or where none can be kept, is not known to have been)."""
    if not hasattr(os, "getxattr"):
        return False
    try:
        return not _as_marked(path)
    except OSError:  # no mark, no file, or a file system that keeps none
        return False


def _as_marked(path: str | os.PathLike[str]) -> bool:
    """Whether the file's size, time of last change and inode are its mark's; OSError where it has none."""
    return os.getxattr(path, WRITTEN_MARK) == written_mark(os.stat(path))


def bears_mark(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` bears recnet's mark, as it wrote it or not."""
    if not hasattr(os, "getxattr"):  # Windows, macOS
        return False
    try:
        os.getxattr(path, WRITTEN_MARK)
    except OSError:
        return False
    return True
