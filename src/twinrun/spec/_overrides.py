"""``--set KEY=VALUE`` items parsed into overrides."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from twinrun.errors import ConfigError

__all__ = ["parse_overrides"]


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``["steps=100", "model.width=64", "wide:optimizer.lr=1e-3"]``.

    Values are Python literals (``64``, ``1e-3``, ``True``, ``None``, ``[1, 2]``);
    anything else is kept as a string.
    """
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"override {item!r} is not of the form key=value",
                fix="write e.g. --set steps=100 or --set model.width=64",
            )
        try:
            value: Any = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        result[key] = value
    return result
