"""The headline verdict's truth, measured through the real engine.

A null pair: two candidates with the same architecture and learning rate whose
only difference is their own draw of initial weights (the layers are named
differently, so nothing is shared). Judged across replicas (K = 4, seeds paired
across candidates), "better"/"worse" must come no more often than the nominal 5 %
(up to a binomial bound); a real difference (width 4 against width 32) must still be
found with the right sign.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binom
from torch import nn

import twinrun
from twinrun.stats import analyze_seeds

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")]

K, EXPERIMENTS = 4, 60


class Renamed(nn.Module):
    """The toy MLP with other layer names, and another draw of its initial weights."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        torch.rand(7)  # a different draw from the same init stream: same distribution, other values
        self.first = nn.Linear(8, width)
        self.last = nn.Linear(width, 3)

    def forward(self, x):
        return self.last(torch.relu(self.first(x)))


def _replicas(toy, candidates, base_seed):
    exp = toy.replace(candidates=candidates, steps=12, augment=None, ledger_every=None)
    finals = {name: [] for name in candidates}
    for r in range(K):
        result = twinrun.compare(exp, overrides={"seed": base_seed + r}, progress=False, logdir=None,
                                 registry=False)
        for name in candidates:
            finals[name].append(result.candidates[name].final["loss"])
    return {n: np.array(v) for n, v in finals.items()}


def test_a_null_pair_is_called_different_at_most_at_the_nominal_rate(toy):
    calls = 0
    for e in range(EXPERIMENTS):
        scores = _replicas(toy, {"a": {}, "b": {"model": Renamed}}, base_seed=1000 * e)
        verdict = analyze_seeds(scores, higher_is_better=False, metric="loss", n_resamples=200)
        calls += verdict["comparisons"]["b"]["decision"] != "not resolved"
    # P(calls >= bound) <= 1 % if the rate were the nominal 5 %
    bound = int(binom.ppf(0.99, EXPERIMENTS, 0.05)) + 1
    assert calls < bound, f"{calls} of {EXPERIMENTS} null pairs were called different (bound {bound})"


def test_a_real_difference_is_found_with_the_right_sign(toy):
    scores = _replicas(toy, {"narrow": {"model.width": 2}, "wide": {"model.width": 32}}, base_seed=0)
    verdict = analyze_seeds(scores, higher_is_better=False, metric="loss", n_resamples=200)
    assert verdict["comparisons"]["wide"]["decision"] == "better"
