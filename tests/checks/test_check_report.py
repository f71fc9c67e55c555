"""Reports are complete and JSON-safe; options and selections are validated with clear errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from planted import MLP, blobs
from torch import nn

import twinrun
from twinrun.checks import CheckReport, CheckResult, json_safe, validate_options
from twinrun.errors import ConfigError


def _pieces(**extra):
    (x, y), val = blobs()
    return dict(model=lambda: MLP(), train=(x, y), val=val, loss=nn.CrossEntropyLoss(),
                optimizer=lambda m: torch.optim.Adam(m.parameters(), lr=3e-3), settings={"steps": 100}, **extra)


def test_to_dict_is_complete_and_strict_json(tmp_path):
    report = twinrun.checks.run_checks(**_pieces(), outdir=tmp_path, skip="worker_streams")
    data = report.to_dict()
    text = json.dumps(data, allow_nan=False)  # raises on NaN/Inf or non-JSON values
    assert json.loads(text) == data
    assert set(data) == {"subject", "outdir", "failed", "counts", "timing", "results"}
    assert sum(data["counts"].values()) == len(data["results"]) == 17
    for result in data["results"]:
        assert set(result) == {"name", "status", "measured", "expected", "explanation", "fix", "artifacts",
                               "details", "seconds"}
        assert result["status"] in ("pass", "warn", "fail", "skip") and result["explanation"]
    assert data["subject"]["experiment"] == "checks" and data["subject"]["model"] == "MLP"
    assert data["timing"]["total"] >= data["timing"]["checks"] > 0


def test_json_safe_turns_nan_and_arrays_into_json():
    import numpy as np

    value = {"a": float("nan"), "b": np.array([1.0, np.inf]), "c": torch.tensor([2, 3]), "d": (np.int64(4),),
             5: np.float32(0.5)}
    assert json_safe(value) == {"a": None, "b": [1.0, None], "c": [2, 3], "d": [4], "5": 0.5}


def test_failed_is_true_only_with_a_fail():
    ok = CheckResult("a", "pass", "1", "1", "fine")
    warn = CheckResult("b", "warn", "1", "1", "hm", "do x")
    assert not CheckReport([ok, warn]).failed
    assert CheckReport([ok, CheckResult("c", "fail", "1", "0", "bad", "fix")]).failed
    with pytest.raises(ValueError, match="status 'ok'"):
        CheckResult("d", "ok", "1", "1", "?")  # type: ignore[arg-type]


def test_options_are_validated_with_the_valid_names():
    with pytest.raises(ConfigError) as exc:
        validate_options({"causalty": {"time_dim": 1}})
    assert "causalty" in exc.value.message and "causality" in exc.value.fix
    with pytest.raises(ConfigError) as exc:
        validate_options({"causality": {"time": 1}})
    assert "'time'" in exc.value.message and "time_dim" in exc.value.fix
    with pytest.raises(ConfigError, match="must be a int"):
        validate_options({"overfit_batch": {"steps": "many"}})
    with pytest.raises(ConfigError, match="not allowed"):
        validate_options({"loss_at_init": {"kind": "hinge"}})
    merged = validate_options({"overfit_batch": {"steps": 50}, "input_stats": {"max_std": 2}})
    assert merged["overfit_batch"]["steps"] == 50 and merged["overfit_batch"]["examples"] == 8
    assert merged["input_stats"]["max_std"] == 2.0 and isinstance(merged["input_stats"]["max_std"], float)


def test_experiment_check_options_must_be_a_mapping_of_mappings(toy):
    with pytest.raises(ConfigError, match="check_options"):
        toy.replace(check_options={"causality": 1})
    assert toy.replace(check_options={"causality": {"time_dim": 1}}).check_options == {"causality": {"time_dim": 1}}


def test_experiment_check_options_are_used_and_api_options_win(toy, tmp_path):
    exp = toy.replace(check_options={"batch_divisibility": {"devices": 3}})
    report = twinrun.check(exp, "small", only="batch_divisibility", outdir=tmp_path)
    assert report["batch_divisibility"].status == "fail" and "16 = 3 x 5 + 1" in report["batch_divisibility"].measured
    report = twinrun.check(exp, "small", only="batch_divisibility", outdir=tmp_path,
                           options={"batch_divisibility": {"devices": 4}})
    assert report["batch_divisibility"].status == "pass"
    with pytest.raises(ConfigError, match="no option"):
        twinrun.check(toy.replace(check_options={"overfit_batch": {"budget": 3}}), "small", outdir=tmp_path)


def test_only_and_skip_select_in_suite_order(toy, tmp_path):
    report = twinrun.check(toy, only=["eval_determinism", "loss_at_init"], outdir=tmp_path)
    assert [r.name for r in report.results] == ["loss_at_init", "eval_determinism"]
    assert report.subject["candidate"] == "small"  # the first declared
    with pytest.raises(ConfigError, match="unknown check"):
        twinrun.check(toy, skip="loss_at_init,nope", outdir=tmp_path)
    with pytest.raises(ConfigError, match="leave no check"):
        twinrun.check(toy, only="loss_at_init", skip="loss_at_init", outdir=tmp_path)


def test_a_crashing_model_becomes_a_fail_with_the_error(tmp_path):
    class BreaksInEval(MLP):
        def forward(self, x):
            if not self.training:
                raise RuntimeError("no eval for me")
            return super().forward(x)

    with pytest.raises(twinrun.errors.BuildError, match="no eval for me"):  # the engine's preflight runs eval mode
        twinrun.checks.run_checks(**{**_pieces(), "model": lambda: BreaksInEval()}, outdir=tmp_path)

    class BreaksOnSmallBatches(MLP):
        def forward(self, x):
            if x.shape[0] == 8:
                raise RuntimeError("batch of 8")
            return super().forward(x)

    report = twinrun.checks.run_checks(**{**_pieces(), "model": lambda: BreaksOnSmallBatches()}, outdir=tmp_path,
                                only="overfit_batch,param_updates")
    result = report["overfit_batch"]
    assert result.status == "fail" and "RuntimeError: batch of 8" in result.measured
    assert any("batch of 8" in line for line in result.details["traceback"])
    assert report["param_updates"].status == "pass"  # one broken check does not hide the others


def test_skips_say_why(tmp_path):
    report = twinrun.checks.run_checks(**_pieces(), outdir=tmp_path, only="causality,lr_schedule,worker_streams")
    assert report.statuses() == {"causality": "skip", "lr_schedule": "skip", "worker_streams": "skip"}
    assert "time_dim" in report["causality"].fix
    assert "no learning-rate scheduler" in report["lr_schedule"].explanation
    assert math.isclose(sum(r.seconds for r in report.results), report.timing["checks"], abs_tol=0.5)
