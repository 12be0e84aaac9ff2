"""The ``recnet`` program's first step, before the command line's modules load (half a second on two CPU
cores): from its first instant a stop (Ctrl-C, or SIGTERM from kill, docker stop or a scheduler) ends it as
one later does, in one line and with exit 130 (143 for SIGTERM), not in a traceback or in silence; and a
library that cannot load (a broken or mismatched PyTorch, OpenCV without a system library it needs) is a
one-line error too."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from recnet_cli.wording import typed_number

# What a shell reports for a program a signal ended, 128 + its number: the commands exit with the first,
# for Ctrl-C and SIGTERM alike, and ``run`` makes it the second where SIGTERM stopped the program.
INTERRUPTED = 128 + signal.SIGINT  # 130
TERMINATED = 128 + signal.SIGTERM  # 143
SIGTERM_HEARD = threading.Event()  # set by whatever took SIGTERM as a stop: this handler, or training's
STOPPED_STARTING = "interrupted: recnet stopped before it started"
# The libraries recnet loads, by their top-level module, as their users know them.
LIBRARIES = {
    "torch": "PyTorch",
    "triton": "Triton",
    "cv2": "OpenCV",
    "numpy": "NumPy",
    "PIL": "Pillow",
    "pillow_heif": "pillow-heif",
    "safetensors": "safetensors",
    "huggingface_hub": "huggingface_hub",
    "typer": "Typer",
    "click": "Click",
    "rich": "Rich",
}


def stopped_unfinished(command: str) -> str:
    """The line for a stop that ``command`` did not report itself (one while its model loads)."""
    return f"interrupted: recnet {command} stopped before it finished"


def run() -> None:
    """The ``recnet`` program (see ``cli.run``, which it starts)."""
    SIGTERM_HEARD.clear()
    try:
        try:
            signal.signal(signal.SIGTERM, stop_as_ctrl_c)
            reopen_closed_standard_streams()
            forget_unusable_terminal_size()
            forget_unusable_hub_timeouts()
            spin_less_while_waiting()
            silence_library_logs()
            end_if_working_folder_gone()
            from recnet_cli.cli import run as run_command_line
        except KeyboardInterrupt:
            ignore_further_stops()
            sys.stderr.write(f"note: {STOPPED_STARTING}\n")
            raise SystemExit(INTERRUPTED) from None
        run_command_line()
    except (ImportError, OSError, AttributeError) as error:
        end_if_library_failed(error)
        raise
    except SystemExit as ending:
        if ending.code == INTERRUPTED and SIGTERM_HEARD.is_set():
            raise SystemExit(TERMINATED) from None
        raise


def stop_as_ctrl_c(number: int, frame: object) -> None:
    """SIGTERM's handler: the program stops as on Ctrl-C (a KeyboardInterrupt), and exits 143."""
    SIGTERM_HEARD.set()
    raise KeyboardInterrupt


def end_if_working_folder_gone() -> None:
    """Ends recnet, exit 2, in a folder deleted since the shell entered it: paths given relative to it name
    nothing, and PyTorch's libraries fail to load there. (One moved away is still the working folder.)"""
    try:
        os.getcwd()
    except FileNotFoundError:
        sys.stderr.write("error: the current folder no longer exists (it was deleted); cd to one that does\n")
        raise SystemExit(2) from None


