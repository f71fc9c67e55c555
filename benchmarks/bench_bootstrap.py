"""Seed statistics: 50,000 bootstrap resamples for 10 seeds x 5 candidates, against scipy.

The work, for a sweep of 10 seeds and 5 candidates (one reference):

* per candidate: mean, median and IQM, each with percentile, expanded percentile
  and BCa intervals (BCa needs the jackknife);
* per candidate against the reference (4 comparisons, seeds resampled in pairs):
  the mean paired difference and the probabilities of improvement P(A > B),
  paired (same seed) and unpaired (cross-seed pairs), each with the three intervals.

twinrun does it in one call, ``analyze_seeds(scores, n_resamples=50_000)``, which
also runs the t-tests, Holm, the seed-count estimates and the recommendation.
The alternative a user would pick is ``scipy.stats.bootstrap`` with vectorised
statistics: one BCa call per statistic (its bootstrap distribution then gives the
percentile and expanded intervals without resampling again). Both resample
50,000 times per statistic group; the ratio is scipy's time over twinrun's.

    python benchmarks/bench_bootstrap.py              # 5 repeats, about a minute on 2 cores
    python benchmarks/bench_bootstrap.py --repeats 1  # a smoke test
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from scipy import stats as sps

import twinrun
from twinrun.stats._bootstrap import expanded_levels

SEEDS, CANDIDATES, RESAMPLES = 10, 5, 50_000


def sweep(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 0.01, SEEDS)
    return {f"c{i}": 0.90 + 0.003 * i + shared + rng.normal(0, 0.004, SEEDS) for i in range(CANDIDATES)}


def with_twinrun(scores: dict[str, np.ndarray]) -> dict:
    return twinrun.analyze_seeds(scores, higher_is_better=True, n_resamples=RESAMPLES, seed=0)


def _iqm(x, axis=-1):
    return sps.trim_mean(x, 0.25, axis=axis)


def _wins(a, b):
    return (a > b) + 0.5 * (a == b)


def _paired_win(a, b, axis=-1):
    return np.mean(_wins(a, b), axis=axis)


def _unpaired_win(a, b, axis=-1):
    w = _wins(a[..., :, None], b[..., None, :])
    n = a.shape[-1]
    off_diagonal = ~np.eye(n, dtype=bool)
    return (w * off_diagonal).sum(axis=(-2, -1)) / (n * (n - 1))


def _mean_diff(a, b, axis=-1):
    return np.mean(a - b, axis=axis)


def _three_intervals(data, statistic, paired: bool, rng) -> dict:
    res = sps.bootstrap(data, statistic, paired=paired, method="BCa", n_resamples=RESAMPLES, rng=rng)
    dist = res.bootstrap_distribution
    low, high = np.quantile(dist, [0.025, 0.975])
    e_low, e_high = np.quantile(dist, expanded_levels(SEEDS, 0.95))
    return {"bca": tuple(res.confidence_interval), "percentile": (low, high), "expanded": (e_low, e_high)}


def with_scipy(scores: dict[str, np.ndarray]) -> dict:
    rng = np.random.default_rng(0)
    out: dict = {}
    for name, x in scores.items():
        for stat_name, stat in (("mean", np.mean), ("median", np.median), ("iqm", _iqm)):
            out[(name, stat_name)] = _three_intervals((x,), stat, False, rng)
    ref = scores["c0"]
    for name, x in scores.items():
        if name == "c0":
            continue
        for stat_name, stat in (("diff", _mean_diff), ("paired", _paired_win), ("unpaired", _unpaired_win)):
            out[(name, stat_name)] = _three_intervals((x, ref), stat, True, rng)
    return out


def timed(fn, scores, repeats: int) -> list[float]:
    fn(scores)  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(scores)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    scores = sweep()
    ours = timed(with_twinrun, scores, args.repeats)
    theirs = timed(with_scipy, scores, args.repeats)
    result = {
        "seeds": SEEDS, "candidates": CANDIDATES, "resamples": RESAMPLES,
        "twinrun_s": statistics.median(ours), "twinrun_min_s": min(ours),
        "scipy_s": statistics.median(theirs), "scipy_min_s": min(theirs),
    }
    result["speedup"] = result["scipy_s"] / result["twinrun_s"]
    print(f"{SEEDS} seeds x {CANDIDATES} candidates, {RESAMPLES} resamples, median of {args.repeats}:")
    print(f"  twinrun.analyze_seeds   {result['twinrun_s']:.3f} s (target <= 1 s)")
    print(f"  scipy.stats.bootstrap   {result['scipy_s']:.3f} s")
    print(f"  ratio scipy / twinrun   {result['speedup']:.1f}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
