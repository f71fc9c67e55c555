"""The twin loop: every candidate, the same batches, one process.

Read top to bottom, a run is::

    build data and candidates (shared init)  ->  preflight every candidate on 2 examples
    evaluate at step 0
    for step in 1..steps:
        batch = data.train_batch(step)                    # same examples for everyone
        batches = {aug: augment(batch) for each distinct augmentation}   # augmented once
        executor.run_step(step, live candidates, batches) # one candidate's activations at a time
        mark NaN/Inf candidates diverged; the others go on
        every eval_every steps and at the end: evaluate on the same validation batches
    paired comparisons against the reference

Everything the outside world sees leaves through events (see ``_events``).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from twinrun._interrupt import StopRequest
from twinrun.engine._allocator import keep_freed_memory
from twinrun.engine._baselines import Baselines
from twinrun.engine._build import CandidateState, build_callable, build_candidates, per_example_loss
from twinrun.engine._data import augment_once, load_data, move_to
from twinrun.engine._data_facts import data_facts
from twinrun.engine._distributed import World, shard, spread_over_ranks
from twinrun.engine._drive import StepRequest, drive, new_run_id, resolve_device
from twinrun.engine._evaluate import EvalSet, eval_set
from twinrun.engine._events import BatchPrepared, EvalDone, EventBus, RunFailed, RunFinished, RunStarted, Sink
from twinrun.engine._executor import Executor, SequentialExecutor, StepContext
from twinrun.engine._finish import build_result
from twinrun.engine._history import RunHistory
from twinrun.engine._memory import ActivationMeter
from twinrun.engine._placement import PlacedBatches, resolve_placement
from twinrun.engine._preflight import preflight
from twinrun.engine._result import TwinResult
from twinrun.engine._selection import Selection, check_selection
from twinrun.engine._state import engine_state, load_engine_state
from twinrun.engine._step import StepOutput
from twinrun.engine._vectorised import evaluate_groups, make_executor
from twinrun.errors import ConfigError, Interrupted
from twinrun.rng import (
    RngStreams,
    derive_seed,
    determinism_settings,
    deterministic_mode,
    ensure_cublas_workspace_config,
)
from twinrun.spec import ResolvedExperiment, parse_bytes

__all__ = ["StepRequest", "TwinEngine", "drive", "new_run_id", "resolve_device", "run_twin"]


class TwinEngine:
    """Builds the candidates of a resolved experiment and trains them side by side.

    Construction does all the checking (data, factories, shapes against the
    loss, metrics) so that bad input fails before any training starts. With the
    ``deterministic`` setting it first sets ``CUBLAS_WORKSPACE_CONFIG`` in the
    process environment (it must be there before CUDA starts, and stays). A CPU run
    raises glibc's malloc thresholds once per process (``_allocator``).
    """

    def __init__(
        self,
        resolved: ResolvedExperiment,
        *,
        sinks: Sequence[Sink] = (),
        run_id: str | None = None,
        executor: Executor | None = None,
        measure_memory: bool = True,
        stop: StopRequest | None = None,
        world: World | None = None,
    ) -> None:
        self.resolved = resolved
        self.stop = stop
        self.world = world  # a torchrun launch: this rank trains its shard of every batch (``_distributed``)
        self.settings = resolved.settings
        self.run_id = run_id or new_run_id()
        if self.settings.deterministic:
            ensure_cublas_workspace_config()  # before anything below can initialise CUDA
        self.streams = RngStreams(self.settings.seed)
        self.executor: Executor = executor or make_executor(
            self.settings.executor, budget=parse_bytes(self.settings.memory_budget)
        )
        self.bus = EventBus(sinks)
        self.metrics = dict(resolved.metrics)
        self.metric_goals = {"loss": False, **{k: m.higher_is_better for k, m in self.metrics.items()}}
        check_selection(self.settings, self.metric_goals)
        self.data = load_data(resolved, self.streams)
        self.data_facts = data_facts(
            self.data.train,
            self.data.val,
            self.data.test,
            order=self.data.plan.order(0),
            batch_size=self.settings.batch_size,
        )
        self.states, self.init = build_candidates(resolved, self.streams, self._place)
        if any(d.type == "cpu" for d in self.placement.devices):
            keep_freed_memory()
        for state in self.states.values():  # a batch size of its own is checked before anything trains
            self.data.plan_for(state.spec.batch_size)
        self.eval_losses = {n: per_example_loss(s.loss_fn) for n, s in self.states.items()}
        self.val = self._eval_set("val")
        self.output_kind = self._preflight()
        self.step_streams = self.streams
        ref, at = self.states[resolved.reference], self.placement.device_of(resolved.reference)
        self.baselines = (
            Baselines(
                ref,
                move_to(tuple(t[:2] for t in self.val.batches[0]), at),
                kind=self.output_kind,
                eval_loss=self.eval_losses[ref.name],
                streams=self.streams,
                device=at,
            )
            if self.settings.baselines
            else None
        )
        n_val = sum(len(b[1]) for b in self.val.batches)
        self.selection = Selection.of(self.settings, self.metric_goals, n_val, self.streams)
        self.meter = ActivationMeter() if measure_memory else None
        self._measured = self.meter is None  # measured on the first step trained here (a resumed run too)
        #: what changes as the run trains (the step, curves, evaluations, timing): the rest is built once
        self.history = RunHistory(self.states, self.metrics, self.settings.steps)
        self.determinism: dict[str, Any] = {}
        self.execution: dict[str, str] = {}  # set by a driver that steps this run with others (``_lockstep``)
        if world is not None:
            self._go_parallel(world)

    @property
    def step(self) -> int:
        """The updates made so far (``history.step``)."""
        return self.history.step

    # ------------------------------------------------------------------ set-up
    def _place(self, models: Mapping[str, nn.Module]) -> Mapping[str, torch.device]:
        """Each candidate's device (``_placement``); the first is where batches are made (:attr:`device`)."""
        self.placement = resolve_placement(self.settings, models, resolve_device, list(self.resolved.declared))
        self.device = self.placement.primary
        return self.placement.of

    def _go_parallel(self, world: World) -> None:
        """Data-parallel: equal shards checked, each candidate in DDP or FSDP, one candidate at a time (see
        ``_distributed``), dropout from a stream of (seed, rank)."""
        if self.placement.spread:
            raise ConfigError(
                f"devices={self.settings.devices!r} under torchrun: each rank trains on its own device",
                fix="drop --set devices under torchrun (the ranks spread the work), or run without torchrun",
            )
        how = spread_over_ranks(self.states.values(), self.settings, self.device, world)
        self.executor = SequentialExecutor(fused=False, isolate_failures=False)
        self.execution.update(dict.fromkeys(self.states, how))
        self.step_streams = RngStreams(derive_seed(self.settings.seed, "rank", world.rank))

    def _eval_set(self, split: str) -> EvalSet:
        """A split's batches, with their test-time augmented passes (``eval_augment``), made once."""
        augment = build_callable(self.resolved.eval_augment, "eval_augment", "(all)")
        return eval_set(
            self.data.val_batches(split),
            augment,
            self.settings.eval_passes,
            split,
            self.resolved.name,
            self.eval_losses,
            self.metrics,
            self.placement,
            self.streams,
        )

    def _preflight(self) -> str:
        """Every candidate on 2 training examples before training (see ``_preflight``)."""
        return preflight(
            self.states, self.data, self.streams, self.placement, self.metrics, self.eval_losses, self.settings.output
        )

    # ------------------------------------------------------------------ the loop
    @property
    def live(self) -> list[CandidateState]:
        return [s for s in self.states.values() if s.alive]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run bit-identically (see ``_state``)."""
        return engine_state(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict` (restores the global generators too)."""
        load_engine_state(self, state)

    def run(self) -> TwinResult:
        """Train to ``settings.steps`` (from :attr:`step`, when resumed), emitting events.

        With the ``deterministic`` setting, training runs inside
        :func:`~twinrun.rng.deterministic_mode`, and the switches are restored afterwards.
        """
        return drive(self.steps())

    def steps(self) -> Generator[StepRequest, dict[str, StepOutput], TwinResult]:
        """:meth:`run`, as a generator: it yields a :class:`StepRequest` for every training step and is
        sent the step's outputs back; it returns the result. What lets a driver step several runs together
        (the replicas of a sweep, see ``_lockstep``); :func:`drive` runs it with the engine's own executor.
        """
        mode = deterministic_mode(True) if self.settings.deterministic else nullcontext()
        with mode:
            self.determinism = determinism_settings()
            return (yield from self._run())

    def _run(self) -> Generator[StepRequest, dict[str, StepOutput], TwinResult]:
        started = time.perf_counter()
        try:
            # inside the try: a sink (or Ctrl-C) failing at the start still ends the run everywhere
            self.bus.emit(
                RunStarted(
                    self.run_id,
                    self.resolved,
                    self.resolved.to_config(),
                    self.init,
                    self.placement.label,
                    self.step,
                    {n: s.model for n, s in self.states.items()},
                )
            )
            if self.step == 0 or self._evaluation_missing():
                self._evaluate_all(keep_outputs=self.step == self.settings.steps)
            for state in self.states.values():  # resumed: a candidate stopped early keeps its last evaluation
                if state.stopped_at is not None and state.name not in self.history.last_eval:
                    self.history.last_eval[state.name] = self.val.evaluate(state, state.stopped_at, keep_outputs=True)
            while self.step < self.settings.steps and self.live:
                yield from self._train_one_step()
                if self.settings.monitor and self.live:
                    self._monitor()
                if self.step % self.settings.eval_every == 0 or self.step == self.settings.steps:
                    self._evaluate_all(keep_outputs=self.step == self.settings.steps)
                if self.stop is not None and self.stop.requested and self.step < self.settings.steps:
                    raise Interrupted(
                        self.stop.reason or "stop requested", step=self.step, at_step_boundary=True, run_id=self.run_id
                    )
            if not self.history.last_eval or any(self.history.last_eval[s.name].outputs is None for s in self.live):
                self._evaluate_all(keep_outputs=True)
            if self.data.test is not None:
                self._evaluate_test()
            if self.baselines is not None:
                self.history.baseline_evals = self.baselines.evaluate(self.val, self.metrics, self.step)
        except BaseException as exc:  # noqa: BLE001 - recorded by every sink, then re-raised
            self.data.close()
            failed = RunFailed(
                self.run_id,
                self.step,
                exc,
                isinstance(exc, KeyboardInterrupt),
                at_step_boundary=isinstance(exc, Interrupted) and exc.at_step_boundary,
            )
            for error in self.bus.emit_to_all(failed):
                exc.add_note(f"twinrun: a sink also failed while recording this: {type(error).__name__}: {error}")
            try:
                self.bus.close()
            finally:
                raise
        self.history.timing["total"] = time.perf_counter() - started
        self.data.close()
        result = self._result()
        self.bus.emit(RunFinished(self.run_id, result))
        self.bus.close()
        return result

    def _evaluation_missing(self) -> bool:
        """A run resumed from a state taken before its step's evaluation: evaluate again (same result)."""
        due = self.step % self.settings.eval_every == 0 or self.step == self.settings.steps
        return due and any(
            not self.history.eval_history[s.name] or self.history.eval_history[s.name][-1][0] != self.step
            for s in self.live
        )

    def _train_one_step(self) -> Generator[StepRequest, dict[str, StepOutput], None]:
        step = self.step + 1
        live = self.live
        t0 = time.perf_counter()
        raw = move_to(self.data.train_batch(step), self.device)
        t1 = time.perf_counter()
        batches: Mapping[str, tuple[Any, Any]]
        batches, assignment = self.augment(step, raw, live)  # a candidate's own batch size: read in there
        full = batches
        if self.world is not None:  # augmented once, whole, then this rank's slice
            batches = {key: shard(batch, self.world) for key, batch in batches.items()}
        if self.placement.spread:  # copied to another device when a candidate there first asks
            batches = PlacedBatches(batches, self.placement)
        t2 = time.perf_counter()
        if self.bus.wants_batches:
            self.bus.emit(BatchPrepared(self.run_id, step, batches, assignment))
        context = StepContext(
            self.step_streams,
            self.placement.devices,
            self.metrics,
            self.settings.grad_clip,
            self.meter if not self._measured else None,  # the first step this process trains
        )
        self._measured = True
        outputs = yield StepRequest(self, step, live, batches, context)
        if self.baselines is not None:  # the reference's batch, augmentation included
            t3, batch = time.perf_counter(), full.get(assignment.get(self.resolved.reference, ""), raw)
            self.baselines.train(move_to(batch, self.baselines.device) if self.placement.spread else batch)
            self.history.timing["baselines"] = self.history.timing.get("baselines", 0.0) + time.perf_counter() - t3
        self.history.timing["data"] += t1 - t0
        self.history.timing["augment"] += t2 - t1
        self.history.timing["train"] += time.perf_counter() - t2
        diverged = self.history.record_step(step, outputs, self.states)
        for event in self.history.step_events(self.run_id, step, outputs, self.states, diverged):
            self.bus.emit(event)
        raised = [o.exception for o in outputs.values() if o.exception is not None]
        if raised and len(raised) == len(outputs) and not self.live:
            # every candidate's own code raised: the run fails with the first error, as the user wrote it
            first = raised[0]
            for state in self.states.values():
                if state.error:
                    first.add_note(f"twinrun: {state.error}")
            raise first

    def prepared_batches(self, step: int) -> tuple[dict[str, tuple[Any, Any]], dict[str, str]]:
        """The augmented batches of ``step`` and which live candidate uses which (a pure function of the step)."""
        return self.augment(step, move_to(self.data.train_batch(step), self.device), self.live)

    def augment(
        self, step: int, raw: tuple[Any, Any], live: Sequence[CandidateState]
    ) -> tuple[dict[str, tuple[Any, Any]], dict[str, str]]:
        """Augment the shared batch ``raw`` of ``step`` once per distinct augmentation, from the step's stream
        (a candidate with a batch size of its own gets the step's batch of that size)."""
        raws: dict[int | None, tuple[Any, Any]] = {None: raw}
        for size in {s.spec.batch_size for s in live} - {None}:
            raws[size] = move_to(self.data.train_batch(step, size), self.device)
        return augment_once(self.streams, self.device, step, raws, live)

    def _evaluate_all(self, *, keep_outputs: bool) -> None:
        t0 = time.perf_counter()
        results: dict[str, dict[str, float]] = {}
        quick = self.settings.eval_batches
        full = keep_outputs or quick is None or self.step == self.settings.steps
        index = None if full else range(min(quick or 0, len(self.val)))
        together = evaluate_groups(
            self.executor, self.val, self.live, self.step, index=index, keep_outputs=keep_outputs
        )
        for state in self.live:
            out = together.get(id(state)) or self.val.evaluate(state, self.step, index=index, keep_outputs=keep_outputs)
            if (
                index is None
                and self.selection is not None
                and self.selection.update(state.name, out, state.model)
                and self.step < self.settings.steps
            ):  # early stopping: it trains no further
                state.stopped_at = self.step
                out = out if out.outputs is not None else self.val.evaluate(state, self.step, keep_outputs=True)
            means = out.means()
            self.history.record_eval(state.name, self.step, out, means)  # a resumed run's repeat replaces it
            results[state.name] = means
        self.history.timing["eval"] += time.perf_counter() - t0
        self.bus.emit(EvalDone(self.run_id, self.step, results, batches=len(self.val) if index is None else len(index)))

    def _monitor(self) -> None:
        """The ``monitor`` setting: every candidate on one validation batch, the same for all, after a step."""
        t0 = time.perf_counter()
        index = [(self.step - 1) % len(self.val)]
        results = {s.name: self.val.evaluate(s, self.step, index=index, stream="monitor").means() for s in self.live}
        self.history.timing["eval"] += time.perf_counter() - t0
        self.bus.emit(EvalDone(self.run_id, self.step, results, split="monitor", batches=1))

    def _evaluate_test(self) -> None:
        """The test split, once, at the end: reported, never used for any decision."""
        t0 = time.perf_counter()
        test = self._eval_set("test")
        for state in (s for s in self.states.values() if s.diverged_at is None):  # stopped early too
            self.history.test_scores[state.name] = test.evaluate(state, self.step).means()
        self.history.timing["test"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ result
    def _result(self) -> TwinResult:
        return build_result(self)

    def execution_report(self) -> dict[str, str]:
        """How each candidate's steps ran (batched with which others, or alone and why)."""
        report = {**getattr(self.executor, "report", {}), **self.execution}
        where = {n: f"; on {self.placement.device_of(n)}" if self.placement.spread else "" for n in self.states}
        return {n: report.get(n, "sequential") + where[n] for n in self.states}


def run_twin(
    resolved: ResolvedExperiment,
    *,
    sinks: Sequence[Sink] = (),
    run_id: str | None = None,
    executor: Executor | None = None,
) -> TwinResult:
    """Build and train the candidates of ``resolved`` side by side; see :class:`TwinEngine`."""
    return TwinEngine(resolved, sinks=sinks, run_id=run_id, executor=executor).run()
