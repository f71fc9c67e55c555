"""Which candidates can be stepped together: the same architecture, an optimizer with a vectorised update.

Two candidates are one *architecture* when their models have the same module
classes at the same names, the same plain attributes (a dropout rate, an
epsilon: the forward's configuration), the same parameter and buffer names,
shapes and dtypes, and their optimizers are the same class with parameters in
the same groups. Weights and hyperparameters (lr, weight decay, betas,
momentum, schedules) may differ: those are what a twin compares.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from twinrun.engine._build import CandidateState
from twinrun.engine._vector_optim import unsupported_optimizer

__all__ = ["GroupPlan", "architecture_key", "plan_groups"]

_PLAIN = (int, float, str, bool, type(None), torch.dtype, torch.device, torch.Size)
_HOOKS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


def _plain(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _plain(v)) for k, v in value.items()))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a model's config object
        return type(value), tuple((f.name, _plain(getattr(value, f.name))) for f in dataclasses.fields(value))
    if isinstance(value, (argparse.Namespace, types.SimpleNamespace)):  # a repository's ``args``
        return type(value), _plain(vars(value))
    to_dict = getattr(value, "to_dict", None)  # a Hugging Face PretrainedConfig, and config classes like it
    if callable(to_dict) and not isinstance(value, (nn.Module, torch.Tensor, type)):
        try:
            fields = to_dict()
        except Exception:  # noqa: BLE001 - not a config after all: compared by identity below
            fields = None
        if isinstance(fields, dict):
            return type(value), _plain(fields)
    return ("object", id(value))  # the same object (a function, a shared table): same forward


def _module_config(module: nn.Module) -> tuple[Any, ...]:
    attrs = tuple(sorted((k, _plain(v)) for k, v in vars(module).items() if not k.startswith("_")))
    hooks = tuple(len(getattr(module, h, {}) or {}) for h in _HOOKS)
    kind: Any = type(module)
    if parametrize.is_parametrized(module):  # weight_norm & co. make a class per module: the one it wraps
        kind = ("parametrized", kind.__bases__)
    return kind, attrs, hooks


def architecture_key(state: CandidateState) -> tuple[Any, ...] | str:
    """A hashable description of what must match to vectorise; a string says why this candidate cannot be."""
    model, optimizer = state.model, state.optimizer
    why = unsupported_optimizer(optimizer)
    if why:
        return why
    params = list(model.named_parameters())
    if not params:
        return "the model has no parameters"
    by_id = {id(p): name for name, p in params}
    layout = []
    seen: set[str] = set()
    for group in optimizer.param_groups:
        names = []
        for p in group["params"]:
            name = by_id.get(id(p))
            if name is None:
                return "its optimizer holds tensors that are not parameters of the model"
            names.append(name)
        if len({(p.dtype, p.device) for p in group["params"]}) > 1:
            return "an optimizer group mixes dtypes or devices"
        layout.append(tuple(names))
        seen.update(names)
    missing = [name for name, p in params if name not in seen]
    if missing:
        frozen = [n for n in missing if not dict(params)[n].requires_grad]
        return (
            f"parameters {frozen[:3]} are frozen (requires_grad=False)"
            if frozen
            else f"parameters {missing[:3]} are not in the optimizer"
        )
    if any(p.is_sparse or not p.is_contiguous() for _, p in params):
        return "a parameter is sparse or not contiguous"
    if any(isinstance(m, nn.RNNBase) for m in model.modules()):
        return "recurrent layers (nn.LSTM, nn.GRU, nn.RNN) manage their weights' storage themselves"
    modules = tuple((name, _module_config(m)) for name, m in model.named_modules())
    tensors = tuple((n, tuple(p.shape), p.dtype, str(p.device)) for n, p in params)
    buffers = tuple((n, tuple(b.shape), b.dtype, str(b.device)) for n, b in model.named_buffers())
    momentum = tuple(bool(g.get("momentum", 0)) for g in optimizer.param_groups)  # SGD: a buffer or none
    return type(optimizer), tuple(layout), momentum, modules, tensors, buffers


@dataclass
class GroupPlan:
    """How one step's candidates are split: vectorised groups, and the rest (one at a time) with reasons."""

    groups: list[list[CandidateState]] = field(default_factory=list)
    sequential: list[CandidateState] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # candidate -> why it runs alone


def min_group(device: torch.device) -> int:
    """The smallest group ``auto`` batches: 2 on a GPU; 4 on the CPU, where ``vmap``'s batched kernels
    beat one-at-a-time steps (with the fused update) only from about 4 small models (BENCHMARKS.md)."""
    return 2 if device.type == "cuda" else 4


def plan_groups(
    states: Sequence[CandidateState],
    *,
    mode: str,
    chunk: int | None = None,
    apart: Callable[[CandidateState], Any] | None = None,
) -> GroupPlan:
    """Split ``states`` into same-architecture groups (``mode``: ``auto``, ``vectorised``, ``sequential``).

    ``auto`` vectorises groups of :func:`min_group` or more; ``vectorised`` any group, one included;
    ``chunk`` caps a group's size (the memory budget), splitting larger ones; ``apart(state)``
    keeps states with different values in different groups.
    """
    plan = GroupPlan()
    if mode == "sequential":
        plan.sequential = list(states)
        plan.reasons = {s.name: "executor='sequential'" for s in states}
        return plan
    keyed: dict[Any, list[CandidateState]] = {}
    for state in states:
        key = architecture_key(state)
        if isinstance(key, str):
            plan.sequential.append(state)
            plan.reasons[state.name] = key
        else:
            # batched members stack their batches: one batch size per group
            keyed.setdefault((key, state.spec.batch_size, apart(state) if apart else None), []).append(state)
    for members in keyed.values():
        if len(members) == 1 and mode == "auto":
            plan.sequential.append(members[0])
            plan.reasons[members[0].name] = "no other candidate has its architecture and optimizer"
            continue
        smallest = min_group(next(members[0].model.parameters()).device)
        if len(members) < smallest and mode == "auto":
            plan.sequential += members
            for m in members:
                plan.reasons[m.name] = (
                    f"a group of {len(members)} same-architecture candidates: batching pays "
                    f"from {smallest} on this device (executor='vectorised' batches it anyway)"
                )
            continue
        size = max(1, chunk or len(members))
        plan.groups += [members[i : i + size] for i in range(0, len(members), size)]
    return plan
