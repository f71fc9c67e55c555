"""One candidate's training step, shared by the engine and :class:`twinrun.Twin`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from twinrun.engine._build import CandidateState
from twinrun.engine._distributed import global_mean
from twinrun.engine._fused import FusedUpdate
from twinrun.engine._outputs import loss_input, prediction
from twinrun.spec import Metric

__all__ = [
    "Launched",
    "Queued",
    "StepOutput",
    "candidate_loss",
    "current_lr",
    "finish_step",
    "launch_step",
    "queue_step",
    "read_back",
    "read_metrics",
    "read_scalars",
    "settle",
    "train_step",
    "train_step_deferred",
]


@dataclass(frozen=True)
class StepOutput:
    """What one update did: the loss on the batch (before the update), metrics, learning rate."""

    loss: float
    metrics: Mapping[str, float] = field(default_factory=dict)
    lr: float = math.nan
    seconds: float = 0.0
    error: str | None = None  # the candidate's own code raised: it stops, the others go on
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    lr = optimizer.param_groups[0].get("lr", math.nan)
    return float(lr.item() if isinstance(lr, torch.Tensor) else lr)


def candidate_loss(state: CandidateState, outputs: Any, targets: Any) -> torch.Tensor:
    """The candidate's loss on ``outputs``: what the model returns, or its prediction (see ``_outputs``)."""
    if state.loss_takes is None:
        state.loss_takes, loss = loss_input(state.loss_fn, outputs, targets, state.output_key)
        return loss
    return state.loss_fn(outputs if state.loss_takes == "outputs" else prediction(outputs, state.output_key), targets)


@dataclass
class Launched:
    """A step under way: the forward and loss queued (on a GPU, not yet waited for)."""

    outputs: Any
    loss: torch.Tensor
    lr: float


def launch_step(state: CandidateState, inputs: Any, targets: Any, *, update: FusedUpdate | None = None) -> Launched:
    """The first half of :func:`train_step`: gradients cleared, forward, loss. Reads nothing back from a GPU."""
    lr = current_lr(state.optimizer)
    if update is not None:
        update.zero_grad()
    else:
        state.optimizer.zero_grad(set_to_none=True)
    outputs = (state.train_model or state.model)(inputs)
    return Launched(outputs, candidate_loss(state, outputs, targets), lr)


