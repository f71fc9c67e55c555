"""Dumb baselines beside every verdict: the prior and a linear model, trained on the candidates' batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _sinks import StopAt
from torch import nn

import twinrun
from twinrun._interrupt import StopRequest
from twinrun.cli import main
from twinrun.engine import TwinEngine
from twinrun.errors import ConfigError, Interrupted
from twinrun.spec import resolve

# the library warns once per process when PYTHONHASHSEED is not fixed; these tests do not depend on it
pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")

CANDS = ["small", "wide"]


def _engine(toy, **overrides):
    return TwinEngine(resolve(toy, {"steps": 12, **overrides}, candidates=CANDS))


def test_the_prior_is_the_smoothed_class_frequency_of_the_trained_batches(toy):
    engine = _engine(toy)
    result = engine.run()
    counts = torch.zeros(3, dtype=torch.float64)
    for step in range(1, 13):
        counts += torch.bincount(engine.data.train_batch(step)[1], minlength=3).double()
    share = (counts + 0.5) / (counts.sum() + 1.5)
    targets = torch.cat([y for _, y in engine.val.batches])
    expected = float(-share.log()[targets].mean())
    prior = result.baselines["scores"]["prior"]
    assert prior["loss"] == pytest.approx(expected, rel=1e-6)
    majority = int(share.argmax())
    assert prior["accuracy"] == pytest.approx(float((targets == majority).double().mean()))


def test_the_linear_baseline_is_a_hand_written_loop_on_the_reference_batches(toy):
    engine = _engine(toy)
    engine.run()
    with engine.streams.isolated("baseline", 0):
        layer = nn.Linear(8, 3)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    for step in range(1, 13):
        batches, assignment = engine.prepared_batches(step)  # the reference's augmented batch
        x, y = batches[assignment["small"]]
        loss = nn.functional.cross_entropy(layer(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(engine.baselines.linear.layer.weight, layer.weight)
    assert torch.equal(engine.baselines.linear.layer.bias, layer.bias)


def test_baselines_change_no_candidate_number_and_no_global_generator(toy):
    torch.manual_seed(11)
    before = torch.random.get_rng_state()
    on = _engine(toy).run()
    assert torch.equal(torch.random.get_rng_state(), before)
    off = _engine(toy, baselines=False).run()
    for name in CANDS:
        assert np.array_equal(on.candidates[name].train_loss, off.candidates[name].train_loss)
        assert on.candidates[name].final == off.candidates[name].final
    assert off.baselines == {} and "baselines" not in off.timing



def test_a_resumed_run_gets_the_very_same_baselines(toy):
    whole = _engine(toy).run()
    stop = StopRequest()
    first = TwinEngine(resolve(toy, {"steps": 12}, candidates=CANDS), sinks=[StopAt(stop, 5)], stop=stop)
    with pytest.raises(Interrupted):
        first.run()
    state = first.state_dict()
    second = _engine(toy)
    second.load_state_dict(state)
    resumed = second.run()
    assert resumed.baselines == whole.baselines


def test_each_candidate_is_placed_against_the_baselines(toy):
    r = _engine(toy).run()
    above = r.baselines["above"]
    assert set(above) == set(CANDS) and set(above["small"]) == {"prior", "linear"}
    d = above["wide"]["linear"]["accuracy"]
    assert d["n"] == r.candidates["wide"].per_example["accuracy"].size == 128
    assert d["low"] <= d["diff"] <= d["high"]
    assert d["diff"] == pytest.approx(r.candidates["wide"].final["accuracy"]
                                      - r.baselines["scores"]["linear"]["accuracy"], abs=1e-9)
    assert "this validation set" in d["scope"]


class TokenNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.embed(x))


def tokens():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 10, (96,), generator=g)
    return (x[:64], x[:64] % 3), (x[64:], x[64:] % 3)


def test_a_baseline_that_does_not_apply_is_left_out_with_its_reason():
    exp = twinrun.Experiment(name="tokens", data=tokens, model=TokenNet, optimizer=twinrun.factory(
        torch.optim.SGD, lr=0.1), loss=nn.CrossEntropyLoss, metrics={"accuracy": twinrun.accuracy},
        steps=4, batch_size=16, reference_scores={"accuracy": 0.9})
    r = TwinEngine(resolve(exp)).run()
    assert set(r.baselines["scores"]) == {"prior"}
    assert "not a float tensor" in r.baselines["skipped"]["linear"]
    assert r.baselines["declared"] == {"accuracy": 0.9}
    with pytest.raises(ConfigError, match=r"reference_scores\['top5'\]"):
        exp.replace(reference_scores={"top5": 0.9})


def test_the_verdict_table_and_json_carry_them(toy, capsys, monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")  # in this process: capsys sees the output
    assert main(["compare", toy.source.path, "--candidates", "small,wide", "--set", "steps=6",
                 "--no-tensorboard", "--no-registry"]) == 0
    out = capsys.readouterr().out
    assert "baselines (trained on the same batches; this validation set): prior loss" in out
    assert "Δ accuracy vs the linear baseline: small " in out
    assert main(["compare", toy.source.path, "--candidates", "small,wide", "--set", "steps=6",
                 "--no-tensorboard", "--no-registry", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["baselines"]["scores"]) == {"prior", "linear"}
