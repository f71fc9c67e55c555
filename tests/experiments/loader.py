"""The toy experiment read through a DataLoader with workers, the way users write one.

The dataset owns a NumPy generator (re-seeded per worker in ``worker_init_fn``,
the standard idiom) and also draws from torch's global generator in
``__getitem__``; both are random transforms whose draws must come back
identically after a resume. ``loader.persistent_workers`` and
``loader.num_workers`` are overridable; ``model`` is the killable MLP
(``TWINRUN_TEST_KILL_AT``) of ``killable.py``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from killable import KillableMLP
from toy import blobs
from toy import experiment as toy

import twinrun


class NoisyBlobs(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor, noise: float) -> None:
        self.x, self.y, self.noise = x, y, noise
        self.rng = np.random.default_rng(0)  # re-seeded in every worker by seed_dataset_rng

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        jitter = torch.from_numpy(self.rng.normal(0, self.noise, self.x.shape[1]).astype(np.float32))
        return self.x[i] + jitter + self.noise * torch.randn(self.x.shape[1]), self.y[i]


def noisy_blobs(noise: float = 0.3):
    (xt, yt), val = blobs()
    return NoisyBlobs(xt, yt, noise), val


def seed_dataset_rng(worker_id: int) -> None:
    info = get_worker_info()
    info.dataset.rng = np.random.default_rng(info.seed % 2**32)


experiment = toy.replace(
    name="loader",
    data=twinrun.factory(noisy_blobs),
    loader=twinrun.factory(DataLoader, num_workers=2, worker_init_fn=seed_dataset_rng,
                           persistent_workers=False),
    model=twinrun.factory(KillableMLP, width=16),
    candidates={"small": {}, "dropout": {"model.dropout": 0.5}},
    steps=24,
    eval_every=8,
)
