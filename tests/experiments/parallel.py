"""Data-parallel twins: the toy blobs, two dropout-free MLPs, batch 16 (two ranks: 8 examples each)."""

from __future__ import annotations

import torch
from toy import MLP, blobs
from torch import nn

import twinrun

experiment = twinrun.Experiment(
    name="parallel",
    data=blobs,
    model=twinrun.factory(MLP, width=16),
    optimizer=twinrun.factory(torch.optim.SGD, lr=0.1, momentum=0.9),
    loss=nn.CrossEntropyLoss,
    metrics={"accuracy": twinrun.accuracy},
    candidates={"small": {}, "wide": {"model.width": 32}},
    steps=30,
    batch_size=16,
    eval_every=10,
    ledger_every=5,
    seed=3,
    replicas=1,
)
