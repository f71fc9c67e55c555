"""SGD, Adam and AdamW over stacked parameters, each member with its own hyperparameters.

The members' own ``torch.optim`` optimizers stay the source of the
hyperparameters: every step reads each member's ``param_groups`` (so each
member's LR scheduler, written for ``torch.optim``, works unchanged) and
applies the update to the flat ``[K, P]`` tensors of :mod:`._stack` with
per-member ``[K, 1]`` factors. The optimizer state lives in flat tensors too,
and each member's ``optimizer.state[p]`` holds views of its rows, in
``torch.optim``'s own layout: ``state_dict()``, checkpoints and a switch back
to the sequential executor see exactly what ``torch.optim`` would hold.

The update follows ``torch.optim``'s single-tensor implementation (its CPU
default) operation for operation, with the same python scalars: where the
gradients agree bit for bit, so do the updates (tested against ``torch.optim``
step by step). A hyperparameter that differs between members is applied row
by row (K small operations instead of one), except Adam's step size, applied as a
column of values in ``addcdiv``'s own order of operations (bit-identical too).
Adam's hyperparameters are read into python floats again only when a member's
changed; where the members differ in their learning rates at most (the usual
twin), its update is the whole-tensor operations alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.optim.optimizer as _optimizer_module

from twinrun.engine._stack import FlatGroup

__all__ = ["StackedOptimizer", "unsupported_optimizer"]

_KINDS = {torch.optim.SGD: "sgd", torch.optim.Adam: "adam", torch.optim.AdamW: "adam"}


def _value(x: Any) -> float:
    return float(x.item() if isinstance(x, torch.Tensor) else x)


def unsupported_optimizer(optimizer: torch.optim.Optimizer) -> str | None:
    """Why ``optimizer`` has no vectorised implementation (``None``: it has one)."""
    kind = _KINDS.get(type(optimizer))
    if kind is None:
        return f"optimizer {type(optimizer).__name__} has no vectorised implementation (SGD, Adam and AdamW have)"
    patched = vars(optimizer).get("step")
    if patched is not None and not (
        getattr(patched, "_wrapped_by_lr_sched", False)
        and getattr(patched, "__wrapped__", None) is type(optimizer).step
    ):
        return "its step() is replaced by other code, which must run"
    if (
        optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or _optimizer_module._global_optimizer_pre_hooks
        or _optimizer_module._global_optimizer_post_hooks
    ):
        return "the optimizer has step hooks, which must run"
    for group in optimizer.param_groups:
        if group.get("maximize") or group.get("differentiable"):
            return "maximize=True or differentiable=True is not vectorised"
        if kind == "adam" and group.get("amsgrad"):
            return "Adam(amsgrad=True) is not vectorised"
    return None


def _column(values: list[float], like: torch.Tensor) -> torch.Tensor:
    """``values`` as a tensor of ``like``'s dtype on its device; to a GPU through pinned memory, without waiting
    (a copy from ordinary memory waits for the device)."""
    column = torch.tensor(values, dtype=like.dtype)
    if like.device.type == "cuda":
        return column.pin_memory().to(like.device, non_blocking=True)
    return column.to(like.device)


def _addcdiv(weight: torch.Tensor, exp_avg: torch.Tensor, denom: torch.Tensor, step_size: list[float]) -> None:
    """Adam's ``weight -= step_size * exp_avg / denom``, each member's step size its own."""
    if all(v == step_size[0] for v in step_size):
        weight.addcdiv_(exp_avg, denom, value=-step_size[0])
    else:  # addcdiv's own arithmetic, value * t1 / t2 in the weights' dtype, with each member's value
        values = _column([-v for v in step_size], weight)
        weight.addcdiv_(exp_avg.mul(values.view(-1, *([1] * (weight.dim() - 1)))), denom)


class _Mixed(ValueError):
    """The members' hyperparameters differ in a way the stacked update does not cover."""


def _each(values: Sequence[Any], tensors: Sequence[torch.Tensor], op: Callable[..., Any]) -> None:
    """``op(value, *rows)``: once on the whole ``tensors`` when every member has the same value, else member
    by member on their rows.

    Row by row, each member's update is the very operation ``torch.optim`` makes on
    its tensor, with the same python scalar, so the results are bit-identical.
    """
    first = values[0]
    if all(v == first for v in values):
        op(first, *tensors)
    else:
        for k, value in enumerate(values):
            op(value, *(t[k] for t in tensors))


