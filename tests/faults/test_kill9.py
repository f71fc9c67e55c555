"""kill -9 at many points of a run, and in a chain: the resumed run equals the uninterrupted one
(weights through the ledger, the verdict's numbers), and the registry holds every step exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from _subprocess import HERE, child_env

from twinrun.ledger import Ledger, compare_ledgers
from twinrun.registry import Registry

pytestmark = [pytest.mark.slow, pytest.mark.faults]

KILLABLE = str(HERE / "experiments" / "killable.py")
ARGS = ["--checkpoint-every", "4", "--ledger-every", "1", "--no-tensorboard", "-q", "--json"]
STEPS = 30  # killable: evaluations at 8, 16, 24, 30; 256 examples / batch 32 = 8 steps an epoch


LOADER = str(HERE / "experiments" / "loader.py")


def _twinrun(home, *extra, kill_at=None, experiment=KILLABLE):
    env = child_env(PYTHONHASHSEED="0", TWINRUN_NO_REEXEC="1")
    if kill_at is not None:
        env["TWINRUN_TEST_KILL_AT"] = str(kill_at)
    return subprocess.run([sys.executable, "-m", "twinrun", "compare", experiment, *ARGS, "--home", str(home),
                           *extra], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    home = tmp_path_factory.mktemp("full")
    proc = _twinrun(home)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), home


def _only_run(home):
    with Registry.open(home / "registry.sqlite") as reg:
        [summary] = reg.list_runs()
        return reg.get_run(summary.id), reg.metrics(summary.id)


def _assert_same(home, uninterrupted):
    full, full_home = uninterrupted
    run, metrics = _only_run(home)
    assert run.status == "finished", run.error
    result = run.result
    for name, cand in full["candidates"].items():
        assert result["candidates"][name]["final"] == cand["final"]
        assert result["candidates"][name]["eval_history"] == cand["eval_history"]
    a = Ledger.load(full_home / "runs" / full["run_id"] / "ledger.jsonl")
    b = Ledger.load(home / "runs" / run.id / "ledger.jsonl")
    comparison = compare_ledgers(a, b)
    assert comparison.identical, comparison.divergence and comparison.divergence.describe()
    _, full_metrics = _only_run(full_home)
    for cand, splits in full_metrics.items():  # every row, once, with the uninterrupted value
        for split, names in splits.items():
            for metric, rows in names.items():
                assert metrics[cand][split][metric] == rows, (cand, split, metric)


# the first step (no checkpoint yet); step 8: an evaluation, an epoch boundary and a checkpoint at once;
# the step after them; a checkpoint alone (20); the step after an evaluation (25); the final step.
# (Steps 3, 16, 17 and 21 repeated these cases at 9 s each; the chain of five kills below adds more.)
@pytest.mark.parametrize("kill_at", [1, 8, 9, 20, 25, 30])
def test_kill_9_inside_a_step_then_resume_equals_the_uninterrupted_run(kill_at, tmp_path, uninterrupted):
    killed = _twinrun(tmp_path, kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL
    run, _ = _only_run(tmp_path)
    assert run.status == "crashed"  # reaped: its process is gone
    if kill_at <= 4:  # nothing to resume from yet: the same command starts the run again
        proc = _twinrun(tmp_path)
        assert proc.returncode == 0, proc.stderr
        return
    proc = _twinrun(tmp_path, "--resume", run.id[:8])
    assert proc.returncode == 0, proc.stderr
    _assert_same(tmp_path, uninterrupted)


def test_a_chain_of_five_kills_then_resume_equals_the_uninterrupted_run(tmp_path, uninterrupted):
    killed = _twinrun(tmp_path, kill_at=6)
    assert killed.returncode == -signal.SIGKILL
    for _ in range(4):  # each process trains 5 steps (one checkpoint at least) and dies inside its 6th
        proc = _twinrun(tmp_path, "--resume", "latest", kill_at=6)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
    proc = _twinrun(tmp_path, "--resume", "latest")
    assert proc.returncode == 0, proc.stderr
    _assert_same(tmp_path, uninterrupted)


@pytest.mark.parametrize("workers,persistent", [(0, False), (2, False), (2, True)])
def test_kill_9_of_a_run_reading_a_dataloader_with_workers_then_resume_is_exact(workers, persistent, tmp_path):
    """Workers re-seed a dataset-owned generator in worker_init_fn and draw torch noise: after a
    kill in the second epoch, the resumed run replays the data and equals the uninterrupted run."""
    options = ["--set", f"loader.num_workers={workers}", "--set", f"loader.persistent_workers={persistent}"]
    full = _twinrun(tmp_path / "full", *options, experiment=LOADER)
    assert full.returncode == 0, full.stderr
    killed = _twinrun(tmp_path / "run", *options, kill_at=21, experiment=LOADER)  # 16 steps an epoch
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = _twinrun(tmp_path / "run", "--resume", "latest", experiment=LOADER)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same(tmp_path / "run", (json.loads(full.stdout), tmp_path / "full"))
