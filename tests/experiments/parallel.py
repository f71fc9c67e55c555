"""Data-parallel twins: the toy blobs, two dropout-free MLPs, batch 16 (two ranks: 8 examples each).

With ``TWINRUN_TEST_KILL_AT=N`` and ``TWINRUN_TEST_KILL_RANK=R``, rank R's first candidate sends SIGKILL to its own
process in its N-th training forward pass (a rank that dies mid-step).
"""

from __future__ import annotations

import os
import signal

import torch
from toy import MLP, blobs
from torch import nn

import twinrun

class KillableMLP(MLP):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled() and os.environ.get("RANK") == os.environ.get("TWINRUN_TEST_KILL_RANK"):
            self.calls = getattr(self, "calls", 0) + 1
            if str(self.calls) == os.environ.get("TWINRUN_TEST_KILL_AT"):
                os.kill(os.getpid(), signal.SIGKILL)
        return super().forward(x)


experiment = twinrun.Experiment(
    name="parallel",
    data=blobs,
    model=twinrun.factory(KillableMLP, width=16),
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
