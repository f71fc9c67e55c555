"""A sweep started or resumed: the plan recorded in the registry, checked against the one asked for now."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from twinrun.errors import ConfigError, TwinrunError
from twinrun.registry import Registry, Sweep
from twinrun.spec import Experiment, ResolvedExperiment
from twinrun.sweeps._plan import SweepPlan, choose_seeds, make_plan

__all__ = ["plan_or_resume", "recorded_plan", "refuse_if_running", "resolve_quietly"]


def recorded_plan(sweep: Sweep) -> SweepPlan:
    try:
        return SweepPlan.from_config(sweep.config)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"sweep {sweep.short_id} was not made by twinrun seeds (its config lacks {exc})",
            fix="pass the id of a sweep listed by: twinrun seeds --list",
        ) from exc


def resolve_quietly(plan: SweepPlan) -> ResolvedExperiment | None:
    try:
        return plan.resolved()
    except TwinrunError:
        return None


def plan_or_resume(
    reg: Registry,
    experiment: Experiment | str | Path | None,
    *,
    seeds: int | Sequence[int] | None,
    base_seed: int | None,
    resume: bool | str,
    candidates: Sequence[str] | None,
    reference: str | None,
    overrides: Mapping[str, Any] | Sequence[str] | None,
    metric: str | None,
    ensemble: bool,
) -> tuple[Sweep | None, SweepPlan, ResolvedExperiment, list[str]]:
    """The sweep to resume (or ``None`` for a new one), the plan, and notes for the user."""
    notes: list[str] = []
    if isinstance(resume, str) and resume:
        sweep = reg.get_sweep(resume)
        recorded = recorded_plan(sweep)
        wanted = choose_seeds(seeds, base_seed=base_seed) if seeds is not None else recorded.seeds
        all_seeds = recorded.seeds + tuple(s for s in wanted if s not in recorded.seeds)
        plan, resolved = make_plan(
            experiment if experiment is not None else recorded.experiment,
            all_seeds,
            overrides=overrides if overrides is not None else recorded.overrides,
            candidates=candidates if candidates is not None else recorded.candidates,
            reference=reference if reference is not None else recorded.reference,
            metric=metric or recorded.metric,
            save_outputs=recorded.save_outputs,
        )
        _check_same(plan, recorded, sweep)
        if len(all_seeds) > recorded.k:
            notes.append(f"sweep {sweep.short_id}: {len(all_seeds) - recorded.k} seed(s) added to its {recorded.k}")
        return sweep, plan, resolved, notes
    if experiment is None:
        raise ConfigError("no experiment given", fix="twinrun seeds FILE --seeds K (or --resume SWEEP_ID)")
    plan, resolved = make_plan(
        experiment,
        choose_seeds(seeds, base_seed=base_seed),
        overrides=overrides,
        candidates=candidates,
        reference=reference,
        metric=metric,
        save_outputs=ensemble,
    )
    if resume is True:
        for sweep in reg.list_sweeps(experiment=plan.name):
            if sweep.status != "finished" and sweep.config.get("sweep_hash") == plan.sweep_hash:
                recorded = recorded_plan(sweep)
                merged = recorded.seeds + tuple(s for s in plan.seeds if s not in recorded.seeds)
                plan = dataclasses.replace(plan, seeds=merged, save_outputs=recorded.save_outputs)
                notes.append(f"resuming sweep {sweep.short_id} ({sweep.status})")
                return sweep, plan, resolved, notes
        notes.append(f"no unfinished sweep of this configuration of {plan.name!r} to resume; starting a new one")
    return None, plan, resolved, notes


def _check_same(plan: SweepPlan, recorded: SweepPlan, sweep: Sweep) -> None:
    if plan.sweep_hash == recorded.sweep_hash:
        return
    differences = []
    if plan.experiment_sha256 != recorded.experiment_sha256:
        differences.append(f"the experiment file {plan.experiment} changed since the sweep started")
    if plan.overrides != recorded.overrides:
        differences.append(f"overrides {list(plan.overrides)} instead of {list(recorded.overrides)}")
    if plan.candidates != recorded.candidates or plan.reference != recorded.reference:
        differences.append(
            f"candidates {list(plan.candidates)} (reference {plan.reference}) instead of "
            f"{list(recorded.candidates)} (reference {recorded.reference})"
        )
    raise ConfigError(
        f"sweep {sweep.short_id} ran another configuration: "
        + ("; ".join(differences) or "the resolved config differs"),
        fix=f"resume it with its own configuration (twinrun seeds --resume {sweep.short_id}, "
        "no FILE or --set), or start a new sweep (leave out --resume)",
    )


def refuse_if_running(reg: Registry, sweep: Sweep | None) -> None:
    if sweep is None:
        return
    running = reg.list_runs(sweep_id=sweep.id, status="running")
    if running:
        seeds_running = ", ".join(str(r.seed) for r in running)
        raise ConfigError(
            f"sweep {sweep.short_id} still has seeds running (seeds {seeds_running}), in another process",
            fix="wait for that process to end (or stop it), then resume",
        )
