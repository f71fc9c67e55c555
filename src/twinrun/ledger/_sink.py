"""``LedgerSink``: records control sums from the engine's events as the run goes."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from twinrun.engine import BatchPrepared, RunFailed, RunFinished, RunStarted, Sink, StepDone
from twinrun.errors import LedgerError
from twinrun.ledger._hash import float_hash, int_hash, tensor_hash, tree_hash
from twinrun.ledger._ledger import Ledger, ledger_config_hash
from twinrun.rng import RngStreams, global_rng_digest

__all__ = ["DEFAULT_EVERY", "LedgerSink"]

#: Cadence used when neither the sink nor the run's settings give one.
DEFAULT_EVERY = 20


class LedgerSink(Sink):
    """Writes a run's :class:`Ledger`: init weights, every batch, every loss, weights and RNG states.

    Args:
        path: where to save the ledger at the end of the run (also after a
            failure); ``None`` keeps it in memory only (:attr:`ledger`).
        every: weight and RNG records every this many steps (default: the
            run's ``ledger_every`` setting, else 20). Batches and losses are
            recorded at every step.
        ledger: a ledger to continue (a resumed run); its records after the
            resume step are dropped.
        factors: what can break bit-exactness (threads, versions, device...),
            stored in the header.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        every: int | None = None,
        ledger: Ledger | None = None,
        factors: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self._saved: int | None = None  # how many records the file on disk holds
        self.every = every
        self.ledger = ledger
        self.factors = dict(factors or {})
        self._last_step: int | None = None
        self._streams: RngStreams | None = None

    # ------------------------------------------------------------------ events
    def on_run_started(self, event: RunStarted) -> None:
        config = dict(event.config)
        settings = dict(config.get("settings", {}))
        seed = int(settings.get("seed", config.get("seed", 0)))
        if self.every is None:
            self.every = settings.get("ledger_every") or DEFAULT_EVERY
        self._last_step = settings.get("steps")
        self._streams = RngStreams(seed)
        if event.start_step > 0:
            if self.ledger is None and self.path is not None and self.path.exists():
                self.ledger = Ledger.load(self.path)  # the ledger goes on in its file
            if self.ledger is None:
                raise LedgerError(
                    f"run {event.run_id[:8]} resumes at step {event.start_step} but no ledger was given to continue",
                    fix="pass LedgerSink(ledger=Ledger.load(run_dir)) or the checkpoint's ledger",
                )
            self.ledger.truncate(event.start_step)
            return
        self.ledger = Ledger(
            {
                "experiment": event.experiment.name if event.experiment is not None else "twin",
                "config_hash": ledger_config_hash(config),
                "run_id": event.run_id,
                "seed": seed,
                "steps": self._last_step,
                "ledger_every": self.every,
                "device": event.device,
                "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "factors": self.factors,
            }
        )
        for candidate, model in event.models.items():
            self._weights(0, candidate, model, kind="init")
        self.ledger.add(0, "*", "rng", "global", global_rng_digest())
        init_seed = self._streams.seed_for("init")
        self.ledger.add(0, "*", "rng", "init", int_hash(init_seed), init_seed)

    def on_batch_prepared(self, event: BatchPrepared) -> None:
        ledger = self._require()
        digests: dict[str, tuple[str, str]] = {}
        for key, (inputs, targets) in event.batches.items():
            digests[key] = (tree_hash(inputs), tree_hash(targets))
        for candidate, key in event.assignment.items():
            inputs_hash, targets_hash = digests[key]
            ledger.add(event.step, candidate, "batch", "inputs", inputs_hash)
            ledger.add(event.step, candidate, "batch", "targets", targets_hash)

    def on_step_done(self, event: StepDone) -> None:
        ledger = self._require()
        step = event.step
        for candidate, loss in event.losses.items():
            ledger.add(step, candidate, "loss", "loss", float_hash(loss), float(loss))
        if step % int(self.every or DEFAULT_EVERY) == 0 or step == self._last_step:
            for candidate in event.losses:
                self._weights(step, candidate, event.models[candidate], kind="weights")
            ledger.add(step, "*", "rng", "global", global_rng_digest())
            assert self._streams is not None
            for stream in ("augment", "dropout"):
                seed = self._streams.seed_for(stream, step)
                ledger.add(step, "*", "rng", stream, int_hash(seed), seed)

    def on_run_finished(self, event: RunFinished) -> None:
        self.save()

    def on_run_failed(self, event: RunFailed) -> None:
        self.save()

    def persist(self) -> None:
        """Save the ledger now (before a checkpoint: a resumed run goes on from the file)."""
        self.save()

    def close(self) -> None:
        """A run without a ``RunFinished`` (a ``Twin`` loop) is saved when its sinks close; one already
        saved at its end is not written again."""
        if self.ledger is not None and self._saved != len(self.ledger.records):
            self.save()

    # ------------------------------------------------------------------ helpers
    def _weights(self, step: int, candidate: str, model: torch.nn.Module, *, kind: str) -> None:
        ledger = self._require()
        for name, tensor in model.state_dict(keep_vars=True).items():
            ledger.add(step, candidate, kind, name, tensor_hash(tensor))

    def _require(self) -> Ledger:
        if self.ledger is None:
            raise LedgerError("LedgerSink received an event before RunStarted")
        return self.ledger

    def save(self) -> Path | None:
        """Write the ledger to :attr:`path` (if any); returns the path written."""
        if self.path is None or self.ledger is None:
            return None
        self._saved = len(self.ledger.records)
        return self.ledger.save(self.path)
