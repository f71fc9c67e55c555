"""What changes while a run trains, apart from the run that was built once.

A run is two things. What is **built** once, before the first step: the
candidates (models, optimizers, schedulers), the data and its plan, the random
streams, the validation set. And what **changes** as it trains, held here: the
step, each candidate's training curves, its evaluations, and where the time
went. :class:`~twinrun.engine.TwinEngine` and :class:`~twinrun.Twin` record
every step through :meth:`RunHistory.record_step` (the one step-recording path,
which also marks a candidate whose loss stopped being finite and makes the
step's events); checkpoints save and load it; the result is read from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from twinrun.engine._build import CandidateState
from twinrun.engine._evaluate import EvalOutput
from twinrun.engine._events import CandidateDiverged, Event, StepDone
from twinrun.engine._step import StepOutput

__all__ = ["RunHistory"]


class RunHistory:
    """The step, the curves and the evaluations of a run's candidates.

    Args:
        names: the candidates.
        metrics: the training metrics recorded per step.
        steps: the planned steps (the curves' length); ``None``: open-ended (a :class:`~twinrun.Twin`,
            whose curves grow as the loop goes).
    """

    def __init__(self, names: Iterable[str], metrics: Iterable[str], steps: int | None) -> None:
        names, metrics = list(names), list(metrics)
        self.steps = steps
        self.step = 0
        size = steps or 0
        self.train_loss: dict[str, np.ndarray] = {n: np.full(size, np.nan) for n in names}
        self.train_metrics: dict[str, dict[str, np.ndarray]] = {
            n: {m: np.full(size, np.nan) for m in metrics} for n in names
        }
        self.eval_history: dict[str, list[tuple[int, dict[str, float]]]] = {n: [] for n in names}
        self.last_eval: dict[str, EvalOutput] = {}
        self.step_seconds: dict[str, float] = dict.fromkeys(names, 0.0)
        self.timing: dict[str, float] = {"augment": 0.0, "train": 0.0, "eval": 0.0, "data": 0.0}
        self.test_scores: dict[str, dict[str, float]] = {}
        self.baseline_evals: dict[str, EvalOutput] = {}

    # ------------------------------------------------------------------ a step
    def _room_for(self, step: int) -> None:
        """Open-ended curves double when a step falls past their end."""
        for name, curve in self.train_loss.items():
            if step <= len(curve):
                continue
            size = max(step, 2 * len(curve), 64)
            self.train_loss[name] = np.concatenate([curve, np.full(size - len(curve), np.nan)])
            self.train_metrics[name] = {
                m: np.concatenate([v, np.full(size - len(v), np.nan)]) for m, v in self.train_metrics[name].items()
            }

    def record_step(
        self, step: int, outputs: Mapping[str, StepOutput], states: Mapping[str, CandidateState]
    ) -> list[tuple[str, float, str | None]]:
        """Write update ``step``'s outputs; mark the candidates whose loss became NaN/Inf (or whose code raised)
        as diverged, and return them as ``(name, value, error)``."""
        if self.steps is None:
            self._room_for(step)
        diverged: list[tuple[str, float, str | None]] = []
        for name, out in outputs.items():
            self.step_seconds[name] = self.step_seconds.get(name, 0.0) + out.seconds
            self.train_loss[name][step - 1] = out.loss
            metrics = self.train_metrics[name]
            for metric, value in out.metrics.items():
                if metric in metrics:
                    metrics[metric][step - 1] = value
            if not out.finite:
                state = states[name]
                state.diverged_at, state.diverged_value, state.error = step, out.loss, out.error
                diverged.append((name, out.loss, out.error))
        self.step = step
        return diverged

    @staticmethod
    def step_events(
        run_id: str,
        step: int,
        outputs: Mapping[str, StepOutput],
        states: Mapping[str, CandidateState],
        diverged: Iterable[tuple[str, float, str | None]],
    ) -> list[Event]:
        """The step's ``StepDone``, then a ``CandidateDiverged`` for each candidate that stopped."""
        done: list[Event] = [
            StepDone(
                run_id,
                step,
                {n: o.loss for n, o in outputs.items()},
                {n: dict(o.metrics) for n, o in outputs.items()},
                {n: o.lr for n, o in outputs.items()},
                {n: s.model for n, s in states.items()},
                {n: s.optimizer for n, s in states.items()},
            )
        ]
        return done + [CandidateDiverged(run_id, step, name, value, error) for name, value, error in diverged]

    # ------------------------------------------------------------------ an evaluation
    def record_eval(self, name: str, step: int, out: EvalOutput, means: Mapping[str, float]) -> None:
        """Candidate ``name``'s evaluation after ``step`` updates (one per step: a repeat replaces it)."""
        self.last_eval[name] = out
        history = self.eval_history[name]
        if history and history[-1][0] == step:
            history.pop()
        history.append((step, dict(means)))

    # ------------------------------------------------------------------ checkpoints
    def candidate_state(self, name: str) -> dict[str, Any]:
        """What a checkpoint keeps of candidate ``name``'s history."""
        import torch

        return {
            "train_loss": torch.from_numpy(self.train_loss[name].copy()),
            "train_metrics": {m: torch.from_numpy(v.copy()) for m, v in self.train_metrics[name].items()},
            "eval_history": [[step, dict(values)] for step, values in self.eval_history[name]],
            "step_seconds": float(self.step_seconds[name]),
        }
