"""`twinrun seeds --until-resolved --max N`: seeds added one at a time, stopped when resolved."""

from __future__ import annotations

import json

import pytest
from conftest import TOY

from twinrun.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")]
BASE = ["seeds", str(TOY), "--backend", "inprocess", "-q", "--resamples", "200", "--set", "steps=10"]


def test_a_clear_difference_stops_early_and_says_at_which_level(monkeypatch, capsys):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    args = [*BASE, "--candidates", "small,wide", "--set", "small:model.width=1", "--metric", "loss",
            "--until-resolved", "--max", "12", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    decision = out["sequential"]["wide"]
    assert decision["decision"] == "resolved" and decision["diff"] < 0  # wide has the lower loss
    assert decision["level"] == pytest.approx(0.05 / 10) and decision["n"] < 12
    assert out["k"] == decision["n"] and out["seeds"] == list(range(decision["n"]))


@pytest.mark.parametrize("extra,message", [
    (["--until-resolved"], "--until-resolved needs --max N"),
    (["--max", "5"], "--max N bounds --until-resolved"),
    (["--until-resolved", "--max", "5", "--seeds", "2"], "need 3 <= first seeds <= --max"),
    (["--until-resolved", "--max", "5", "--seed-list", "1,2,3"], "it takes no --seed-list"),
])
def test_bad_sequential_requests_exit_2(extra, message, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    assert main([*BASE, *extra]) == 2
    assert message in capsys.readouterr().err
