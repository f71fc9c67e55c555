"""Two MLP candidates for the lockstep tests (4 seeds: each candidate's replicas form a batched group)."""

import sys
from pathlib import Path

import torch
from torch import nn

import twinrun

if str(Path(__file__).parent) not in sys.path:  # a seed's own process imports this file by path
    sys.path.append(str(Path(__file__).parent))  # appended: it must not shadow another folder's modules
from vectorised import MLP, data

experiment = twinrun.Experiment(
    name="lockstep", data=data, model=twinrun.factory(MLP, hidden=16, dropout=0.3),
    optimizer=twinrun.factory(torch.optim.AdamW, lr=3e-3), loss=nn.CrossEntropyLoss,
    metrics={"accuracy": twinrun.accuracy},
    candidates={"a": {}, "b": {"optimizer.lr": 1e-2}},
    steps=15, batch_size=32, eval_every=15, ledger_every=5,
)
