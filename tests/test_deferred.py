"""A step queued whole (``deferred``, the default on a GPU): one read back per step, the numbers of one that reads
every loss before its update, bit for bit, divergence included. Run here on the CPU, where ``deferred=True``
takes the same path a GPU takes by default."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import vectorised as V  # tests/experiments is on the path (conftest.py)
from torch.overrides import TorchFunctionMode

import twinrun
from twinrun.engine import TwinEngine
from twinrun.engine._executor import SequentialExecutor, StepContext
from twinrun.engine._vectorised import VectorisedExecutor
from twinrun.spec import resolve

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")

_READS = {"item", "tolist", "__float__", "__bool__", "__int__", "cpu", "numpy"}


class _CountReads(TorchFunctionMode):
    """Counts the tensor methods that read a value back to the host (each one a wait on a GPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in _READS:
            self.reads += 1
        return func(*args, **(kwargs or {}))


def _same(a, b, where=""):
    """Two state dicts equal bit for bit, tensors and numbers alike (NaN equal to NaN)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (where, sorted(map(str, a)), sorted(map(str, b)))
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
    else:
        assert a == b, (where, a, b)


def _trained(experiment, executor):
    engine = TwinEngine(resolve(experiment), measure_memory=False, executor=executor)
    result = engine.run()
    states = {
        name: (s.model.state_dict(), s.optimizer.state_dict(), s.scheduler.state_dict() if s.scheduler else None)
        for name, s in engine.states.items()
    }
    grads = {name: [p.grad for p in s.model.parameters()] for name, s in engine.states.items()}
    return result, states, grads


def _assert_identical(queued, read_first):
    (a, states_a, grads_a), (b, states_b, grads_b) = queued, read_first
    for name, result in a.candidates.items():
        other = b.candidates[name]
        assert (result.status, result.diverged_at) == (other.status, other.diverged_at), name
        assert np.array_equal(result.train_loss, other.train_loss, equal_nan=True), name
        assert (result.outputs is None and other.outputs is None) or torch.equal(result.outputs, other.outputs), name
        _same(states_a[name], states_b[name], name)
        for g, h in zip(grads_a[name], grads_b[name]):
            assert (g is None and h is None) or torch.equal(g, h), name


CASES = {  # each with a candidate that diverges at step 2, after updates (at a first step: the optimizer test below)
    "sgd_momentum": (
        twinrun.factory(torch.optim.SGD, lr=0.1, momentum=0.9),
        {"ok": {}, "boom": {"optimizer.lr": 1e30}, "ok2": {"optimizer.lr": 0.05}},
    ),
    "adam": (
        twinrun.factory(torch.optim.Adam, lr=3e-3),
        {"ok": {}, "late": {"optimizer.lr": 1e36}, "ok2": {"optimizer.lr": 1e-3}},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_sequential_step_queued_whole_is_the_step_that_reads_first(case):
    optimizer, candidates = CASES[case]
    exp = V.experiment(optimizer, steps=25, grad_clip=1.0, executor="sequential").replace(candidates=candidates)
    queued = _trained(exp, SequentialExecutor(deferred=True))
    read_first = _trained(exp, SequentialExecutor(deferred=False))
    _assert_identical(queued, read_first)
    statuses = {n: c.status for n, c in queued[0].candidates.items()}
    assert list(statuses.values()).count("diverged") == 1, statuses


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_batched_step_queued_whole_is_the_step_that_reads_first(case):
    optimizer, candidates = CASES[case]
    exp = V.experiment(optimizer, steps=25, grad_clip=1.0, executor="vectorised").replace(candidates=candidates)
    queued = _trained(exp, VectorisedExecutor("vectorised", deferred=True))
    read_first = _trained(exp, VectorisedExecutor("vectorised", deferred=False))
    assert set(queued[0].execution.values()) == {f"vectorised with 3 candidates: {'+'.join(candidates)}"}
    _assert_identical(queued, read_first)
    assert sum(c.status == "diverged" for c in queued[0].candidates.values()) == 1


@pytest.mark.parametrize("kind", ["sequential", "vectorised"])
def test_a_queued_step_reads_back_once_however_many_candidates(kind):
    """The executor's reads per step: one per device and dtype when queued whole (the losses and metrics
    together), against at least one per candidate when each loss is read before its update."""

    def reads_per_step(n, deferred):
        exp = V.experiment(n=n, steps=3, executor=kind)
        executor = SequentialExecutor(deferred=deferred) if kind == "sequential" else VectorisedExecutor(
            "vectorised", deferred=deferred)
        engine = TwinEngine(resolve(exp), measure_memory=False, executor=executor)
        states = list(engine.states.values())
        x, y = V.data()[0]
        batches = {s.spec.augment_key: (x[:32], y[:32]) for s in states}
        context = StepContext(engine.step_streams, engine.placement.devices, engine.metrics, None)
        executor.run_step(0, states, batches, context)  # the first step probes and binds: not counted
        counter = _CountReads()
        with counter:
            outputs = executor.run_step(1, states, batches, context)
        assert all(np.isfinite(o.loss) for o in outputs.values())
        return counter.reads

    assert reads_per_step(2, True) == reads_per_step(6, True) == 1
    assert reads_per_step(6, False) >= (6 if kind == "sequential" else 2)  # a group reads its losses, then metrics


@pytest.mark.parametrize("cls", [torch.optim.SGD, torch.optim.Adam])
def test_an_update_undone_on_the_device_leaves_the_member_as_torch_optim_skipping_it(cls):
    """``step(keep=...)`` then ``revert``: the member kept out is as if no step was taken (SGD's first step
    included: no momentum buffer), the others are ``torch.optim``'s own step."""
    from torch import nn

    from twinrun.engine._stack import stack_models
    from twinrun.engine._vector_optim import StackedOptimizer

    kwargs = dict(lr=0.1, momentum=0.9) if cls is torch.optim.SGD else dict(lr=0.01)
    torch.manual_seed(0)
    models = [nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)) for _ in range(2)]
    refs = [nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)) for _ in range(2)]
    for ref, model in zip(refs, models):
        ref.load_state_dict(model.state_dict())
    opts = [cls(m.parameters(), **kwargs) for m in models]
    ref_opts = [cls(m.parameters(), **kwargs) for m in refs]
    stack = stack_models(models, [[n for n, _ in models[0].named_parameters()]])
    stacked = StackedOptimizer(opts, stack.groups)
    g = torch.Generator().manual_seed(1)
    names = [n for n, _ in models[0].named_parameters()]
    group = stack.groups[0]
    for step in range(3):
        keep = torch.tensor([True, step != 0])  # member 1 skips the first step: its loss was not finite
        for k, ref in enumerate(refs):
            for i, q in enumerate(ref.parameters()):
                grad = torch.randn(q.shape, generator=g)
                group.row_view(group.grad, k, group.names.index(names[i])).copy_(grad)
                q.grad = grad.clone()
        stacked.step(keep=keep)
        stacked.revert([k for k in range(2) if not keep[k]])
        for k, opt in enumerate(ref_opts):
            if keep[k]:
                opt.step()
        for k in range(2):
            for p, q in zip(models[k].parameters(), refs[k].parameters()):
                assert torch.equal(p, q), (step, k)
            ours, theirs = opts[k].state_dict()["state"], ref_opts[k].state_dict()["state"]
            if cls is torch.optim.Adam and not theirs:  # the stacked Adam holds its state from the start: zeros
                assert all(not t.any() for s in ours.values() for t in s.values()), (step, k)
                continue
            _same(ours, theirs, f"{step}.{k}")
