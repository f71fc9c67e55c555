"""A sweep's seeds as the registry remembers them, and its folder under twinrun's home.

The registry is the source of truth: a seed is *done* when the sweep has a
``finished`` run with that seed (and, when the sweep keeps outputs for seed
ensembles, the run's ``seed_outputs`` artifact). Everything else (a failed or
crashed run, or no run at all) is rerun by a resumed sweep.

Folder: ``<home>/sweeps/<sweep id>/`` holds ``analysis.json`` and, per seed,
``seeds/seed-<S>.log`` (the process's output), ``seed-<S>.json`` (its outcome)
and ``seed-<S>.task.json`` (what it was asked to run).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twinrun._atomic import write_json
from twinrun.registry import Registry, RunSummary
from twinrun.sweeps._plan import SweepPlan
from twinrun.sweeps._worker import OUTPUTS_ARTIFACT

__all__ = ["SeedRecord", "collect_seeds", "sweep_folder", "write_analysis_file"]


def sweep_folder(home: Path, sweep_id: str) -> Path:
    from twinrun._home import sweeps_dir

    return sweeps_dir(home) / sweep_id


@dataclass
class SeedRecord:
    """One seed of a sweep: its usable run if it has one, else how its last attempt ended."""

    seed: int
    status: str  # finished, failed, crashed, interrupted, running, not run
    run_id: str | None = None
    result: dict[str, Any] | None = field(default=None, repr=False)
    outputs: str | None = None
    error: str | None = None
    attempts: int = 0

    @property
    def done(self) -> bool:
        return self.status == "finished"

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "status": self.status,
            "run_id": self.run_id,
            "outputs": self.outputs,
            "error": self.error,
            "attempts": self.attempts,
        }


def collect_seeds(
    registry: Registry, sweep_id: str, plan: SweepPlan, folder: Path | None = None
) -> dict[int, SeedRecord]:
    """The state of every planned seed, read from the registry (newest run first)."""
    by_seed: dict[int, list[RunSummary]] = {}
    for run in registry.list_runs(sweep_id=sweep_id):
        if run.seed is not None:
            by_seed.setdefault(int(run.seed), []).append(run)
    records = {}
    for seed in plan.seeds:
        runs = by_seed.get(seed, [])
        records[seed] = _record(registry, seed, runs, plan.save_outputs, folder)
    return records


def _record(
    registry: Registry, seed: int, runs: list[RunSummary], need_outputs: bool, folder: Path | None
) -> SeedRecord:
    for run in runs:
        if run.status != "finished":
            continue
        outputs = registry.artifacts(run.id, OUTPUTS_ARTIFACT)
        path = outputs[-1]["path"] if outputs else None
        if need_outputs and (path is None or not Path(path).is_file()):
            continue
        return SeedRecord(seed, "finished", run.id, registry.get_run(run.id).result, path, attempts=len(runs))
    if runs:
        last = runs[0]
        status = last.status
        error = last.error
        if status == "finished":  # finished, but its outputs are gone
            status, error = "failed", "finished, but its saved validation outputs are missing"
        elif error and error.startswith("interrupted"):
            status = "interrupted"
        return SeedRecord(seed, status, last.id, error=error, attempts=len(runs))
    outcome = _outcome_file(folder, seed)
    if outcome is not None and outcome.get("status") not in (None, "finished"):
        return SeedRecord(seed, str(outcome["status"]), error=outcome.get("error"), attempts=1)
    return SeedRecord(seed, "not run")


def _outcome_file(folder: Path | None, seed: int) -> Mapping[str, Any] | None:
    if folder is None:
        return None
    try:
        data = json.loads((folder / "seeds" / f"seed-{seed}.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, Mapping) else None


def write_analysis_file(folder: Path, analysis: Mapping[str, Any]) -> Path:
    """``<folder>/analysis.json``, written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_json(folder / "analysis.json", analysis, allow_nan=False)
