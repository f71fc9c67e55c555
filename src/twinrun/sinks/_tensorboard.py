"""TensorBoard: one folder per comparison, one subfolder per candidate, the same tags.

TensorBoard scans folders recursively, so ``tensorboard --logdir DIR`` overlays
every candidate's curves (``train/loss``, ``val/accuracy``, ...) in one chart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twinrun._names import check_name
from twinrun.engine import CandidateDiverged, EvalDone, RunFailed, RunStarted, Sink, StepDone

__all__ = ["TensorBoardSink"]


class TensorBoardSink(Sink):
    """Writes TensorBoard event files under ``logdir/<candidate>/``.

    Tags: ``train/loss``, ``train/<metric>``, ``train/lr`` every step;
    ``val/loss``, ``val/<metric>`` at every evaluation; a text note when a
    candidate diverges or the run fails.
    """

    def __init__(self, logdir: str | Path, *, flush_secs: int = 10) -> None:
        self.logdir = Path(logdir)
        self.flush_secs = flush_secs
        self._writers: dict[str, Any] = {}

    def _writer(self, candidate: str) -> Any:
        writer = self._writers.get(candidate)
        if writer is None:
            from torch.utils.tensorboard import SummaryWriter

            check_name(candidate, "TensorBoardSink: candidate name")  # it becomes a folder of logdir
            writer = SummaryWriter(log_dir=str(self.logdir / candidate), flush_secs=self.flush_secs)
            self._writers[candidate] = writer
        return writer

    def on_run_started(self, event: RunStarted) -> None:
        self.logdir.mkdir(parents=True, exist_ok=True)
        for name in event.models:
            self._writer(name)

    def on_step_done(self, event: StepDone) -> None:
        for name, loss in event.losses.items():
            writer = self._writer(name)
            writer.add_scalar("train/loss", loss, event.step)
            for metric, value in event.metrics.get(name, {}).items():
                writer.add_scalar(f"train/{metric}", value, event.step)
            writer.add_scalar("train/lr", event.lrs[name], event.step)

    def on_eval_done(self, event: EvalDone) -> None:
        for name, values in event.results.items():
            writer = self._writer(name)
            for metric, value in values.items():
                writer.add_scalar(f"val/{metric}", value, event.step)

    def on_candidate_diverged(self, event: CandidateDiverged) -> None:
        self._writer(event.candidate).add_text(
            "events", f"diverged at step {event.step}: loss = {event.value}", event.step
        )

    def on_run_failed(self, event: RunFailed) -> None:
        what = "interrupted" if event.interrupted else f"failed: {type(event.error).__name__}: {event.error}"
        for writer in self._writers.values():
            writer.add_text("events", f"run {what} after step {event.step}", event.step)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
