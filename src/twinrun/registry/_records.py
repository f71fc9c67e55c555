"""What the registry hands back: plain frozen records, JSON-ready through ``to_dict()``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CandidateRecord", "Note", "Provenance", "RunRecord", "RunSummary", "Sweep", "best_of"]


@dataclass(frozen=True)
class Provenance:
    """Where a run came from, as :meth:`~twinrun.registry.Registry.create_run` records it.

    Attributes:
        experiment_path, experiment_sha256, experiment_source: the experiment file, its hash and its text.
        config_hash: the resolved configuration's hash (runs of one configuration share it).
        env: the captured environment (:func:`twinrun.env.capture_environment`).
        env_fingerprint: the hash of its numerics-relevant part (runs comparable bit for bit share it).
    """

    experiment_path: str | None = None
    experiment_sha256: str | None = None
    experiment_source: str | None = None
    config_hash: str | None = None
    env: Mapping[str, Any] | None = None
    env_fingerprint: str | None = None

    @classmethod
    def of(cls, source: Any, config_hash: str | None, env: Mapping[str, Any] | None) -> Provenance:
        """From an experiment's ``source`` (its ``path``, ``sha256`` and ``text``; ``None`` for an experiment
        built in code), its config hash and a captured environment, fingerprinted here."""
        from twinrun.env import numerics_fingerprint

        return cls(
            experiment_path=source.path if source else None,
            experiment_sha256=source.sha256 if source else None,
            experiment_source=source.text if source else None,
            config_hash=config_hash,
            env=env,
            env_fingerprint=numerics_fingerprint(env) if env else None,
        )


@dataclass(frozen=True)
class Note:
    created_at: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"created_at": self.created_at, "text": self.text}


@dataclass(frozen=True)
class CandidateRecord:
    """One candidate of a run: its resolved config, status and final validation metrics."""

    name: str
    config: dict[str, Any]
    status: str
    diverged_at: int | None = None
    final: dict[str, float | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "status": self.status, "diverged_at": self.diverged_at, "final": self.final}


def best_of(result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The best candidate on the run's main metric (the first one that is not the loss)."""
    if not result:
        return None
    goals = result.get("metrics") or {}
    names = [m for m in goals if m != "loss"] or list(goals)
    if not names:
        return None
    metric = names[0]
    higher = str(goals[metric]).startswith("higher")
    scored = []
    for cand, data in (result.get("candidates") or {}).items():
        value = (data.get("final") or {}).get(metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            scored.append((value, cand))
    if not scored:
        return None
    value, cand = max(scored) if higher else min(scored)
    return {"metric": metric, "candidate": cand, "value": value, "higher_is_better": higher}


class _RunTimes:
    """What a run's id and times give (shared by :class:`RunSummary` and :class:`RunRecord`)."""

    id: str
    started_at: float
    ended_at: float | None

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else max(0.0, self.ended_at - self.started_at)


@dataclass(frozen=True)
class RunSummary(_RunTimes):
    """A row of ``twinrun runs``: enough to find a run, not its environment or source."""

    id: str
    name: str
    status: str
    started_at: float
    ended_at: float | None
    candidates: tuple[str, ...]
    reference: str | None
    seed: int | None
    steps: int | None
    last_step: int | None
    tags: tuple[str, ...]
    best: dict[str, Any] | None
    sweep_id: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
            "candidates": list(self.candidates),
            "reference": self.reference,
            "seed": self.seed,
            "steps": self.steps,
            "last_step": self.last_step,
            "tags": list(self.tags),
            "best": self.best,
            "sweep_id": self.sweep_id,
            "error": self.error,
        }


@dataclass(frozen=True)
class RunRecord(_RunTimes):
    """Everything the registry holds about one run (per-step metrics via ``Registry.metrics``)."""

    id: str
    name: str
    status: str
    started_at: float
    ended_at: float | None
    heartbeat_at: float | None
    pid: int | None
    hostname: str | None
    experiment_path: str | None
    experiment_sha256: str | None
    experiment_source: str | None
    config: dict[str, Any]
    config_hash: str | None
    reference: str | None
    seed: int | None
    steps: int | None
    last_step: int | None
    device: str | None
    env: dict[str, Any] | None
    env_fingerprint: str | None
    result: dict[str, Any] | None
    error: str | None
    sweep_id: str | None
    extra: dict[str, Any] = field(default_factory=dict)
    candidates: dict[str, CandidateRecord] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    notes: tuple[Note, ...] = ()

    @property
    def best(self) -> dict[str, Any] | None:
        return best_of(self.result)

    @property
    def provenance(self) -> Provenance:
        """Where the run came from, as it was recorded."""
        return Provenance(
            self.experiment_path,
            self.experiment_sha256,
            self.experiment_source,
            self.config_hash,
            self.env,
            self.env_fingerprint,
        )

    def to_dict(self, *, source: bool = True, env: bool = True) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
            "heartbeat_at": self.heartbeat_at,
            "pid": self.pid,
            "hostname": self.hostname,
            "experiment": {
                "path": self.experiment_path,
                "sha256": self.experiment_sha256,
                **({"source": self.experiment_source} if source else {}),
            },
            "config": self.config,
            "config_hash": self.config_hash,
            "reference": self.reference,
            "seed": self.seed,
            "steps": self.steps,
            "last_step": self.last_step,
            "device": self.device,
            "candidates": {n: c.to_dict() for n, c in self.candidates.items()},
            **({"env": self.env} if env else {}),
            "env_fingerprint": self.env_fingerprint,
            "result": self.result,
            "best": self.best,
            "error": self.error,
            "sweep_id": self.sweep_id,
            "extra": self.extra,
            "tags": list(self.tags),
            "notes": [n.to_dict() for n in self.notes],
        }


@dataclass(frozen=True)
class Sweep:
    """A group of runs (e.g. the seeds of ``twinrun seeds``) and, once analysed, its analysis."""

    id: str
    name: str
    experiment: str | None
    config: dict[str, Any]
    status: str
    created_at: float
    runs: tuple[str, ...] = ()
    analysis: dict[str, Any] | None = None

    @property
    def short_id(self) -> str:
        return self.id[:8]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "experiment": self.experiment,
            "config": self.config,
            "status": self.status,
            "created_at": self.created_at,
            "runs": list(self.runs),
            "analysis": self.analysis,
        }
