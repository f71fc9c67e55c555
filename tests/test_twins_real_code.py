"""Models written as real code writes them, trained as twins: batched where they can be, by the numbers.

Each case once kept same-architecture candidates apart or out of a batch: a Hugging Face ``PretrainedConfig``
is an object of its own in every model (compared by identity, four GPT-2 candidates were four groups of one),
so is a repository's ``args`` namespace; ``weight_norm`` makes a class per module; a bfloat16 ``autocast``
region rounds differently under ``vmap`` (which the dropout-mask check of the first step took for other
masks). Now four candidates of each are one batched group, with the sequential executor's losses (bit for
bit in float32; to bfloat16's rounding inside autocast).
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from torch import nn

import twinrun

pytestmark = [pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning"),
              pytest.mark.filterwarnings("ignore:There is a performance drop because we have not yet implemented")]


def _tokens():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 50, (256, 12), generator=g)
    return (x, x), (x[:64], x[:64])


def _next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def _gpt2() -> nn.Module:
    transformers = pytest.importorskip("transformers")
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


class _WeightNormed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.head = nn.utils.parametrizations.weight_norm(nn.Linear(16, 50))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.embed(x)))


class _Autocast(nn.Module):
    """Mixed precision inside the forward, as training scripts write it."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.wide = nn.Linear(16, 64)
        self.head = nn.Linear(64, 50)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            hidden = torch.relu(self.wide(self.embed(x)))
        return self.head(hidden.float())


@pytest.mark.parametrize("model", [_gpt2, _WithArgs, _WeightNormed, _Autocast])
def test_candidates_of_real_code_are_batched_with_the_numbers_of_one_at_a_time(model):
    exp = twinrun.Experiment(
        name="real", data=_tokens, model=model, optimizer=twinrun.factory(torch.optim.AdamW, lr=1e-3),
        loss=_next_token_loss, candidates={f"c{k}": {"optimizer.lr": 1e-3 / (k + 1)} for k in range(4)},
        steps=3, eval_every=3, ledger_every=None, baselines=False, batch_size=16,
    )
    batched = twinrun.compare(exp.replace(executor="vectorised"), registry=False, progress=False, logdir=None)
    alone = twinrun.compare(exp.replace(executor="sequential"), registry=False, progress=False, logdir=None)
    assert set(batched.execution.values()) == {"vectorised with 4 candidates: c0+c1+c2+c3"}
    for name, result in batched.candidates.items():
        if model is _Autocast:  # bfloat16 keeps 8 bits of mantissa: batched kernels round it otherwise
            np.testing.assert_allclose(result.train_loss, alone.candidates[name].train_loss, rtol=1e-3)
        elif model is _gpt2:  # under vmap: MKL's batched products sum in their own order on some CPUs (AVX-512)
            np.testing.assert_allclose(result.train_loss, alone.candidates[name].train_loss, rtol=1e-5)
        else:
            assert np.array_equal(result.train_loss, alone.candidates[name].train_loss), name
