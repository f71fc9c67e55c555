"""``twinrun seeds``: run a configuration once per seed, in parallel, and say what the seeds support."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

from twinrun.cli._common import RawHelp, add_home, add_json, add_overrides, add_registry, print_json
from twinrun.cli._runs import open_for_reading
from twinrun.errors import ConfigError
from twinrun.registry import RegistryNotFoundError, resolve_registry_path
from twinrun.report import format_sweep, format_sweep_list, when
from twinrun.spec import parse_overrides

if TYPE_CHECKING:  # the sweeps import torch: `twinrun seeds --help` must not
    from twinrun.sweeps import Analysis, Execution

# literals, so that `twinrun seeds --help` needs no torch (tests/test_cli.py holds them to the library's)
#: ``twinrun.sweeps.BACKENDS``
BACKENDS = ("local", "inprocess", "ray")
#: ``twinrun.stats.DEPLOY``
DEPLOY = ("both", "ensemble", "single")

__all__ = ["register"]

SEEDS_HELP = """\
Run an experiment once per seed and say what the seeds support. Within each
seed every candidate shares that seed's initial weights, batches and
augmentation, so the comparison across seeds is paired. Each seed is a normal
twin run in a fresh process (PYTHONHASHSEED=0, threads per seed = cores / jobs),
recorded in the registry under one sweep id. A failed seed is reported and the
others go on; an interrupted sweep resumes without rerunning finished seeds.

Printed per metric: each candidate's mean, std, median, IQM, min, max, range,
the confidence interval of its mean, and the ensemble of its seeds (their
validation probabilities averaged) with its gain over one seed; each candidate
against the reference, paired across seeds: the mean difference with its
interval, P(better), the correlation of paired seeds and the variance the
pairing removed, the Holm-adjusted p-value; then a recommendation in plain words.

examples:
  twinrun seeds exp.py --seeds 10                    # seeds 0..9, all cores
  twinrun seeds exp.py --seeds 10 --jobs 2 --set steps=500
  twinrun seeds exp.py --seed-list 3,7,11 --candidates base,wide
  twinrun seeds exp.py --seeds 10 --base-seed 42     # 10 seeds derived from 42
  twinrun seeds exp.py --seeds 10 --resume           # the unfinished sweep of this config, else a new one
  twinrun seeds --resume 1a2b3c4d                    # that sweep, its own config
  twinrun seeds --resume 1a2b3c4d --seeds 20         # add seeds 10..19 to it
  twinrun seeds exp.py --seeds 10 --deploy single    # recommend for deploying one seed
  twinrun seeds exp.py --seeds 8 --backend ray --address auto   # on a Ray cluster
  twinrun seeds exp.py --seeds 10 --backend local --jobs 2      # a fresh process per seed, 2 at once
  twinrun seeds exp.py --seeds 3 --until-resolved --max 20      # add seeds until the verdict is clear
  twinrun seeds --list                               # every sweep
  twinrun seeds --show 1a2b3c4d [--json]             # a stored analysis, nothing rerun

