"""What one seed's process is given (:class:`SeedTask`) and what comes back (:class:`SeedOutcome`).

Both are plain, picklable and JSON-ready: a task travels to a fresh process as a
JSON file (or to a Ray worker as a pickle), an outcome comes back the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["OUTCOME_STATUSES", "SeedOutcome", "SeedTask"]

#: ``finished``: the run ended and its outputs are saved; ``failed``: the experiment raised;
#: ``crashed``: the process died without a word (killed, out of memory); ``interrupted``:
#: stopped by Ctrl-C / SIGTERM; ``skipped``: finished in an earlier session of the sweep.
OUTCOME_STATUSES = ("finished", "failed", "crashed", "interrupted", "skipped")


@dataclass(frozen=True)
class SeedTask:
    """Everything a fresh process needs to run one seed of a sweep."""

    sweep_id: str
    seed: int
    experiment: str
    overrides: tuple[str, ...]
    candidates: tuple[str, ...]
    reference: str
    home: str
    registry: str
    folder: str  # the sweep's folder: seeds/<seed>.{task,json,log} live under it
    threads: int
    save_outputs: bool = True
    tensorboard: bool = False
    tags: tuple[str, ...] = ()
    #: where this seed's TensorBoard files go (``<sweep's folder>/seed-<seed>``, a subfolder per candidate)
    tensorboard_dir: str | None = None

    @property
    def seed_dir(self) -> Path:
        return Path(self.folder) / "seeds"

    @property
    def task_path(self) -> Path:
        return self.seed_dir / f"seed-{self.seed}.task.json"

    @property
    def outcome_path(self) -> Path:
        return self.seed_dir / f"seed-{self.seed}.json"

    @property
    def log_path(self) -> Path:
        return self.seed_dir / f"seed-{self.seed}.log"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> SeedTask:
        data = json.loads(text)
        for key in ("overrides", "candidates", "tags"):
            data[key] = tuple(data.get(key) or ())
        return cls(**data)


@dataclass
class SeedOutcome:
    """How one seed ended. ``result`` is the run's ``TwinResult.to_dict()`` when it finished."""

    seed: int
    status: str
    run_id: str | None = None
    error: str | None = None
    fix: str | None = None
    returncode: int | None = None
    seconds: float | None = None
    log: str | None = None
    outputs: str | None = None
    result: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status in ("finished", "skipped")

    def to_dict(self, *, result: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not result:
            data.pop("result")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeedOutcome:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
