"""Hugging Face models trained as twins by the engine: batched like any other architecture.

A ``PretrainedConfig`` is an object of its own in every model, so comparing modules by identity kept each GPT-2
candidate apart (four groups of one). Configs compare by their contents now, as dataclasses and argparse-style
``args`` do: the candidates are batched, with the numbers of the sequential executor.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from torch import nn

import twinrun

transformers = pytest.importorskip("transformers")
pytestmark = [pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning"),
              pytest.mark.filterwarnings("ignore:There is a performance drop because we have not yet implemented")]


def _tokens():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 50, (256, 12), generator=g)
    return (x, x), (x[:64], x[:64])


def _next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def _gpt2() -> nn.Module:
    config = transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2,
                                     bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config)


class _WithArgs(nn.Module):
    """A repository's model keeping its ``args`` namespace."""

    def __init__(self) -> None:
        super().__init__()
        self.args = argparse.Namespace(hidden=16, act="relu")
        self.embed = nn.Embedding(50, 16)
        self.head = nn.Linear(16, 50)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.embed(x)))


@pytest.mark.parametrize("model", [_gpt2, _WithArgs])
def test_candidates_holding_their_own_config_objects_are_batched(model):
    exp = twinrun.Experiment(
        name="hf", data=_tokens, model=model, optimizer=twinrun.factory(torch.optim.AdamW, lr=1e-3),
        loss=_next_token_loss, candidates={f"c{k}": {"optimizer.lr": 1e-3 / (k + 1)} for k in range(4)},
        steps=3, eval_every=3, ledger_every=None, baselines=False, batch_size=16,
    )
    batched = twinrun.compare(exp.replace(executor="vectorised"), registry=False, progress=False, logdir=None)
    alone = twinrun.compare(exp.replace(executor="sequential"), registry=False, progress=False, logdir=None)
    assert set(batched.execution.values()) == {"vectorised with 4 candidates: c0+c1+c2+c3"}
    for name, result in batched.candidates.items():
        assert np.array_equal(result.train_loss, alone.candidates[name].train_loss), name
