"""A user's loop with Twin killed with SIGKILL and run again: everything as if it had never stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _subprocess import child_env

from twinrun.ledger import Ledger, compare_ledgers
from twinrun.registry import open_registry

LOOP = Path(__file__).parent / "_twin_user_loop.py"
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")]


def _run(out: Path, *kill_at: int) -> subprocess.CompletedProcess[str]:
    out.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, str(LOOP), str(out), *map(str, kill_at)], env=child_env(),
                          capture_output=True, text=True, timeout=300, check=False)


def test_a_user_loop_killed_with_sigkill_resumes_bit_for_bit(tmp_path):
    whole = _run(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    killed = _run(tmp_path / "resumed", 13)  # after update 13: the last checkpoint is update 10's
    assert killed.returncode == -9, killed.stderr
    assert not (tmp_path / "resumed" / "final.json").exists()
    again = _run(tmp_path / "resumed")
    assert again.returncode == 0, again.stderr
    a = torch.load(tmp_path / "whole" / "weights.pt")
    b = torch.load(tmp_path / "resumed" / "weights.pt")
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])
    fa, fb = (json.loads((tmp_path / d / "final.json").read_text()) for d in ("whole", "resumed"))
    assert fa["verdict"] == fb["verdict"]  # the paired verdict, to the last bit
    comparison = compare_ledgers(Ledger.load(tmp_path / "whole" / "ledger.jsonl"),
                                 Ledger.load(tmp_path / "resumed" / "ledger.jsonl"))
    assert comparison.identical and comparison.last_step_a == 40, json.dumps(comparison.to_dict())[:900]
    with open_registry(tmp_path / "resumed" / "registry.sqlite") as reg:
        (run,) = reg.list_runs()
        assert run.id == fb["run_id"] and reg.get_run(run.id).status == "finished"
        steps = [s for s, _ in reg.metrics(run.id)["a"]["train"]["loss"]]
        assert steps == list(range(1, 41))  # every step once, the ones after the checkpoint re-done
        assert reg.get_run(run.id).candidates["b"].config["optimizer_groups"][0]["momentum"] == 0.9
