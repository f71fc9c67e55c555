"""The ``twinrun`` command: a thin layer over the library."""

from __future__ import annotations

import argparse
import errno
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from twinrun._version import __version__
from twinrun.cli import (
    _check,
    _compare,
    _env,
    _ledger,
    _registry,
    _report,
    _repro,
    _runs,
    _search,
    _seeds,
)
from twinrun.cli._child import as_child, needs_child, run_in_child
from twinrun.cli._common import RawHelp
from twinrun.errors import TwinrunError

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
twinrun makes deep-learning comparisons trustworthy: candidates train side by
side on the same batches from the same initial weights, so the difference you
see is between models, not between runs.

start here:
  twinrun demo                        compare three digit classifiers over 4 replicas (about 13 s on 2 cores)
  twinrun demo --show-file > exp.py   a complete experiment file to edit
  twinrun compare exp.py              your own comparison
  twinrun seeds exp.py --seeds 10     the same over 10 seeds: spread, paired statistics, ensembles
  twinrun search exp.py --trials 16   hyperparameter search whose trials are twins, confirmed by replicas
  twinrun check exp.py --candidate A  the training recipe as checks (loss at init, overfit, leakage...)
  twinrun repro exp.py                run it twice: bit-identical, or where the runs part
  twinrun runs                        every run so far; twinrun show / diff RUN
  twinrun report latest               one HTML file: curves, paired differences, intervals, checks
  twinrun COMMAND --help              every option of a command
"""

COMMANDS = [_compare, _seeds, _search, _check, _repro, _runs, _report, _ledger, _env, _registry]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twinrun", description=DESCRIPTION, formatter_class=RawHelp)
    parser.add_argument("--version", action="version", version=f"twinrun {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    as_child()  # a training child: handles SIGINT and stops when its parent is gone
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    trains = getattr(args, "trains", False)
    if callable(trains):  # a command that trains in this process only with some options
        trains = trains(args)
    if trains and not getattr(args, "show_file", False) and needs_child():
        # PYTHONHASHSEED only takes effect at interpreter start: train in a child that has it
        return run_in_child(list(sys.argv[1:] if argv is None else argv))
    try:
        return int(handler(args))
    except TwinrunError as exc:
        print(f"twinrun: error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("twinrun: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"twinrun: error: {disk_full_message(exc)}", file=sys.stderr)
        print(
            "  fix: free space on that disk (old runs: twinrun runs; their folders are under "
            "<TWINRUN_HOME>/runs), or point TWINRUN_HOME / --home at a disk with room; a run with "
            "checkpoints resumes with --resume",
            file=sys.stderr,
        )
        return 1


def disk_full_message(exc: OSError) -> str:
    """Which file could not be written, and how much room its disk has left."""
    path = exc.filename or getattr(exc, "filename2", None)
    where = Path(path) if path else Path.cwd()
    probe = where if where.is_dir() else where.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
        room = f"{free / 2**20:.1f} MiB free on the disk of {probe}"
    except OSError:
        room = "free space unknown"
    return f"the disk is full: could not write {str(path) if path else 'a file'} ({room})"
