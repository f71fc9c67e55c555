"""The best step of each candidate, early stopping, and a verdict at the best step that is not biased.

With the ``select_by`` setting (a validation metric, or ``loss``), every full
evaluation updates each candidate's best step; with ``patience`` too, a candidate
whose best has not improved for that many evaluations stops training (the others
go on; it keeps its weights of the stop).

Choosing each candidate's best step on the validation set and then comparing the
candidates on that same set favours whichever curve is noisier: the maximum of
noisy evaluations overestimates (the winner's curse). So the validation examples
are split in two halves, once per run, from the ``selection`` stream (the same
halves for every candidate): the best step is chosen on the first half only, and
the verdict at the best step is computed on the second half, which played no part
in choosing it. The verdict at the last step uses the whole set, as always.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from twinrun.engine._evaluate import EvalOutput
from twinrun.errors import ConfigError
from twinrun.rng import RngStreams

__all__ = ["Best", "Selection", "check_selection"]


def check_selection(settings: Any, metric_goals: Mapping[str, bool]) -> None:
    """``select_by`` names a metric of the run, and ``patience`` comes with it: before anything is built."""
    if settings.select_by is not None and settings.select_by not in metric_goals:
        raise ConfigError(
            f"setting select_by={settings.select_by!r} is not a validation metric of this run",
            fix=f"use one of: {', '.join(metric_goals)}",
        )
    if settings.patience is not None and settings.select_by is None:
        raise ConfigError(
            f"setting patience={settings.patience} needs select_by: the metric whose best it waits on",
            fix="e.g. --set select_by=accuracy --set patience=3",
        )


@dataclass
class Best:
    """A candidate's best evaluation so far, judged on the selection half."""

    step: int = -1
    value: float = math.nan
    per_example: dict[str, np.ndarray] = field(default_factory=dict)
    state: dict[str, torch.Tensor] | None = None
    since: int = 0  # evaluations since the best one


class Selection:
    """Tracks ``metric`` on the selection half for every candidate (see the module)."""

    def __init__(
        self, metric: str, higher_is_better: bool, patience: int | None, n_val: int, streams: RngStreams
    ) -> None:
        self.metric, self.higher, self.patience = metric, higher_is_better, patience
        order = torch.randperm(n_val, generator=streams.torch("selection", 0)).numpy()
        self.choose = np.zeros(n_val, dtype=bool)
        self.choose[order[: n_val // 2]] = True  # the first half chooses; the rest judges
        self.best: dict[str, Best] = {}

    @classmethod
    def of(cls, settings: Any, goals: Mapping[str, bool], n_val: int, streams: RngStreams) -> Selection | None:
        """The selection of the ``select_by`` and ``patience`` settings (``None`` without ``select_by``)."""
        metric = settings.select_by
        return None if metric is None else cls(metric, goals.get(metric, False), settings.patience, n_val, streams)

    def update(self, name: str, out: EvalOutput, model: torch.nn.Module) -> bool:
        """Take a full evaluation of ``name`` into account; whether the candidate should stop now."""
        best = self.best.setdefault(name, Best())
        value = float(np.mean(out.per_example[self.metric][self.choose]))
        better = best.step < 0 or (value > best.value if self.higher else value < best.value)
        if better:
            best.step, best.value, best.since = out.step, value, 0
            best.per_example = {k: v.copy() for k, v in out.per_example.items()}
            best.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            best.since += 1
        return self.patience is not None and best.since >= self.patience

    def held_out(self, per_example: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The judging half of per-example values."""
        return {k: v[~self.choose] for k, v in per_example.items()}

    def report(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "higher_is_better": self.higher,
            "patience": self.patience,
            "chosen_on": int(self.choose.sum()),
            "judged_on": int((~self.choose).sum()),
            "best": {n: {"step": b.step, "value": b.value} for n, b in self.best.items()},
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            n: {
                "step": b.step,
                "value": b.value,
                "since": b.since,
                "state": b.state,
                "per_example": {k: torch.from_numpy(v.copy()) for k, v in b.per_example.items()},
            }
            for n, b in self.best.items()
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = {
            n: Best(
                int(b["step"]),
                float(b["value"]),
                {k: v.numpy().copy() for k, v in b["per_example"].items()},
                copy.copy(b["state"]),
                int(b["since"]),
            )
            for n, b in state.items()
        }
