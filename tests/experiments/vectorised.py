"""Experiments for the vectorised executor: same-architecture candidates with their own hyperparameters."""

from __future__ import annotations

import torch
from torch import nn

import twinrun


def data(n_train: int = 512, n_val: int = 128, features: int = 16, classes: int = 4):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(features, classes, generator=g)
    x = torch.randn(n_train + n_val, features, generator=g)
    y = (x @ w).argmax(1)
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def images(n_train: int = 256, n_val: int = 64):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n_train + n_val, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long() + 2 * (x[:, :, :4].mean(dim=(1, 2, 3)) > 0).long()
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


class MLP(nn.Module):
    def __init__(self, hidden: int = 32, dropout: float = 0.2, features: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class CNN(nn.Module):
    def __init__(self, channels: int = 4, batchnorm: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels) if batchnorm else nn.Identity()
        self.head = nn.Linear(channels * 4 * 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.head(x.flatten(1))


class Branchy(MLP):
    """Data-dependent control flow (a python ``if`` on a tensor): vmap cannot batch it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out * 2 if float(out.detach().mean()) > 1e9 else out


def warmup(optimizer: torch.optim.Optimizer, steps: int = 10):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / steps))


def experiment(optimizer=None, model=None, n: int = 4, steps: int = 40, executor: str = "auto",
               data_fn=data, **settings) -> twinrun.Experiment:
    optimizer = optimizer or twinrun.factory(torch.optim.Adam, lr=3e-3)
    lr = optimizer.kwargs["lr"]
    return twinrun.Experiment(
        name="vectorised", data=data_fn, model=model or MLP, optimizer=optimizer, loss=nn.CrossEntropyLoss,
        scheduler=warmup, metrics={"accuracy": twinrun.accuracy},
        candidates={f"c{i}": {"optimizer.lr": lr * (1 + i / 4)} for i in range(n)},
        steps=steps, batch_size=32, eval_every=20, executor=executor, **settings,
    )
