"""An experiment file for the CLI tests: a masked-attention LM, one candidate with its mask off by one."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from planted import MaskedAttentionLM, token_sequences

import twinrun

experiment = twinrun.Experiment(
    name="lm",
    data=token_sequences,
    model=twinrun.factory(MaskedAttentionLM, diagonal=1),
    optimizer=twinrun.factory(torch.optim.Adam, lr=1e-2),
    loss=nn.CrossEntropyLoss,
    candidates={"causal": {}, "leaky": {"model.diagonal": 2}},
    check_options={"causality": {"input_time_dim": 1, "output_time_dim": 2}, "overfit_batch": {"steps": 200}},
    steps=100,
    batch_size=32,
)
