"""The toy experiment with a model that can kill its own process: a real ``kill -9`` at a chosen step.

With ``TWINRUN_TEST_KILL_AT=N`` in the environment, the first candidate's model
sends SIGKILL to its own process during its N-th training forward pass, i.e.
in the middle of step N, after the batch was prepared and before the update.
The variable is not part of the config, so the resumed run has the same one.
"""

from __future__ import annotations

import os
import signal
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from toy import MLP
from toy import experiment as toy

import twinrun


class KillableMLP(MLP):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled():
            self.calls = getattr(self, "calls", 0) + 1
            if str(self.calls) == os.environ.get("TWINRUN_TEST_KILL_AT"):
                os.kill(os.getpid(), signal.SIGKILL)
        return super().forward(x)


experiment = toy.replace(
    name="killable",
    model=twinrun.factory(KillableMLP, width=16),
    scheduler=twinrun.factory(torch.optim.lr_scheduler.StepLR, step_size=10, gamma=0.5),
    candidates={
        "small": {},
        "dropout": {"model.dropout": 0.5},
        "adam": {"optimizer": twinrun.factory(torch.optim.AdamW, lr=1e-2)},
    },
    steps=30,
    eval_every=8,
)
