"""What spreading candidates over devices costs where it cannot help: on one CPU.

On a machine with several GPUs, ``devices`` lets N candidates train at once
(``gpu_truths.py`` measures that where a GPU is lent). Here there is one CPU,
so the figures are the bookkeeping alone, each a ratio against the same run
without it, interleaved (A, B, A, B ...), the median of the rounds with
min..max and the machine's load:

* ``waves / one after another``: the sequential executor stepping the demo's
  three candidates in waves (``overlap=True``: forwards queued, then losses
  read, then backwards and updates) against its usual loop;
* ``two device names / one``: the whole run with ``devices="cpu,cpu:0"``
  (every batch handed out per device, each candidate evaluated on its own)
  against the same run on ``cpu``.

    python benchmarks/bench_placement.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import torch

from twinrun.engine import TwinEngine
from twinrun.engine._executor import SequentialExecutor
from twinrun.examples.digits import experiment as DIGITS
from twinrun.spec import resolve


def _seconds(overrides: dict[str, Any], executor: SequentialExecutor | None = None) -> float:
    engine = TwinEngine(resolve(DIGITS, {"ledger_every": None, "baselines": False, **overrides}), executor=executor)
    start = time.perf_counter()
    engine.run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = {"steps": args.steps, "executor": "sequential"}
    load = [os.getloadavg()[0]]
    contenders = {
        "waves / one after another": (lambda: _seconds(base, SequentialExecutor(overlap=True)),
                                      lambda: _seconds(base, SequentialExecutor())),
        "two device names / one": (lambda: _seconds({**base, "devices": "cpu,cpu:0"}), lambda: _seconds(base)),
    }
    pairs: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for r in range(args.rounds):
        for name, (a, b) in contenders.items():  # A and B interleaved, their order alternating by round
            first, second = (a, b) if r % 2 == 0 else (b, a)
            t1, t2 = first(), second()
            pairs[name].append((t1, t2) if r % 2 == 0 else (t2, t1))
    load.append(os.getloadavg()[0])
    report = {"steps": args.steps, "rounds": args.rounds, "load": load, "torch": torch.__version__}
    for name, values in pairs.items():
        ratios = [x / y for x, y in values]
        report[name] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
                        "seconds_b": statistics.median(y for _, y in values)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
