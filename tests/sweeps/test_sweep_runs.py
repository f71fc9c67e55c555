"""A real sweep of the toy experiment: seeds recorded under one sweep id, paired within a seed,
the same numbers as ``compare`` with that seed, ensembles from the saved outputs, the CLI views."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TOY

import twinrun
from twinrun.cli import main
from twinrun.registry import Registry
from twinrun.stats import seed_ensemble
from twinrun.sweeps import Execution, OUTPUTS_ARTIFACT, load_outputs, run_sweep

pytestmark = pytest.mark.slow

CANDIDATES = ["small", "deep", "fast"]  # in declared order
STEPS = 16


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Seeds 0, 1, 2 of the toy experiment, 2 at a time, in a home of its own."""
    home = tmp_path_factory.mktemp("sweep-home")
    result = run_sweep(TOY, seeds=3, execution=Execution(jobs=2), candidates=CANDIDATES, overrides={"steps": STEPS},
                       home=home, progress=False)
    return result, home


def _runs(result):
    with Registry.open(result.registry) as reg:
        return {r.seed: reg.get_run(r.id) for r in reg.list_runs(sweep_id=result.sweep_id)}


def test_every_seed_is_a_finished_run_of_the_sweep(sweep):
    result, _ = sweep
    assert result.status == "finished" and result.ok
    assert result.finished == [0, 1, 2] and result.skipped == []
    assert [o.seed for o in result.ran] == [0, 1, 2] and all(o.status == "finished" for o in result.ran)
    runs = _runs(result)
    assert sorted(runs) == [0, 1, 2]
    with Registry.open(result.registry) as reg:
        stored = reg.get_sweep(result.sweep_id[:6])  # a prefix finds it
        assert stored.status == "finished" and set(stored.runs) == {r.id for r in runs.values()}
        assert stored.config["seeds"] == [0, 1, 2] and stored.config["sessions"][0]["jobs"] == 2
        for seed, run in runs.items():
            assert run.status == "finished" and run.sweep_id == result.sweep_id and run.seed == seed
            assert run.config["settings"]["seed"] == seed and run.steps == STEPS
            assert list(run.candidates) == CANDIDATES
            # each seed's process had the hash seed and its share of the cores, recorded with the run
            assert run.env["env_vars"]["PYTHONHASHSEED"] == "0"
            assert run.env["env_vars"]["OMP_NUM_THREADS"] == str(result.execution["threads"])
            artifact = reg.artifacts(run.id, OUTPUTS_ARTIFACT)[0]
            assert Path(artifact["path"]).is_file() and artifact["payload"]["kind"] == "logits"


def test_candidates_share_a_seed_and_seeds_differ(sweep):
    result, _ = sweep
    runs = _runs(result)
    for run in runs.values():
        init = run.result["init"]
        # small and fast are one architecture: every initial tensor shared within the seed
        assert init["own"]["small"] == [] and init["own"]["fast"] == []
        assert any({"small", "fast"} <= set(group) for g in init["groups"].values() for group in g)
    # across seeds, the same candidate trains differently (other init, batches, augmentation)
    finals = [runs[s].result["candidates"]["small"]["final"]["loss"] for s in (0, 1, 2)]
    assert len(set(finals)) == 3
    outputs = [load_outputs(runs[s].result["artifacts"]["run_dir"] + "/outputs.pt") for s in (0, 1, 2)]
    assert not torch.equal(outputs[0]["outputs"]["small"], outputs[1]["outputs"]["small"])
    # ... on one validation set
    assert all(torch.equal(o["targets"], outputs[0]["targets"]) for o in outputs)


def test_a_seed_of_the_sweep_equals_compare_with_that_seed(sweep):
    result, home = sweep
    runs = _runs(result)
    threads = torch.get_num_threads()
    torch.set_num_threads(result.execution["threads"])  # the seed's process ran with this many
    try:
        direct = twinrun.compare(TOY, candidates=CANDIDATES, overrides={"steps": STEPS, "seed": 1},
                                 home=home / "direct", progress=False, logdir=None, registry=False)
    finally:
        torch.set_num_threads(threads)
    swept = runs[1].result["candidates"]
    for name in CANDIDATES:
        assert swept[name]["final"] == direct.candidates[name].to_dict()["final"]
    saved = load_outputs(runs[1].result["artifacts"]["run_dir"] + "/outputs.pt")
    for name in CANDIDATES:
        assert torch.equal(saved["outputs"][name], direct.candidates[name].outputs)


def test_the_analysis_is_the_statistics_of_the_runs(sweep):
    result, _ = sweep
    runs = _runs(result)
    analysis = result.analysis
    assert analysis["metric"] == "accuracy" and list(analysis["metrics"]) == ["accuracy", "loss"]
    acc = analysis["metrics"]["accuracy"]
    assert acc["seeds"] == [0, 1, 2] and acc["reference"] == "small"
    for name in CANDIDATES:
        values = [runs[s].result["candidates"][name]["final"]["accuracy"] for s in (0, 1, 2)]
        assert acc["summary"][name]["values"] == values
        assert acc["summary"][name]["mean"] == pytest.approx(np.mean(values), abs=1e-12)
    d = acc["comparisons"]["fast"]["difference"]
    fast = np.array(acc["summary"]["fast"]["values"])
    small = np.array(acc["summary"]["small"]["values"])
    assert d["diff"] == pytest.approx(float(np.mean(fast - small)), abs=1e-12)
    assert analysis["recommendation"] == acc["recommendation"]["line"] and analysis["recommendation"]


