"""A progress bar that shows every candidate's running training loss."""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

from twinrun.engine import CandidateDiverged, EvalDone, RunFailed, RunStarted, Sink, StepDone

__all__ = ["ProgressSink"]


class ProgressSink(Sink):
    """A ``tqdm`` bar on stderr: ``mlp=0.412 cnn=0.388 ...`` (exponential moving averages).

    Args:
        total: the number of steps (taken from the run when ``None``).
        smoothing: weight of the newest loss in the moving average.
        enabled: ``None`` shows the bar only when the stream is a terminal.
        log_evals: also print one line per evaluation.
    """

    def __init__(
        self,
        *,
        total: int | None = None,
        smoothing: float = 0.1,
        enabled: bool | None = None,
        stream: TextIO | None = None,
        log_evals: bool = True,
    ) -> None:
        self.total = total
        self.smoothing = smoothing
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.log_evals = log_evals
        self._bar: Any = None
        self._ema: dict[str, float] = {}
        self._diverged: set[str] = set()

    def on_run_started(self, event: RunStarted) -> None:
        from tqdm.auto import tqdm

        total = self.total
        if total is None and event.experiment is not None:
            total = event.experiment.settings.steps
        name = event.experiment.name if event.experiment is not None else "twin"
        disable = None if self.enabled is None else not self.enabled
        self._bar = tqdm(
            total=total,
            initial=event.start_step,
            desc=name,
            unit="step",
            file=self.stream,
            disable=disable,
            dynamic_ncols=True,
            leave=True,
        )

    def on_step_done(self, event: StepDone) -> None:
        for name, loss in event.losses.items():
            if math.isfinite(loss):
                previous = self._ema.get(name)
                self._ema[name] = loss if previous is None else previous + self.smoothing * (loss - previous)
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(), refresh=False)
            self._bar.update(event.step - self._bar.n)

    def _postfix(self) -> str:
        parts = []
        for name, value in self._ema.items():
            parts.append(f"{name}=diverged" if name in self._diverged else f"{name}={value:.4g}")
        return " ".join(parts)

    def on_candidate_diverged(self, event: CandidateDiverged) -> None:
        self._diverged.add(event.candidate)
        if self._bar is not None:
            self._bar.write(f"step {event.step}: {event.candidate} diverged (loss={event.value}); the others go on")

    def on_eval_done(self, event: EvalDone) -> None:
        if self._bar is None or not self.log_evals or self._bar.disable or event.step == 0 or event.split != "val":
            return
        losses = "  ".join(f"{n} {r['loss']:.4g}" for n, r in event.results.items())
        self._bar.write(f"step {event.step}: val loss  {losses}")

    def on_run_failed(self, event: RunFailed) -> None:
        if self._bar is not None:
            self._bar.write("interrupted" if event.interrupted else f"failed after step {event.step}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
