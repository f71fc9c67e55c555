"""Smooth monitoring: one validation batch per step for every candidate, and quick evaluations on a subset."""

from __future__ import annotations

import numpy as np
import pytest

import twinrun
from twinrun.errors import ConfigError
from twinrun.registry import Registry

# the library warns once per process when PYTHONHASHSEED is not fixed; these tests do not depend on it
pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")

SETTINGS = {"steps": 10, "eval_every": 5, "eval_batch_size": 32, "monitor": True, "eval_batches": 1}


def _scalars(path, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path))
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars(tag)}


def test_monitor_and_quick_evaluations_read_back_from_tensorboard_and_the_registry(toy, tmp_path):
    r = twinrun.compare(toy, candidates=["small", "wide"], overrides=SETTINGS, progress=False,
                        logdir=tmp_path / "tb", home=tmp_path / "home")
    for cand in ("small", "wide"):
        monitor = _scalars(tmp_path / "tb" / cand, "monitor/loss")
        val = _scalars(tmp_path / "tb" / cand, "val/loss")
        assert sorted(monitor) == list(range(1, 11))  # after every step
        assert sorted(val) == [0, 5, 10]
        # step 5: the quick evaluation is validation batch 0; the monitor rotates to batch (5 - 1) % 4 = 0
        assert monitor[5] == pytest.approx(val[5], rel=1e-6)
        # the last evaluation is the whole validation set (the verdict's), not its first batch
        assert val[10] == pytest.approx(r.candidates[cand].final["loss"], rel=1e-6)
        assert r.candidates[cand].per_example["loss"].size == 128
        assert monitor[10] != pytest.approx(val[10], rel=1e-6)
    diff = _scalars(tmp_path / "tb" / "wide", "diff/monitor_loss")
    assert diff[3] == pytest.approx(_scalars(tmp_path / "tb" / "wide", "monitor/loss")[3]
                                    - _scalars(tmp_path / "tb" / "small", "monitor/loss")[3], abs=1e-6)
    with Registry.open(tmp_path / "home" / "registry.sqlite") as reg:
        metrics = reg.metrics(r.run_id)
    assert [s for s, _ in metrics["small"]["monitor"]["loss"]] == list(range(1, 11))
    assert [s for s, _ in metrics["small"]["val"]["loss"]] == [0, 5, 10]


def test_monitoring_changes_no_training_number(toy):
    common = {"candidates": ["small", "dropout"], "progress": False, "logdir": None, "registry": False}
    plain = twinrun.compare(toy, overrides={"steps": 10, "eval_every": 5}, **common)
    watched = twinrun.compare(toy, overrides={"steps": 10, "eval_every": 5, "monitor": True,
                                              "eval_batches": 1, "eval_batch_size": 32}, **common)
    for name in common["candidates"]:
        assert np.array_equal(plain.candidates[name].train_loss, watched.candidates[name].train_loss)
        assert plain.candidates[name].final == pytest.approx(watched.candidates[name].final, rel=1e-6)


@pytest.mark.parametrize("key,value", [("eval_batches", 0), ("eval_batches", 1.5), ("monitor", "yes")])
def test_bad_monitoring_settings(toy, key, value):
    with pytest.raises(ConfigError, match=key):
        twinrun.compare(toy, overrides={key: value}, progress=False, logdir=None, registry=False)
