"""Per-candidate summaries over seeds: mean, std, median, IQM, min, max, range.

Shapes: ``scores`` is ``{candidate: [K]}`` seed-aligned (see
:func:`~twinrun.stats.align_scores`); each candidate is summarised over its finite
seeds. Nothing here is random.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from twinrun.errors import DataError
from twinrun.stats._scores import SeedLabel, align_scores
from twinrun.stats._types import Summary, finite_or_none

__all__ = ["iqm", "summarize", "summarize_values"]


def iqm(values: Any, axis: int = -1) -> Any:
    """Interquartile mean along ``axis``: drop ``floor(n / 4)`` values from each end, average the rest.

    The same definition as ``scipy.stats.trim_mean(values, 0.25)`` (and rliable's IQM).

    >>> float(iqm([1.0, 2.0, 3.0, 4.0, 100.0, -50.0, 5.0, 6.0]))
    3.5
    """
    x = np.sort(np.asarray(values, dtype=np.float64), axis=axis)
    n = x.shape[axis]
    if n == 0:
        raise DataError("iqm of an empty array", fix="pass at least one value")
    g = n // 4
    return np.take(x, np.arange(g, n - g), axis=axis).mean(axis=axis)


def summarize_values(x: np.ndarray) -> dict[str, Any]:
    """Summary of one candidate's finite per-seed scores ``x`` (``[n]``).

    Returns ``n``, ``mean``, ``std`` (``ddof=1``), ``median``, ``iqm``, ``min``, ``max``,
    ``range`` (``max - min``) and ``unavailable``: ``{statistic: why}`` for each
    statistic that is ``None``.
    """
    n = int(x.size)
    out: dict[str, Any] = {"n": n}
    unavailable: dict[str, str] = {}
    names = ("mean", "std", "median", "iqm", "min", "max", "range")
    if n == 0:
        out.update(dict.fromkeys(names))
        unavailable.update(dict.fromkeys(names, "no finite score on any seed"))
    else:
        out.update(
            mean=float(x.mean()),
            median=float(np.median(x)),
            iqm=float(iqm(x)),
            min=float(x.min()),
            max=float(x.max()),
        )
        if n >= 2:
            out.update(std=float(x.std(ddof=1)), range=float(x.max() - x.min()))
        else:
            out.update(std=None, range=None)
            unavailable["std"] = "std needs at least 2 seeds; there is 1"
            unavailable["range"] = "a range needs at least 2 seeds; there is 1"
    out["unavailable"] = unavailable
    return out


def summarize(scores: Mapping[str, Any], *, seeds: Sequence[SeedLabel] | None = None) -> dict[str, Summary]:
    """Mean, std, median, IQM, min, max and range of each candidate over its seeds.

    Args:
        scores: ``{candidate: [K] scores}`` (NaN or None for a missing seed), or
            ``{candidate: {seed: score}}``.
        seeds: labels of the ``K`` seeds (default ``0..K-1``).

    Returns:
        ``{candidate: Summary}`` (:class:`~twinrun.stats.Summary`: ``n``, ``seeds`` (the ``K``
        labels), ``values`` (``[K]``, None where missing), ``mean``, ``std``, ``median``, ``iqm``,
        ``min``, ``max``, ``range`` and ``unavailable``).

    >>> s = summarize({"a": [0.90, 0.92, 0.97], "b": [0.91, None, 0.93]})
    >>> round(s["a"].range, 4), s["b"].n, s["b"].values
    (0.07, 2, (0.91, None, 0.93))
    """
    aligned = align_scores(scores, seeds)
    return {
        name: Summary(
            seeds=tuple(aligned.seeds),
            values=tuple(finite_or_none(v) for v in row),
            **summarize_values(row[np.isfinite(row)]),
        )
        for name, row in aligned.values.items()
    }