_PLAIN = frozenset({float, int, bool, type(None)})


def _plain(values: Sequence[Any]) -> bool:
    """Whether ``values`` (and the tuples among them) hold python numbers only, no tensors."""
    return all(type(v) in _PLAIN or (type(v) is tuple and _plain(v)) for v in values)


class _AdamHypers:
    """One group's Adam hyperparameters, member by member, as python floats, and what follows from them."""

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer], g: int) -> None:
        groups = [opt.param_groups[g] for opt in optimizers]
        self.lrs = [_value(pg["lr"]) for pg in groups]
        self.b1s = [_value(pg["betas"][0]) for pg in groups]
        self.b2s = [_value(pg["betas"][1]) for pg in groups]
        self.eps = [_value(pg.get("eps", 1e-8)) for pg in groups]
        wds = [_value(pg.get("weight_decay", 0.0)) for pg in groups]
        decoupled = [
            bool(pg.get("decoupled_weight_decay", isinstance(opt, torch.optim.AdamW)))
            for pg, opt in zip(groups, optimizers)
        ]
        self.coupled = [0.0 if d else w for w, d in zip(wds, decoupled)]  # added to the gradient
        self.decay = [1 - lr * w if d else 1.0 for lr, w, d in zip(self.lrs, wds, decoupled)]  # times the weight
        self.one_minus_b1 = [1 - b for b in self.b1s]
        # every member the same betas and eps, no weight decay: the update is whole-tensor but for the lrs
        self.uniform = (
            all(
                (b1, b2, e) == (self.b1s[0], self.b2s[0], self.eps[0])
                for b1, b2, e in zip(self.b1s, self.b2s, self.eps)
            )
            and all(w == 0 for w in self.coupled)
            and all(f == 1.0 for f in self.decay)
        )


def _adam_key(optimizers: Sequence[torch.optim.Optimizer], g: int) -> tuple[Any, ...]:
    """What :class:`_AdamHypers` is computed from (a scheduler changes it between steps)."""
    return tuple(
        (pg["lr"], pg["betas"], pg.get("eps"), pg.get("weight_decay"), pg.get("decoupled_weight_decay"))
        for pg in (opt.param_groups[g] for opt in optimizers)
    )


