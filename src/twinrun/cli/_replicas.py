"""``twinrun compare --replicas K``: K replicas of a run, paired across replicas.

Replica ``r`` is the run with seed ``SEED + r`` (its own initial weights, batch
order, augmentation and dropout), shared by every candidate, so replicas pair
candidates exactly as the seeds of ``twinrun seeds`` do: they *are* seeds, run one
after another in this process (the sweeps' in-process backend) and recorded as a
sweep. The headline is the paired analysis across replicas; under it, what one
replica alone would have claimed (its per-example interval, "this validation
set") and the training-loss difference across replicas.

Under ``torchrun`` every replica is a data-parallel run: the ranks join one
process group for all of them, rank 0 runs the sweep (it records, analyses and
prints) and the other ranks train the same replicas in the same order, one
after another, recording nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twinrun.cli._common import print_json
from twinrun.errors import ConfigError
from twinrun.report import format_sweep
from twinrun.stats import PairedDifference, paired_t_test
from twinrun.sweeps import Execution, SweepInterrupted, SweepResult, run_sweep

__all__ = ["format_per_replica", "per_replica", "run_replicas"]


def run_replicas(
    args: argparse.Namespace,
    candidates: list[str] | None,
    replicas: int,
    overrides: dict[str, Any],
    experiment_seed: int,
) -> int:
    """K replicas = seeds SEED..SEED+K-1 of the run, in this process, analysed as a paired sweep."""
    if args.resume:
        raise ConfigError(
            "--resume continues one run, not a set of replicas",
            fix="replicas are recorded as a sweep: go on with twinrun seeds --resume SWEEP",
        )
    given = overrides.pop("seed", None)
    base = int(given) if isinstance(given, int) else experiment_seed
    if args.no_registry:
        raise ConfigError(
            "--replicas records its replicas as a sweep in the registry; --no-registry forbids it",
            fix="drop --no-registry (or --registry PATH to record elsewhere)",
        )
    from twinrun.engine import detect_world

    world = detect_world()
    if world is not None:
        return _replicas_over_ranks(args, candidates, replicas, overrides, base, world)
    return _run_sweep(args, candidates, replicas, overrides, base)


def _replicas_over_ranks(
    args: argparse.Namespace,
    candidates: list[str] | None,
    replicas: int,
    overrides: dict[str, Any],
    base: int,
    world: Any,
) -> int:
    """Every replica data-parallel, in one process group: rank 0's sweep, the others' runs in its order."""
    import torch

    from twinrun import compare
    from twinrun.engine import join_world, leave_world, resolve_device
    from twinrun.spec import load_experiment, resolve

    settings = resolve(
        load_experiment(args.experiment), overrides, candidates=candidates, reference=args.reference
    ).settings
    joined = join_world(world, resolve_device(settings.device))  # held for every replica: once per process
    try:
        if world.main:
            return _run_sweep(args, candidates, replicas, overrides, base, threads=torch.get_num_threads())
        failed = 0
        for r in range(replicas):  # the sweep's seeds, in its order: each run's collectives meet rank 0's
            try:
                compare(
                    args.experiment,
                    candidates=candidates,
                    reference=args.reference,
                    overrides={**overrides, "seed": base + r},
                    home=args.home,
                    logdir=None,
                    progress=False,
                    seed_globals=True,
                    registry=False,
                )
            except Exception as exc:  # noqa: BLE001 - as the sweep does: a replica fails, the others go on
                print(f"twinrun: rank {world.rank}: replica {r} (seed {base + r}) failed: {exc}", file=sys.stderr)
                failed += 1
        return 1 if failed else 0
    finally:
        leave_world(joined)


def _run_sweep(
    args: argparse.Namespace,
    candidates: list[str] | None,
    replicas: int,
    overrides: dict[str, Any],
    base: int,
    threads: int | None = None,
) -> int:
    try:
        result = run_sweep(
            args.experiment,
            seeds=[base + r for r in range(replicas)],
            execution=Execution("inprocess", threads=threads),
            candidates=candidates,
            reference=args.reference,
            overrides=overrides,
            tensorboard=not args.no_tensorboard,
            home=args.home,
            registry=args.registry,
            tags=args.tags,
            progress=False if (args.quiet or args.json) else None,
        )
    except SweepInterrupted as exc:
        print(
            f"twinrun: interrupted with {exc.finished}/{exc.total} replicas finished; go on with: "
            f"twinrun seeds --resume {exc.sweep_id[:8]}",
            file=sys.stderr,
        )
        return 130
    extra = per_replica(result)
    if args.json:
        print_json({**result.to_dict(), "replicas": extra})
        return 0 if result.ok else 1
    seeds = result.plan.seeds
    print(
        f"scope: {replicas} replicas (seeds {seeds[0]}..{seeds[-1]}), each shared by every candidate "
        "(same initial weights, batches, augmentation); Δ and P(better) are paired across replicas, so "
        "they hold training noise: a statement about the recipes, on this validation set.\n"
    )
    print(format_sweep(result.analysis))
    print(format_per_replica(extra, result.analysis))
    baselines = baseline_means([o.result for o in result.ran if o.result])
    if baselines:
        print(baselines)
    if not args.no_tensorboard:
        from twinrun._home import twinrun_home
        from twinrun.sweeps import sweep_tensorboard_dir

        folder = sweep_tensorboard_dir(twinrun_home(args.home), result.plan.name, result.sweep_id)
        print(f"curves: tensorboard --logdir {folder}   (seed-<s>/<candidate> per replica, mean/<candidate>)")
    print(
        f"{replicas} replicas in {result.seconds:.1f} s · recorded as sweep {result.sweep_id[:8]}: "
        f"twinrun seeds --show {result.sweep_id[:8]}"
    )
    return 0 if result.ok else 1


def per_replica(result: SweepResult) -> dict[str, Any]:
    """Per candidate: each replica's own per-example verdicts, and the training-loss difference across them."""
    out: dict[str, Any] = {}
    runs = [o.result for o in result.ran if o.result]
    for name in result.plan.candidates:
        if name == result.plan.reference:
            continue
        val: dict[str, list[Any]] = {}
        train: list[float] = []
        for run in runs:
            comparison = run.get("comparisons", {}).get(name) or {}
            for metric, d in (comparison.get("val") or {}).items():
                val.setdefault(metric, []).append(d.get("better"))
            diff = (comparison.get("train_loss") or {}).get("diff")
            if diff is not None:
                train.append(diff)
        test = paired_t_test(train, [0.0] * len(train)) if train else None
        out[name] = {"per_example_better": val, "train_loss": test}
    return out


