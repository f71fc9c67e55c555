"""Statistics of seeds as functions of per-seed weights.

A bootstrap resample of ``K`` seeds is fully described by how many times it
draws each seed: a count per seed, the counts summing to ``K``. The same
description covers the sample itself (every count 1) and each jackknife sample
(one count 0). So every statistic here takes

* ``w``: weights of shape ``[..., K]`` (leading dims: resamples, jackknife rows), and
* the data, prepared once (shape ``[K]``),

and returns shape ``[...]``. One implementation serves the estimate, the
jackknife and every resample, with weighted sums (``einsum``) instead of a loop over
resamples or a gather of ``[B, K]`` values. Order statistics (median, IQM) read
the sorted data through cumulative weights, so nothing is sorted per resample
(and when the data come sorted, the weights are not even reordered).

Definitions (with ``m = w.sum(-1)`` the resample size):

* mean: ``sum(w * x) / m``
* std: the sample standard deviation (``ddof=1``) of the multiset
* median: NumPy's (mean of the two middle values when ``m`` is even)
* IQM: the interquartile mean, ``scipy.stats.trim_mean(x, 0.25)``: drop
  ``floor(m / 4)`` values from each end, average the rest
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np

__all__ = [
    "STATISTICS",
    "WeightedStatistic",
    "named_statistic",
    "weighted_iqm",
    "weighted_mean",
    "weighted_median",
    "weighted_std",
]

#: ``f(w) -> values``: ``w`` is ``[..., K]`` weights, the result ``[...]``.
WeightedStatistic = Callable[[np.ndarray], np.ndarray]

#: The statistics :func:`named_statistic` knows, by name.
STATISTICS = ("mean", "std", "median", "iqm")


def _dot(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``w @ x`` over the last axis with NumPy's own loops, not BLAS: the result does not
    depend on the BLAS thread count, and no BLAS thread pool fights other processes for
    the cores (on a busy 2-core machine that made ``@`` several times slower)."""
    return cast("np.ndarray", np.einsum("...k,k->...", w, x))


def weighted_mean(x: np.ndarray) -> WeightedStatistic:
    """Mean of ``x`` (``[K]``) under weights ``[..., K]``."""
    x = np.asarray(x, dtype=np.float64)

    def stat(w: np.ndarray) -> np.ndarray:
        return cast("np.ndarray", _dot(w, x) / w.sum(axis=-1))

    return stat


def weighted_std(x: np.ndarray) -> WeightedStatistic:
    """Sample standard deviation (``ddof=1``) of ``x`` (``[K]``) under weights ``[..., K]``.

    Two passes (the weighted mean, then the weighted squared deviations from it), so
    a resample of one repeated value has a spread of exactly 0.
    """
    x = np.asarray(x, dtype=np.float64)

    def stat(w: np.ndarray) -> np.ndarray:
        m = w.sum(axis=-1)
        mean = _dot(w, x) / m
        squares = (w * (x - mean[..., None]) ** 2).sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return cast("np.ndarray", np.sqrt(squares / (m - 1)))

    return stat


def _sorted(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` sorted, and the order that sorts it (``None`` when ``x`` is already sorted)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    if np.array_equal(order, np.arange(x.size)):
        return x, None
    return x[order], order


def _in_order(w: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    return w if order is None else w[..., order]


def _sizes(cum: np.ndarray) -> np.ndarray | int:
    """The multiset sizes ``[...]`` from cumulative weights; one ``int`` when they are all equal
    (every bootstrap resample has ``K`` draws), which keeps the comparisons below scalar."""
    m = np.rint(cum[..., -1]).astype(np.int64)
    return int(m.flat[0]) if m.size and np.all(m == m.flat[0]) else m


def _order_statistic(xs: np.ndarray, cum: np.ndarray, k: np.ndarray | int) -> np.ndarray:
    """The ``k``-th smallest (0-based) value of each weighted multiset.

    ``xs`` is the sorted data ``[K]``, ``cum`` the cumulative weights in sorted
    order ``[..., K]``; the ``k``-th smallest is the first sorted value whose
    cumulative weight exceeds ``k``.
    """
    position = np.count_nonzero(cum <= np.expand_dims(k, -1), axis=-1)
    return cast("np.ndarray", xs[np.minimum(position, xs.size - 1)])


def weighted_median(x: np.ndarray) -> WeightedStatistic:
    """Median of ``x`` (``[K]``) under integer weights ``[..., K]`` (NumPy's definition)."""
    xs, order = _sorted(x)

    def stat(w: np.ndarray) -> np.ndarray:
        cum = np.cumsum(_in_order(w, order), axis=-1)
        m = _sizes(cum)
        low = _order_statistic(xs, cum, (m - 1) // 2)
        high = _order_statistic(xs, cum, m // 2)
        return cast("np.ndarray", (low + high) / 2)

    return stat


def weighted_iqm(x: np.ndarray) -> WeightedStatistic:
    """Interquartile mean of ``x`` (``[K]``) under integer weights ``[..., K]``.

    Each sorted value's copies occupy positions ``[cum - w, cum)`` of the sorted
    multiset; the IQM averages positions ``[g, m - g)`` with ``g = floor(m / 4)``,
    so each value counts with the overlap of the two ranges.
    """
    xs, order = _sorted(x)

    def stat(w: np.ndarray) -> np.ndarray:
        ws = _in_order(w, order)
        end = np.cumsum(ws, axis=-1)  # where each sorted value's copies end
        m = np.expand_dims(_sizes(end), -1)
        g = m // 4
        start = end - ws
        # overlap = max(0, min(end, m - g) - max(start, g)), in place: these are [B, K] arrays
        np.maximum(start, g, out=start)
        np.minimum(end, m - g, out=end)
        end -= start
        np.maximum(end, 0.0, out=end)
        return cast("np.ndarray", _dot(end, xs) / (m - 2 * g)[..., 0])

    return stat


_BUILDERS: dict[str, Callable[[np.ndarray], WeightedStatistic]] = {
    "mean": weighted_mean,
    "std": weighted_std,
    "median": weighted_median,
    "iqm": weighted_iqm,
}


def named_statistic(name: str, x: np.ndarray) -> WeightedStatistic:
    """The weighted form of statistic ``name`` (one of :data:`STATISTICS`) over ``x``."""
    return _BUILDERS[name](x)
