"""``twinrun compare`` and ``twinrun demo``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinrun.cli._common import RawHelp, add_home, add_json, add_overrides, print_json
from twinrun.cli._tables import format_verdict
from twinrun.errors import ConfigError, Interrupted, TwinrunError
from twinrun.examples import DIGITS
from twinrun.spec import load_experiment, parse_overrides

if TYPE_CHECKING:  # the engine imports torch, which `twinrun --help` must not wait for
    from twinrun.engine import TwinResult

COMPARE_HELP = """\
Train the candidates of an experiment side by side (same initial weights, same
batches, same augmentation) and print a verdict: each candidate's validation
scores and its paired difference from the reference with a 95% interval.

examples:
  twinrun compare experiments/widths.py
  twinrun compare widths.py --set steps=500 --set optimizer.lr=1e-3
  twinrun compare widths.py --candidates small,wide --reference small --json
  twinrun compare widths.py --ladder wide_fast     # small -> small+model.width -> wide_fast
  tensorboard --logdir .twinrun/tb        # every comparison, one folder each
  twinrun compare widths.py --tag baseline   # then: twinrun runs --tag baseline
  twinrun compare widths.py --checkpoint-every 100
  twinrun compare widths.py --resume latest     # continue bit-identically (an id, a prefix, a folder)
  twinrun compare widths.py --extend 200        # 200 more steps of the latest finished run
  twinrun compare widths.py --devices cuda:0,cuda:1   # the candidates side by side on two GPUs

Ctrl-C stops at the end of the current step, writes a checkpoint and prints the
command that resumes the run (a second Ctrl-C stops at once, without one).

Every run records a ledger of control sums (initial weights, batches, losses,
weights every --ledger-every steps) in its folder: `twinrun ledger RUN` reads it,
`twinrun repro FILE` runs an experiment twice and finds where the runs part.
Training runs in a child process with PYTHONHASHSEED=0 unless it is already set
(set TWINRUN_NO_REEXEC=1 to train in this process).

