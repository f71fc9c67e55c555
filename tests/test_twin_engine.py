"""The twin invariants: twin = solo, shared init, same batches, isolated in-step randomness."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import twinrun
from twinrun.engine import BatchPrepared, StepDone, TwinEngine
from twinrun.spec import resolve


def _train(experiment, candidates=None, overrides=None, sinks=()):
    engine = TwinEngine(resolve(experiment, overrides, candidates=candidates), sinks=sinks)
    result = engine.run()
    weights = {
        n: {k: v.detach().clone() for k, v in s.model.state_dict().items()} for n, s in engine.states.items()
    }
    return result, weights


def test_twin_equals_solo_bit_identical(toy):
    twin_result, twin_weights = _train(toy)
    for name in toy.candidates:
        solo_result, solo_weights = _train(toy, candidates=[name])
        solo, twin = solo_result.candidates[name], twin_result.candidates[name]
        # losses of every step, validation outputs and final weights: bit for bit
        assert np.array_equal(solo.train_loss, twin.train_loss), name
        assert torch.equal(solo.outputs, twin.outputs), name
        assert solo.final == twin.final, name
        for key, value in twin_weights[name].items():
            assert torch.equal(value, solo_weights[name][key]), (name, key)


def test_candidates_actually_differ(toy):
    result, _ = _train(toy)
    losses = {n: c.train_loss for n, c in result.candidates.items()}
    assert not np.array_equal(losses["small"], losses["wide"])
    assert not np.array_equal(losses["small"], losses["fast"])


def test_shared_init_report_from_actual_values(toy):
    engine = TwinEngine(resolve(toy))
    report = engine.init
    # same architecture: everything shared
    assert sorted(report.shared["fast"]) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
    # deep shares fc1/fc2 with small by name and shape; its extra layer is its own
    assert sorted(report.shared["deep"]) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
    assert sorted(report.own["deep"]) == ["mid.bias", "mid.weight"]
    # wide has other shapes, except the output bias (one value per class)
    assert report.shared["wide"] == ["fc2.bias"]
    models = {n: s.model for n, s in engine.states.items()}
    assert torch.equal(models["deep"].fc1.weight, models["small"].fc1.weight)
    assert torch.equal(models["wide"].fc2.bias, models["small"].fc2.bias)
    assert report.groups["fc1.weight"] == [["small", "dropout", "deep", "fast"]]


def test_share_init_off_keeps_construction_identity_only(toy):
    engine = TwinEngine(resolve(toy, {"share_init": False}))
    assert engine.init.shared["wide"] == []  # fc2.bias is no longer copied across widths
    # deep builds fc1 and fc2 before its extra layer: equal by construction from the init stream
    assert sorted(engine.init.shared["deep"]) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
    assert sorted(engine.init.shared["fast"]) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]


class _Recorder(torch.nn.Module):
    """A model that remembers every training input it is given."""

    seen: dict[int, list[torch.Tensor]] = {}

    def __init__(self, tag: int = 0, width: int = 8) -> None:
        super().__init__()
        self.tag = tag
        self.fc = torch.nn.Linear(8, 3)
        _Recorder.seen[tag] = []

    def forward(self, x):
        if self.training and torch.is_grad_enabled():
            _Recorder.seen[self.tag].append(x.detach().clone())
        return self.fc(x)


def test_every_candidate_sees_the_same_augmented_batches(toy):
    exp = toy.replace(candidates={
        "a": {"model": twinrun.factory(_Recorder, tag=1)},
        "b": {"model": twinrun.factory(_Recorder, tag=2), "optimizer.lr": 0.01},
    })
    batches = []

    class Spy(twinrun.Sink):
        def on_batch_prepared(self, event: BatchPrepared) -> None:
            batches.append(event.batches[event.assignment["a"]][0].clone())

    _train(exp, sinks=[Spy()])
    a, b = _Recorder.seen[1], _Recorder.seen[2]
    assert len(a) == len(b) == toy.steps == len(batches)
    for step in range(toy.steps):
        assert torch.equal(a[step], b[step])
        assert torch.equal(a[step], batches[step])
    assert not torch.equal(a[0], a[1])


def test_augmentation_runs_once_per_batch_per_distinct_augmentation(toy):
    calls: list[float] = []

    def counting(inputs, targets, *, generator, scale=0.1):
        calls.append(scale)
        return inputs + scale * torch.randn(inputs.shape, generator=generator), targets

    exp = toy.replace(augment=twinrun.factory(counting, scale=0.1), candidates={
        "a": {}, "b": {"model.width": 32}, "c": {"augment.scale": 0.5},
    })
    _train(exp)
    preflight = 3  # each candidate's augmentation is tried once on 2 examples before training
    assert len(calls) - preflight == 2 * exp.steps  # one call per step for scale 0.1, one for 0.5
    assert calls[preflight:].count(0.1) == exp.steps


def test_same_architecture_gets_same_dropout_masks(toy):
    exp = toy.replace(candidates={"a": {"model.dropout": 0.5}, "b": {"model.dropout": 0.5}})
    result, weights = _train(exp)
    assert np.array_equal(result.candidates["a"].train_loss, result.candidates["b"].train_loss)
    for key in weights["a"]:
        assert torch.equal(weights["a"][key], weights["b"][key])


def test_stray_global_draws_do_not_change_training(toy):
    exp = toy.replace(candidates={"d": {"model.dropout": 0.5}})
    clean, _ = _train(exp)

    class Stray(twinrun.Sink):
        def on_step_done(self, event: StepDone) -> None:
            torch.rand(7)
            np.random.rand(3)
            random.random()

    noisy, _ = _train(exp, sinks=[Stray()])
    assert np.array_equal(clean.candidates["d"].train_loss, noisy.candidates["d"].train_loss)


def test_library_leaves_global_rng_untouched(toy):
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone())
    _train(toy.replace(candidates={"d": {"model.dropout": 0.5}}))
    after = (random.getstate(), np.random.get_state()[1], torch.get_rng_state())
    assert before[0] == after[0]
    assert np.array_equal(before[1], after[1])
    assert torch.equal(before[2], after[2])


def test_same_seed_same_run_different_seed_different_run(toy):
    exp = toy.replace(candidates={"d": {"model.dropout": 0.5}})
    a, _ = _train(exp)
    b, _ = _train(exp)
    c, _ = _train(exp, overrides={"seed": 4})
    assert np.array_equal(a.candidates["d"].train_loss, b.candidates["d"].train_loss)
    assert not np.array_equal(a.candidates["d"].train_loss, c.candidates["d"].train_loss)


class _Explodes(torch.nn.Module):
    def __init__(self, at: int = 5) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 3)
        self.calls = 0
        self.at = at

    def forward(self, x):
        if self.training and torch.is_grad_enabled():
            self.calls += 1
            if self.calls >= self.at:
                return self.fc(x) * float("nan")
        return self.fc(x)


def test_nan_candidate_is_isolated(toy):
    exp = toy.replace(candidates={"good": {}, "bad": {"model": twinrun.factory(_Explodes, at=5)}})
    events = []

    class Spy(twinrun.Sink):
        def on_candidate_diverged(self, event) -> None:
            events.append(event)

    result, _ = _train(exp, sinks=[Spy()])
    bad, good = result.candidates["bad"], result.candidates["good"]
    assert bad.status == "diverged" and bad.diverged_at == 5
    assert [(e.candidate, e.step) for e in events] == [("bad", 5)]
    assert np.isnan(bad.train_loss[4]) and np.all(np.isnan(bad.train_loss[5:]))
    assert good.status == "finished" and np.all(np.isfinite(good.train_loss))
    solo, _ = _train(exp, candidates=["good"])
    assert np.array_equal(solo.candidates["good"].train_loss, good.train_loss)
    assert result.comparisons["bad"].val == {}  # no validation verdict for a diverged candidate


def test_only_one_candidates_activations_alive_at_a_time(toy):
    result, _ = _train(toy)
    mem = result.memory
    assert set(mem["activation_live_at_candidate_start"].values()) == {0}
    assert mem["activation_peak_bytes"] == max(mem["activation_peak_by_candidate"].values())
    assert mem["activation_sum_of_candidates"] > mem["activation_peak_bytes"]


def test_eval_schedule_and_final_outputs(toy):
    result, _ = _train(toy)
    steps = [s for s, _ in result.candidates["small"].eval_history]
    assert steps == [0, 8, 16, 24]
    assert result.candidates["small"].outputs.shape == (128, 3)
    assert result.val_targets.shape == (128,)
    per_example = result.candidates["small"].per_example
    assert per_example["accuracy"].shape == (128,)
    assert result.candidates["small"].final["loss"] == pytest.approx(per_example["loss"].mean())


def test_per_example_loss_matches_batch_loss(toy):
    result, _ = _train(toy, candidates=["small"])
    engine = TwinEngine(resolve(toy, candidates=["small"]))
    x, y = engine.val.batches[0]
    model = engine.states["small"].model.eval()
    with torch.no_grad():
        out = model(x)
        per = engine.eval_losses["small"](out, y)
        assert per.shape == (len(y),)
        assert per.mean().item() == pytest.approx(torch.nn.functional.cross_entropy(out, y).item(), rel=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_twin_equals_solo_on_cuda(toy):
    exp = toy.replace(device="cuda", candidates={"small": {}, "dropout": {"model.dropout": 0.5}, "deep": {}})
    twin, _ = _train(exp)
    for name in exp.candidates:
        solo, _ = _train(exp, candidates=[name])
        assert np.array_equal(solo.candidates[name].train_loss, twin.candidates[name].train_loss), name
