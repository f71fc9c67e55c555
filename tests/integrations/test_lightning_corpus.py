"""The default checks through the Lightning callback on a nanoGPT-style LightningModule, as people write one:
the model returns ``(logits, loss)``, tied weights, AdamW with warm-up and cosine stepped per batch."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

L = pytest.importorskip("lightning.pytorch")

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from corpus.models import GPT, GPTConfig, char_windows, gpt_loss, seeded, warmup_cosine  # noqa: E402

from twinrun.integrations.lightning import TwinrunCallback  # noqa: E402

from ._lightning_models import trainer  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::DeprecationWarning")]
STEPS = 120


class LitGPT(L.LightningModule):
    def __init__(self, vocab: int, lr: float = 3e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = seeded(GPT, GPTConfig(vocab_size=vocab))

    def forward(self, idx):
        return self.model(idx)

    def training_step(self, batch, batch_idx):
        x, y = batch
        _, loss = self.model(x, y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        _, loss = self.model(x, y)
        self.log("val_loss", loss)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, betas=(0.9, 0.95), weight_decay=0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": warmup_cosine(opt, 30, STEPS), "interval": "step"}}


def test_the_default_checks_run_on_a_gpt_lightning_module_without_a_crash_or_a_false_alarm(tmp_path):
    (train, val), vocab = char_windows()
    cb = TwinrunCallback(seed=0, loss=gpt_loss, registry=tmp_path / "registry.sqlite", check_steps=STEPS)
    trainer(max_steps=5, callbacks=[cb]).fit(LitGPT(vocab), DataLoader(train, batch_size=32, shuffle=True),
                                            DataLoader(val, batch_size=64))
    report = cb.check_report
    assert report.by_status("fail", "warn") == [], str(report)
    assert {"causality", "position_sensitivity", "lr_schedule", "loss_decreases"} <= {
        r.name for r in report.by_status("pass")}, str(report)  # the sequence checks apply through Lightning
