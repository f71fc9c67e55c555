"""Twin inside the user's own loop."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import twinrun
from toy import MLP, blobs


def _pair(seed_a: int, seed_b: int, lr_b: float = 0.1):
    torch.manual_seed(seed_a)
    a = MLP(16, dropout=0.5)
    torch.manual_seed(seed_b)
    b = MLP(16, dropout=0.5)
    return (a, torch.optim.SGD(a.parameters(), lr=0.1)), (b, torch.optim.SGD(b.parameters(), lr=lr_b))


def test_twin_shares_init_and_hands_back_the_same_objects():
    (a, opt_a), (b, opt_b) = _pair(1, 2)
    assert not torch.equal(a.fc1.weight, b.fc1.weight)
    twin = twinrun.Twin({"a": (a, opt_a), "b": (b, opt_b)}, seed=0)
    assert twin.models["a"] is a and twin.models["b"] is b
    assert torch.equal(a.fc1.weight, b.fc1.weight)
    assert sorted(twin.init.shared["b"]) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]


def test_twin_steps_each_model_on_the_batch_with_the_same_dropout():
    (train_x, train_y), (val_x, val_y) = blobs()
    twin = twinrun.Twin(dict(zip("ab", _pair(1, 2))), seed=0, metrics={"accuracy": twinrun.accuracy})
    loss_fn = nn.CrossEntropyLoss()
    for i in range(0, 160, 16):
        losses = twin.step(train_x[i:i + 16], train_y[i:i + 16], loss_fn)
        assert losses["a"] == losses["b"]  # same init, same batch, same masks, same lr
    results = twin.evaluate([(val_x, val_y)], loss_fn)
    assert results["a"] == results["b"] and 0.0 <= results["a"]["accuracy"] <= 1.0
    twin.close()


def test_twin_learning_rates_make_a_difference_and_nan_is_isolated():
    (train_x, train_y), _ = blobs()
    twin = twinrun.Twin(dict(zip("ab", _pair(1, 2, lr_b=1e9))), seed=0)
    loss_fn = nn.CrossEntropyLoss()
    for i in range(0, 256, 16):
        losses = twin.step(train_x[i:i + 16], train_y[i:i + 16], loss_fn)
    assert "b" in twin.diverged and "a" not in twin.diverged
    assert set(losses) == {"a"}


def test_twin_writes_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (train_x, train_y), _ = blobs()
    with twinrun.Twin(dict(zip("ab", _pair(1, 2, lr_b=0.3))), sinks=[twinrun.TensorBoardSink(tmp_path)]) as twin:
        for i in range(0, 64, 16):
            twin.step(train_x[i:i + 16], train_y[i:i + 16], nn.CrossEntropyLoss())
    acc = EventAccumulator(str(tmp_path / "b"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4]


def test_twin_rejects_bad_candidates():
    with pytest.raises(twinrun.errors.BuildError, match="model, optimizer"):
        twinrun.Twin({"a": (nn.Linear(2, 2),)})


@pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")
def test_twin_check_runs_the_checks_on_a_copy_and_records_them_with_the_twins_run(tmp_path):
    (train_x, train_y), (val_x, val_y) = blobs()
    sink = twinrun.registry.RegistrySink(tmp_path / "registry.sqlite", name="ab")
    twin = twinrun.Twin(dict(zip("ab", _pair(1, 2))), seed=0, sinks=[sink])
    before = {k: v.clone() for k, v in twin.models["b"].state_dict().items()}
    report = twin.check("b", (train_x, train_y), (val_x, val_y), nn.CrossEntropyLoss(), steps=50,
                        only=["loss_at_init", "param_updates", "overfit_batch"])
    assert report.statuses() == {"loss_at_init": "pass", "param_updates": "pass", "overfit_batch": "pass"}
    assert all(torch.equal(before[k], v) for k, v in twin.models["b"].state_dict().items())  # a copy was trained
    twin.step(train_x[:16], train_y[:16], nn.CrossEntropyLoss())
    twin.close()
    with twinrun.open_registry(tmp_path / "registry.sqlite") as reg:
        runs = {r.name: r for r in reg.list_runs()}
        assert set(runs) == {"ab", "b-checks"} and len(reg.checks(runs["b-checks"].id)) == 3
        config = reg.get_run(runs["ab"].id).candidates["b"].config  # what each candidate is, for `twinrun diff`
        assert config["model"].endswith("MLP") and config["optimizer"] == "torch.optim.sgd.SGD"
        assert config["optimizer_groups"][0]["lr"] == 0.1 and config["parameters"] > 0
    with pytest.raises(twinrun.errors.BuildError, match="one of: a, b"):
        twin.check("c", (train_x, train_y), (val_x, val_y), nn.CrossEntropyLoss())


def test_twin_replicas_give_a_verdict_across_replicas_with_its_scope():
    (train_x, train_y), (val_x, val_y) = blobs()

    def make(width, lr):
        def factory():
            model = MLP(width, dropout=0.2)
            return model, torch.optim.SGD(model.parameters(), lr=lr)
        return factory

    def train(seed):
        state = torch.random.get_rng_state()
        twins = twinrun.Twin.replicas({"a": make(16, 0.05), "b": make(16, 0.3)}, 4, seed=seed)
        assert torch.equal(state, torch.random.get_rng_state())  # building replicas leaves the process's generators
        for _ in range(3):
            for i in range(0, 160, 16):
                twins.step(train_x[i:i + 16], train_y[i:i + 16], nn.CrossEntropyLoss())
        return twins, twins.verdict([(val_x, val_y)], nn.CrossEntropyLoss())

    twins, verdict = train(0)
    first = [m["a"].fc1.weight for m in twins.models]
    assert not torch.equal(first[0], first[1])  # each replica its own initial weights
    assert all(sorted(t.init.shared["b"]) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
               for t in twins.twins)  # within a replica the candidates are twins
    d = verdict["b"].val["loss"]
    assert d.n == 4 and d.low <= d.mean <= d.high and "initial weights and dropout" in d.scope
    assert d.resolved and d.mean < 0  # lr 0.3 against 0.05 on an easy task: resolved, the loss lower
    _, again = train(0)
    assert again["b"].val["loss"] == d  # a function of the seed
    _, other = train(1)
    assert other["b"].val["loss"].mean != d.mean
    with pytest.raises(twinrun.errors.BuildError, match="at least 3"):
        twinrun.Twin.replicas({"a": make(16, 0.1)}, 2)
    saved = twins.state_dict()
    twins.load_state_dict(saved)
    with pytest.raises(twinrun.errors.CheckpointError, match="replicas"):
        twinrun.Twin.replicas({"a": make(16, 0.05), "b": make(16, 0.3)}, 3, seed=0).load_state_dict(saved)
