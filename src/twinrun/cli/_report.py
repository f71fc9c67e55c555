"""``twinrun report``: one self-contained HTML file for runs or a sweep."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from twinrun.cli._common import RawHelp, add_home, add_registry

HELP = """\
Write one HTML file that shows the comparison: the verdict table and what each
verdict may claim, every candidate's curves overlaid, each candidate's paired
difference to the reference over steps (with its band across seeds), the checks
with their figures and fixes, shared initial weights, what each candidate's
configuration changes, the environment, tags and notes. For a sweep (twinrun
seeds, or compare --replicas K): per-seed scores, intervals, P(A > B), ensembles
and the seeds needed. For two runs: their diff.

The file needs nothing else: no network, no other file, no script. Open it in
any browser, or mail it.

examples:
  twinrun report latest                 the newest run (default file: its run folder/report.html)
  twinrun report 1a2b3c4d 5e6f7a8b      two runs, with their diff
  twinrun report --sweep 80ad5ce2 -o sweep.html
"""

__all__ = ["make_report", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "report", help="one self-contained HTML report of runs or a sweep", description=HELP, formatter_class=RawHelp
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="run ids or prefixes (latest, latest~1, ...)")
    p.add_argument("--sweep", metavar="ID", help="a sweep (twinrun seeds, compare --replicas K)")
    p.add_argument("-o", "--output", metavar="FILE", help="where to write (default: the run's or sweep's folder)")
    p.add_argument(
        "--resamples",
        type=int,
        default=2_000,
        metavar="N",
        help="bootstrap resamples for a sweep's intervals (default 2000)",
    )
    add_home(p)
    add_registry(p)
    p.set_defaults(handler=run_report)


def make_report(
    runs: list[str],
    sweep: str | None,
    output: str | None,
    *,
    home: str | None,
    registry: str | None,
    resamples: int = 2_000,
) -> tuple[Path, float]:
    """Build and write the report; returns its path and the seconds it took."""
    from twinrun._home import twinrun_home
    from twinrun.cli._runs import open_for_reading
    from twinrun.errors import ConfigError
    from twinrun.report import build_report, default_path

    if not runs and not sweep:
        raise ConfigError("no run or sweep given", fix="twinrun report RUN [RUN ...], or --sweep ID")
    started = time.perf_counter()
    with open_for_reading(registry) as store:
        page = build_report(store, runs, sweep=sweep, n_resamples=resamples)
        if output:
            target = Path(output)
        else:
            sweep_id = store.resolve_sweep(sweep) if sweep else None
            first = [store.get_run(runs[0])] if runs else []
            target = default_path(twinrun_home(home), first, sweep_id)
        path = page.write(target)
    return path, time.perf_counter() - started


def run_report(args: argparse.Namespace) -> int:
    path, seconds = make_report(
        list(args.runs), args.sweep, args.output, home=args.home, registry=args.registry, resamples=args.resamples
    )
    size = path.stat().st_size
    print(f"report: {path} ({size / 1024:.0f} KiB, {seconds:.1f} s)")
    print(f"open it: file://{path.resolve()}", file=sys.stderr)
    return 0
