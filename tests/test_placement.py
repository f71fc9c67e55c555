"""Candidates spread over devices in one process (``devices``): the rule, the waves, the run, bad input.

This machine has no GPU, so a run spread over two real devices is in ``benchmarks/gpu_truths.py``. Here:
the placement rule on device names; the waves the sequential executor steps several devices in,
against one candidate after another, bit for bit; a real run over two device names of the CPU
(``cpu`` and ``cpu:0``: separate places to the engine, one memory to torch), which goes through every
part of a spread run (batches copied to a candidate's device, evaluation there, the report, the
registry) and must give the numbers of a run on one device.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import vectorised as V  # tests/experiments is on the path (conftest.py)
from torch import nn

import twinrun
from twinrun.cli import main
from twinrun.engine import TwinEngine
from twinrun.engine._distributed import World
from twinrun.engine._executor import SequentialExecutor
from twinrun.engine._placement import place, resolve_placement
from twinrun.errors import ConfigError
from twinrun.spec import Settings, resolve

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")

CUDA = [torch.device(f"cuda:{i}") for i in range(4)]  # device names: nothing here touches CUDA


def _run(experiment, executor=None, **overrides):
    engine = TwinEngine(resolve(experiment, {"ledger_every": None, **overrides}), executor=executor)
    return engine.run(), engine


def _same(a, b):
    for name, mine in a.candidates.items():
        theirs = b.candidates[name]
        assert np.array_equal(mine.train_loss, theirs.train_loss, equal_nan=True), name
        for key, values in mine.train_metrics.items():
            assert np.array_equal(values, theirs.train_metrics[key], equal_nan=True), (name, key)
        assert np.array_equal(mine.per_example["loss"], theirs.per_example["loss"]), name
        assert mine.diverged_at == theirs.diverged_at, name


def test_no_more_candidates_than_devices_gives_each_its_own():
    models = {n: nn.Linear(2, 2) for n in "abc"}
    assert place(list(models), models, CUDA) == {"a": CUDA[0], "b": CUDA[1], "c": CUDA[2]}


def test_more_candidates_than_devices_keeps_an_architecture_together():
    small, wide = (lambda: nn.Linear(4, 2)), (lambda: nn.Linear(4, 8))
    models = {"s1": small(), "w1": wide(), "s2": small(), "w2": wide(), "s3": small(), "w3": wide()}
    placed = place(list(models), models, CUDA[:2])
    assert list(placed) == list(models)  # the candidates' own order
    assert {placed[n] for n in ("s1", "s2", "s3")} == {CUDA[0]}
    assert {placed[n] for n in ("w1", "w2", "w3")} == {CUDA[1]}
    # five over two: slices of 3 and 2, the first architecture's candidates first
    five = {k: models[k] for k in ("s1", "w1", "s2", "w2", "s3")}
    placed = place(list(five), five, CUDA[:2])
    assert [placed[n] for n in ("s1", "s2", "s3")] == [CUDA[0]] * 3
    assert [placed[n] for n in ("w1", "w2")] == [CUDA[1]] * 2


def test_waves_are_one_after_another_bit_for_bit(toy):
    # dropout, augmentation, a candidate that diverges mid-run: waves change when work is queued, not the numbers
    exp = toy.replace(candidates={**toy.candidates, "unstable": {"optimizer.lr": 1e4}})
    for clip in (None, 1.0):
        plain, _ = _run(exp, SequentialExecutor(), grad_clip=clip)
        waves, _ = _run(exp, SequentialExecutor(overlap=True), grad_clip=clip)
        assert (plain.candidates["unstable"].diverged_at is None) == (clip is not None)
        _same(plain, waves)


class _BreaksAt(nn.Module):
    """A user's model that raises in its fifth training forward."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 3)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += self.training
        if self.calls == 5:
            raise RuntimeError("planted failure")
        return self.fc(x)


def test_a_candidate_that_raises_in_a_wave_stops_alone(toy):
    exp = toy.replace(candidates={"small": {}, "broken": {"model": _BreaksAt}})
    plain, _ = _run(exp, SequentialExecutor())
    waves, _ = _run(exp, SequentialExecutor(overlap=True))
    assert waves.candidates["broken"].diverged_at == plain.candidates["broken"].diverged_at == 5
    assert "planted failure" in (waves.candidates["broken"].error or "")
    _same(plain, waves)


def test_a_run_over_two_device_names_equals_a_run_on_one(toy):
    one, _ = _run(toy)
    spread, engine = _run(toy, devices="cpu,cpu:0")
    assert engine.placement.spread and spread.device == "cpu,cpu:0"
    # small, dropout and fast share an architecture: kept together; wide and deep take the second device
    where = {n: str(engine.placement.device_of(n)) for n in toy.candidates}
    assert where == {"small": "cpu", "dropout": "cpu", "fast": "cpu", "wide": "cpu:0", "deep": "cpu:0"}
    report = engine.execution_report()
    assert report["small"].endswith("; on cpu") and report["wide"].endswith("; on cpu:0")
    _same(one, spread)


