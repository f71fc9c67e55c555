"""TensorBoard: one folder per comparison, one subfolder per candidate, the same tags.

TensorBoard scans folders recursively, so ``tensorboard --logdir DIR`` overlays
every candidate's curves (``train/loss``, ``val/accuracy``, ...) in one chart.
Each candidate other than the reference also gets its paired difference to the
reference as scalars of its own (``diff/train_loss``, ``diff/val_<metric>``:
candidate minus reference, on the same batches and validation set), and at the
end its configuration and final metrics in the HParams plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twinrun._names import check_name
from twinrun.engine import (
    CandidateDiverged,
    EvalDone,
    RunFailed,
    RunFinished,
    RunStarted,
    Sink,
    StepDone,
)

__all__ = ["TensorBoardSink"]


class TensorBoardSink(Sink):
    """Writes TensorBoard event files under ``logdir/<candidate>/``.

    Tags: ``train/loss``, ``train/<metric>``, ``train/lr`` every step;
    ``val/loss``, ``val/<metric>`` at every evaluation; ``diff/train_loss`` and
    ``diff/val_<metric>`` (candidate minus reference) for every other candidate;
    a text note when a candidate diverges or the run fails; HParams at the end.
    """

    def __init__(self, logdir: str | Path, *, flush_secs: int = 10) -> None:
        self.logdir = Path(logdir)
        self.flush_secs = flush_secs
        self._writers: dict[str, Any] = {}
        self._reference: str | None = None
        self._configs: dict[str, dict[str, Any]] = {}

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
        self._reference = getattr(event.experiment, "reference", None)
        candidates = getattr(event.experiment, "candidates", {}) or {}
        for name in event.models:
            self._writer(name)
            spec = candidates.get(name)
            if spec is not None and hasattr(spec, "to_config"):
                self._configs[name] = _hparams(spec.to_config())

    def on_step_done(self, event: StepDone) -> None:
        for name, loss in event.losses.items():
            writer = self._writer(name)
            writer.add_scalar("train/loss", loss, event.step)
            for metric, value in event.metrics.get(name, {}).items():
                writer.add_scalar(f"train/{metric}", value, event.step)
            writer.add_scalar("train/lr", event.lrs[name], event.step)
        ref = self._reference
        if ref is not None and ref in event.losses:
            for name, loss in event.losses.items():
                if name != ref:
                    self._writer(name).add_scalar("diff/train_loss", loss - event.losses[ref], event.step)

    def on_eval_done(self, event: EvalDone) -> None:
        for name, values in event.results.items():
            writer = self._writer(name)
            for metric, value in values.items():
                writer.add_scalar(f"{event.split}/{metric}", value, event.step)
        base = event.results.get(self._reference or "")
        if base is not None:
            for name, values in event.results.items():
                if name == self._reference:
                    continue
                for metric, value in values.items():
                    if metric in base:
                        self._writer(name).add_scalar(f"diff/{event.split}_{metric}", value - base[metric], event.step)

    def on_run_finished(self, event: RunFinished) -> None:
        for name, cand in event.result.candidates.items():
            if name not in self._writers or not cand.final:
                continue
            finals = {f"final/{k}": float(v) for k, v in cand.final.items() if isinstance(v, (int, float))}
            params = {"candidate": name, **self._configs.get(name, {})}
            self._writers[name].add_hparams(params, finals, run_name="hparams")

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


def _hparams(config: Any, prefix: str = "") -> dict[str, Any]:
    """A candidate's configuration flattened to the scalars and strings the HParams plugin takes."""
    out: dict[str, Any] = {}
    if isinstance(config, dict):
        for key, value in config.items():
            out.update(_hparams(value, f"{prefix}{key}."))
    elif isinstance(config, (bool, int, float, str)):
        out[prefix[:-1]] = config
    elif config is not None:
        out[prefix[:-1]] = str(config)
    return out
