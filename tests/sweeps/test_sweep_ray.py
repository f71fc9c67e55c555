"""The Ray backend against a real local Ray instance: the same seeds give the same runs as locally.

Skipped, with the reason, where ray is not installed (``pip install "twinrun[ray]"``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TOY

import twinrun
from twinrun.registry import Registry
from twinrun.sweeps import Execution, run_sweep

pytestmark = pytest.mark.slow

SETTINGS = {"steps": 12, "eval_every": 6}


def test_ray_is_not_imported_unless_the_ray_backend_is_used():
    code = ("import sys, twinrun, twinrun.sweeps, twinrun.cli._app as app; app.build_parser(); "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# the direct runs in this process compare numbers only (no set of strings is iterated in training)
@pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")
def test_seeds_run_as_ray_tasks_are_the_runs_of_those_seeds(tmp_path):
    ray = pytest.importorskip("ray", reason='ray is not installed: pip install "twinrun[ray]"')
    assert not ray.is_initialized()
    try:  # no address: the backend starts a local instance (ray.init(num_cpus=cores, no dashboard))
        on_ray = run_sweep(TOY, seeds=2, execution=Execution("ray", jobs=2), candidates=["small", "wide"],
                           overrides=SETTINGS, home=tmp_path / "ray", progress=False)
        assert not ray.is_initialized()  # ... and stops it again
    finally:
        ray.shutdown()
    assert on_ray.status == "finished" and on_ray.finished == [0, 1]
    assert on_ray.execution["backend"] == "ray" and on_ray.execution["threads"] == 1
    with Registry.open(on_ray.registry) as reg:
        runs = {r.seed: reg.get_run(r.id) for r in reg.list_runs(sweep_id=on_ray.sweep_id)}
        assert all(reg.count_metrics(run.id) > 0 and reg.artifacts(run.id, "seed_outputs") for run in runs.values())
    assert sorted(runs) == [0, 1]
    for seed in (0, 1):  # the one writer: each seed recorded its run in a registry of its own node, now gone
        own = json.loads(next((tmp_path / "ray").glob(f"**/seeds/seed-{seed}.task.json")).read_text())["registry"]
        assert own != str(on_ray.registry) and "twinrun-seed-" in own and not Path(own).exists()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in each seed's process
    try:
        for seed, run in runs.items():
            assert run.status == "finished" and run.env["env_vars"]["PYTHONHASHSEED"] == "0"
            direct = twinrun.compare(TOY, candidates=["small", "wide"], overrides={**SETTINGS, "seed": seed},
                                     home=tmp_path / "direct", progress=False, logdir=None, registry=False)
            assert run.result["candidates"]["small"]["final"] == direct.to_dict()["candidates"]["small"]["final"]
            assert run.result["candidates"]["wide"]["final"] == direct.to_dict()["candidates"]["wide"]["final"]
    finally:
        torch.set_num_threads(threads)
    ensemble = on_ray.analysis["metrics"]["accuracy"]["ensemble"]
    assert ensemble["small"]["n_seeds"] == ensemble["wide"]["n_seeds"] == 2


def test_a_missing_ray_says_how_to_install_it(monkeypatch, capsys):
    from twinrun.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees where it is not installed
    assert main(["seeds", str(TOY), "--seeds", "2", "--backend", "ray"]) == 2
    err = capsys.readouterr().err
    assert "--backend ray needs the ray package" in err and 'pip install "twinrun[ray]"' in err
    assert not (Path(os.environ["TWINRUN_HOME"]) / "registry.sqlite").exists()  # nothing recorded
