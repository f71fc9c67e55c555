"""Real processes stopped for real: Ctrl-C, SIGTERM, kill -9 of the CLI's parent, a second writer.

Every wait is on an event the run itself makes visible (a registry row's step or
status, a process's exit), never on the machine's speed; the outer timeouts only
guard against hangs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from _subprocess import HERE, child_env, wait_for

from twinrun.registry import Registry

pytestmark = [pytest.mark.slow, pytest.mark.faults]

FLAKY = str(HERE / "experiments" / "flaky.py")
# every forward sleeps 40 ms: 40 steps take ~5 s on any machine, so a signal lands mid-run
SLOW = ["--candidates", "small,wide", "--steps", "40", "--set", "model.slow_from=0",
        "--set", "model.delay=0.02", "--checkpoint-every", "1", "--no-tensorboard", "-q", "--json"]


def _cmd(*args):
    return [sys.executable, "-m", "twinrun", *map(str, args)]


def _run(home):
    with Registry.open(home / "registry.sqlite", reap=False) as reg:
        runs = reg.list_runs()
        return reg.get_run(runs[0].id) if runs else None


def _running_at(home, step):
    def check():
        try:
            run = _run(home)
        except Exception:  # noqa: BLE001 - the registry is being created
            return None
        return run if run is not None and run.status == "running" and (run.last_step or 0) >= step else None
    return check


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def _ctrl_c(cmd, home, env, *, at_step=2, what="the run training", **popen):
    """Start ``cmd`` in a process group of its own, Ctrl-C the group once the run reached ``at_step``."""
    proc = subprocess.Popen(cmd, env=env, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
    try:
        run = wait_for(_running_at(home, at_step), 300, what)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole group
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, err, run


def _final(home, *extra, env=None):
    proc = subprocess.run(_cmd("compare", FLAKY, *SLOW, "--home", home, *extra), env=env or child_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_ctrl_c_stops_at_a_step_keeps_a_checkpoint_and_the_resume_it_prints_is_exact(tmp_path):
    full = _final(tmp_path / "full")
    home = tmp_path / "home"
    env = child_env()
    env.pop("PYTHONHASHSEED", None)  # the CLI trains in a child, as for a user
    code, err, run = _ctrl_c(_cmd("compare", FLAKY, *SLOW, "--home", home), home, env, at_step=3)
    assert code == 130, err
    stopped = _run(home)
    assert stopped.status == "interrupted" and stopped.error.startswith("interrupted after step")
    step = stopped.last_step
    assert 3 <= step < 40
    assert f"checkpoint of step {step}" in err and f"step-{step:08d}.ckpt" in err
    resume_line = next(line for line in err.splitlines() if line.strip().startswith("resume:"))
    assert resume_line.split("resume:")[1].split() == [
        "twinrun", "compare", FLAKY, "--resume", run.id[:8], "--home", str(home)]
    # the printed command, as a user would paste it (the run's own options are reused)
    resumed = _final(home, "--resume", run.id[:8])
    assert resumed["run_id"] == run.id and resumed["steps"] == 40
    for name in ("small", "wide"):
        assert resumed["candidates"][name]["final"] == full["candidates"][name]["final"]
    with Registry.open(home / "registry.sqlite") as reg:
        assert reg.get_run(run.id).status == "finished"
        rows = reg.metrics(run.id, candidate="small", split="train", name="loss")["small"]["train"]["loss"]
        assert [s for s, _ in rows] == list(range(1, 41))  # every step exactly once


def test_kill_9_of_the_cli_parent_stops_its_training_child(tmp_path):
    home = tmp_path / "home"
    env = child_env()
    env.pop("PYTHONHASHSEED", None)
    parent = subprocess.Popen(_cmd("compare", FLAKY, *SLOW, "--home", home), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        run = wait_for(_running_at(home, 2), 300, "the child training")
        assert run.pid != parent.pid  # the child writes the run
        parent.kill()  # kill -9: no handler runs in the parent
        parent.wait(timeout=60)
        stopped = wait_for(lambda: (r := _run(home)).status != "running" and r, 300, "the child to stop")
        assert stopped.status == "interrupted" and "SIGTERM" in stopped.error
        wait_for(lambda: not _alive(run.pid), 120, "the child process to exit")
        assert stopped.last_step < 40  # it did not train on to the end
    finally:
        if parent.poll() is None:
            parent.kill()
        if run is not None and _alive(run.pid):
            os.kill(run.pid, signal.SIGKILL)


def test_a_resume_of_a_live_run_is_refused_naming_its_pid(tmp_path):
    home = tmp_path / "home"
    env = child_env(TWINRUN_NO_REEXEC="1")
    first = subprocess.Popen(_cmd("compare", FLAKY, *SLOW, "--home", home), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        run = wait_for(_running_at(home, 2), 300, "the first process training")
        second = subprocess.run(_cmd("compare", FLAKY, "--resume", run.id[:8], "--home", home, "-q"),
                                env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr
        assert f"being written by process {first.pid}" in second.stderr
        first.send_signal(signal.SIGTERM)  # a scheduler's stop: the same clean stop as Ctrl-C
        _, err = first.communicate(timeout=300)
        assert first.returncode == 130 and "resume:" in err
    finally:
        if first.poll() is None:
            first.kill()
    assert _run(home).status == "interrupted"
    assert (home / "runs" / run.id / "checkpoints").is_dir()


def test_a_child_started_with_sigint_ignored_still_stops_on_ctrl_c(tmp_path):
    home = tmp_path / "home"
    env = child_env()
    env.pop("PYTHONHASHSEED", None)
    ignore = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
    code, err, _ = _ctrl_c(_cmd("compare", FLAKY, *SLOW, "--home", home), home, env, preexec_fn=ignore)
    assert code == 130, err
    assert _run(home).status == "interrupted"


def test_ctrl_c_of_an_in_process_sweep_stops_its_seeds_cleanly_and_resume_finishes(tmp_path):
    """The seeds run together, step by step (``sweeps/_lockstep``): all three stop at the end of the same
    step, each recorded as interrupted with its final checkpoint; the resume finishes every one."""
    home = tmp_path / "home"
    env = child_env()
    env.pop("PYTHONHASHSEED", None)
    cmd = _cmd("seeds", FLAKY, "--seeds", "3", "--candidates", "small,wide", "--set", "steps=30",
               "--set", "model.slow_from=0", "--set", "model.delay=0.02", "--set", "checkpoint_every=1",
               "--home", home, "--resamples", "200", "-q")
    code, err, _ = _ctrl_c(cmd, home, env, what="the first seed training")
    assert code == 130, err
    assert "interrupted" in err and "--resume" in err
    with Registry.open(home / "registry.sqlite") as reg:
        [sweep] = reg.list_sweeps()
        assert sweep.status == "interrupted"
        runs = reg.list_runs(sweep_id=sweep.id)
        assert [r.status for r in runs] == ["interrupted"] * 3
        assert all(reg.artifacts(r.id, "checkpoints") for r in runs)
    resumed = subprocess.run(_cmd("seeds", "--resume", sweep.id[:8], "--home", home, "--resamples", "200", "-q"),
                             env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    with Registry.open(home / "registry.sqlite") as reg:
        assert reg.get_sweep(sweep.id).status == "finished"