def test_a_mapping_places_the_named_candidates(toy):
    spread, engine = _run(toy, devices={"wide": "cpu:0"})
    assert engine.placement.device_of("wide") == torch.device("cpu:0")
    assert engine.placement.device_of("small") == torch.device("cpu")
    _same(_run(toy)[0], spread)


def test_bad_devices_are_named_with_the_fix(toy):
    with pytest.raises(ConfigError, match="'nobody'.*not a candidate"):
        _run(toy, devices={"nobody": "cpu"})
    # a mapping written for the whole experiment holds when only some candidates run
    engine = TwinEngine(resolve(toy, {"devices": {"wide": "cpu:0", "deep": "cpu:0"}}, candidates=["small", "deep"]))
    assert engine.placement.device_of("deep") == torch.device("cpu:0")
    with pytest.raises(ConfigError, match="device='cpu:0' is not one of devices"):
        _run(toy, device="cpu:0", devices="cpu,cpu")
    for bad in ("", "gpu:0", ["cpu", 3], 5):
        with pytest.raises(ConfigError, match="devices"):
            Settings(devices=bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_cuda_devices_on_a_machine_without_cuda_are_refused_before_training(toy):
    with pytest.raises(ConfigError, match="CUDA is not available"):
        _run(toy, devices="cuda:0,cuda:1")
    models = {"a": nn.Linear(2, 2)}
    auto = resolve_placement(Settings(devices="auto"), models, torch.device)
    assert auto.of == {"a": torch.device("cpu")} and not auto.spread  # auto: every GPU, none here: device


def test_spread_candidates_under_torchrun_are_refused(toy):
    with pytest.raises(ConfigError, match="under torchrun"):
        TwinEngine(resolve(toy, {"devices": "cpu,cpu:0"}), world=World(rank=0, size=2, local_rank=0))


def test_the_command_line_takes_devices_and_records_them(toy, capsys, monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")  # in this process: capsys sees the output
    assert main(["compare", toy.source.path, "--candidates", "small,wide", "--steps", "6",
                 "--devices", "cpu,cpu:0", "--no-tensorboard", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"] == "cpu,cpu:0"
    assert out["execution"]["wide"].endswith("; on cpu:0")
    with twinrun.open_registry() as registry:
        (summary,) = registry.list_runs()
        run = registry.get_run(summary.id)
        assert run.device == "cpu,cpu:0" and run.config["settings"]["devices"] == "cpu,cpu:0"


class _Crash(twinrun.Sink):
    def on_step_done(self, event) -> None:
        if event.step == 7:
            raise RuntimeError("crash at step 7")


def test_a_spread_run_resumes_bit_for_bit(toy, tmp_path):
    exp = toy.replace(candidates={"small": {}, "adam": {"optimizer": twinrun.factory(torch.optim.AdamW, lr=1e-2)}},
                      devices="cpu,cpu:0", steps=12, checkpoint_every=4)
    run = dict(logdir=None, progress=False, seed_globals=True)
    full = twinrun.compare(exp, home=tmp_path / "full", **run)
    with pytest.raises(RuntimeError, match="crash at step 7"):
        twinrun.compare(exp, home=tmp_path / "crashed", sinks=[_Crash()], **run)
    run_dir = next((tmp_path / "crashed" / "runs").iterdir())
    resumed = twinrun.compare(exp, home=tmp_path / "crashed", resume=run_dir, **run)
    assert resumed.reproducibility["resumed_from"]["step"] == 4
    _same(full, resumed)
    assert resumed.execution["adam"].endswith("; on cpu:0")


def test_same_architecture_candidates_spread_over_devices_are_still_batched():
    exp = V.experiment(n=8, steps=12)
    one, _ = _run(exp)
    spread, engine = _run(exp, devices="cpu,cpu:0")
    assert [str(engine.placement.device_of(f"c{i}")) for i in range(8)] == ["cpu"] * 4 + ["cpu:0"] * 4
    assert spread.execution["c7"].startswith("vectorised with") and spread.execution["c7"].endswith("; on cpu:0")
    _same(one, spread)


def test_a_batched_group_over_two_names_of_one_device_shares_its_batch():
    # BatchNorm and convolutions: a group fed copies of the batch (not the batch itself) would sum in another order
    exp = V.experiment(model=twinrun.factory(V.CNN, batchnorm=True), data_fn=V.images, n=4, steps=6,
                       executor="vectorised")
    one, _ = _run(exp)
    spread, engine = _run(exp, devices="cpu,cpu:0")
    assert engine.placement.spread and spread.execution["c3"].startswith("vectorised with 4")
    _same(one, spread)
