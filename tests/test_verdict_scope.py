"""A single run's verdict says what it is about: these trained weights on this validation set."""

from __future__ import annotations

import math

import pytest

import twinrun
from twinrun.cli._tables import format_verdict

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")


def test_one_run_is_scoped_to_its_weights_and_has_no_training_interval(toy):
    result = twinrun.compare(toy.replace(candidates={"small": {}, "deep": {"model": "toy:DeepMLP"}}, steps=20),
                             progress=False, logdir=None, registry=False)
    comparison = result.to_dict()["comparisons"]["deep"]
    val = comparison["val"]["accuracy"]
    assert "these trained weights on this validation set" in val["scope"]
    assert "not training noise" in val["scope"] and "--replicas" in val["scope"]
    train = comparison["train_loss"]
    assert train["low"] is None and train["high"] is None and train["better"] is None
    assert "no interval" in train["method"] and math.isfinite(train["diff"])
    text = format_verdict(result)
    assert "scope: one run" in text and "it is not a verdict on the recipe" in text
    # DeepMLP has a layer of its own: the null-pair case is named
    assert "warning: not every initial tensor is shared (deep 4/6)" in text


def test_no_warning_when_every_tensor_is_shared(toy):
    result = twinrun.compare(toy.replace(candidates={"small": {}, "fast": {"optimizer.lr": 0.3}}, steps=4),
                             progress=False, logdir=None, registry=False)
    assert "not every initial tensor" not in format_verdict(result)
