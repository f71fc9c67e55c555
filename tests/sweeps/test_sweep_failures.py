"""Sweeps under failure, with real processes: a seed that raises, a candidate that diverges on one
seed, a seed's process killed with SIGKILL, the runner stopped with SIGINT; then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from _subprocess import wait_for
from conftest import TOY

from twinrun.registry import Registry
from twinrun.sweeps import run_sweep

pytestmark = pytest.mark.slow

FLAKY = Path(__file__).parents[1] / "experiments" / "flaky.py"
# seeds long enough (a few seconds) to be caught running
LONG = ["--set", "steps=1000", "--set", "eval_every=500"]


def _registry() -> Path:
    return Path(os.environ["TWINRUN_HOME"]) / "registry.sqlite"


def _runs_by_status() -> Counter:
    if not _registry().exists():
        return Counter()
    with Registry.open(_registry(), reap=False) as reg:
        return Counter(r.status for r in reg.list_runs())


def _runs_per_seed(sweep_id: str) -> dict[int, list[str]]:
    with Registry.open(_registry()) as reg:
        out: dict[int, list[str]] = {}
        for r in reversed(reg.list_runs(sweep_id=sweep_id)):  # oldest first
            out.setdefault(r.seed, []).append(r.status)
        return out


def test_a_failing_seed_and_a_diverging_candidate_leave_the_rest_analysed():
    proc = subprocess.run(
        [sys.executable, "-m", "twinrun", "seeds", str(FLAKY), "--seeds", "4", "--jobs", "2",
         "--set", "model.fail_seed=1", "--json"], capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 1, proc.stderr  # some seeds failed; the analysis is still printed
    assert "seed 1 failed: RuntimeError: planted failure for this seed" in proc.stderr
    analysis = json.loads(proc.stdout)
    assert "NaN" not in proc.stdout
    assert analysis["sweep"]["status"] == "partial"
    assert analysis["finished"] == [0, 2, 3]
    [failed] = analysis["not_finished"]
    assert failed["seed"] == 1 and failed["status"] == "failed" and "planted failure" in failed["error"]
    # the failed seed is a failed run of the sweep, with its error, in the registry
    with Registry.open(_registry()) as reg:
        run = reg.get_run(failed["run_id"])
        assert run.status == "failed" and run.seed == 1 and run.sweep_id == analysis["sweep"]["id"]
        assert "planted failure" in run.error
    acc = analysis["metrics"]["accuracy"]
    # seed 1 is missing for everyone; 'unstable' also diverged on seed 2
    assert acc["summary"]["small"]["n"] == 3 and acc["summary"]["small"]["values"][1] is None
    assert acc["summary"]["unstable"]["n"] == 2
    assert acc["summary"]["unstable"]["values"][1] is None and acc["summary"]["unstable"]["values"][2] is None
    assert acc["comparisons"]["unstable"]["seeds_used"] == [0, 3]
    assert any("'unstable' diverged on seed 2" in n for n in analysis["notes"])
    assert acc["ensemble"]["unstable"]["seeds_used"] == [0, 3] and acc["ensemble"]["small"]["n_seeds"] == 3
    # the terminal view of the same sweep names the failure
    shown = subprocess.run([sys.executable, "-m", "twinrun", "seeds", "--show", analysis["sweep"]["id"]],
                           capture_output=True, text=True, check=False, timeout=120)
    assert shown.returncode == 1
    assert "seeds that did not finish (left out):" in shown.stdout
    assert "seed 1: failed: RuntimeError: planted failure" in shown.stdout


def test_a_killed_seed_process_does_not_sink_the_sweep_and_resume_reruns_only_it():
    cmd = [sys.executable, "-m", "twinrun", "seeds", str(TOY), "--seeds", "3", "--jobs", "2",
           "--candidates", "small,fast", *LONG]
    runner = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def first_running():
            if not _registry().exists():
                return None
            with Registry.open(_registry(), reap=False) as reg:
                running = reg.list_runs(status="running")
                return reg.get_run(running[0].id) if running else None

        victim = wait_for(first_running, 240, "the first seed's run to start")
        os.kill(victim.pid, signal.SIGKILL)  # as the kernel's OOM killer would
        _, err = runner.communicate(timeout=600)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 1, err
    assert f"seed {victim.seed} crashed" in err and "SIGKILL" in err
    sweep_id = victim.sweep_id
    per_seed = _runs_per_seed(sweep_id)
    assert per_seed[victim.seed] == ["crashed"]
    assert all(per_seed[s] == ["finished"] for s in (0, 1, 2) if s != victim.seed)

    # --resume without an id finds the unfinished sweep of this configuration; 4 seeds adds seed 3
    again = run_sweep(TOY, seeds=4, resume=True, candidates=["small", "fast"],
                      overrides=LONG[1::2], progress=False)
    assert again.sweep_id == sweep_id and again.resumed
    assert [o.seed for o in again.ran] == sorted([victim.seed, 3])
    assert again.skipped == [s for s in (0, 1, 2) if s != victim.seed]
    assert again.status == "finished" and again.plan.seeds == (0, 1, 2, 3)
    per_seed = _runs_per_seed(sweep_id)
    assert per_seed[victim.seed] == ["crashed", "finished"]
    assert all(per_seed[s] == ["finished"] for s in (0, 1, 2, 3) if s != victim.seed)
    assert again.analysis["finished"] == [0, 1, 2, 3] and again.analysis["not_finished"] == []
    with Registry.open(_registry()) as reg:
        sweep = reg.get_sweep(sweep_id)
        assert sweep.config["seeds"] == [0, 1, 2, 3] and len(sweep.config["sessions"]) == 2


def test_an_interrupted_sweep_stops_its_seeds_and_resumes_without_rerunning_finished_ones():
    # seed 0 is quick; seeds 1 and 2 take ~10 s: whatever the machine's speed, seed 0 has
    # finished and seed 1 is still running when the sweep is stopped
    cmd = [sys.executable, "-m", "twinrun", "seeds", str(FLAKY), "--seeds", "3", "--jobs", "2",
           "--candidates", "small,wide", "--set", "model.slow_from=1", "--set", "model.delay=0.15"]
    runner = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (c := _runs_by_status())["finished"] >= 1 and c["running"] >= 1, 300,
                  "one seed finished and another running")
        runner.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, err
    assert "interrupted" in err and "--resume" in err
    with Registry.open(_registry()) as reg:
        [sweep] = reg.list_sweeps()
        assert sweep.status == "interrupted"
        runs = reg.list_runs(sweep_id=sweep.id)
        # the stopped seeds recorded their interruption: nothing is left "running"
        assert {r.status for r in runs} <= {"finished", "interrupted"}
        stopped = [r for r in runs if r.status == "interrupted"]
        assert stopped and all(r.error.startswith("interrupted") for r in stopped)
    done_before = sorted(r.seed for r in runs if r.status == "finished")
    assert done_before == [0] and 1 in {r.seed for r in stopped}

    resumed = run_sweep(resume=sweep.id[:8], progress=False)  # its own configuration
    assert resumed.ok and resumed.sweep_id == sweep.id
    assert [o.seed for o in resumed.ran] == [s for s in range(3) if s not in done_before]
    assert resumed.skipped == done_before and resumed.analysis["finished"] == [0, 1, 2]
    per_seed = _runs_per_seed(sweep.id)
    for seed in range(3):
        if seed in done_before:  # finished seeds ran once
            assert per_seed[seed] == ["finished"]
        else:  # the others ran to the end now: stopped before, or not started yet
            assert per_seed[seed] in (["interrupted", "finished"], ["finished"])
    with Registry.open(_registry()) as reg:
        assert reg.get_sweep(sweep.id).status == "finished"
