"""``twinrun repro``: run an experiment twice, prove it bit-identical or show where it broke."""

from __future__ import annotations

import argparse
import sys
import time

from twinrun.cli._common import RawHelp, add_home, add_json, add_overrides, print_json

#: the factors ``twinrun repro --vary`` takes (``twinrun.proof.FACTORS``; a literal so that ``--help`` needs no torch)
FACTORS = ("threads", "hashseed", "deterministic", "seed", "device")
from twinrun.spec import parse_overrides

HELP = """\
Run an experiment twice, each time in a fresh process, and compare the two
runs' ledgers (control sums of initial weights, every batch, every loss, the
weights every few steps and the RNG states). Prints "bit-identical" or the
first divergence: step, candidate, what diverged first (batch, weights, loss,
RNG state), the tensor's name and the max absolute difference. A divergence
seen at the ledger's cadence is narrowed down by reruns to its exact step.

Vary one factor on purpose to learn whether it breaks reproducibility:
  --vary threads=1,2      intra-op thread count (OMP_NUM_THREADS, torch.set_num_threads)
  --vary hashseed=0,1     PYTHONHASHSEED: iteration order of sets of strings
  --vary deterministic    deterministic mode off vs on (also reports its cost)
  --vary seed=0,1         the run seed (a different sample; diverges at init)
  --vary device           cuda:0 vs cuda:1 (or --vary device=cpu,cuda:0)

A data-parallel run:
  --nproc N               each run under torchrun --nproc_per_node N (gloo on the
                          CPU); the ledgers are compared rank by rank and the
                          divergence names the rank whose records parted first

How much nondeterminism alone moves the result:
  --times N               N alike runs; the spread of each candidate's final
                          metrics, against the seed spread of the newest sweep
                          of the experiment in the registry (twinrun seeds)

examples:
  twinrun repro exp.py
  twinrun repro exp.py --vary hashseed --steps 50
  twinrun repro exp.py --vary threads=1,2 --candidates small --json
  twinrun repro exp.py --times 5 --set device=cuda
  twinrun repro exp.py --nproc 2 --steps 20

exit status: 0 bit-identical, 1 the runs diverged (with --times: a spread), 2 bad input
or a run failed.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "repro",
        help="run twice in fresh processes: bit-identical, or where they part",
        description=HELP,
        formatter_class=RawHelp,
    )
    p.add_argument("experiment", metavar="FILE", help="experiment file (path.py, or path.py:NAME to pick one)")
    p.add_argument("--vary", metavar="FACTOR[=A,B]", help=f"vary one factor between the runs: {', '.join(FACTORS)}")
    add_overrides(p)
    p.add_argument(
        "--times",
        type=int,
        metavar="N",
        help="run N times alike and report the spread of the final metrics (nondeterminism alone)",
    )
    p.add_argument("--candidates", metavar="A,B", help="run only these candidates (comma-separated)")
    p.add_argument("--steps", type=int, metavar="N", help="training steps (same as --set steps=N)")
    p.add_argument(
        "--no-narrow", action="store_true", help="report the divergence as the ledgers show it, without reruns"
    )
    p.add_argument(
        "--parallel",
        action="store_true",
        help="run both sides at the same time (faster; training times less comparable)",
    )
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="run each side under torchrun --nproc_per_node N and compare the ledgers rank by rank",
    )
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="time limit for each run")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    add_home(p)
    add_json(p)
    p.set_defaults(handler=run_repro)


def run_repro(args: argparse.Namespace) -> int:
    overrides = parse_overrides(args.overrides)
    if args.steps is not None:
        overrides["steps"] = args.steps
    candidates = [c.strip() for c in args.candidates.split(",") if c.strip()] if args.candidates else None
    started = time.perf_counter()

    def progress(line: str) -> None:
        if not args.quiet:
            print(f"[{time.perf_counter() - started:6.1f} s] {line}", file=sys.stderr, flush=True)

    if args.times is not None:
        from twinrun.errors import ConfigError
        from twinrun.proof import repeat

        if args.vary:
            raise ConfigError("--times and --vary: --times repeats one configuration", fix="give one of them")
        if args.nproc is not None:
            raise ConfigError(
                "--times and --nproc: the spread of repeated runs is measured in single processes",
                fix="drop --nproc for --times, or --times for a rank-by-rank proof",
            )
        times = repeat(
            args.experiment,
            args.times,
            overrides=overrides,
            candidates=candidates,
            home=args.home,
            parallel=args.parallel,
            progress=progress,
            timeout=args.timeout,
        )
        print_json(times.to_dict()) if args.json else print(times.format())
        return 0 if times.identical else 1

    from twinrun.proof import repro

    report = repro(
        args.experiment,
        overrides=overrides,
        candidates=candidates,
        vary=args.vary,
        narrow=not args.no_narrow,
        home=args.home,
        parallel=args.parallel,
        progress=progress,
        timeout=args.timeout,
        nproc=args.nproc,
    )
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.format())
    return 0 if report.identical else 1
