"""Stack the parameters and buffers of K same-architecture models into shared storage.

Each optimizer parameter group becomes one flat ``[K, P]`` tensor (row ``k``:
member ``k``'s parameters of that group, concatenated). The members keep their
own ``nn.Parameter`` objects (optimizers, hooks and user code that hold them
stay valid); only each parameter's ``.data`` becomes a view of its row, so an
update of the flat tensor *is* an update of every member, with no copies, and
evaluation, checkpoints and the ledger read the members as usual.

For the batched forward, each parameter also has a ``[K, *shape]`` view that
autograd treats as a leaf, whose ``.grad`` is preset to a view of a flat
gradient tensor: backward accumulates every member's gradient straight into
``grad[g]`` (one zero-fill per step, no gathering).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["FlatGroup", "ModelStack", "stack_models"]


@dataclass
class FlatGroup:
    """One optimizer parameter group of every member, in one ``[K, P]`` tensor."""

    names: list[str]
    shapes: list[torch.Size]
    weight: torch.Tensor  # [K, P], the truth: members' parameters are views of its rows
    grad: torch.Tensor  # [K, P]
    leaves: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> [K, *shape] leaf view
    members: list[list[nn.Parameter]] = field(default_factory=list)  # members[k][i]

    def __post_init__(self) -> None:
        ends = list(itertools.accumulate(shape.numel() for shape in self.shapes))
        self._slices = list(zip([0, *ends[:-1]], ends))

    def slices(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of each parameter in a row."""
        return self._slices

    def row_view(self, flat: torch.Tensor, k: int, i: int) -> torch.Tensor:
        """Member ``k``'s parameter ``i`` as a view of ``flat`` (an ``[K, P]`` tensor of this layout)."""
        start, stop = self._slices[i]
        return flat[k, start:stop].view(self.shapes[i])


@dataclass
class ModelStack:
    """The stacked state of K models: flat parameter groups and stacked buffers."""

    groups: list[FlatGroup]
    buffers: dict[str, torch.Tensor]  # name -> [K, *shape]
    first_pointers: list[int]  # data_ptr of each member's first parameter: still bound?
    first_params: list[nn.Parameter] = field(default_factory=list)

    def params(self) -> dict[str, torch.Tensor]:
        return {n: leaf for g in self.groups for n, leaf in g.leaves.items()}

    def bound(self) -> bool:
        """Whether the members' parameters are still views of this stack (nobody replaced their ``.data``)."""
        return all(p.data_ptr() == pointer for p, pointer in zip(self.first_params, self.first_pointers))

    def zero_grad(self) -> None:
        for g in self.groups:
            g.grad.zero_()


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, leaf = name.rpartition(".")
    return (model.get_submodule(path) if path else model), leaf


def stack_models(models: Sequence[nn.Module], groups: Sequence[Sequence[str]], *, buffers: bool = True) -> ModelStack:
    """Move the parameters (by optimizer group, ``groups[g]`` = parameter names) and buffers of ``models``
    into stacked storage, binding every member's tensors to views of it (``buffers=False``: parameters only).

    The models must have the same parameter and buffer names, shapes and dtypes
    (see ``_vector_group``); each group's parameters share one dtype and device.
    """
    k = len(models)
    named = [dict(m.named_parameters()) for m in models]
    flat_groups: list[FlatGroup] = []
    with torch.no_grad():
        for names in groups:
            shapes = [named[0][n].shape for n in names]
            weight = torch.stack([torch.cat([named[j][n].detach().reshape(-1) for n in names]) for j in range(k)])
            group = FlatGroup(list(names), shapes, weight, torch.zeros_like(weight))
            for i, name in enumerate(names):
                start, stop = group.slices()[i]
                leaf = weight[:, start:stop].view(k, *shapes[i]).requires_grad_()
                leaf.grad = group.grad[:, start:stop].view(k, *shapes[i])
                group.leaves[name] = leaf
            group.members = [[named[j][n] for n in names] for j in range(k)]
            for j in range(k):
                for i, p in enumerate(group.members[j]):
                    p.data = group.row_view(weight, j, i)
                    p.grad = None
            flat_groups.append(group)
        stacked_buffers: dict[str, torch.Tensor] = {}
        for name, _ in models[0].named_buffers() if buffers else ():
            values = [dict(m.named_buffers())[name] for m in models]
            stacked = torch.stack([v.detach() for v in values])
            stacked_buffers[name] = stacked
            for j, model in enumerate(models):
                owner, attr = _owner(model, name)
                owner._buffers[attr] = stacked[j]
    firsts = [next(m.parameters()) for m in models]
    return ModelStack(flat_groups, stacked_buffers, [p.data_ptr() for p in firsts], firsts)
