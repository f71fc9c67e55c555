"""Benchmark: the whole ``twinrun check`` suite on the demo's CNN, against its 60-second budget.

Measures, on this machine with torch's default threads (what a user gets):

* in-process: ``twinrun.check(digits.py, "cnn")``, per check and in total (setup = loading the
  data and building the candidate; shared = the short trainings several checks share);
* end to end: ``twinrun check digits.py --candidate cnn`` as a fresh process (imports included).

The ratio is the measured time over the 60 s budget of issue 6 (lower is better).

    PYTHONPATH=src python benchmarks/bench_checks.py [--repeats 3] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import twinrun
from twinrun.examples import DIGITS

BUDGET_S = 60.0


def in_process(outdir: Path) -> twinrun.checks.CheckReport:
    return twinrun.check(DIGITS, "cnn", outdir=outdir)


def end_to_end(outdir: Path) -> float:
    source = str(Path(twinrun.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "twinrun", "check", str(DIGITS), "--candidate", "cnn", "-q",
                           "--outdir", str(outdir)], capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"twinrun check failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table for BENCHMARKS.md")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice, as a user gets)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for the end-to-end process
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        in_process(Path(tmp) / "warm-up")  # imports, first-call costs
        reports = [in_process(Path(tmp) / f"run{i}") for i in range(args.repeats)]
        walls = [end_to_end(Path(tmp) / f"cli{i}") for i in range(args.repeats)]
    names = [r.name for r in reports[0].results]
    per_check = {n: statistics.median(rep[n].seconds for rep in reports) for n in names}
    status = {n: reports[0][n].status for n in names}
    timing = {k: statistics.median(rep.timing[k] for rep in reports) for k in reports[0].timing}
    wall = statistics.median(walls)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = (f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
              f"1-minute load average {load_before:.1f} before, {load:.1f} after; median of {args.repeats}")
    if args.markdown:
        print(f"_{header}_\n")
        print("| check | status | seconds |")
        print("| --- | --- | ---: |")
        for n in names:
            print(f"| `{n}` | {status[n]} | {per_check[n]:.3f} |")
        print(f"| shared work: short trainings and the schedule simulation, computed once | | "
              f"{timing['shared_training']:.3f} |")
        print(f"| setup (data, candidate, preflight) | | {timing['setup']:.3f} |")
        print(f"| **total, in-process** | | **{timing['total']:.2f}** |")
        print(f"| **total, `twinrun check` process (imports included)** | | **{wall:.2f}** |")
        print(f"\nratio to the 60 s budget: in-process {timing['total'] / BUDGET_S:.3f}, "
              f"end to end {wall / BUDGET_S:.3f}")
        return
    print(header)
    for n in names:
        print(f"  {n:22} {status[n]:5} {per_check[n]:7.3f} s")
    print(f"  {'shared trainings':22} {'':5} {timing['shared_training']:7.3f} s")
    print(f"  {'setup':22} {'':5} {timing['setup']:7.3f} s")
    print(f"total in-process {timing['total']:.2f} s = {timing['total'] / BUDGET_S:.3f} x budget; "
          f"end to end {wall:.2f} s = {wall / BUDGET_S:.3f} x budget (60 s)")


if __name__ == "__main__":
    main()
