"""A user's own two-model loop adopting Twin, run as a process: ``python _twin_user_loop.py OUT [KILL_AT]``.

A shuffled DataLoader with its own generator (re-seeded per epoch), an augmentation
drawn from torch's global generator, dropout, SGD with momentum and a step schedule.
With ``KILL_AT`` the process kills itself with SIGKILL right after that update; run
again without it, the loop resumes from the last checkpoint the sinks wrote.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import twinrun
from twinrun.checkpoint import CheckpointSink, list_checkpoints, read_checkpoint
from twinrun.ledger import LedgerSink
from twinrun.registry import RegistrySink

out, kill_at = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None
twinrun.seed_everything(0)  # Python's, NumPy's and torch's generators: the ledger records them
g = torch.Generator().manual_seed(0)
x = torch.randn(160, 6, generator=g)
y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
order = torch.Generator()
loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=order)


def make(width):
    return nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Dropout(0.2), nn.Linear(width, 2))


model_a, model_b = make(16), make(32)
opt_a = torch.optim.SGD(model_a.parameters(), lr=0.1, momentum=0.9)
opt_b = torch.optim.SGD(model_b.parameters(), lr=0.1, momentum=0.9)
sched_a = torch.optim.lr_scheduler.StepLR(opt_a, step_size=10, gamma=0.5)
sched_b = torch.optim.lr_scheduler.StepLR(opt_b, step_size=10, gamma=0.5)
# --- the lines twinrun adds ---
sinks = [RegistrySink(out / "registry.sqlite", name="loop"), LedgerSink(out / "ledger.jsonl"),
         CheckpointSink(out / "checkpoints", every=5)]
twin = twinrun.Twin({"a": (model_a, opt_a, sched_a), "b": (model_b, opt_b, sched_b)}, seed=0, sinks=sinks)
saved = list_checkpoints(out / "checkpoints")
if saved:  # resume: the checkpoint's state; the loader's position is the step count
    twin.load_state_dict(read_checkpoint(saved[-1][1]).payload)
# ---
done = twin.step_count
per_epoch = len(loader)
for epoch in range(4):
    order.manual_seed(epoch)
    for i, (xb, yb) in enumerate(loader):
        if epoch * per_epoch + i < done:
            continue  # already trained on before the resume
        xb = xb + 0.05 * torch.randn_like(xb)  # augmentation from the global generator
        twin.step(xb, yb, nn.functional.cross_entropy)
        if twin.step_count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
verdict = twin.verdict([(x, y)], nn.functional.cross_entropy)
twin.close()
d = verdict["b"].val["loss"]
(out / "final.json").write_text(json.dumps({
    "verdict": [d.mean, d.low, d.high],
        "run_id": twin.run_id}))
torch.save({n: m.state_dict() for n, m in twin.models.items()}, out / "weights.pt")
