"""``twinrun search``: random (or Optuna) search whose trials are twins, confirmed by replicas."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from twinrun.cli._common import RawHelp, add_home, add_json, add_overrides, print_json

#: ``twinrun.search.SAMPLERS``, as a literal so that ``--help`` needs no torch
SAMPLERS = ("random", "tpe", "cmaes", "qmc", "gp")

HELP = """\
Sample hyperparameters from the experiment's search space (its search= field, or
--space on the command line), train them K at a time as twins of the reference
(same initial weights where shapes match, same batches, same augmentation), rank
every trial by its paired difference to the reference, then confirm the top few
over replicas (seeds shared by every candidate) before naming a winner: the
winner is what the replicas support, not the best of one noisy run.

Distributions: loguniform(LOW, HIGH), uniform(LOW, HIGH), integer(LOW, HIGH),
choice([A, B, ...]), over any key --set takes.

examples:
  twinrun search exp.py --trials 16 --batch 4
  twinrun search exp.py --space 'optimizer.lr=loguniform(1e-4, 1e-1)' --space 'model.width=choice([32, 64])'
  twinrun search exp.py --trials 32 --sampler tpe     # Optuna's TPE (pip install 'twinrun[optuna]')
  twinrun search exp.py --resume 1f2e                 # after a crash: finished batches are not re-run
  twinrun search --show 1f2e --json

exit status: 0 done (a winner or not), 2 bad input, 130 interrupted (--resume continues).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "search",
        help="hyperparameter search whose trials are twins, confirmed by replicas",
        description=HELP,
        formatter_class=RawHelp,
    )
    p.add_argument("experiment", metavar="FILE", nargs="?", help="experiment file (path.py, or path.py:NAME)")
    p.add_argument(
        "--space",
        metavar="KEY=DIST",
        action="append",
        default=[],
        help="a search dimension, e.g. 'optimizer.lr=loguniform(1e-4, 1e-2)'; repeatable; replaces "
        "the experiment's search= space",
    )
    p.add_argument("--trials", type=int, default=16, metavar="N", help="configurations to try (default 16)")
    p.add_argument(
        "--batch",
        type=int,
        default=4,
        metavar="K",
        help="trials trained together as twins of the reference (default 4)",
    )
    p.add_argument("--sampler", choices=SAMPLERS, default="random", help="random (default) or an Optuna sampler")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="the sampler's seed (default 0)")
    p.add_argument(
        "--confirm",
        type=int,
        default=3,
        metavar="M",
        help="confirm the best M trials over replicas (default 3; 0: no confirmation)",
    )
    p.add_argument("--replicas", type=int, default=4, metavar="R", help="replicas of the confirmation (default 4)")
    p.add_argument("--metric", metavar="NAME", help="what to rank by (default: the experiment's first metric)")
    p.add_argument(
        "--resume",
        metavar="ID",
        help="continue an interrupted search (FILE too; its space and options are the recorded ones)",
    )
    p.add_argument("--show", metavar="ID", help="print a search's result without training")
    p.add_argument(
        "--report",
        action="store_true",
        help="also write the search as one HTML file (figures of every trial) into its folder",
    )
    add_overrides(p)
    add_home(p)
    add_json(p)
    p.set_defaults(handler=run_search, trains=lambda args: args.show is None)


def run_search(args: argparse.Namespace) -> int:
    from twinrun._home import twinrun_home
    from twinrun.errors import ConfigError
    from twinrun.search import find_search, load_search, parse_space, search
    from twinrun.spec import parse_overrides

    if args.show is not None:
        result = load_search(find_search(twinrun_home(args.home), args.show))
        print_json(result.to_dict()) if args.json else print(result.format())
        _report(args, result)
        return 0
    if args.experiment is None:
        raise ConfigError("no experiment given", fix="twinrun search FILE --trials N (with --resume ID: FILE too)")
    started = time.perf_counter()

    def say(line: str) -> None:
        if not args.json:
            print(f"[{time.perf_counter() - started:6.1f} s] {line}", file=sys.stderr, flush=True)

    result = search(
        args.experiment,
        trials=args.trials,
        batch=args.batch,
        sampler=args.sampler,
        seed=args.seed,
        confirm=args.confirm,
        replicas=args.replicas,
        metric=args.metric,
        space=parse_space(args.space) if args.space else None,
        overrides=parse_overrides(args.overrides),
        home=args.home,
        resume=args.resume,
        say=say,
    )
    print_json(result.to_dict()) if args.json else print(result.format())
    _report(args, result)
    return 0


def _report(args: argparse.Namespace, result: Any) -> None:
    if args.report:
        from pathlib import Path

        from twinrun.report import search_report

        path = search_report(result).write(Path(result.folder) / "report.html")
        print(f"report: {path}", file=sys.stderr if args.json else sys.stdout)
