"""``twinrun check``: the training recipe as checks."""

from __future__ import annotations

import argparse
import textwrap
from typing import TYPE_CHECKING

from twinrun.cli._common import RawHelp, add_home, add_json, add_overrides, add_registry, print_json
from twinrun.cli._tables import format_wrapped_table
from twinrun.errors import ConfigError
from twinrun.spec import parse_overrides

if TYPE_CHECKING:  # the checks (and matplotlib) are imported by the commands that run them
    from twinrun.checks import CheckReport

CHECK_HELP = """\
Run the training recipe as checks on one candidate of an experiment: the loss
at init against the label prior, overfitting one batch, dependencies charted
with backprop (batch mixing, causality), what exactly enters the net, leakage,
schedules, eval-mode determinism, DataLoader worker streams and more. Each check
measures, says what it expected, explains and tells how to fix; figures (input
grid, prediction dynamics, first-layer filters) go to the output folder.

examples:
  twinrun check exp.py --candidate cnn
  twinrun check exp.py --only loss_at_init,overfit_batch
  twinrun check exp.py --skip data_leakage --json > checks.json
  twinrun check lm.py --check-option causality.time_dim=1     # a sequence model
  twinrun check exp.py --devices 4 --apply-init-bias
  twinrun check --list                                        # every check and its options

exit status: 0 no check failed (warnings allowed), 1 a check failed, 2 bad input.
"""

_STATUS = {"pass": "pass", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "check",
        help="run the training recipe as checks (loss at init, overfit a batch, leakage, ...)",
        description=CHECK_HELP,
        formatter_class=RawHelp,
    )
    p.add_argument("experiment", metavar="FILE", nargs="?", help="experiment file (or package.module[:name])")
    p.add_argument("--candidate", metavar="NAME", help="the candidate to check (default: the first declared)")
    p.add_argument("--only", metavar="A,B", help="run only these checks (comma-separated)")
    p.add_argument("--skip", metavar="A,B", help="leave these checks out (comma-separated)")
    p.add_argument(
        "--check-option",
        dest="check_options",
        metavar="CHECK.KEY=VALUE",
        action="append",
        default=[],
        help="an option of one check; repeatable, e.g. causality.time_dim=1 or overfit_batch.steps=500",
    )
    p.add_argument(
        "--devices",
        type=int,
        metavar="N",
        help="devices that will share each batch (same as --check-option batch_divisibility.devices=N)",
    )
    p.add_argument(
        "--apply-init-bias",
        action="store_true",
        help="set the final layer's bias to the label prior before the later checks run",
    )
    add_overrides(p)
    p.add_argument("--device", metavar="DEV", help="torch device (same as --set device=...)")
    p.add_argument("--seed", type=int, metavar="N", help="the seed (same as --set seed=N)")
    p.add_argument(
        "--outdir", metavar="DIR", help="folder for figures and checks.json (default: <home>/runs/<run id>/checks)"
    )
    p.add_argument(
        "--logdir",
        metavar="DIR",
        help="TensorBoard folder for the checks' figures (default: <home>/tb/<experiment>-checks-<run id>)",
    )
    p.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard files")
    p.add_argument("--list", action="store_true", help="list every check with its options and exit")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_registry(p)
    p.add_argument("--no-registry", action="store_true", help="do not record the report in the run registry")
    add_home(p)
    add_json(p)
    p.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    from twinrun.checks import check, parse_check_options

    if args.list:
        print(format_check_list())
        return 0
    if not args.experiment:
        raise ConfigError("no experiment file given", fix="twinrun check path/to/experiment.py (or --list)")
    options = parse_check_options(args.check_options)
    if args.devices is not None:
        options.setdefault("batch_divisibility", {})["devices"] = args.devices
    if args.apply_init_bias:
        options.setdefault("loss_at_init", {})["apply_bias"] = True
    overrides = parse_overrides(args.overrides)
    for key in ("device", "seed"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    report = check(
        args.experiment,
        args.candidate,
        only=args.only,
        skip=args.skip,
        overrides=overrides,
        options=options,
        outdir=args.outdir,
        home=args.home,
        progress=False if (args.quiet or args.json) else None,
        registry=False if args.no_registry else (args.registry or True),
        logdir=None if args.no_tensorboard else (args.logdir or "default"),
    )
    if args.json:
        print_json(report.to_dict())
    else:
        print(format_report(report))
    return 1 if report.failed else 0


def format_report(report: CheckReport, width: int = 100) -> str:
    """The table of results, then explanation and fix for every check that did not pass."""
    s = report.subject
    lines = [
        (
            f"twinrun check · {s.get('experiment')} · candidate {s.get('candidate')} · seed {s.get('seed')} · "
            f"{s.get('steps')} steps · {s.get('device')} · {report.timing.get('total', 0.0):.1f} s"
        ),
        "",
    ]
    rows = [[_STATUS[r.status], r.name, r.measured, r.expected] for r in report.results]
    lines.append(format_wrapped_table(["status", "check", "measured", "expected"], rows, [None, None, 52, 36]))
    wrap = textwrap.TextWrapper(width=width, initial_indent="  ", subsequent_indent="  ")
    for r in report.results:
        if r.status == "pass":
            continue
        lines += ["", f"{_STATUS[r.status]}  {r.name}: {r.measured}"]
        lines += wrap.wrap(r.explanation)
        if r.fix:
            lines += textwrap.wrap(r.fix, width=width, initial_indent="  fix: ", subsequent_indent="       ")
    figures = [path for r in report.results for path in r.artifacts.values()]
    lines.append("")
    if figures:
        lines.append("figures: " + ", ".join(figures))
    if report.outdir:
        lines.append(f"report: {report.outdir}/checks.json")
    if s.get("tensorboard"):
        lines.append(f"figures in TensorBoard: tensorboard --logdir {s['tensorboard']}")
    if s.get("registry_run"):
        lines.append(f"recorded as run {str(s['registry_run'])[:8]} (twinrun show {str(s['registry_run'])[:8]})")
    counts = report.counts
    lines.append(" · ".join(f"{counts[k]} {k}" for k in ("pass", "warn", "fail", "skip")))
    return "\n".join(lines)


def format_check_list() -> str:
    from twinrun.checks import check_names, get_check

    lines = ["checks, in the order they run (options: --check-option CHECK.KEY=VALUE):", ""]
    for name in check_names():
        c = get_check(name)
        lines.append(f"{name:22} {c.title}")
        for key, option in c.options.items():
            lines.append(f"    {key} = {option.default!r}: {option.help}")
    return "\n".join(lines)
