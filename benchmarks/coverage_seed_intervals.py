"""Coverage of the seed statistics' 95 % intervals, measured by simulation with 10 seeds.

For each setting, 2,000 simulated sweeps of 10 seeds (seeded: the table is fixed),
2,000 bootstrap resamples per interval; the share of sweeps whose interval contains
the true value. With 2,000 sweeps one standard error is about 0.5 %.

* per-candidate mean, median, IQM under a normal, a heavy-tailed (t, 3 df) and a
  skewed (lognormal, sigma 0.5) seed distribution;
* the paired difference of two candidates sharing each seed's effect;
* P(A > B), paired and unpaired, at a true value of 0.5, 0.64 and 0.76 (paired).

    python benchmarks/coverage_seed_intervals.py           # about 2 minutes on 2 cores
    python benchmarks/coverage_seed_intervals.py --sweeps 500
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import stats as sps

from twinrun.stats import (
    bootstrap_intervals,
    mean_interval,
    paired_difference,
    probability_of_improvement,
)

SEEDS, RESAMPLES = 10, 2000
METHODS = ("t_skew", "t", "percentile", "expanded", "bca")
BOOTSTRAPS = METHODS[2:]


def _lognormal_truth(sigma: float) -> dict[str, float]:
    q1, q3 = sps.norm.ppf([0.25, 0.75])
    iqm = 2 * math.exp(sigma**2 / 2) * (sps.norm.cdf(q3 - sigma) - sps.norm.cdf(q1 - sigma))
    return {"mean": math.exp(sigma**2 / 2), "median": 1.0, "iqm": iqm}


DISTRIBUTIONS = {
    "normal": (lambda rng: rng.normal(0.0, 1.0, SEEDS), {"mean": 0.0, "median": 0.0, "iqm": 0.0}),
    "t3": (lambda rng: rng.standard_t(3, SEEDS), {"mean": 0.0, "median": 0.0, "iqm": 0.0}),
    "lognormal": (lambda rng: rng.lognormal(0.0, 0.5, SEEDS), _lognormal_truth(0.5)),
}


def candidate_coverage(sweeps: int) -> None:
    print(f"per-candidate intervals ({sweeps} sweeps of {SEEDS} seeds)")
    print(f"{'data':<10} {'statistic':<8} " + " ".join(f"{m:>10}" for m in METHODS))
    for name, (draw, truth) in DISTRIBUTIONS.items():
        rng = np.random.default_rng(7)
        hits = {(s, m): 0 for s in truth for m in METHODS}
        for _ in range(sweeps):
            x = draw(rng)
            boot = bootstrap_intervals({"x": x}, n_resamples=RESAMPLES, seed=rng)["x"]
            t = mean_interval(x)
            hits[("mean", "t_skew")] += t.low <= truth["mean"] <= t.high
            hits[("mean", "t")] += t.t.low <= truth["mean"] <= t.t.high
            for stat in truth:
                for method in BOOTSTRAPS:
                    hits[(stat, method)] += boot[stat][method]["low"] <= truth[stat] <= boot[stat][method]["high"]
        for stat in truth:
            cells = [f"{hits[(stat, m)] / sweeps:>10.3f}" if (stat == "mean" or m in BOOTSTRAPS) else f"{'':>10}"
                     for m in METHODS]
            print(f"{name:<10} {stat:<8} " + " ".join(cells))


def difference_coverage(sweeps: int) -> None:
    rng = np.random.default_rng(8)
    hits = dict.fromkeys(METHODS, 0)
    for _ in range(sweeps):
        shared = rng.normal(0, 0.01, SEEDS)
        a = 0.90 + shared + rng.normal(0, 0.004, SEEDS)
        b = 0.88 + shared + rng.normal(0, 0.004, SEEDS)
        r = paired_difference(a, b, n_resamples=RESAMPLES, seed=rng).intervals
        for m in METHODS:
            hits[m] += r[m]["low"] <= 0.02 <= r[m]["high"]
    print(f"\npaired difference ({sweeps} sweeps): " + ", ".join(f"{m} {v / sweeps:.3f}" for m, v in hits.items()))


def improvement_coverage(sweeps: int) -> None:
    print(f"\nP(A > B) ({sweeps} sweeps; shared seed effect sd 1, own noise sd 1)")
    kinds = ("score", "exact", *BOOTSTRAPS)
    print(f"{'pairing':<9} {'truth':>6} " + " ".join(f"{m:>10}" for m in kinds))
    for delta in (0.0, 0.5, 1.0):
        truth = {"paired": sps.norm.cdf(delta / math.sqrt(2)), "unpaired": sps.norm.cdf(delta / 2)}
        for pairing in ("paired", "unpaired"):
            rng = np.random.default_rng(9)
            hits = dict.fromkeys(kinds, 0)
            for _ in range(sweeps):
                shared = rng.normal(size=SEEDS)
                a, b = delta + shared + rng.normal(size=SEEDS), shared + rng.normal(size=SEEDS)
                r = probability_of_improvement(a, b, pairing=pairing, n_resamples=RESAMPLES, seed=rng)
                for m in hits:
                    if m in r.intervals:
                        hits[m] += r.intervals[m]["low"] <= truth[pairing] <= r.intervals[m]["high"]
            print(f"{pairing:<9} {truth[pairing]:>6.3f} " + " ".join(
                f"{v / sweeps:>10.3f}" if pairing == "paired" or m in BOOTSTRAPS else f"{'':>10}"
                for m, v in hits.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=2000)
    args = parser.parse_args()
    candidate_coverage(args.sweeps)
    difference_coverage(args.sweeps)
    improvement_coverage(args.sweeps)


if __name__ == "__main__":
    main()
