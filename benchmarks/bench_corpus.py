"""Time the whole default check suite on each model of the real-code corpus (tests/corpus/models.py).

    PYTHONPATH=src python benchmarks/bench_corpus.py --repeats 3 [--threads 1] [--markdown]

Each model is checked in-process with ``twinrun.checks.run_checks`` (registry off), clean and with its planted bug.
Prints per model: the median seconds over the repeats, the statuses of every check (seed 0), the alarms on
the clean model over ``--seeds`` run seeds, and whether the planted bug was caught by its check. The issue's budget: 60 s per model on 2 quiet cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "corpus"))

import twinrun  # noqa: E402
from models import CAUGHT_BY, CORPUS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--seeds", type=int, default=1, help="also count alarms on the clean models over seeds 1..N-1")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    load = os.getloadavg()[0]
    rows = []
    for name, build in CORPUS.items():
        times, report = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            report = twinrun.checks.run_checks(**build(), registry=False)
            times.append(time.perf_counter() - start)
        assert report is not None
        counts = {s: len(report.by_status(s)) for s in ("pass", "warn", "fail", "skip")}
        alarms = ", ".join(f"{r.name} {r.status}" for r in report.by_status("warn", "fail")) or "none"
        check, _ = CAUGHT_BY[name]
        bug = twinrun.checks.run_checks(**build(bug=True), registry=False, only=[check])[check]
        for seed in range(1, args.seeds):
            pieces = build()
            pieces["settings"] = {**pieces.get("settings", {}), "seed": seed}
            other = twinrun.checks.run_checks(**pieces, registry=False)
            more = ", ".join(f"{r.name} {r.status} (seed {seed})" for r in other.by_status("warn", "fail"))
            alarms = more if alarms == "none" and more else (alarms + ", " + more if more else alarms)
        rows.append((name, statistics.median(times), min(times), max(times), counts, alarms, check, bug.status))
        print(f"{name}: {statistics.median(times):.1f} s {counts} alarms: {alarms}; bug -> {check} {bug.status}",
              file=sys.stderr)
    print(f"_torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"1-minute load average {load:.1f} before, {os.getloadavg()[0]:.1f} after; median of {args.repeats}_\n")
    print(f"| model | seconds (median, range) | pass / skip / warn / fail | alarms on the clean model (seeds 0-{args.seeds - 1}) | "
          "planted bug: check, status |")
    print("| --- | ---: | --- | --- | --- |")
    for name, med, lo, hi, c, alarms, check, status in rows:
        print(f"| {name} | {med:.1f} ({lo:.1f}-{hi:.1f}) | {c['pass']} / {c['skip']} / {c['warn']} / {c['fail']} | "
              f"{alarms} | `{check}` {status} |")


if __name__ == "__main__":
    main()
