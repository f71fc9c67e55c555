"""Coverage by simulation: 2,000 simulated sweeps of 10 seeds, seeded, so the result is fixed.

A sweep: two candidates share each seed's effect (sd 0.01, what init, batch order and
augmentation do to a score) and have their own noise (sd 0.004). The true mean of A is
0.90, the true paired difference A - B is 0.02. A 95 % interval should contain the
truth in 93-97 % of the sweeps (2,000 sweeps: one standard error is 0.5 %).
"""

from __future__ import annotations

import numpy as np
import pytest

from twinrun.stats import bootstrap_intervals, mean_interval, paired_difference

SWEEPS, SEEDS, RESAMPLES = 2000, 10, 2000


@pytest.fixture(scope="module")
def coverage() -> dict[str, float]:
    rng = np.random.default_rng(20240501)
    hits: dict[str, int] = {}

    def count(key: str, low: float, high: float, truth: float) -> None:
        hits[key] = hits.get(key, 0) + int(low <= truth <= high)

    for _ in range(SWEEPS):
        shared = rng.normal(0, 0.01, SEEDS)
        a = 0.90 + shared + rng.normal(0, 0.004, SEEDS)
        b = 0.88 + shared + rng.normal(0, 0.004, SEEDS)
        diff = paired_difference(a, b, n_resamples=RESAMPLES, seed=rng)
        for method, interval in diff.intervals.items():
            count(f"difference {method}", interval["low"], interval["high"], 0.02)
        t = mean_interval(a)
        count("mean t_skew", t.low, t.high, 0.90)
        count("mean t", t.t.low, t.t.high, 0.90)
        boot = bootstrap_intervals({"a": a}, n_resamples=RESAMPLES, seed=rng)["a"]
        for stat in ("mean", "median", "iqm"):  # normal data: all three estimate 0.90
            for method in ("percentile", "expanded", "bca"):
                count(f"{stat} {method}", boot[stat][method]["low"], boot[stat][method]["high"], 0.90)
    return {key: n / SWEEPS for key, n in hits.items()}


@pytest.mark.slow
@pytest.mark.parametrize("key", ["difference t_skew", "mean t_skew", "difference t", "mean t",
                                 "difference expanded", "mean expanded"])
def test_headline_intervals_cover_95_percent(coverage, key):
    """The skew-adjusted t intervals (the headline for means and paired differences), the plain t
    and the expanded percentile."""
    assert 0.93 <= coverage[key] <= 0.97, coverage


@pytest.mark.slow
@pytest.mark.parametrize("key", ["median percentile", "iqm percentile"])
def test_order_statistics_percentile_intervals(coverage, key):
    """Median and IQM: the percentile interval is the headline; it runs about 1-2 % under nominal."""
    assert 0.92 <= coverage[key] <= 0.97, coverage


@pytest.mark.slow
@pytest.mark.parametrize("key", ["difference percentile", "difference bca", "mean percentile", "mean bca"])
def test_plain_bootstrap_of_a_mean_undercovers_with_10_seeds(coverage, key):
    """Why they are not the headline: with 10 seeds they cover about 90 %, not 95 %."""
    assert 0.85 <= coverage[key] < 0.93, coverage


@pytest.mark.parametrize("n", [10, 30])
def test_skew_adjusted_mean_interval_covers_a_near_ceiling_accuracy(n):
    """Accuracy near its ceiling (1 - Beta(1, 30), skewness -1.9): the plain t interval of the mean
    covers 0.89-0.92; the headline, widened on the side the skewness asks for, 93-97 % from 10
    seeds (at 3 and 5 seeds about 0.93, BENCHMARKS.md)."""
    rng = np.random.default_rng(31 + n)
    truth = 1.0 - 1.0 / 31.0
    hits = {"t_skew": 0, "t": 0}
    for _ in range(SWEEPS):
        r = mean_interval(1.0 - rng.beta(1.0, 30.0, n))
        hits["t_skew"] += r.low <= truth <= r.high
        hits["t"] += r.t.low <= truth <= r.t.high
    assert 0.93 <= hits["t_skew"] / SWEEPS <= 0.97, hits
    assert hits["t"] / SWEEPS < 0.93, hits


def test_mean_interval_p_value_agrees_with_its_interval():
    rng = np.random.default_rng(5)
    for n in (3, 4, 6, 10, 30):
        for _ in range(200):
            x = rng.beta(1.0, 8.0, n) - rng.uniform(0.0, 0.25)
            r = mean_interval(x)
            assert (r.p_value < 0.05) == (r.low > 0 or r.high < 0), (n, r)
            assert r.low <= r.t.low + 1e-15 and r.high >= r.t.high - 1e-15
    symmetric = mean_interval([-1.0, 0.0, 1.0, 2.0])
    assert symmetric.skewness == 0.0 and symmetric.low == symmetric.t.low
