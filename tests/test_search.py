"""Twin search: sampled trials trained as twins of the reference, ranked paired, confirmed by replicas."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _subprocess import HERE, child_env
from conftest import TOY

import twinrun
from twinrun.errors import ConfigError
from twinrun.ledger import Ledger
from twinrun.registry import open_registry
from twinrun.search import choice, integer, loguniform, parse_space, search, uniform
from twinrun.search._samplers import OptunaSampler, RandomSampler

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")
SPACE = {"optimizer.lr": loguniform(0.01, 0.5), "model.width": choice([8, 16, 32])}


def test_sampled_trials_are_a_function_of_the_seed():
    a, b, other = (RandomSampler(SPACE, s).ask(5) for s in (0, 0, 1))
    assert a == b and a != other
    resumed = RandomSampler(SPACE, 0)
    resumed.skip(3)
    assert resumed.ask(2) == a[3:]  # a resumed search proposes exactly the trials it would have
    assert all(0.01 <= c["optimizer.lr"] <= 0.5 and c["model.width"] in (8, 16, 32) for _, c in a)


def test_every_trial_of_a_batch_is_a_twin_of_the_reference(toy, tmp_path):
    found = search(toy, trials=3, batch=3, space={"optimizer.lr": loguniform(0.01, 0.5)}, confirm=0,
                   overrides={"steps": 8}, home=tmp_path)
    assert [t.name for t in found.trials] == ["t000", "t001", "t002"] and {t.batch for t in found.trials} == {0}
    with open_registry(tmp_path / "registry.sqlite") as reg:
        run = reg.get_run(found.trials[0].run_id)
        ledger = Ledger.load(Path(run.result["artifacts"]["ledger"]))
    assert run.tags == ("batch:0", f"search:{found.id[:8]}")
    assert run.result["init"]["own"] == {"small": [], "t000": [], "t001": [], "t002": []}  # every tensor shared
    for step in range(1, 9):  # the same batch, by content, for the reference and every trial
        digests = {r.hash for r in ledger.records if r.step == step and r.kind == "batch" and r.name == "inputs"}
        assert len({r.candidate for r in ledger.records if r.step == step and r.kind == "batch"}) == 4
        assert len(digests) == 1
    lrs = {n: c["optimizer"]["kwargs"]["lr"] for n, c in run.config["candidates"].items()}
    assert [lrs[t.name] for t in found.trials] == [t.overrides["optimizer.lr"] for t in found.trials]
    ranked = found.ranked()
    assert [t.diff for t in ranked] == sorted((t.diff for t in found.trials), reverse=True)  # accuracy: higher


def test_the_winner_is_what_the_replicas_support(toy, tmp_path):
    found = search(toy, trials=2, batch=2, space={"model.width": choice([1, 32])}, confirm=2, replicas=3,
                   overrides={"steps": 24}, home=tmp_path, seed=3)
    conf = found.confirmation
    assert conf["replicas"] == 3 and set(conf["comparisons"]) <= {"t000", "t001"}
    # the replicas never reuse the seed the trials were ranked on (toy's seed 3)
    state = json.loads((Path(found.folder) / "search.json").read_text())
    assert sorted(state["confirmation"]["runs"], key=int) == ["4", "5", "6"]
    for name, c in conf["comparisons"].items():
        assert c["decision"] in ("better", "worse", "not resolved")
        assert (found.winner == name) <= (c["decision"] == "better")
    assert "confirmed across 3 replicas" in found.format()
    shown = twinrun.search.load_search(found.folder)
    assert shown.to_dict() == found.to_dict()


@pytest.mark.slow
def test_a_search_killed_mid_way_resumes_without_re_running_finished_batches(tmp_path):
    home = tmp_path / "home"
    env = {**child_env(), "PYTHONHASHSEED": "0", "TWINRUN_HOME": str(home)}
    args = [sys.executable, "-m", "twinrun", "search", str(TOY), "--space", "optimizer.lr=loguniform(0.01, 0.5)",
            "--trials", "6", "--batch", "2", "--confirm", "0", "--set", "steps=60"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    state_file = None
    while time.monotonic() < deadline:  # the event: the first batch recorded as finished
        found = list((home / "searches").glob("*/search.json")) if (home / "searches").is_dir() else []
        if found:
            state = json.loads(found[0].read_text())
            if state["batches"] and state["batches"][0]["status"] == "finished":
                state_file = found[0]
                break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    assert state_file is not None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = json.loads(state_file.read_text())["batches"][0]
    sid = json.loads(state_file.read_text())["id"]
    done = subprocess.run([*args[:5], "--resume", sid[:8], "--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert len(result["trials"]) == 6 and all(t["status"] == "finished" for t in result["trials"])
    assert [t["run_id"] for t in result["trials"][:2]] == [first["run_id"]] * 2  # not re-run
    with open_registry(home / "registry.sqlite") as reg:
        batch0 = [r for r in reg.list_runs(tag="batch:0")]
    assert len(batch0) == 1


def test_optuna_finds_the_same_best_configuration_as_random_search(toy, tmp_path):
    pytest.importorskip("optuna")
    space = {"model.width": choice([1, 32])}
    best = {}
    for sampler in ("random", "tpe"):
        found = search(toy, trials=4, batch=2, space=space, sampler=sampler, confirm=0, overrides={"steps": 24},
                       home=tmp_path / sampler)
        best[sampler] = found.ranked()[0].overrides["model.width"]
        if sampler == "tpe":
            import optuna

            study = optuna.load_study(study_name=found.id, storage=f"sqlite:///{Path(found.folder) / 'optuna.db'}")
            assert len([t for t in study.trials if t.state.name == "COMPLETE"]) == 4
    assert best == {"random": 32, "tpe": 32}


@pytest.mark.parametrize("kwargs,match", [
    ({"space": {"optimizer.lrr": loguniform(1e-3, 1e-1)}}, "lrr"),
    ({"space": {"optimizer.lr": 0.1}}, "is not a distribution"),
    ({"trials": 0}, "--trials 0 must be a whole number >= 1"),
    ({"metric": "top5"}, "metric 'top5' is not measured"),
    ({"space": {"wide:optimizer.lr": loguniform(1e-3, 1e-1)}}, "name one candidate"),
    ({"space": {}}, "has no search space"),
    ({"sampler": "bayes"}, "--sampler 'bayes' is not one of"),
])
def test_bad_input_is_refused_before_training(toy, tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        search(toy, **{"trials": 2, "space": SPACE, **kwargs}, home=tmp_path)
    assert not (tmp_path / "registry.sqlite").exists()


def test_distributions_refuse_bad_ranges_and_parse_from_the_command_line():
    with pytest.raises(ConfigError, match="both bounds must be positive"):
        loguniform(0, 1)
    with pytest.raises(ConfigError, match="empty range"):
        uniform(1.0, 1.0)
    with pytest.raises(ConfigError, match="empty range"):
        integer(3, 2)
    with pytest.raises(ConfigError, match="nothing to choose"):
        choice([])
    space = parse_space(["optimizer.lr=loguniform(1e-4, 1e-2)", "model.width=choice([64, 128])"])
    assert space == {"optimizer.lr": loguniform(1e-4, 1e-2), "model.width": choice([64, 128])}
    with pytest.raises(ConfigError, match="is not KEY=DISTRIBUTION"):
        parse_space(["optimizer.lr=gaussian(0, 1)"])
    draws = [integer(1, 3).draw(np.random.default_rng(i)) for i in range(50)]
    assert set(draws) == {1, 2, 3}


def test_the_search_report_draws_every_trial_against_each_hyperparameter(toy, tmp_path):
    from twinrun.report import search_report

    found = search(toy, trials=4, batch=2, space=SPACE, confirm=0, overrides={"steps": 6}, home=tmp_path)
    text = search_report(found).render()
    assert text.count('data-figure="search"') == 2  # optimizer.lr and model.width
    for t in found.trials:
        assert f"{t.diff:+.4f}" in text
