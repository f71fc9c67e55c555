"""One batched step of K same-architecture candidates: one forward and backward, one stacked update.

The forward is the layer-wise one (``_layerwise``: batched matrix products and
grouped convolutions) for a model that is a plain chain of layers, else ``vmap``.

Everything the sequential executor promises still holds per member: its own
batch, the same dropout masks as one run's candidates get (``randomness="same"``
inside the step's ``dropout`` stream; replicas of different seeds draw their
own, ``"different"``), the loss and metrics computed by each member's own
functions, a non-finite loss that skips that member's update, its scheduler
stepped after the update. See ``_vectorised`` for who is grouped and when.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.utils import _pytree as pytree

from twinrun.engine._batched_loss import batched_loss
from twinrun.engine._batched_metrics import batched_metrics
from twinrun.engine._build import CandidateState
from twinrun.engine._executor import DrawTracker, StepContext
from twinrun.engine._fused import parameter_layout
from twinrun.engine._layerwise import NotPlain, layerwise_forward
from twinrun.engine._layout_advice import use_up_layout_advice
from twinrun.engine._memory import ActivationMeter
from twinrun.engine._outputs import prediction
from twinrun.engine._stack import ModelStack, stack_models
from twinrun.engine._step import StepOutput, candidate_loss, current_lr, read_back
from twinrun.engine._vector_optim import StackedOptimizer

__all__ = ["BatchedGroup", "QueuedGroup", "inputs_of"]

_TENSOR = object()  # marks where a tensor goes back into a structured output

try:  # what torch.func.vmap calls after flattening its inputs, which it does again at every call
    from torch._functorch.vmap import _flat_vmap
except ImportError:  # another torch: the public vmap, a little slower
    _flat_vmap = None  # type: ignore[assignment]


def _batched_forward(base: nn.Module, shared_input: bool, randomness: str = "same") -> Any:
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

    batched = vmap(one, in_dims=(0, 0, None if shared_input else 0), randomness=randomness)
    direct: list[Any] = []  # (in_dims, args spec, members) of the tensor-input fast path, once known

    def run(p_values: tuple[torch.Tensor, ...], b_values: tuple[torch.Tensor, ...], x: Any) -> Any:
        if _flat_vmap is None or not isinstance(x, torch.Tensor) or not p_values:
            return batched(p_values, b_values, x)
        members = p_values[0].shape[0]
        if not direct or direct[2] != members:  # vmap's own per-call flattening, done once for this layout
            spec = pytree.tree_flatten((p_values, b_values, x))[1]
            dims = [0] * (len(p_values) + len(b_values)) + [None if shared_input else 0]
            direct[:] = [dims, spec, members]
        return _flat_vmap(one, members, direct[0], [*p_values, *b_values, x], direct[1], 0, randomness)

    def call(p: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], x: Any) -> Any:
        out = run(tuple(p[n] for n in p_names), tuple(b[n] for n in b_names), x)
        if not structure:
            return out
        spec, others = structure
        tensors = iter(out)
        return pytree.tree_unflatten([next(tensors) if v is _TENSOR else v for v in others], spec)

    return call


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


def inputs_of(batches: Sequence[tuple[Any, Any]]) -> tuple[Any, list[Any], bool]:
    """The members' inputs for ``vmap`` (one shared batch, or theirs stacked), their targets, and which."""
    if all(b is batches[0] for b in batches):
        return batches[0][0], [batches[0][1]] * len(batches), True
    return _stack_inputs([b[0] for b in batches]), [b[1] for b in batches], False