exit status: 0 every seed finished, 1 some seeds failed (the analysis of the
others is still printed), 2 bad input, 130 interrupted (resume with --resume ID).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "seeds", help="run K seeds of a comparison and analyse them", description=SEEDS_HELP, formatter_class=RawHelp
    )
    p.add_argument(
        "experiment",
        nargs="?",
        metavar="FILE",
        help="experiment file (or package.module[:name]); optional with --resume ID",
    )
    which = p.add_argument_group("which seeds")
    which.add_argument("--seeds", type=int, metavar="K", help="run K seeds: 0..K-1 (or derived from --base-seed)")
    which.add_argument("--seed-list", metavar="S,S,...", help="run exactly these seeds, e.g. 3,7,11")
    which.add_argument(
        "--base-seed", type=int, metavar="B", help="derive the K seeds from B (twinrun.rng.derive_seed(B, 'sweep', i))"
    )
    which.add_argument(
        "--until-resolved",
        action="store_true",
        help="after the first --seeds K (default 3), add one seed at a time until every "
        "candidate's paired difference to the reference is resolved or futile, or --max "
        "seeds ran; each look at level 0.05 / (planned looks), so stopping early keeps the "
        "false-positive rate at 5%%",
    )
    which.add_argument("--max", type=int, metavar="N", help="with --until-resolved: at most N seeds")
    how = p.add_argument_group("how they run")
    how.add_argument(
        "--jobs",
        "-j",
        type=int,
        metavar="N",
        help="seeds at once, each in its own process (> 1 implies --backend local; "
        "default with --backend local: the number of cores)",
    )
    how.add_argument("--threads", type=int, metavar="T", help="threads per seed (default: cores // jobs)")
    how.add_argument(
        "--backend",
        choices=("auto", *BACKENDS),
        default="auto",
        help="auto (default): inprocess, or local with --jobs N > 1; inprocess: seeds one "
        "after another in this process, no start-up per seed; local: a fresh process per "
        "seed, --jobs at a time (isolation: a seed that crashes takes only itself down); "
        'ray: Ray tasks (pip install "twinrun[ray]")',
    )
    how.add_argument(
        "--address",
        metavar="ADDR",
        help="the Ray cluster (auto, ray://head:10001, head:6379); default a local Ray instance",
    )
    how.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="SWEEP",
        help="resume sweep SWEEP (an id or its first characters); without SWEEP the newest "
        "unfinished sweep of the same configuration, else a new one",
    )
    how.add_argument(
        "--no-ensemble", action="store_true", help="do not keep the seeds' validation outputs (no seed ensembles)"
    )
    how.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs for every seed")
    how.add_argument(
        "--tag",
        dest="tags",
        metavar="TAG",
        action="append",
        default=[],
        help="tag every seed's run in the registry; repeatable",
    )
    how.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no failure lines")
    what = p.add_argument_group("what is compared and reported")
    add_overrides(what)
    what.add_argument("--candidates", metavar="A,B", help="run only these candidates (comma-separated)")
    what.add_argument("--reference", metavar="NAME", help="compare against this candidate (default: the first)")
    what.add_argument(
        "--metric", metavar="NAME", help="the metric the recommendation leads with (default: the experiment's first)"
    )
    what.add_argument(
        "--deploy",
        choices=DEPLOY,
        default="both",
        help="recommend for deploying an ensemble of seeds, a single seed, or both",
    )
    what.add_argument("--confidence", type=float, default=0.95, metavar="C", help="of every interval (0.95)")
    what.add_argument(
        "--resamples", type=int, default=10_000, metavar="B", help="bootstrap resamples per interval (10000)"
    )
    stored = p.add_argument_group("stored sweeps")
    stored.add_argument("--show", metavar="SWEEP", help="print a sweep's stored analysis (nothing is run)")
    stored.add_argument("--list", action="store_true", help="list the sweeps in the registry")
    stored.add_argument(
        "--report", action="store_true", help="with --show: also write the sweep's HTML report (twinrun report --sweep)"
    )
    add_home(p)
    add_registry(p)
    add_json(p)
    # seeds run in this process with --backend inprocess: then it needs the fixed hash seed itself
    p.set_defaults(handler=run_seeds, trains=lambda a: backend_of(a) == "inprocess" and not (a.list or a.show))


