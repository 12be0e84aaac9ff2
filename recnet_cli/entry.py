"""The ``recnet`` program's first step, before the command line's modules load (half a second on two CPU
cores): from its first instant a stop (Ctrl-C, or SIGTERM from kill, docker stop or a scheduler) ends it as
one later does, in one line and with exit 130, not in a traceback or in silence."""

from __future__ import annotations

import signal
import sys

STOPPED_STARTING = "interrupted: recnet stopped before it started"


def stopped_unfinished(command: str) -> str:
    """The line for a stop that ``command`` did not report itself (one while its model loads)."""
    return f"interrupted: recnet {command} stopped before it finished"


def run() -> None:
    """The ``recnet`` program (see ``cli.run``, which it starts)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        from recnet_cli.cli import run as run_command_line
    except KeyboardInterrupt:
        ignore_further_stops()
        sys.stderr.write(f"note: {STOPPED_STARTING}\n")
        raise SystemExit(130) from None
    run_command_line()


def ignore_further_stops() -> None:
    """Ctrl-C and SIGTERM are ignored from now on: the program is finishing what it has to say."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
