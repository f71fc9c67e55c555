"""The vectorised executor: same-architecture candidates in one batched step (``torch.func.vmap``).

A group of K same-architecture candidates (see ``_vector_group``) is one
forward and one backward over stacked weights (``_stack``) and one update
over flat tensors with each member's own hyperparameters (``_vector_optim``).
Everything the sequential executor promises still holds per member: the same
batch, the same dropout masks (``randomness="same"`` inside the step's
``dropout`` stream), the loss and metrics computed by each member's own
functions, a non-finite loss that skips that member's update, the scheduler
stepped after each update. What differs is rounding: batched kernels sum in
another order, so a vectorised run agrees with the sequential one to a stated
tolerance, and is bit-identical with itself (across processes, and resumed).

A group that cannot run batched (its model fails under ``vmap`` on the first
step: data-dependent control flow, ``.item()``, an unsupported operator) is
run sequentially from then on, and the reason is kept in :attr:`report`.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.utils import _pytree as pytree

from twinrun.engine._build import CandidateState
from twinrun.engine._executor import DrawTracker, SequentialExecutor, StepContext, describe_failure
from twinrun.engine._memory import ActivationMeter
from twinrun.engine._outputs import prediction
from twinrun.engine._stack import ModelStack, stack_models
from twinrun.engine._step import StepOutput, candidate_loss, current_lr
from twinrun.engine._vector_group import plan_groups
from twinrun.engine._vector_optim import StackedOptimizer

__all__ = ["EXECUTORS", "VectorisedExecutor", "auto_budget", "make_executor"]

EXECUTORS = ("auto", "vectorised", "sequential")


_TENSOR = object()  # marks where a tensor goes back into a structured output


def _batched_forward(base: nn.Module, shared_input: bool) -> Any:
    """``base``'s forward over stacked tensors, with as little per-call work as ``vmap`` allows.

    Tensors travel as tuples in a fixed order (``vmap`` flattens its inputs on
    every call), and weights tied under several names (an embedding shared with
    the output layer) are given under each name once, here, instead of
    ``functional_call`` searching the module for ties at every step.
    """
    def aliases(named: Any) -> dict[str, list[str]]:
        by_id: dict[int, list[str]] = {}
        for name, t in named:
            by_id.setdefault(id(t), []).append(name)
        return {names[0]: names for names in by_id.values()}

    params = aliases(base.named_parameters(remove_duplicate=False))
    buffers = aliases(base.named_buffers(remove_duplicate=False))
    p_names, b_names = list(params), list(buffers)

    structure: list[Any] = []  # the outputs' pytree and their non-tensor leaves (a GPT's loss=None)

    def one(p: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...], x: Any) -> Any:
        tensors = {alias: t for name, t in zip(p_names, p) for alias in params[name]}
        tensors.update({alias: t for name, t in zip(b_names, b) for alias in buffers[name]})
        out = functional_call(base, tensors, (x,), tie_weights=False, strict=False)
        if isinstance(out, torch.Tensor):
            structure[:] = []
            return out
        leaves, spec = pytree.tree_flatten(out)  # vmap returns tensors only: the rest is put back after
        structure[:] = [spec, [_TENSOR if isinstance(v, torch.Tensor) else v for v in leaves]]
        return tuple(v for v in leaves if isinstance(v, torch.Tensor))

    batched = vmap(one, in_dims=(0, 0, None if shared_input else 0), randomness="same")

    def call(p: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], x: Any) -> Any:
        out = batched(tuple(p[n] for n in p_names), tuple(b[n] for n in b_names), x)
        if not structure:
            return out
        spec, others = structure
        tensors = iter(out)
        return pytree.tree_unflatten([next(tensors) if v is _TENSOR else v for v in others], spec)

    return call


def _count(k: int) -> str:
    return f"{k} candidate{'s' if k != 1 else ''}"


def _unbind(out: Any, k: int) -> list[Any]:
    if isinstance(out, torch.Tensor):
        return list(out.unbind(0))
    leaves, spec = pytree.tree_flatten(out)
    split = [leaf.unbind(0) if isinstance(leaf, torch.Tensor) else [leaf] * k for leaf in leaves]
    return [pytree.tree_unflatten([s[j] for s in split], spec) for j in range(k)]


def _stack_inputs(values: Sequence[Any]) -> Any:
    leaves = [pytree.tree_flatten(v)[0] for v in values]
    spec = pytree.tree_flatten(values[0])[1]
    return pytree.tree_unflatten([torch.stack(list(column)) for column in zip(*leaves)], spec)


class _Group:
    """K candidates stepped together."""

    def __init__(self, members: list[CandidateState]) -> None:
        self.members = members
        self.names = [m.name for m in members]
        self.label = "+".join(self.names)
        self.stack: ModelStack | None = None
        self.optimizer: StackedOptimizer | None = None
        self._forward: dict[bool, Any] = {}
        self.fitted = False  # probed and sized to the memory budget (on its first step)
        self.why: str | None = None  # why it cannot run batched (then it runs sequentially)

    def bind(self) -> None:
        """(Re)build the stack from the members' current tensors (first step, resume, a changed state)."""
        models = [m.model for m in self.members]
        if self.stack is not None and self.optimizer is not None and self.stack.bound() and self.optimizer.bound():
            return
        by_id = {id(p): n for n, p in models[0].named_parameters()}
        layout = [[by_id[id(p)] for p in g["params"]] for g in self.members[0].optimizer.param_groups]
        self.stack = stack_models(models, layout)
        self.optimizer = StackedOptimizer([m.optimizer for m in self.members], self.stack.groups)

    def forward_fn(self, shared_input: bool) -> Any:
        """``f(params, buffers, x)``: the members' forward under ``vmap`` (``shared_input``: one batch for all)."""
        fn = self._forward.get(shared_input)
        if fn is None:
            fn = _batched_forward(self.members[0].model, shared_input)
            self._forward[shared_input] = fn
        return fn

    def probe(self, batches: Mapping[str, tuple[Any, Any]], context: StepContext, step: int,
              count: int | None = None) -> tuple[str | None, int]:
        """The batched step of the first ``count`` members on copies (nothing of theirs changes).

        Returns why it fails (``None``: it runs) and the peak bytes it saved for backward.
        """
        members = self.members[:count] if count else self.members
        named = [dict(m.model.named_parameters()) for m in members]
        params = {n: torch.stack([p[n].detach() for p in named]).requires_grad_() for n in named[0]}
        buffers = {n: torch.stack([dict(m.model.named_buffers())[n].detach() for m in members])
                   for n, _ in members[0].model.named_buffers()}
        inputs, targets, shared = _Group(members).inputs(batches)
        meter = ActivationMeter()
        try:
            with context.streams.isolated("dropout", step, devices=context.devices), \
                    meter.measure("probe", (inputs, targets, buffers)), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")
                out = self.forward_fn(shared)(params, buffers, inputs)
                losses = [candidate_loss(m, o, y) for m, o, y in zip(members, _unbind(out, len(members)), targets)]
                torch.stack([loss.reshape(()) for loss in losses]).sum().backward()
        except Exception as exc:  # noqa: BLE001 - the reason is reported, the group runs sequentially
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"the model does not run under torch.func.vmap: {type(exc).__name__}: {first[:200]}", 0
        return None, meter.peak_bytes

    def inputs(self, batches: Mapping[str, tuple[Any, Any]]) -> tuple[Any, list[Any], bool]:
        chosen = [batches[m.spec.augment_key] for m in self.members]
        if all(b is chosen[0] for b in chosen):
            return chosen[0][0], [chosen[0][1]] * len(chosen), True
        return _stack_inputs([b[0] for b in chosen]), [b[1] for b in chosen], False

    def step(self, step: int, batches: Mapping[str, tuple[Any, Any]], context: StepContext,
             draws: DrawTracker) -> dict[str, StepOutput]:
        assert self.stack is not None and self.optimizer is not None
        k = len(self.members)
        lrs = [current_lr(m.optimizer) for m in self.members]
        inputs, targets, shared = self.inputs(batches)
        self.stack.zero_grad()
        meter = (context.meter.measure(self.label, (inputs, targets, self.stack.buffers))
                 if context.meter else nullcontext())
        with draws.isolated(self.label, step, context), meter, warnings.catch_warnings():
            # the members' gradients are views of one flat tensor, on purpose: autograd's layout advice does not apply
            warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")
            out = self.forward_fn(shared)(self.stack.params(), self.stack.buffers, inputs)
            outs = _unbind(out, k)
            losses = [candidate_loss(m, o, y).reshape(()) for m, o, y in zip(self.members, outs, targets)]
            stacked = torch.stack(losses)
            values = stacked.detach().tolist()  # one host synchronisation for the group
            finite = [i for i, v in enumerate(values) if math.isfinite(v)]
            if finite:
                (stacked.sum() if len(finite) == k else stacked[finite].sum()).backward()
            del stacked, losses, out
        if finite:
            if context.grad_clip is not None:
                self._clip(context.grad_clip)
            self.optimizer.step(None if len(finite) == k else finite)
            for i in finite:
                member = self.members[i]
                # what torch.optim's step() would have marked: its schedulers then do not warn
                member.optimizer._opt_called = True  # type: ignore[attr-defined]
                if member.scheduler is not None:
                    member.scheduler.step()
        metrics = self._metrics(outs, targets, finite, context)
        return {m.name: StepOutput(values[i], metrics.get(i, {}), lrs[i]) for i, m in enumerate(self.members)}

    def _clip(self, max_norm: float) -> None:
        """``clip_grad_norm_`` for each member, as torch computes it: the 2-norm of its parameters' norms."""
        assert self.stack is not None
        groups = self.stack.groups
        where = {n: (g, i) for g, group in enumerate(groups) for i, n in enumerate(group.names)}
        order = [where[n] for n, _ in self.members[0].model.named_parameters()]
        for k in range(len(self.members)):
            norms = [torch.linalg.vector_norm(groups[g].row_view(groups[g].grad, k, i), 2) for g, i in order]
            total = torch.linalg.vector_norm(torch.stack(norms), 2)
            factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)
            for group in groups:
                group.grad[k].mul_(factor)

    def _metrics(self, outs: list[Any], targets: list[Any], finite: list[int],
                 context: StepContext) -> dict[int, dict[str, float]]:
        if not context.metrics or not finite:
            return {}
        with torch.no_grad():
            values = [metric(prediction(outs[i], self.members[i].output_key).detach(), targets[i]).float().mean()
                      for i in finite for metric in context.metrics.values()]
            flat = torch.stack(values).tolist()
        names = list(context.metrics)
        return {i: dict(zip(names, flat[j * len(names) : (j + 1) * len(names)])) for j, i in enumerate(finite)}


