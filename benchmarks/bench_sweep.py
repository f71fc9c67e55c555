"""Seed sweeps: a 4-seed sweep of the demo with ``--jobs 2`` against the same seeds one after another.

Every case is ``twinrun.run_sweep`` on the bundled digits experiment (a fresh
process per seed, the registry, saved outputs, the analysis), in fresh homes,
interleaved and repeated:

* ``parallel``: ``--jobs 2`` (1 thread per seed, the default cores // jobs);
* ``sequential``: ``--jobs 1`` (2 threads per seed, the default), what a user
  gets running the seeds one after another;
* ``sequential, 1 thread``: ``--jobs 1 --threads 1``, the same work per seed as
  ``parallel``, so the ratio is the parallelism alone.

The figures are the wall-clock ratios sequential / parallel. ``--compare-loop``
adds a shell loop of ``twinrun demo --seed S`` (torch's default thread count,
no analysis).

    PYTHONPATH=src python benchmarks/bench_sweep.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twinrun.examples import DIGITS
from twinrun.sweeps import Execution, local_cores, run_sweep


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def sweep_seconds(jobs: int, threads: int | None, seeds: int, steps: int) -> tuple[float, dict[str, object]]:
    with tempfile.TemporaryDirectory() as home:
        t0 = time.perf_counter()
        result = run_sweep(DIGITS, seeds=seeds, execution=Execution(jobs=jobs, threads=threads),
                           overrides={"steps": steps}, home=home, progress=False)
        seconds = time.perf_counter() - t0
        assert result.ok, [r.error for r in result.failed]
        per_seed = [o.seconds for o in result.ran]
        return seconds, {"threads": result.execution["threads"], "seed_seconds": per_seed,
                         "recommendation": result.analysis["recommendation"]}


def compare_loop_seconds(seeds: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "TWINRUN_HOME": home}
        t0 = time.perf_counter()
        for seed in range(seeds):
            subprocess.run([sys.executable, "-m", "twinrun", "demo", "--seed", str(seed), "--steps", str(steps),
                            "-q", "--no-tensorboard", "--json"], env=env, check=True, capture_output=True)
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300, help="training steps per seed (the demo's 300)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare-loop", action="store_true",
                        help="also time a loop of `twinrun demo --seed S` (torch's default threads)")
    parser.add_argument("--json", metavar="FILE", help="write the measurements here")
    args = parser.parse_args()
    print(f"{local_cores()} cores · {args.seeds} seeds of the digits demo · {args.steps} steps each")
    cases = [("sequential", 1, None), ("parallel", args.jobs, None), ("sequential, 1 thread", 1, 1)]
    rows: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    rows["compare loop"] = []
    details = []
    for r in range(args.repeats):
        order = cases[r % len(cases):] + cases[: r % len(cases)]  # each case first in turn
        for name, jobs, threads in order:
            before = _load()
            seconds, info = sweep_seconds(jobs, threads, args.seeds, args.steps)
            rows[name].append(seconds)
            details.append({"repeat": r, "case": name, "jobs": jobs, "seconds": seconds,
                            "load_before": before, "load_after": _load(), **info})
            print(f"repeat {r}: {name:21s} jobs={jobs} threads/seed={info['threads']} "
                  f"{seconds:6.1f} s  (load {before} -> {_load()})", flush=True)
        if args.compare_loop:
            before = _load()
            seconds = compare_loop_seconds(args.seeds, args.steps)
            rows["compare loop"].append(seconds)
            details.append({"repeat": r, "case": "compare loop", "seconds": seconds, "load_before": before,
                            "load_after": _load()})
            print(f"repeat {r}: compare loop {seconds:6.1f} s  (load {before} -> {_load()})", flush=True)
    print()
    print("| case | median | min | max |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in rows.items():
        if values:
            print(f"| {name} | {statistics.median(values):.1f} s | {min(values):.1f} s | {max(values):.1f} s |")
    ratios = {}
    for name in ("sequential", "sequential, 1 thread"):
        ratios[name] = [s / p for s, p in zip(rows[name], rows["parallel"])]
        print(f"\n{name} / parallel, per repeat: {', '.join(f'{x:.2f}' for x in ratios[name])}; "
              f"median {statistics.median(ratios[name]):.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": details, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
