"""The toy experiment with failures planted on particular seeds (for the sweep tests).

``model.fail_seed=S``: on the run with seed S, every model raises after a few
forward calls (the run fails). ``unstable`` has ``model.nan_seed``: on the run
with that seed, its outputs become NaN after a few calls (it diverges; the other
candidates go on). ``model.slow_from=S`` with ``model.delay=D``: on runs with seed
S or above, every forward call sleeps D seconds (seeds that are still running
while earlier ones have finished, on a machine of any speed). A model knows the run's seed from the init stream: it is
built while torch's global generator is seeded with ``derive_seed(seed, "init")``.
Self-contained, because each seed's process loads this file on its own.
"""

from __future__ import annotations

import time

import torch
from torch import nn

import twinrun


def blobs(n_train: int = 256, n_val: int = 128, features: int = 8, classes: int = 3):
    g = torch.Generator().manual_seed(1234)
    centers = torch.randn(classes, features, generator=g) * 1.5

    def sample(n: int):
        y = torch.randint(0, classes, (n,), generator=g)
        return centers[y] + torch.randn(n, features, generator=g), y

    return sample(n_train), sample(n_val)


def _is_seed(seed: int) -> bool:
    return seed >= 0 and torch.initial_seed() == twinrun.rng.derive_seed(seed, "init")


def _seed_at_least(first: int) -> bool:
    return first >= 0 and any(_is_seed(s) for s in range(first, first + 64))


class Planted(nn.Module):
    def __init__(self, width: int = 16, fail_seed: int = -1, nan_seed: int = -1, after: int = 6,
                 slow_from: int = -1, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay if _seed_at_least(slow_from) else 0.0
        self.fc1 = nn.Linear(8, width)
        self.fc2 = nn.Linear(width, 3)
        self.fail = _is_seed(fail_seed)
        self.nan = _is_seed(nan_seed)
        self.after = after
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        out = self.fc2(torch.relu(self.fc1(x)))
        if self.calls > self.after and self.fail:
            raise RuntimeError("planted failure for this seed")
        if self.calls > self.after and self.nan:
            return out * float("nan")
        return out


experiment = twinrun.Experiment(
    name="flaky",
    data=blobs,
    model=twinrun.factory(Planted, width=16),
    optimizer=twinrun.factory(torch.optim.SGD, lr=0.1, momentum=0.9),
    loss=nn.CrossEntropyLoss,
    metrics={"accuracy": twinrun.accuracy},
    candidates={"small": {}, "wide": {"model.width": 32}, "unstable": {"model.nan_seed": 2}},
    steps=16,
    batch_size=16,
    eval_every=8,
)
