"""TensorBoard event files, read back with TensorBoard's own reader."""

from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import twinrun


def _scalars(folder, tag):
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)], acc.Tags()["scalars"]


def test_one_folder_per_comparison_one_subfolder_per_candidate(toy, tmp_path):
    logdir = tmp_path / "tb" / "cmp"
    result = twinrun.compare(toy, candidates=["small", "wide"], logdir=logdir, progress=False)
    assert sorted(p.name for p in logdir.iterdir()) == ["small", "wide"]
    for name in ("small", "wide"):
        train, tags = _scalars(logdir / name, "train/loss")
        base = {"train/loss", "train/accuracy", "train/lr", "val/loss", "val/accuracy"}
        diffs = {"diff/train_loss", "diff/val_loss", "diff/val_accuracy"} if name == "wide" else set()
        assert set(tags) == base | diffs  # the reference (small) has no difference to itself
        cand = result.candidates[name]
        assert [s for s, _ in train] == list(range(1, toy.steps + 1))
        assert [v for _, v in train] == pytest.approx(cand.train_loss.tolist(), rel=1e-6)
        val, _ = _scalars(logdir / name, "val/accuracy")
        assert val == [(s, pytest.approx(r["accuracy"], rel=1e-6)) for s, r in cand.eval_history]
    assert result.artifacts["tensorboard"] == str(logdir)


def test_default_logdir_under_home(toy, tmp_path):
    result = twinrun.compare(toy, candidates=["small"], overrides={"steps": 3}, progress=False)
    folder = result.artifacts["tensorboard"]
    assert folder.startswith(str(tmp_path / "home" / "tb" / "toy-"))
    train, _ = _scalars(f"{folder}/small", "train/loss")
    assert len(train) == 3


def test_diverged_candidate_gets_a_text_note(toy, tmp_path):
    from test_twin_engine import _Explodes

    exp = toy.replace(candidates={"good": {}, "bad": {"model": twinrun.factory(_Explodes, at=3)}})
    twinrun.compare(exp, logdir=tmp_path / "tb", progress=False)
    acc = EventAccumulator(str(tmp_path / "tb" / "bad"))
    acc.Reload()
    assert "events/text_summary" in acc.Tags()["tensors"]


def test_every_candidate_gets_its_paired_difference_and_hparams(toy, tmp_path):
    logdir = tmp_path / "tb"
    result = twinrun.compare(toy, candidates=["small", "wide"], logdir=logdir, progress=False)
    small, wide = result.candidates["small"], result.candidates["wide"]
    diff, _ = _scalars(logdir / "wide", "diff/train_loss")
    assert [v for _, v in diff] == pytest.approx((wide.train_loss - small.train_loss).tolist(), rel=1e-5, abs=1e-6)
    val, _ = _scalars(logdir / "wide", "diff/val_accuracy")
    expected = [b["accuracy"] - a["accuracy"] for (_, a), (_, b) in zip(small.eval_history, wide.eval_history)]
    assert [v for _, v in val] == pytest.approx(expected, abs=1e-6)
    acc = EventAccumulator(str(logdir / "wide" / "hparams"))
    acc.Reload()
    assert "final/accuracy" in acc.Tags()["scalars"]


def test_the_checks_figures_and_verdicts_go_to_tensorboard(toy, tmp_path):
    report = twinrun.check(toy, "small", only=["prediction_dynamics", "loss_at_init"], logdir=tmp_path / "tb",
                           registry=False, outdir=tmp_path / "out")
    acc = EventAccumulator(str(tmp_path / "tb" / "small"), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    figures = {f"checks/prediction_dynamics/{name}" for name in report["prediction_dynamics"].artifacts}
    assert figures and figures <= set(acc.Tags()["images"])
    assert "checks/loss_at_init/text_summary" in acc.Tags()["tensors"]
    assert report.subject["tensorboard"] == str(tmp_path / "tb")
