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
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from twinrun.engine._build import CandidateState
from twinrun.engine._memory import ActivationMeter
from twinrun.engine._step import StepOutput, train_step
from twinrun.rng import RngStreams
from twinrun.spec import Metric

__all__ = ["Executor", "SequentialExecutor", "StepContext"]


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
    return (f"candidate {candidate!r} failed on a batch of inputs {shape_of(inputs)} and targets "
            f"{shape_of(targets)}: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")


def shape_of(value: Any) -> Any:
    """Shapes of the tensors inside ``value`` (for messages)."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return type(value)(shape_of(v) for v in value)
    if isinstance(value, Mapping):
        return {k: shape_of(v) for k, v in value.items()}
    return type(value).__name__


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
    candidate's draws shift another's.
    """

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
            meter = context.meter.measure(state.name) if context.meter else nullcontext()
            start = time.perf_counter()
            try:
                with context.streams.isolated("dropout", step, devices=context.devices), meter:
                    out = train_step(
                        state, inputs, targets, metrics=context.metrics, grad_clip=context.grad_clip
                    )
            except Exception as exc:  # noqa: BLE001 - this candidate's own code: it stops, the others go on
                out = StepOutput(math.nan, error=describe_failure(exc, state.name, inputs, targets),
                                 exception=exc)
            outputs[state.name] = StepOutput(
                out.loss, out.metrics, out.lr, seconds=time.perf_counter() - start, error=out.error,
                exception=out.exception,
            )
        return outputs
