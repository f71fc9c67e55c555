"""Your own loop with `Twin`: the paired verdict, exact resume of the loop, and bad input named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import twinrun
from twinrun.errors import BuildError, CheckpointError


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


def _models():
    torch.manual_seed(1)
    a = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    b = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    return {"a": (a, torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9)),
            "b": (b, torch.optim.Adam(b.parameters(), lr=1e-2))}


def _loop(twin, x, y, start, stop, generator):
    """A user's loop: shuffles with its own generator every epoch of 4 batches."""
    for step in range(start, stop):
        if step % 4 == 0:
            order = torch.randperm(256, generator=generator)
        batch = order[(step % 4) * 64:(step % 4 + 1) * 64]
        twin.step(x[batch], y[batch], nn.functional.cross_entropy)
    return order


def test_a_resumed_loop_equals_an_uninterrupted_one_bit_for_bit(tmp_path):
    x, y = _data()
    whole = twinrun.Twin(_models(), seed=3)
    _loop(whole, x, y, 0, 12, torch.Generator().manual_seed(5))

    first = twinrun.Twin(_models(), seed=3)
    g = torch.Generator().manual_seed(5)
    order = _loop(first, x, y, 0, 6, g)
    torch.save(first.state_dict(user={"generator": g.get_state(), "order": order}), tmp_path / "twin.pt")

    again = twinrun.Twin(_models(), seed=3)  # fresh models, as after a restart
    user = again.load_state_dict(torch.load(tmp_path / "twin.pt", weights_only=False))
    g2 = torch.Generator()
    g2.set_state(user["generator"])
    for step in range(6, 12):  # the loop continues mid-epoch with the saved order
        if step % 4 == 0:
            user["order"] = torch.randperm(256, generator=g2)
        batch = user["order"][(step % 4) * 64:(step % 4 + 1) * 64]
        again.step(x[batch], y[batch], nn.functional.cross_entropy)
    for name in ("a", "b"):
        for p, q in zip(whole.models[name].parameters(), again.models[name].parameters()):
            assert torch.equal(p, q)
    assert again.step_count == 12


def test_the_paired_verdict_is_the_per_example_t_interval(tmp_path):
    x, y = _data()
    twin = twinrun.Twin(_models(), seed=0, metrics={"accuracy": twinrun.accuracy})
    _loop(twin, x, y, 0, 8, torch.Generator().manual_seed(1))
    val = [(x[i:i + 64], y[i:i + 64]) for i in range(0, 256, 64)]
    verdict = twin.verdict(val, nn.functional.cross_entropy)
    d = verdict["b"].val["loss"]
    la, lb = (np.concatenate([nn.functional.cross_entropy(twin.models[n].eval()(xb), yb, reduction="none")
                              .detach().numpy() for xb, yb in val]) for n in ("a", "b"))
    ci = stats.ttest_rel(lb, la).confidence_interval()
    assert (d.low, d.high) == pytest.approx((ci.low, ci.high), rel=1e-6) and d.n == 256
    assert "these trained weights on this validation set" in d.scope and set(verdict["b"].val) == {"loss", "accuracy"}


def test_bad_input_names_the_candidate_and_the_fix():
    a = nn.Linear(3, 2)
    b = nn.Linear(3, 2)
    with pytest.raises(BuildError, match="'a' and 'b' are the same model object"):
        twinrun.Twin({"a": (a, torch.optim.SGD(a.parameters(), lr=0.1)), "b": (a, torch.optim.SGD(a.parameters(), lr=0.1))})
    with pytest.raises(BuildError, match="'b': its optimizer does not update"):
        twinrun.Twin({"a": (a, torch.optim.SGD(a.parameters(), lr=0.1)), "b": (b, torch.optim.SGD(a.parameters(), lr=0.1))})
    twin = twinrun.Twin({"a": (a, torch.optim.SGD(a.parameters(), lr=0.1))})
    other = nn.Linear(4, 2)
    with pytest.raises(CheckpointError, match="candidates \\['a'\\], this Twin has \\['z'\\]"):
        twinrun.Twin({"z": (other, torch.optim.SGD(other.parameters(), lr=0.1))}).load_state_dict(twin.state_dict())
    with pytest.raises(CheckpointError, match="'a': the saved state does not fit"):
        twinrun.Twin({"a": (other, torch.optim.SGD(other.parameters(), lr=0.1))}).load_state_dict(twin.state_dict())


def test_a_checkpoint_sink_writes_the_twin_and_a_fresh_twin_resumes_from_it(tmp_path):
    from twinrun.checkpoint import CheckpointSink, list_checkpoints, read_checkpoint

    x, y = _data()
    whole = twinrun.Twin(_models(), seed=3)
    _loop(whole, x, y, 0, 8, torch.Generator().manual_seed(5))
    sink = CheckpointSink(tmp_path / "ckpt", every=4)
    first = twinrun.Twin(_models(), seed=3, sinks=[sink])
    _loop(first, x, y, 0, 4, torch.Generator().manual_seed(5))  # one epoch: the loop's order starts anew at 4
    step, path = list_checkpoints(tmp_path / "ckpt")[-1]
    assert step == 4
    again = twinrun.Twin(_models(), seed=3)
    again.load_state_dict(read_checkpoint(path).payload)  # verified file, torch.load(weights_only=True)
    g = torch.Generator().manual_seed(5)
    torch.randperm(256, generator=g)  # the user's loader position: its first epoch is done
    _loop(again, x, y, 4, 8, g)
    for name in ("a", "b"):
        for p, q in zip(whole.models[name].parameters(), again.models[name].parameters()):
            assert torch.equal(p, q)


def test_a_ledger_sink_records_a_twin_loop_with_its_batches_on_disk(tmp_path):
    from twinrun.ledger import Ledger, LedgerSink, compare_ledgers

    x, y = _data()

    def loop(path, nudge_step=None):
        with twinrun.Twin(_models(), seed=3, sinks=[LedgerSink(path, every=2)]) as twin:
            g = torch.Generator().manual_seed(5)
            for step in range(8):
                if step % 4 == 0:
                    order = torch.randperm(256, generator=g)
                batch = order[(step % 4) * 64:(step % 4 + 1) * 64]
                xb = x[batch] + (1e-3 if step == nudge_step else 0.0)
                twin.step(xb, y[batch], nn.functional.cross_entropy)

    loop(tmp_path / "a.jsonl")
    loop(tmp_path / "b.jsonl")
    loop(tmp_path / "c.jsonl", nudge_step=5)
    a, b, c = (Ledger.load(tmp_path / f"{n}.jsonl") for n in "abc")
    assert {r.kind for r in a.records} >= {"init", "batch", "loss", "weights"}
    assert compare_ledgers(a, b).divergence is None
    d = compare_ledgers(a, c).divergence
    assert (d.step, d.kind, d.name) == (6, "batch", "inputs")  # Twin.step 6 is the loop's step 5
