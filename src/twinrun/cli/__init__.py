"""The command-line interface (``twinrun --help``).

:func:`main` first decides, from the raw arguments and without importing torch,
whether a training command must run again in a child with a fixed
``PYTHONHASHSEED`` (see ``_child``); only then are the commands imported.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from twinrun.cli._child import early_child

if TYPE_CHECKING:
    import argparse

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``twinrun`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Output to a pipe or file is line-buffered, so ``twinrun compare ... | tee log`` shows each line as it is
    printed; a reader that stops early (``twinrun show RUN | head``) ends the command quietly.
    """
    if not sys.stdout.isatty() and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        code = early_child(list(sys.argv[1:] if argv is None else argv))
        if code is not None:
            return code
        from twinrun.cli._app import main as run

        return run(argv)
    except BrokenPipeError:
        _silence_stdout()
        return 141  # as a shell reports a command ended by SIGPIPE


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null, so the interpreter's final flush raises nothing."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (captured output): nothing is flushed there
        pass


def build_parser() -> argparse.ArgumentParser:
    """The ``twinrun`` argument parser (every command registered)."""
    from twinrun.cli._app import build_parser as build

    return build()
