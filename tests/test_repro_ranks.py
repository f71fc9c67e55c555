"""`twinrun repro --nproc 2`: both sides under real `torchrun` (gloo, CPU), compared rank by rank."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _subprocess import HERE, child_env

RANK_NOISE = HERE / "experiments" / "rank_noise.py"
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")]


def _repro(home: Path, **env: str) -> tuple[int, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "twinrun", "repro", str(RANK_NOISE), "--nproc", "2", "--steps", "4", "--parallel",
         "--json", "-q", "--home", str(home)],
        env=child_env(PYTHONHASHSEED="0", TWINRUN_DIST_TIMEOUT_S="60", **env),
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout)


def test_two_alike_two_rank_runs_are_bit_identical_on_every_rank(tmp_path):
    code, report = _repro(tmp_path)
    assert code == 0 and report["identical"] and report["ranks"] == 2
    assert report["records_compared"] > 0


def test_a_nondeterminism_on_one_rank_is_named_with_its_rank_step_and_tensor(tmp_path):
    code, report = _repro(tmp_path, TWINRUN_TEST_NOISE_RANK="1")
    assert code == 1 and not report["identical"]
    found = report["divergence"]
    # rank 1's shard of the first batch parted first (the losses every rank averages part after it)
    assert (found["rank"], found["step"], found["kind"], found["name"]) == (1, 1, "batch", "inputs")
    assert 0 < found["max_abs_diff"] < 0.1  # noise of scale 1e-3, read from rank 1's own tensor dump
