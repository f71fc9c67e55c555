"""A sweep read back from the registry: analysed again, or loaded as stored."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twinrun._home import twinrun_home
from twinrun._workspace import RegistryChoice, chosen_registry_path
from twinrun.errors import ConfigError
from twinrun.registry import Registry, Sweep
from twinrun.spec import ResolvedExperiment
from twinrun.sweeps._analysis import ANALYSIS_SEED, analyze_records
from twinrun.sweeps._options import check_options
from twinrun.sweeps._plan import SweepPlan
from twinrun.sweeps._records import SeedRecord, collect_seeds, sweep_folder, write_analysis_file
from twinrun.sweeps._resume import recorded_plan, resolve_quietly

__all__ = ["analysis_of", "analyze_sweep", "load_sweep"]


def analyze_sweep(
    sweep_id: str,
    *,
    metric: str | None = None,
    deploy: str = "both",
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    home: str | Path | None = None,
    registry: RegistryChoice = True,
    store: bool = False,
) -> dict[str, Any]:
    """Analyse a sweep again from the registry, without running anything.

    ``store=True`` replaces the stored analysis (registry and ``analysis.json``).
    """
    check_options("local", None, deploy, confidence, n_resamples)
    root = twinrun_home(home).absolute()
    with Registry.open(chosen_registry_path(registry, root, needed_by="a sweep")) as reg:
        sweep = reg.get_sweep(sweep_id)
        plan = recorded_plan(sweep)
        if metric is not None and metric not in plan.metrics:
            raise ConfigError(
                f"metric {metric!r} is not measured by sweep {sweep.short_id}",
                fix=f"choose one of: {', '.join(plan.metrics)}",
            )
        folder = sweep_folder(root, sweep.id)
        records = collect_seeds(reg, sweep.id, plan, folder)
        resolved = resolve_quietly(plan)
        analysis = analysis_of(
            reg,
            sweep.id,
            plan,
            records,
            resolved,
            status=sweep.status,
            metric=metric,
            deploy=deploy,
            confidence=confidence,
            n_resamples=n_resamples,
            sessions=list(sweep.config.get("sessions", [])),
        )
        if store:
            reg.update_sweep(sweep.id, analysis=analysis)
            write_analysis_file(folder, analysis)
        return analysis


def load_sweep(sweep_id: str, *, home: str | Path | None = None, registry: RegistryChoice = True) -> Sweep:
    """A sweep as stored in the registry (``.analysis``: its stored analysis, or ``None``)."""
    root = twinrun_home(home).absolute()
    with Registry.open(chosen_registry_path(registry, root, needed_by="a sweep"), create=False, reap=False) as reg:
        return reg.get_sweep(sweep_id)


def analysis_of(
    reg: Registry,
    sweep_id: str,
    plan: SweepPlan,
    records: Mapping[int, SeedRecord],
    resolved: ResolvedExperiment | None,
    *,
    status: str,
    metric: str | None,
    deploy: str,
    confidence: float,
    n_resamples: int,
    sessions: list[Any],
) -> dict[str, Any]:
    sweep = reg.get_sweep(sweep_id)
    analysis = analyze_records(
        plan,
        records,
        resolved=resolved,
        metric=metric,
        deploy=deploy,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=ANALYSIS_SEED,
    )
    return {
        "sweep": {
            "id": sweep_id,
            "name": plan.name,
            "status": status,
            "created_at": sweep.created_at,
            "analysed_at": time.time(),
            "registry": str(reg.path),
        },
        "plan": plan.to_config(),
        "sessions": sessions,
        **analysis,
    }
