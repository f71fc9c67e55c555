"""A candidate with a batch size of its own: the same order of examples, cut into batches of its size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from twinrun.engine import TwinEngine
from twinrun.errors import ConfigError, DataError
from twinrun.spec import resolve


@pytest.fixture
def sized(toy):
    return toy.replace(candidates={"small": {}, "big": {"batch_size": 32}, "same": {"batch_size": 16}})


def test_its_batches_are_the_shared_order_cut_to_its_size(sized):
    r = resolve(sized, {"steps": 6}, candidates=["small", "big", "same"])
    assert r.candidates["big"].batch_size == 32 and r.candidates["same"].batch_size is None  # 16 is the run's
    assert any("batch size of their own (big 32; the others 16)" in w for w in r.warnings)
    engine = TwinEngine(r)
    plan, own = engine.data.plan, engine.data.plan_for(32)
    assert torch.equal(own.indices(1), torch.cat([plan.indices(1), plan.indices(2)]))
    assert torch.equal(own.order(0), plan.order(0))  # the same examples in the same order, every epoch
    batches, assignment = engine.prepared_batches(1)
    assert batches[assignment["big"]][0].shape[0] == 32 and batches[assignment["small"]][0].shape[0] == 16
    assert assignment["same"] == assignment["small"]


def test_twin_equals_solo_for_a_candidate_with_its_own_batch_size(sized):
    twin = TwinEngine(resolve(sized, {"steps": 12, "executor": "sequential"}, candidates=["small", "big"])).run()
    solo = TwinEngine(resolve(sized, {"steps": 12, "executor": "sequential", "batch_size": 32},
                              candidates=["big"])).run()
    assert np.array_equal(twin.candidates["big"].train_loss, solo.candidates["big"].train_loss)
    assert twin.candidates["big"].final == solo.candidates["big"].final


def test_it_is_never_batched_with_candidates_of_another_size(sized):
    r = TwinEngine(resolve(sized, {"steps": 4}, candidates=["small", "big", "same"])).run()
    assert "big" not in r.execution["small"] and "same" in r.execution["small"]
    assert all(c.status == "finished" for c in r.candidates.values())


def test_bad_batch_sizes_are_refused_before_training(sized, toy):
    with pytest.raises(ConfigError, match="batch_size=0"):
        resolve(toy.replace(candidates={"a": {}, "b": {"batch_size": 0}}))
    with pytest.raises(DataError, match="batch_size=4096 is larger than the training set"):
        TwinEngine(resolve(toy.replace(candidates={"a": {}, "b": {"batch_size": 4096}}), {"steps": 2}))
