"""A sweep read back from the registry: analysed again, or loaded as stored."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from twinrun._home import twinrun_home
from twinrun._workspace import RegistryChoice, chosen_registry_path
from twinrun.errors import ConfigError
from twinrun.registry import Registry, Sweep
from twinrun.spec import ResolvedExperiment
from twinrun.sweeps._analysis import ANALYSIS_SEED, analyze_records
from twinrun.sweeps._options import Analysis, split_legacy
from twinrun.sweeps._plan import SweepPlan
from twinrun.sweeps._records import SeedRecord, collect_seeds, sweep_folder, write_analysis_file
from twinrun.sweeps._resume import recorded_plan, resolve_quietly

__all__ = ["analysis_of", "analyze_sweep", "load_sweep"]


def analyze_sweep(
    sweep_id: str,
    *,
    analysis: Analysis | None = None,
    home: str | Path | None = None,
    registry: RegistryChoice = True,
    store: bool = False,
    **legacy: Any,
) -> dict[str, Any]:
    """Analyse a sweep again from the registry, without running anything.

    ``analysis``: how (an :class:`Analysis`; the flat ``metric=``... keywords of the old
    signature still work, with a ``DeprecationWarning``). ``store=True`` replaces the stored
    analysis (registry and ``analysis.json``).
    """
    running = sorted(set(legacy) - {f.name for f in fields(Analysis)})  # jobs=, backend=: nothing runs here
    if running:
        raise TypeError(f"analyze_sweep() got an unexpected keyword argument {running[0]!r}")
    _, options = split_legacy(None, analysis, legacy, function="analyze_sweep")
    metric = options.metric
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
        sessions = list(sweep.config.get("sessions", []))
        status = sweep.status
        result = analysis_of(reg, sweep.id, plan, records, resolved, status=status, options=options, sessions=sessions)
        if store:
            reg.update_sweep(sweep.id, analysis=result)
            write_analysis_file(folder, result)
        return result


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
    options: Analysis,
    sessions: list[Any],
) -> dict[str, Any]:
    sweep = reg.get_sweep(sweep_id)
    analysis = analyze_records(
        plan,
        records,
        resolved=resolved,
        metric=options.metric,
        deploy=options.deploy,
        confidence=options.confidence,
        n_resamples=options.n_resamples,
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
