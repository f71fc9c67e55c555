"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["RawHelp", "add_home", "add_json", "add_overrides", "add_registry", "print_json"]


class RawHelp(argparse.RawDescriptionHelpFormatter):
    """Keeps the hand-written layout of descriptions and examples."""


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON on stdout (nothing else goes to stdout)"
    )


def add_home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home",
        metavar="DIR",
        help="twinrun's folder for runs and logs (default: $TWINRUN_HOME or ./.twinrun)",
    )


def add_overrides(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a setting or factory argument; repeatable. Examples: steps=100, "
        "model.width=64, optimizer.lr=1e-3, wide:model.width=512 (one candidate)",
    )


def _plain(value: Any) -> Any:
    """A typed result (anything with ``to_dict()``) as its record; anything else as its text."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else str(value)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, allow_nan=False, default=_plain)
    sys.stdout.write("\n")


def add_registry(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry",
        metavar="PATH",
        help="the run registry: a file, or a folder holding registry.sqlite "
        "(default: $TWINRUN_HOME/registry.sqlite, else ./.twinrun/registry.sqlite)",
    )
