"""Per-step against per-run cost of a twin run, next to the lean loop and separate runs.

Each contender (``bench_vectorised``'s ``twin``, ``lean`` and ``separate``, MLP
64-128-10, N candidates) runs at 100 and at 400 steps, interleaved, for
``--rounds`` rounds. The slope of the two times is the cost of one step; what
is left at zero steps is the cost of one run (building, evaluation, probes).
Medians of the rounds, with each round's per-step figure.

    python benchmarks/bench_step_slope.py --n 8
    python benchmarks/bench_step_slope.py --n 2 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import bench_vectorised as bench
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8, help="candidates (default 8)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench.twin(bench.MLP, args.n, 20, 0)  # warm-up
    contenders = {"twinrun": bench.twin, "lean": bench.lean, "separate": bench.separate}
    fits: dict[str, list[tuple[float, float]]] = {k: [] for k in contenders}
    print(f"load {os.getloadavg()[0]:.2f}")
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            times = {}
            for steps in (100, 400):
                start = time.perf_counter()
                fn(bench.MLP, args.n, steps, 0)
                times[steps] = time.perf_counter() - start
            per_step = (times[400] - times[100]) / 300
            fits[name].append((per_step, times[100] - 100 * per_step))
    for name, rows in fits.items():
        steps = [round(r[0] * 1e6) for r in rows]
        fixed = statistics.median(r[1] for r in rows) * 1e3
        print(f"{name:9s} per step {statistics.median(steps):7.0f} us {steps}  per run {fixed:6.1f} ms")
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
