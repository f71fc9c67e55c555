"""A complete twinrun experiment: three classifiers for scikit-learn's 8x8 digits.

Run it with ``twinrun demo`` (or ``twinrun compare path/to/digits.py``). It is
also the reference for writing your own experiment file: an experiment is the
factories below plus named candidates, each a set of overrides.

Candidates:
    mlp     a one-hidden-layer perceptron with dropout (the reference)
    cnn     a two-layer convolutional net
    cnn_bn  the same convolutional net with batch normalisation

``cnn`` and ``cnn_bn`` name their layers alike (conv1, conv2, head), so they
start from the very same weights for those layers; only the batch-norm
parameters are their own.
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
from typing import Any

import numpy as np
import torch
from torch import nn

import twinrun
from twinrun.examples._cache import cached_arrays


@functools.lru_cache(maxsize=4)
def _digits(val_fraction: float, split_seed: int) -> tuple[Any, Any, Any, Any]:
    """scikit-learn's digits and a stratified split, read once per process (a sweep's seeds share them) and
    kept on disk for the next process (keyed by scikit-learn's version: see ``_cache``)."""

    def compute() -> dict[str, np.ndarray]:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        train_idx, val_idx = train_test_split(
            np.arange(len(digits.target)),
            test_size=val_fraction,
            random_state=split_seed,
            stratify=digits.target,
        )
        return {"images": digits.images, "target": digits.target, "train": train_idx, "val": val_idx}

    key = f"digits-sklearn{importlib.metadata.version('scikit-learn')}-{val_fraction!r}-{split_seed}"
    arrays = cached_arrays(key, compute)
    return arrays["images"], arrays["target"], arrays["train"], arrays["val"]


def load_digits_split(
    val_fraction: float = 0.2, split_seed: int = 0
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The 1,797 digits as ``(1, 8, 8)`` images, standardised with training statistics (fresh tensors each call)."""
    raw, target, train_idx, val_idx = _digits(val_fraction, split_seed)
    images = torch.tensor(raw, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor(target, dtype=torch.int64)
    x_train, x_val = images[train_idx], images[val_idx]
    mean, std = x_train.mean(), x_train.std()
    return ((x_train - mean) / std, labels[train_idx]), ((x_val - mean) / std, labels[val_idx])


class MLP(nn.Module):
    def __init__(self, hidden: int = 64, dropout: float = 0.1, classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SmallCNN(nn.Module):
    def __init__(self, channels: int = 16, batchnorm: bool = False, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels) if batchnorm else nn.Identity()
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * channels) if batchnorm else nn.Identity()
        self.head = nn.Linear(2 * channels * 4 * 4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = nn.functional.max_pool2d(x, 2)
        return self.head(x.flatten(1))


def shift_and_noise(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    generator: torch.Generator,
    max_shift: int = 1,
    noise: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift each image by up to ``max_shift`` pixels and add Gaussian noise.

    Every random number comes from ``generator`` (twinrun's augmentation stream
    for this step), so all candidates see the very same augmented batch.
    """
    n, _, h, w = inputs.shape
    s = max_shift
    dy = torch.randint(-s, s + 1, (n,), generator=generator, device=inputs.device)
    dx = torch.randint(-s, s + 1, (n,), generator=generator, device=inputs.device)
    padded = nn.functional.pad(inputs, (s, s, s, s))
    rows = torch.arange(h, device=inputs.device)[None, :] + s - dy[:, None]
    cols = torch.arange(w, device=inputs.device)[None, :] + s - dx[:, None]
    batch = torch.arange(n, device=inputs.device)[:, None, None]
    shifted = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    jitter = torch.randn(shifted.shape, generator=generator, device=inputs.device) * noise
    return shifted + jitter, targets


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int = 20, total_steps: int = 300
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay to zero at ``total_steps`` (keep it equal to ``steps``)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


experiment = twinrun.Experiment(
    name="digits",
    description="MLP vs CNN vs CNN+BatchNorm on scikit-learn's 8x8 digits",
    data=twinrun.factory(load_digits_split, val_fraction=0.2),
    model=twinrun.factory(MLP, hidden=64),
    optimizer=twinrun.factory(torch.optim.AdamW, lr=3e-3, weight_decay=1e-4),
    scheduler=twinrun.factory(warmup_cosine, warmup_steps=20, total_steps=300),
    loss=nn.CrossEntropyLoss,
    augment=twinrun.factory(shift_and_noise, max_shift=1, noise=0.1),
    metrics={"accuracy": twinrun.accuracy},
    candidates={
        "mlp": {},
        "cnn": {"model": twinrun.factory(SmallCNN, channels=16)},
        "cnn_bn": {"model": twinrun.factory(SmallCNN, channels=16, batchnorm=True)},
    },
    steps=300,
    batch_size=64,
    eval_every=50,
    seed=0,
    replicas=4,  # `twinrun demo`: a verdict about the recipes, across 4 replicas (--replicas 1: one run)
)
