"""Bootstrap confidence intervals over seeds: percentile and BCa, vectorised and seeded.

Shapes. ``data`` is ``[K]`` (one score per seed) or ``[S, K]`` (``S`` paired
samples: row ``s`` position ``k`` is seed ``k``; rows are resampled together, so
a resample draws whole seeds). A resample is ``K`` seed positions drawn with
replacement, ``rng.integers(0, K, size=(B, K))`` — the same draws
``scipy.stats.bootstrap`` makes, so the two agree on the same generator.

Intervals:

* percentile: the ``alpha/2`` and ``1 - alpha/2`` quantiles of the bootstrap
  distribution (linear interpolation);
* expanded percentile (Hesterberg 2015): the percentile interval taken at the
  wider level ``Phi(sqrt(K / (K - 1)) * t_{K-1, alpha/2})``, which undoes the
  bootstrap's small-sample narrowness (it matches the t interval's width for a
  normal mean);
* BCa (bias-corrected and accelerated, Efron 1987): the quantiles are moved by
  the bias ``z0 = Phi^-1(share of resamples below the estimate, ties counted
  1/2)`` and the acceleration ``a = sum(d^3) / (6 sum(d^2)^1.5)``, where ``d`` are the
  jackknife deviations (leave-one-seed-out mean minus each value). When BCa is
  undefined (the estimate lies outside the bootstrap distribution, or the
  statistic is undefined on ``K - 1`` seeds) the percentile interval is returned
  and ``reason`` says so.

With 10 seeds the percentile and BCa intervals of a mean are too narrow (they
cover a normal mean about 90 % of the time at a nominal 95 %); the expanded
percentile interval covers about 95 %, as does the t interval. For the median
and the IQM the plain percentile interval covers about 93-95 % and the expanded
one 96-97 %. Which interval :func:`~twinrun.stats.analyze_seeds` reports as the
headline for each quantity is in ``HEADLINE_INTERVALS``; the measured coverages
are in BENCHMARKS.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

import numpy as np

from twinrun.errors import ConfigError, DataError
from twinrun.stats._json import json_safe, num
from twinrun.stats._random import Seed, as_generator, base_seed, stream
from twinrun.stats._scores import SeedLabel, align_scores
from twinrun.stats._special import ndtr, ndtri, stdtrit
from twinrun.stats._types import BootstrapInterval, finite_or_none
from twinrun.stats._weighted import STATISTICS, WeightedStatistic, named_statistic

__all__ = [
    "METHODS",
    "bca_interval",
    "bca_levels",
    "bootstrap_ci",
    "bootstrap_distribution",
    "bootstrap_intervals",
    "check_confidence",
    "counts_from_indices",
    "expanded_interval",
    "expanded_levels",
    "intervals_from_distribution",
    "percentile_interval",
    "resample_indices",
]

#: Interval methods.
METHODS = ("percentile", "expanded", "bca")


def check_confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ConfigError(
            f"confidence={confidence!r} must be a number strictly between 0 and 1",
            fix="pass e.g. confidence=0.95",
        )
    return float(confidence)


def _check_resamples(n_resamples: int) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 2:
        raise ConfigError(
            f"n_resamples={n_resamples!r} must be an integer of at least 2",
            fix="pass e.g. n_resamples=10_000",
        )
    return int(n_resamples)


def resample_indices(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``int64[n_resamples, n]``: each row ``n`` seed positions drawn with replacement."""
    return rng.integers(0, n, size=(n_resamples, n))


def counts_from_indices(index: np.ndarray, n: int) -> np.ndarray:
    """``float64[B, n]``: how many times each resample (row of ``index``) draws each seed."""
    b = index.shape[0]
    counts = np.zeros(b * n)
    np.add.at(counts, (index + n * np.arange(b)[:, None]).ravel(), 1.0)
    return counts.reshape(b, n)


