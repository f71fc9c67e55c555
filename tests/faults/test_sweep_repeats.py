"""A seed of `twinrun seeds` is the same run in every sweep (and equals `twinrun compare` with that
seed), down to the global generators' record in its ledger: fresh processes, twice."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _subprocess import HERE, child_env

from twinrun.ledger import Ledger, compare_ledgers
from twinrun.registry import Registry

pytestmark = [pytest.mark.slow, pytest.mark.faults]

TOY = str(HERE / "experiments" / "toy.py")
COMMON = ["--candidates", "small,dropout", "--set", "steps=12", "--set", "ledger_every=1"]


def _ledger(home, sweep: bool):
    if sweep:
        cmd = ["seeds", TOY, "--seeds", "1", *COMMON, "--home", str(home)]
    else:
        cmd = ["compare", TOY, *COMMON, "--seed", "0", "--home", str(home), "-q", "--no-tensorboard"]
    proc = subprocess.run([sys.executable, "-m", "twinrun", *cmd], env=child_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with Registry.open(home / "registry.sqlite") as reg:
        [run] = reg.list_runs()
        record = reg.get_run(run.id)
    return Ledger.load(home / "runs" / run.id / "ledger.jsonl"), record.result


def test_seed_0_is_the_same_run_in_two_sweeps_and_in_compare(tmp_path):
    (a, result_a), (b, result_b) = _ledger(tmp_path / "a", True), _ledger(tmp_path / "b", True)
    comparison = compare_ledgers(a, b)
    assert comparison.identical, comparison.divergence and comparison.divergence.describe()
    assert [r for r in a.at(0) if r.kind == "rng"] == [r for r in b.at(0) if r.kind == "rng"]
    direct, result_c = _ledger(tmp_path / "c", False)
    assert compare_ledgers(a, direct).identical
    for name in ("small", "dropout"):
        assert result_a["candidates"][name]["final"] == result_b["candidates"][name]["final"] \
            == result_c["candidates"][name]["final"]
