"""One candidate's optimizer step as a few operations over flat tensors (the stacked update with K = 1).

``torch.optim``'s default CPU implementation loops over parameters in Python:
for a small model its ``step()`` costs as much as the forward and backward
together. :class:`FusedUpdate` keeps the candidate's parameters, gradients and
optimizer state as views of one flat tensor per parameter group (see
``_stack``), so the same update is a handful of operations whatever the number
of parameters, bit-identical to ``torch.optim`` (the elementwise operations and
python scalars are the same). The candidate's ``nn.Parameter`` objects, its
optimizer and its ``state_dict`` stay what they were; only storage moves.
"""

from __future__ import annotations

import torch
from torch import nn

from twinrun.engine._build import CandidateState
from twinrun.engine._stack import ModelStack, stack_models
from twinrun.engine._vector_optim import StackedOptimizer

__all__ = ["FusedUpdate", "parameter_layout"]


def parameter_layout(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[list[str]]:
    """The names of the parameters of each optimizer group."""
    by_id = {id(p): n for n, p in model.named_parameters()}
    return [[by_id[id(p)] for p in g["params"]] for g in optimizer.param_groups]


class FusedUpdate:
    """``zero_grad()`` and ``step()`` of one candidate over flat storage (see the module docstring)."""

    def __init__(self, state: CandidateState) -> None:
        self.model = state.model
        self.optimizer = state.optimizer
        self.stack: ModelStack | None = None
        self.stacked: StackedOptimizer | None = None
        self._first: tuple[nn.Parameter, int] | None = None
        self._called = False  # the optimizer's _opt_called before the last step

    def _bind(self) -> None:
        self.stack = stack_models([self.model], parameter_layout(self.model, self.optimizer), buffers=False)
        for group in self.stack.groups:
            for i, p in enumerate(group.members[0]):
                p.grad = group.row_view(group.grad, 0, i)  # backward accumulates into the flat gradient
        self.stacked = StackedOptimizer([self.optimizer], self.stack.groups)
        first = self.stack.groups[0].members[0][0]
        assert first.grad is not None
        self._first = (first, first.grad.data_ptr())

    def _bound(self) -> bool:
        if self.stack is None or self.stacked is None or self._first is None:
            return False
        p, pointer = self._first
        return p.grad is not None and p.grad.data_ptr() == pointer and self.stack.bound() and self.stacked.bound()

    def zero_grad(self) -> None:
        if not self._bound():  # first step, or someone replaced a tensor (load_state_dict, set_to_none)
            self._bind()
        assert self.stack is not None
        self.stack.zero_grad()

    def step(self, keep: torch.Tensor | None = None) -> None:
        """The update; ``keep``: a boolean on the device, ``False`` to undo it there (see :meth:`revert`)."""
        assert self.stacked is not None
        self._called = getattr(self.optimizer, "_opt_called", False)
        self.stacked.step(keep=None if keep is None else keep.reshape(1))
        self.optimizer._opt_called = True  # type: ignore[attr-defined]  # as torch.optim's step() marks it

    def revert(self) -> None:
        """After ``step(keep)`` with ``keep`` false: the candidate as if the step had been skipped before its
        backward (the update was undone on the device; the host's counts and the gradients follow)."""
        assert self.stacked is not None and self.stack is not None
        self.stacked.revert([0])
        self.stack.zero_grad()
        self.optimizer._opt_called = self._called  # type: ignore[attr-defined]