def percentile_interval(theta_b: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` quantile range of the bootstrap distribution ``theta_b`` (``[B]``)."""
    alpha = 1.0 - confidence
    low, high = np.quantile(theta_b, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def expanded_levels(n: int, confidence: float) -> tuple[float, float]:
    """Quantile levels of the expanded percentile interval for ``n`` seeds (``n >= 2``)."""
    alpha = 1.0 - confidence
    t = float(stdtrit(n - 1, alpha / 2))
    low = float(ndtr(np.sqrt(n / (n - 1)) * t))
    return low, 1.0 - low


def expanded_interval(theta_b: np.ndarray, n: int, confidence: float) -> tuple[float, float]:
    """The expanded percentile interval of ``theta_b`` (``[B]``) for a statistic of ``n`` seeds."""
    low, high = np.quantile(theta_b, expanded_levels(n, confidence))
    return float(low), float(high)


def bca_levels(theta_hat: float, theta_b: np.ndarray, theta_jack: np.ndarray, confidence: float) -> dict[str, Any]:
    """The BCa quantile levels from the estimate, the bootstrap distribution ``[B]`` and the jackknife ``[K]``.

    Returns ``levels`` (two, or ``None`` when BCa is undefined), ``bias`` (z0),
    ``acceleration`` (a) and ``reason`` (why BCa is undefined, else ``None``).
    """
    share = (np.count_nonzero(theta_b < theta_hat) + np.count_nonzero(theta_b <= theta_hat)) / (2 * theta_b.size)
    z0 = float(ndtri(share))
    if not np.all(np.isfinite(theta_jack)):
        return _no_bca(z0, None, "the statistic is undefined on one seed fewer (jackknife)")
    dev = theta_jack.mean() - theta_jack
    den = float((dev**2).sum())
    a = float((dev**3).sum() / (6.0 * den**1.5)) if den > 0 else 0.0
    if not np.isfinite(z0):
        return _no_bca(z0, a, "the estimate lies outside the bootstrap distribution")
    alpha = 1.0 - confidence
    shifted = z0 + ndtri(np.array([alpha / 2, 1 - alpha / 2]))
    with np.errstate(divide="ignore", invalid="ignore"):
        levels = ndtr(z0 + shifted / (1 - a * shifted))
    if not np.all(np.isfinite(levels)) or np.any(1 - a * shifted <= 0):
        return _no_bca(z0, a, "the acceleration is too large for the requested confidence")
    return {"levels": (float(levels[0]), float(levels[1])), "bias": z0, "acceleration": a, "reason": None}


def _no_bca(z0: float, a: float | None, why: str) -> dict[str, Any]:
    return {"levels": None, "bias": num(z0), "acceleration": num(a), "reason": f"BCa undefined: {why}"}


def bca_interval(theta_hat: float, theta_b: np.ndarray, theta_jack: np.ndarray, confidence: float) -> dict[str, Any]:
    """BCa interval: ``low``, ``high`` (``None`` when undefined), ``bias``, ``acceleration``, ``reason``."""
    bca = bca_levels(theta_hat, theta_b, theta_jack, confidence)
    levels = bca.pop("levels")
    low, high = (None, None) if levels is None else np.quantile(theta_b, levels)
    return {"low": num(low), "high": num(high), **bca}


def bootstrap_distribution(
    statistic: WeightedStatistic, n: int, index: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Estimate, bootstrap distribution ``[B]`` and jackknife ``[n]`` of a weighted statistic."""
    ones = np.ones(n)
    theta_hat = float(statistic(ones))
    theta_b = statistic(counts_from_indices(index, n))
    theta_jack = statistic(ones - np.eye(n))
    return theta_hat, theta_b, theta_jack


def intervals_from_distribution(
    theta_hat: float, theta_b: np.ndarray, theta_jack: np.ndarray, confidence: float
) -> dict[str, Any]:
    """All intervals from one bootstrap distribution ``[B]`` (and the jackknife ``[K]``).

    Returns ``estimate``, ``se`` and ``{"low", "high"}`` for ``percentile``,
    ``expanded`` and ``bca`` (plus ``bias``, ``acceleration``, ``reason``); ``bca``
    falls back to the percentile endpoints (with ``reason``) where BCa is undefined.
    """
    alpha = 1.0 - confidence
    bca = bca_levels(theta_hat, theta_b, theta_jack, confidence)
    levels = [alpha / 2, 1 - alpha / 2, *expanded_levels(theta_jack.size, confidence)]
    if bca["levels"] is not None:
        levels.extend(bca["levels"])
    else:
        bca["reason"] += "; percentile endpoints shown"
    q = [float(v) for v in np.quantile(theta_b, levels)]  # one pass over the distribution
    bca_low, bca_high = (q[4], q[5]) if bca.pop("levels") is not None else (q[0], q[1])
    return {
        "estimate": theta_hat,
        "se": float(theta_b.std(ddof=1)),
        "percentile": {"low": q[0], "high": q[1]},
        "expanded": {"low": q[2], "high": q[3]},
        "bca": {"low": bca_low, "high": bca_high, **bca},
    }


def _callable_statistic(
    statistic: Callable[..., Any], rows: np.ndarray
) -> tuple[float, Callable[[np.ndarray], np.ndarray], np.ndarray]:
    """Estimate, resample function (``index [B, K] -> [B]``) and jackknife of a user statistic."""
    n = rows.shape[1]

    def apply(index: np.ndarray) -> np.ndarray:
        return np.asarray(statistic(*(row[index] for row in rows), axis=-1), dtype=np.float64)

    theta_hat = float(np.asarray(statistic(*rows, axis=-1)))
    leave_one_out = np.array([np.delete(np.arange(n), i) for i in range(n)])
    return theta_hat, apply, apply(leave_one_out)


def bootstrap_ci(
    data: Any,
    statistic: str | Callable[..., Any] = "mean",
    *,
    method: str = "bca",
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: Seed = 0,
) -> BootstrapInterval:
    """Bootstrap confidence interval of a statistic over seeds.

    Args:
        data: ``[K]`` scores, one per seed; or ``[S, K]``: ``S`` paired samples,
            resampled together by seed. Positions where any row is NaN or infinite
            are left out (``dropped`` counts them).
        statistic: ``"mean"``, ``"std"``, ``"median"`` or ``"iqm"`` (one sample), or a
            vectorised callable ``f(*samples, axis=-1)`` as for ``scipy.stats.bootstrap``.
        method: ``"bca"``, ``"percentile"`` or ``"expanded"`` (see the module docstring).
        confidence: the interval's nominal coverage.
        n_resamples: bootstrap resamples ``B``.
        seed: an ``int`` or a ``numpy.random.Generator``; the same seed gives the same
            resamples (and, for an int, the same as ``scipy.stats.bootstrap`` with
            ``rng=numpy.random.default_rng(seed)``).

    Returns:
        a :class:`~twinrun.stats.BootstrapInterval`: ``estimate``, ``low``, ``high``, ``method``,
        ``confidence``, ``n`` (seeds used), ``dropped``, ``n_resamples``, ``se`` (std of the
        bootstrap distribution), and for BCa ``bias`` and ``acceleration``; ``reason`` says why
        something is ``None``.

    >>> r = bootstrap_ci([0.90, 0.92, 0.91, 0.95, 0.93], "mean", seed=0)
    >>> round(r.estimate, 3), r.low < r.estimate < r.high
    (0.922, True)
    """
    confidence = check_confidence(confidence)
    n_resamples = _check_resamples(n_resamples)
    if method not in METHODS:
        raise ConfigError(f"method={method!r} is not one of {', '.join(METHODS)}", fix="pass method='bca'")
    rows = _rows(data)
    keep = np.all(np.isfinite(rows), axis=0)
    rows = rows[:, keep]
    n = rows.shape[1]
    rng = as_generator(seed)
    if isinstance(statistic, str):
        if statistic not in STATISTICS:
            raise ConfigError(
                f"statistic={statistic!r} is not one of {', '.join(STATISTICS)}",
                fix="pass one of those names or a function f(*samples, axis=-1)",
            )
        if rows.shape[0] != 1:
            raise DataError(
                f"statistic {statistic!r} takes one sample, data has {rows.shape[0]} rows",
                fix="pass a [K] array, or a callable taking several samples",
            )

    def result(estimate: float | None, reason: str | None = None, **found: Any) -> BootstrapInterval:
        return BootstrapInterval(
            finite_or_none(estimate), None, None, n, confidence, method, reason=reason,
            dropped=int((~keep).sum()), n_resamples=n_resamples, **found,
        )  # fmt: skip

    if n == 0:
        return result(None, "no finite score")
    if isinstance(statistic, str):
        if statistic == "std" and n < 2:
            return result(None, "std needs at least 2 seeds")
        weighted = named_statistic(statistic, rows[0])
        estimate = float(weighted(np.ones(n)))
    else:
        estimate = float(np.asarray(statistic(*rows, axis=-1)))
    if n < 2:
        return result(estimate, "a bootstrap interval needs at least 2 seeds; got 1")
    index = resample_indices(n, n_resamples, rng)
    if isinstance(statistic, str):
        theta_hat, theta_b, theta_jack = bootstrap_distribution(weighted, n, index)
    else:
        theta_hat, apply, theta_jack = _callable_statistic(statistic, rows)
        theta_b = apply(index)
    both = intervals_from_distribution(theta_hat, theta_b, theta_jack, confidence)
    chosen = both[method]
    found: dict[str, Any] = {}
    if method == "bca":
        found = {"bias": finite_or_none(chosen["bias"]), "acceleration": finite_or_none(chosen["acceleration"])}
    return replace(
        result(estimate, chosen["reason"] if method == "bca" else None, **found),
        low=finite_or_none(chosen["low"]),
        high=finite_or_none(chosen["high"]),
        se=finite_or_none(both["se"]),
    )


def _rows(data: Any) -> np.ndarray:
    try:
        rows = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"data {data!r} is not numeric ({exc})", fix="pass [K] or [S, K] numbers") from None
    if rows.ndim == 1:
        rows = rows[None, :]
    if rows.ndim != 2:
        raise DataError(
            f"data has shape {rows.shape}; bootstrap_ci needs [K] (one score per seed) or [S, K]",
            fix="pass one flat array of per-seed scores, or a stack of paired ones",
        )
    return rows


def bootstrap_intervals(
    scores: Mapping[str, Any],
    statistics: Sequence[str] = ("mean", "median", "iqm"),
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: Seed = 0,
    seeds: Sequence[SeedLabel] | None = None,
) -> dict[str, dict[str, Any]]:
    """Percentile, expanded percentile and BCa intervals of several statistics per candidate.

    Args:
        scores: ``{candidate: [K] scores}`` (see :func:`~twinrun.stats.align_scores`);
            each candidate uses its finite seeds.
        statistics: names among ``mean``, ``std``, ``median``, ``iqm``; all are computed
            from the same resamples of a candidate.
        seed: base seed; candidate ``c`` resamples from its own stream derived from
            ``(seed, "bootstrap", c)``, so other candidates never change its interval.

    Returns:
        ``{candidate: {statistic: {"estimate", "se", "percentile": {"low", "high"},
        "expanded": {"low", "high"}, "bca": {"low", "high", "bias", "acceleration",
        "reason"}}}}``; a statistic
        that cannot be computed is ``{"estimate": ..., "reason": ...}``.
    """
    confidence = check_confidence(confidence)
    n_resamples = _check_resamples(n_resamples)
    unknown = [s for s in statistics if s not in STATISTICS]
    if unknown:
        raise ConfigError(f"unknown statistics {unknown}; known: {', '.join(STATISTICS)}", fix="pick from those names")
    aligned = align_scores(scores, seeds)
    base = base_seed(seed)
    result: dict[str, dict[str, Any]] = {}
    for name, row in aligned.values.items():
        x = row[np.isfinite(row)]
        result[name] = _candidate_intervals(x, statistics, confidence, n_resamples, stream(base, "bootstrap", name))
    return cast("dict[str, dict[str, Any]]", json_safe(result))


def _candidate_intervals(
    x: np.ndarray,
    statistics: Sequence[str],
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    n = x.size
    if n < 2:
        why = "no finite score" if n == 0 else "a bootstrap interval needs at least 2 seeds; got 1"
        return {s: {"estimate": float(x[0]) if n and s != "std" else None, "reason": why} for s in statistics}
    # The seeds' order does not matter to these statistics: count the draws in sorted
    # order, so that order statistics need not reorder the counts of every resample.
    order = np.argsort(x, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    counts = counts_from_indices(rank[resample_indices(n, n_resamples, rng)], n)
    xs = x[order]
    ones, jack = np.ones(n), np.ones(n) - np.eye(n)
    out = {}
    for name in statistics:
        stat = named_statistic(name, xs)
        out[name] = intervals_from_distribution(float(stat(ones)), stat(counts), stat(jack), confidence)
    return out
