"""In-process seeds stepped together: the replicas of each architecture in one batched step (``_lockstep``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _subprocess import HERE

import twinrun
from twinrun.registry import Registry
from twinrun.sweeps import Execution, run_sweep

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")]

EXPERIMENT = str(HERE / "experiments" / "lockstep.py")


def _runs(result):
    with Registry.open(result.registry) as reg:
        return {r.seed: reg.get_run(r.id) for r in reg.list_runs(sweep_id=result.sweep_id)}


def _losses(result):
    return {seed: {n: run.result["candidates"][n]["final"] for n in ("a", "b")}
            for seed, run in _runs(result).items()}


def test_batched_replicas_are_the_seeds_own_runs_without_dropout(tmp_path, monkeypatch):
    """Dropout-free MLPs: 4 seeds stepped together give bit for bit the runs of fresh processes."""
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    common = dict(seeds=4, overrides={"steps": 15, "model.dropout": 0.0}, progress=False)
    together = run_sweep(EXPERIMENT, execution=Execution("inprocess", threads=1), home=tmp_path / "i", **common)
    alone = run_sweep(EXPERIMENT, execution=Execution("local", jobs=2, threads=1), home=tmp_path / "p", **common)
    assert together.ok and alone.ok
    assert _losses(together) == _losses(alone)
    execution = _runs(together)[1].result["execution"]
    assert execution == {"a": "vectorised with 4 candidates: a@0+a@1+a@2+a@3",
                         "b": "vectorised with 4 candidates: b@0+b@1+b@2+b@3"}


def test_batched_replicas_draw_their_own_dropout_and_repeat_bit_for_bit(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    common = dict(seeds=4, overrides={"steps": 15}, progress=False, execution=Execution("inprocess", threads=1))
    first = run_sweep(EXPERIMENT, home=tmp_path / "1", **common)
    second = run_sweep(EXPERIMENT, home=tmp_path / "2", **common)
    assert _losses(first) == _losses(second)
    finals = [v["a"]["loss"] for v in _losses(first).values()]
    assert len(set(finals)) == 4  # each replica its own init, batches and masks
    torch.manual_seed(5)
    state = torch.get_rng_state()
    run_sweep(EXPERIMENT, home=tmp_path / "3", **common)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generators are left alone


def test_sequential_executor_runs_the_seeds_one_after_another(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    result = run_sweep(EXPERIMENT, execution=Execution("inprocess", threads=1), home=tmp_path, seeds=4, progress=False,
                       overrides={"steps": 5, "executor": "sequential"})
    assert {run.result["execution"]["a"] for run in _runs(result).values()} == {"sequential"}
    assert np.isfinite([v["a"]["loss"] for v in _losses(result).values()]).all()
    assert twinrun  # the package under test


def test_within_a_seed_twins_still_share_their_dropout_masks(tmp_path, monkeypatch):
    """a and b with the same learning rate are the same recipe: batched across seeds, they stay identical."""
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    result = run_sweep(EXPERIMENT, execution=Execution("inprocess", threads=1), home=tmp_path, seeds=4, progress=False,
                       overrides={"steps": 15, "b:optimizer.lr": 3e-3})
    for seed, values in _losses(result).items():
        assert values["a"] == values["b"], seed
    assert len({v["a"]["loss"] for v in _losses(result).values()}) == 4
