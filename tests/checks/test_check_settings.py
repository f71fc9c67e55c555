"""``run_checks(settings=...)``: any experiment setting, checked as an experiment checks it; the old keywords warn."""

from __future__ import annotations

import warnings

import pytest
import torch
from planted import MLP, _seeded, blobs
from torch import nn

import twinrun
from twinrun.errors import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")


def _pieces():
    (x, y), (xv, yv) = blobs()
    model = _seeded(MLP)
    return dict(model=model, train=(x, y), val=(xv, yv), loss=nn.CrossEntropyLoss(),
                optimizer=torch.optim.SGD(model.parameters(), lr=0.1), registry=False, only=["loss_at_init"])


def test_settings_reach_the_run_and_the_old_keywords_still_do_with_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        new = twinrun.checks.run_checks(**_pieces(), settings={"steps": 20, "batch_size": 16, "seed": 3})
    with pytest.warns(DeprecationWarning, match=r"run_checks\(steps=20, batch_size=16, seed=3\) is deprecated: "
                                                 r"pass settings=\{'steps': 20, 'batch_size': 16, 'seed': 3\}") as seen:
        old = twinrun.checks.run_checks(**_pieces(), steps=20, batch_size=16, seed=3)
    assert seen[0].filename == __file__  # the warning names the caller's line
    assert (new.subject["steps"], new.subject["batch_size"], new.subject["seed"]) == (20, 16, 3)
    assert {k: v for k, v in new.subject.items() if k != "run_id"} == {k: v for k, v in old.subject.items() if k != "run_id"}
    assert new["loss_at_init"].details == old["loss_at_init"].details


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (dict(settings={"step": 20}), ConfigError, "'step' is not a setting (did you mean 'steps'?)"),
        (dict(settings={"steps": -1}), ConfigError, "steps"),
        (dict(settings={"steps": 20}, steps=30), ConfigError, "steps both as keywords and in settings="),
        (dict(stpes=20), TypeError, "unexpected keyword argument 'stpes'"),
    ],
)
def test_bad_settings_are_refused_before_training(call, error, message):
    with pytest.raises(error) as err:
        twinrun.checks.run_checks(**_pieces(), **call)
    assert message in str(err.value)
