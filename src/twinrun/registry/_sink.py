"""``RegistrySink``: engine events become registry rows.

Per-step metrics are buffered in memory and written in one transaction every
``flush_every`` steps or ``flush_seconds`` seconds (whichever comes first), at
every evaluation and at the end, so that logging costs a few microseconds per
step. A process killed mid-run loses at most the unflushed tail; the run itself
is marked ``crashed`` by the next :meth:`Registry.open`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from twinrun.engine import (
    CandidateDiverged,
    EvalDone,
    RunFailed,
    RunFinished,
    RunStarted,
    Sink,
    StepDone,
)
from twinrun.env import capture_environment
from twinrun.registry._records import Provenance
from twinrun.registry._store import MetricRow, Registry

__all__ = ["RegistrySink"]


class RegistrySink(Sink):
    """Records a run in the registry: config, environment, source, metrics, result.

    Args:
        registry: a :class:`Registry`, or the path of one (opened here, closed by
            :meth:`close`); ``None``: the default registry.
        name: the run's name (default: the experiment's name; ``"twin"`` for a :class:`Twin`).
        tags: tags given to the run.
        note: a first note on the run.
        env: the environment to record (default: captured when the run starts;
            ``False``: none).
        sweep_id: the sweep this run belongs to.
        artifacts: entries added to ``result.artifacts`` before the result is recorded
            (``registry`` and ``registry_run``, the run's id, are always added).
        flush_every: write buffered step metrics at least every this many steps...
        flush_seconds: ...and at least this often.
        sync_every: also write them after every step divisible by this (the run's
            checkpoint cadence: put the sink before the checkpoint sink, and a
            checkpoint never holds a step whose rows the registry lacks, so a resumed
            run holds every step exactly once).
        finish: record the result and end the run when the engine finishes (default). ``False``: the
            caller does, once, when it knows everything the result holds (``compare`` does: the ledger,
            checkpoints and best weights are written after the engine's end).
    """

    def __init__(
        self,
        registry: Registry | str | Path | None = None,
        *,
        name: str | None = None,
        tags: Sequence[str] = (),
        note: str | None = None,
        env: Mapping[str, Any] | bool = True,
        sweep_id: str | None = None,
        flush_every: int = 200,
        flush_seconds: float = 2.0,
        artifacts: Mapping[str, str] | None = None,
        sync_every: int | None = None,
        finish: bool = True,
    ) -> None:
        self.sync_every = sync_every
        self.finish = finish
        self._owned = not isinstance(registry, Registry)
        self.registry = registry if isinstance(registry, Registry) else Registry.open(registry)
        self.name = name
        self.tags = tuple(tags)
        self.note = note
        self.env = env
        self.sweep_id = sweep_id
        self.flush_every = max(1, int(flush_every))
        self.flush_seconds = float(flush_seconds)
        self.artifacts = dict(artifacts or {})
        self.run_id: str | None = None
        self._rows: list[MetricRow] = []
        self._diverged: list[tuple[str, int]] = []
        self._step = 0
        self._flushed_step = 0
        self._flushed_at = time.monotonic()
        self._ended = False
        self._engine_run = False

    # ------------------------------------------------------------------ events
    def on_run_started(self, event: RunStarted) -> None:
        exp = event.experiment
        config = dict(event.config)
        seed: int | None
        steps: int | None
        reference: str | None
        if exp is not None:
            self._engine_run = True
            name = self.name or exp.name
            candidates: Mapping[str, Mapping[str, Any]] = config.get("candidates") or {n: {} for n in exp.candidates}
            source = exp.source
            settings = exp.settings
            seed, steps, reference = settings.seed, settings.steps, exp.reference
            config_hash: str | None = exp.config_hash()
        else:
            name = self.name or "twin"
            listed = config.get("candidates")  # a Twin's or a framework's: what each candidate is
            candidates = {n: dict(listed.get(n, {})) if isinstance(listed, Mapping) else {} for n in event.models}
            source = None
            seed = config.get("seed")
            steps, reference, config_hash = None, next(iter(event.models), None), None
        if self.env is True:
            env: Mapping[str, Any] | None = capture_environment(code_path=source.path if source is not None else None)
        elif self.env is False:
            env = None
        else:
            env = self.env
        self.run_id = self.registry.create_run(
            run_id=event.run_id,
            name=name,
            config=config,
            candidates=candidates,
            reference=reference,
            seed=seed,
            steps=steps,
            device=event.device,
            provenance=Provenance.of(source, config_hash, env),
            sweep_id=self.sweep_id,
            tags=self.tags,
            note=self.note,
            exist_ok=event.start_step > 0,
        )
        self._step = self._flushed_step = event.start_step
        self._flushed_at = time.monotonic()

    def on_step_done(self, event: StepDone) -> None:
        step = event.step
        append = self._rows.append
        lrs, metrics = event.lrs, event.metrics
        for cand, loss in event.losses.items():
            append((cand, "train", step, "loss", loss))
            lr = lrs.get(cand)
            if lr is not None:
                append((cand, "train", step, "lr", lr))
            for metric, value in metrics.get(cand, {}).items():
                append((cand, "train", step, metric, value))
        self._step = step
        if (
            step - self._flushed_step >= self.flush_every
            or (time.monotonic() - self._flushed_at >= self.flush_seconds)
            or (self.sync_every is not None and step % self.sync_every == 0)
        ):
            self.flush()

    def on_eval_done(self, event: EvalDone) -> None:
        for cand, results in event.results.items():
            for metric, value in results.items():
                self._rows.append((cand, event.split, event.step, metric, value))
        if event.split == "val":  # monitor rows go with the step's rows
            self.flush()

    def on_candidate_diverged(self, event: CandidateDiverged) -> None:
        self._diverged.append((event.candidate, event.step))
        self.flush()

    def on_run_finished(self, event: RunFinished) -> None:
        self.flush()
        if self.run_id is not None:
            event.result.artifacts.update(self.artifacts, registry=str(self.registry.path), registry_run=self.run_id)
            if self.finish:
                self.registry.finish_run(self.run_id, event.result.to_dict())
        self._ended = True

    def on_run_failed(self, event: RunFailed) -> None:
        self.flush()
        if self.run_id is not None:
            if event.interrupted:
                reason = str(event.error)
                text = f"interrupted after step {event.step}" + (f" ({reason})" if reason else "")
            else:
                text = f"{type(event.error).__name__}: {event.error} (after step {event.step})"
            self.registry.fail_run(self.run_id, text, interrupted=event.interrupted)
        self._ended = True

    # ------------------------------------------------------------------ writing
    def flush(self) -> None:
        """Write the buffered metrics now (also refreshes the run's heartbeat)."""
        if self.run_id is None:
            return
        rows, self._rows = self._rows, []
        diverged, self._diverged = self._diverged, []
        self.registry.log_metrics(self.run_id, rows, step=self._step, diverged=diverged)
        self._flushed_step = self._step
        self._flushed_at = time.monotonic()

    def persist(self) -> None:
        """Write the buffered metrics (before a checkpoint: the registry then holds every step it holds)."""
        self.flush()

    def close(self) -> None:
        """Flush; a :class:`Twin` run (no end event) is recorded as finished here."""
        try:
            if self.run_id is not None and not self._ended:
                self.flush()
                if not self._engine_run:
                    self.registry.finish_run(self.run_id)
                    self._ended = True
        finally:
            if self._owned:
                self.registry.close()
