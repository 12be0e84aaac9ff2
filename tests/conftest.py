"""Fixtures for tests that run the `recnet` console script: a test model file and a sealed environment."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

if not torch.cuda.is_available():
    # Triton's interpreter runs the fused kernels (tests/test_triton_stages.py) on CPU tensors. It must be on
    # before anything imports Triton (torch.compile does, through torch._dynamo).
    os.environ["TRITON_INTERPRET"] = "1"
    os.environ.setdefault("RECNET_TRITON_BLOCK", "4096")  # the interpreter is fastest on few large programs

from fake_hub import point_hub_cache_at

from recnet_cli.atomicfile import WRITTEN_MARK, written_mark
from recnet_cli.model import RECNet
from recnet_cli.weights import save_model

RECNET = shutil.which("recnet")


# Allocations no machine can make, each failing as its library fails (they stand in for any function).
def numpy_out_of_memory(*args: object) -> None:
    np.empty(1 << 60, np.uint8)  # MemoryError


def torch_out_of_memory(*args: object) -> None:
    torch.empty(1 << 60, dtype=torch.uint8)  # the CPU allocator raises a RuntimeError, not MemoryError


def opencv_out_of_memory(*args: object) -> None:
    cv2.resize(np.zeros((2, 2), np.uint8), (1 << 20, 1 << 19))  # 512 GiB: cv2.error, "Insufficient memory"


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded, untrained RECNet saved in the project's format: a fixture for I/O tests, not a model."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "test-model.safetensors"
    save_model(RECNet(), path, {"description": "untrained test fixture"})
    return path


@pytest.fixture
def exact_float32() -> Iterator[None]:
    """TensorFloat-32 off, so float32 on a GPU means float32 (PyTorch lets cuDNN use TF32, whose 10-bit
    mantissa puts eager convolutions about 1e-3 from float32 ones)."""
    import torch

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> None:
    """One PyTorch thread in each test process, for the whole session: the suite runs in two processes on
    two cores (-n 2) over tiny images, where more threads only wait on each other. Set once, so that no
    test runs with more or fewer threads depending on which tests ran before it in its process."""
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def empty_hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test sees an empty Hugging Face cache and no login, never the user's (~/.cache/huggingface):
    a model cached there would change what `recnet models` lists. Tests of the Hub point it elsewhere."""
    point_hub_cache_at(monkeypatch, tmp_path_factory.mktemp("hf-home"))


@pytest.fixture(autouse=True)
def stop_signals_as_they_were() -> Iterator[None]:
    """A command run in-process may ignore Ctrl-C and SIGTERM as it finishes (``ignore_further_stops``):
    the next tests get the handlers they started with."""
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in handlers.items():
        signal.signal(number, handler)


@pytest.fixture
def unreadable_folders(monkeypatch: pytest.MonkeyPatch) -> set[Path]:
    """Folders to list as one of mode 000 is (root reads those anyway): os.scandir refuses the paths added."""
    refused: set[Path] = set()
    listing = os.scandir

    def scandir(path: str | os.PathLike[str] = ".") -> Iterator[os.DirEntry[str]]:
        if Path(path) in refused:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return listing(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return refused


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks ``subprocess`` the tests that run recnet as a command of its own, in the environment ``env``
    gives: CI runs them under Python 3.11 alone (the README's test command), but for those marked
    ``address_space``, which its suite with the oldest dependencies and a CUDA build of PyTorch runs too."""
    for item in items:
        if "env" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.subprocess)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No bundled model, an empty Hugging Face cache, never the real Hub."""
    empty = tmp_path / "no-bundled-weights"
    empty.mkdir()
    return {
        **os.environ,
        "RECNET_WEIGHTS_DIR": str(empty),
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "200",
        "OMP_NUM_THREADS": "1",  # tiny images: one thread is fastest and never oversubscribes the CPU
    }


def run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RECNET, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def as_recnet_wrote(path: Path) -> Path:
    """Gives ``path`` the mark every image recnet writes bears (imaging.written_by_recnet), where the file
    system keeps marks: a file made by the test stands for an earlier run's output."""
    with contextlib.suppress(OSError):
        os.setxattr(path, WRITTEN_MARK, written_mark(os.stat(path)))
    return path


def keeps_marks(folder: Path) -> bool:
    """Whether the file system of ``folder`` keeps extended attributes, where recnet's mark is held; probed
    on a scratch file, not through recnet's own code (imaging.written_by_recnet), which the tests check."""
    probe = folder / ".marks-probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.recnet-probe", b"1")
        return os.getxattr(probe, "user.recnet-probe") == b"1"
    except (OSError, AttributeError):  # AttributeError: a system without extended attributes
        return False
    finally:
        probe.unlink()


def skip_unless_marks_kept(folder: Path) -> None:
    """Skips a test of recnet's mark where the file system of ``folder`` cannot hold it."""
    if not keeps_marks(folder):
        pytest.skip("this file system keeps no extended attributes")


def make_photo(path: Path, size: tuple[int, int] = (72, 48), **save: object) -> Path:
    rng = np.random.default_rng(len(path.name))
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, **save)
    return path
