"""``twinrun seeds --until-resolved --max N``: add paired seeds until the verdict is clear."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twinrun.cli._common import print_json
from twinrun.cli._seeds import options_of
from twinrun.errors import ConfigError
from twinrun.report import format_sweep
from twinrun.spec import parse_overrides
from twinrun.stats import SequentialDecision, sequential_decision
from twinrun.sweeps import SweepInterrupted, run_sweep

__all__ = ["run_until_resolved"]


def _check(args: argparse.Namespace) -> tuple[int, int]:
    if not args.until_resolved:
        raise ConfigError("--max N bounds --until-resolved", fix="add --until-resolved, or drop --max")
    if args.max is None:
        raise ConfigError(
            "--until-resolved needs --max N: the most seeds it may run (the level of each look depends on it)",
            fix="e.g. --until-resolved --max 20",
        )
    if args.seed_list is not None or args.base_seed is not None or args.resume:
        raise ConfigError(
            "--until-resolved runs seeds 0, 1, 2, ... in order; it takes no --seed-list, --base-seed or --resume",
            fix="twinrun seeds FILE --seeds 3 --until-resolved --max 20",
        )
    first = args.seeds if args.seeds is not None else 3
    if first < 3 or args.max < first:
        raise ConfigError(
            f"--seeds {first} --max {args.max}: need 3 <= first seeds <= --max",
            fix="e.g. --seeds 3 --until-resolved --max 20",
        )
    return first, args.max


def _decisions(analysis: dict[str, Any], first: int, n_max: int) -> dict[str, SequentialDecision]:
    metric = analysis["metrics"][analysis["metric"]]
    return {
        name: sequential_decision(entry["difference"].get("diffs") or [], n_max=n_max, n_min=first)
        for name, entry in metric["comparisons"].items()
    }


def run_until_resolved(args: argparse.Namespace, candidates: list[str] | None) -> int:
    first, n_max = _check(args)
    execution, analysis = options_of(args)
    common: dict[str, Any] = {
        "execution": execution,
        "analysis": analysis,
        "ensemble": not args.no_ensemble,
        "tensorboard": args.tensorboard,
        "home": args.home,
        "registry": args.registry,
        "progress": False if args.quiet else None,
    }
    k = first
    try:
        result = run_sweep(
            args.experiment,
            seeds=k,
            candidates=candidates,
            reference=args.reference,
            overrides=parse_overrides(args.overrides) if args.overrides else None,
            tags=args.tags,
            **common,
        )
        while True:
            decisions = _decisions(result.analysis, first, n_max)
            if not result.ok or all(d.decision != "continue" for d in decisions.values()):
                break
            k += 1
            result = run_sweep(resume=result.sweep_id, seeds=k, **common)
    except SweepInterrupted as exc:
        print(
            f"twinrun: sweep {exc.sweep_id[:8]} interrupted with {exc.finished}/{exc.total} seeds "
            f"finished; go on with: twinrun seeds --resume {exc.sweep_id[:8]}",
            file=sys.stderr,
        )
        return 130
    if args.json:
        print_json({**result.to_dict(), "sequential": decisions})
        return 0 if result.ok else 1
    print(format_sweep(result.analysis))
    looks = n_max - first + 1
    print(
        f"\nsequential ({result.analysis['metric']}): {k} seeds run of at most {n_max}; each look at "
        f"level 0.05/{looks} (Bonferroni over {looks} planned looks), so stopping when resolved keeps "
        "the false-positive rate at 5 %. The table above uses the usual level; the verdicts that "
        "count under stopping are:"
    )
    for name, d in decisions.items():
        interval = (
            ""
            if d.low is None or d.high is None or d.estimate is None
            else f" {d.estimate:+.4g} [{d.low:+.4g}, {d.high:+.4g}] at {1 - d.level:.2%}"
        )
        print(f"  {name} vs {result.analysis['reference']}: {d.decision}{interval}: {d.reason}")
    return 0 if result.ok else 1
