"""The command-line interface (``twinrun --help``)."""

from twinrun.cli._app import build_parser, main

__all__ = ["build_parser", "main"]
