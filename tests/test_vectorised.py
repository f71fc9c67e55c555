"""The vectorised executor: exact against torch.optim and the sequential executor, reproducible, honest fallbacks."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import vectorised as V  # tests/experiments is on the path (conftest.py)
from _subprocess import HERE, child_env
from torch import nn

import twinrun
from twinrun.engine import TwinEngine
from twinrun.engine._drive import drive
from twinrun.engine._stack import stack_models
from twinrun.engine._vector_optim import StackedOptimizer
from twinrun.spec import resolve


def _run(experiment, **kw):
    engine = TwinEngine(resolve(experiment), measure_memory=False, **kw)
    return engine, engine.run()


OPTIMIZERS = {
    "sgd": (torch.optim.SGD, dict(lr=0.1)),
    "sgd_momentum": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    "sgd_nesterov": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "adam": (torch.optim.Adam, dict(lr=1e-2, weight_decay=1e-2)),
    "adam_plain": (torch.optim.Adam, dict(lr=1e-2)),  # the whole-tensor path: the members differ in lr at most
    "adamw": (torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1, betas=(0.8, 0.99))),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("differ", [False, True], ids=["same-hparams", "own-hparams"])
def test_stacked_optimizer_is_torch_optim_bit_for_bit(name, differ):
    cls, kwargs = OPTIMIZERS[name]
    torch.manual_seed(0)
    models = [nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)) for _ in range(3)]
    refs = [nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)) for _ in range(3)]
    for ref, model in zip(refs, models):
        ref.load_state_dict(model.state_dict())

    def hparams(k):
        if not differ:
            return kwargs
        own = dict(kwargs, lr=kwargs["lr"] * (1 + k / 3))
        if "weight_decay" in own:
            own["weight_decay"] = own["weight_decay"] * (k + 1)
        if "betas" in own:
            own["betas"] = (0.8 + 0.05 * k, 0.99)
        return own

    opts = [cls(m.parameters(), **hparams(k)) for k, m in enumerate(models)]
    ref_opts = [cls(m.parameters(), **hparams(k)) for k, m in enumerate(refs)]
    stack = stack_models(models, [[n for n, _ in models[0].named_parameters()]])
    stacked = StackedOptimizer(opts, stack.groups)
    g = torch.Generator().manual_seed(1)
    for step in range(12):
        if step == 6:  # as a scheduler does: the stacked update reads the new values
            for opt in [*opts, *ref_opts]:
                opt.param_groups[0]["lr"] *= 0.5
        for k, (model, ref) in enumerate(zip(models, refs)):
            for (pname, p), q in zip(model.named_parameters(), ref.parameters()):
                grad = torch.randn(p.shape, generator=g)
                stack.groups[0].row_view(stack.groups[0].grad, k, list(dict(model.named_parameters())).index(pname)).copy_(grad)
                q.grad = grad.clone()
        stacked.step()
        for opt in ref_opts:
            opt.step()
        for model, ref, opt, ref_opt in zip(models, refs, opts, ref_opts):
            for p, q in zip(model.parameters(), ref.parameters()):
                assert torch.equal(p, q)
            for key, value in ref_opt.state_dict()["state"].items():
                for field, tensor in value.items():
                    assert torch.equal(opt.state_dict()["state"][key][field], tensor), (key, field)


def assert_trains_alike(a, b, name=""):
    """Vectorised against sequential: the same training bit for bit (the weights, hence the evaluation outputs
    and final metrics) and recorded mean losses within 1e-6 relative: a batched cross-entropy sums a member's
    per-example losses (bit-identical, as are the gradients) in another order than ``F.cross_entropy``."""
    assert torch.equal(a.outputs, b.outputs), name
    assert a.final == b.final, name
    relative = np.abs(a.train_loss - b.train_loss) / np.maximum(np.abs(b.train_loss), 1e-12)
    assert np.nanmax(relative) <= 1e-6, (name, np.nanmax(relative))


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd_nesterov"])
def test_vectorised_mlp_with_dropout_and_clipping_trains_as_sequential_bit_for_bit(optimizer):
    cls, kwargs = OPTIMIZERS[optimizer]
    exp = V.experiment(twinrun.factory(cls, **kwargs), grad_clip=0.5)
    _, vec = _run(exp.replace(executor="vectorised"))
    _, seq = _run(exp.replace(executor="sequential"))
    assert set(vec.execution.values()) == {"vectorised with 4 candidates: c0+c1+c2+c3"}
    for name in exp.candidates:
        a, b = seq.candidates[name], vec.candidates[name]
        assert_trains_alike(a, b, name)
    losses = [vec.candidates[n].train_loss for n in exp.candidates]
    assert not np.array_equal(losses[0], losses[1])  # their own learning rates really differ


def test_vectorised_cnn_agrees_with_sequential_within_tolerance():
    exp = V.experiment(model=twinrun.factory(V.CNN, channels=4), data_fn=V.images, steps=100)
    _, vec = _run(exp.replace(executor="vectorised"))
    _, seq = _run(exp.replace(executor="sequential"))
    for name in exp.candidates:
        a, b = seq.candidates[name].train_loss, vec.candidates[name].train_loss
        assert np.max(np.abs(a - b) / np.abs(a)) <= 1e-5, name  # the stated tolerance: 1e-5 relative, 100 steps


def test_batchnorm_buffers_are_each_members_own():
    exp = V.experiment(model=twinrun.factory(V.CNN, channels=4, batchnorm=True), data_fn=V.images, steps=30)
    vec_engine, vec = _run(exp.replace(executor="vectorised"))
    seq_engine, _ = _run(exp.replace(executor="sequential"))
    assert vec.execution["c0"].startswith("vectorised")
    means = [vec_engine.states[n].model.bn.running_mean for n in exp.candidates]
    assert not torch.equal(means[0], means[1])
    for name in exp.candidates:
        vec_bn, seq_bn = vec_engine.states[name].model.bn, seq_engine.states[name].model.bn
        assert int(vec_bn.num_batches_tracked) == int(seq_bn.num_batches_tracked) == 30
        torch.testing.assert_close(vec_bn.running_var, seq_bn.running_var, rtol=1e-4, atol=1e-6)


def test_fallbacks_are_reported_and_train_as_sequential():
    exp = V.experiment(model=V.Branchy).replace(candidates={
        "a": {}, "b": {"optimizer.lr": 1e-2},
        "rms": {"optimizer": twinrun.factory(torch.optim.RMSprop, lr=1e-3)},
        "wide": {"model": twinrun.factory(V.MLP, hidden=64)},
    })
    _, auto = _run(exp.replace(executor="vectorised"))
    _, seq = _run(exp.replace(executor="sequential"))
    assert auto.execution["a"].startswith("sequential: the model does not run under torch.func.vmap")
    assert "RMSprop has no vectorised implementation" in auto.execution["rms"]
    assert auto.execution["wide"] == "vectorised with 1 candidate: wide"  # asked for: a group of one too
    for name in exp.candidates:
        assert_trains_alike(auto.candidates[name], seq.candidates[name], name)


def test_a_diverging_member_stops_and_the_others_match_sequential():
    exp = V.experiment(twinrun.factory(torch.optim.SGD, lr=0.1)).replace(
        candidates={"ok": {}, "boom": {"optimizer.lr": 1e6}, "ok2": {"optimizer.lr": 0.05}})
    _, vec = _run(exp.replace(executor="vectorised"))
    _, seq = _run(exp.replace(executor="sequential"))
    assert vec.candidates["boom"].status == "diverged"
    assert vec.candidates["boom"].diverged_at == seq.candidates["boom"].diverged_at
    for name in ("ok", "ok2"):
        assert_trains_alike(vec.candidates[name], seq.candidates[name], name)


def test_vectorised_resume_is_exact():
    exp = V.experiment(model=twinrun.factory(V.CNN, channels=4), data_fn=V.images, steps=40)
    _, whole = _run(exp)
    first = TwinEngine(resolve(exp.replace(steps=40)), measure_memory=False)
    while first.step < 17:
        drive(first._train_one_step())
    state = first.state_dict()
    second = TwinEngine(resolve(exp), measure_memory=False)
    second.load_state_dict(state)
    resumed = second.run()
    for name in exp.candidates:
        assert np.array_equal(whole.candidates[name].train_loss, resumed.candidates[name].train_loss), name
        assert torch.equal(whole.candidates[name].outputs, resumed.candidates[name].outputs)


CHILD = """
import json, sys, torch
sys.path.insert(0, {experiments!r})
import vectorised as V, twinrun
from twinrun.engine import TwinEngine
from twinrun.engine._drive import drive
from twinrun.spec import resolve
exp = V.experiment(model=twinrun.factory(V.CNN, channels=4, batchnorm=True), data_fn=V.images, steps=25)
result = TwinEngine(resolve(exp), measure_memory=False).run()
print(json.dumps({{n: [float(v).hex() for v in c.train_loss] for n, c in result.candidates.items()}}
                 | {{"execution": result.execution}}))
