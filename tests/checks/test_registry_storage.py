"""Check reports land in the run registry (a real SQLite file) and `twinrun show` lists them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import twinrun
from twinrun.registry import open_registry

from conftest import TOY


def test_check_report_is_recorded_as_a_check_run(tmp_path):
    report = twinrun.check(TOY, "small", only="loss_at_init,lr_schedule")
    run_id = report.subject["registry_run"]
    with open_registry(tmp_path / "home" / "registry.sqlite") as registry:
        record = registry.get_run(run_id[:8])
        assert record.status == "finished" and "check" in record.tags
        stored = {c["name"]: c for c in registry.checks(run_id)}
    assert set(stored) == {"loss_at_init", "lr_schedule"}
    for result in report.results:
        assert stored[result.name]["status"] == result.status
        assert stored[result.name]["details"]["explanation"] == result.explanation


def test_no_registry_records_nothing(tmp_path):
    report = twinrun.check(TOY, "small", only="lr_schedule", registry=False)
    assert "registry_run" not in report.subject
    assert not (tmp_path / "home" / "registry.sqlite").exists()


def test_cli_check_then_show(tmp_path):
    env = dict(os.environ)
    run = subprocess.run([sys.executable, "-m", "twinrun", "check", str(TOY), "--only", "lr_schedule",
                          "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    run_id = json.loads(run.stdout)["subject"]["registry_run"]
    show = subprocess.run([sys.executable, "-m", "twinrun", "show", run_id[:8]], capture_output=True,
                          text=True, env=env, timeout=120)
    assert show.returncode == 0, show.stderr
    assert "checks: 0 pass · 0 warn · 0 fail · 1 skip" in show.stdout
    assert "lr_schedule" in show.stdout and "no scheduler" in show.stdout
