"""``twinrun compare --extend N``: a finished run continued equals a run planned that long from the start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import twinrun
from twinrun.checkpoint import plan_extension
from twinrun.cli import main
from twinrun.errors import CheckpointError
from twinrun.ledger import Ledger, compare_ledgers

# the library warns once per process when PYTHONHASHSEED is not fixed; these tests do not depend on it
pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")

CANDS = ["small", "dropout"]


def _run(toy, steps, **kw):
    return twinrun.compare(toy, candidates=CANDS, overrides={"steps": steps, "checkpoint_every": 4, **kw},
                           progress=False, logdir=None)


def test_an_extended_run_equals_one_planned_that_long(toy, capsys, monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")  # the CLI trains in this process
    short = _run(toy, 10)  # 10 % 4 != 0: the finished run keeps its last step all the same
    assert main(["compare", toy.source.path, "--extend", "6", "--resume", short.run_id[:8], "--json",
                 "--no-tensorboard"]) == 0
    extended = json.loads(capsys.readouterr().out)
    planned = _run(toy, 16).to_dict()
    assert extended["run_id"] == short.run_id and extended["steps"] == 16
    for name in CANDS:
        got, want = extended["candidates"][name], planned["candidates"][name]
        assert got["final"] == want["final"] and got["final_train_loss"] == want["final_train_loss"]
        # the evaluation at the old end (step 10, off the eval_every=8 schedule) is not kept
        assert [e["step"] for e in got["eval_history"]] == [e["step"] for e in want["eval_history"]] == [0, 8, 16]
    assert extended["baselines"] == planned["baselines"]
    a = Ledger.load(Path(extended["artifacts"]["ledger"]))
    b = Ledger.load(Path(planned["artifacts"]["ledger"]))
    assert compare_ledgers(a, b).divergence is None


def test_what_cannot_be_extended_is_refused_with_the_reason(toy, tmp_path):
    no_checkpoints = twinrun.compare(toy, candidates=["small"], overrides={"steps": 5}, progress=False, logdir=None)
    folder = Path(no_checkpoints.artifacts["run_dir"])
    with pytest.raises(CheckpointError, match="it has no checkpoint") as err:
        plan_extension(folder, 5)
    assert "--checkpoint-every K" in err.value.fix and "--set steps=10" in err.value.fix
    with pytest.raises(CheckpointError, match="is interrupted"):
        plan_extension(folder, 5, status="interrupted")
    with pytest.raises(CheckpointError, match="whole number"):
        plan_extension(folder, 0)
    cosine = toy.replace(scheduler=twinrun.factory(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=8))
    run = twinrun.compare(cosine, candidates=["small"], overrides={"steps": 8, "checkpoint_every": 4},
                          progress=False, logdir=None)
    with pytest.raises(CheckpointError, match="CosineAnnealingLR T_max=8 is its old length") as err:
        plan_extension(Path(run.artifacts["run_dir"]), 4)
    assert "--set steps=12" in err.value.fix
    longer = toy.replace(scheduler=twinrun.factory(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=100))
    ok = twinrun.compare(longer, candidates=["small"], overrides={"steps": 8, "checkpoint_every": 4},
                         progress=False, logdir=None)
    assert plan_extension(Path(ok.artifacts["run_dir"]), 4) == 12  # its horizon is not its length
