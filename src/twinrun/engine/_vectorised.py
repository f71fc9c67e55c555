"""The vectorised executor: same-architecture candidates in one batched step (``torch.func.vmap``).

A group of K same-architecture candidates (see ``_vector_group``) is one
forward and one backward over stacked weights (``_stack``; a model that is a
plain chain of layers as batched matrix products, ``_layerwise``, any other
under ``vmap``) and one update
over flat tensors with each member's own hyperparameters (``_vector_optim``).
Everything the sequential executor promises still holds per member: the same
batch, the same dropout masks (``randomness="same"`` inside the step's
``dropout`` stream), the loss and metrics computed by each member's own
functions (or, for ``nn.CrossEntropyLoss``, in one call with the same gradients:
``_batched_loss``), a non-finite loss that skips that member's update, the scheduler
stepped after each update. What differs is rounding: batched kernels sum in
another order, so a vectorised run agrees with the sequential one to a stated
tolerance, and is bit-identical with itself (across processes, and resumed).

Off the CPU (or with ``deferred=True``) a step is queued whole: no loss is read
back before the last update is queued; the update of a member whose loss is
not finite is undone on the device, and the losses and metrics of every group
and candidate are read back once, at the end of the step.

A group that cannot run batched (its model fails under ``vmap`` on the first
step: data-dependent control flow, ``.item()``, an unsupported operator) is
run sequentially from then on, and the reason is kept in :attr:`report`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import torch

from twinrun.engine._batched_eval import evaluate_together
from twinrun.engine._build import CandidateState
from twinrun.engine._evaluate import EvalOutput, EvalSet
from twinrun.engine._executor import DrawTracker, SequentialExecutor, StepContext, describe_failure, device_of
from twinrun.engine._placement import batch_for
from twinrun.engine._step import StepOutput
from twinrun.engine._vector_group import plan_groups
from twinrun.engine._vector_step import BatchedGroup, QueuedGroup, inputs_of

__all__ = ["EXECUTORS", "Member", "VectorisedExecutor", "auto_budget", "evaluate_groups", "make_executor"]

EXECUTORS = ("auto", "vectorised", "sequential")


def auto_budget(device: torch.device) -> int:
    """The default memory budget: half of the GPU's free memory; on the CPU a quarter of the machine's."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free // 2)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4)
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def evaluate_groups(
    executor: object,
    val: EvalSet,
    states: Sequence[CandidateState],
    step: int,
    *,
    index: Sequence[int] | None = None,
    keep_outputs: bool = False,
) -> dict[int, EvalOutput]:
    """What ``executor`` evaluates a group at a time (:meth:`VectorisedExecutor.evaluate`; another: nothing)."""
    if isinstance(executor, VectorisedExecutor):
        return executor.evaluate(val, states, step, index=index, keep_outputs=keep_outputs)
    return {}


def make_executor(kind: str, *, budget: int | None = None) -> SequentialExecutor | VectorisedExecutor:
    """The executor of the ``executor`` setting; ``budget``: bytes of activations (``None``: auto)."""
    return SequentialExecutor() if kind == "sequential" else VectorisedExecutor(kind, budget=budget)


class Member(NamedTuple):  # a tuple: built for every candidate at every step
    """One candidate of one step: its state, its batch, its run's context (``tag``: its name in labels)."""

    state: CandidateState
    batch: tuple[Any, Any]
    context: StepContext
    tag: str


def _count(k: int) -> str:
    return f"{k} candidate{'s' if k != 1 else ''}"


