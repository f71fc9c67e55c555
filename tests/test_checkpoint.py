"""Exact resume in process, and every way a checkpoint can be bad."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import twinrun
from twinrun.checkpoint import find_checkpoint, list_checkpoints, plan_resume, read_checkpoint
from twinrun.engine import StepDone
from twinrun.env import capture_environment
from twinrun.errors import CheckpointError, ReproducibilityWarning
from twinrun.ledger import Ledger

STEPS = 20
pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")  # PYTHONHASHSEED


class _Crash(twinrun.Sink):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_done(self, event: StepDone) -> None:
        if event.step == self.at:
            raise RuntimeError(f"crash at step {self.at}")


def _experiment(toy):
    """Momentum SGD, AdamW, a scheduler, dropout, an augmentation: every kind of state."""
    return toy.replace(
        candidates={"small": {}, "dropout": {"model.dropout": 0.5},
                    "adam": {"optimizer": twinrun.factory(torch.optim.AdamW, lr=1e-2)}},
        scheduler=twinrun.factory(torch.optim.lr_scheduler.StepLR, step_size=5, gamma=0.5),
        steps=STEPS, checkpoint_every=4, eval_every=8,
    )


def _compare(exp, **kw):
    return twinrun.compare(exp, logdir=None, progress=False, seed_globals=True, **kw)


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def crashed(toy, tmp_path):
    """A run that crashed after step 10 (checkpoints at 4 and 8 kept), and the same run uninterrupted."""
    exp = _experiment(toy)
    full = _compare(exp, home=tmp_path / "full")
    with pytest.raises(RuntimeError, match="crash at step 10"):
        _compare(exp, home=tmp_path / "crashed", sinks=[_Crash(10)])
    run_dir = next((tmp_path / "crashed" / "runs").iterdir())
    return exp, full, run_dir


@pytest.mark.parametrize("crash_at", [6, 9, 17])  # mid-epoch; just after an evaluation; second epoch
def test_resume_equals_uninterrupted(toy, tmp_path, crash_at):
    exp = _experiment(toy)
    full = _compare(exp, home=tmp_path / "full")
    with pytest.raises(RuntimeError):
        _compare(exp, home=tmp_path / "crashed", sinks=[_Crash(crash_at)])
    run_dir = next((tmp_path / "crashed" / "runs").iterdir())
    torch.rand(3)  # the resuming process's global generators are elsewhere: the checkpoint restores them
    np.random.rand(3)
    # measuring deterministic mode's cost trains copies of the candidates: the run must not notice
    resumed = _compare(exp, home=tmp_path / "crashed", resume=run_dir, determinism_cost=crash_at == 9)
    assert resumed.run_id == run_dir.name
    assert ("determinism_cost" in resumed.reproducibility) == (crash_at == 9)
    assert resumed.reproducibility["resumed_from"]["step"] == (crash_at // 4) * 4
    a, b = Ledger.load(full.artifacts["ledger"]), Ledger.load(resumed.artifacts["ledger"])
    assert a.records == b.records  # record by record: batches, losses, weights, RNG states
    for name in full.candidates:
        assert np.array_equal(full.candidates[name].train_loss, resumed.candidates[name].train_loss)
        assert full.candidates[name].eval_history == resumed.candidates[name].eval_history
        assert torch.equal(full.candidates[name].outputs, resumed.candidates[name].outputs)
    assert full.comparisons["adam"].to_dict() == resumed.comparisons["adam"].to_dict()


def test_only_the_last_checkpoints_are_kept(crashed):
    exp, _, run_dir = crashed
    folder = run_dir / "checkpoints"
    assert [s for s, _ in list_checkpoints(folder)] == [4, 8]
    assert not list(folder.glob(".*tmp*"))  # no temporary files left behind
    (folder / ".step-00000012.ckpt.tmp-999999").write_bytes(b"half a checkpoint")  # a kill mid-write
    _compare(exp, resume=run_dir)
    assert [s for s, _ in list_checkpoints(folder)] == [16, 20] and not list(folder.glob(".*tmp*"))


def test_checkpoint_holds_what_resume_needs(crashed):
    _, _, run_dir = crashed
    ckpt = read_checkpoint(find_checkpoint(run_dir))
    assert ckpt.step == 8 and ckpt.experiment == "toy"
    state = ckpt.payload["engine"]
    assert set(state["candidates"]) == {"small", "dropout", "adam"}
    assert state["candidates"]["adam"]["optimizer"]["state"]  # AdamW moments
    assert state["candidates"]["small"]["scheduler"]["last_epoch"] == 8
    assert set(state["global_rng"]) == {"python", "numpy", "torch", "cuda"}
    assert Ledger.from_lines(ckpt.payload["ledger"].splitlines()).last_step == 8


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "body byte":
        data[-100] ^= 0xFF
        path.write_bytes(bytes(data))
    elif how == "header byte":
        data[40] ^= 0x01
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(b"PK\x03\x04 not a checkpoint")


@pytest.mark.parametrize("how,message", [
    ("truncated", "truncated"), ("body byte", "checksum"), ("header byte", "header is corrupt"),
    ("foreign", "not a twinrun checkpoint"),
])
def test_bad_checkpoint_is_refused_and_nothing_is_overwritten(crashed, how, message):
    exp, _, run_dir = crashed
    target = run_dir / "checkpoints" / "step-00000008.ckpt"
    _damage(target, how)
    before = _files(run_dir)
    with pytest.raises(CheckpointError, match=message) as info:
        _compare(exp, home=run_dir.parent.parent, resume=target)
    assert info.value.fix
    assert _files(run_dir) == before


def test_newest_bad_checkpoint_is_skipped_with_a_warning(crashed):
    _, _, run_dir = crashed
    _damage(run_dir / "checkpoints" / "step-00000008.ckpt", "truncated")
    with pytest.warns(ReproducibilityWarning, match="step-00000008.ckpt"):
        assert find_checkpoint(run_dir).name == "step-00000004.ckpt"


def test_checkpoint_of_another_experiment_is_refused(crashed, toy):
    _, _, run_dir = crashed
    before = _files(run_dir)
    with pytest.raises(CheckpointError, match="belongs to experiment 'toy', not 'other'") as info:
        _compare(_experiment(toy).replace(name="other"), resume=run_dir)
    assert "experiment 'toy'" in info.value.fix
    assert _files(run_dir) == before


def test_changed_config_is_refused_with_a_diff_unless_forced(crashed):
    exp, full, run_dir = crashed
    before = _files(run_dir)
    with pytest.raises(CheckpointError) as info:
        _compare(exp, resume=run_dir, overrides={"optimizer.lr": 0.2})
    assert "candidates.small.optimizer.kwargs.lr: 0.1 -> 0.2" in info.value.message
    assert "--force" in info.value.fix
    assert _files(run_dir) == before
    # forced: train longer than planned (the typical use); the first 20 steps are the original run's
    forced = _compare(exp, resume=run_dir, overrides={"steps": 26}, force=True)
    assert "config settings.steps: 20 -> 26" in forced.reproducibility["resumed_from"]["forced"]
    assert forced.steps == 26 and np.isfinite(forced.candidates["small"].train_loss).all()
    assert np.array_equal(forced.candidates["small"].train_loss[:STEPS], full.candidates["small"].train_loss)
    assert Ledger.load(forced.artifacts["ledger"]).last_step == 26


def test_changed_environment_is_refused_unless_forced(crashed):
    exp, _, run_dir = crashed
    env = capture_environment(code_path=exp.source.path)  # as compare() captures it
    env["torch"]["num_threads"] = env["torch"]["num_threads"] + 1
    env["packages"]["numpy"] = "0.0.1"
    with pytest.raises(CheckpointError) as info:
        plan_resume(run_dir, exp, environment=env)
    assert "torch.num_threads" in info.value.message and "packages.numpy" in info.value.message
    plan = plan_resume(run_dir, exp, environment=env, force=True)
    assert plan.step == 8 and len(plan.forced) == 2


def test_resume_of_a_run_without_checkpoints(toy, tmp_path):
    result = _compare(toy.replace(candidates={"a": {}}, steps=3), home=tmp_path)
    with pytest.raises(CheckpointError, match="holds no checkpoint") as info:
        _compare(toy, resume=result.artifacts["run_dir"])
    assert "--checkpoint-every" in info.value.fix
    with pytest.raises(CheckpointError, match="nothing to resume"):
        _compare(toy, resume=tmp_path / "missing")
    assert json.loads((Path(result.artifacts["run_dir"]) / "result.json").read_text())["steps"] == 3


def test_forcing_names_what_it_accepts_and_nothing_else(crashed):
    exp, full, run_dir = crashed
    before = _files(run_dir)
    with pytest.raises(CheckpointError) as info:  # steps is accepted, the learning rate is not
        _compare(exp, resume=run_dir, overrides={"steps": 26, "optimizer.lr": 0.2}, force=["steps"])
    assert "optimizer.kwargs.lr: 0.1 -> 0.2" in info.value.message and "settings.steps" not in info.value.message
    assert "--force optimizer.lr" in info.value.fix
    assert _files(run_dir) == before
    forced = _compare(exp, resume=run_dir, overrides={"steps": 26}, force=["steps"])
    assert forced.reproducibility["resumed_from"]["forced"] == ["config settings.steps: 20 -> 26"]


def test_a_new_checkpoint_cadence_needs_no_force_and_changes_nothing(crashed):
    exp, full, run_dir = crashed
    resumed = _compare(exp, resume=run_dir, overrides={"checkpoint_every": 3})
    assert resumed.reproducibility["resumed_from"]["forced"] == []
    for name in full.candidates:
        assert np.array_equal(resumed.candidates[name].train_loss, full.candidates[name].train_loss)
    # the new cadence (18), then the finished run's last step (20), which --extend continues from
    assert [s for s, _ in list_checkpoints(run_dir / "checkpoints")][-2:] == [18, 20]


def test_a_checkpoint_copied_into_another_run_is_refused_with_both_ids(crashed, toy, tmp_path):
    exp, _, run_dir = crashed
    other = _compare(exp.replace(steps=4), home=tmp_path / "crashed")  # run B, in the same home
    other_dir = Path(other.artifacts["run_dir"])
    [(_, path)] = list_checkpoints(other_dir / "checkpoints")[-1:]
    copied = run_dir / "checkpoints" / "step-00000099.ckpt"
    copied.write_bytes(path.read_bytes())  # B's checkpoint, newest in A's folder
    before = _files(run_dir)
    with pytest.raises(CheckpointError) as info:
        _compare(exp, resume=run_dir)
    assert f"belongs to run {other.run_id[:8]}, not to run {run_dir.name[:8]}" in info.value.message
    assert _files(run_dir) == before


def test_a_checkpoint_of_an_older_version_without_the_new_settings_still_resumes(crashed):
    """Settings added later (monitor, baselines, select_by...) absent from an older checkpoint's config, and
    left at their defaults now, are not a change of config."""
    import json

    from twinrun.checkpoint import plan_resume, read_checkpoint, write_checkpoint

    exp, full, run_dir = crashed
    step, path = list_checkpoints(run_dir / "checkpoints")[-1]
    ckpt = read_checkpoint(path)
    config = json.loads(ckpt.payload["config_json"])
    for name in ("monitor", "baselines", "select_by", "patience", "eval_batches", "eval_passes"):
        config["settings"].pop(name)
    payload = {**ckpt.payload, "config_json": json.dumps(config, sort_keys=True)}
    write_checkpoint(path, payload, ckpt.header)
    plan = plan_resume(run_dir, exp)
    assert plan.forced == []
    config["settings"]["monitor"] = True  # a setting the old run had differently is still a change
    write_checkpoint(path, {**payload, "config_json": json.dumps(config, sort_keys=True)}, ckpt.header)
    with pytest.raises(CheckpointError, match="settings.monitor: true -> false"):
        plan_resume(run_dir, exp)
