"""One change at a time: the warning for a candidate that changes several keys, and --ladder."""

from __future__ import annotations

import json

import pytest

from twinrun.cli import main
from twinrun.errors import ConfigError
from twinrun.spec import changed_keys, ladder, resolve

# the library warns once per process when PYTHONHASHSEED is not fixed; these tests do not depend on it
pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")

TWO = {"wide:optimizer.lr": 0.3}  # wide then changes model.width and optimizer.lr


def test_changed_keys_and_the_warning(toy):
    r = resolve(toy, TWO)
    d = r.declared
    assert changed_keys(d["wide"], d["small"]) == ["model.width", "optimizer.lr"]
    assert changed_keys(d["fast"], d["small"]) == ["optimizer.lr"]
    assert changed_keys(d["deep"], d["small"]) == ["model"]  # another factory: one step, its arguments with it
    assert changed_keys(d["small"], d["small"]) == []
    assert r.warnings == (
        "candidate 'wide' differs from the reference 'small' in 2 keys (model.width, optimizer.lr): its verdict "
        "cannot say which change made the difference; compare one change at a time (twinrun compare --ladder "
        "wide trains the steps in between as twins)",)
    assert resolve(toy).warnings == ()  # every candidate of the toy changes one key


def test_ladder_builds_the_steps_between(toy):
    exp, names = ladder(toy, "wide", overrides=TWO)
    assert names == ["small", "small+model.width", "wide"]
    r = resolve(exp, TWO, candidates=names)
    step = r.candidates["small+model.width"]
    assert changed_keys(step, r.candidates["small"]) == ["model.width"]
    assert changed_keys(r.candidates["wide"], step) == ["optimizer.lr"]
    assert r.candidates["wide"].to_config() == resolve(toy, TWO).candidates["wide"].to_config()


def test_ladder_refuses_what_has_no_step_between(toy):
    with pytest.raises(ConfigError, match="differs from 'small' in 1 key \\(optimizer.lr\\)") as err:
        ladder(toy, "fast")
    assert "--candidates small,fast" in err.value.fix
    with pytest.raises(ConfigError, match="is the reference itself"):
        ladder(toy, "small")
    with pytest.raises(ConfigError, match="has no such candidate") as err:
        ladder(toy, "nope")
    assert "small, wide" in err.value.fix


def test_compare_ladder_trains_the_steps_as_twins(toy, capsys, monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")  # in this process: capsys sees the output
    code = main(["compare", toy.source.path, "--ladder", "wide", "--set", "wide:optimizer.lr=0.3",
                 "--set", "steps=4", "--json", "--no-tensorboard", "--no-registry"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["candidates"]) == ["small", "small+model.width", "wide"]
    assert out["reference"] == "small"
    assert not any("differs from the reference" in w for w in out["warnings"])  # the ladder is the answer
    # the step and wide are the same network: wide starts from exactly the step's initial weights
    assert out["init"]["own"]["wide"] == [] and len(out["init"]["shared"]["wide"]) == 4
    assert main(["compare", toy.source.path, "--ladder", "wide", "--candidates", "small,wide"]) == 2
    assert "--ladder and --candidates both choose the candidates" in capsys.readouterr().err
