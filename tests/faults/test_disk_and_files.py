"""A full disk, corrupt ledgers and registries, hostile names and a registry read while 8 processes
write it: every one ends in a clear message and an intact registry, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _subprocess import HERE, child_env, wait_for

from twinrun.registry import Registry

pytestmark = [pytest.mark.slow, pytest.mark.faults]

TOY = str(HERE / "experiments" / "toy.py")
WORKER = HERE / "registry_worker.py"


def _twinrun(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "twinrun", *map(str, args)], capture_output=True, text=True,
                          env=env or child_env(PYTHONHASHSEED="0"), timeout=timeout)


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs (needs root and permission to mount; skipped with the reason otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or 'mount failed'}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_ends_in_a_clear_error_and_an_intact_registry(small_disk):
    home = small_disk / "home"
    proc = _twinrun("compare", TOY, "--home", home, "--steps", "5000", "--checkpoint-every", "1",
                    "--keep-checkpoints", "100000", "--no-tensorboard", "-q")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "twinrun: error: the disk is full: could not write " + str(home) in proc.stderr
    assert "MiB free on the disk of" in proc.stderr and "fix:" in proc.stderr
    with Registry.open(home / "registry.sqlite", readonly=True) as reg:
        assert reg.integrity_check() == "ok"
        [run] = reg.list_runs()
        assert run.status in ("failed", "crashed") and (run.last_step or 0) >= 1


@pytest.mark.parametrize("damage", ["truncated line", "flipped byte", "foreign file", "empty"])
def test_a_corrupt_ledger_is_named_with_exit_2(damage, tmp_path):
    home = tmp_path / "home"
    assert _twinrun("compare", TOY, "--home", home, "--steps", "3", "--no-tensorboard", "-q").returncode == 0
    [ledger] = list(home.glob("runs/*/ledger.jsonl"))
    text = ledger.read_bytes()
    ledger.write_bytes({"truncated line": text[: len(text) // 2], "flipped byte": text.replace(b'"', b"'", 5),
                        "foreign file": b"PK\x03\x04zip", "empty": b""}[damage])
    proc = _twinrun("ledger", ledger)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "twinrun: error:" in proc.stderr and str(ledger) in proc.stderr


@pytest.mark.parametrize("damage,code", [("pages scrambled", 1), ("header garbage", 2), ("truncated", None),
                                         ("text file", 2)])
def test_a_corrupt_registry_is_reported_without_a_traceback(damage, code, tmp_path):
    home = tmp_path / "home"
    assert _twinrun("compare", TOY, "--home", home, "--steps", "3", "--no-tensorboard", "-q").returncode == 0
    path = home / "registry.sqlite"
    data = bytearray(path.read_bytes())
    if damage == "pages scrambled":
        data[8192:] = bytes((i * 37) % 251 for i in range(len(data) - 8192))
    elif damage == "header garbage":
        data[:100] = b"\x00" * 100
    elif damage == "truncated":
        data = data[: len(data) // 3]
    else:
        data = bytearray(b"notes about my runs\n")
    path.write_bytes(bytes(data))
    env = child_env(PYTHONHASHSEED="0", TWINRUN_HOME=str(home))
    check = _twinrun("registry", "check", env=env)
    assert "Traceback" not in check.stderr
    assert check.returncode in ((1, 2) if code is None else (code,)), check.stdout + check.stderr
    listing = _twinrun("runs", env=env)
    assert "Traceback" not in listing.stderr and listing.returncode in (0, 2)
    if listing.returncode == 2:
        assert "twinrun: error:" in listing.stderr and "fix:" in listing.stderr


HOSTILE = "../../escaped"


@pytest.mark.parametrize("args", [
    ["compare", "{exp}"], ["seeds", "{exp}", "--seeds", "2"], ["check", "{exp}", "--candidate", HOSTILE],
    ["compare", TOY, "--candidates", HOSTILE], ["compare", TOY, "--reference", HOSTILE],
    ["show", HOSTILE], ["ledger", HOSTILE], ["compare", TOY, "--resume", HOSTILE],
])
def test_hostile_names_through_every_entry_point_are_refused(args, tmp_path):
    exp = tmp_path / "work" / "exp.py"
    exp.parent.mkdir()
    exp.write_text(Path(TOY).read_text().replace('"small": {}', f'"{HOSTILE}": {{}}'))
    env = child_env(PYTHONHASHSEED="0", TWINRUN_HOME=str(tmp_path / "work" / "home"))
    proc = _twinrun(*[a.format(exp=exp) for a in args], env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "twinrun: error:" in proc.stderr
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()


def test_eight_writers_and_a_reader_listing_and_showing_runs_the_whole_time(tmp_path):
    path, go, stop = tmp_path / "reg" / "registry.sqlite", tmp_path / "go", tmp_path / "stop"
    workers, runs, batches, batch = 8, 2, 15, 40
    reader = subprocess.Popen([sys.executable, "-c", f"""
import io, json, contextlib, os, pathlib
from twinrun.cli import main
reads = errors = 0
while not pathlib.Path({str(stop)!r}).exists():
    for argv in (["runs", "--registry", {str(path)!r}, "--json"], ["show", "latest", "--registry", {str(path)!r}, "--json"]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        if code == 0:
            json.loads(out.getvalue()); reads += 1
        elif "no twinrun registry" not in err.getvalue() and "holds 0 run" not in err.getvalue():
            errors += 1; print(argv, code, err.getvalue())
    pathlib.Path({str(tmp_path / 'reads.tmp')!r}).write_text(str(reads))  # then renamed: never read half-written
    os.replace({str(tmp_path / 'reads.tmp')!r}, {str(tmp_path / 'reads')!r})
print(json.dumps({{"reads": reads, "errors": errors}}))
"""], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
    procs = [subprocess.Popen([sys.executable, str(WORKER), "writer", str(path), str(go), str(w), str(runs),
                               str(batches), str(batch)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=child_env()) for w in range(workers)]
    try:
        wait_for(lambda: all(Path(f"{go}.ready{w}").exists() for w in range(workers)), 300, "the writers to start")
        go.write_text("go")
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
        # the reader has read the finished registry at least once after the writers ended
        before = int((tmp_path / "reads").read_text()) if (tmp_path / "reads").exists() else 0
        wait_for(lambda: (tmp_path / "reads").exists() and int((tmp_path / "reads").read_text()) > before + 1,
                 300, "the reader to read the final registry")
        stop.write_text("stop")
        out, err = reader.communicate(timeout=300)
    finally:
        for p in [*procs, reader]:
            if p.poll() is None:
                p.kill()
    assert reader.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["errors"] == 0 and summary["reads"] > 0, out
    with Registry.open(path) as reg:
        assert reg.integrity_check() == "ok"
        assert reg.count_metrics() == workers * runs * batches * batch
        assert len(reg.list_runs(limit=0)) == workers * runs