def auto_budget(device: torch.device) -> int:
    """The default memory budget: half of the GPU's free memory; on the CPU a quarter of the machine's."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free // 2)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4)
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def make_executor(kind: str, *, budget: int | None = None) -> SequentialExecutor | VectorisedExecutor:
    """The executor of the ``executor`` setting; ``budget``: bytes of activations (``None``: auto)."""
    return SequentialExecutor() if kind == "sequential" else VectorisedExecutor(kind, budget=budget)


class VectorisedExecutor:
    """Steps same-architecture candidates together, the others one at a time (``mode``: see :data:`EXECUTORS`).

    ``chunk`` caps how many candidates one batched step holds (the memory
    budget); :attr:`report` says, per candidate, how it ran and why.
    """

    def __init__(self, mode: str = "auto", *, chunk: int | None = None, budget: int | None = None) -> None:
        if mode not in EXECUTORS:
            raise ValueError(f"executor={mode!r}: use one of {', '.join(EXECUTORS)}")
        self.mode = mode
        self.chunk = chunk
        self.budget = budget  # bytes of activations one batched step may hold; None: auto
        #: group label -> estimated activation bytes of its batched step (measured peak: the meter's)
        self.estimates: dict[str, int] = {}
        self.sequential = SequentialExecutor()
        self.draws = DrawTracker()
        self.report: dict[str, str] = {}  # candidate -> "vectorised with ..." or why it ran alone
        self._plan_for: tuple[int, ...] | None = None  # by identity: a caller may step copies of the same names
        self._groups: list[_Group] = []
        self._alone: list[CandidateState] = []

    def _replan(self, candidates: Sequence[CandidateState]) -> None:
        plan = plan_groups(candidates, mode=self.mode, chunk=self.chunk)
        self._groups = [_Group(members) for members in plan.groups]
        self._alone = list(plan.sequential)
        for name, why in plan.reasons.items():
            self.report.setdefault(name, f"sequential: {why}")
        self._plan_for = tuple(id(s) for s in candidates)

    def run_step(
        self,
        step: int,
        candidates: Sequence[CandidateState],
        batches: Mapping[str, tuple[Any, Any]],
        context: StepContext,
    ) -> dict[str, StepOutput]:
        if self._plan_for != tuple(id(s) for s in candidates):
            self._replan(candidates)
        outputs: dict[str, StepOutput] = {}
        alone = list(self._alone)  # before a group falls back (its members then step in _run_group)
        for group in [g for g in self._groups if not g.fitted]:
            self._fit(group, batches, context)
        for group in list(self._groups):
            outputs.update(self._run_group(group, step, batches, context))
        if alone:
            outputs.update(self.sequential.run_step(step, alone, batches, context))
        return {s.name: outputs[s.name] for s in candidates}

    def _fit(self, group: _Group, batches: Mapping[str, tuple[Any, Any]], context: StepContext) -> None:
        """Probe the batched step on copies of one and two members; split the group to fit the budget.

        Activations grow linearly with the group: ``base + per_member * K`` from the two probes
        (the estimate is reported next to the measured peak).
        """
        k = len(group.members)
        why, one = group.probe(batches, context, 0, count=1)
        two = one
        if why is None and k > 1:
            why, two = group.probe(batches, context, 0, count=2)
        per_member = max(two - one, 1) if k > 1 else max(one, 1)
        base = one - per_member if k > 1 else 0
        device = context.devices[0] if context.devices else torch.device("cpu")
        budget = self.budget if self.budget is not None else auto_budget(device)
        size = k if why is not None else max(1, min(k, (budget - base) // per_member))
        chunks = [group] if size >= k else [_Group(group.members[i : i + size]) for i in range(0, k, size)]
        if len(chunks) > 1:
            at = self._groups.index(group)
            self._groups[at : at + 1] = chunks
        for chunk in chunks:
            chunk.fitted, chunk.why = True, why
            self.estimates[chunk.label] = base + per_member * len(chunk.members)
            if len(chunks) > 1:
                for name in chunk.names:
                    self.report[name] = (f"vectorised with {_count(len(chunk.members))}: {chunk.label} "
                                         f"(split to fit memory_budget={budget} bytes)")

    def _run_group(self, group: _Group, step: int, batches: Mapping[str, tuple[Any, Any]],
                   context: StepContext) -> dict[str, StepOutput]:
        why = group.why
        if why is None:
            start = time.perf_counter()
            try:
                group.bind()
                outputs = group.step(step, batches, context, self.draws)
            except Exception as exc:  # noqa: BLE001 - the user's code raised: the sequential step names who
                why = f"the batched step raised at step {step}: {describe_failure(exc, group.label, *group.inputs(batches)[:2])}"
            else:
                seconds = (time.perf_counter() - start) / len(group.members)
                for name in group.names:
                    self.report.setdefault(name, "")
                    if not self.report[name].startswith("vectorised"):
                        self.report[name] = f"vectorised with {_count(len(group.members))}: {group.label}"
                return {n: StepOutput(o.loss, o.metrics, o.lr, seconds=seconds) for n, o in outputs.items()}
        self._groups.remove(group)
        self._alone += group.members
        for name in group.names:
            self.report[name] = f"sequential: {why}"
        return self.sequential.run_step(step, group.members, batches, context)
