"""The toy experiment with a model that can wait at a chosen step: a seed held where a test wants it.

With ``TWINRUN_TEST_WAIT_DIR`` set, the first candidate's model, in its 3rd training forward pass, writes
``reached-<pid>`` into that folder and waits until a file ``go`` appears there (a test then knows the seed is
mid-run, and lets it go on when it chooses).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from toy import MLP
from toy import experiment as toy

import twinrun


class WaitingMLP(MLP):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        folder = os.environ.get("TWINRUN_TEST_WAIT_DIR")
        if folder and self.training and torch.is_grad_enabled():
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 3:
                (Path(folder) / f"reached-{os.getpid()}").touch()
                while not (Path(folder) / "go").exists():
                    time.sleep(0.05)
        return super().forward(x)


experiment = toy.replace(name="waiting", model=twinrun.factory(WaitingMLP, width=16))
