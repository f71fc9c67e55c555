"""A Lightning run with strategy="ddp" on 2 CPU processes, launched by torchrun: python -m torchrun ... this OUT."""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.integrations._lightning_models import Net, loaders  # noqa: E402

from twinrun.integrations.lightning import TwinrunCallback  # noqa: E402

out = Path(sys.argv[1])
torch.manual_seed(0)
cb = TwinrunCallback(seed=0, checks=False, registry=out / "registry.sqlite", ledger=out / "ledger.jsonl", name="ddp")
L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, callbacks=[cb], logger=False,
          enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False).fit(Net(), *loaders())
