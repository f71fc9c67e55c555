"""Bundled example experiments (they double as documentation)."""

from pathlib import Path

__all__ = ["DIGITS"]

#: Path of the digits experiment file used by ``twinrun demo``.
DIGITS = Path(__file__).with_name("digits.py")