def test_ensembles_are_seed_ensemble_of_the_saved_outputs(sweep):
    result, _ = sweep
    runs = _runs(result)
    saved = [load_outputs(runs[s].result["artifacts"]["run_dir"] + "/outputs.pt") for s in (0, 1, 2)]
    outputs = {c: torch.stack([o["outputs"][c] for o in saved]) for c in CANDIDATES}
    expected = seed_ensemble(outputs, saved[0]["targets"], kind="logits", metric=twinrun.accuracy,
                             seeds=[0, 1, 2])
    assert result.analysis["metrics"]["accuracy"]["ensemble"] == expected
    loss = result.analysis["metrics"]["loss"]["ensemble"]
    for c in CANDIDATES:  # one seed's "ensemble" loss is its run's validation loss
        per_run = [runs[s].result["candidates"][c]["final"]["loss"] for s in (0, 1, 2)]
        assert loss[c]["per_seed"] == pytest.approx(per_run, rel=1e-6)
        assert loss[c]["higher_is_better"] is False and len(loss[c]["curve"]) == 3


def test_the_analysis_is_stored_and_json_safe(sweep):
    result, home = sweep
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert "NaN" not in text
    stored_file = json.loads((result.folder / "analysis.json").read_text())
    with Registry.open(result.registry) as reg:
        assert reg.get_sweep(result.sweep_id).analysis == stored_file == result.analysis
    assert result.folder == home / "sweeps" / result.sweep_id


def test_show_and_list_print_the_stored_sweep_without_running(sweep, capsys):
    result, home = sweep
    runs_before = len(_runs(result))
    assert main(["seeds", "--show", result.sweep_id[:8], "--home", str(home), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == result.analysis
    assert main(["seeds", "--show", result.sweep_id[:8], "--home", str(home)]) == 0
    text = capsys.readouterr().out
    for expected in ("accuracy (higher is better) · main metric", "small (ref)", "P(better)",
                     "var. removed", "recommendation:", "recommendation (loss):", "3/3"):
        assert expected in text
    assert main(["seeds", "--list", "--home", str(home)]) == 0
    listing = capsys.readouterr().out
    assert result.sweep_id[:8] in listing and "3/3" in listing and "finished" in listing
    assert len(_runs(result)) == runs_before


def test_show_with_another_metric_reanalyses_without_storing(sweep, capsys):
    result, home = sweep
    assert main(["seeds", "--show", result.sweep_id, "--home", str(home), "--metric", "loss",
                 "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["metric"] == "loss" and next(iter(shown["metrics"])) == "loss"
    assert shown["metrics"]["loss"] == result.analysis["metrics"]["loss"]  # same seeds, same draws
    with Registry.open(result.registry) as reg:
        assert reg.get_sweep(result.sweep_id).analysis["metric"] == "accuracy"


def test_resuming_with_another_configuration_is_refused(sweep):
    result, home = sweep
    with pytest.raises(twinrun.ConfigError) as err:
        run_sweep(TOY, resume=result.sweep_id, overrides={"steps": STEPS + 1}, home=home, progress=False)
    assert "ran another configuration" in err.value.message and "steps=17" in err.value.message


def test_resuming_a_finished_sweep_runs_nothing(sweep):
    result, home = sweep
    again = run_sweep(resume=result.sweep_id[:8], home=home, progress=False)
    assert again.ran == [] and again.skipped == [0, 1, 2] and again.status == "finished"
    assert again.analysis["metrics"] == result.analysis["metrics"]
    assert len(_runs(result)) == 3


def test_one_seed_runs_and_says_what_cannot_be_computed(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "twinrun", "seeds", str(TOY), "--seeds", "1", "--candidates", "small,fast",
         "--set", f"steps={STEPS}"], capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "1/1 seeds finished" in out and "cannot be computed:" in out
    assert "need at least 2 seeds" in out
    assert "run at least 2 seeds" in out  # the recommendation says what to do
    proc = subprocess.run([sys.executable, "-m", "twinrun", "seeds", "--list", "--json"],
                          capture_output=True, text=True, check=False, timeout=120)
    listed = json.loads(proc.stdout)
    assert len(listed) == 1 and listed[0]["seeds_done"] == [0]
    proc = subprocess.run([sys.executable, "-m", "twinrun", "seeds", "--show", listed[0]["id"], "--json"],
                          capture_output=True, text=True, check=False, timeout=120)
    shown = json.loads(proc.stdout)  # JSON has no NaN (json.loads would take it; check the text)
    assert "NaN" not in proc.stdout and shown["k"] == 1
    summary = shown["metrics"]["accuracy"]["summary"]["small"]
    assert summary["std"] is None and "at least 2 seeds" in summary["unavailable"]["std"]
    assert math.isfinite(summary["mean"])
