"""Executors: how the live candidates of one step are run on their batches.

The engine hands an executor the candidates and their (shared) batches; the
executor returns one :class:`StepOutput` per candidate. It is a part you can
swap: :class:`SequentialExecutor` runs candidates one after the other (one
candidate's activations alive at a time); a vectorised executor for
same-architecture candidates fits the same protocol.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from twinrun.engine._build import CandidateState
from twinrun.engine._fused import FusedUpdate
from twinrun.engine._memory import ActivationMeter
from twinrun.engine._step import StepOutput, train_step
from twinrun.engine._vector_group import architecture_key
from twinrun.rng import RngStreams
from twinrun.spec import Metric

__all__ = ["DrawTracker", "Executor", "SequentialExecutor", "StepContext"]


@dataclass
class StepContext:
    """What every candidate's step needs besides its own state and batch."""

    streams: RngStreams
    devices: Sequence[torch.device]
    metrics: Mapping[str, Metric]
    grad_clip: float | None
    meter: ActivationMeter | None = None


def describe_failure(exc: BaseException, candidate: str, inputs: Any, targets: Any) -> str:
    """One line: which candidate failed on what batch, and the error (its traceback is kept by the caller)."""
    return (
        f"candidate {candidate!r} failed on a batch of inputs {shape_of(inputs)} and targets "
        f"{shape_of(targets)}: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    )


def shape_of(value: Any) -> Any:
    """Shapes of the tensors inside ``value`` (for messages)."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return type(value)(shape_of(v) for v in value)
    if isinstance(value, Mapping):
        return {k: shape_of(v) for k, v in value.items()}
    return type(value).__name__


class DrawTracker:
    """Runs a step inside the ``dropout`` stream, seeding Python's and NumPy's generators only if it draws from them.

    Seeding and restoring Python's and NumPy's global generators costs ~70 µs, more
    than a small model's whole step; torch's costs 2 µs. So each key (a candidate, a
    group) is probed on its first step and again every ``every`` steps: while it
    draws nothing from Python or NumPy, only torch's generators are seeded. The
    results are the same either way (what is not drawn from cannot differ). A key
    caught drawing at a later probe is isolated from then on, with a warning: the
    steps since the previous probe drew from the unseeded global generators.
    """

    def __init__(self, every: int = 50) -> None:
        self.every = every
        self._known: dict[str, tuple[bool, int]] = {}  # key -> (draws from Python/NumPy, probed at step)

    @contextmanager
    def isolated(self, key: str, step: int, context: StepContext) -> Iterator[None]:
        known = self._known.get(key)
        if known is not None and (known[0] or step - known[1] < self.every):
            with context.streams.isolated("dropout", step, devices=context.devices, python_numpy=known[0]):
                yield
            return
        draws: list[bool] = []
        with context.streams.isolated("dropout", step, devices=context.devices, draws=draws):
            yield
        drew = bool(draws and draws[0])
        if drew and known is not None:
            warnings.warn(
                f"{key}: the model drew from Python's or NumPy's global generator at step {step} but not at "
                f"step {known[1]}: steps {known[1] + 1}..{step - 1} drew from the unseeded generators. "
                "twinrun now seeds them every step",
                RuntimeWarning,
                stacklevel=3,
            )
        self._known[key] = (drew, step)


class Executor(Protocol):
    def run_step(
        self,
        step: int,
        candidates: Sequence[CandidateState],
        batches: Mapping[str, tuple[Any, Any]],
        context: StepContext,
    ) -> dict[str, StepOutput]:
        """Make update ``step`` for every candidate on ``batches[candidate.spec.augment_key]``."""
        ...


class SequentialExecutor:
    """One candidate after another, each inside the ``dropout`` stream of this step.

    Every candidate's in-step randomness (dropout masks...) is drawn from the
    same seed, so same-architecture candidates get the same masks and no
    candidate's draws shift another's. Where a candidate's optimizer is SGD,
    Adam or AdamW, its update runs over flat storage (``_fused``: the same
    numbers as ``optimizer.step()``, in a few operations); ``fused=False`` calls
    ``optimizer.step()`` itself.
    """

    def __init__(self, *, fused: bool = True, isolate_failures: bool = True) -> None:
        self.draws = DrawTracker()
        self.fused = fused
        #: a candidate whose code raises stops and the others go on; off in a data-parallel run, where a rank
        #: that went on alone would wait for the others forever
        self.isolate_failures = isolate_failures
        self._updates: dict[int, tuple[torch.optim.Optimizer, FusedUpdate | None]] = {}

    def update_for(self, state: CandidateState) -> FusedUpdate | None:
        """The candidate's fused optimizer step, where its optimizer and model allow one (``_fused``)."""
        entry = self._updates.get(id(state.optimizer))
        if entry is not None and entry[0] is state.optimizer:
            return entry[1]
        update = FusedUpdate(state) if self.fused and not isinstance(architecture_key(state), str) else None
        self._updates[id(state.optimizer)] = (state.optimizer, update)  # holds the optimizer: its id stays its own
        return update

    def run_step(
        self,
        step: int,
        candidates: Sequence[CandidateState],
        batches: Mapping[str, tuple[Any, Any]],
        context: StepContext,
    ) -> dict[str, StepOutput]:
        outputs: dict[str, StepOutput] = {}
        for state in candidates:
            inputs, targets = batches[state.spec.augment_key]
            meter = (
                context.meter.measure(state.name, (inputs, targets, list(state.model.buffers())))
                if context.meter
                else nullcontext()
            )
            start = time.perf_counter()
            try:
                with self.draws.isolated(state.name, step, context), meter:
                    out = train_step(
                        state,
                        inputs,
                        targets,
                        metrics=context.metrics,
                        grad_clip=context.grad_clip,
                        update=self.update_for(state),
                    )
            except Exception as exc:
                if not self.isolate_failures:
                    raise
                out = StepOutput(math.nan, error=describe_failure(exc, state.name, inputs, targets), exception=exc)
            outputs[state.name] = StepOutput(
                out.loss,
                out.metrics,
                out.lr,
                seconds=time.perf_counter() - start,
                error=out.error,
                exception=out.exception,
            )
        return outputs
