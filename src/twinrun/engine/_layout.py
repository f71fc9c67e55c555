"""Sequence-first models: the ``batch_dim`` setting.

twinrun collates examples along dimension 0, as ``DataLoader`` does. A model
written for ``(time, batch, ...)`` inputs (PyTorch's word-language-model
example, an ``nn.LSTM`` without ``batch_first``) declares ``batch_dim=1``; its
model then gets a forward pre-hook that moves dimension 0 of every tensor
argument to ``batch_dim``, and a forward hook that moves the batch back to
dimension 0 of every output that has it. So the model sees its own layout,
and everything else (the loss, per-example losses, metrics, ensembles, the
checks) sees batch-first tensors, as it does for any other model. An output
flattened over ``(time, batch)`` (``decoded.view(-1, ntoken)``) is unflattened
first. The hooks change neither parameters nor ``state_dict``.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn
from torch.utils._pytree import tree_map

__all__ = ["SequenceFirst", "install_layout"]


class SequenceFirst:
    """The pair of hooks for one model: inputs to ``batch_dim``, outputs back to dimension 0."""

    def __init__(self, batch_dim: int) -> None:
        self.batch_dim = batch_dim
        self._shapes: list[tuple[int, ...]] = []  # the leading (..., batch) sizes of the call in progress

    def before(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        d = self.batch_dim
        lead: tuple[int, ...] | None = None

        def move(value: Any) -> Any:
            nonlocal lead
            if isinstance(value, torch.Tensor) and value.ndim > d:
                moved = value.movedim(0, d)
                if lead is None:
                    lead = tuple(moved.shape[: d + 1])
                return moved
            return value

        moved = tree_map(move, args)
        self._shapes.append(lead or ())
        return cast("tuple[Any, ...]", moved)

    def after(self, module: nn.Module, args: Any, outputs: Any) -> Any:
        lead = self._shapes.pop() if self._shapes else ()
        if not lead:
            return outputs
        d, batch, flat = self.batch_dim, lead[-1], int(torch.Size(lead).numel())

        def back(value: Any) -> Any:
            if not isinstance(value, torch.Tensor) or value.ndim == 0:
                return value
            if value.ndim > d and value.shape[d] == batch and tuple(value.shape[:d]) == lead[:-1]:
                return value.movedim(d, 0)
            if value.shape[0] == flat and flat != batch:
                return value.unflatten(0, lead).movedim(d, 0)
            if value.ndim > d and value.shape[d] == batch:  # a hidden state: (layers, batch, hidden)
                return value.movedim(d, 0)
            return value

        return tree_map(back, outputs)


def install_layout(model: nn.Module, batch_dim: int) -> nn.Module:
    """Give ``model`` the hooks of :class:`SequenceFirst` (nothing for ``batch_dim=0``); returns ``model``."""
    if batch_dim:
        layout = SequenceFirst(batch_dim)
        model.register_forward_pre_hook(layout.before)
        model.register_forward_hook(layout.after)
        model._twinrun_batch_dim = batch_dim  # type: ignore[assignment]
    return model


def model_batch_dim(model: nn.Module) -> int:
    """The ``batch_dim`` a model was given by :func:`install_layout` (0: batch-first)."""
    return int(getattr(model, "_twinrun_batch_dim", 0))