class BatchedGroup:
    """K candidates stepped together (``tags``: how the label names them, default their names)."""

    def __init__(self, members: list[CandidateState], tags: Sequence[str] | None = None) -> None:
        self.members = members
        self.names = [m.name for m in members]
        self.label = "+".join(tags if tags is not None else self.names)
        self.tags = list(tags) if tags is not None else list(self.names)
        self.stack: ModelStack | None = None
        self.optimizer: StackedOptimizer | None = None
        self._forward: dict[tuple[bool, str], Any] = {}
        self._plain: dict[bool, Any] = {}  # shared input or not -> the layer-wise forward, while inputs fit it
        self.fitted = False  # probed and sized to the memory budget (on its first step)
        self.why: str | None = None  # why it cannot run batched (then it runs sequentially)
        self.said = False  # the run report says the members step vectorised in this group

    def bind(self) -> None:
        """(Re)build the stack from the members' current tensors (first step, resume, a changed state)."""
        models = [m.model for m in self.members]
        if self.stack is not None and self.optimizer is not None and self.stack.bound() and self.optimizer.bound():
            return
        self.stack = stack_models(models, parameter_layout(models[0], self.members[0].optimizer))
        self.optimizer = StackedOptimizer([m.optimizer for m in self.members], self.stack.groups)

    def forward_fn(self, shared_input: bool, randomness: str = "same") -> Any:
        """``f(params, buffers, x)``: the members' forward under ``vmap`` (``shared_input``: one batch for all;
        ``randomness``: ``same`` masks for all, as one run's candidates get, or ``different``, for replicas)."""
        fn = self._forward.get((shared_input, randomness))
        if fn is None:
            model = self.members[0].model
            general = _batched_forward(model, shared_input, randomness)
            plain = layerwise_forward(model, shared_input, randomness)
            if plain is not None:
                self._plain[shared_input] = plain
            fn = general if plain is None else self._plain_or(plain, general, (shared_input, randomness))
            self._forward[shared_input, randomness] = fn
        return fn

    def plain_forward(self) -> Any:
        """The layer-wise forward over one shared batch (each member's outputs its own model's, bit for bit;
        in eval mode, where dropout draws nothing, whichever randomness it was built for), or ``None``: the
        model is not a plain chain, or its inputs did not fit it."""
        if not any(shared for shared, _ in self._forward):
            self.forward_fn(True)
        return self._plain.get(True)

    def _plain_or(self, plain: Any, general: Any, key: tuple[bool, str]) -> Any:
        """The layer-wise forward, replaced for good by ``vmap``'s the first time its inputs do not fit."""

        def call(p: Any, b: Any, x: Any) -> Any:
            try:
                return plain(p, b, x)
            except NotPlain:
                self._forward[key] = general
                self._plain.pop(key[0], None)
                return general(p, b, x)

        return call

    def probe(
        self,
        batches: Sequence[tuple[Any, Any]],
        context: StepContext,
        step: int,
        count: int | None = None,
        randomness: str = "same",
    ) -> tuple[str | None, int]:
        """The batched step of the first ``count`` members on copies (nothing of theirs changes).

        Returns why it fails (``None``: it runs) and the peak bytes it saved for backward.
        """
        members = self.members[:count] if count else self.members
        named = [dict(m.model.named_parameters()) for m in members]
        params = {n: torch.stack([p[n].detach() for p in named]).requires_grad_() for n in named[0]}
        owned = [dict(m.model.named_buffers()) for m in members]
        buffers = {n: torch.stack([b[n].detach() for b in owned]) for n in owned[0]}
        inputs, targets, shared = inputs_of(batches[: len(members)])
        meter = ActivationMeter()
        try:
            with (
                context.streams.isolated("dropout", step, devices=context.devices),
                meter.measure("probe", (inputs, targets, buffers)),
            ):
                out = self.forward_fn(shared, randomness)(params, buffers, inputs)
                losses = [candidate_loss(m, o, y) for m, o, y in zip(members, _unbind(out, len(members)), targets)]
                torch.stack([loss.reshape(()) for loss in losses]).sum().backward()
        except Exception as exc:  # noqa: BLE001 - the reason is reported, the group runs sequentially
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"the model does not run under torch.func.vmap: {type(exc).__name__}: {first[:200]}", 0
        return None, meter.peak_bytes

    def draws_differ(self, batches: Sequence[tuple[Any, Any]], context: StepContext) -> str | None:
        """Why the batched forward does not draw what the first member draws alone (``None``: it does).

        Under ``vmap`` a dropout mask is drawn in the logical order of its input, alone in the input's memory
        order: where a layer hands dropout a transposed tensor (``nn.MultiheadAttention`` with
        ``batch_first=True``), the masks differ. So the first member runs both ways on copies, in one stream:
        outputs further apart in training mode than rounding puts them in eval mode (no dropout) mean other
        masks, and the group steps one candidate at a time.
        """
        member = self.members[0]
        training = member.model.training
        try:
            apart, scale = self._apart(batches, context)
            if apart <= 1e-5 * scale + 1e-7:
                return None
            member.model.eval()  # rounding alone (a low-precision autocast region) parts them as much
            rounding, _ = self._apart(batches, context)
        except Exception as exc:  # noqa: BLE001 - a model that cannot be compared is not batched
            return f"its batched forward could not be compared with its own: {type(exc).__name__}: {exc}"[:300]
        finally:
            member.model.train(training)
        if apart <= 10 * rounding + 1e-7:
            return None
        return (
            f"under torch.func.vmap its random draws (dropout masks) are not the ones it draws alone (outputs "
            f"apart by {apart:.3g} of {scale:.3g}, {rounding:.3g} without dropout): one at a time, the exact reference"
        )

    def _apart(self, batches: Sequence[tuple[Any, Any]], context: StepContext) -> tuple[float, float]:
        """The first member's forward on copies, batched and alone, in one stream: the largest difference of
        their outputs and the largest output."""
        member = self.members[0]
        params = {n: p.detach().clone() for n, p in member.model.named_parameters()}
        buffers = {n: b.clone() for n, b in member.model.named_buffers()}
        inputs, _, shared = inputs_of(batches[:1])
        with torch.no_grad():
            with context.streams.isolated("dropout", 0, devices=context.devices):
                alone = functional_call(member.model, {**params, **buffers}, (batches[0][0],), strict=False)
            stacked = {n: t.unsqueeze(0) for n, t in params.items()}
            owned = {n: t.clone().unsqueeze(0) for n, t in member.model.named_buffers()}
            with context.streams.isolated("dropout", 0, devices=context.devices):
                batched = _unbind(self.forward_fn(shared)(stacked, owned, inputs), 1)[0]
        apart = scale = 0.0
        for a, b in zip(pytree.tree_leaves(batched), pytree.tree_leaves(alone)):
            if isinstance(a, torch.Tensor) and a.is_floating_point() and a.numel():
                apart = max(apart, float((a.float() - b.float()).abs().max()))
                scale = max(scale, float(b.float().abs().max()))
        return apart, scale

    def step(
        self,
        step: int,
        batches: Sequence[tuple[Any, Any]],
        context: StepContext,
        draws: DrawTracker,
        randomness: str = "same",
        *,
        deferred: bool = False,
        started: float | None = None,
    ) -> list[StepOutput] | QueuedGroup:
        """One update of every member, each on its own batch (``batches[i]``), inside ``context``'s stream.

        ``started``: the ``time.perf_counter()`` each output's ``seconds`` (its share) is counted from.

        ``deferred``: nothing is read back; the losses' finiteness stays on the device, where the update of
        a member whose loss is not finite is undone, and :meth:`QueuedGroup.settle` reads and finishes the
        step (the same numbers, bit for bit).
        """
        assert self.stack is not None and self.optimizer is not None
        k = len(self.members)
        lrs = [current_lr(m.optimizer) for m in self.members]
        inputs, targets, shared = inputs_of(batches)
        self.stack.zero_grad()
        meter = (
            context.meter.measure(self.label, (inputs, targets, self.stack.buffers)) if context.meter else nullcontext()
        )
        keep: torch.Tensor | None = None
        use_up_layout_advice()  # the members' gradients are views of one flat tensor, on purpose
        with draws.isolated(self.label, step, context), meter:
            out = self.forward_fn(shared, randomness)(self.stack.params(), self.stack.buffers, inputs)
            stacked = batched_loss(self.members, out, targets, shared)
            if stacked is None:
                stacked = torch.stack(
                    [candidate_loss(m, o, y).reshape(()) for m, o, y in zip(self.members, _unbind(out, k), targets)]
                )
            losses = stacked.detach()
            if deferred:  # a loss that is not finite sends no gradient (as left out of the sum below)
                keep = torch.isfinite(losses)
                torch.where(keep, stacked, torch.zeros_like(stacked)).sum().backward()
                finite = list(range(k))
            else:
                values = losses.tolist()  # one host synchronisation for the group
                finite = [i for i, v in enumerate(values) if math.isfinite(v)]
                if finite:
                    (stacked.sum() if len(finite) == k else stacked[finite].sum()).backward()
            del stacked
        if finite:
            if context.grad_clip is not None:
                self._clip(context.grad_clip)
            self.optimizer.step(None if len(finite) == k else finite, keep=keep)
        if deferred:
            return QueuedGroup(self, losses, lrs, self._metric_tensors(out, targets, finite, context))
        self._counted(finite)
        metrics = self._read_metrics(self._metric_tensors(out, targets, finite, context), finite, context)
        share = 0.0 if started is None else (time.perf_counter() - started) / k
        return [StepOutput(v, metrics.get(i, {}), lr, share) for i, (v, lr) in enumerate(zip(values, lrs))]

    def _counted(self, rows: Sequence[int]) -> None:
        """Members ``rows`` were updated: their schedulers step."""
        for i in rows:
            member = self.members[i]
            # what torch.optim's step() would have marked: its schedulers then do not warn
            member.optimizer._opt_called = True  # type: ignore[attr-defined]
            if member.scheduler is not None:
                member.scheduler.step()

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

    def _metric_tensors(
        self, out: Any, targets: list[Any], rows: list[int], context: StepContext
    ) -> torch.Tensor | None:
        """Members ``rows``' metrics, ``[len(rows) * n_metrics]`` on the device (``None``: none to compute)."""
        if not context.metrics or not rows:
            return None
        with torch.no_grad():
            together = batched_metrics(out, targets, context.metrics, [m.output_key for m in self.members])
            if together is not None:
                return (together if len(rows) == len(self.members) else together[rows]).reshape(-1)
            outs = _unbind(out, len(self.members))
            return torch.stack(
                [
                    metric(prediction(outs[i], self.members[i].output_key).detach(), targets[i]).float().mean()
                    for i in rows
                    for metric in context.metrics.values()
                ]
            )

    @staticmethod
    def _read_metrics(
        values: torch.Tensor | None, rows: list[int], context: StepContext
    ) -> dict[int, dict[str, float]]:
        if values is None:
            return {}
        flat = values.tolist()
        names = list(context.metrics)
        return {i: dict(zip(names, flat[j * len(names) : (j + 1) * len(names)])) for j, i in enumerate(rows)}


