"""The bundled demo, end to end, as `twinrun demo` runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_and_the_cnns_beat_the_mlp():
    proc = subprocess.run(
        [sys.executable, "-m", "twinrun", "demo", "--json"], capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data["candidates"]) == ["mlp", "cnn", "cnn_bn"]
    for name, cand in data["candidates"].items():
        assert cand["status"] == "finished", name
        assert cand["final"]["accuracy"] > 0.85, name
    # the convolutional nets are resolved better than the MLP on validation loss
    assert data["comparisons"]["cnn"]["val"]["loss"]["better"] is True
    assert data["comparisons"]["cnn_bn"]["val"]["loss"]["better"] is True
    # cnn and cnn_bn share their conv and head weights; batch-norm parameters are cnn_bn's own
    assert sorted(data["init"]["own"]["cnn_bn"]) == ["bn1.bias", "bn1.weight", "bn2.bias", "bn2.weight"]
