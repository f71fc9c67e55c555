"""A character language model whose vocabulary comes from ``set(text)``: ids depend on PYTHONHASHSEED.

``SORTED=1`` in the environment builds it from ``sorted(set(text))`` instead (the fix).
"""

from __future__ import annotations

import os

import torch
from torch import nn

import twinrun

TEXT = "the quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun " * 12


def data(block: int = 8):
    chars = sorted(set(TEXT)) if os.environ.get("SORTED") == "1" else list(set(TEXT))
    ids = torch.tensor([chars.index(c) for c in TEXT])
    starts = torch.arange(0, len(ids) - block - 1, 3)
    x = torch.stack([ids[s : s + block] for s in starts])
    y = torch.stack([ids[s + 1 : s + block + 1] for s in starts])
    cut = int(0.8 * len(x))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


class BigramLM(nn.Module):
    def __init__(self, vocab: int = 32) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.table(idx)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())


experiment = twinrun.Experiment(
    name="set_vocab", data=data, model=BigramLM, optimizer=twinrun.factory(torch.optim.Adam, lr=1e-2),
    loss=lm_loss, steps=40, batch_size=16, eval_every=40,
)
