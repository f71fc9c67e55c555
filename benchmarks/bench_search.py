"""Twin search against independent search at the same compute, on a problem whose answer is known.

The problem: digits, the demo's MLP, AdamW for 120 steps, and six learning rates a factor
of about 3 apart (1.6e-3 ... 0.4), the best of which is ahead of its neighbours by one or
two seed-to-seed standard deviations of a single run. The true best is the rate with the lowest mean validation
loss over ``--truth-seeds`` seeds, measured first. Then, ``--repeats`` times, every arm
ranks the six rates and picks one:

* **twin** (one seed): the six rates as the trials of one batch of ``twinrun search``, one
  twin run: same initial weights, same batches; the pick is the lowest validation loss;
* **independent** (k seeds per trial, k = 1, 2, 4): each rate trained in runs of its own,
  each with its own seed (what a search that runs its trials apart does); the pick is the
  lowest mean validation loss over its k runs.

Success: the pick is the true best. Compute is counted in trial-runs (6 per seed).

    python benchmarks/bench_search.py                   # 20 repeats, about 7 minutes on 2 cores
    python benchmarks/bench_search.py --repeats 5       # a quicker look
"""

from __future__ import annotations

import argparse
import os
import statistics
import warnings

import numpy as np
import torch

from twinrun.engine import TwinEngine
from twinrun.examples.digits import experiment as digits
from twinrun.spec import resolve

RATES = [float(r) for r in np.geomspace(1.6e-3, 0.4, 6)]
STEPS = 120
BASE = digits.replace(scheduler=None, augment=None, steps=STEPS, eval_every=STEPS, ledger_every=None,
                      baselines=False)


def _losses(rates: list[float], seed: int) -> list[float]:
    """The validation loss of each rate, trained as twins in one run with ``seed``."""
    exp = BASE.replace(candidates={f"lr{i}": {"optimizer.lr": r} for i, r in enumerate(rates)})
    result = TwinEngine(resolve(exp, {"seed": seed}), measure_memory=False).run()
    return [result.candidates[f"lr{i}"].final["loss"] for i in range(len(rates))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--truth-seeds", type=int, default=16)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    truth = {r: statistics.mean(_losses([r], 500 + s)[0] for s in range(args.truth_seeds)) for r in RATES}
    best = min(truth, key=truth.__getitem__)
    spread = statistics.stdev(_losses([best], 900 + s)[0] for s in range(8))
    print(f"mean validation loss over {args.truth_seeds} seeds: "
          + ", ".join(f"{r:.3g}: {v:.4f}" for r, v in truth.items())
          + f" -> best {best:.3g}; seed sd of the best: {spread:.4f}")
    wins = {"twin, 1 seed": 0, "independent, 1 seed": 0, "independent, 2 seeds": 0, "independent, 4 seeds": 0}
    second = sorted(truth, key=truth.__getitem__)[1]
    gaps: dict[str, list[float]] = {"twin": [], "independent": []}  # runner-up minus best, per repeat
    b, r2 = RATES.index(best), RATES.index(second)
    for rep in range(args.repeats):
        twin = _losses(RATES, 1000 + rep)
        wins["twin, 1 seed"] += RATES[int(np.argmin(twin))] == best
        gaps["twin"].append(twin[r2] - twin[b])
        for k in (1, 2, 4):
            runs = [[_losses([r], 2000 + 7919 * rep + 101 * i + 13 * s)[0] for s in range(k)]
                    for i, r in enumerate(RATES)]
            means = [statistics.mean(v) for v in runs]
            wins[f"independent, {k} seed{'s' if k > 1 else ''}"] += RATES[int(np.argmin(means))] == best
            if k == 1:
                gaps["independent"].append(runs[r2][0] - runs[b][0])
    n = args.repeats
    print(f"{n} repeats; load {os.getloadavg()[0]:.1f}")
    sd = {arm: statistics.stdev(v) for arm, v in gaps.items()}
    print(f"runner-up {second:.3g} minus best, one seed: twin sd {sd['twin']:.4f}, independent sd "
          f"{sd['independent']:.4f} (pairing removes {1 - sd['twin'] ** 2 / sd['independent'] ** 2:.0%} of its variance)")
    for arm, w in wins.items():
        runs = 6 * (1 if arm.startswith("twin") else int(arm.split(", ")[1].split()[0]))
        print(f"  {arm:<22} picked the true best in {w:>3}/{n} ({w / n:.0%}) for {runs} trial-runs")


if __name__ == "__main__":
    main()
