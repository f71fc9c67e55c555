"""One meaning of ``registry=`` for every entry point: True or None the default, a path, or False for nothing."""

from __future__ import annotations

import pytest
from conftest import TOY

import twinrun
from twinrun.errors import ConfigError
from twinrun.registry import Registry
from twinrun.sweeps import analyze_sweep, run_sweep

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")

QUICK = {"steps": 4, "eval_every": 4}


def _compare(home, registry):
    return twinrun.compare(TOY, overrides=QUICK, home=home, registry=registry, progress=False, logdir=None)


@pytest.mark.parametrize("registry", [True, None])
def test_true_and_none_record_in_the_homes_registry(tmp_path, registry):
    result = _compare(tmp_path / "home", registry)
    with Registry.open(tmp_path / "home" / "registry.sqlite") as reg:
        assert [r.id for r in reg.list_runs()] == [result.artifacts["registry_run"]]


def test_a_path_records_there_and_false_records_nothing(tmp_path):
    elsewhere = tmp_path / "elsewhere.sqlite"
    result = _compare(tmp_path / "home", elsewhere)
    with Registry.open(elsewhere) as reg:
        assert reg.get_run(result.artifacts["registry_run"]).status == "finished"
    assert not (tmp_path / "home" / "registry.sqlite").exists()
    nothing = _compare(tmp_path / "none", False)
    assert "registry_run" not in nothing.artifacts and not (tmp_path / "none" / "registry.sqlite").exists()


def test_an_open_registry_is_used_and_left_open(tmp_path):
    with Registry.open(tmp_path / "mine.sqlite") as reg:
        result = _compare(tmp_path / "home", reg)
        assert reg.get_run(result.artifacts["registry_run"]).status == "finished"  # still open here


def test_a_sweep_without_a_registry_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="a sweep records its runs in a registry"):
        run_sweep(TOY, seeds=2, registry=False, home=tmp_path / "home", progress=False)
    assert not (tmp_path / "home").exists()
    with pytest.raises(ConfigError, match="registry=False records nothing"):
        analyze_sweep("any", registry=False, home=tmp_path / "home")
