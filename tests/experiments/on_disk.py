"""An experiment whose data lives in a file on disk, with an optional test split (tests of the data facts).

``TWINRUN_TEST_DATA`` names an ``.npz`` with ``x``/``y`` arrays; the first 100 rows
train, the next 60 validate, the rest (when ``test=True``) test. The model counts
the forward passes it makes on test inputs (their first feature is shifted by 1000).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

import twinrun

TEST_SHIFT = 1000.0
TEST_FORWARDS = [0]


def from_disk(test: bool = False, test_features: int = 0):
    arrays = np.load(os.environ["TWINRUN_TEST_DATA"])
    x, y = torch.as_tensor(arrays["x"], dtype=torch.float32), torch.as_tensor(arrays["y"], dtype=torch.int64)
    splits = [(x[:100], y[:100]), (x[100:160], y[100:160])]
    if test:
        xt = x[160:].clone()
        xt[:, 0] += TEST_SHIFT
        if test_features:
            xt = xt[:, :test_features]
        splits.append((xt, y[160:]))
    return tuple(splits)


class Counting(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x[:, 0] > TEST_SHIFT / 2).all()):
            TEST_FORWARDS[0] += 1
            x = x.clone()
            x[:, 0] -= TEST_SHIFT
        return self.net(x)


experiment = twinrun.Experiment(
    name="on_disk",
    data=from_disk,
    model=twinrun.factory(Counting, width=16),
    optimizer=twinrun.factory(torch.optim.SGD, lr=0.1),
    loss=nn.CrossEntropyLoss,
    metrics={"accuracy": twinrun.accuracy},
    candidates={"small": {}, "wide": {"model.width": 32}},
    steps=6,
    batch_size=20,
    eval_every=3,
    eval_batch_size=32,
)
