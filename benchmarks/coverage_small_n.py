"""Coverage of the headline intervals at 3, 5, 10 and 30 seeds: covered, or withheld.

The intervals twinrun reports as ``low``/``high`` for a candidate's mean (t,
widened where the seeds are skewed), median (exact order statistics), IQM
(percentile bootstrap, reported from 10 seeds) and P(A > B) (paired, Wilson's
score interval), and for the paired difference (the same interval as the mean of
the per-seed differences); the plain t interval is shown beside the mean's. Four seed distributions:
normal; near-ceiling (an accuracy of 1 - Beta(1, 30)); heavy-tailed (t, 3 df);
and a bad-seed mixture (one seed in ten fails: N(0, 1) with probability 0.9,
N(-8, 1) with 0.1). True values from 2 million draws. Seeded: the table is fixed.

    python benchmarks/coverage_small_n.py                 # about 2 minutes on 2 cores
    python benchmarks/coverage_small_n.py --sweeps 400    # a quicker look
"""

from __future__ import annotations

import argparse

import numpy as np

from twinrun.stats import mean_interval, probability_of_improvement
from twinrun.stats._analyze import IQM_MIN_SEEDS, median_interval
from twinrun.stats._bootstrap import _candidate_intervals
from twinrun.stats._improvement import clopper_pearson, wilson

SIZES = (3, 5, 10, 30)


def _mixture(rng: np.random.Generator, n: int) -> np.ndarray:
    bad = rng.random(n) < 0.1
    return np.where(bad, rng.normal(-8.0, 1.0, n), rng.normal(0.0, 1.0, n))


DISTRIBUTIONS = {
    "normal": lambda rng, n: rng.normal(0.0, 1.0, n),
    "near-ceiling": lambda rng, n: 1.0 - rng.beta(1.0, 30.0, n),
    "t3": lambda rng, n: rng.standard_t(3, n),
    "bad-seed": _mixture,
}


def _truth(draw) -> dict[str, float]:
    x = np.sort(draw(np.random.default_rng(99), 2_000_000))
    q1, q3 = np.quantile(x, [0.25, 0.75])
    shift = 0.3 * x.std()  # a paired difference: the same distribution around a true gain
    return {"mean": float(x.mean()), "median": float(np.median(x)),
            "iqm": float(x[(x >= q1) & (x <= q3)].mean()),
            "p_better": float(np.mean(x - x.mean() + shift > 0)), "shift": float(shift)}


def run(sweeps: int) -> None:
    print(f"coverage of the headline 95% intervals ({sweeps} simulated sweeps per cell; '-': withheld)")
    print(f"{'distribution':<13} {'seeds':>5} {'mean':>8} {'t alone':>8} {'median':>8} {'IQM':>8} {'P(A>B)':>8}")
    for name, draw in DISTRIBUTIONS.items():
        truth = _truth(draw)
        for n in SIZES:
            rng = np.random.default_rng(7 + n)
            hits = {"mean": 0, "t": 0, "median": 0, "iqm": 0, "p": 0}
            shown = {"median": 0, "iqm": 0}
            for _ in range(sweeps):
                x = draw(rng, n)
                t = mean_interval(x)
                hits["mean"] += t.low <= truth["mean"] <= t.high
                hits["t"] += t.t.low <= truth["mean"] <= t.t.high
                m = median_interval(x)
                if m["low"] is not None:
                    shown["median"] += 1
                    hits["median"] += m["low"] <= truth["median"] <= m["high"]
                if n >= IQM_MIN_SEEDS:
                    iqm = _candidate_intervals(x, ("iqm",), 0.95, 1000, rng)["iqm"]["percentile"]
                    shown["iqm"] += 1
                    hits["iqm"] += iqm["low"] <= truth["iqm"] <= iqm["high"]
                d = x - truth["mean"] + truth["shift"]
                p = probability_of_improvement(d, np.zeros(n), n_resamples=20, seed=rng)
                hits["p"] += p.low <= truth["p_better"] <= p.high

            def cell(key: str, total: int, hits: dict[str, int] = hits) -> str:
                return f"{hits[key] / total:8.3f}" if total else f"{'-':>8}"

            print(f"{name:<13} {n:>5} {hits['mean'] / sweeps:8.3f} {hits['t'] / sweeps:8.3f} "
                  f"{cell('median', shown['median'])} "
                  f"{cell('iqm', shown['iqm'])} {hits['p'] / sweeps:8.3f}")


def binomial_coverage() -> None:
    """P(A > B) paired is a binomial share: its coverage, exactly, averaged over true values."""
    from scipy import stats as sps

    truths = np.linspace(0.5, 0.95, 91)
    print("\nP(A>B) paired, exact coverage averaged over true values 0.50-0.95 (min-max over them)")
    print(f"{'seeds':>5} {'score (headline)':>22} {'exact':>22}")
    for n in SIZES:
        cells = []
        for interval in (wilson, clopper_pearson):
            bounds = [interval(k, n, 0.95) for k in range(n + 1)]
            cover = [sum(sps.binom.pmf(k, n, p) for k, (lo, hi) in enumerate(bounds) if lo <= p <= hi)
                     for p in truths]
            cells.append(f"{np.mean(cover):.3f} ({min(cover):.3f}-{max(cover):.3f})")
        print(f"{n:>5} {cells[0]:>22} {cells[1]:>22}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=2000)
    run(parser.parse_args().sweeps)
    binomial_coverage()
