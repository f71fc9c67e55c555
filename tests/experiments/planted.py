"""Experiments with planted nondeterminism: what `twinrun repro` must find, and where.

Each bug is a classic: it survives fixed seeds, because it does not come from
a random generator.

* ``augment_bug``: the augmentation applies its operations in the iteration
  order of a ``set`` of strings, which follows ``PYTHONHASHSEED``: the batch of
  step 1 differs between hash seeds.
* ``optimizer_bug``: at one step (6) the optimizer nudges parameters by an
  amount that depends on their position in a ``set`` of names: only the
  weights after update 6 differ (the loss of step 6 is computed before the
  update), visible in the losses from step 7 on.
* ``threads_bug``: a normalisation that averages over batch x 4,096 values:
  torch splits a reduction that large across threads, so the sum is rounded
  differently for 1 and 2 threads.
"""

from __future__ import annotations

import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from toy import MLP, blobs

import twinrun

OPS = ("shift", "scale")


def set_order_augment(inputs, targets, *, generator, noise: float = 0.05):
    x = inputs
    for op in set(OPS):  # the planted bug: a set's order is the hash seed's
        x = x + 0.5 if op == "shift" else x * 1.5
    return x + noise * torch.randn(x.shape, generator=generator), targets


class _Nudged(torch.optim.SGD):
    def __init__(self, named: dict[str, nn.Parameter], lr: float, at_step: int) -> None:
        super().__init__(list(named.values()), lr=lr)
        self._named = named
        self._at = at_step
        self._updates = 0

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        self._updates += 1
        if self._updates == self._at:
            for position, name in enumerate(set(self._named)):  # the planted bug
                self._named[name].add_(1e-3 * position)
        return loss


def nudged_sgd(model: nn.Module, lr: float = 0.1, at_step: int = 6) -> torch.optim.Optimizer:
    return _Nudged(dict(model.named_parameters()), lr, at_step)


class WideNorm(nn.Module):
    """A wide hidden layer normalised by its root mean square over the whole batch."""

    def __init__(self, width: int = 4096, features: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(features, width)
        self.fc2 = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        return self.fc2(h / h.pow(2).mean().sqrt())


_common = {
    "data": blobs,
    "model": twinrun.factory(MLP, width=16),
    "loss": nn.CrossEntropyLoss,
    "candidates": {"small": {}},
    "steps": 12,
    "batch_size": 16,
    "eval_every": 12,
    "eval_batch_size": 128,
    "seed": 5,
}

augment_bug = twinrun.Experiment(
    name="augment_bug", optimizer=twinrun.factory(torch.optim.SGD, lr=0.1),
    augment=set_order_augment, **_common,
)
optimizer_bug = twinrun.Experiment(
    name="optimizer_bug", optimizer=twinrun.factory(nudged_sgd, lr=0.1, at_step=6), **_common,
)
threads_bug = twinrun.Experiment(
    name="threads_bug", optimizer=twinrun.factory(torch.optim.SGD, lr=0.1),
    **{**_common, "model": WideNorm, "steps": 4, "eval_every": 4},
)