exit status: 0 the run finished (diverged candidates are part of the verdict),
1 training failed, 2 bad input, 130 interrupted.
"""


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    add_overrides(parser)
    parser.add_argument("--candidates", metavar="A,B", help="run only these candidates (comma-separated)")
    parser.add_argument(
        "--ladder",
        metavar="NAME",
        help="one change at a time: train the reference, NAME, and the candidates in between "
        "(the reference plus NAME's first changed key, then its first two, ...) as twins",
    )
    parser.add_argument("--reference", metavar="NAME", help="compare against this candidate (default: the first)")
    parser.add_argument("--device", metavar="DEV", help="torch device, e.g. cpu or cuda (same as --set device=...)")
    parser.add_argument(
        "--devices",
        metavar="LIST",
        help="spread the candidates over devices in this process: cuda:0,cuda:1 or auto (every visible GPU); "
        "same-architecture candidates are kept together (same as --set devices=...)",
    )
    parser.add_argument("--seed", type=int, metavar="N", help="the run's seed (same as --set seed=N)")
    parser.add_argument("--steps", type=int, metavar="N", help="training steps (same as --set steps=N)")
    parser.add_argument(
        "--replicas",
        type=int,
        metavar="K",
        help="train every candidate K times, replica r with seed SEED+r shared by all "
        "candidates (same init, batches, augmentation), one after another in this process; "
        "the verdict is then paired across replicas, a statement about the recipe "
        "(default: the experiment's replicas, else 1: one run, a statement about its "
        "trained weights)",
    )
    parser.add_argument("--logdir", metavar="DIR", help="TensorBoard folder (default: <home>/tb/<experiment>-<run>)")
    parser.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard files")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument(
        "--registry", metavar="PATH", help="record the run in this registry (default: <home>/registry.sqlite)"
    )
    parser.add_argument("--no-registry", action="store_true", help="do not record the run")
    parser.add_argument(
        "--tag", dest="tags", metavar="TAG", action="append", default=[], help="tag the run in the registry; repeatable"
    )
    speed = parser.add_argument_group("execution")
    speed.add_argument(
        "--executor",
        choices=("auto", "vectorised", "sequential"),
        help="auto (default): same-architecture candidates (and replicas) in one batched step "
        "with torch.func.vmap, the rest one at a time; sequential: one at a time, the exact "
        "reference (same as --set executor=...)",
    )
    speed.add_argument(
        "--memory-budget",
        metavar="SIZE",
        help="activation memory a batched group may use at once, e.g. 2GiB (default auto: "
        "a quarter of RAM, half of free GPU memory); larger groups are split",
    )
    repro = parser.add_argument_group("reproducibility")
    repro.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic kernels during training (same as --set deterministic=True)",
    )
    repro.add_argument(
        "--determinism-cost",
        action="store_true",
        help="before training, time a few steps of copies of the candidates with "
        "deterministic mode off and on, and report the cost with the run",
    )
    repro.add_argument(
        "--ledger-every",
        type=int,
        metavar="K",
        help="weights in the ledger every K steps (same as --set ledger_every=K; default 20)",
    )
    repro.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="K",
        help="write a checkpoint every K steps (same as --set checkpoint_every=K)",
    )
    repro.add_argument(
        "--keep-checkpoints", type=int, default=2, metavar="N", help="keep the last N checkpoints (default 2)"
    )
    repro.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a run bit-identically: its id (a prefix, or latest), its folder or "
        "a checkpoint file; the run's own --set options are reused. An interrupted run "
        "(Ctrl-C) keeps a checkpoint of the step it stopped at",
    )
    repro.add_argument(
        "--extend",
        type=int,
        metavar="N",
        help="continue a finished run (--resume RUN, default latest) for N more steps, "
        "bit-identical to a run planned that long from the start (needs the checkpoint of its "
        "last step: run it with --checkpoint-every K)",
    )
    repro.add_argument(
        "--force",
        metavar="KEY",
        action="append",
        default=[],
        help="with --resume: accept a change of KEY since the checkpoint (a setting or "
        "config key such as steps or optimizer.lr, an environment key such as threads; "
        "'config', 'environment' or 'all' for every one); repeatable. A new "
        "--checkpoint-every needs none",
    )
    add_home(parser)
    add_json(parser)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "compare",
        help="train candidates side by side and print the verdict",
        description=COMPARE_HELP,
        formatter_class=RawHelp,
    )
    p.add_argument("experiment", metavar="FILE", help="experiment file (or package.module[:name])")
    _add_run_options(p)
    p.set_defaults(handler=run_compare, trains=True)

    d = subparsers.add_parser(
        "demo",
        help="compare an MLP, a CNN and a CNN with batch norm on the digits data",
        description="Run the bundled digits experiment across 4 replicas (about 13 s on 2 CPU cores; "
        "--replicas 1: one run, about 6 s).\n\n"
        "example:\n  twinrun demo\n  twinrun demo --show-file > my_experiment.py   # start your own",
        formatter_class=RawHelp,
    )
    d.add_argument("--show-file", action="store_true", help="print the example experiment file and exit")
    _add_run_options(d)
    d.set_defaults(handler=run_demo, experiment=str(DIGITS), trains=True)


def collect_overrides(args: argparse.Namespace) -> dict[str, object]:
    overrides = parse_overrides(args.overrides)
    for key in ("device", "devices", "seed", "steps", "ledger_every", "checkpoint_every", "executor", "memory_budget"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    if getattr(args, "deterministic", False):
        overrides["deterministic"] = True
    return overrides


def resume_command(args: argparse.Namespace, run_id: str) -> str:
    """The exact command that continues ``run_id`` (its own --set options are reused)."""
    words = ["twinrun", "demo"] if args.handler is run_demo else ["twinrun", "compare", args.experiment]
    words += ["--resume", run_id[:8]]
    if args.home:
        words += ["--home", args.home]
    if args.registry:
        words += ["--registry", args.registry]
    if args.no_registry:  # without a registry the id cannot be looked up: name the folder
        words[words.index("--resume") + 1] = str(Path(args.home or ".twinrun") / "runs" / run_id)
    return " ".join(shlex.quote(w) for w in words)


def print_interrupted(exc: Interrupted, args: argparse.Namespace) -> None:
    where = f" after step {exc.step}" if exc.step is not None else ""
    print(f"twinrun: interrupted ({exc.reason}){where}", file=sys.stderr)
    if exc.run_id is None:
        return
    if exc.checkpoint is not None:
        print(
            f"  run {exc.run_id[:8]} is recorded as interrupted; its checkpoint of step "
            f"{exc.checkpoint_step}: {exc.checkpoint}",
            file=sys.stderr,
        )
        print(f"  resume: {resume_command(args, exc.run_id)}", file=sys.stderr)
    else:
        print(
            f"  run {exc.run_id[:8]} is recorded as interrupted; it stopped inside a step and has no "
            "checkpoint to resume from (a second Ctrl-C stops at once; one stops at the next step "
            "and keeps its state)",
            file=sys.stderr,
        )


def _extend(args: argparse.Namespace) -> None:
    """``--extend N``: resume the finished run with ``steps`` raised by N (``checkpoint/_extend``)."""
    from twinrun._home import registry_path, twinrun_home
    from twinrun._runfolder import find_run_folder
    from twinrun.checkpoint import plan_extension
    from twinrun.registry import Registry

    root = twinrun_home(args.home)
    path = registry_path(root) if not args.registry else Path(args.registry)
    store = Registry.open(path) if path.is_file() and not args.no_registry else None
    try:
        folder = find_run_folder(args.resume or "latest", root, store)
        status = None
        if store is not None:
            try:
                status = store.get_run(folder.name).status
            except TwinrunError:  # a folder the registry does not know: its files say it all
                status = None
    finally:
        if store is not None:
            store.close()
    steps = plan_extension(folder, args.extend, status=status)
    args.resume = str(folder)
    args.overrides = [*args.overrides, f"steps={steps}"]
    args.force = [*args.force, "steps"]


def run_compare(args: argparse.Namespace) -> int:
    if args.extend is not None:
        _extend(args)
    candidates = [c.strip() for c in args.candidates.split(",") if c.strip()] if args.candidates else None
    if args.replicas is not None and (isinstance(args.replicas, bool) or args.replicas < 1):
        raise ConfigError(
            f"--replicas {args.replicas!r}: the number of replicas must be a whole number >= 1",
            fix="--replicas 4 (or 1 for a single run)",
        )
    experiment: Any = args.experiment
    if args.ladder is not None:
        from twinrun.spec import ladder

        if candidates:
            raise ConfigError("--ladder and --candidates both choose the candidates", fix="give one of them")
        experiment, candidates = ladder(
            load_experiment(args.experiment), args.ladder, reference=args.reference, overrides=collect_overrides(args)
        )
        if args.replicas not in (None, 1):
            raise ConfigError(
                "--ladder with --replicas is not supported yet",
                fix="run the ladder's candidates with twinrun seeds, or drop --replicas",
            )
        args.replicas = 1
    from twinrun.engine import detect_world

    world = detect_world()  # launched by torchrun: data-parallel; rank 0 prints and records
    if args.replicas != 1:  # the experiment's own default, and its seed for the replicas
        exp = load_experiment(args.experiment)
        replicas = args.replicas or exp.replicas
        if replicas > 1:  # under torchrun too: each replica data-parallel (``_replicas``)
            from twinrun.cli._replicas import run_replicas

            return run_replicas(args, candidates, replicas, collect_overrides(args), exp.seed)
    try:
        result = _compare(args, candidates, experiment)
    except Interrupted as exc:
        print_interrupted(exc, args)
        return 130
    if world is not None and not world.main:
        return 0  # rank 0 speaks for the run
    if args.json:
        print_json(result.to_dict())
    else:
        print(format_verdict(result))
        cost = result.reproducibility.get("determinism_cost")
        if cost:
            print(
                f"deterministic mode cost: {cost['relative']:+.1%} ({cost['steps']} steps of copies of the "
                f"candidates, median of {cost['repeats']}: {cost['seconds_off']:.3f} s off, "
                f"{cost['seconds_on']:.3f} s on)"
            )
    return 0


def _compare(args: argparse.Namespace, candidates: list[str] | None, experiment: Any = None) -> TwinResult:
    from twinrun._compare import compare

    return compare(
        args.experiment if experiment is None else experiment,
        candidates=candidates,
        reference=args.reference,
        overrides=collect_overrides(args),
        home=args.home,
        logdir=None if args.no_tensorboard else (args.logdir or "default"),
        progress=False if (args.quiet or args.json) else None,
        registry=False if args.no_registry else (args.registry or True),
        tags=args.tags,
        resume=args.resume,
        force=args.force,
        seed_globals=True,
        keep_checkpoints=args.keep_checkpoints,
        determinism_cost=args.determinism_cost,
    )


def run_demo(args: argparse.Namespace) -> int:
    if args.show_file:
        sys.stdout.write(DIGITS.read_text())
        return 0
    return run_compare(args)
