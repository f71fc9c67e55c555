"""DataLoader worker seeding with real worker processes: per worker, per epoch, per rank."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

import twinrun


class NumpyAugmented(Dataset):
    """Each item draws from NumPy's global generator inside the worker, as augmentation libraries do."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> tuple[int, int, int]:
        info = get_worker_info()
        return index, int(np.random.randint(1 << 30)), -1 if info is None else info.id


def _draws(monkeypatch, *, seed: int, rank: int, fixed: bool) -> dict[tuple[int, int], list[int]]:
    """NumPy draws per (epoch, worker) over 2 epochs of a 2-worker loader in process rank ``rank``.

    ``fixed=True``: twinrun's ``seed_worker`` and ``dataloader_generator``; ``False``: what
    many training scripts do, the same plain seeded generator on every rank and no init function.
    """
    monkeypatch.setenv("RANK", str(rank))
    generator = twinrun.dataloader_generator(seed) if fixed else torch.Generator().manual_seed(seed)
    loader = DataLoader(NumpyAugmented(), batch_size=2, num_workers=2, shuffle=True, generator=generator,
                        worker_init_fn=twinrun.seed_worker if fixed else None)
    out: dict[tuple[int, int], list[int]] = {}
    for epoch in range(2):
        for _, draws, workers in loader:
            for d, w in zip(draws.tolist(), workers.tolist()):
                out.setdefault((epoch, w), []).append(d)
    return out


@pytest.mark.slow
def test_worker_streams_differ_across_workers_epochs_and_ranks(monkeypatch):
    a = _draws(monkeypatch, seed=3, rank=0, fixed=True)
    assert sorted(a) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    values = [tuple(v) for v in a.values()]
    assert len(set(values)) == 4  # every (epoch, worker) has its own stream
    assert _draws(monkeypatch, seed=3, rank=0, fixed=True) == a  # repeatable
    other_rank = _draws(monkeypatch, seed=3, rank=1, fixed=True)
    assert all(other_rank[k] != a[k] for k in a)  # ranks differ
    other_seed = _draws(monkeypatch, seed=4, rank=0, fixed=True)
    assert all(other_seed[k] != a[k] for k in a)


@pytest.mark.slow
def test_the_bug_without_it_ranks_draw_the_same_augmentations(monkeypatch):
    rank0 = _draws(monkeypatch, seed=3, rank=0, fixed=False)
    rank1 = _draws(monkeypatch, seed=3, rank=1, fixed=False)
    assert rank0 == rank1  # two GPUs, the very same "random" augmentations
    # seed_worker alone (same plain generator on every rank) already separates the ranks
    monkeypatch.setenv("RANK", "1")
    loader = DataLoader(NumpyAugmented(), batch_size=2, num_workers=2, worker_init_fn=twinrun.seed_worker,
                        generator=torch.Generator().manual_seed(3), shuffle=True)
    first_epoch = {w: [] for w in (0, 1)}
    for _, draws, workers in loader:
        for d, w in zip(draws.tolist(), workers.tolist()):
            first_epoch[w].append(d)
    assert first_epoch[0] != rank0[(0, 0)] and first_epoch[1] != rank0[(0, 1)]


def test_loader_generator_is_independent_of_the_global_generator():
    g1 = twinrun.dataloader_generator(3, rank=0)
    torch.rand(10)  # a stray draw from the global generator
    g2 = twinrun.dataloader_generator(3, rank=0)
    assert torch.equal(torch.randperm(20, generator=g1), torch.randperm(20, generator=g2))
    assert not torch.equal(torch.randperm(20, generator=twinrun.dataloader_generator(3, rank=1)),
                           torch.randperm(20, generator=twinrun.dataloader_generator(3, rank=0)))


def test_bad_rank_is_named(monkeypatch):
    monkeypatch.setenv("RANK", "first")
    with pytest.raises(twinrun.ConfigError, match="RANK='first'"):
        twinrun.dataloader_generator(0)
