"""Seed ensembles: averaging by hand, zero gain for identical seeds, the gain curve, real twin runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import twinrun
from twinrun.errors import ConfigError, DataError
from twinrun.stats import analyze_seeds, ensemble_outputs, seed_ensemble

CROSS_ENTROPY = twinrun.Metric(lambda o, t: F.cross_entropy(o, t, reduction="none"), False, "ce")


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_logits_average_probabilities_by_hand():
    logits = np.array([[[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]],
                       [[-1.0, 3.0, 0.5], [1.0, 2.0, 3.0]]])  # [K=2, N=2, C=3]
    mean_prob = (_softmax(logits[0]) + _softmax(logits[1])) / 2
    ens = ensemble_outputs(logits, "logits")
    assert np.allclose(np.exp(ens), mean_prob, rtol=1e-12)
    assert np.allclose(_softmax(ens), mean_prob, rtol=1e-12)  # usable as logits
    # cross-entropy of the ensemble = -log of the mean probability of the target
    targets = np.array([1, 2])
    r = seed_ensemble({"a": logits}, targets, kind="logits", metric=CROSS_ENTROPY)["a"]
    assert r["ensemble"] == pytest.approx(-np.mean(np.log(mean_prob[[0, 1], targets])), rel=1e-6)


def test_binary_logits_and_values_by_hand():
    ens = ensemble_outputs([[0.0, 0.0], [math.log(3.0), -20.0]], "binary_logits")
    # sigmoid 0.5 and 0.75 average to 0.625: logit log(5/3); 0.5 and ~2e-9 average to ~0.25
    assert ens[0] == pytest.approx(math.log(0.625 / 0.375), rel=1e-12)
    assert 1 / (1 + math.exp(-ens[1])) == pytest.approx((0.5 + 1 / (1 + math.exp(20))) / 2, rel=1e-12)
    far = ensemble_outputs([[800.0], [800.0]], "binary_logits")  # no overflow to inf or nan
    assert far[0] == pytest.approx(800.0)
    assert np.array_equal(ensemble_outputs([[1.0, 2.0], [3.0, 6.0]], "values"), [2.0, 4.0])


def test_complementary_seeds_gain_by_hand():
    """Each seed is wrong on a different example; the average of the three is right on all."""
    t = torch.tensor([0, 1, 2])
    right, wrong = 2.0, 1.0

    def seed(wrong_on, guess):
        x = torch.zeros(3, 3)
        for i in range(3):
            x[i, guess if i == wrong_on else int(t[i])] = wrong if i == wrong_on else right
        return x

    outputs = torch.stack([seed(2, 0), seed(0, 1), seed(1, 2)])  # [3, 3, 3]
    r = seed_ensemble({"a": outputs}, t, kind="logits", metric=twinrun.accuracy)["a"]
    assert r["per_seed"] == pytest.approx([2 / 3] * 3)
    assert r["mean_single"] == pytest.approx(2 / 3) and r["ensemble"] == 1.0
    assert r["gain"] == pytest.approx(1 / 3) and r["gain_over_best"] == pytest.approx(1 / 3)
    assert [p["k"] for p in r["curve"]] == [1, 2, 3]
    assert [p["mean"] for p in r["curve"]] == pytest.approx([2 / 3, 1.0, 1.0])
    assert all(p["exact"] for p in r["curve"]) and [p["n_subsets"] for p in r["curve"]] == [3, 3, 1]


def test_identical_seeds_have_zero_gain():
    rng = np.random.default_rng(0)
    logits = np.repeat(rng.normal(size=(1, 50, 4)), 5, axis=0).astype(np.float32)
    targets = rng.integers(0, 4, 50)
    acc = seed_ensemble({"a": logits}, targets, kind="logits", metric=twinrun.accuracy)["a"]
    assert acc["gain"] == 0.0
    assert [p["gain"] for p in acc["curve"]] == pytest.approx([0.0] * 5, abs=1e-12)  # means of equal values
    ce = seed_ensemble({"a": logits}, targets, kind="logits", metric=CROSS_ENTROPY)["a"]
    assert ce["gain"] == pytest.approx(0.0, abs=1e-6)
    values = np.repeat(rng.normal(size=(1, 20)), 4, axis=0)
    reg = seed_ensemble({"a": values}, rng.normal(size=20), kind="values", metric=twinrun.mse)["a"]
    assert reg["gain"] == 0.0


def test_regression_ensemble_gain_is_the_variance_removed():
    """For MSE, mean single-seed error minus the ensemble's = the spread of the seeds around their mean."""
    rng = np.random.default_rng(1)
    y = rng.normal(size=200)
    outputs = y + rng.normal(0, 0.3, size=(6, 200)) + 0.1
    r = seed_ensemble({"a": outputs}, y, kind="values", metric=twinrun.mse)["a"]
    spread = ((outputs - outputs.mean(axis=0)) ** 2).mean()
    assert r["gain"] == pytest.approx(spread, rel=1e-5)  # float32 metric arithmetic
    assert r["higher_is_better"] is False and r["ensemble"] < r["best_single"]
    gains = [p["gain"] for p in r["curve"]]
    assert gains == sorted(gains)  # averaging more seeds removes more variance


