"""Checks leave the caller's model, optimizer, scheduler and random state exactly as found,
and what they train on is exactly what a run trains on."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from planted import MLP, Regressor, blobs, regression, warmup_cosine
from torch import nn

import twinrun
from twinrun.checks import CheckContext
from twinrun.checks._training import shared_training
from twinrun.engine import TwinEngine


def _equal(a, b) -> bool:
    """Deep equality of state dicts: tensors by value (bit-exact), everything else by ==."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def _clone(state):
    if isinstance(state, torch.Tensor):
        return state.clone()
    if isinstance(state, dict):
        return {k: _clone(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_clone(v) for v in state)
    return state


def _user_setup():
    """A user's model, Adam (with moments) and a warm-up scheduler, a few steps into training, in eval mode."""
    gen = torch.Generator().manual_seed(5)
    (x, y), val = blobs()
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = MLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = warmup_cosine(5, 200)(optimizer)
    for _ in range(3):
        index = torch.randint(0, len(y), (32,), generator=gen)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[index]), y[index]).backward()
        optimizer.step()
        scheduler.step()
    model.eval()
    return model, optimizer, scheduler, (x, y), val


def _rng_states():
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


@pytest.mark.slow
def test_checks_leave_user_objects_and_global_rng_as_found(tmp_path):
    model, optimizer, scheduler, train, val = _user_setup()
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    rng_before = _rng_states()
    params_before = [p for p in model.parameters()]
    model_state = _clone(model.state_dict())
    optimizer_state = _clone(optimizer.state_dict())
    scheduler_state = _clone(scheduler.state_dict())
    modes = [m.training for m in model.modules()]

    report = twinrun.checks.run_checks(model=model, train=train, val=val, loss=nn.CrossEntropyLoss(), optimizer=optimizer,
                                scheduler=scheduler, outdir=tmp_path,
                                options={"overfit_batch": {"steps": 100}}, settings={"steps": 200, "batch_size": 32})
    assert len(report.results) == len(twinrun.checks.check_names())

    assert _equal(model.state_dict(), model_state)
    assert _equal(optimizer.state_dict(), optimizer_state)
    assert _equal(scheduler.state_dict(), scheduler_state)
    assert [m.training for m in model.modules()] == modes
    # the optimizer and scheduler still drive the user's very objects
    assert [p for g in optimizer.param_groups for p in g["params"]] == params_before
    assert scheduler.optimizer is optimizer
    after = _rng_states()
    assert torch.equal(rng_before[0], after[0])
    assert after[1][0] == rng_before[1][0] and np.array_equal(after[1][1], rng_before[1][1])
    assert after[1][2:] == rng_before[1][2:]
    assert after[2] == rng_before[2]


def test_the_copy_keeps_the_optimizer_state(tmp_path):
    """The checked optimizer is the user's, moments included: param_updates' first step uses them."""
    model, optimizer, _scheduler, train, val = _user_setup()
    kwargs = {"model": model, "train": train, "val": val, "loss": nn.CrossEntropyLoss(), "optimizer": optimizer,
                  "settings": {"steps": 200, "batch_size": 32}, "outdir": tmp_path, "only": "param_updates"}
    with_state = twinrun.checks.run_checks(**kwargs)["param_updates"].details["update_ratio"]
    fresh = torch.optim.Adam(model.parameters(), lr=optimizer.param_groups[0]["initial_lr"])
    without = twinrun.checks.run_checks(**{**kwargs, "optimizer": fresh})["param_updates"].details["update_ratio"]
    assert with_state.keys() == without.keys()
    assert any(abs(with_state[k] - without[k]) > 1e-9 for k in with_state)


def test_short_training_is_the_start_of_a_real_run(toy):
    """The checks' short training sees the same batches, augmentation and dropout as `twinrun compare`."""
    resolved = twinrun.spec.resolve(toy, candidates=["dropout"])
    ctx = CheckContext(TwinEngine(resolved, measure_memory=False), "dropout")
    short = shared_training(ctx, 10)
    run = TwinEngine(twinrun.spec.resolve(toy, candidates=["dropout"]), measure_memory=False).run()
    np.testing.assert_array_equal(short.losses, run.candidates["dropout"].train_loss[:10])


def test_same_seed_same_report_other_seed_other_training(tmp_path):
    def losses(seed):
        (x, y), val = blobs()
        report = twinrun.checks.run_checks(model=lambda: MLP(), train=(x, y), val=val, loss=nn.CrossEntropyLoss(),
                                    optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.1), outdir=tmp_path, only="loss_decreases", settings={"seed": seed, "steps": 100})
        return report["loss_decreases"].details["train_losses"]

    assert losses(0) == losses(0)
    assert losses(0) != losses(1)


def test_apply_bias_sets_the_prior_on_the_users_model_and_only_there(tmp_path):
    train, val = regression(offset=20.0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Regressor()
    before = _clone(model.state_dict())
    kwargs = {"model": model, "train": train, "val": val, "loss": nn.MSELoss(), "optimizer": torch.optim.Adam(model.parameters()),
                  "settings": {"steps": 100}, "outdir": tmp_path, "only": "loss_at_init"}
    first = twinrun.checks.run_checks(**kwargs, options={"loss_at_init": {"apply_bias": True}})["loss_at_init"]
    assert first.status == "warn" and first.details["final_layer"] == "body.2"
    assert first.details["bias_applied"] is True
    after = model.state_dict()
    assert after["body.2.bias"].item() == pytest.approx(float(train[1].mean()), rel=1e-5)
    assert all(torch.equal(before[k], after[k]) for k in before if k != "body.2.bias")
    # the loss at init now is what the check said the prior bias would give, and the check passes
    second = twinrun.checks.run_checks(**kwargs)["loss_at_init"]
    assert second.status == "pass"
    assert second.details["loss_at_init"] == pytest.approx(first.details["loss_with_prior_bias"], rel=1e-6)
