"""A vectorised group evaluated in one forward per batch: every number as each candidate's own evaluation gives it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import vectorised as V  # tests/experiments is on the path (conftest.py)

import twinrun
from twinrun.engine import TwinEngine
from twinrun.engine._batched_eval import evaluate_together
from twinrun.spec import resolve

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")


def _trained(experiment):
    engine = TwinEngine(resolve(experiment), measure_memory=False)
    engine.run()
    (group,) = engine.executor._groups
    return engine, group


def _assert_same(together, one_by_one):
    assert together.step == one_by_one.step
    assert together.per_example.keys() == one_by_one.per_example.keys()
    for key, values in one_by_one.per_example.items():
        assert np.array_equal(together.per_example[key], values), key
    if one_by_one.outputs is None:
        assert together.outputs is None
    else:
        assert torch.equal(together.outputs, one_by_one.outputs)


@pytest.mark.parametrize("keep_outputs", [False, True])
@pytest.mark.parametrize("index", [None, [1, 0]], ids=["all", "some"])
def test_a_plain_group_is_evaluated_at_once_as_each_candidate_alone(keep_outputs, index):
    exp = V.experiment(executor="vectorised", eval_batch_size=50, n=5, steps=6)  # 3 batches: 128 examples by 50
    engine, group = _trained(exp)
    assert len(engine.val) == 3
    together = evaluate_together(group, engine.val, 7, index=index, keep_outputs=keep_outputs)
    assert together is not None and list(together) == list(exp.candidates)
    for state in group.members:
        assert state.model.training  # train mode is given back
        alone = engine.val.evaluate(state, 7, index=index, keep_outputs=keep_outputs)
        _assert_same(together[state.name], alone)


def test_the_run_uses_it_and_its_results_equal_the_sequential_runs():
    exp = V.experiment(steps=8).replace(eval_every=4)
    engine, group = _trained(exp.replace(executor="vectorised"))
    assert evaluate_together(group, engine.val, 8) is not None
    sequential = TwinEngine(resolve(exp.replace(executor="sequential")), measure_memory=False).run()
    vectorised = engine._result()
    for name in exp.candidates:
        a, b = vectorised.candidates[name], sequential.candidates[name]
        assert torch.equal(a.outputs, b.outputs)
        assert a.final == b.final, name
        assert [s for s, _ in engine.history.eval_history[name]] == [0, 4, 8]


def test_the_evaluation_before_the_first_step_is_batched_and_equals_the_sequential_runs():
    exp = V.experiment(steps=4).replace(eval_every=2)
    engine = TwinEngine(resolve(exp.replace(executor="vectorised")), measure_memory=False)
    before = engine.executor.evaluate(engine.val, engine.live, 0, keep_outputs=True)  # nothing stepped yet
    assert len(before) == len(exp.candidates)
    (group,) = engine.executor._groups
    assert not group.fitted and group.stack is not None and group.stack.bound()
    for state in engine.live:
        _assert_same(before[id(state)], engine.val.evaluate(state, 0, keep_outputs=True))
    engine.run()
    assert group.fitted and engine.executor._groups == [group]  # the first step kept the plan it found
    sequential = TwinEngine(resolve(exp.replace(executor="sequential")), measure_memory=False)
    result = sequential.run()
    for name in exp.candidates:
        assert engine.history.eval_history[name] == sequential.history.eval_history[name], name
        assert torch.equal(engine._result().candidates[name].outputs, result.candidates[name].outputs)


def test_what_it_cannot_take_is_left_to_one_candidate_at_a_time():
    mine = twinrun.spec.Metric(lambda o, y: (o.argmax(-1) == y).float(), higher_is_better=True, name="mine")
    engine, group = _trained(V.experiment(executor="vectorised", steps=2).replace(metrics={"mine": mine}))
    assert evaluate_together(group, engine.val, 2) is None  # a metric of the user's may look across the batch
    engine, group = _trained(V.experiment(executor="vectorised", steps=2).replace(loss=torch.nn.MultiMarginLoss))
    assert evaluate_together(group, engine.val, 2) is None  # another loss
    engine = TwinEngine(
        resolve(V.experiment(executor="vectorised", steps=2, model=V.CNN, data_fn=V.images)), measure_memory=False
    )
    engine.run()
    (group,) = engine.executor._groups
    together = evaluate_together(group, engine.val, 2, keep_outputs=True)  # a plain chain of convolutions
    for state in group.members:
        _assert_same(together[state.name], engine.val.evaluate(state, 2, keep_outputs=True))
    dropout_first = V.experiment(executor="vectorised", steps=2, model=lambda: _NotAChain())
    engine, group = _trained(dropout_first)
    assert group.plain_forward() is None and evaluate_together(group, engine.val, 2) is None  # vmap's forward


class _NotAChain(torch.nn.Module):
    """A residual connection: not a straight chain of layers, so its group runs under vmap."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(16, 16), torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(x + self.a(x))