class QueuedGroup:
    """A group's step queued whole (``BatchedGroup.step(deferred=True)``), read back by :meth:`settle`."""

    def __init__(
        self, group: BatchedGroup, losses: torch.Tensor, lrs: list[float], metrics: torch.Tensor | None
    ) -> None:
        self.group, self.losses, self.lrs, self.metrics = group, losses, lrs, metrics

    def settle(self, context: StepContext) -> list[StepOutput]:
        """The members' outputs: one read back of the losses and metrics; the members whose loss is not
        finite get the host's view of their optimizer back (their tensors already are), the others' schedulers
        step."""
        group, k = self.group, len(self.group.members)
        read = read_back([self.losses] if self.metrics is None else [self.losses, self.metrics])
        values, flat = read[0], read[1] if self.metrics is not None else []
        finite = [i for i, v in enumerate(values) if math.isfinite(v)]
        skipped = [i for i, v in enumerate(values) if not math.isfinite(v)]
        if skipped:
            assert group.optimizer is not None
            group.optimizer.revert(skipped)
        group._counted(finite)
        names = list(context.metrics)
        kept = {i: flat[i * len(names) : (i + 1) * len(names)] for i in finite} if names else {}
        return [StepOutput(values[i], dict(zip(names, kept.get(i, []))), self.lrs[i]) for i in range(k)]
