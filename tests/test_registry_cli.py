"""``twinrun runs / show / note / tag / diff / registry``, and a read-only registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import twinrun
from twinrun.cli import main
from twinrun.registry import Registry
from twinrun.registry._schema import SCHEMA_VERSION

SRC = str(Path(twinrun.__file__).resolve().parents[1])
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}


def _cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def two_runs(toy):
    """Two real comparisons that differ in one candidate's width; same process, same env."""
    common = {"candidates": ["small", "wide"], "progress": False, "logdir": None}
    a = twinrun.compare(toy, overrides={"steps": 5}, tags=["base"], **common)
    b = twinrun.compare(toy, overrides={"steps": 5, "wide:model.width": 48}, **common)
    return a.run_id, b.run_id


def test_runs_show_note_tag(two_runs, capsys):
    a, b = two_runs
    code, out, _ = _cli(capsys, "runs")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["id", "name", "status", "started"]
    assert lines[2].startswith(b[:8]) and lines[3].startswith(a[:8])  # newest first
    assert "accuracy" in lines[2] and "2 run(s)" in out
    code, out, _ = _cli(capsys, "runs", "--tag", "base", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [a]

    assert _cli(capsys, "note", a[:6], "wide", "is", "worse")[0] == 0
    code, out, _ = _cli(capsys, "tag", a[:6], "paper", "--json")
    assert code == 0 and json.loads(out) == {"run_id": a, "tags": ["base", "paper"]}
    code, out, _ = _cli(capsys, "show", a[:6])
    assert code == 0
    assert f"run {a} · toy · finished" in out and "wide is worse" in out and "base, paper" in out
    assert "small (ref)" in out and "Δ accuracy vs small" in out and "numerics fingerprint" in out
    code, out, _ = _cli(capsys, "show", "latest", "--json", "--metrics")
    data = json.loads(out)
    assert data["id"] == b and data["candidates"]["wide"]["config"]["model"]["kwargs"]["width"] == 48
    assert [s for s, _ in data["metrics"]["wide"]["train"]["loss"]] == [1, 2, 3, 4, 5]
    assert "source" not in data["experiment"]
    code, out, _ = _cli(capsys, "show", a, "--source")
    assert out.startswith('"""A tiny experiment for tests')


def test_diff_of_comparable_runs(two_runs, capsys):
    a, b = two_runs
    code, out, _ = _cli(capsys, "diff", a, b, "--json", "--check")
    assert code == 0  # comparable: --check passes
    d = json.loads(out)
    keys = {c["key"]: c for c in d["config"]}
    assert keys["candidates.wide.model.kwargs.width"]["a"] == 32
    assert keys["candidates.wide.model.kwargs.width"]["b"] == 48
    assert not any(k.startswith("candidates.small.") for k in keys)
    curves = {(c["candidate"], c["metric"]): c for c in d["curves"]}
    assert curves[("small", "loss")]["identical"] and curves[("small", "loss")]["steps"] == 5
    assert curves[("wide", "loss")]["first_difference"] == 1
    assert d["verdict"]["comparable"] is True and d["verdict"]["reasons"] == []
    assert [e for e in d["environment"] if e["numerics"]] == []
    code, out, _ = _cli(capsys, "diff", a[:8], b[:8])
    assert code == 0 and "verdict: COMPARABLE" in out and "identical step for step for small" in out


def test_diff_flags_a_changed_experiment_file_and_an_unfinished_run(toy, tmp_path, capsys):
    source = Path(toy.source.path).read_text()
    copy = tmp_path / "exp.py"
    copy.write_text(source)
    common = {"candidates": ["small"], "overrides": {"steps": 3}, "progress": False, "logdir": None}
    a = twinrun.compare(copy, **common).run_id
    copy.write_text(source.replace("spread: float = 1.5", "spread: float = 2.5"))
    b = twinrun.compare(copy, **common).run_id
    with Registry.open() as reg:
        c = reg.create_run(name="toy", config={}, candidates=["small"])  # never finishes
    code, out, _ = _cli(capsys, "diff", a, b, "--check", "--source")
    assert code == 1
    assert "NOT COMPARABLE" in out and "code: the experiment file changed" in out
    assert "-def blobs(n_train: int = 256, n_val: int = 128, features: int = 8, classes: int = 3, spread: float = 1.5)" in out
    code, out, _ = _cli(capsys, "diff", a, c, "--json")
    reasons = json.loads(out)["verdict"]["reasons"]
    assert code == 0 and any("is running: its numbers are partial" in r for r in reasons)
    assert any("no recorded environment" in r for r in reasons)


def test_bad_input_exits_2_with_a_fix(two_runs, capsys, tmp_path):
    a, _ = two_runs
    code, _, err = _cli(capsys, "show", "ffff")
    assert code == 2 and "twinrun: error: no run 'ffff'" in err and "fix:" in err
    code, _, err = _cli(capsys, "show", "toy")
    assert code == 2 and "twinrun runs --name toy" in err
    code, _, err = _cli(capsys, "diff", a, "nope")
    assert code == 2 and "no run 'nope'" in err
    code, _, err = _cli(capsys, "tag", a, "two words")
    assert code == 2 and "not a valid tag" in err
    text = tmp_path / "x.txt"
    text.write_text("hello")
    code, _, err = _cli(capsys, "runs", "--registry", str(text))
    assert code == 2 and "is not an SQLite database" in err and text.read_text() == "hello"
    code, out, err = _cli(capsys, "runs", "--registry", str(tmp_path / "none.sqlite"), "--json")
    assert code == 0 and json.loads(out) == [] and not (tmp_path / "none.sqlite").exists()
    code, _, err = _cli(capsys, "note", "latest", "x", "--registry", str(tmp_path / "none.sqlite"))
    assert code == 2 and "no twinrun registry" in err


def test_registry_info_and_check(two_runs, capsys):
    code, out, _ = _cli(capsys, "registry", "info", "--json")
    info = json.loads(out)
    assert code == 0 and info["runs"] == 2 and info["by_status"]["finished"] == 2
    assert info["schema_version"] == SCHEMA_VERSION and info["metric_rows"] > 0
    code, out, _ = _cli(capsys, "registry", "check")
    assert code == 0 and out.strip().endswith(": ok")


def test_help_teaches_with_examples_and_exit_codes(capsys):
    for command in (["runs"], ["show"], ["note"], ["tag"], ["diff"], ["registry", "upgrade"]):
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        out = capsys.readouterr().out
        assert done.value.code == 0 and "examples:" in out and "exit status" in out, command
        assert "--registry" in out and "--json" in out
    proc = subprocess.run(check=False, args=[sys.executable, "-m", "twinrun", "--help"], capture_output=True, text=True,
                          env=CHILD_ENV, timeout=120)
    assert proc.returncode == 0 and "twinrun runs" in proc.stdout


# ---------------------------------------------------------------------- read-only
def _read_only_runner(folder: Path):
    """A command prefix under which ``folder`` cannot be written: chmod for a normal user;
    for root (whom chmod does not stop), a read-only bind mount in a private mount namespace."""
    if os.geteuid() != 0:
        def restore():
            for p in [folder, *folder.iterdir()]:
                p.chmod(0o755 if p.is_dir() else 0o644)
        for p in folder.iterdir():
            p.chmod(0o444)
        folder.chmod(0o555)
        return [], restore
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare: no way to make a folder read-only for root")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    prefix = ["unshare", "-m", "sh", "-c", script, str(folder)]
    probe = subprocess.run(check=False, args=[*prefix, "sh", "-c", f"touch {folder}/probe"], capture_output=True, text=True)
    if probe.returncode == 0 or "Read-only" not in probe.stderr:
        pytest.skip(f"cannot make a read-only mount here: {probe.stderr.strip()}")
    return prefix, lambda: None


@pytest.mark.slow
def test_a_read_only_registry_can_be_read_but_not_written(toy, tmp_path):
    folder = tmp_path / "ro"
    result = twinrun.compare(toy, candidates=["small"], overrides={"steps": 2}, progress=False,
                             logdir=None, registry=folder / "registry.sqlite")
    path = folder / "registry.sqlite"
    before = path.read_bytes()
    prefix, restore = _read_only_runner(folder)
    try:
        def twinrun_cli(*args):
            return subprocess.run(check=False, args=[*prefix, sys.executable, "-m", "twinrun", *args, "--registry", str(path)],
                                  capture_output=True, text=True, env=CHILD_ENV, timeout=120)

        listed = twinrun_cli("runs", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [r["id"] for r in json.loads(listed.stdout)] == [result.run_id]
        shown = twinrun_cli("show", result.run_id[:8], "--json")
        assert shown.returncode == 0 and json.loads(shown.stdout)["status"] == "finished"
        noted = twinrun_cli("note", result.run_id[:8], "hello")
        assert noted.returncode == 2 and "read-only" in noted.stderr and "fix:" in noted.stderr
        assert "Traceback" not in noted.stderr
    finally:
        restore()
    assert path.read_bytes() == before
