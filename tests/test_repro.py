"""Reproducibility across fresh processes: kill -9 and resume, `twinrun repro` on planted bugs, the CLI child."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from _subprocess import HERE, child_env

import twinrun
from twinrun.checkpoint import list_checkpoints
from twinrun.ledger import Ledger

TOY = HERE / "experiments" / "toy.py"
KILLABLE = HERE / "experiments" / "killable.py"
PLANTED = HERE / "experiments" / "planted.py"

pytestmark = pytest.mark.slow


def _cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "twinrun", *map(str, args)]


def _twinrun(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_cmd(*args), capture_output=True, text=True, timeout=600, check=False,
                          env=env or child_env(PYTHONHASHSEED="0"))


def _set_order(items: list[str], hashseed: int) -> list[str]:
    """The iteration order of ``set(items)`` in a Python started with PYTHONHASHSEED=hashseed."""
    code = f"import json; print(json.dumps(list(set({items!r}))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": str(hashseed)}).stdout
    return json.loads(out)


# ---------------------------------------------------------------- kill -9 and resume
def test_kill_9_mid_epoch_and_resume_equals_uninterrupted(tmp_path):
    args = ["compare", KILLABLE, "--checkpoint-every", "4", "--json", "-q", "--no-tensorboard"]
    env = child_env(PYTHONHASHSEED="0")
    full = subprocess.Popen(_cmd(*args, "--home", tmp_path / "full"), env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = subprocess.Popen(_cmd(*args, "--home", tmp_path / "killed"), text=True,
                              env={**env, "TWINRUN_TEST_KILL_AT": "13"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    full_out, full_err = full.communicate(timeout=600)
    killed.communicate(timeout=600)
    assert full.returncode == 0, full_err
    assert killed.returncode == -signal.SIGKILL  # killed in the middle of step 13 (epochs are 16 steps)
    [run_dir] = list((tmp_path / "killed" / "runs").iterdir())
    assert not (run_dir / "ledger.jsonl").exists() and not (run_dir / "result.json").exists()
    assert [s for s, _ in list_checkpoints(run_dir / "checkpoints")] == [8, 12]

    proc = _twinrun("compare", KILLABLE, "--resume", run_dir, "--json", "-q", "--no-tensorboard",
                    "--home", tmp_path / "killed")
    assert proc.returncode == 0, proc.stderr
    resumed, uninterrupted = json.loads(proc.stdout), json.loads(full_out)
    assert resumed["reproducibility"]["resumed_from"]["step"] == 12
    assert resumed["run_id"] == run_dir.name

    a, b = Ledger.load(uninterrupted["artifacts"]["ledger"]), Ledger.load(run_dir)
    assert len(a) == len(b) > 250
    for ra, rb in zip(a, b):  # record by record
        assert ra == rb
    final = [r for r in a if r.step == 30 and r.kind == "weights"]
    assert {r.candidate for r in final} == {"small", "dropout", "adam"}  # final weights, by hash
    for name in ("small", "dropout", "adam"):
        assert resumed["candidates"][name] == uninterrupted["candidates"][name] | {
            "step_seconds": resumed["candidates"][name]["step_seconds"]}
    assert resumed["comparisons"] == uninterrupted["comparisons"]

    ledger_cli = _twinrun("ledger", run_dir, uninterrupted["artifacts"]["run_dir"])
    assert ledger_cli.returncode == 0 and f"bit-identical ({len(a)} records compared)" in ledger_cli.stdout


# ---------------------------------------------------------------- twinrun repro
def test_repro_same_seed_bit_identical_in_fresh_processes():
    proc = _twinrun("repro", TOY, "--candidates", "small,dropout", "--steps", "12", "--parallel", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["identical"] is True and report["divergence"] is None
    assert report["records_compared"] > 80
    assert "running the experiment twice" in proc.stderr  # progress lines


def test_repro_different_seed_diverges_at_init():
    report = twinrun.repro(TOY, candidates=["small"], overrides={"steps": 4}, vary="seed=3,4",
                           narrow=False, parallel=True)
    d = report.divergence
    assert not report.identical
    assert (d.step, d.candidate, d.kind, d.name) == (0, "small", "init", "fc1.weight")


def test_repro_finds_set_order_in_the_augmentation():
    orders = [_set_order(["shift", "scale"], h) for h in (0, 1)]
    assert orders[0] != orders[1], "precondition: the two hash seeds order the set differently"
    proc = _twinrun("repro", f"{PLANTED}:augment_bug", "--vary", "hashseed=0,1", "--parallel", "--json")
    assert proc.returncode == 1, proc.stderr
    d = json.loads(proc.stdout)["divergence"]
    assert (d["step"], d["candidate"], d["kind"], d["name"]) == (1, "small", "batch", "inputs")
    # (x + 0.5) * 1.5 vs x * 1.5 + 0.5: every input differs by 0.25, up to float32 rounding
    assert d["max_abs_diff"] == pytest.approx(0.25, abs=1e-5)


def test_repro_narrows_an_update_only_bug_to_its_step_and_tensor():
    names = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]  # the optimizer's set, in this order
    position = [{n: i for i, n in enumerate(_set_order(names, h))} for h in (0, 1)]
    nudge = {n: 1e-3 * (position[0][n] - position[1][n]) for n in names}
    changed = [n for n in names if nudge[n] != 0]
    assert changed, "precondition: the two hash seeds order the set differently"

    report = twinrun.repro(f"{PLANTED}:optimizer_bug", vary="hashseed=0,1", parallel=True)
    d = report.divergence
    # the loss of step 6 is computed before update 6: the ledger first sees the loss of step 7,
    # weights only every 20 steps and at the end; narrowing finds the update itself
    assert (report.narrowed_from.step, report.narrowed_from.kind) == (7, "loss")
    assert (d.step, d.candidate, d.kind, d.name) == (6, "small", "weights", changed[0])
    assert d.max_abs_diff == pytest.approx(abs(nudge[changed[0]]), rel=1e-3)
    differing = {name: diff for _, kind, name, diff in d.tensors if kind == "weights"}
    assert sorted(differing) == sorted(changed)
    assert "narrowed by reruns" in report.format()


def test_repro_finds_a_thread_count_dependent_reduction():
    report = twinrun.repro(f"{PLANTED}:threads_bug", vary="threads=1,2", parallel=True)
    d = report.divergence
    assert d is not None and d.step == 1 and d.kind in ("loss", "weights"), report.format()
    assert report.factor_differences["threads"] == (1, 2)
    assert 0 < max(diff for *_, diff in d.tensors) < 1e-3  # last-bit differences, not a bug in the math


@pytest.mark.parametrize("args,message", [
    (["--vary", "colour=red,blue"], "unknown factor 'colour'"),
    (["--vary", "threads=1"], "needs exactly two values"),
    (["--vary", "hashseed=3,3"], "varies nothing"),
    (["--set", "model.widht=3"], "widht"),
])
def test_repro_bad_input_exits_2_before_any_run(capsys, args, message):
    from twinrun.cli import main

    assert main(["repro", str(TOY), *args]) == 2  # in process: no run may start
    err = capsys.readouterr().err
    assert message in err and "fix:" in err


# ---------------------------------------------------------------- the CLI's child process
def test_cli_trains_in_a_child_with_a_fixed_hash_seed():
    env = child_env()
    env.pop("PYTHONHASHSEED", None)
    args = ("compare", TOY, "--steps", "2", "--candidates", "small", "--json", "-q", "--no-tensorboard")
    proc = _twinrun(*args, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["reproducibility"]["factors"]["env"]["PYTHONHASHSEED"] == "0"
    proc = _twinrun(*args, env={**env, "TWINRUN_NO_REEXEC": "1"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["reproducibility"]["factors"]["env"]["PYTHONHASHSEED"] is None
    assert "PYTHONHASHSEED is not set" in proc.stderr

# Ctrl-C reaching the training child: tests/faults/test_interrupts.py (synchronised on registry rows)


NONDET = str(HERE / "experiments" / "nondeterministic.py")


def test_repro_times_reports_zero_spread_on_cpu_and_a_spread_when_nondeterminism_is_planted(tmp_path):
    from twinrun.proof._times import repeat

    alike = repeat(NONDET, 3, overrides={"augment.planted": False}, home=tmp_path, parallel=True)
    assert alike.identical and alike.identical_ledgers == 2
    assert {(s.candidate, s.metric) for s in alike.spreads} == {("base", "loss"), ("base", "accuracy")}
    assert all(s.sd == 0.0 for s in alike.spreads)
    assert "every run bit-identical" in alike.format() and "would buy nothing" in alike.format()
    planted = repeat(NONDET, 3, home=tmp_path, parallel=True)
    loss = next(s for s in planted.spreads if s.metric == "loss")
    assert not planted.identical and loss.sd > 0 and len(set(loss.values)) > 1
    assert "no sweep of this experiment" in planted.format()


@pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")
def test_repro_times_sets_the_spread_against_the_seed_spread_of_a_sweep(tmp_path):
    from twinrun.proof._times import repeat
    from twinrun.sweeps import run_sweep

    run_sweep(NONDET, seeds=3, execution="inprocess", home=tmp_path, progress=False,
              overrides={"augment.planted": False})
    report = repeat(NONDET, 2, home=tmp_path, parallel=True)
    loss = next(s for s in report.spreads if s.metric == "loss")
    assert report.sweep is not None and loss.seeds == 3 and loss.seed_sd > 0
    assert loss.fraction_of_seed_sd == pytest.approx(loss.sd / loss.seed_sd)
    assert "of the seed sd" in report.format()
    data = report.to_dict()
    assert data["spreads"][0]["seeds"] == 3
    from twinrun.registry import Registry

    with Registry.open(tmp_path / "registry.sqlite") as store:  # an open registry: used, and left open
        assert store.seed_spread("nondeterministic")[0] == report.sweep
        assert repeat(NONDET, 2, home=tmp_path / "elsewhere", registry=store).sweep == report.sweep
        assert store.count_runs() >= 3
    alone = repeat(NONDET, 2, home=tmp_path, registry=False)  # False: no comparison, as everywhere
    assert alone.sweep is None and all(s.seeds == 0 for s in alone.spreads)


def test_repro_times_bad_input(capsys):
    from twinrun.cli import main

    assert main(["repro", NONDET, "--times", "1"]) == 2
    assert "a spread needs at least 2 runs" in capsys.readouterr().err
    assert main(["repro", NONDET, "--times", "3", "--vary", "seed"]) == 2
    assert "--times and --vary" in capsys.readouterr().err
    assert main(["repro", NONDET, "--vary", "device"]) == 2
    assert "--vary device needs two devices" in capsys.readouterr().err
