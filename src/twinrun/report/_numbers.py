"""How numbers, intervals and differences read in the terminal: one place for every table.

``-`` stands for a value that is missing or not finite, everywhere. A difference reads
``+0.0123 [+0.0040, +0.0206] better``: the estimate, the interval when there is one, and
what it resolves (``better``, ``worse``, ``~`` for not resolved). Each formatter takes a
typed result (:class:`~twinrun.engine.Difference`, :class:`~twinrun.stats.Interval`,
:class:`~twinrun.stats.PairedDifference`) or the dict a registry stored for one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["difference", "interval", "number", "percent"]

_MARK = {True: "better", False: "worse", None: "~"}


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def number(x: Any, digits: int = 4, *, signed: bool = False) -> str:
    """``x`` with ``digits`` decimals (``+`` in front when ``signed``); ``-`` when it is not a finite number."""
    value = _finite(x)
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def percent(x: Any) -> str:
    """A share as a whole percentage (``0.42`` reads ``42%``)."""
    value = _finite(x)
    return "-" if value is None else f"{100 * value:.0f}%"


def interval(low: Any, high: Any, digits: int = 4, *, signed: bool = False) -> str:
    """``[low, high]``, or ``-`` when either end is missing."""
    if _finite(low) is None or _finite(high) is None:
        return "-"
    return f"[{number(low, digits, signed=signed)}, {number(high, digits, signed=signed)}]"


def _parts(d: Any) -> tuple[Any, Any, Any, Any]:
    """(estimate, low, high, better) of a typed difference or of its stored dict."""
    if isinstance(d, Mapping):
        estimate = next((d[k] for k in ("diff", "estimate", "mean") if d.get(k) is not None), None)
        return estimate, d.get("low"), d.get("high"), d.get("better")
    estimate = getattr(d, "estimate", getattr(d, "mean", None))
    return estimate, getattr(d, "low", None), getattr(d, "high", None), getattr(d, "better", None)


def difference(d: Any, digits: int = 4) -> str:
    """A paired difference: its estimate, its interval when it has one, and what that resolves."""
    if d is None:
        return "-"
    estimate, low, high, better = _parts(d)
    if _finite(estimate) is None:
        return "-"
    if callable(better):  # an Interval says better only given the metric's direction
        better = None
    head = number(estimate, digits, signed=True)
    span = interval(low, high, digits, signed=True)
    return head if span == "-" else f"{head} {span} {_MARK[better]}"
