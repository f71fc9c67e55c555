"""Step requests: how a run asks for its training steps, so that a driver can step several runs together.

:meth:`TwinEngine.steps <twinrun.engine.TwinEngine.steps>` is a generator: for
every training step it yields a :class:`StepRequest` (its live candidates, their
batches, the step's context) and is sent the outputs back. :func:`drive` answers
each request with the run's own executor (that is ``TwinEngine.run``); the
lockstep driver of ``_lockstep`` answers the requests of several runs at once.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import torch

from twinrun.engine._build import CandidateState
from twinrun.engine._executor import StepContext
from twinrun.engine._step import StepOutput
from twinrun.errors import ConfigError

if TYPE_CHECKING:
    from twinrun.engine._loop import TwinEngine

__all__ = ["StepRequest", "drive", "new_run_id", "resolve_device"]

T = TypeVar("T")


def new_run_id() -> str:
    """A fresh 32-hex-digit run id (from the OS entropy pool, not a global RNG)."""
    return uuid.uuid4().hex


def resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={name!r} but CUDA is not available on this machine",
            fix="run on the CPU with --device cpu (or --set device=cpu)",
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(
            f"device={name!r} but this machine shows {count} CUDA device{'s' if count != 1 else ''} "
            f"(cuda:0..cuda:{count - 1}; CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})",
            fix=f"use --device cuda:{count - 1} or lower, or --device cuda (the current one)",
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name!r} but MPS is not available", fix="use --device cpu")
    return device


@dataclass
class StepRequest:
    """One training step a run asks for: its live candidates, their batches and context.

    See :meth:`TwinEngine.steps`.
    """

    engine: TwinEngine
    step: int
    candidates: list[CandidateState]
    batches: Mapping[str, tuple[Any, Any]]
    context: StepContext


def drive(steps: Generator[StepRequest, dict[str, StepOutput], T]) -> T:
    """Run a generator of step requests to its end, each step by its own engine's executor."""
    try:
        request = next(steps)
        while True:
            outputs = request.engine.executor.run_step(
                request.step, request.candidates, request.batches, request.context
            )
            request = steps.send(outputs)
    except StopIteration as done:
        return cast("T", done.value)
