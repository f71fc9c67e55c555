"""Experiment files, overrides and the resolved config."""

from __future__ import annotations

import json

import pytest
import torch

import twinrun
from twinrun.errors import ConfigError
from twinrun.spec import parse_overrides, resolve

from conftest import TOY


def test_parse_overrides_literals_and_strings():
    parsed = parse_overrides(["steps=10", "optimizer.lr=1e-3", "device=cpu", "x=[1, 2]", "y=None", "z=True"])
    assert parsed == {"steps": 10, "optimizer.lr": 1e-3, "device": "cpu", "x": [1, 2], "y": None, "z": True}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["steps"])


def test_candidate_overrides_and_global_set(toy):
    r = resolve(toy, {"steps": 5, "optimizer.lr": 0.05})
    assert r.settings.steps == 5
    assert r.candidates["small"].optimizer.kwargs["lr"] == 0.05
    # the candidate's own value wins over --set for all, with a warning that says how to change it
    assert r.candidates["fast"].optimizer.kwargs["lr"] == 0.3
    assert any("fast:optimizer.lr" in w for w in r.warnings)
    scoped = resolve(toy, {"fast:optimizer.lr": 0.7})
    assert scoped.candidates["fast"].optimizer.kwargs["lr"] == 0.7
    assert scoped.candidates["small"].optimizer.kwargs["lr"] == 0.1


def test_global_kwarg_applies_where_the_factory_takes_it(toy):
    r = resolve(toy, {"model.dropout": 0.2})
    assert r.candidates["small"].model.kwargs["dropout"] == 0.2
    assert "dropout" not in r.candidates["deep"].model.kwargs  # DeepMLP takes no dropout


def test_unknown_keys_are_rejected_with_the_valid_ones(toy):
    with pytest.raises(ConfigError) as info:
        resolve(toy, {"stepz": 3})
    assert "stepz" in str(info.value) and "steps" in str(info.value) and "model.width" in str(info.value)
    with pytest.raises(ConfigError, match="valid model keys: dropout, features, classes|valid model keys"):
        resolve(toy, {"model.depth": 3})
    bad = toy.replace(candidates={"a": {"model.depht": 3}})
    with pytest.raises(ConfigError, match="candidate 'a'.*depht"):
        resolve(bad)
    with pytest.raises(ConfigError, match="shared by all candidates"):
        resolve(toy.replace(candidates={"a": {"steps": 3}}))
    with pytest.raises(ConfigError, match="share the data"):
        resolve(toy.replace(candidates={"a": {"data.n_train": 3}}))
    with pytest.raises(ConfigError, match="nope.*not in experiment"):
        resolve(toy, {"nope:model.width": 3})


def test_type_checked_values(toy):
    with pytest.raises(ConfigError, match="width='big' is a str"):
        resolve(toy, {"model.width": "big"})
    with pytest.raises(ConfigError, match="steps=0"):
        resolve(toy, {"steps": 0})
    with pytest.raises(ConfigError, match="device"):
        resolve(toy, {"device": "gpu9000"})
    r = resolve(toy, {"optimizer.lr": 1})  # an int where a float is expected is fine
    assert r.candidates["small"].optimizer.kwargs["lr"] == 1.0


def test_replace_factory_by_import_path(toy):
    r = resolve(toy, {"deep:model": "toy:MLP"})
    assert r.candidates["deep"].model.fn.__name__ == "MLP"


def test_resolved_config_is_json_and_saved_with_the_run(toy):
    r = resolve(toy)
    text = json.dumps(r.to_config(), sort_keys=True)
    assert '"wide"' in text and '"width": 32' in text
    assert len(r.config_hash()) == 16
    result = twinrun.compare(toy, candidates=["small"], overrides={"steps": 2}, progress=False, logdir=None)
    saved = json.loads((__import__("pathlib").Path(result.artifacts["run_dir"]) / "config.json").read_text())
    assert saved["settings"]["steps"] == 2
    assert saved["candidates"]["small"]["model"]["kwargs"] == {"width": 16}


def test_selection_and_reference(toy):
    r = resolve(toy, candidates=["wide", "small"], reference="wide")
    assert list(r.candidates) == ["small", "wide"]  # declared order
    assert r.reference == "wide"
    with pytest.raises(ConfigError, match="choose from"):
        resolve(toy, candidates=["nope"])
    with pytest.raises(ConfigError, match="reference"):
        resolve(toy, candidates=["small"], reference="wide")


def test_load_experiment_records_source():
    exp = twinrun.load_experiment(TOY)
    assert exp.source is not None and exp.source.path.endswith("toy.py")
    assert len(exp.source.sha256) == 64 and "def blobs" in exp.source.text
    assert twinrun.load_experiment(f"{TOY}:experiment").name == "toy"


def test_load_experiment_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        twinrun.load_experiment(tmp_path / "missing.py")
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(ConfigError, match="defines no twinrun.Experiment"):
        twinrun.load_experiment(empty)
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match="failed to import: RuntimeError: boom"):
        twinrun.load_experiment(broken)


def test_experiment_validation():
    with pytest.raises(ConfigError, match="model factory is missing"):
        twinrun.Experiment(name="x", data=lambda: None, model=None, optimizer=torch.optim.SGD, loss=torch.nn.MSELoss)
    with pytest.raises(ConfigError, match="not a twinrun.Metric"):
        twinrun.Experiment(name="x", data=lambda: None, model=torch.nn.Linear, optimizer=torch.optim.SGD,
                           loss=torch.nn.MSELoss, metrics={"acc": lambda o, t: o})
    with pytest.raises(ConfigError, match="candidate name"):
        twinrun.Experiment(name="x", data=lambda: None, model=torch.nn.Linear, optimizer=torch.optim.SGD,
                           loss=torch.nn.MSELoss, candidates={"a/b": {}})
