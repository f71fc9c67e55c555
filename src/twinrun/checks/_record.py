"""Store a check report in the run registry, as a run of kind ``check``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinrun._home import twinrun_home
from twinrun._workspace import Provenance, RegistryChoice, chosen_registry
from twinrun.checks._context import CheckContext
from twinrun.checks._result import CheckReport
from twinrun.env import capture_environment

if TYPE_CHECKING:  # the checks use a registry they are handed; opening one is the workspace's part
    from twinrun.registry import Registry

__all__ = ["RegistryLike", "record_report"]

RegistryLike = RegistryChoice


def open_for_checks(registry: RegistryLike, home: str | Path | None) -> Registry | None:
    """Open the registry first, so a bad one fails before any check runs (the rule: ``twinrun._workspace``)."""
    return chosen_registry(registry, twinrun_home(home))


def record_report(registry: Registry, ctx: CheckContext, report: CheckReport) -> str:
    """Record the checked candidate's config, environment and every check outcome; returns the run id."""
    resolved = ctx.engine.resolved
    source = resolved.source
    env = capture_environment(code_path=source.path if source else None)
    run_id = registry.create_run(
        run_id=ctx.engine.run_id,
        name=resolved.name,
        config=resolved.to_config(),
        candidates=[ctx.candidate],
        reference=ctx.candidate,
        seed=resolved.settings.seed,
        steps=resolved.settings.steps,
        device=str(ctx.device),
        provenance=Provenance.of(source, resolved.config_hash(), env),
        tags=("check",),
        extra={"kind": "check"},
    )
    outcomes: list[dict[str, Any]] = []
    for r in report.results:
        d = r.to_dict()
        outcomes.append(
            {"name": r.name, "status": r.status, "measured": d["measured"], "expected": d["expected"], "details": d}
        )
    registry.record_checks(run_id, outcomes)
    registry.finish_run(run_id, {"kind": "check", "checks": report.to_dict()}, status="finished")
    return run_id
