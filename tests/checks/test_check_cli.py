"""``twinrun check`` as a user runs it: real subprocesses for exit codes and stdout, the CLI's
``main()`` in-process for the rest (same parser and handler, without paying a torch import each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

import twinrun
from twinrun.cli import main

LM = Path(__file__).parent / "lm_experiment.py"
DIGITS = Path(__file__).parents[2] / "src" / "twinrun" / "examples" / "digits.py"


def _twinrun(*args):
    # the twinrun under test, whatever the working directory (tests run in a temporary folder)
    source = str(Path(twinrun.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}  # tiny models: one thread is fastest, and robust on a loaded machine
    return subprocess.run([sys.executable, "-m", "twinrun", "check", *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def _main(capsys, *args):
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_a_failing_check_exits_1_and_says_why_and_how_to_fix():
    proc = _twinrun(str(LM), "--candidate", "leaky", "--only", "causality,batch_independence", "-q")
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "status" in out and "measured" in out and "expected" in out
    assert "FAIL    causality" in out and "pass    batch_independence" in out
    assert "output 0 depends on input 1" in out
    assert "fix: mask with torch.triu" in out
    assert "1 pass · 0 warn · 1 fail · 0 skip" in out


@pytest.mark.slow
def test_clean_candidate_exits_0_with_pure_json(tmp_path):
    proc = _twinrun(str(LM), "--candidate", "causal", "--json", "--outdir", str(tmp_path),
                    "--only", "causality,loss_at_init,param_updates,lr_schedule,data_leakage")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["failed"] is False
    names = [r["name"] for r in data["results"]]
    assert names == ["loss_at_init", "causality", "param_updates", "lr_schedule", "data_leakage"]
    assert {r["name"]: r["status"] for r in data["results"]}["causality"] == "pass"
    assert json.loads((tmp_path / "checks.json").read_text()) == data


def test_demo_cnn_writes_valid_pngs(tmp_path, capsys):
    code, out, err = _main(capsys, str(DIGITS), "--candidate", "cnn", "--outdir", str(tmp_path), "--only",
                           "input_stats,prediction_dynamics", "-q")
    assert code == 0, err
    shapes = {}
    for name in ("input_grid.png", "prediction_dynamics.png", "first_layer.png"):
        image = matplotlib.image.imread(tmp_path / name)
        assert image.ndim == 3 and image.shape[2] in (3, 4) and min(image.shape[:2]) > 100
        assert image.std() > 0.01  # not a blank canvas
        shapes[name] = image.shape
        assert str(tmp_path / name) in out
    assert shapes["prediction_dynamics.png"][1] > shapes["prediction_dynamics.png"][0]


def test_default_outdir_is_a_new_run_folder(tmp_path, capsys):
    code, out, _ = _main(capsys, str(DIGITS), "--candidate", "cnn", "--only", "batch_divisibility", "--devices", "3",
                         "-q", "--home", str(tmp_path))
    assert code == 1
    assert "batch_size 64 = 3 x 21 + 1" in out
    reports = list((tmp_path / "runs").glob("*/checks/checks.json"))
    assert len(reports) == 1
    assert json.loads(reports[0].read_text())["results"][0]["status"] == "fail"


def test_bad_input_exits_2_with_the_valid_names(capsys):
    code, _, err = _main(capsys, str(DIGITS), "--only", "loss_at_init,overfit")
    assert code == 2
    assert "unknown check(s): overfit" in err and "fix: valid checks:" in err and "overfit_batch" in err
    code, _, err = _main(capsys, str(DIGITS), "--check-option", "causality.timedim=1")
    assert code == 2 and "no option 'timedim'" in err and "time_dim" in err
    code, _, err = _main(capsys, str(DIGITS), "--check-option", "causality=1")
    assert code == 2 and "CHECK.KEY=VALUE" in err
    code, _, err = _main(capsys, str(DIGITS), "--candidate", "resnet")
    assert code == 2 and "mlp, cnn, cnn_bn" in err
    code, _, err = _main(capsys)
    assert code == 2 and "no experiment file" in err


def test_help_and_list_teach(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "examples:" in out and "exit status" in out and "--check-option" in out
    code, out, _ = _main(capsys, "--list")
    assert code == 0
    for name in ("loss_at_init", "causality", "worker_streams", "prediction_dynamics"):
        assert name in out
    assert "time_dim = None" in out
