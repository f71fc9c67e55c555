"""What the engine tells the world, and the sinks that listen.

The engine knows nothing of TensorBoard, SQLite or progress bars: it emits the
events below, in this order, and each sink does what it wants with them::

    RunStarted  (BatchPrepared  StepDone  [CandidateDiverged]  [EvalDone])*  RunFinished | RunFailed

``EvalDone`` also comes once at step 0, before training. A new sink subclasses
:class:`Sink` and overrides the ``on_*`` methods it cares about; it never
touches the training step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

if TYPE_CHECKING:
    from twinrun.engine._build import InitReport
    from twinrun.engine._result import TwinResult
    from twinrun.spec import ResolvedExperiment

__all__ = [
    "BatchPrepared",
    "CandidateDiverged",
    "EvalDone",
    "Event",
    "EventBus",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "Sink",
    "StepDone",
]

Batch = tuple[Any, Any]


@dataclass(frozen=True)
class Event:
    """Base of all engine events."""

    run_id: str


@dataclass(frozen=True)
class RunStarted(Event):
    """Candidates are built, initial weights shared; training is about to start."""

    experiment: ResolvedExperiment | None  # None for a Twin driven by the user's own loop
    config: Mapping[str, Any]
    init: InitReport
    device: str
    start_step: int
    models: Mapping[str, torch.nn.Module] = field(repr=False)


@dataclass(frozen=True)
class BatchPrepared(Event):
    """The batch of ``step`` after augmentation, one per distinct augmentation.

    ``batches`` maps an augmentation key to its ``(inputs, targets)``;
    ``assignment`` maps each training candidate to its key.
    """

    step: int
    batches: Mapping[str, Batch] = field(repr=False)
    assignment: Mapping[str, str]


@dataclass(frozen=True)
class StepDone(Event):
    """Every live candidate made its update ``step`` (1-based) on the shared batch."""

    step: int
    losses: Mapping[str, float]
    metrics: Mapping[str, Mapping[str, float]]
    lrs: Mapping[str, float]
    models: Mapping[str, torch.nn.Module] = field(repr=False)
    optimizers: Mapping[str, torch.optim.Optimizer] = field(repr=False)


@dataclass(frozen=True)
class EvalDone(Event):
    """Validation after ``step`` updates, on the same batches for every candidate.

    ``split``: ``"val"`` (the validation set, or its first ``eval_batches`` batches between the
    full evaluations) or ``"monitor"`` (one validation batch after every step: the ``monitor``
    setting); ``batches``: how many validation batches the values are over.
    """

    step: int
    results: Mapping[str, Mapping[str, float]]
    split: str = "val"
    batches: int | None = None


@dataclass(frozen=True)
class CandidateDiverged(Event):
    """A candidate stopped at ``step``, the others go on: its loss became NaN or infinite,
    or (``error`` set) its own code raised during the step."""

    step: int
    candidate: str
    value: float
    error: str | None = None


@dataclass(frozen=True)
class RunFinished(Event):
    result: TwinResult = field(repr=False)


@dataclass(frozen=True)
class RunFailed(Event):
    """Training stopped on an error or an interrupt; ``step`` is the last completed update.

    ``at_step_boundary``: the run stopped between two steps (a requested stop), so
    the engine's state is a complete resume point (a final checkpoint can be taken).
    """

    step: int
    error: BaseException
    interrupted: bool
    at_step_boundary: bool = False


class Sink:
    """Receives engine events. Override the ``on_*`` methods you need; all default to no-ops.

    Under ``torchrun`` rank 0 alone gets the sinks given to ``compare``, unless a sink sets
    ``every_rank = True``: then every rank gets it (and writes what is its own, e.g. one file per rank).
    """

    every_rank: ClassVar[bool] = False

    def on_event(self, event: Event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            getattr(self, handler)(event)

    def on_run_started(self, event: RunStarted) -> None: ...
    def on_batch_prepared(self, event: BatchPrepared) -> None: ...
    def on_step_done(self, event: StepDone) -> None: ...
    def on_eval_done(self, event: EvalDone) -> None: ...
    def on_candidate_diverged(self, event: CandidateDiverged) -> None: ...
    def on_run_finished(self, event: RunFinished) -> None: ...
    def on_run_failed(self, event: RunFailed) -> None: ...

    def persist(self) -> None:
        """Make what was recorded so far durable: called before a checkpoint of the run is written
        (by :class:`~twinrun.Twin`), so that a process killed after it leaves the files to go on from."""

    def close(self) -> None:
        """Called once after the last event, also after a failure."""


_HANDLERS: dict[type, str] = {
    RunStarted: "on_run_started",
    BatchPrepared: "on_batch_prepared",
    StepDone: "on_step_done",
    EvalDone: "on_eval_done",
    CandidateDiverged: "on_candidate_diverged",
    RunFinished: "on_run_finished",
    RunFailed: "on_run_failed",
}


class EventBus:
    """Delivers each event to every sink, in order."""

    def __init__(self, sinks: Sequence[Sink] = ()) -> None:
        self.sinks = list(sinks)
        self._wants_batches = any(type(s).on_batch_prepared is not Sink.on_batch_prepared for s in self.sinks)

    @property
    def wants_batches(self) -> bool:
        """Whether any sink listens to :class:`BatchPrepared` (lets the engine skip building it)."""
        return self._wants_batches

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.on_event(event)

    def emit_to_all(self, event: Event) -> list[Exception]:
        """Deliver ``event`` to every sink even when some raise; returns their errors.

        Used for :class:`RunFailed`: a sink that fails while recording a failure
        must not keep the others (the registry above all) from recording it.
        """
        errors: list[Exception] = []
        for sink in self.sinks:
            try:
                sink.on_event(event)
            except Exception as exc:  # noqa: BLE001 - the run's own error is the one raised
                errors.append(exc)
        return errors

    def persist(self) -> None:
        """Every sink's :meth:`Sink.persist` (sinks that are not ``Sink`` subclasses may lack it)."""
        for sink in self.sinks:
            persist = getattr(sink, "persist", None)
            if callable(persist):
                persist()

    def close(self) -> None:
        errors: list[BaseException] = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - close every sink, then report the first failure
                errors.append(exc)
        if errors:
            raise errors[0]