def finish_step(
    state: CandidateState,
    launched: Launched,
    targets: Any,
    *,
    metrics: Mapping[str, Metric],
    grad_clip: float | None,
    update: FusedUpdate | None = None,
    keep: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The second half, for a finite loss: backward, clipping, update, scheduler; the metrics, as tensors
    (read back by the caller: a GPU is waited for only there). ``keep``: the loss's finiteness, still on
    the device: the update is undone there if it is false, and the scheduler waits for :func:`settle`."""
    launched.loss.backward()
    launched.loss = launched.loss.detach()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(state.model.parameters(), grad_clip)
    if update is not None:
        update.step(keep)
    else:
        state.optimizer.step()
    if state.scheduler is not None and keep is None:
        state.scheduler.step()
    with torch.no_grad():
        detached = prediction(launched.outputs, state.output_key).detach()
        launched.outputs = None  # the graph is released before the next candidate starts
        return {name: metric(detached, targets).float().mean() for name, metric in metrics.items()}


def train_step(
    state: CandidateState,
    inputs: Any,
    targets: Any,
    *,
    metrics: Mapping[str, Metric],
    grad_clip: float | None,
    update: FusedUpdate | None = None,
) -> StepOutput:
    """Forward, loss, backward, optimizer and scheduler step for one candidate.

    A non-finite loss skips the update and is returned as is; the caller marks
    the candidate diverged. The autograd graph is released before returning, so
    the next candidate starts with no activations of this one alive. ``update``:
    the candidate's optimizer step over flat storage (bit-identical, faster).
    A candidate with a ``train_model`` (its ``DistributedDataParallel`` wrapper) trains through it, and its
    loss and metrics are the means over the ranks (all ranks decide alike).
    """
    loss, lr, tensors = train_step_deferred(state, inputs, targets, metrics=metrics, grad_clip=grad_clip, update=update)
    return StepOutput(loss=loss, metrics=read_metrics(state, tensors), lr=lr)


def read_metrics(state: CandidateState, tensors: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """A step's metric tensors as numbers (waits for the device); a data-parallel candidate's: the means over
    the ranks."""
    values = {name: float(v) for name, v in tensors.items()}
    if state.train_model is not None and values:
        values = dict(zip(values, global_mean(list(values.values()), next(iter(tensors.values())).device)))
    return values


def train_step_deferred(
    state: CandidateState,
    inputs: Any,
    targets: Any,
    *,
    metrics: Mapping[str, Metric],
    grad_clip: float | None,
    update: FusedUpdate | None = None,
) -> tuple[float, float, dict[str, torch.Tensor]]:
    """:func:`train_step` with the metrics left where they were computed: the loss, the learning rate and
    the metric tensors (none for a non-finite loss), for the caller to read when it waits anyway (on a GPU,
    reading them here would wait for the backward and the update before the next forward is queued)."""
    launched = launch_step(state, inputs, targets, update=update)
    loss = launched.loss.detach()
    value = float(loss) if state.train_model is None else global_mean([float(loss)], loss.device)[0]
    if not math.isfinite(value):
        return value, launched.lr, {}
    tensors = finish_step(state, launched, targets, metrics=metrics, grad_clip=grad_clip, update=update)
    return value, launched.lr, tensors


@dataclass
class Queued:
    """A step queued whole with its loss not yet read back (no host synchronisation): see :func:`queue_step`."""

    state: CandidateState
    update: FusedUpdate
    loss: torch.Tensor
    lr: float
    metrics: dict[str, torch.Tensor]


def queue_step(
    state: CandidateState,
    inputs: Any,
    targets: Any,
    *,
    metrics: Mapping[str, Metric],
    grad_clip: float | None,
    update: FusedUpdate,
) -> Queued:
    """:func:`train_step` without waiting for the loss: forward, backward and an update undone on the device
    if the loss is not finite, the metrics as tensors. :func:`settle` finishes it once the loss is read (the
    scheduler's step, or the host's counts put back): the numbers are :func:`train_step`'s, bit for bit.
    Only for a candidate with a flat update (``update``) and no data-parallel wrapper."""
    launched = launch_step(state, inputs, targets, update=update)
    loss = launched.loss.detach()
    keep = torch.isfinite(loss)
    tensors = finish_step(state, launched, targets, metrics=metrics, grad_clip=grad_clip, update=update, keep=keep)
    return Queued(state, update, loss, launched.lr, tensors)


def settle(queued: Queued, loss: float) -> bool:
    """The end of a queued step once its loss is read: whether it counted (a finite loss)."""
    if not math.isfinite(loss):
        queued.update.revert()
        return False
    if queued.state.scheduler is not None:
        queued.state.scheduler.step()
    return True


def read_scalars(tensors: list[torch.Tensor]) -> list[float]:
    """Every one-element tensor's value, with one read back per device and dtype (``float(t)``'s, bit for bit)."""
    return [values[0] for values in read_back(tensors)]


def read_back(tensors: list[torch.Tensor]) -> list[list[float]]:
    """Every tensor's values (flattened), with one read back per device and dtype."""
    values: list[list[float]] = [[] for _ in tensors]
    by_kind: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(tensors):
        by_kind.setdefault((t.device, t.dtype), []).append(i)
    for at in by_kind.values():
        flat = torch.cat([tensors[i].reshape(-1) for i in at]).tolist()
        start = 0
        for i in at:
            n = tensors[i].numel()
            values[i] = [float(v) for v in flat[start : start + n]]
            start += n
    return values
