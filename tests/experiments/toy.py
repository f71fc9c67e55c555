"""A tiny experiment for tests: Gaussian blobs, small MLPs, a few dozen steps."""

from __future__ import annotations

import torch
from torch import nn

import twinrun


def blobs(n_train: int = 256, n_val: int = 128, features: int = 8, classes: int = 3, spread: float = 1.5):
    g = torch.Generator().manual_seed(1234)  # data is fixed: its own generator, never a global one
    centers = torch.randn(classes, features, generator=g) * spread

    def sample(n: int):
        y = torch.randint(0, classes, (n,), generator=g)
        x = centers[y] + torch.randn(n, features, generator=g)
        return x, y

    return sample(n_train), sample(n_val)


class MLP(nn.Module):
    def __init__(self, width: int = 16, dropout: float = 0.0, features: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(features, width)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(torch.relu(self.fc1(x))))


class DeepMLP(MLP):
    """Same names as MLP for fc1/fc2 plus an extra layer: partly shared init."""

    def __init__(self, width: int = 16, features: int = 8, classes: int = 3) -> None:
        super().__init__(width, 0.0, features, classes)
        self.mid = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.mid(torch.relu(self.fc1(x)))))


def jitter(inputs, targets, *, generator, scale: float = 0.1):
    return inputs + scale * torch.randn(inputs.shape, generator=generator), targets


experiment = twinrun.Experiment(
    name="toy",
    data=blobs,
    model=twinrun.factory(MLP, width=16),
    optimizer=twinrun.factory(torch.optim.SGD, lr=0.1, momentum=0.9),
    loss=nn.CrossEntropyLoss,
    augment=twinrun.factory(jitter, scale=0.1),
    metrics={"accuracy": twinrun.accuracy},
    candidates={
        "small": {},
        "wide": {"model.width": 32},
        "dropout": {"model.dropout": 0.5},
        "deep": {"model": DeepMLP},
        "fast": {"optimizer.lr": 0.3},
    },
    steps=24,
    batch_size=16,
    eval_every=8,
    seed=3,
)
