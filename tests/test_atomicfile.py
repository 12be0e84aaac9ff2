from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recnet_cli import atomicfile
from recnet_cli.atomicfile import atomic_file

UNNAMED = atomicfile.unnamed_files_work()


@pytest.fixture(params=["unnamed", "named"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with unnamed files (Linux) and with the hidden temporary name used elsewhere."""
    if request.param == "unnamed" and not UNNAMED:
        pytest.skip("this system makes no unnamed files (O_TMPFILE)")
    if request.param == "named":
        monkeypatch.setattr(atomicfile, "unnamed_files_work", lambda: False)
    return request.param


def test_the_file_takes_its_name_only_when_complete(tmp_path: Path, mode: str) -> None:
    target = tmp_path / "out.png"
    with atomic_file(target) as file:
        file.write(b"half")
        names = os.listdir(tmp_path)
        if mode == "unnamed":
            assert names == []
        else:
            assert len(names) == 1 and names[0].startswith(".out.png.tmp-")
        file.write(b" and the rest")
    assert target.read_bytes() == b"half and the rest"
    assert os.listdir(tmp_path) == ["out.png"] and target.stat().st_nlink == 1


def test_the_data_is_on_the_disk_before_the_file_has_its_name_and_the_name_after(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[str, bool]] = []
    fsync = os.fsync

    def recording(descriptor: int) -> None:
        status = os.fstat(descriptor)
        what = "folder" if os.path.samestat(status, tmp_path.stat()) else f"{status.st_size} bytes"
        synced.append((what, (tmp_path / "checkpoint.safetensors").exists()))
        fsync(descriptor)

    monkeypatch.setattr(atomicfile.os, "fsync", recording)
    with atomic_file(tmp_path / "checkpoint.safetensors") as file:
        file.write(b"weights" * 1000)
    assert synced == [("7000 bytes", False), ("folder", True)]


def test_a_new_file_has_the_usual_permissions(tmp_path: Path, mode: str) -> None:
    umask = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "model.safetensors") as file:
            file.write(b"weights")
    finally:
        os.umask(umask)
    assert (tmp_path / "model.safetensors").stat().st_mode & 0o777 == 0o644


def test_a_file_replaced_passes_its_permissions_on(tmp_path: Path, mode: str) -> None:
    # a photo shared with a group (0o664) stayed 0o644 once replaced, as the umask makes new files
    target, link = tmp_path / "out.jpg", tmp_path / "link.jpg"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link.symlink_to(target)
    umask = os.umask(0o022)
    try:
        with atomic_file(target) as file:
            file.write(b"new")
        with atomic_file(link) as file:  # a link is replaced by a file, which takes nothing of it
            file.write(b"newer")
    finally:
        os.umask(umask)
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o640
    assert not link.is_symlink() and link.stat().st_mode & 0o777 == 0o644


def test_overwrite_replaces_and_without_it_the_file_there_is_kept(tmp_path: Path, mode: str) -> None:
    target = tmp_path / "out.jpg"
    target.write_bytes(b"old")
    with atomic_file(target) as file:
        file.write(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(FileExistsError), atomic_file(target, overwrite=False) as file:
        file.write(b"newer")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.jpg"]


def test_a_file_made_while_writing_is_kept_without_overwrite(tmp_path: Path, mode: str) -> None:
    target = tmp_path / "out.png"
    with pytest.raises(FileExistsError) as raised, atomic_file(target, overwrite=False) as file:
        file.write(b"recnet's")
        target.write_bytes(b"MY EDIT")  # the user's, saved while recnet was writing
    assert raised.value.filename == str(target)
    assert target.read_bytes() == b"MY EDIT" and os.listdir(tmp_path) == ["out.png"]
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere")  # a link to nothing is kept too
    with pytest.raises(FileExistsError), atomic_file(tmp_path / "dangling.png", overwrite=False) as file:
        file.write(b"recnet's")
    assert (tmp_path / "dangling.png").is_symlink() and sorted(os.listdir(tmp_path)) == [
        "dangling.png",
        "out.png",
    ]


def test_an_error_while_writing_leaves_nothing(tmp_path: Path, mode: str) -> None:
    target = tmp_path / "out.tif"
    target.write_bytes(b"previous result")
    with pytest.raises(RuntimeError, match="encoder crashed"), atomic_file(target) as file:
        file.write(b"half a photo")
        raise RuntimeError("encoder crashed")
    assert target.read_bytes() == b"previous result" and os.listdir(tmp_path) == ["out.tif"]


def test_a_replace_that_fails_leaves_nothing(tmp_path: Path, mode: str) -> None:
    (tmp_path / "out.png").mkdir()  # a folder where the file would go
    with pytest.raises(IsADirectoryError) as raised, atomic_file(tmp_path / "out.png") as file:
        file.write(b"photo")
    assert raised.value.filename == str(tmp_path / "out.png")
    assert os.listdir(tmp_path) == ["out.png"] and os.listdir(tmp_path / "out.png") == []


def test_a_stop_as_the_file_replaces_another_leaves_nothing(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or SIGTERM, which the program takes as Ctrl-C) in the main thread, as a file (a checkpoint, a
    report's page) takes the place of the one there."""

    def stopped(*args: object) -> None:
        raise KeyboardInterrupt

    target = tmp_path / "checkpoint.safetensors"
    target.write_bytes(b"previous")
    monkeypatch.setattr(atomicfile.os, "replace", stopped)
    with pytest.raises(KeyboardInterrupt), atomic_file(target) as file:
        file.write(b"next")
    assert target.read_bytes() == b"previous" and os.listdir(tmp_path) == [target.name]


def test_a_missing_folder_is_an_error_naming_no_temporary(tmp_path: Path, mode: str) -> None:
    with pytest.raises(FileNotFoundError) as raised, atomic_file(tmp_path / "gone" / "out.png") as file:
        file.write(b"photo")
    assert raised.value.filename == str(tmp_path / "gone" / "out.png")


@pytest.mark.parametrize("refusal", [errno.EPERM, errno.ENOSYS], ids=["fat", "fuse"])
def test_without_hard_links_the_name_is_checked_then_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: int
) -> None:
    """FAT, FUSE mounts (rclone, gcsfuse): no unnamed files and no hard links; the name is checked, then
    taken by a rename."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(refusal, os.strerror(refusal))

    monkeypatch.setattr(atomicfile, "unnamed_files_work", lambda: False)
    monkeypatch.setattr(atomicfile.os, "link", refuse)
    target = tmp_path / "out.png"
    with atomic_file(target, overwrite=False) as file:
        file.write(b"photo")
    assert target.read_bytes() == b"photo"
    with pytest.raises(FileExistsError), atomic_file(target, overwrite=False) as file:
        file.write(b"another")
    assert target.read_bytes() == b"photo" and os.listdir(tmp_path) == ["out.png"]


def test_without_hard_links_a_link_to_nothing_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name is taken, though by nothing that exists: as with hard links, it is not replaced
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(atomicfile, "unnamed_files_work", lambda: False)
    monkeypatch.setattr(atomicfile.os, "link", refuse)
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError), atomic_file(dangling, overwrite=False) as file:
        file.write(b"photo")
    assert dangling.is_symlink() and os.listdir(tmp_path) == ["dangling.png"]


def test_a_file_with_the_longest_name_the_system_takes_is_written_and_replaced(
    tmp_path: Path, mode: str
) -> None:
    # Its hidden temporary name must fit in the same 255 bytes, and may end inside a character of the name
    target = tmp_path / ("x" + "é" * 125 + ".jpg")  # 255 bytes in UTF-8
    for data in (b"first", b"second"):
        with atomic_file(target) as file:
            file.write(data)
        assert target.read_bytes() == data and os.listdir(tmp_path) == [target.name]


@pytest.mark.skipif(not UNNAMED, reason="this system makes no unnamed files (O_TMPFILE)")
def test_a_process_killed_while_writing_leaves_nothing(tmp_path: Path) -> None:
    """The out-of-memory killer or a scheduler's time limit (SIGKILL) cannot be caught: what was written
    must vanish with the process."""
    script = (
        "import os, signal, sys\n"
        "from recnet_cli.atomicfile import atomic_file\n"
        "with atomic_file(sys.argv[1]) as file:\n"
        "    file.write(b'x' * 100_000)\n"
        "    file.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    finished = subprocess.run([sys.executable, "-c", script, str(tmp_path / "out.jpg")], check=False)
    assert finished.returncode == -signal.SIGKILL
    assert os.listdir(tmp_path) == []


def test_on_macos_the_data_leaves_the_drive_s_cache_before_the_file_takes_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # macOS's fsync leaves the data in the drive's cache, which a power cut loses: F_FULLFSYNC empties it
    flushed: list[tuple[object, bool]] = []

    class MacFcntl:
        F_FULLFSYNC = 51

        @staticmethod
        def fcntl(descriptor: int, operation: int) -> int:
            flushed.append((operation, (tmp_path / "a.bin").exists()))
            return 0

    monkeypatch.setattr(atomicfile, "fcntl", MacFcntl)
    monkeypatch.setattr(os, "fsync", lambda descriptor: flushed.append(("fsync", True)))
    atomicfile.write_atomic(tmp_path / "a.bin", b"data")
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    # the file's data before it takes its name, then its name in the folder
    assert flushed == [(MacFcntl.F_FULLFSYNC, False), (MacFcntl.F_FULLFSYNC, True)]


def test_where_f_fullfsync_is_refused_fsync_does_the_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # some network shares on macOS refuse F_FULLFSYNC: then at least fsync
    synced: list[int] = []

    class RefusingFcntl:
        F_FULLFSYNC = 51

        @staticmethod
        def fcntl(descriptor: int, operation: int) -> int:
            raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(atomicfile, "fcntl", RefusingFcntl)
    monkeypatch.setattr(os, "fsync", synced.append)
    atomicfile.write_atomic(tmp_path / "a.bin", b"data")
    assert len(synced) == 2 and (tmp_path / "a.bin").read_bytes() == b"data"
