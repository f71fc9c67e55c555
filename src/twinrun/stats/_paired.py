"""Paired comparisons across seeds: differences, the gain from pairing, Holm.

Shapes: ``a`` and ``b`` are ``[K]`` seed-aligned scores (position ``k`` is seed
``k`` for both: same init, batches and augmentation), NaN where a seed is
missing. A comparison uses the seeds finite for both. Differences are ``a - b``
in metric units (raw sign); ``better`` reads them with the metric's direction.

* :func:`paired_t_test`: mean paired difference, its interval and two-sided
  p-value. The interval is the t interval widened where the differences are
  skewed (:func:`~twinrun.stats.mean_interval`); the plain t-test (the numbers
  of ``scipy.stats.ttest_rel``) is kept under ``t_test``. Both return a
  :class:`~twinrun.stats.PairedDifference`.
* :func:`paired_difference`: that, plus the per-seed differences and bootstrap
  intervals (percentile, expanded percentile, BCa). The skew-adjusted t interval
  is the headline (``low``/``high``): it covers 93-97 % from 3 seeds on for
  normal, heavy-tailed and skewed differences (BENCHMARKS.md).
* :func:`pairing_gain`: what the pairing bought. An unpaired design (each
  candidate its own seeds) estimates the difference with variance
  ``(Var(A) + Var(B)) / n``; the paired design with ``Var(A - B) / n =
  (Var(A) + Var(B) - 2 Cov(A, B)) / n``.
* :func:`holm`: Holm's step-down adjustment of several p-values.

:func:`~twinrun.stats.compare_to_reference` (all of it for every candidate against
one reference) is in ``_reference``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from twinrun.stats._bootstrap import (
    _check_resamples,
    check_confidence,
    counts_from_indices,
    intervals_from_distribution,
    resample_indices,
)
from twinrun.stats._intervals import mean_interval
from twinrun.stats._json import json_safe
from twinrun.stats._random import Seed, as_generator
from twinrun.stats._scores import pair_scores
from twinrun.stats._types import HolmTest, PairedDifference, PairingGain, finite_or_none
from twinrun.stats._weighted import weighted_mean

#: The fewest seeds from which a paired spread, an interval and a p-value are reported.
MIN_SEEDS = 3

__all__ = [
    "MIN_SEEDS",
    "holm",
    "paired_difference",
    "paired_t_test",
    "pairing_gain",
]


def paired_t_test(a: Any, b: Any, *, confidence: float = 0.95) -> PairedDifference:
    """Paired t-test of ``a - b`` over the seeds finite in both.

    Returns a :class:`~twinrun.stats.PairedDifference`: ``n``, ``estimate`` (mean of
    ``a - b``), ``sd`` (of the differences, ``ddof=1``), ``se``, ``t``, ``df``, ``p_value``
    (two-sided), ``low``, ``high`` (the skew-adjusted t interval, whose p-value ``p_value``
    is), ``skewness``, ``t_test`` (the plain t-test's interval and p-value) and ``reason``
    when something is ``None``. Fewer than :data:`MIN_SEEDS` seeds, or the same difference
    on every seed (no spread to measure), are *not estimable*: no interval and no p-value,
    with the reason.

    >>> r = paired_t_test([0.91, 0.93, 0.92, 0.95], [0.90, 0.91, 0.92, 0.93])
    >>> round(r.estimate, 4), round(r.t_test.p_value, 4), round(r.p_value, 4)
    (0.0125, 0.0796, 0.1328)
    """
    confidence = check_confidence(confidence)
    x, y, keep = pair_scores(a, b)
    d = x[keep] - y[keep]
    n = int(d.size)
    if n == 0:
        return PairedDifference(None, None, None, 0, confidence, reason="no seed has a finite score for both")
    diff = float(d.mean())
    if n < MIN_SEEDS:
        why = (
            f"not estimable: a paired test needs at least {MIN_SEEDS} seeds with scores for "
            f"both (with {n}, the spread is a guess); there {'is' if n == 1 else 'are'} {n}"
        )
        sd = float(d.std(ddof=1)) if n >= 2 else None
        return PairedDifference(diff, None, None, n, confidence, sd=sd, reason=why)
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        why = (
            f"not estimable: the paired difference is {diff:.4g} on every one of the {n} "
            "seeds, so its spread cannot be estimated (a metric on a lattice, such as accuracy "
            "on a small validation set, does this); more seeds or a finer metric (the loss) will"
        )
        return PairedDifference(diff, None, None, n, confidence, sd=sd, df=n - 1, reason=why)
    interval = mean_interval(d, confidence)
    assert interval.se is not None  # sd > 0
    return PairedDifference(
        diff,
        interval.low,
        interval.high,
        n,
        confidence,
        sd=sd,
        se=interval.se,
        t=diff / interval.se,
        df=n - 1,
        p_value=interval.p_value,
        skewness=interval.skewness,
        t_test=interval.t,
    )


def paired_difference(
    a: Any,
    b: Any,
    *,
    higher_is_better: bool | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: Seed = 0,
) -> PairedDifference:
    """The paired difference ``a - b`` across seeds with its intervals.

    Args:
        a, b: ``[K]`` seed-aligned scores.
        higher_is_better: the metric's direction; when given, ``better`` says whether
            ``a`` is resolved better (True), resolved worse (False) or not resolved (None)
            by the t interval.
        seed: an ``int`` or ``numpy.random.Generator`` for the bootstrap.

    Returns:
        the :func:`paired_t_test` result, plus ``diffs`` (``[K]``, None where a seed is
        left out), ``intervals`` (``t_skew``, ``t``, ``percentile``, ``expanded``, ``bca``)
        and ``better``.
    """
    confidence = check_confidence(confidence)
    n_resamples = _check_resamples(n_resamples)
    x, y, keep = pair_scores(a, b)
    n = int(keep.sum())
    counts = counts_from_indices(resample_indices(n, n_resamples, as_generator(seed)), n) if n >= 2 else None
    return difference_from_counts(x, y, keep, higher_is_better=higher_is_better, confidence=confidence, counts=counts)


def difference_from_counts(
    x: np.ndarray,
    y: np.ndarray,
    keep: np.ndarray,
    *,
    higher_is_better: bool | None,
    confidence: float,
    counts: np.ndarray | None,
) -> PairedDifference:
    """:func:`paired_difference` of ``x``, ``y`` (``[K]``) over ``keep`` (``bool[K]``, ``n`` true)
    from resample counts ``[B, n]`` (``None`` when ``n < 2``)."""
    test = paired_t_test(x, y, confidence=confidence)
    diffs = tuple(finite_or_none(v) for v in np.where(keep, x - y, np.nan))
    if test.low is None or test.high is None or counts is None or test.t_test is None or test.estimate is None:
        return replace(test, diffs=diffs)
    d = np.asarray(x - y)[keep]
    stat = weighted_mean(d)
    boot = intervals_from_distribution(test.estimate, stat(counts), stat(1 - np.eye(d.size)), confidence)
    intervals = json_safe(
        {
            "t_skew": {"low": test.low, "high": test.high},
            "t": {"low": test.t_test.low, "high": test.t_test.high},
            **{m: boot[m] for m in ("percentile", "expanded", "bca")},
        }
    )
    better = None if higher_is_better is None else _better(test.low, test.high, higher_is_better)
    return replace(test, diffs=diffs, intervals=intervals, better=better)


def _better(low: float, high: float, higher_is_better: bool) -> bool | None:
    if low > 0:
        return higher_is_better
    if high < 0:
        return not higher_is_better
    return None


def pairing_gain(a: Any, b: Any) -> PairingGain:
    """What pairing the seeds bought against an unpaired design with as many seeds.

    Returns a :class:`~twinrun.stats.PairingGain`, over the seeds finite in both: ``n``,
    ``correlation`` (Pearson, needs 3 seeds), ``var_a``, ``var_b``, ``var_paired`` (``Var(a - b)``), ``var_unpaired``
    (``Var(a) + Var(b)``), ``variance_reduction`` (``1 - var_paired / var_unpaired``:
    the share of the unpaired variance the pairing removed; negative if pairing hurt),
    ``seeds_factor`` (``var_unpaired / var_paired``: how many times as many seeds an
    unpaired design needs for an interval as narrow) and ``reason``.

    >>> g = pairing_gain([1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.0, 4.5])
    >>> round(g.correlation, 3), round(g.variance_reduction, 3)
    (0.981, 0.981)
    """
    x, y, keep = pair_scores(a, b)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 2:
        return PairingGain(
            n, reason=f"variances need at least 2 seeds with scores for both; there {'is' if n == 1 else 'are'} {n}"
        )
    var_a, var_b = float(x.var(ddof=1)), float(y.var(ddof=1))
    var_paired = float((x - y).var(ddof=1))
    var_unpaired = var_a + var_b
    reasons = []
    correlation = reduction = factor = None
    if n < 3:
        reasons.append("a correlation needs at least 3 seeds")
    elif var_a == 0 or var_b == 0:
        reasons.append("a correlation is undefined when one candidate scores the same on every seed")
    else:
        correlation = float(np.corrcoef(x, y)[0, 1])
    if var_unpaired == 0:
        reasons.append("both candidates score the same on every seed: nothing to reduce")
    else:
        reduction = 1.0 - var_paired / var_unpaired
        if var_paired == 0:
            reasons.append("the paired difference is constant: an unpaired design needs infinitely more seeds")
        else:
            factor = var_unpaired / var_paired
    return PairingGain(
        n, correlation, var_a, var_b, var_paired, var_unpaired, reduction, factor, "; ".join(reasons) or None
    )


def holm(p_values: Mapping[str, float | None], alpha: float = 0.05) -> dict[str, HolmTest]:
    """Holm's step-down adjustment: family-wise error at most ``alpha`` over the tests.

    Sort the ``m`` p-values ascending; the ``i``-th (1-based) is adjusted to
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``; a test is rejected when its
    adjusted p-value is below ``alpha``. ``None`` p-values (tests that could not
    be run) are not counted in ``m`` and come back as ``None``.

    Returns ``{name: HolmTest(p_value, p_holm, reject)}``.

    >>> r = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005})
    >>> [round(r[k].p_holm, 3) for k in "abcd"], [r[k].reject for k in "abcd"]
    ([0.03, 0.06, 0.06, 0.02], [True, False, False, True])
    """
    check_confidence(1 - alpha)
    tested = {k: float(p) for k, p in p_values.items() if p is not None and math.isfinite(p)}
    m = len(tested)
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, (name, p) in enumerate(sorted(tested.items(), key=lambda kv: kv[1])):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[name] = running
    return {
        name: HolmTest(tested.get(name), adjusted.get(name), adjusted[name] < alpha if name in adjusted else None)
        for name in p_values
    }
