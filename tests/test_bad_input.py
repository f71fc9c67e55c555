"""Bad input fails before training, with an error naming the candidate and the value."""

from __future__ import annotations

import pytest
import torch

import twinrun
from twinrun.engine import TwinEngine
from twinrun.errors import BuildError, DataError
from twinrun.spec import resolve


class _NeedsArg(torch.nn.Module):
    def __init__(self, size: int = 4) -> None:
        super().__init__()
        if size > 100:
            raise ValueError(f"size {size} too large")
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(x)


def _started(exp, **kw):
    events = []

    class Spy(twinrun.Sink):
        def on_event(self, event):
            events.append(event)

    with pytest.raises(twinrun.TwinrunError) as info:
        TwinEngine(resolve(exp, **kw), sinks=[Spy()]).run()
    return info.value, events


def test_candidate_that_fails_to_build_is_named(toy):
    exp = toy.replace(candidates={"ok": {}, "huge": {"model": twinrun.factory(_NeedsArg, size=1000)}})
    error, events = _started(exp)
    assert isinstance(error, BuildError)
    assert "'huge'" in error.message and "size 1000 too large" in error.message
    assert events == []  # nothing started


def test_outputs_that_do_not_fit_the_loss_fail_before_training(toy):
    exp = toy.replace(candidates={"ok": {}, "two_classes": {"model.classes": 2}})
    error, events = _started(exp)
    assert isinstance(error, BuildError)
    assert "'two_classes'" in error.message and "(2, 2)" in error.message
    assert events == []


def test_model_that_rejects_the_inputs(toy):
    exp = toy.replace(candidates={"ok": {}, "narrow": {"model.features": 5}})
    error, _ = _started(exp)
    assert "'narrow'" in error.message and "(2, 8)" in error.message


def test_empty_dataset(toy):
    empty = toy.replace(data=lambda: ((torch.zeros(0, 8), torch.zeros(0, dtype=torch.long)),
                                      (torch.zeros(4, 8), torch.zeros(4, dtype=torch.long))))
    error, _ = _started(empty)
    assert isinstance(error, DataError) and "train dataset is empty" in error.message


def test_batch_larger_than_dataset(toy):
    error, _ = _started(toy, overrides={"batch_size": 10_000})
    assert isinstance(error, DataError) and "batch_size=10000" in error.message and error.fix


def test_data_factory_not_returning_a_pair(toy):
    error, _ = _started(toy.replace(data=lambda: torch.zeros(3)))
    assert isinstance(error, DataError) and "(train, val)" in error.message


def test_metric_returning_a_mean_is_rejected(toy):
    exp = toy.replace(metrics={"acc": twinrun.Metric(lambda o, t: (o.argmax(1) == t).float().mean(), True)})
    error, _ = _started(exp)
    assert "one value per example" in error.message


def test_broken_augmentation_is_named(toy):
    def broken(inputs, targets, *, generator):
        return inputs

    error, _ = _started(toy.replace(augment=broken, candidates={"a": {}}))
    assert "'a'" in error.message and "not (inputs, targets)" in error.message


def test_cuda_requested_without_cuda(toy):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    error, _ = _started(toy, overrides={"device": "cuda"})
    assert "CUDA is not available" in error.message and "--device cpu" in error.fix
