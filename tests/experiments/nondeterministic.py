"""A tiny experiment with planted nondeterminism: its augmentation adds noise that depends on the process id.

Like a GPU's atomics, it differs from run to run although the seed, the code and the
environment are the same (``twinrun repro --times N`` measures its spread).
"""

from __future__ import annotations

import os

import torch
from torch import nn

import twinrun


def blobs(n_train: int = 128, n_val: int = 64):
    g = torch.Generator().manual_seed(7)
    centers = torch.randn(3, 6, generator=g) * 1.5

    def sample(n: int):
        y = torch.randint(0, 3, (n,), generator=g)
        return centers[y] + torch.randn(n, 6, generator=g), y

    return sample(n_train), sample(n_val)


class Net(nn.Module):
    def __init__(self, width: int = 12) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, width), nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def pid_noise(inputs, targets, *, generator, planted: bool = True):
    if not planted:
        return inputs, targets
    scale = 0.05 * ((os.getpid() % 97) + 1) / 97
    return inputs + scale * torch.randn(inputs.shape, generator=generator), targets


experiment = twinrun.Experiment(
    name="nondeterministic",
    data=blobs,
    model=Net,
    optimizer=twinrun.factory(torch.optim.SGD, lr=0.1),
    loss=nn.CrossEntropyLoss,
    augment=twinrun.factory(pid_noise),
    metrics={"accuracy": twinrun.accuracy},
    candidates={"base": {}},
    steps=8,
    batch_size=32,
    eval_every=8,
)
