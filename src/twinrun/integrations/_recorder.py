"""One run trained by another framework's loop, told to twinrun's sinks as engine events.

The framework's callback translates its hooks into calls here; this module
builds the sinks (registry, ledger, TensorBoard) and emits ``RunStarted``,
``BatchPrepared``, ``StepDone``, ``EvalDone`` and the end of the run, so a
Lightning or Hugging Face run is listed, shown, diffed and reported like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from twinrun._names import check_name
from twinrun.engine import (
    BatchPrepared,
    EvalDone,
    EventBus,
    RunFailed,
    RunStarted,
    Sink,
    StepDone,
    candidate_config,
    init_report,
    new_run_id,
    plain_config,
)
from twinrun.errors import BuildError
from twinrun.ledger import Ledger, LedgerSink, ledger_config_hash
from twinrun.registry import RegistrySink
from twinrun.rng import RngStreams, seed_globals

__all__ = ["ExternalRun", "first_loss", "plain_config", "seed_globals"]


class ExternalRun:
    """The sinks of one framework-driven run and the events they get.

    Args:
        name: the run's name in the registry.
        registry: the registry's path (``None``: the default one; ``False``: not recorded).
        ledger: where the ledger is written (``None``: not written).
        ledger_every: weights and generator records every this many steps.
        seed: the run's seed (names the streams the callback draws from).
        sinks: more sinks (``twinrun.TensorBoardSink(...)``, your own).
        tags: registry tags.
    """

    def __init__(
        self,
        *,
        name: str,
        registry: str | Path | None | bool,
        ledger: str | Path | None,
        ledger_every: int,
        seed: int,
        sinks: Sequence[Sink] = (),
        tags: Sequence[str] = (),
    ) -> None:
        check_name(name, "run name")
        if isinstance(ledger_every, bool) or not isinstance(ledger_every, int) or ledger_every < 1:
            raise BuildError(
                f"ledger_every={ledger_every!r} is not a positive number of steps", fix="pass e.g. ledger_every=20"
            )
        self.name, self.seed, self.tags = name, seed, tuple(tags)
        self.streams = RngStreams(seed)
        self.registry, self.ledger_path, self.ledger_every = registry, ledger, ledger_every
        self.extra = list(sinks)
        self.run_id: str | None = None
        self.bus: EventBus | None = None
        self.ledger_sink: LedgerSink | None = None
        self.registry_sink: RegistrySink | None = None
        self.step = 0

    @property
    def started(self) -> bool:
        return self.bus is not None

    def start(
        self,
        models: Mapping[str, nn.Module],
        config: Mapping[str, Any],
        *,
        device: str,
        optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
        start_step: int = 0,
        run_id: str | None = None,
        steps: int | None = None,
    ) -> str:
        """Open the sinks and emit ``RunStarted`` (``start_step > 0``, ``run_id`` given: a resumed run;
        ``steps``: the planned updates, when the framework knows them: the ledger records the last one's weights)."""
        self.run_id = run_id or new_run_id()
        full = {
            "seed": self.seed,
            "settings": {"seed": self.seed, "ledger_every": self.ledger_every, "steps": steps},
            "candidates": {n: candidate_config(m, (optimizers or {}).get(n)) for n, m in models.items()},
            **plain_config(config),
        }
        sinks: list[Sink] = []
        if self.registry is not False:
            self.registry_sink = RegistrySink(
                None if self.registry in (None, True) else self.registry,  # type: ignore[arg-type]
                name=self.name,
                tags=self.tags,
            )
            sinks.append(self.registry_sink)
        if self.ledger_path is not None:
            path = Path(self.ledger_path)
            previous = Ledger.load(path) if start_step > 0 and path.exists() else None
            if start_step > 0 and previous is None:  # the ledger was lost: it goes on from the resume step
                previous = Ledger(
                    {
                        "experiment": "twin",
                        "config_hash": ledger_config_hash(full),
                        "run_id": self.run_id,
                        "seed": self.seed,
                        "ledger_every": self.ledger_every,
                        "resumed_at": start_step,
                    }
                )
            self.ledger_sink = LedgerSink(path, every=self.ledger_every, ledger=previous)
            sinks.append(self.ledger_sink)
        self.bus = EventBus([*sinks, *self.extra])
        self.step = start_step
        self.bus.emit(RunStarted(self.run_id, None, full, init_report(dict(models)), device, start_step, dict(models)))
        return self.run_id

    def batch(self, step: int, candidates: Sequence[str], inputs: Any, targets: Any = None) -> None:
        """The batch every candidate trains on at ``step`` (its control sums go to the ledger)."""
        assert self.bus is not None
        if self.bus.wants_batches:
            self.bus.emit(
                BatchPrepared(self.run_id or "", step, {"batch": (inputs, targets)}, dict.fromkeys(candidates, "batch"))
            )

    def step_done(
        self,
        step: int,
        losses: Mapping[str, float],
        lrs: Mapping[str, float],
        models: Mapping[str, nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer],
        metrics: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        assert self.bus is not None
        self.step = step
        self.bus.emit(
            StepDone(
                self.run_id or "", step, dict(losses), dict(metrics or {}), dict(lrs), dict(models), dict(optimizers)
            )
        )

    def evaluated(self, step: int, results: Mapping[str, Mapping[str, float]]) -> None:
        assert self.bus is not None
        if results:
            self.bus.emit(EvalDone(self.run_id or "", step, {c: dict(r) for c, r in results.items()}))

    def save_ledger(self) -> None:
        """Write the ledger and the registry's buffered rows now (at a checkpoint: a process killed later
        leaves them on disk to go on from)."""
        if self.bus is not None:
            self.bus.persist()

    def finish(self) -> None:
        """Close the sinks: the run is recorded as finished, the ledger saved."""
        if self.bus is not None:
            self.bus.close()
            self.bus = None

    def fail(self, error: BaseException) -> None:
        """The framework's loop raised: the run is recorded as failed (or interrupted), the ledger saved."""
        if self.bus is None:
            return
        failed = RunFailed(self.run_id or "", self.step, error, isinstance(error, KeyboardInterrupt))
        for problem in self.bus.emit_to_all(failed):
            error.add_note(f"twinrun: a sink also failed while recording this: {type(problem).__name__}: {problem}")
        self.bus.close()
        self.bus = None


def first_loss(output: Any) -> torch.Tensor | None:
    """The loss a framework's step returned: a tensor, ``{"loss": ...}`` or an object with ``.loss``."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        value = output.get("loss")
        return value if isinstance(value, torch.Tensor) else None
    value = getattr(output, "loss", None)
    return value if isinstance(value, torch.Tensor) else None
