"""A sweep's options as two small objects: where the seeds run (Execution) and how they are read (Analysis)."""

from __future__ import annotations

import warnings

import pytest
from conftest import TOY

from twinrun.errors import ConfigError
from twinrun.sweeps import Analysis, Execution, analyze_sweep, run_sweep

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")


@pytest.mark.parametrize(
    ("make", "message", "fix"),
    [
        (lambda: Execution("cloud"), "backend 'cloud' is not one of local, inprocess, ray", "--backend local"),
        (lambda: Execution(address="ray://head:10001"), "names a Ray cluster, but the backend is 'local'",
         "--backend ray"),
        (lambda: Execution.of(3), "neither an Execution nor a backend's name", 'execution="inprocess"'),
        (lambda: Analysis(confidence=1.5), "confidence=1.5 must be between 0 and 1", "0.95"),
        (lambda: Analysis(deploy="both please"), "deploy='both please' is not one of", "--deploy ensemble"),
        (lambda: Analysis(n_resamples=10), "n_resamples=10 must be an integer of at least 100", "10000"),
    ],
)
def test_bad_options_fail_when_made_with_the_fix(make, message, fix):
    with pytest.raises(ConfigError) as err:
        make()
    assert message in err.value.message and fix in err.value.fix


def test_options_are_frozen_and_a_name_is_a_backend():
    assert Execution.of("inprocess") == Execution(backend="inprocess") and Execution.of(None) == Execution()
    with pytest.raises(AttributeError):
        Execution().jobs = 2  # type: ignore[misc]


def test_old_flat_keywords_still_run_with_a_warning_naming_the_object(tmp_path):
    with pytest.warns(DeprecationWarning, match=r"run_sweep\(backend='inprocess'\) is deprecated: pass "
                                                 r"execution=twinrun.sweeps.Execution\(backend='inprocess'\)") as seen:
        old = run_sweep(TOY, seeds=2, backend="inprocess", candidates=["small", "wide"], overrides={"steps": 4},
                        home=tmp_path / "old", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the new form warns of nothing
        new = run_sweep(TOY, seeds=2, execution="inprocess", candidates=["small", "wide"], overrides={"steps": 4},
                        home=tmp_path / "new", progress=False)
        again = analyze_sweep(new.sweep_id, home=tmp_path / "new", analysis=Analysis(n_resamples=200))
    assert seen[0].filename == __file__  # the warning names the caller's line (Python shows it only there)
    assert old.execution["backend"] == new.execution["backend"] == "inprocess"
    assert old.analysis["metrics"] == new.analysis["metrics"]
    with pytest.warns(DeprecationWarning, match=r"analyze_sweep\(n_resamples=200\) is deprecated") as seen:
        legacy = analyze_sweep(new.sweep_id, home=tmp_path / "new", n_resamples=200)
    assert seen[0].filename == __file__
    assert legacy["metrics"] == again["metrics"]
    assert {m["n_resamples"] for m in again["metrics"].values()} == {200}


def test_a_keyword_given_both_ways_or_unknown_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError) as err:
        run_sweep(TOY, seeds=2, execution=Execution(jobs=2), jobs=3, home=tmp_path)
    assert "jobs both as keywords and in execution=" in err.value.message and "once" in err.value.fix
    with pytest.raises(TypeError, match="unexpected keyword argument 'jbos'"):
        run_sweep(TOY, seeds=2, jbos=2, home=tmp_path)
    with pytest.raises(TypeError, match="unexpected keyword argument 'jobs'"):
        analyze_sweep("any", jobs=2, home=tmp_path)
    assert not (tmp_path / "registry.sqlite").exists()