class StackedOptimizer:
    """Steps the flat groups of a stack with the hyperparameters of each member's optimizer."""

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer], groups: Sequence[FlatGroup]) -> None:
        self.optimizers = list(optimizers)
        self.groups = list(groups)
        self.kind = _KINDS[type(optimizers[0])]
        self.state: list[dict[str, torch.Tensor]] = []
        self.steps: list[list[int]] = []  # steps[g][k]: updates made (Adam's bias correction)
        self._started: list[list[bool]] = []  # SGD: member k's momentum buffer exists in group g
        self._host: tuple[list[list[int]], list[list[bool]]] = ([], [])  # before the last step(keep=...)
        self._hypers: dict[int, tuple[tuple[Any, ...] | None, _AdamHypers]] = {}  # g -> (read from, hypers)
        self._bind_state()

    # ------------------------------------------------------------------ state
    def _bind_state(self) -> None:
        """Flat state tensors filled from each member's ``torch.optim`` state, then bound as views."""
        for g, group in enumerate(self.groups):
            flat: dict[str, torch.Tensor] = {}
            keys = ("momentum_buffer",) if self.kind == "sgd" else ("exp_avg", "exp_avg_sq")
            steps = []
            for key in keys:
                flat[key] = torch.zeros_like(group.weight)
            step_counts = torch.zeros(group.weight.shape[0], len(group.names), dtype=torch.float32)
            present = []
            for k, optimizer in enumerate(self.optimizers):
                member = [optimizer.state.get(p, {}) for p in group.members[k]]
                present.append(all(key in s and s[key] is not None for s in member for key in keys))
                steps.append(int(_value(member[0].get("step", 0))) if member else 0)
                with torch.no_grad():
                    for i, s in enumerate(member):
                        for key in keys:
                            if s.get(key) is not None:
                                group.row_view(flat[key], k, i).copy_(s[key])
                        if "step" in s:
                            step_counts[k, i] = _value(s["step"])
            self.state.append({**flat, "step": step_counts})
            self.steps.append(steps)
            self._started.append(present)
            for k in range(len(self.optimizers)):
                if present[k] or self.kind == "adam":
                    self._expose(g, k)

    def _expose(self, g: int, k: int) -> None:
        """Member ``k``'s ``optimizer.state`` for group ``g`` as views of the flat state."""
        group, flat = self.groups[g], self.state[g]
        optimizer = self.optimizers[k]
        for i, p in enumerate(group.members[k]):
            if self.kind == "sgd":
                optimizer.state[p] = {"momentum_buffer": group.row_view(flat["momentum_buffer"], k, i)}
            else:
                optimizer.state[p] = {
                    "step": flat["step"][k, i],
                    "exp_avg": group.row_view(flat["exp_avg"], k, i),
                    "exp_avg_sq": group.row_view(flat["exp_avg_sq"], k, i),
                }

    def bound(self) -> bool:
        """Whether the members' optimizer states are still the views of this stack (no ``load_state_dict``)."""
        key = "momentum_buffer" if self.kind == "sgd" else "exp_avg"
        for g, group in enumerate(self.groups):
            pointer, stride = self.state[g][key].data_ptr(), self.state[g][key].stride(0)
            for k, optimizer in enumerate(self.optimizers):
                state = optimizer.state.get(group.members[k][0])
                if state is None:
                    if self.kind == "adam" or self._started[g][k]:
                        return False
                    continue
                view = state.get(key)
                if view is None or view.data_ptr() != pointer + k * stride * view.element_size():
                    return False
        return True

    def hyper(self, g: int, name: str, default: float = 0.0) -> list[float]:
        return [_value(opt.param_groups[g].get(name, default)) for opt in self.optimizers]

    # ------------------------------------------------------------------ update
    def step(self, rows: Sequence[int] | None = None, *, keep: torch.Tensor | None = None) -> None:
        """One update of every member (``rows``: only these members; the others are left as they are).

        ``keep``: a ``[K]`` boolean tensor on the members' device, known only there (a loss not yet read
        back): the rows it marks ``False`` get their weights and state back on the device, with no
        host synchronisation; :meth:`revert` then puts back what the host counted for them.
        """
        with torch.no_grad():  # a block, not the decorator: that one builds a new context at every call
            saved = None if rows is None else self._save_except(rows)
            before = None if keep is None else self._snapshot()
            for g, group in enumerate(self.groups):
                if self.kind == "sgd":
                    self._sgd(g, group)
                else:
                    self._adam(g, group)
            if saved is not None:
                self._restore(saved)
            if before is not None and keep is not None:
                tensors, self._host = before
                for tensor, old in tensors:
                    torch.where(keep.view(-1, *([1] * (tensor.dim() - 1))), tensor, old, out=tensor)

    def _snapshot(self) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], tuple[list[list[int]], list[list[bool]]]]:
        """Copies of the weights and state, and the host's step counts and started flags, before an update."""
        tensors = [
            (t, t.clone()) for g, group in enumerate(self.groups) for t in (group.weight, *self.state[g].values())
        ]
        return tensors, ([list(s) for s in self.steps], [list(s) for s in self._started])

    def revert(self, rows: Sequence[int]) -> None:
        """After ``step(keep=...)``: the host's view of members ``rows`` as it was before (their tensors
        were already put back by ``keep``)."""
        steps, started = self._host
        for g, group in enumerate(self.groups):
            for k in rows:
                self.steps[g][k] = steps[g][k]
                if self._started[g][k] and not started[g][k]:  # SGD's first step: no momentum buffer yet
                    self._started[g][k] = False
                    for p in group.members[k]:
                        self.optimizers[k].state.pop(p, None)

    def _sgd(self, g: int, group: FlatGroup) -> None:
        weight = group.weight
        grad = group.grad
        wds = self.hyper(g, "weight_decay")
        if any(w != 0 for w in wds):
            grad = grad.clone()
            _each(wds, (grad, weight), lambda w, gr, wt: gr.add_(wt, alpha=w))
        momenta = self.hyper(g, "momentum")
        if any(m != 0 for m in momenta):
            if not all(m != 0 for m in momenta):
                raise _Mixed("some members use momentum and some do not")
            buf = self.state[g]["momentum_buffer"]
            started = self._started[g]
            dampening = self.hyper(g, "dampening")
            if all(started):
                _each(
                    list(zip(momenta, dampening)),
                    (buf, grad),
                    lambda md, b, gr: b.mul_(md[0]).add_(gr, alpha=1 - md[1]),
                )
            else:
                for k, m in enumerate(momenta):
                    if started[k]:
                        buf[k].mul_(m).add_(grad[k], alpha=1 - dampening[k])
                    else:  # torch.optim: the first momentum buffer is the gradient itself
                        buf[k].copy_(grad[k])
                        started[k] = True
                        self._expose(g, k)
            nesterov = [bool(n) for n in self.hyper(g, "nesterov")]
            if any(nesterov):
                direction = buf.clone()
                _each(
                    list(zip(nesterov, momenta)),
                    (direction, grad, buf),
                    lambda nm, d, gr, b: d.copy_(gr.add(b, alpha=nm[1])) if nm[0] else None,
                )
            else:
                direction = buf
        else:
            direction = grad
        _each(self.hyper(g, "lr"), (weight, direction), lambda lr, wt, d: wt.add_(d, alpha=-lr))

    def _adam_hypers(self, g: int) -> _AdamHypers:
        """Group ``g``'s hyperparameters, read again only when a member's changed (python numbers are compared;
        a tensor hyperparameter is read at every step)."""
        key = _adam_key(self.optimizers, g)
        cached = self._hypers.get(g)
        if cached is not None and cached[0] is not None and cached[0] == key:
            return cached[1]
        hypers = _AdamHypers(self.optimizers, g)
        self._hypers[g] = (key if _plain(key) else None, hypers)
        return hypers

    def _adam(self, g: int, group: FlatGroup) -> None:
        weight, grad, state = group.weight, group.grad, self.state[g]
        h = self._adam_hypers(g)
        steps = self.steps[g]
        for k in range(len(steps)):
            steps[k] += 1
        state["step"].add_(1)
        if h.uniform and steps.count(steps[0]) == len(steps):
            self._adam_uniform(weight, grad, state, h, float(steps[0]))
            return
        if any(w != 0 for w in h.coupled):
            grad = grad.clone()
            _each(h.coupled, (grad, weight), lambda w, gr, wt: gr.add_(wt, alpha=w) if w != 0 else None)
        if any(f != 1.0 for f in h.decay):
            _each(h.decay, (weight,), lambda f, wt: wt.mul_(f) if f != 1.0 else None)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        _each(h.one_minus_b1, (exp_avg, grad), lambda w, m, gr: m.lerp_(gr, w))
        _each(h.b2s, (exp_avg_sq, grad), lambda b2, v, gr: v.mul_(b2).addcmul_(gr, gr, value=1 - b2))
        # as torch.optim computes them: python floats per member (its step is a float)
        step_size = [lr / (1 - b1 ** float(t)) for lr, b1, t in zip(h.lrs, h.b1s, steps)]
        bc2_sqrt = [math.sqrt(1 - b2 ** float(t)) for b2, t in zip(h.b2s, steps)]
        denom = exp_avg_sq.sqrt()
        _each(list(zip(bc2_sqrt, h.eps)), (denom,), lambda be, d: d.div_(be[0]).add_(be[1]))
        _addcdiv(weight, exp_avg, denom, step_size)

    @staticmethod
    def _adam_uniform(
        weight: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor], h: _AdamHypers, t: float
    ) -> None:
        """:meth:`_adam` where the members differ in their learning rates at most and have made as many steps:
        the same operations on the whole tensors, without the per-member bookkeeping."""
        b1, b2 = h.b1s[0], h.b2s[0]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, h.one_minus_b1[0])
        exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        bias_correction1 = 1 - b1**t
        denom = exp_avg_sq.sqrt().div_(math.sqrt(1 - b2**t)).add_(h.eps[0])
        _addcdiv(weight, exp_avg, denom, [lr / bias_correction1 for lr in h.lrs])

    # ------------------------------------------------------------------ members left out of one step
    def _save_except(
        self, rows: Sequence[int]
    ) -> tuple[list[tuple[torch.Tensor, int, torch.Tensor]], list[int], list[list[int]]]:
        """Copies of the rows not in ``rows`` (weights and state), which members they are, and the step counts."""
        left_out = [k for k in range(len(self.optimizers)) if k not in set(rows)]
        saved = [
            (t, k, t[k].clone())
            for g, group in enumerate(self.groups)
            for t in (group.weight, *self.state[g].values())
            for k in left_out
        ]
        return saved, left_out, [list(s) for s in self.steps]

    def _restore(self, saved: tuple[list[tuple[torch.Tensor, int, torch.Tensor]], list[int], list[list[int]]]) -> None:
        tensors, left_out, steps = saved
        for tensor, k, value in tensors:
            tensor[k].copy_(value)
        for g, counts in enumerate(steps):
            for k in left_out:
                self.steps[g][k] = counts[k]
