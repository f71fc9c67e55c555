"""What the dumb baselines cost: the demo's twin run with the baselines on (the default) and off.

Both arms build and train the demo's three candidates on digits for 300 steps
(the whole TwinEngine run, evaluation included), interleaved (on, off, on, off,
...); the figure is the median of the per-round ratios, with their spread and the
load average. The baselines (the prior and a linear model of the 64 pixels) are
trained on the reference's batches and evaluated once, at the end.

    python benchmarks/bench_baselines.py              # 5 rounds
    python benchmarks/bench_baselines.py --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from twinrun.engine import TwinEngine
from twinrun.examples.digits import experiment
from twinrun.spec import resolve


def once(baselines: bool) -> float:
    start = time.perf_counter()
    TwinEngine(resolve(experiment, {"baselines": baselines}), measure_memory=False).run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    torch.set_num_threads(1)
    once(True)  # warm-up: imports, the first optimizer step
    ratios = []
    for _ in range(rounds):
        on, off = once(True), once(False)
        ratios.append(on / off)
    print(f"demo twin run, baselines on / off: median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}) over {rounds} rounds; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
