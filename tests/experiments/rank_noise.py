"""The data-parallel twins of ``parallel.py`` with a nondeterminism on one rank only.

With ``TWINRUN_TEST_NOISE_RANK=R``, rank R's augmentation adds noise drawn from the operating system's
entropy (not from the generator it is handed): its shard of every batch differs between two runs, the
other ranks' do not. Without it the augmentation returns the batch unchanged.
"""

from __future__ import annotations

import os

import torch
from parallel import experiment as parallel


def rank_noise(inputs, targets, *, generator):
    if os.environ.get("RANK") is not None and os.environ.get("RANK") == os.environ.get("TWINRUN_TEST_NOISE_RANK"):
        entropy = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little") >> 1)
        return inputs + 1e-3 * torch.randn(inputs.shape, generator=entropy), targets
    return inputs, targets


experiment = parallel.replace(name="rank_noise", augment=rank_noise)
