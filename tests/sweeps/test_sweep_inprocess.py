"""Seeds run one after another in the sweep's process give the very runs of fresh processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TOY

from twinrun.registry import Registry
from twinrun.sweeps import Execution, run_sweep

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")]

CANDIDATES = ["small", "dropout"]


def _finals(result):
    with Registry.open(result.registry) as reg:
        runs = {r.seed: reg.get_run(r.id) for r in reg.list_runs(sweep_id=result.sweep_id)}
    return {seed: {n: run.result["candidates"][n]["final"] for n in CANDIDATES} for seed, run in runs.items()}


def test_in_process_seeds_equal_process_seeds_and_leave_the_caller_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")  # as the seeds' processes have it
    common = dict(seeds=3, candidates=CANDIDATES, overrides={"steps": 12}, progress=False)
    processes = run_sweep(TOY, execution=Execution("local", jobs=2, threads=1), home=tmp_path / "p", **common)
    torch.manual_seed(123)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    inprocess = run_sweep(TOY, execution=Execution("inprocess", threads=1), home=tmp_path / "i", **common)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    assert inprocess.ok and inprocess.execution["backend"] == "inprocess"
    assert _finals(inprocess) == _finals(processes)
    # and so is every statistic of the analysis (runs ids and sessions aside)
    same = ("seeds", "finished", "candidates", "metrics", "ensemble", "recommendation", "unavailable")
    assert {k: inprocess.analysis[k] for k in same} == {k: processes.analysis[k] for k in same}


def test_in_process_refuses_parallel_jobs():
    from twinrun.errors import ConfigError

    with pytest.raises(ConfigError, match="one seed at a time"):
        run_sweep(TOY, seeds=2, execution=Execution("inprocess", jobs=2))