def test_sampled_subsets_honour_the_seed():
    rng = np.random.default_rng(2)
    outputs = {"a": rng.normal(size=(8, 40, 3)), "b": rng.normal(size=(8, 40, 3))}
    targets = rng.integers(0, 3, 40)

    def run(seed):
        return seed_ensemble(outputs, targets, kind="logits", metric=CROSS_ENTROPY, n_subsets=5, seed=seed)

    first = run(0)
    assert first == run(0)
    assert first["a"]["curve"] != run(1)["a"]["curve"]
    curve = first["a"]["curve"]
    assert [p["exact"] for p in curve] == [True] + [False] * 6 + [True]  # C(8, k) > 5 for k = 2..7
    assert [p["n_subsets"] for p in curve] == [8, 5, 5, 5, 5, 5, 5, 1]
    # the ends are exact whatever the seed
    assert curve[0] == run(1)["a"]["curve"][0] and curve[-1] == run(1)["a"]["curve"][-1]
    # another candidate's presence does not change a candidate's subsets
    assert seed_ensemble({"a": outputs["a"]}, targets, kind="logits", metric=CROSS_ENTROPY,
                         n_subsets=5, seed=0)["a"] == first["a"]


def test_missing_and_diverged_seeds_are_left_out_and_named():
    rng = np.random.default_rng(3)
    good = [torch.tensor(rng.normal(size=(10, 3))) for _ in range(4)]
    broken = good[2].clone()
    broken[0, 0] = float("nan")
    r = seed_ensemble({"a": [good[0], None, broken, good[3]], "b": good}, rng.integers(0, 3, 10),
                      kind="logits", metric=twinrun.accuracy, seeds=[10, 11, 12, 13])
    a = r["a"]
    assert a["n_seeds"] == 2 and a["seeds_used"] == [10, 13] and a["seeds_dropped"] == [11, 12]
    assert a["per_seed"][1] is None and a["per_seed"][2] is None
    assert any("seed 11" in n for n in a["notes"]) and any("seed 12" in n and "diverged" in n for n in a["notes"])
    one = seed_ensemble({"a": [good[0], None]}, rng.integers(0, 3, 10), kind="logits",
                        metric=twinrun.accuracy)["a"]
    assert one["gain"] is None and "at least 2 seeds" in one["reason"]


def test_bad_ensemble_input():
    x = np.zeros((2, 5, 3))
    t = np.zeros(5, dtype=np.int64)
    with pytest.raises(ConfigError, match="kind"):
        seed_ensemble({"a": x}, t, kind="probs", metric=twinrun.accuracy)
    with pytest.raises(ConfigError, match="twinrun.Metric"):
        seed_ensemble({"a": x}, t, kind="logits", metric=lambda o, y: o)
    with pytest.raises(DataError, match="'b' has outputs for 3 seeds, expected 2"):
        seed_ensemble({"a": x, "b": np.zeros((3, 5, 3))}, t, kind="logits", metric=twinrun.accuracy)
    with pytest.raises(DataError, match="there are 4 targets"):
        seed_ensemble({"a": x}, t[:4], kind="logits", metric=twinrun.accuracy)
    bad_metric = twinrun.Metric(lambda o, y: (o.argmax(-1) == y).float().mean(), True, "acc")
    with pytest.raises(ConfigError, match="one value per example"):
        seed_ensemble({"a": x}, t, kind="logits", metric=bad_metric)


@pytest.mark.slow
def test_real_twin_runs_feed_the_statistics(toy):
    """Three seeds of a real twin run: per-seed ensemble metrics equal the runs' own, analysis is JSON-safe."""
    import json

    from twinrun.engine import run_twin
    from twinrun.engine._build import per_example_loss
    from twinrun.spec import resolve

    names = ["small", "wide", "fast"]
    results = [run_twin(resolve(toy, {"seed": s}, candidates=names)) for s in (0, 1, 2)]
    targets = results[0].val_targets
    assert all(torch.equal(r.val_targets, targets) for r in results)
    outputs = {c: [r.candidates[c].outputs for r in results] for c in names}
    loss = twinrun.Metric(per_example_loss(torch.nn.CrossEntropyLoss()), False, "loss")
    for metric, name in ((twinrun.accuracy, "accuracy"), (loss, "loss")):
        ens = seed_ensemble(outputs, targets, kind=results[0].output_kind, metric=metric, seeds=[0, 1, 2])
        scores = {c: [r.candidates[c].final[name] for r in results] for c in names}
        for c in names:
            assert ens[c]["per_seed"] == pytest.approx(scores[c], abs=1e-9)
        report = analyze_seeds(scores, higher_is_better=metric.higher_is_better, ensemble=ens,
                               metric=name, seeds=[0, 1, 2], n_resamples=1000)
        json.dumps(report, allow_nan=False)
        assert report["recommendation"]["line"]
        assert report["ensemble"]["small"]["curve"][-1]["k"] == 3
