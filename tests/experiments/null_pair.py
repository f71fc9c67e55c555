"""A null pair for the verdict's truth test: the toy MLP, and the same MLP under other layer names.

``b`` differs from ``a`` only by its own draw of initial weights: its layers are named
differently, so nothing is shared, and it draws once more from the init stream first.
``narrow`` against ``wide`` is a real difference.
"""

from __future__ import annotations

import os
import sys

import torch
from torch import nn

import twinrun

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from toy import MLP, blobs  # noqa: E402


class Renamed(nn.Module):
    """The toy MLP with other layer names, and another draw of its initial weights."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        torch.rand(7)  # a different draw from the same init stream: same distribution, other values
        self.first = nn.Linear(8, width)
        self.last = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(torch.relu(self.first(x)))


experiment = twinrun.Experiment(
    name="null-pair",
    data=blobs,
    model=twinrun.factory(MLP, width=16),
    optimizer=twinrun.factory(torch.optim.SGD, lr=0.1, momentum=0.9),
    loss=nn.CrossEntropyLoss,
    candidates={"a": {}, "b": {"model": Renamed}, "narrow": {"model.width": 2}, "wide": {"model.width": 32}},
    steps=12,
)
