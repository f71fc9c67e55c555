"""Clean setups get no warning and no failure from any check (no false alarms)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from planted import CLEAN, kwargs_for

import twinrun
from twinrun.examples import DIGITS


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CLEAN))
def test_clean_setup_passes_every_check(name, tmp_path):
    report = twinrun.checks.run_checks(**kwargs_for(CLEAN[name]), outdir=tmp_path)
    alarms = {r.name: (r.status, r.measured) for r in report.results if r.status in ("warn", "fail")}
    assert not alarms, f"{name}: false alarms {alarms}"
    assert not report.failed


@pytest.mark.slow
@pytest.mark.parametrize("candidate", ["mlp", "cnn", "cnn_bn"])
def test_demo_candidates_pass_every_check(candidate, tmp_path):
    report = twinrun.check(DIGITS, candidate, outdir=tmp_path)
    alarms = {r.name: (r.status, r.measured) for r in report.results if r.status in ("warn", "fail")}
    assert not alarms
    skipped = {r.name for r in report.results if r.status == "skip"}
    # what does not apply to an image classifier on one device with a tensor dataset
    assert skipped == {"causality", "position_sensitivity", "worker_streams", "batch_divisibility"}
    for r in report.by_status("skip"):
        assert r.explanation  # every skip says why


@pytest.mark.slow
@pytest.mark.parametrize("candidate", ["small", "dropout", "deep"])
def test_toy_candidates_pass_every_check(toy, candidate, tmp_path):
    report = twinrun.check(toy, candidate, outdir=tmp_path)
    assert not report.by_status("warn", "fail"), report.statuses()


def test_causal_models_are_checked_not_skipped(tmp_path):
    for name in ("causal_conv_lm", "causal_conv_lm_strict", "masked_attention_lm"):
        report = twinrun.checks.run_checks(**kwargs_for(CLEAN[name]), outdir=tmp_path, only="causality,batch_independence")
        assert report.statuses() == {"batch_independence": "pass", "causality": "pass"}, name
        assert report["batch_independence"].details["differentiated"] == "the output of embedding 'embed'"


def reseed_dataset_rng(worker_id: int) -> None:
    """The standard idiom: each worker re-seeds the dataset's own generator from its torch seed."""
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng(info.seed % 2**32)


def test_worker_streams_accepts_the_dataset_reseeding_idiom():
    """A generator made in __init__ is the bug only when nothing re-seeds it per worker: this loader does."""
    from planted import MLP, JitteredBlobs, _seeded, adam, blobs
    from torch.utils.data import DataLoader

    (x, y), val = blobs()
    loader = DataLoader(JitteredBlobs(x, y, "own"), batch_size=32, num_workers=2, worker_init_fn=reseed_dataset_rng)
    report = twinrun.checks.run_checks(model=_seeded(MLP), train=loader, val=val, loss=torch.nn.CrossEntropyLoss(),
                                optimizer=adam(), only=["worker_streams"], settings={"steps": 200})
    assert report["worker_streams"].status == "pass", report["worker_streams"].explanation