def _seed_list(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise ConfigError(
                f"--seed-list {text!r}: {part!r} is not an integer",
                fix="list integers separated by commas, e.g. --seed-list 3,7,11",
            ) from None
    if not out:
        raise ConfigError(f"--seed-list {text!r} names no seed", fix="e.g. --seed-list 3,7,11")
    return out


def _which_seeds(args: argparse.Namespace) -> int | list[int] | None:
    if args.seeds is not None and args.seed_list is not None:
        raise ConfigError("--seeds and --seed-list both given", fix="pass one: --seeds K or --seed-list 3,7,11")
    if args.seed_list is not None:
        return _seed_list(args.seed_list)
    if args.seeds is None and args.base_seed is not None:
        raise ConfigError("--base-seed needs --seeds K (how many seeds to derive)", fix="add --seeds 10")
    return cast("int | list[int] | None", args.seeds)


def backend_of(args: argparse.Namespace) -> str:
    """``--backend auto``: seeds in this process, unless several at once were asked for."""
    if args.backend != "auto":
        return str(args.backend)
    if args.address or (args.jobs or 1) > 1:  # --address without --backend ray is refused, as before
        return "local"
    return "inprocess"


def options_of(args: argparse.Namespace) -> tuple[Execution, Analysis]:
    """Where the seeds run and how they are read, from the command line."""
    from twinrun.sweeps import Analysis, Execution

    return (
        Execution(backend_of(args), jobs=args.jobs, threads=args.threads, address=args.address),
        Analysis(args.metric, deploy=args.deploy, confidence=args.confidence, n_resamples=args.resamples),
    )


def run_seeds(args: argparse.Namespace) -> int:
    if args.list:
        return _list(args)
    if args.show:
        return _show(args)
    if (
        isinstance(args.resume, str)
        and args.experiment is None
        and (args.resume.endswith(".py") or Path(args.resume).exists())
    ):
        args.experiment, args.resume = args.resume, True  # `--resume exp.py`: resume by configuration
    if args.until_resolved or args.max is not None:
        if args.experiment is None:
            raise ConfigError("no experiment file given", fix="twinrun seeds FILE --until-resolved --max 20")
        from twinrun.cli._sequential import run_until_resolved

        return run_until_resolved(
            args,
            [c.strip() for c in args.candidates.split(",") if c.strip()] if args.candidates else None,
        )
    seeds = _which_seeds(args)
    if seeds is None and not isinstance(args.resume, str):
        raise ConfigError(
            "how many seeds?",
            fix="twinrun seeds FILE --seeds 10 (or --seed-list 3,7,11, or --resume SWEEP to go on with a sweep)",
        )
    if args.experiment is None and not isinstance(args.resume, str):
        raise ConfigError("no experiment file given", fix="twinrun seeds FILE --seeds 10")
    from twinrun.sweeps import SweepInterrupted, run_sweep

    candidates = [c.strip() for c in args.candidates.split(",") if c.strip()] if args.candidates else None
    execution, analysis = options_of(args)
    try:
        result = run_sweep(
            args.experiment,
            seeds=seeds,
            base_seed=args.base_seed,
            execution=execution,
            analysis=analysis,
            resume=args.resume,
            candidates=candidates,
            reference=args.reference,
            overrides=parse_overrides(args.overrides) if args.overrides else None,
            ensemble=not args.no_ensemble,
            tensorboard=args.tensorboard,
            home=args.home,
            registry=args.registry,
            tags=args.tags,
            progress=False if args.quiet else None,
        )
    except SweepInterrupted as exc:
        print(
            f"twinrun: sweep {exc.sweep_id[:8]} interrupted with {exc.finished}/{exc.total} seeds "
            f"finished; go on with: twinrun seeds --resume {exc.sweep_id[:8]}",
            file=sys.stderr,
        )
        return 130
    if args.json:
        print_json(result.to_dict())
    else:
        print(format_sweep(result.analysis))
        print(
            f"{len(result.ran)} seed(s) run in {result.seconds:.1f} s"
            + (f", {len(result.skipped)} finished earlier" if result.skipped else "")
            + f" · runs: twinrun runs --limit {max(20, result.plan.k)}"
        )
    return 0 if result.ok else 1


def _show(args: argparse.Namespace) -> int:
    from twinrun.sweeps import analyze_sweep, load_sweep

    reanalyse = args.metric is not None or args.deploy != "both" or args.confidence != 0.95
    sweep = load_sweep(args.show, home=args.home, registry=args.registry)
    analysis = sweep.analysis
    note = None
    if analysis is None or reanalyse:
        analysis = analyze_sweep(
            sweep.id,
            analysis=options_of(args)[1],
            home=args.home,
            registry=args.registry,
        )
        if sweep.analysis is None:
            note = (
                f"sweep {sweep.short_id} is {sweep.status} and had no stored analysis: analysed "
                f"now from its finished seeds; go on with: twinrun seeds --resume {sweep.short_id}"
            )
    if args.json:
        print_json(analysis)
    else:
        print(format_sweep(analysis))
        _report_line(sweep.id, args)
    if note:
        print(note, file=sys.stderr)
    return 0 if analysis["sweep"]["status"] == "finished" else 1


def _report_line(sweep_id: str, args: argparse.Namespace) -> None:
    """Where the sweep's HTML report is (``--report``: make it first)."""
    from twinrun._home import sweeps_dir, twinrun_home

    path = sweeps_dir(twinrun_home(args.home)) / sweep_id / "report.html"
    if args.report:
        from twinrun.cli._report import make_report

        path, _ = make_report([], sweep_id, None, home=args.home, registry=args.registry, resamples=args.resamples)
    if path.is_file():
        print(f"report: {path}")
    else:
        print(f"report: none yet (twinrun seeds --show {sweep_id[:8]} --report)")


def _list(args: argparse.Namespace) -> int:
    try:
        registry = open_for_reading(str(resolve_registry_path(args.registry, home=args.home)))
    except RegistryNotFoundError:
        if args.json:
            print_json([])
        else:
            print("no sweeps yet: twinrun seeds FILE --seeds 10 makes one", file=sys.stderr)
        return 0
    with registry:
        sweeps = registry.list_sweeps()
        rows, data = [], []
        for s in sweeps:
            done = {int(r.seed) for r in registry.list_runs(sweep_id=s.id, status="finished") if r.seed is not None}
            planned = [int(x) for x in s.config.get("seeds") or []]
            full = registry.get_sweep(s.id)
            rec = (full.analysis or {}).get("recommendation") or "-"
            metric = (full.analysis or {}).get("metric") or s.config.get("metric") or "-"
            rows.append(
                [
                    s.short_id,
                    s.name,
                    s.status,
                    f"{len(done & set(planned))}/{len(planned)}",
                    when(s.created_at),
                    f"{metric}: {rec}" if rec != "-" else "-",
                ]
            )
            data.append(
                {
                    **s.to_dict(),
                    "analysis": None,
                    "seeds_done": sorted(done & set(planned)),
                    "recommendation": None if rec == "-" else rec,
                }
            )
    if args.json:
        print_json(data)
        return 0
    if not rows:
        print("no sweeps yet: twinrun seeds FILE --seeds 10 makes one", file=sys.stderr)
        return 0
    print(format_sweep_list([r[:5] + [_clip(r[5])] for r in rows]))
    print(f"\n{len(rows)} sweep(s) · registry {registry.path} · details: twinrun seeds --show SWEEP")
    return 0


def _clip(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
