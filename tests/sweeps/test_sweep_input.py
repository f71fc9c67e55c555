"""Bad input to ``twinrun seeds`` fails before any seed runs, naming the value and the fix;
the seeds of a plan; overrides that must cross a process boundary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import TOY

import twinrun
from twinrun.cli import main
from twinrun.errors import ConfigError
from twinrun.registry import Registry
from twinrun.sweeps import SweepPlan, choose_seeds, make_plan, run_sweep
from twinrun.sweeps._plan import override_args


@pytest.fixture(autouse=True)
def _fixed_hash_seed(monkeypatch):
    """The CLI trains seeds in this process when PYTHONHASHSEED is fixed (else it re-runs itself in a
    child with it, whose output capsys cannot see)."""
    monkeypatch.setenv("PYTHONHASHSEED", "0")



def _nothing_recorded() -> bool:
    path = Path(os.environ["TWINRUN_HOME"]) / "registry.sqlite"
    if not path.exists():
        return True
    with Registry.open(path) as reg:
        return reg.list_sweeps() == [] and reg.count_runs() == 0


@pytest.mark.parametrize("args, message, fix", [
    (["--seeds", "0"], "--seeds 0: a sweep needs at least 1 seed", "--seeds 5"),
    (["--seed-list", "3,x"], "'x' is not an integer", "--seed-list 3,7,11"),
    (["--seed-list", "3,7,3"], "seed 3 is listed twice", "each seed once"),
    (["--seed-list", "-1"], "seed -1 must be an integer in [0, 2**63)", ""),
    (["--seeds", "2", "--seed-list", "1,2"], "--seeds and --seed-list both given", ""),
    (["--seed-list", "1,2", "--base-seed", "5"], "cannot be combined with a seed list", ""),
    (["--seeds", "2", "--set", "seed=4"], "a sweep gives every run its own seed", "--seed-list"),
    (["--seeds", "2", "--metric", "f1"], "metric 'f1' is not measured", "loss, accuracy"),
    (["--seeds", "2", "--candidates", "small,nope"], "candidate 'nope' is not in experiment", "small"),
    (["--seeds", "2", "--reference", "nope"], "reference candidate 'nope'", ""),
    (["--seeds", "2", "--set", "model.depth=3"], "depth", ""),
    (["--seeds", "2", "--address", "auto"], "names a Ray cluster, but the backend is 'local'",
     "--backend ray"),
    (["--seeds", "2", "--jobs", "0"], "jobs=0 must be a positive integer", "--jobs 2"),
    (["--seeds", "2", "--threads", "0"], "threads=0 must be a positive integer", "--threads 1"),
    (["--seeds", "2", "--confidence", "1.5"], "confidence=1.5 must be between 0 and 1", ""),
    (["--seeds", "2", "--resume", "abcdef"], "no sweep 'abcdef'", "twinrun seeds --list"),
    ([], "how many seeds?", "--seeds 10"),
])
def test_bad_input_exits_2_before_anything_runs(args, message, fix, capsys):
    assert main(["seeds", str(TOY), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("twinrun: error: ") and message in err, err
    assert fix in err
    assert _nothing_recorded()


def test_no_experiment_file(capsys):
    assert main(["seeds", "--seeds", "3"]) == 2
    assert "no experiment file given" in capsys.readouterr().err
    assert main(["seeds", "missing.py", "--seeds", "3"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert _nothing_recorded()


def test_seeds_are_a_range_a_derivation_or_a_list():
    assert choose_seeds(4) == (0, 1, 2, 3)
    derived = choose_seeds(3, base_seed=42)
    assert derived == tuple(twinrun.rng.derive_seed(42, "sweep", i) for i in range(3))
    assert derived == choose_seeds(3, base_seed=42) != choose_seeds(3, base_seed=43)
    assert len(set(derived)) == 3 and all(0 <= s < 2**63 for s in derived)
    assert choose_seeds([7, 3, 11]) == (7, 3, 11)  # as given, in order
    with pytest.raises(ConfigError):
        choose_seeds(None)
    with pytest.raises(ConfigError):
        choose_seeds(True)  # type: ignore[arg-type]


def test_a_plan_records_what_defines_the_comparison(toy):
    plan, resolved = make_plan(TOY, (0, 1), overrides={"steps": 8, "model.width": 12},
                               candidates=["small", "wide"])
    assert plan.experiment == str(TOY.resolve()) and plan.name == "toy"
    assert plan.overrides == ("steps=8", "model.width=12") and plan.candidates == ("small", "wide")
    assert plan.metric == "accuracy" and plan.metrics == {"loss": False, "accuracy": True}
    assert resolved.settings.seed == 0 and resolved.settings.steps == 8
    assert SweepPlan.from_config(plan.to_config()) == plan
    # the seed is not part of the configuration; everything else is
    other_seeds, _ = make_plan(TOY, (5, 6), overrides={"steps": 8, "model.width": 12},
                               candidates=["small", "wide"])
    assert other_seeds.sweep_hash == plan.sweep_hash
    other_steps, _ = make_plan(TOY, (0, 1), overrides={"steps": 9, "model.width": 12},
                               candidates=["small", "wide"])
    assert other_steps.sweep_hash != plan.sweep_hash
    # an Experiment object works when it is what its file defines
    from_object, _ = make_plan(toy, (0, 1), overrides={"steps": 8, "model.width": 12},
                               candidates=["small", "wide"])
    assert from_object.sweep_hash == plan.sweep_hash


def test_an_experiment_a_process_cannot_load_is_refused(toy):
    changed = toy.replace(steps=999)
    with pytest.raises(ConfigError) as err:
        make_plan(changed, (0,))
    assert "differs from the one its file" in err.value.message
    built = twinrun.Experiment(name="inline", data=toy.data, model=toy.model, optimizer=toy.optimizer,
                               loss=toy.loss, candidates={"a": {}})
    with pytest.raises(ConfigError) as err:
        run_sweep(built, seeds=2)
    assert "was not loaded from a file" in err.value.message and "pass the path" in err.value.fix
    assert _nothing_recorded()


def test_overrides_cross_the_process_boundary_as_text():
    args = override_args({"steps": 8, "optimizer.lr": 1e-3, "model": "toy:DeepMLP", "tag": "3",
                          "widths": [1, 2], "grad_clip": None})
    assert args == ("steps=8", "optimizer.lr=0.001", "model=toy:DeepMLP", "tag='3'", "widths=[1, 2]",
                    "grad_clip=None")
    assert twinrun.spec.parse_overrides(list(args)) == {"steps": 8, "optimizer.lr": 1e-3, "model": "toy:DeepMLP",
                                                   "tag": "3", "widths": [1, 2], "grad_clip": None}
    with pytest.raises(ConfigError) as err:
        override_args({"model": object})
    assert "cannot be passed to a seed's process" in err.value.message


def test_resume_followed_by_a_file_resumes_by_configuration(capsys):
    # `--resume exp.py`: the file is the experiment (not a sweep id), resumed by configuration
    assert main(["seeds", "--resume", str(TOY)]) == 2
    assert "how many seeds?" in capsys.readouterr().err
    assert _nothing_recorded()