def reopen_closed_standard_streams() -> None:
    """Puts the null device on a standard stream that was closed (``recnet models >&-``), as git does: what
    is written there is dropped, not a traceback. Its number may have been taken meanwhile, by a file a
    launcher opened (pyenv's shell script) or the first one recnet opened: what a library printed would go
    there, so a stream that cannot be written is replaced too."""
    try:
        import fcntl
    except ImportError:  # Windows
        return
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        try:
            read_only = fcntl.fcntl(number, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
        except OSError:  # closed
            read_only = None
        if read_only is None or (read_only and number > 0):
            null = os.open(os.devnull, os.O_RDWR)
            if null != number:
                os.dup2(null, number)
                os.close(null)
            if getattr(sys, name) is None:
                setattr(sys, name, open(number, "r" if number == 0 else "w", closefd=False))  # noqa: SIM115


# More columns or lines than any terminal shows: help laid out this wide took gigabytes (COLUMNS=9999999999)
LARGEST_TERMINAL = 10_000


def forget_unusable_terminal_size() -> None:
    """Drops a COLUMNS or LINES that is not a positive number (some environments set COLUMNS=0): Rich would
    print every line that many characters wide, that is nothing at all; or one beyond any terminal's."""
    for name in ("COLUMNS", "LINES"):
        value = os.environ.get(name)
        if value is not None and not 0 < (typed_number(value) or 0) <= LARGEST_TERMINAL:
            del os.environ[name]


# The Hub's timeouts, in seconds, which huggingface_hub reads as whole numbers as it is imported: that is
# as every command that loads a model starts, whether the model is on the Hub or not.
HUB_TIMEOUTS = ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT")
ignored_hub_timeouts: dict[str, str] = {}  # name: value, dropped by ``forget_unusable_hub_timeouts``


def forget_unusable_hub_timeouts() -> None:
    """Drops a Hub timeout that is not a whole number (``HF_HUB_ETAG_TIMEOUT=0.5``), so that the Hub's
    default is used: huggingface_hub ended every command that loads a model, the bundled one too, in a
    traceback. One that was not empty is kept in ``ignored_hub_timeouts``, for ``recnet download`` to name."""
    for name in HUB_TIMEOUTS:
        value = os.environ.get(name)
        if value is None:
            continue
        try:
            int(value)
        except ValueError:
            del os.environ[name]
            if value.strip():
                ignored_hub_timeouts[name] = value


# How long PyTorch's OpenMP threads (GNU libgomp) spin at the end of each parallel step before they sleep:
# libgomp's own 300,000 keeps them spinning through another process's turn on a busy machine. On these 2
# cores, beside 3 busy processes, a 2 MP photo took 12.6 s with it and 6.6 to 7.4 s with this; on an idle
# machine the two were even (1.51 to 1.55 s, alternating runs).
SPIN_COUNT = "30000"


def spin_less_while_waiting() -> None:
    """Sets libgomp's spin count (``SPIN_COUNT``) before PyTorch loads it, unless the user set how OpenMP
    threads wait (GOMP_SPINCOUNT, OMP_WAIT_POLICY)."""
    if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT


def silence_library_logs() -> None:
    """Keeps the libraries' log records off stderr: with no handler anywhere, Python's logging writes a
    warning or error of theirs there as it is (Pillow's "More samples per pixel than can be decoded: 515",
    beside recnet's one line for that damaged TIFF). recnet says what went wrong itself."""
    logging.getLogger().addHandler(logging.NullHandler())


def end_if_library_failed(error: BaseException) -> None:
    """End the program with a one-line error and exit 2 where ``error`` is a library's failure."""
    failure = library_failure(error)
    if failure is not None:
        sys.stderr.write(f"error: {failure}\n")
        raise SystemExit(2) from None


def library_failure(error: BaseException) -> str | None:
    """What went wrong, in a line, where ``error`` was raised as a library that recnet loads (``LIBRARIES``)
    was being imported (such as a PyTorch that cannot find or map its CUDA libraries), is missing, or lacks a
    name that recnet uses (a version recnet does not support); else None."""
    import traceback  # here, not at the start: what runs before the signal handlers are set stays short

    importing = [
        frame
        for frame, _ in traceback.walk_tb(error.__traceback__)
        if frame.f_code.co_name == "<module>" and _top_level(frame.f_globals.get("__name__", "")) in LIBRARIES
    ]
    if importing:  # the innermost library's: the one that failed, even where another imported it
        module = importing[-1].f_globals["__name__"]
        where = _package_folder(module, importing[-1].f_code.co_filename)
        return f"{LIBRARIES[_top_level(module)]} could not be loaded from {where}: {error}"
    lacking = _library_lacking(error)
    if lacking is not None:
        module, where = lacking[0], _package_folder(*lacking)
        return (
            f"{LIBRARIES[_top_level(module)]} at {where} is not a version recnet can use: {error}"
            " (`pip check` says which version recnet needs)"
        )
    if isinstance(error, ModuleNotFoundError) and _top_level(error.name or "") in LIBRARIES:
        return f"{LIBRARIES[_top_level(error.name)]} is not installed for this Python ({sys.executable})"
    return None


def _library_lacking(error: BaseException) -> tuple[str, str] | None:
    """The module, and its file, of an installed library that ``error`` found without a name that recnet uses
    (``from torch import x``, ``import torch.x``, ``torch.x``)."""
    if isinstance(error, ModuleNotFoundError):  # a module inside a library that loaded
        holder = sys.modules.get(_top_level(error.name or "")) if "." in (error.name or "") else None
    elif isinstance(error, ImportError):
        return (error.name, error.path) if _top_level(error.name or "") in LIBRARIES and error.path else None
    else:
        holder = getattr(error, "obj", None) if isinstance(error, AttributeError) else None
    name, file = getattr(holder, "__name__", None), getattr(holder, "__file__", None)
    if isinstance(name, str) and isinstance(file, str) and _top_level(name) in LIBRARIES:
        return name, file
    return None


def _package_folder(module: str, file: str) -> str:
    """The folder of the top-level package that ``module`` (loaded from ``file``) belongs to."""
    from pathlib import Path

    folder = Path(file)
    for _ in range(module.count(".") + (folder.stem == "__init__")):
        folder = folder.parent  # up from the module's file to its top-level package's folder
    return str(folder)


def _top_level(module: str) -> str:
    return module.partition(".")[0]


def ignore_further_stops() -> None:
    """Ctrl-C and SIGTERM are ignored from now on: the program is finishing what it has to say."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
