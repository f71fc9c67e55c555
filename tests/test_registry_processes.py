"""The registry under real processes: 8 concurrent writers, ``kill -9`` mid-run and
mid-transaction, and runs made under different OMP_NUM_THREADS."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _subprocess import wait_for
from conftest import TOY

import twinrun
from twinrun.registry import Registry

HERE = Path(__file__).parent
WORKER = HERE / "registry_worker.py"
# children import the twinrun under test (the working directory of a test is a temp folder)
SRC = str(Path(twinrun.__file__).resolve().parents[1])
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}

pytestmark = pytest.mark.slow


def test_eight_processes_writing_at_once_lose_nothing(tmp_path):
    path, go = tmp_path / "reg" / "registry.sqlite", tmp_path / "go"
    workers, runs, batches, batch = 8, 3, 20, 50
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), "writer", str(path), str(go), str(w),
                          str(runs), str(batches), str(batch)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CHILD_ENV)
        for w in range(workers)
    ]
    wait_for(lambda: all(Path(f"{go}.ready{w}").exists() for w in range(workers)), 240,
              "every worker to start")
    go.write_text("go")  # all start writing at the same moment
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    ids = [i for out, _ in outputs for i in out.split()]
    assert len(ids) == len(set(ids)) == workers * runs

    with Registry.open(path) as reg:
        assert reg.integrity_check() == "ok"
        assert reg.count_metrics() == workers * runs * batches * batch
        listed = reg.list_runs(limit=0)
        assert len(listed) == workers * runs and {r.status for r in listed} == {"finished"}
        for run_id in ids:
            record = reg.get_run(run_id)
            worker = int(record.name.removeprefix("worker"))
            assert record.tags == (f"w{worker}",) and len(record.notes) == 1
            metrics = reg.metrics(run_id)
            steps_a = [s for s, _ in metrics["a"]["train"]["loss"]]
            assert steps_a == list(range(1, batches * batch // 2 + 1))
            assert {v for _, v in metrics["b"]["train"]["loss"]} == {float(worker)}
            assert record.last_step == batches * batch // 2


def test_kill_9_during_training_leaves_a_crashed_run_and_its_flushed_metrics(tmp_path):
    registry = tmp_path / "registry.sqlite"
    code = (
        f"import twinrun; twinrun.compare({str(TOY)!r}, registry={str(registry)!r}, progress=False, logdir=None, "
        "candidates=['small', 'wide'], overrides={'steps': 200000, 'eval_every': 100000})"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True,
                             env=CHILD_ENV)

    def progressed():
        if child.poll() is not None:
            raise AssertionError(child.stderr.read())
        if not registry.exists():
            return None
        with Registry.open(registry, readonly=True) as reg:
            runs = reg.list_runs()
            return runs[0] if runs and (runs[0].last_step or 0) >= 300 else None

    before = wait_for(progressed, 240, "the child to flush 300 steps")
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    with Registry.open(registry) as reg:  # opening marks the dead process's run crashed
        assert reg.integrity_check() == "ok"
        run = reg.get_run(before.id)
        assert run.status == "crashed" and "ended without finishing" in (run.error or "")
        assert run.ended_at is not None and run.last_step >= before.last_step
        metrics = reg.metrics(run.id, split="train", name="loss")
        for cand in ("small", "wide"):
            steps = [s for s, _ in metrics[cand]["train"]["loss"]]
            assert steps == list(range(1, run.last_step + 1))  # every flushed step, no gap
        assert {c.status for c in run.candidates.values()} == {"crashed"}
        assert run.env is not None and run.experiment_source  # recorded at the start
    out = subprocess.run(check=False, args=[sys.executable, "-m", "twinrun", "runs", "--registry", str(registry),
                          "--status", "crashed", "--json"], capture_output=True, text=True, timeout=120,
                         env=CHILD_ENV)
    assert out.returncode == 0 and [r["id"] for r in json.loads(out.stdout)] == [before.id]


def test_kill_9_mid_transaction_never_leaves_half_a_batch(tmp_path):
    registry, ready = tmp_path / "registry.sqlite", tmp_path / "ready"
    batch = 500
    child = subprocess.Popen([sys.executable, str(WORKER), "flood", str(registry), str(ready), str(batch)],
                             stderr=subprocess.PIPE, text=True, env=CHILD_ENV)
    wait_for(lambda: ready.exists() or child.poll() is not None, 120, "the flood to start")
    assert child.poll() is None, child.stderr.read()
    time.sleep(0.7)  # writing back to back: the kill lands inside or between transactions
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    raw = sqlite3.connect(registry)  # a plain SQLite reader agrees the file is sound
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    raw.close()
    with Registry.open(registry) as reg:
        run = reg.get_run("latest")
        rows = reg.count_metrics(run.id)
        assert run.status == "crashed"
        assert rows >= 5 * batch and rows % batch == 0 and rows == run.last_step


def _twinrun(*args, env=None):
    return subprocess.run(check=False, args=[sys.executable, "-m", "twinrun", *args], capture_output=True, text=True,
                          env={**CHILD_ENV, **(env or {})}, timeout=300)


def test_runs_under_different_omp_num_threads_are_not_comparable(tmp_path):
    registry = str(tmp_path / "registry.sqlite")
    ids = []
    for threads in ("1", "2"):
        proc = _twinrun("compare", str(TOY), "--steps", "4", "--candidates", "small,wide", "--json",
                        "--no-tensorboard", "--registry", registry, env={"OMP_NUM_THREADS": threads})
        assert proc.returncode == 0, proc.stderr
        ids.append(json.loads(proc.stdout)["artifacts"]["registry_run"])
    proc = _twinrun("diff", ids[0][:8], ids[1][:8], "--registry", registry, "--json", "--check")
    assert proc.returncode == 1, proc.stderr  # --check: not comparable
    diff = json.loads(proc.stdout)
    env = {d["key"]: d for d in diff["environment"]}
    assert env["env_vars.OMP_NUM_THREADS"]["numerics"] is True
    assert (env["env_vars.OMP_NUM_THREADS"]["a"], env["env_vars.OMP_NUM_THREADS"]["b"]) == ("1", "2")
    assert env["torch.num_threads"]["numerics"] is True
    assert diff["verdict"]["comparable"] is False
    assert any("thread count" in r for r in diff["verdict"]["reasons"])
    assert diff["config"] == []  # same config: only the environment differs
    text = _twinrun("diff", ids[0], ids[1], "--registry", registry)
    assert text.returncode == 0 and "NOT COMPARABLE" in text.stdout and "OMP_NUM_THREADS" in text.stdout
