"""Reproducibility overheads: the ledger at its default cadence, and deterministic mode.

What a user would otherwise pick: training without a ledger, and without
deterministic mode. Each case is measured in one process on the bundled digits
demo (MLP, CNN and CNN+BatchNorm side by side, batch 64), runs interleaved
(A B A B ...) so that drifting machine load hits both alike:

* ledger: training time of ``engine.run()`` with a ``LedgerSink`` (default
  cadence, and every step) vs without; plus a direct measure, the time spent
  inside the sink itself relative to the rest of the same run (on a shared
  machine the wall-clock difference between runs is mostly noise, the direct
  measure is the figure to trust);
* deterministic mode: training time with ``deterministic=True`` vs ``False``.

Wall-clock ratios are paired per round (each case against the no-ledger run of
the same round) and the median over rounds is reported.

Usage::

    python benchmarks/bench_ledger.py                 # 5 rounds of 300 steps, about 3 minutes
    python benchmarks/bench_ledger.py --rounds 3 --steps 100 --threads 1
    python benchmarks/bench_ledger.py --only determinism --rounds 15 --steps 150 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

import twinrun
from twinrun.engine import TwinEngine
from twinrun.examples import DIGITS
from twinrun.ledger import DEFAULT_EVERY, LedgerSink
from twinrun.spec import resolve


class TimedLedgerSink(LedgerSink):
    """A LedgerSink that measures the time spent in its own per-event work."""

    seconds = 0.0

    def on_event(self, event: Any) -> None:
        start = time.perf_counter()
        super().on_event(event)
        self.seconds += time.perf_counter() - start


def run_once(experiment: Any, overrides: dict[str, Any], ledger_every: int | None) -> tuple[float, float]:
    """(training seconds of engine.run(), seconds inside the ledger sink)."""
    sinks = [] if ledger_every is None else [TimedLedgerSink(every=ledger_every)]
    engine = TwinEngine(resolve(experiment, overrides), sinks=sinks)
    start = time.perf_counter()
    engine.run()
    total = time.perf_counter() - start
    return total, sinks[0].seconds if sinks else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--only", choices=("ledger", "determinism"), help="run only these cases")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    experiment = twinrun.load_experiment(DIGITS)
    base = {"steps": args.steps}
    cases = {
        "no ledger": (base, None),
        f"ledger every {DEFAULT_EVERY} (default)": (base, DEFAULT_EVERY),
        "ledger every 10": (base, 10),
        "ledger every step": (base, 1),
        "deterministic mode, no ledger": ({**base, "deterministic": True}, None),
    }
    if args.only == "ledger":
        cases.pop("deterministic mode, no ledger")
    elif args.only == "determinism":
        cases = {k: v for k, v in cases.items() if k in ("no ledger", "deterministic mode, no ledger")}
    run_once(experiment, base, None)  # warm-up: imports, allocator, data
    times: dict[str, list[float]] = {name: [] for name in cases}
    inside: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(args.rounds):
        order = list(cases.items()) if round_ % 2 == 0 else list(reversed(cases.items()))  # ABBA
        for name, (overrides, every) in order:
            total, sink = run_once(experiment, overrides, every)
            times[name].append(total)
            inside[name].append(sink)
        print(f"round {round_ + 1}/{args.rounds}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()),
              flush=True)
    rows = []
    for name in cases:
        median = statistics.median(times[name])
        paired = [t / base - 1.0 for t, base in zip(times[name], times["no ledger"])]
        direct = [s / (t - s) for s, t in zip(inside[name], times[name])]
        rows.append({
            "case": name,
            "median_seconds": round(median, 4),
            "per_step_ms": round(1000 * median / args.steps, 3),
            "wall_vs_no_ledger": round(statistics.median(paired), 4),
            "sink_seconds": round(statistics.median(inside[name]), 5),
            "sink_share_of_training": round(statistics.median(direct), 5),
        })
    report = {"steps": args.steps, "rounds": args.rounds, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "rows": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"\ndigits demo, 3 candidates, {args.steps} steps, {args.rounds} interleaved rounds, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| case | training (median) | per step | wall vs no ledger (paired) | ledger sink time / rest of run |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        share = f"{r['sink_share_of_training']:.2%}" if r["sink_seconds"] else "-"
        print(f"| {r['case']} | {r['median_seconds']:.2f} s | {r['per_step_ms']:.1f} ms | "
              f"{r['wall_vs_no_ledger']:+.1%} | {share} |")


if __name__ == "__main__":
    main()
