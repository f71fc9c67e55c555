"""Experiments that read their training data through a DataLoader (workers, worker_init_fn)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import HERE
from torch.utils.data import DataLoader

import twinrun
from twinrun.errors import ConfigError, DataError

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")
LOADER = HERE / "experiments" / "loader.py"


def _compare(exp, **kw):
    return twinrun.compare(exp, progress=False, logdir=None, registry=False, **kw)


@pytest.mark.parametrize("workers,persistent", [(0, False), (2, False), (2, True)])
def test_a_loader_reads_the_very_batches_of_the_in_process_path(workers, persistent):
    exp = twinrun.load_experiment(LOADER)
    plain = _compare(exp.replace(loader=None), overrides={"data.noise": 0.0})
    read = _compare(exp, overrides={"data.noise": 0.0, "loader.num_workers": workers,
                                    "loader.persistent_workers": persistent})
    for name in plain.candidates:
        assert np.array_equal(plain.candidates[name].train_loss, read.candidates[name].train_loss)
        assert plain.candidates[name].final == read.candidates[name].final


def test_random_transforms_in_workers_repeat_and_differ_by_seed():
    exp = twinrun.load_experiment(LOADER)
    a, b, other = _compare(exp), _compare(exp), _compare(exp, overrides={"seed": 1})
    assert np.array_equal(a.candidates["small"].train_loss, b.candidates["small"].train_loss)
    assert not np.array_equal(a.candidates["small"].train_loss, other.candidates["small"].train_loss)


@pytest.mark.parametrize("workers,persistent", [(0, False), (2, False), (2, True)])
def test_a_batch_asked_for_out_of_order_is_replayed_exactly(workers, persistent):
    exp = twinrun.load_experiment(LOADER)
    resolved = twinrun.spec.resolve(exp, {"loader.num_workers": workers, "loader.persistent_workers": persistent})
    engine = twinrun.TwinEngine(resolved, measure_memory=False)
    data = engine.data
    try:
        in_order = [data.train_batch(s) for s in range(1, 21)]  # 16 steps an epoch
        for step, replayed in ((18, 1), (5, 4)):  # back into the second epoch, then the first
            again = data.train_batch(step)
            assert torch.equal(again[0], in_order[step - 1][0]) and torch.equal(again[1], in_order[step - 1][1])
            if workers == 0 or persistent:  # their state carries over: replayed from step 1
                replayed = step - 1
            assert data.feed.replayed == replayed
            data.feed.replayed = 0
    finally:
        data.close()


def test_a_loader_that_ignores_the_batch_sampler_is_refused_before_training():
    def own_batches(dataset, *, batch_sampler, generator):
        return DataLoader(dataset, batch_size=7)

    exp = twinrun.load_experiment(LOADER).replace(loader=twinrun.factory(own_batches))
    with pytest.raises(DataError, match="has 7 examples, not batch_size=16") as info:
        _compare(exp)
    assert "batch_sampler" in info.value.fix


def test_a_loader_factory_that_fails_is_named():
    exp = twinrun.load_experiment(LOADER).replace(loader=twinrun.factory(DataLoader, shuffle=True))
    with pytest.raises(DataError, match="loader factory .*DataLoader failed") as info:
        _compare(exp)
    assert "do not set batch_size, shuffle or sampler" in info.value.fix


def test_loader_keys_are_checked_like_other_overrides():
    exp = twinrun.load_experiment(LOADER)
    with pytest.raises(ConfigError, match="takes no keyword argument 'num_wokers'"):
        twinrun.spec.resolve(exp, {"loader.num_wokers": 2})
    with pytest.raises(ConfigError, match="has no loader"):
        twinrun.spec.resolve(exp.replace(loader=None), {"loader.num_workers": 2})
    with pytest.raises(ConfigError, match="loader cannot be overridden per candidate"):
        twinrun.spec.resolve(exp, {"small:loader.num_workers": 2})