"""


@pytest.mark.slow
def test_vectorised_run_is_bit_reproducible_across_fresh_processes():
    code = CHILD.format(experiments=str(HERE / "experiments"))
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True,
                                      text=True, check=True, timeout=300).stdout) for _ in range(2)]
    assert runs[0] == runs[1]
    assert runs[0]["execution"]["c0"].startswith("vectorised")


def test_copies_stepped_by_the_same_executor_leave_the_engine_alone():
    """A caller (the determinism-cost probe) may step copies that carry the same names."""
    from twinrun.proof._cost import measure_determinism_cost

    exp = V.experiment(steps=10)
    engine = TwinEngine(resolve(exp), measure_memory=False)
    before = {n: [p.detach().clone() for p in s.model.parameters()] for n, s in engine.states.items()}
    measure_determinism_cost(engine, steps=3, repeats=1)
    for name, state in engine.states.items():
        assert all(torch.equal(a, b) for a, b in zip(before[name], state.model.parameters()))
    result = engine.run()
    _, fresh = _run(exp)
    assert np.array_equal(result.candidates["c1"].train_loss, fresh.candidates["c1"].train_loss)


def test_memory_estimate_is_within_20_percent_of_the_measured_peak():
    exp = V.experiment(model=twinrun.factory(V.CNN, channels=8), data_fn=V.images, steps=3, n=4)
    engine = TwinEngine(resolve(exp), measure_memory=True)
    memory = engine.run().memory
    (label, estimate), = memory["vectorised_estimate_bytes"].items()
    measured = memory["activation_peak_by_candidate"][label]
    assert abs(estimate - measured) <= 0.2 * measured, (estimate, measured)


def test_a_small_memory_budget_splits_the_group():
    exp = V.experiment(n=4, steps=20)
    _, pair = _run(V.experiment(n=2, steps=1, executor="vectorised"))
    two = pair.memory["vectorised_estimate_bytes"]["c0+c1"]  # what a group of two needs
    _, split = _run(exp.replace(memory_budget=two))
    assert split.execution["c0"].startswith("vectorised with 2 candidates: c0+c1 (split to fit memory_budget=")
    assert split.execution["c3"].startswith("vectorised with 2 candidates: c2+c3")
    _, seq = _run(exp.replace(executor="sequential"))
    for name in exp.candidates:
        assert_trains_alike(split.candidates[name], seq.candidates[name], name)


def test_memory_budget_is_validated():
    with pytest.raises(twinrun.ConfigError, match="memory_budget='lots' is not a memory size") as info:
        V.experiment(memory_budget="lots")
    assert "2GiB" in (info.value.fix or "")
    assert V.experiment(memory_budget="1.5 GiB").settings.memory_budget == "1.5 GiB"


def test_activation_meter_counts_saved_tensors_that_need_no_gradient():
    """Max-pool indices and dropout masks are saved for backward too: the meter counts them."""
    from twinrun.engine import ActivationMeter

    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.MaxPool2d(2), nn.Dropout(0.5), nn.Flatten(),
                          nn.Linear(8 * 4 * 4, 4))
    x = torch.randn(16, 1, 8, 8)
    counted: dict[int, int] = {}

    def pack(t):
        if not (t.is_leaf and t.requires_grad) and t.untyped_storage().data_ptr() != x.untyped_storage().data_ptr():
            counted[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum().backward()
    meter = ActivationMeter()
    with meter.measure("m", (x,)):
        out = model(x).sum()
        assert meter.live_bytes == sum(counted.values())
        out.backward()
    assert meter.peak_bytes == sum(counted.values())
    indices = [t for t in counted.values()]
    assert len(indices) >= 4  # conv input/output, pool indices, dropout mask...


def test_auto_batches_groups_from_four_on_the_cpu_and_says_why_not_below():
    _, three = _run(V.experiment(n=3, steps=5))
    assert three.execution["c0"] == ("sequential: a group of 3 same-architecture candidates: batching pays from 4 "
                                     "on this device (executor='vectorised' batches it anyway)")
    exp = V.experiment(n=4, steps=5)
    _, four = _run(exp.replace(candidates={**exp.candidates, "wide": {"model": twinrun.factory(V.MLP, hidden=64)}}))
    assert four.execution["c0"] == "vectorised with 4 candidates: c0+c1+c2+c3"
    assert four.execution["wide"] == "sequential: no other candidate has its architecture and optimizer"


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fused_sequential_update_is_optimizer_step_bit_for_bit(name):
    """The sequential executor's flat update against torch.optim's own step(), scheduler and clipping included."""
    from twinrun.engine import SequentialExecutor

    cls, kwargs = OPTIMIZERS[name]
    exp = V.experiment(twinrun.factory(cls, **kwargs), grad_clip=0.5, steps=30, executor="sequential")
    results = []
    for fused in (True, False):
        engine = TwinEngine(resolve(exp), measure_memory=False, executor=SequentialExecutor(fused=fused))
        results.append((engine.run(), engine))
    (a, engine_a), (b, engine_b) = results
    for cand in exp.candidates:
        assert np.array_equal(a.candidates[cand].train_loss, b.candidates[cand].train_loss)
        sa, sb = engine_a.states[cand].optimizer.state_dict(), engine_b.states[cand].optimizer.state_dict()
        for key, value in sb["state"].items():
            for field, tensor in value.items():
                assert torch.equal(sa["state"][key][field], tensor), (cand, key, field)
    assert engine_a.executor.update_for(engine_a.states["c0"]) is not None


def test_fused_update_leaves_patched_optimizers_alone():
    """Code that wraps optimizer.step (a check, a logger) still runs: no fused update for that optimizer."""
    from twinrun.engine import SequentialExecutor

    engine = TwinEngine(resolve(V.experiment(steps=3, executor="sequential")), measure_memory=False)
    calls = []
    opt = engine.states["c1"].optimizer
    original = opt.step

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    counted._wrapped_by_lr_sched = True  # what torch's scheduler looks for (else it warns)
    opt.step = counted
    executor = engine.executor
    assert isinstance(executor, SequentialExecutor)
    assert executor.update_for(engine.states["c1"]) is None
    assert executor.update_for(engine.states["c0"]) is not None
    engine.run()
    assert len(calls) == 3


def test_the_batched_cross_entropy_gives_every_gradient_and_per_example_loss_bit_for_bit():
    from twinrun.engine._batched_loss import batched_loss

    g = torch.Generator().manual_seed(0)
    members = [SimpleNamespace(loss_fn=nn.CrossEntropyLoss(), loss_takes="prediction") for _ in range(8)]
    for shared in (True, False):
        for _ in range(50):
            out = torch.randn(8, 64, 10, generator=g, requires_grad=True)
            y = torch.randint(0, 10, (64,), generator=g)
            y[:5] = -100  # ignored targets leave the mean's count
            targets = [y] * 8 if shared else [y, *(torch.randint(0, 10, (64,), generator=g) for _ in range(7))]
            batched = batched_loss(members, out, targets, shared)
            own = torch.stack([nn.functional.cross_entropy(out[k], targets[k]) for k in range(8)])
            g1, = torch.autograd.grad(batched.sum(), out)
            g2, = torch.autograd.grad(own.sum(), out)
            assert torch.equal(g1, g2)
            torch.testing.assert_close(batched, own, rtol=1e-6, atol=0)
    late = nn.CrossEntropyLoss()
    late.weight = torch.ones(10)  # a class weight set after construction is seen too
    others = [nn.CrossEntropyLoss(label_smoothing=0.1), nn.CrossEntropyLoss(weight=torch.ones(10)),
              nn.CrossEntropyLoss(reduction="sum"), late, nn.NLLLoss()]
    for loss_fn in others:  # another loss: member by member
        assert batched_loss([SimpleNamespace(loss_fn=loss_fn, loss_takes="prediction")], out[:1], [y], True) is None



def test_twinruns_own_metrics_are_computed_for_the_whole_stack_bit_for_bit():
    from twinrun.engine._batched_metrics import batched_metrics
    from twinrun.spec import Metric, accuracy, mae, mse

    g = torch.Generator().manual_seed(0)
    cases = [  # (outputs [K, B, ...], one member's targets, metrics)
        (lambda: torch.randn(8, 64, 10, generator=g), lambda: torch.randint(0, 10, (64,), generator=g),
         {"accuracy": accuracy}),
        (lambda: torch.randn(5, 33, 1, generator=g), lambda: torch.randint(0, 2, (33,), generator=g),
         {"accuracy": accuracy}),  # one logit: thresholded at 0
        (lambda: torch.randn(4, 31, 3, generator=g), lambda: torch.randn(31, 3, generator=g),
         {"mse": mse, "mae": mae}),
    ]
    for make_out, make_y, metrics in cases:
        for shared in (True, False):
            out = make_out()
            k = out.shape[0]
            targets = [make_y()] * k if shared else [make_y() for _ in range(k)]
            together = batched_metrics(out, targets, metrics, ["auto"] * k)
            own = torch.stack([torch.stack([m(out[i], targets[i]).float().mean() for m in metrics.values()])
                               for i in range(k)])
            assert torch.equal(together, own)
    mine = {"mine": Metric(lambda o, y: (o.argmax(-1) == y).float(), higher_is_better=True)}
    assert batched_metrics(out, targets, mine, ["auto"] * k) is None  # the user's own: member by member
    assert batched_metrics(out, targets, {"mse": mse}, [0] * k) is None  # an output picked by key


class _AttentionThenDropout(nn.Module):
    """Dropout on nn.MultiheadAttention's output, which is a transposed view (batch_first=True)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(16, 16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.view(x.shape[0], 4, 4).repeat(1, 1, 4))
        h = h + self.drop(self.attn(h, h, h, need_weights=False)[0])
        return self.head(h.mean(1))


@pytest.mark.filterwarnings("ignore:There is a performance drop because we have not yet implemented")
def test_a_model_whose_masks_differ_under_vmap_runs_one_at_a_time_with_the_reason():
    # vmap draws a mask in its input's logical order, a candidate alone in its memory order: for a transposed
    # input those are other masks, so batching would break twin = solo; the first step compares the two
    exp = V.experiment(model=_AttentionThenDropout, n=4, steps=4)
    _, auto = _run(exp.replace(executor="vectorised"))
    _, alone = _run(exp.replace(executor="sequential"))
    assert auto.execution["c0"].startswith("sequential: under torch.func.vmap its random draws (dropout masks)")
    for name in auto.candidates:
        assert np.array_equal(auto.candidates[name].train_loss, alone.candidates[name].train_loss), name
