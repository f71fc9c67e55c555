"""The bundled demo, end to end, as `twinrun demo` runs it: 4 replicas by default, or one run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _demo(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "twinrun", "demo", "--json", *args], capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_demo_compares_across_4_replicas_and_the_cnns_beat_the_mlp():
    data = _demo()
    assert data["k"] == 4 and data["finished"] == [0, 1, 2, 3]
    loss = data["metrics"]["loss"]["comparisons"]
    assert loss["cnn"]["decision"] == "better" and loss["cnn_bn"]["decision"] == "better"
    accuracy = data["metrics"]["accuracy"]["summary"]
    assert all(accuracy[name]["mean"] > 0.85 for name in ("mlp", "cnn", "cnn_bn"))


def test_one_run_of_the_demo_is_scoped_to_its_weights():
    data = _demo("--replicas", "1")
    assert list(data["candidates"]) == ["mlp", "cnn", "cnn_bn"]
    for name, cand in data["candidates"].items():
        assert cand["status"] == "finished", name
        assert cand["final"]["accuracy"] > 0.85, name
    # the convolutional nets are resolved better than the MLP on validation loss, for these weights
    assert data["comparisons"]["cnn"]["val"]["loss"]["better"] is True
    assert "these trained weights" in data["comparisons"]["cnn"]["val"]["loss"]["scope"]
    # cnn and cnn_bn share their conv and head weights; batch-norm parameters are cnn_bn's own
    assert sorted(data["init"]["own"]["cnn_bn"]) == ["bn1.bias", "bn1.weight", "bn2.bias", "bn2.weight"]
