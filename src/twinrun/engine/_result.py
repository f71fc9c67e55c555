"""The result of a twin run: per-candidate outcomes and paired comparisons."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from twinrun.engine._build import InitReport
from twinrun.stats import Interval

__all__ = ["CandidateResult", "Comparison", "Difference", "TwinResult"]


@dataclass(frozen=True)
class Difference:
    """A paired difference (candidate minus reference) with its confidence interval.

    ``low``/``high`` are ``None`` where there is no interval (one run's training-loss
    difference, fewer than two pairs): one meaning for "not estimable", as in
    :mod:`twinrun.stats`.
    """

    mean: float
    low: float | None
    high: float | None
    n: int
    method: str
    higher_is_better: bool
    block: int | None = None
    #: what the interval's sources of variance support a claim about
    scope: str = ""

    @classmethod
    def of(cls, interval: Interval, method: str, higher_is_better: bool, *, scope: str = "") -> Difference:
        """From a :class:`~twinrun.stats.Interval` of the per-pair differences."""
        mean = math.nan if interval.estimate is None else interval.estimate
        return cls(mean, interval.low, interval.high, interval.n, method, higher_is_better, scope=scope)

    @property
    def resolved(self) -> bool:
        """Whether the interval excludes zero."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    @property
    def better(self) -> bool | None:
        """True/False when the candidate is resolved better/worse than the reference, else None."""
        if not self.resolved:
            return None
        return (self.mean > 0) == self.higher_is_better

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "diff": _num(self.mean),
            "low": _num(self.low),
            "high": _num(self.high),
            "n": self.n,
            "method": self.method,
            "better": self.better,
        }
        if self.block is not None:
            d["block"] = self.block
        if self.scope:
            d["scope"] = self.scope
        return d


@dataclass(frozen=True)
class Comparison:
    """A candidate against the reference on the shared validation set and training batches."""

    candidate: str
    reference: str
    val: Mapping[str, Difference]
    train_loss: Difference | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "reference": self.reference,
            "val": {k: v.to_dict() for k, v in self.val.items()},
            "train_loss": None if self.train_loss is None else self.train_loss.to_dict(),
        }


@dataclass
class CandidateResult:
    """What one candidate did during the run."""

    name: str
    status: str  # "finished", "diverged" (NaN/Inf loss) or "failed" (its code raised)
    final: dict[str, float]
    per_example: dict[str, np.ndarray] = field(repr=False)
    train_loss: np.ndarray = field(repr=False)
    train_metrics: dict[str, np.ndarray] = field(repr=False)
    eval_history: list[tuple[int, dict[str, float]]] = field(repr=False)
    outputs: torch.Tensor | None = field(default=None, repr=False)
    diverged_at: int | None = None
    n_parameters: int = 0
    step_seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    error: str | None = None
    #: the means on the test split, evaluated once at the end (empty without one); no decision uses it
    test: dict[str, float] = field(default_factory=dict)
    #: the step it stopped training at (early stopping, the ``patience`` setting), else None
    stopped_at: int | None = None
    #: with select_by: its best step and value (on the choosing half), and its weights there
    best: dict[str, Any] | None = None
    best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "diverged_at": self.diverged_at,
            **({"stopped_at": self.stopped_at} if self.stopped_at is not None else {}),
            **({"best": dict(self.best)} if self.best is not None else {}),
            **({"error": self.error} if self.error else {}),
            "final": {k: _num(v) for k, v in self.final.items()},
            **({"test": {k: _num(v) for k, v in self.test.items()}} if self.test else {}),
            "final_train_loss": _num(_last_finite(self.train_loss)),
            "n_parameters": self.n_parameters,
            "step_seconds": self.step_seconds,
            "eval_history": [{"step": s, **{k: _num(v) for k, v in r.items()}} for s, r in self.eval_history],
        }


@dataclass
class TwinResult:
    """Everything a twin run measured. ``to_dict()`` is what ``--json`` prints."""

    run_id: str
    experiment: str
    reference: str
    seed: int
    steps: int
    device: str
    metric_goals: dict[str, bool]
    candidates: dict[str, CandidateResult]
    comparisons: dict[str, Comparison]
    init: InitReport
    output_kind: str
    val_targets: torch.Tensor | None = field(default=None, repr=False)
    memory: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    warnings: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    reproducibility: dict[str, Any] = field(default_factory=dict)
    #: candidate -> how its steps ran: "vectorised with K candidates: a+b+..." or "sequential: <why>"
    execution: dict[str, str] = field(default_factory=dict)
    #: what the data was: each split's content hash, the first epoch's order, epoch coverage (``_data_facts``)
    data: dict[str, Any] = field(default_factory=dict)
    #: the dumb baselines on this validation set and each candidate's distance to them (``_verdict``)
    baselines: dict[str, Any] = field(default_factory=dict)
    #: with select_by: the best steps and the verdict at them on the judging half (``_selection``)
    selection: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "experiment": self.experiment,
            "seed": self.seed,
            "steps": self.steps,
            "device": self.device,
            "reference": self.reference,
            "output_kind": self.output_kind,
            "metrics": {k: ("higher" if v else "lower") + " is better" for k, v in self.metric_goals.items()},
            "candidates": {k: v.to_dict() for k, v in self.candidates.items()},
            "comparisons": {k: v.to_dict() for k, v in self.comparisons.items()},
            "init": self.init.to_dict(),
            "memory": self.memory,
            "timing": self.timing,
            "warnings": list(self.warnings),
            "artifacts": dict(self.artifacts),
            "reproducibility": dict(self.reproducibility),
            "execution": dict(self.execution),
            "data": dict(self.data),
            "baselines": dict(self.baselines),
            **({"selection": dict(self.selection)} if self.selection else {}),
        }


def _num(value: float | None) -> float | None:
    """JSON has no NaN: non-finite numbers become null."""
    return float(value) if value is not None and math.isfinite(value) else None


def _last_finite(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else math.nan
