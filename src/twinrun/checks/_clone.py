"""Copies of a model with its optimizer and scheduler, so checks never touch the originals.

``copy.deepcopy`` of a model and, separately, of its optimizer would give an
optimizer whose parameters are *other* tensors than the copied model's. Here the
copies are made with one ``memo`` that maps every original parameter to its copy,
so the copied optimizer (its param groups and its per-parameter state) and the
copied scheduler point at the copied model and optimizer.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch
from torch import nn

from twinrun.engine import CandidateState
from twinrun.errors import BuildError

__all__ = ["clone_state", "copy_optimizer_onto", "copy_scheduler_onto"]


def _param_memo(source: nn.Module, target: nn.Module) -> dict[int, Any]:
    src, dst = list(source.parameters()), list(target.parameters())
    if len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src, dst)):
        raise BuildError(
            f"cannot map the parameters of a {type(source).__name__} onto a {type(target).__name__}",
            fix="pass the model the optimizer was built on",
        )
    return {id(a): b for a, b in zip(src, dst)}


def copy_optimizer_onto(
    optimizer: torch.optim.Optimizer, source: nn.Module, target: nn.Module
) -> tuple[torch.optim.Optimizer, dict[int, Any]]:
    """A copy of ``optimizer`` (built on ``source``) driving ``target``, a copy of ``source``.

    Hyper-parameters, param groups and per-parameter state (momenta...) are copied.
    Returns the copy and the memo used (pass it on to :func:`copy_scheduler_onto`).
    """
    memo = _param_memo(source, target)
    owned = {id(p) for p in source.parameters()}
    strangers = [p for g in optimizer.param_groups for p in g["params"] if id(p) not in owned]
    if strangers:
        raise BuildError(
            f"the optimizer holds {len(strangers)} tensor(s) that are not parameters of the model "
            f"(shapes {[tuple(p.shape) for p in strangers[:3]]})",
            fix="pass the model and the optimizer built on its parameters",
        )
    clone = copy.deepcopy(optimizer, memo)
    memo[id(optimizer)] = clone
    return clone, memo


def copy_scheduler_onto(scheduler: Any, memo: dict[int, Any]) -> Any:
    """A copy of ``scheduler`` stepping the optimizer copy recorded in ``memo``."""
    return copy.deepcopy(scheduler, memo)


def clone_state(state: CandidateState) -> CandidateState:
    """A candidate with copies of the model, optimizer and scheduler of ``state``."""
    model = copy.deepcopy(state.model)
    optimizer, memo = copy_optimizer_onto(state.optimizer, state.model, model)
    scheduler = None if state.scheduler is None else copy_scheduler_onto(state.scheduler, memo)
    return dataclasses.replace(
        state, model=model, optimizer=optimizer, scheduler=scheduler, diverged_at=None, diverged_value=None
    )


class SteppedEvery:
    """A scheduler stepped once every ``every`` calls of :meth:`step` (one epoch's updates: a
    framework's ``interval="epoch"``); everything else is the scheduler's own."""

    def __init__(self, scheduler: Any, every: int) -> None:
        self.scheduler = scheduler
        self.every = every
        self.calls = 0

    def step(self) -> None:
        self.calls += 1
        if self.calls % self.every == 0:
            self.scheduler.step()

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("scheduler")
        if inner is None or name.startswith("__"):  # copying: the object is not built yet
            raise AttributeError(name)
        return getattr(inner, name)

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict(), "calls": self.calls, "every": self.every}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state["scheduler"])
        self.calls = int(state["calls"])
