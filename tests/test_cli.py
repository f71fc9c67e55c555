"""The command line, run as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import TOY

pytestmark = pytest.mark.slow  # every test starts the twinrun command as a process


def _twinrun(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "twinrun", *args], capture_output=True, text=True, cwd=cwd,
        env={**os.environ}, timeout=1800,
    )


def test_compare_json_is_pure_json_on_stdout():
    proc = _twinrun("compare", str(TOY), "--set", "steps=6", "--candidates", "small,wide", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data["candidates"]) == {"small", "wide"}
    assert data["reference"] == "small" and data["steps"] == 6
    assert "wide" in data["comparisons"] and "low" in data["comparisons"]["wide"]["val"]["loss"]


def test_compare_prints_the_verdict_table():
    proc = _twinrun("compare", str(TOY), "--steps", "4", "--reference", "wide", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "wide (ref)" in proc.stdout and "Δ loss vs wide [95% CI]" in proc.stdout
    assert "tensorboard --logdir" in proc.stdout


def test_errors_name_the_value_and_the_fix():
    proc = _twinrun("compare", str(TOY), "--set", "model.widht=3")
    assert proc.returncode == 2
    assert "widht" in proc.stderr and "fix: valid model keys: " in proc.stderr and "width" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _twinrun("compare", "nowhere.py")
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_help_teaches():
    proc = _twinrun("--help")
    assert proc.returncode == 0 and "twinrun demo" in proc.stdout
    proc = _twinrun("compare", "--help")
    assert "examples:" in proc.stdout and "--set" in proc.stdout and "exit status" in proc.stdout


def test_demo_show_file_is_a_loadable_experiment(tmp_path):
    proc = _twinrun("demo", "--show-file")
    assert proc.returncode == 0
    path = tmp_path / "mine.py"
    path.write_text(proc.stdout)
    import twinrun

    exp = twinrun.load_experiment(path)
    assert exp.name == "digits" and list(exp.candidates) == ["mlp", "cnn", "cnn_bn"]
