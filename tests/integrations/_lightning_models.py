"""A LightningModule as users write one: dropout, hparams, its own logging, SGD with a step schedule."""

from __future__ import annotations

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

_g = torch.Generator().manual_seed(0)
X = torch.randn(96, 6, generator=_g)
Y = (X[:, 0] + 0.3 * torch.randn(96, generator=_g) > 0).long()


class Net(L.LightningModule):
    def __init__(self, width: int = 16, lr: float = 0.05, interval: str = "step", step_size: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Dropout(0.3), nn.Linear(width, 2))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.hparams.step_size, gamma=0.7)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": self.hparams.interval}}


def loaders(batch_size: int = 16) -> tuple[DataLoader, DataLoader]:
    ds = TensorDataset(X, Y)
    return DataLoader(ds, batch_size=batch_size, shuffle=True), DataLoader(ds, batch_size=48)


def trainer(**kwargs) -> L.Trainer:
    settings = dict(logger=False, enable_progress_bar=False, enable_model_summary=False,
                    enable_checkpointing=False, num_sanity_val_steps=2)
    settings.update(kwargs)
    return L.Trainer(**settings)