def format_per_replica(extra: dict[str, Any], analysis: dict[str, Any]) -> str:
    lines = ["", "each replica alone (per-example interval, this validation set only: what one run would claim):"]
    word = {True: "better", False: "worse", None: "~"}
    for name, entry in extra.items():
        for metric, calls in entry["per_example_better"].items():
            tally = ", ".join(
                f"{sum(c is k for c in calls)} {word[k]}" for k in (True, False, None) if any(c is k for c in calls)
            )
            lines.append(f"  {name} vs {analysis['reference']} · {metric}: {tally} of {len(calls)} replicas")
    lines.append(
        "training-loss difference across replicas (mean per-step Δ of each replica, skew-adjusted t interval):"
    )
    for name, entry in extra.items():
        t: PairedDifference | None = entry["train_loss"]
        if t is None or t.estimate is None:
            continue
        if t.low is None or t.high is None:
            lines.append(f"  {name}: {t.estimate:+.4f} ({t.reason})")
        else:
            mark = "lower" if t.high < 0 else ("higher" if t.low > 0 else "~")
            lines.append(f"  {name}: {t.estimate:+.4f} [{t.low:+.4f}, {t.high:+.4f}] {mark}")
    return "\n".join(lines)


def baseline_means(runs: list[dict[str, Any]]) -> str:
    """The dumb baselines' scores, averaged over the replicas (each trained on its replica's batches)."""
    scores: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for base, values in ((run.get("baselines") or {}).get("scores") or {}).items():
            for metric, v in values.items():
                if v is not None:
                    scores.setdefault(base, {}).setdefault(metric, []).append(float(v))
    if not scores:
        return ""
    parts = [
        f"{base} " + " ".join(f"{m} {sum(v) / len(v):.4f}" for m, v in metrics.items())
        for base, metrics in scores.items()
    ]
    return f"baselines (mean of {len(runs)} replicas, trained on the same batches): " + " · ".join(parts)
