"""Executors: how the live candidates of one step are run on their batches.

The engine hands an executor the candidates and their (shared) batches; the
executor returns one :class:`StepOutput` per candidate. It is a part you can
swap: :class:`SequentialExecutor` runs candidates one after the other (one
candidate's activations alive at a time); a vectorised executor for
same-architecture candidates fits the same protocol.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch

from twinrun.engine._build import CandidateState
from twinrun.engine._fused import FusedUpdate
from twinrun.engine._memory import ActivationMeter
from twinrun.engine._placement import PlacedBatches, batch_for
from twinrun.engine._step import (
    Launched,
    Queued,
    StepOutput,
    finish_step,
    launch_step,
    queue_step,
    read_metrics,
    read_scalars,
    settle,
    train_step_deferred,
)
from twinrun.engine._vector_group import architecture_key
from twinrun.rng import RngStreams
from twinrun.spec import Metric

_NO_METER = nullcontext()  # reusable: the step of a run that is not measured
#: one candidate's step before its metrics are read: (loss, lr, metric tensors), or the failure's output
_Result = tuple[float, float, dict[str, torch.Tensor]] | StepOutput | Queued

__all__ = ["DrawTracker", "Executor", "SequentialExecutor", "StepContext", "device_of"]


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

    def isolated(self, key: str, step: int, context: StepContext) -> AbstractContextManager[Any]:
        """The step's ``dropout`` stream for ``key``: the stream itself while ``key`` is known (no wrapper
        around it: this runs at every step), or the stream with a probe of what ``key`` draws."""
        known = self._known.get(key)
        if known is not None and (known[0] or step - known[1] < self.every):
            return context.streams.isolated("dropout", step, devices=context.devices, python_numpy=known[0])
        return self._probed(key, step, context, known)

    @contextmanager
    def _probed(self, key: str, step: int, context: StepContext, known: tuple[bool, int] | None) -> Iterator[None]:
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


def device_of(state: CandidateState) -> torch.device:
    """Where the candidate trains: its first parameter's (or buffer's) device."""
    for tensor in itertools.chain(state.model.parameters(), state.model.buffers()):
        return tensor.device
    return torch.device("cpu")


class SequentialExecutor:
    """One candidate after another, each inside the ``dropout`` stream of this step.

    Every candidate's in-step randomness (dropout masks...) is drawn from the
    same seed, so same-architecture candidates get the same masks and no
    candidate's draws shift another's. Where a candidate's optimizer is SGD,
    Adam or AdamW, its update runs over flat storage (``_fused``: the same
    numbers as ``optimizer.step()``, in a few operations); ``fused=False`` calls
    ``optimizer.step()`` itself.

    On a GPU (``deferred``: ``None``, or ``True`` anywhere) a candidate with a
    flat update is queued whole: its update is undone on the device if its loss
    is not finite, and every candidate's loss and metrics are read back once,
    after the last one is queued (one wait per step and device, not one per
    candidate; the numbers are the same, bit for bit). Elsewhere, and for an
    optimizer without a flat update, a candidate's loss is read back before its
    update (a non-finite one skips it), its metrics only once every
    candidate's update is queued.
    Candidates on several devices (the ``devices`` setting) step in waves, one
    candidate per device at a time: every wave's forwards are queued before any
    loss is read back, then every backward and update, so the devices can work at
    once while each still holds one candidate's activations. The numbers are
    those of one after another (the same operations on the same inputs;
    ``overlap=True`` forces waves, for tests on one device).
    """

    def __init__(
        self, *, fused: bool = True, isolate_failures: bool = True, overlap: bool = False, deferred: bool | None = None
    ) -> None:
        self.draws = DrawTracker()
        self.fused = fused
        #: a candidate whose code raises stops and the others go on; off in a data-parallel run, where a rank
        #: that went on alone would wait for the others forever
        self.isolate_failures = isolate_failures
        self.overlap = overlap
        self.deferred = deferred
        self._updates: dict[int, tuple[torch.optim.Optimizer, FusedUpdate | None]] = {}
        self._devices: dict[int, tuple[CandidateState, torch.device]] = {}

    def update_for(self, state: CandidateState) -> FusedUpdate | None:
        """The candidate's fused optimizer step, where its optimizer and model allow one (``_fused``)."""
        entry = self._updates.get(id(state.optimizer))
        if entry is not None and entry[0] is state.optimizer:
            return entry[1]
        update = FusedUpdate(state) if self.fused and not isinstance(architecture_key(state), str) else None
        self._updates[id(state.optimizer)] = (state.optimizer, update)  # holds the optimizer: its id stays its own
        return update

    def defers(self, state: CandidateState) -> bool:
        """Whether steps on the candidate's device are queued whole (``deferred``; by default off the CPU)."""
        return self.deferred if self.deferred is not None else self.device_of(state).type != "cpu"

    def queues(self, state: CandidateState) -> FusedUpdate | None:
        """The candidate's flat update if its step is queued whole (``deferred``), else ``None``."""
        update = self.update_for(state)
        if update is None or state.train_model is not None or not self.defers(state):
            return None
        return update

    def device_of(self, state: CandidateState) -> torch.device:
        entry = self._devices.get(id(state))
        if entry is None or entry[0] is not state:
            entry = self._devices[id(state)] = (state, device_of(state))
        return entry[1]

    def run_step(
        self,
        step: int,
        candidates: Sequence[CandidateState],
        batches: Mapping[str, tuple[Any, Any]],
        context: StepContext,
    ) -> dict[str, StepOutput]:
        if isinstance(batches, PlacedBatches):
            return self.run_batches(step, [(s, batch_for(batches, s)) for s in candidates], context)
        return self.run_batches(step, [(s, batches[s.spec.augment_key]) for s in candidates], context)

    def run_batches(
        self, step: int, work: Sequence[tuple[CandidateState, tuple[Any, Any]]], context: StepContext
    ) -> dict[str, StepOutput]:
        """Update ``step`` of each candidate on the batch paired with it."""
        if (
            context.meter is None
            and (self.overlap or (len(work) > 1 and len({self.device_of(s) for s, _ in work}) > 1))
            and not all(self.queues(s) is not None for s, _ in work)
        ):
            return self._run_waves(step, work, context)
        results: dict[str, _Result] = {}
        seconds: dict[str, float] = {}
        for state, (inputs, targets) in work:
            meter = (
                context.meter.measure(state.name, (inputs, targets, list(state.model.buffers())))
                if context.meter
                else _NO_METER
            )
            start = time.perf_counter()
            try:
                with self.draws.isolated(state.name, step, context), meter:
                    flat = self.queues(state)
                    step_of = train_step_deferred if flat is None else queue_step  # queued whole, or read first
                    results[state.name] = step_of(
                        state,
                        inputs,
                        targets,
                        metrics=context.metrics,
                        grad_clip=context.grad_clip,
                        update=flat or self.update_for(state),  # type: ignore[arg-type]
                    )
            except Exception as exc:  # noqa: BLE001 - re-raised by _failed where failures are not isolated
                results[state.name] = self._failed(exc, state, inputs, targets)
            seconds[state.name] = time.perf_counter() - start
        return self._read(work, results, seconds)

    def _run_waves(
        self, step: int, work: Sequence[tuple[CandidateState, tuple[Any, Any]]], context: StepContext
    ) -> dict[str, StepOutput]:
        by_device: dict[torch.device, list[tuple[CandidateState, tuple[Any, Any]]]] = {}
        for item in work:
            by_device.setdefault(self.device_of(item[0]), []).append(item)
        results: dict[str, _Result] = {}
        seconds: dict[str, float] = {}
        for wave in itertools.zip_longest(*by_device.values()):
            launched: list[tuple[CandidateState, Any, Any, Launched]] = []
            for state, (inputs, targets) in (item for item in wave if item is not None):
                start = time.perf_counter()
                try:
                    with self.draws.isolated(state.name, step, context):
                        begun = launch_step(state, inputs, targets, update=self.update_for(state))
                    launched.append((state, inputs, targets, begun))
                except Exception as exc:  # noqa: BLE001 - the candidate's own code raised: the others go on
                    results[state.name] = self._failed(exc, state, inputs, targets)
                seconds[state.name] = time.perf_counter() - start
            for state, inputs, targets, begun in launched:
                start = time.perf_counter()
                value = float(begun.loss.detach())  # waits for this device alone: the others go on
                try:
                    tensors: dict[str, torch.Tensor] = {}
                    if math.isfinite(value):  # a non-finite loss skips the update, as one after another
                        tensors = finish_step(
                            state,
                            begun,
                            targets,
                            metrics=context.metrics,
                            grad_clip=context.grad_clip,
                            update=self.update_for(state),
                        )
                    results[state.name] = (value, begun.lr, tensors)
                except Exception as exc:  # noqa: BLE001 - as above
                    results[state.name] = self._failed(exc, state, inputs, targets)
                seconds[state.name] += time.perf_counter() - start
        return self._read(work, results, seconds)

    @staticmethod
    def _read(
        work: Sequence[tuple[CandidateState, Any]], results: Mapping[str, _Result], seconds: Mapping[str, float]
    ) -> dict[str, StepOutput]:
        """Every candidate's output in ``work``'s order, its metrics read back only now that every update is
        queued (and the losses of the steps queued whole, in one read)."""
        start = time.perf_counter()
        settled = _settled(results)
        share = (time.perf_counter() - start) / max(len(settled), 1)
        outputs: dict[str, StepOutput] = {}
        for state, _ in work:
            result, start = results[state.name], time.perf_counter()
            if isinstance(result, StepOutput):  # its code raised
                outputs[state.name] = replace(result, seconds=seconds[state.name])
                continue
            if isinstance(result, Queued):
                loss, lr, values = settled[state.name]
                spent = share
            else:
                loss, lr, tensors = result
                values = read_metrics(state, tensors)
                spent = time.perf_counter() - start
            outputs[state.name] = StepOutput(loss, values, lr, seconds[state.name] + spent)
        return outputs

    def _failed(self, exc: Exception, state: CandidateState, inputs: Any, targets: Any) -> StepOutput:
        if not self.isolate_failures:
            raise exc
        return StepOutput(math.nan, error=describe_failure(exc, state.name, inputs, targets), exception=exc)


def _settled(results: Mapping[str, _Result]) -> dict[str, tuple[float, float, dict[str, float]]]:
    """The queued steps among ``results``, read back (one read per device and dtype) and settled:
    their loss, learning rate and metrics (none for a loss that is not finite)."""
    queued = {name: r for name, r in results.items() if isinstance(r, Queued)}
    if not queued:
        return {}
    values = iter(read_scalars([t for q in queued.values() for t in (q.loss, *q.metrics.values())]))
    settled: dict[str, tuple[float, float, dict[str, float]]] = {}
    for name, q in queued.items():
        loss = next(values)
        metrics = {metric: next(values) for metric in q.metrics}
        settled[name] = (loss, q.lr, metrics if settle(q, loss) else {})
    return settled