class VectorisedExecutor:
    """Steps same-architecture candidates together, the others one at a time (``mode``: see :data:`EXECUTORS`).

    ``chunk`` caps how many candidates one batched step holds, ``budget`` the
    bytes of their activations (``None``: :func:`auto_budget`); :attr:`report`
    says, per candidate, how it ran and why. :meth:`run_members` steps
    candidates of several runs (replicas of other seeds) in one call.
    """

    def __init__(
        self, mode: str = "auto", *, chunk: int | None = None, budget: int | None = None, deferred: bool | None = None
    ) -> None:
        if mode not in EXECUTORS:
            raise ValueError(f"executor={mode!r}: use one of {', '.join(EXECUTORS)}")
        self.mode = mode
        self.chunk = chunk
        self.budget = budget
        #: group label -> estimated activation bytes of its batched step (measured peak: the meter's)
        self.estimates: dict[str, int] = {}
        #: queue a step whole, reading the losses back once all are queued (``None``: off the CPU; see
        #: :class:`SequentialExecutor`)
        self.deferred = deferred
        self.sequential = SequentialExecutor(deferred=deferred)
        self.draws = DrawTracker()
        self.report: dict[str, str] = {}  # candidate name -> "vectorised with ..." or why it ran alone
        self.how: dict[int, str] = {}  # the same, by candidate state (names repeat across runs)
        self._plan_for: tuple[int, ...] | None = None  # by identity: a caller may step copies of the same names
        self._groups: list[BatchedGroup] = []
        self._alone: list[CandidateState] = []

    def evaluate(
        self,
        val: EvalSet,
        states: Sequence[CandidateState],
        step: int,
        *,
        index: Sequence[int] | None = None,
        keep_outputs: bool = False,
    ) -> dict[int, EvalOutput]:
        """By candidate state, the evaluations of the groups whose members are all in ``states`` and can be
        evaluated in one forward per batch (``_batched_eval``); the caller evaluates the others one by one.

        Before the first step (nothing planned yet), one run's ``states`` are grouped as its first step will
        group them, and each group's stack is bound: the evaluation at step 0 is batched too."""
        if self._plan_for is None and len(states) > 1:
            self._replan(states, [s.name for s in states], several=False)
        wanted = {id(s) for s in states}
        results: dict[int, EvalOutput] = {}
        for group in self._groups:
            if group.why is None and all(id(s) in wanted for s in group.members):
                if not group.fitted and group.stack is not None and not group.stack.bound():
                    continue  # another executor (a sweep's, stepping replicas together) stacked them since
                try:
                    if not group.fitted:
                        group.bind()
                    together = evaluate_together(group, val, step, index=index, keep_outputs=keep_outputs)
                except Exception:  # not yet stepped (unprobed): one by one, where the errors are named
                    if group.fitted:
                        raise
                    together = None
                results.update({id(s): together[s.name] for s in group.members} if together else {})
        return results

    def run_step(
        self,
        step: int,
        candidates: Sequence[CandidateState],
        batches: Mapping[str, tuple[Any, Any]],
        context: StepContext,
    ) -> dict[str, StepOutput]:
        if not self._groups and self._plan_for == tuple(id(s) for s in candidates):
            return self.sequential.run_step(step, candidates, batches, context)  # nothing to batch: no detour
        members = [Member(s, batch_for(batches, s), context, s.name) for s in candidates]
        return {m.state.name: out for m, out in zip(members, self.run_members(step, members))}

    def run_members(self, step: int, members: Sequence[Member]) -> list[StepOutput]:
        """Update ``step`` of every member; the outputs in the members' order."""
        by_id = {id(m.state): m for m in members}
        if self._plan_for != tuple(by_id):
            several = self._randomness(members) == "different"
            self._replan([m.state for m in members], [m.tag for m in members], several=several)
        results: dict[int, StepOutput] = {}
        alone = list(self._alone)  # before a group falls back (its members then step in _run_group)
        for group in [g for g in self._groups if not g.fitted]:
            self._fit(group, by_id)
        queued: list[tuple[QueuedGroup, StepContext, float]] = []
        for group in list(self._groups):
            results.update(self._run_group(group, step, by_id, queued))
        results.update(self._run_alone(step, [by_id[id(s)] for s in alone]))
        for pending, context, seconds in queued:  # read back only now that every step is queued
            start = time.perf_counter()
            outputs = pending.settle(context)
            share = seconds + (time.perf_counter() - start) / len(outputs)
            results.update({id(s): replace(o, seconds=share) for s, o in zip(pending.group.members, outputs)})
        return [results[id(m.state)] for m in members]

    def _replan(self, states: Sequence[CandidateState], tags: Sequence[str], *, several: bool) -> None:
        # Members of several runs (replicas): one group per candidate name, each holding its replicas in
        # the same order, so that every group draws the same masks row by row: within a run, candidates
        # still share their dropout masks (the twin promise); across runs each replica has its own.
        plan = plan_groups(states, mode=self.mode, chunk=self.chunk, apart=(lambda s: s.name) if several else None)
        tag = {id(s): t for s, t in zip(states, tags)}
        self._groups = [BatchedGroup(g, [tag[id(s)] for s in g]) for g in plan.groups]
        self._alone = list(plan.sequential)
        for state in plan.sequential:
            self._say(state, f"sequential: {plan.reasons[state.name]}", only_if_new=True)
        self._plan_for = tuple(id(s) for s in states)

    def _say(self, state: CandidateState, how: str, *, only_if_new: bool = False) -> None:
        if only_if_new and id(state) in self.how:
            return
        self.how[id(state)] = how
        self.report[state.name] = how

    def _run_alone(self, step: int, members: Sequence[Member]) -> dict[int, StepOutput]:
        """One at a time, by the sequential executor, each run's candidates with that run's context."""
        out: dict[int, StepOutput] = {}
        by_context: dict[int, list[Member]] = {}
        for m in members:
            by_context.setdefault(id(m.context), []).append(m)
        for group in by_context.values():
            done = self.sequential.run_batches(step, [(m.state, m.batch) for m in group], group[0].context)
            out.update({id(m.state): done[m.state.name] for m in group})
        return out

    @staticmethod
    def _randomness(members: Sequence[Member]) -> str:
        """``same`` masks for one run's candidates (as the sequential executor gives), ``different`` across runs."""
        seeds = {m.context.streams.seed for m in members}
        return "same" if len(seeds) == 1 else "different"

    def _fit(self, group: BatchedGroup, by_id: Mapping[int, Member]) -> None:
        """Probe the batched step on copies of one and two members; split the group to fit the budget.

        Activations grow linearly with the group: ``base + per_member * K`` from the two probes
        (the estimate is reported next to the measured peak).
        """
        members = [by_id[id(s)] for s in group.members]
        k, context, batches = len(members), members[0].context, [m.batch for m in members]
        randomness = self._randomness(members)
        why, one = group.probe(batches, context, 0, count=1, randomness=randomness)
        if why is None and randomness == "same":  # one run's candidates: the masks each would draw alone
            why = group.draws_differ(batches, context)
        two = one
        if why is None and k > 1:
            why, two = group.probe(batches, context, 0, count=2, randomness=randomness)
        per_member = max(two - one, 1) if k > 1 else max(one, 1)
        base = one - per_member if k > 1 else 0
        budget = self.budget if self.budget is not None else auto_budget(device_of(group.members[0]))
        size = k if why is not None else max(1, min(k, (budget - base) // per_member))
        chunks = (
            [group]
            if size >= k
            else [BatchedGroup(group.members[i : i + size], group.tags[i : i + size]) for i in range(0, k, size)]
        )
        if len(chunks) > 1:
            at = self._groups.index(group)
            self._groups[at : at + 1] = chunks
        for chunk in chunks:
            chunk.fitted, chunk.why = True, why
            self.estimates[chunk.label] = base + per_member * len(chunk.members)
            if len(chunks) > 1:
                for state in chunk.members:
                    self._say(
                        state,
                        f"vectorised with {_count(len(chunk.members))}: {chunk.label} "
                        f"(split to fit memory_budget={budget} bytes)",
                    )

    def _run_group(
        self,
        group: BatchedGroup,
        step: int,
        by_id: Mapping[int, Member],
        queued: list[tuple[QueuedGroup, StepContext, float]],
    ) -> dict[int, StepOutput]:
        """The group's step: its outputs, or none where it is queued whole (then in ``queued``)."""
        members = [by_id[id(s)] for s in group.members]
        batches = [m.batch for m in members]
        why = group.why
        if why is None:
            start = time.perf_counter()
            try:
                group.bind()
                deferred = self.sequential.defers(group.members[0])
                outputs = group.step(
                    step,
                    batches,
                    members[0].context,
                    self.draws,
                    self._randomness(members),
                    deferred=deferred,
                    started=start,
                )
            except Exception as exc:  # noqa: BLE001 - the user's code raised: the sequential step names who
                inputs, targets, _ = inputs_of(batches)
                why = f"the batched step raised at step {step}: {describe_failure(exc, group.label, inputs, targets)}"
            else:
                if not group.said:
                    for state in group.members:
                        if not self.how.get(id(state), "").startswith("vectorised"):
                            self._say(state, f"vectorised with {_count(len(members))}: {group.label}")
                    group.said = True
                if isinstance(outputs, QueuedGroup):
                    queued.append((outputs, members[0].context, (time.perf_counter() - start) / len(members)))
                    return {}
                return {id(s): o for s, o in zip(group.members, outputs)}
        self._groups.remove(group)
        self._alone += group.members
        for state in group.members:
            self._say(state, f"sequential: {why}")
        return self._run_alone(step, members)
