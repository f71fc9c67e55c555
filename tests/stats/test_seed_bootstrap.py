"""Bootstrap intervals against scipy.stats.bootstrap, closed forms, and seeding in both directions."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from scipy import stats as sps

from twinrun.errors import ConfigError, DataError
from twinrun.stats import bootstrap_ci, bootstrap_intervals
from twinrun.stats._bootstrap import (
    bca_interval,
    counts_from_indices,
    expanded_levels,
    intervals_from_distribution,
    resample_indices,
)
from twinrun.stats._weighted import named_statistic

SCIPY_STATS = {
    "mean": np.mean,
    "median": np.median,
    "std": lambda x, axis: np.std(x, ddof=1, axis=axis),
    "iqm": lambda x, axis: sps.trim_mean(x, 0.25, axis=axis),
}


def _scipy(x, stat, method, seed, n_resamples=4000):
    return sps.bootstrap((x,), SCIPY_STATS[stat], method=method, n_resamples=n_resamples,
                         rng=np.random.default_rng(seed))


@pytest.mark.parametrize("stat", ["mean", "median", "std"])
@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_same_generator_gives_scipys_interval(stat, method):
    """Same draws as scipy (rng.integers(0, K, (B, K))), same interval to rounding."""
    x = np.random.default_rng(1).normal(0.9, 0.02, 10)
    ours = bootstrap_ci(x, stat, method=method, n_resamples=4000, seed=3)
    ref = _scipy(x, stat, method, seed=3)
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=1e-12)
    assert ours.se == pytest.approx(ref.standard_error, rel=1e-9)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_iqm_matches_scipy_up_to_float_ties(method):
    """IQM resamples tie with the estimate; scipy's rounding breaks some ties, so BCa's z0 moves a hair."""
    x = np.random.default_rng(1).normal(size=10)
    ours = bootstrap_ci(x, "iqm", method=method, n_resamples=4000, seed=3)
    ref = _scipy(x, "iqm", method, seed=3)
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=2e-3)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=2e-3)


def test_paired_callable_statistic_matches_scipy_paired():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=10), rng.normal(0.5, size=10)

    def mean_diff(x, y, axis=-1):
        return np.mean(x - y, axis=axis)

    ours = bootstrap_ci(np.stack([a, b]), mean_diff, method="bca", n_resamples=3000, seed=11)
    ref = sps.bootstrap((a, b), mean_diff, paired=True, method="bca", n_resamples=3000,
                        rng=np.random.default_rng(11))
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=1e-12)
    assert ours.estimate == pytest.approx(np.mean(a - b))


@pytest.mark.parametrize("n", [2, 3, 4, 7, 10, 11])
@pytest.mark.parametrize("stat", ["mean", "std", "median", "iqm"])
def test_weighted_statistics_equal_the_gathered_resamples(n, stat):
    """Counting draws per seed gives exactly the statistic of the resampled values (ties included)."""
    rng = np.random.default_rng(n)
    x = np.round(rng.normal(size=n), 1)  # rounded: ties between seeds
    index = resample_indices(n, 500, rng)
    direct = SCIPY_STATS[stat](x[index], axis=-1)
    weighted = named_statistic(stat, x)(counts_from_indices(index, n))
    assert np.allclose(weighted, direct, rtol=0, atol=1e-12)
    # the jackknife rows (one weight 0) give the leave-one-out statistic
    if n > 2 or stat != "std":
        loo = np.array([np.delete(x, i) for i in range(n)])
        jack = named_statistic(stat, x)(np.ones(n) - np.eye(n))
        assert np.allclose(jack, SCIPY_STATS[stat](loo, axis=-1), rtol=0, atol=1e-12)


def test_bca_acceleration_closed_form():
    """a = sum(d^3) / (6 sum(d^2)^1.5) over jackknife deviations d; z0 from the share below."""
    jack = np.array([1.0, 2.0, 4.0, 8.0])
    d = jack.mean() - jack
    theta_b = np.linspace(0.0, 1.0, 1001)
    r = bca_interval(0.25, theta_b, jack, 0.9)
    assert r["acceleration"] == pytest.approx((d**3).sum() / (6 * (d**2).sum() ** 1.5))
    assert r["bias"] == pytest.approx(sps.norm.ppf(250.5 / 1001))  # 250 below, 1 tie counted 1/2
    # with no bias and no acceleration BCa is the percentile interval
    flat = bca_interval(0.5, theta_b, np.ones(4), 0.9)
    assert flat["acceleration"] == 0.0 and flat["bias"] == pytest.approx(0.0)
    assert (flat["low"], flat["high"]) == pytest.approx((0.05, 0.95))


def test_expanded_levels_closed_form():
    """Phi(sqrt(n/(n-1)) t_{n-1, alpha/2}); for 10 seeds at 95%: 0.855% and 99.145%."""
    low, high = expanded_levels(10, 0.95)
    assert low == pytest.approx(sps.norm.cdf(np.sqrt(10 / 9) * sps.t.ppf(0.025, 9)))
    assert low == pytest.approx(0.00855, abs=1e-5) and high == pytest.approx(1 - low)
    assert expanded_levels(10_000, 0.95)[0] == pytest.approx(0.025, abs=1e-4)  # large n: percentile
    x = np.random.default_rng(0).normal(size=10)
    wide = bootstrap_ci(x, "mean", method="expanded", seed=1)
    narrow = bootstrap_ci(x, "mean", method="percentile", seed=1)
    assert wide.low < narrow.low and wide.high > narrow.high


def test_seed_is_honoured_in_both_directions():
    x = np.random.default_rng(2).normal(size=10)
    for method in ("percentile", "bca", "expanded"):
        same = bootstrap_ci(x, "median", method=method, seed=7), bootstrap_ci(x, "median", method=method, seed=7)
        assert same[0] == same[1]
        other = bootstrap_ci(x, "mean", method=method, seed=8)
        assert (other.low, other.high) != (bootstrap_ci(x, "mean", method=method, seed=7).low,
                                                 bootstrap_ci(x, "mean", method=method, seed=7).high)
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    assert bootstrap_ci(x, seed=g1) == bootstrap_ci(x, seed=g2)
    assert bootstrap_ci(x, seed=g1) != bootstrap_ci(x, seed=np.random.default_rng(9))  # g1 advanced
    s1 = bootstrap_intervals({"a": x}, seed=4)
    assert s1 == bootstrap_intervals({"a": x}, seed=4)
    assert s1 != bootstrap_intervals({"a": x}, seed=5)


def test_global_rngs_are_untouched():
    np.random.seed(123)
    random.seed(123)
    torch.manual_seed(123)
    before = (np.random.get_state()[1].copy(), random.getstate(), torch.random.get_rng_state().clone())
    bootstrap_intervals({"a": np.arange(10.0), "b": np.arange(10.0) ** 2}, seed=0)
    bootstrap_ci(np.arange(10.0), seed=np.random.default_rng(0))
    assert np.array_equal(np.random.get_state()[1], before[0])
    assert random.getstate() == before[1]
    assert torch.equal(torch.random.get_rng_state(), before[2])


def test_other_candidates_do_not_change_a_candidates_intervals():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 10))
    alone = bootstrap_intervals({"a": a}, seed=1)["a"]
    together = bootstrap_intervals({"c": c, "b": b, "a": a}, seed=1)["a"]
    assert alone == together


def test_bootstrap_intervals_shape_and_contents():
    x = np.random.default_rng(0).normal(0.9, 0.01, 10)
    r = bootstrap_intervals({"a": x}, ("mean", "median", "iqm", "std"), seed=0)["a"]
    for stat in ("mean", "median", "iqm", "std"):
        entry = r[stat]
        assert entry["estimate"] == pytest.approx(SCIPY_STATS[stat](x, axis=-1))
        for method in ("percentile", "expanded", "bca"):
            assert entry[method]["low"] <= entry[method]["high"]
    assert r["mean"]["expanded"]["low"] < r["mean"]["percentile"]["low"]


def test_degenerate_and_tiny_inputs():
    const = bootstrap_ci([0.5] * 6, "mean", method="bca", seed=0)
    assert (const.low, const.high, const.estimate) == (0.5, 0.5, 0.5)
    one = bootstrap_ci([0.5, np.nan], "mean", seed=0)
    assert one.estimate == 0.5 and one.low is None and one.dropped == 1
    assert "at least 2 seeds" in one.reason
    none = bootstrap_ci([np.nan], "mean")
    assert none.estimate is None and none.reason == "no finite score"
    r = bootstrap_intervals({"a": [0.7]})["a"]["mean"]
    assert r["estimate"] == 0.7 and "at least 2 seeds" in r["reason"]


def test_bca_falls_back_to_percentile_when_undefined():
    theta_b = np.linspace(0.0, 1.0, 101)
    outside = bca_interval(2.0, theta_b, np.array([1.0, 2.0, 3.0]), 0.9)
    assert outside["low"] is None and "outside the bootstrap distribution" in outside["reason"]
    both = intervals_from_distribution(2.0, theta_b, np.array([1.0, 2.0, 3.0]), 0.9)
    assert both["bca"]["low"] == both["percentile"]["low"] == pytest.approx(0.05)
    assert "percentile endpoints shown" in both["bca"]["reason"]
    undefined = bca_interval(0.5, theta_b, np.array([1.0, np.nan]), 0.9)
    assert undefined["low"] is None and "jackknife" in undefined["reason"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"confidence": 1.5}, ConfigError, "confidence"),
        ({"n_resamples": 1}, ConfigError, "n_resamples"),
        ({"method": "basic"}, ConfigError, "method"),
        ({"statistic": "mode"}, ConfigError, "statistic"),
        ({"seed": -1}, ConfigError, "seed"),
        ({"seed": 1.5}, ConfigError, "seed"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        bootstrap_ci([1.0, 2.0, 3.0], **kwargs)


def test_bad_data():
    with pytest.raises(DataError, match="shape"):
        bootstrap_ci(np.zeros((2, 2, 2)))
    with pytest.raises(DataError, match="one sample"):
        bootstrap_ci(np.zeros((2, 5)), "mean")
