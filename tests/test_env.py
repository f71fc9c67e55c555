"""Environment capture and diff, with real subprocesses and a real git repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from twinrun.env import capture_environment, diff_environments, git_state, numerics_fingerprint

CAPTURE = "import json; from twinrun.env import capture_environment; print(json.dumps(capture_environment()))"


def _capture_in_child(**env):
    proc = subprocess.run([sys.executable, "-c", CAPTURE], capture_output=True, text=True,
                          env={**os.environ, **env}, check=True, timeout=120)
    return json.loads(proc.stdout)


def test_capture_has_what_a_run_needs():
    env = capture_environment()
    assert env["python"]["version"].count(".") == 2
    assert env["torch"]["version"] and "num_threads" in env["torch"]
    assert "torch" in env["packages"] and "numpy" in env["packages"]
    assert "OMP_NUM_THREADS" in env["env_vars"] and "PYTHONHASHSEED" in env["env_vars"]
    assert env["devices"]["cpu_count"] >= 1
    json.dumps(env)  # JSON-ready


@pytest.mark.slow  # two child interpreters
def test_thread_count_difference_is_numerics_relevant():
    a = _capture_in_child(OMP_NUM_THREADS="1")
    b = _capture_in_child(OMP_NUM_THREADS="2")
    diffs = {d.key: d for d in diff_environments(a, b)}
    assert diffs["env_vars.OMP_NUM_THREADS"].numerics
    assert diffs["env_vars.OMP_NUM_THREADS"].a == "1" and diffs["env_vars.OMP_NUM_THREADS"].b == "2"
    assert diffs["torch.num_threads"].numerics and diffs["torch.num_threads"].reason == "thread count"
    assert numerics_fingerprint(a) != numerics_fingerprint(b)


def test_benign_and_library_differences_are_classified():
    a = capture_environment(git=False)
    b = json.loads(json.dumps(a))
    b["os"]["hostname"] = "elsewhere"
    b["packages"]["tqdm"] = "0.0.1"
    b["packages"]["numpy"] = "0.0.1"
    diffs = {d.key: d for d in diff_environments(a, b)}
    assert not diffs["os.hostname"].numerics
    assert not diffs["packages.tqdm"].numerics
    assert diffs["packages.numpy"].numerics and diffs["packages.numpy"].reason == "library version"
    assert list(diffs)[0] == "packages.numpy"  # numerics-relevant first
    assert numerics_fingerprint(a) != numerics_fingerprint(b)
    b["packages"]["numpy"] = a["packages"]["numpy"]
    assert numerics_fingerprint(a) == numerics_fingerprint(b)  # tqdm and hostname don't count


def test_git_state_records_dirty_diff(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.invalid")
    git("config", "user.name", "t")
    (tmp_path / "train.py").write_text("lr = 0.1\n")
    git("add", ".")
    git("commit", "-qm", "init")
    clean = git_state(tmp_path)
    assert clean["dirty"] is False and len(clean["commit"]) == 40
    (tmp_path / "train.py").write_text("lr = 0.3\n")
    dirty = git_state(tmp_path / "train.py")
    assert dirty["dirty"] is True and dirty["modified_files"] == ["train.py"]
    assert "-lr = 0.1" in dirty["diff"] and "+lr = 0.3" in dirty["diff"]
    diffs = {d.key: d for d in diff_environments({"git": clean}, {"git": dirty})}
    assert diffs["git.dirty"].numerics and diffs["git.diff"].numerics
    assert "lines, sha256" in diffs["git.diff"].to_dict()["b"]


def test_outside_a_repository(tmp_path):
    assert git_state(tmp_path) == {"repository": None}
