"""analyze_seeds and the recommendation: structure, bad input, seeding, the seed-document rule."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from scipy import stats as sps

import twinrun
from twinrun.errors import ConfigError, DataError
from twinrun.stats import HEADLINE_INTERVALS, analyze_seeds, recommend, seed_ensemble, seeds_needed


def _sweep(seed=0, k=10):
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 0.01, k)
    return {
        "base": 0.90 + shared + rng.normal(0, 0.002, k),
        "better": 0.91 + shared + rng.normal(0, 0.002, k),
        "close": 0.9102 + 0.3 * shared + rng.normal(0, 0.0005, k),  # less sensitive to the seed
        "worse": 0.88 + shared + rng.normal(0, 0.002, k),
    }


def _regression_sweep(k=10, n=500):
    """'stable' is biased but steady; 'noisy' is unbiased but each seed is noisy: ensembling favours it."""
    g = torch.Generator().manual_seed(0)
    y = torch.randn(n, generator=g)
    outputs = {
        "stable": torch.stack([y + 0.3 + 0.1 * torch.randn(n, generator=g) for _ in range(k)]),
        "noisy": torch.stack([y + 0.4 * torch.randn(n, generator=g) for _ in range(k)]),
    }
    ens = seed_ensemble(outputs, y, kind="values", metric=twinrun.mse)
    scores = {c: e["per_seed"] for c, e in ens.items()}
    return scores, ens


def test_result_is_json_safe_and_complete():
    r = analyze_seeds(_sweep(), higher_is_better=True, metric="accuracy", n_resamples=1000)
    json.dumps(r, allow_nan=False)
    assert r["k"] == 10 and r["reference"] == "base" and r["candidates"] == ["base", "better", "close", "worse"]
    assert set(r["comparisons"]) == {"better", "close", "worse"}
    assert r["headline_intervals"] == HEADLINE_INTERVALS
    for stat in ("mean", "median", "iqm"):
        interval = r["summary"]["better"]["intervals"][stat]
        method = HEADLINE_INTERVALS[stat]
        assert (interval["low"], interval["high"]) == (interval[method]["low"], interval[method]["high"])
        assert interval["low"] <= interval["estimate"] <= interval["high"]
    # what plots need: per-seed values, per-seed paired differences, interval endpoints
    assert len(r["summary"]["base"]["values"]) == 10
    assert len(r["comparisons"]["better"]["difference"]["diffs"]) == 10
    assert set(r["comparisons"]["better"]["difference"]["intervals"]) == {"t_skew", "t", "percentile", "expanded", "bca"}
    assert r["unavailable"] == [] and r["notes"] == []


def test_numbers_agree_with_scipy():
    scores = _sweep()
    r = analyze_seeds(scores, higher_is_better=True, n_resamples=1000)
    ci = sps.ttest_rel(scores["better"], scores["base"]).confidence_interval()
    diff = r["comparisons"]["better"]["difference"]
    assert (diff["t_test"]["low"], diff["t_test"]["high"]) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert diff["low"] <= ci.low and diff["high"] >= ci.high
    one = sps.ttest_1samp(scores["worse"], 0).confidence_interval()
    mean = r["summary"]["worse"]["intervals"]["mean"]
    assert (mean["t"]["low"], mean["t"]["high"]) == pytest.approx((one.low, one.high), rel=1e-12)
    assert mean["low"] <= one.low and mean["high"] >= one.high
    assert r["summary"]["close"]["iqm"] == pytest.approx(sps.trim_mean(scores["close"], 0.25))


def test_seed_is_honoured_and_recorded():
    scores = _sweep()
    a = analyze_seeds(scores, higher_is_better=True, seed=3, n_resamples=500)
    assert a == analyze_seeds(scores, higher_is_better=True, seed=3, n_resamples=500)
    b = analyze_seeds(scores, higher_is_better=True, seed=4, n_resamples=500)
    assert a["summary"]["base"]["intervals"]["iqm"] != b["summary"]["base"]["intervals"]["iqm"]
    assert a["comparisons"]["better"]["improvement"] != b["comparisons"]["better"]["improvement"] or (
        a["comparisons"]["close"]["improvement"] != b["comparisons"]["close"]["improvement"]
    )
    # the t intervals are not random
    assert a["comparisons"]["better"]["difference"]["low"] == b["comparisons"]["better"]["difference"]["low"]
    # a Generator: the base seed drawn from it is recorded and reproduces the result
    g = analyze_seeds(scores, higher_is_better=True, seed=np.random.default_rng(1), n_resamples=500)
    assert analyze_seeds(scores, higher_is_better=True, seed=g["seed"], n_resamples=500) == g


def test_global_rngs_are_untouched():
    np.random.seed(5)
    random.seed(5)
    torch.manual_seed(5)
    state = (np.random.get_state()[1].copy(), random.getstate(), torch.random.get_rng_state().clone())
    analyze_seeds(_sweep(), higher_is_better=True, n_resamples=200)
    scores, ens = _regression_sweep(k=4, n=20)
    analyze_seeds(scores, higher_is_better=False, ensemble=ens, n_resamples=200)
    assert np.array_equal(np.random.get_state()[1], state[0])
    assert random.getstate() == state[1] and torch.equal(torch.random.get_rng_state(), state[2])


def test_one_seed_gives_partial_results_and_says_why():
    r = analyze_seeds({"a": [0.91], "b": [0.89]}, higher_is_better=True, metric="accuracy")
    json.dumps(r, allow_nan=False)
    assert r["summary"]["a"]["mean"] == 0.91 and r["summary"]["a"]["max"] == 0.91
    assert r["summary"]["a"]["std"] is None
    assert "'a' std: std needs at least 2 seeds; there is 1" in r["unavailable"]
    assert any("'b' vs 'a'" in u and "at least 3 seeds" in u for u in r["unavailable"])
    assert r["comparisons"]["b"]["difference"]["diff"] == pytest.approx(-0.02)
    assert r["comparisons"]["b"]["difference"]["low"] is None
    line = r["recommendation"]["line"]
    assert line.startswith("not resolved: one seed shows no spread") and "a (0.91)" in line


def test_missing_seeds_and_nan_metrics_are_named_and_partial_results_kept():
    scores = _sweep()
    scores["better"][[2, 5]] = np.nan
    scores["worse"] = list(scores["worse"])
    scores["worse"][0] = None
    r = analyze_seeds(scores, higher_is_better=True, n_resamples=500, seeds=list(range(40, 50)))
    json.dumps(r, allow_nan=False)
    assert r["summary"]["better"]["n"] == 8 and r["summary"]["better"]["values"][2] is None
    assert r["comparisons"]["better"]["seeds_dropped"] == [42, 45]
    assert r["comparisons"]["better"]["difference"]["n"] == 8
    assert any("'better'" in n and "seeds 42 (missing), 45 (missing)" in n for n in r["notes"])
    assert any("seed 40 left out" in n for n in r["notes"])
    assert r["comparisons"]["better"]["decision"] == "better"


def test_mismatched_lengths_are_a_data_error_with_a_fix():
    scores = _sweep()
    scores["worse"] = scores["worse"][:7]
    with pytest.raises(DataError) as err:
        analyze_seeds(scores, higher_is_better=True)
    assert "'worse' has 7 scores but 'base' has 10" in str(err.value)
    assert "None" in err.value.fix


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reference": "nope"}, "reference 'nope'"),
        ({"higher_is_better": "yes"}, "higher_is_better"),
        ({"confidence": 95}, "confidence"),
        ({"deploy": "cluster"}, "deploy"),
        ({"n_resamples": 0}, "n_resamples"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        analyze_seeds(_sweep(), **{"higher_is_better": True, **kwargs})


def test_recommendation_resolved():
    scores = _sweep()
    del scores["close"]
    rec = analyze_seeds(scores, higher_is_better=True, metric="accuracy", n_resamples=500)["recommendation"]
    assert rec["resolved"] and rec["leader"] == "better" and rec["contenders"] == ["better"]
    assert rec["line"].startswith("better: best mean accuracy over 10 seeds")
    assert "resolved against every other candidate" in rec["line"]
    assert "To deploy a single seed: better (best mean" in rec["line"]
    assert rec["ensemble"]["candidate"] is None and "no per-seed validation outputs" in rec["ensemble"]["reason"]


def test_recommendation_not_resolved_estimates_seeds_and_picks_the_steadiest():
    scores = _sweep()
    rec = recommend(scores, higher_is_better=True, metric="accuracy")
    leader, rival = rec["leader"], ({"better", "close"} - {rec["leader"]}).pop()
    assert not rec["resolved"] and sorted(rec["contenders"]) == ["better", "close"]
    assert rec["against_leader"]["worse"]["worse"] and rec["against_leader"]["base"]["worse"]
    d = np.mean(scores[rival] - scores[leader])
    s = np.std(scores[rival] - scores[leader], ddof=1)
    expected = seeds_needed(d, s, alpha=0.05 / 3, n_run=10)  # Bonferroni over 3 comparisons
    assert rec["seeds_needed"]["seeds"] == expected.seeds and expected.seeds > 10
    # the 10 seeds' interval of the difference holds 0: said plainly, with the point estimate
    assert expected.evidence is False and expected.range[1] is None
    assert rec["line"].startswith(f"not resolved: no evidence yet of a difference between {leader} and {rival}")
    assert f"about {expected.seeds} seeds would resolve it" in rec["line"]
    # 'close' feels a third of the seed effect 'better' feels: the smallest range of the two
    assert rec["single"]["candidate"] == "close"
    assert "To deploy a single seed: close (smallest range" in rec["line"]


def test_recommendation_prefers_the_best_ensemble_even_if_it_is_not_the_best_single_seed():
    scores, ens = _regression_sweep()
    r = analyze_seeds(scores, higher_is_better=False, ensemble=ens, metric="mse", n_resamples=500)
    rec = r["recommendation"]
    assert rec["leader"] == "stable" and rec["resolved"]
    assert rec["single"]["candidate"] == "stable"
    assert rec["ensemble"]["candidate"] == "noisy" and rec["ensemble"]["k"] == 10
    assert ens["noisy"]["ensemble"] < ens["stable"]["ensemble"] < ens["stable"]["mean_single"]
    assert "To deploy an ensemble: noisy (ensemble mse" in rec["line"] and "better than one seed" in rec["line"]
    assert r["ensemble"]["noisy"]["curve"][-1]["k"] == 10
    single_only = recommend(scores, higher_is_better=False, ensemble=ens, deploy="single")["line"]
    assert "ensemble" not in single_only and "single seed: stable" in single_only
    ensemble_only = recommend(scores, higher_is_better=False, ensemble=ens, deploy="ensemble")["line"]
    assert "single seed" not in ensemble_only and "ensemble: noisy" in ensemble_only


def test_ensembles_of_different_sizes_are_compared_at_a_common_size():
    scores, ens = _regression_sweep(k=6, n=200)
    outputs_missing = dict(ens)
    noisy = dict(ens["noisy"])
    noisy["n_seeds"] = 4
    noisy["curve"] = noisy["curve"][:4]
    outputs_missing["noisy"] = noisy
    rec = recommend(scores, higher_is_better=False, ensemble=outputs_missing)
    assert rec["ensemble"]["k"] == 4 and "compared at 4 seeds" in rec["ensemble"]["reason"]
    assert rec["ensemble"]["scores"]["stable"] == ens["stable"]["curve"][3]["mean"]


def test_identical_candidates_cannot_be_separated():
    x = [0.9, 0.91, 0.92, 0.93]
    rec = recommend({"a": x, "b": list(x)}, higher_is_better=True)
    assert not rec["resolved"] and rec["seeds_needed"]["seeds"] is None
    assert "no number of seeds separates them" in rec["line"]


def test_single_candidate_and_empty_candidates():
    scores, ens = _regression_sweep(k=3, n=50)
    line = recommend({"stable": scores["stable"]}, higher_is_better=False, ensemble={"stable": ens["stable"]},
                     metric="mse")["line"]
    assert line.startswith("stable is the only candidate: mean mse") and "an ensemble of 3 seeds" in line
    r = analyze_seeds({"a": [np.nan, np.nan], "b": [0.5, 0.6]}, higher_is_better=True, n_resamples=200)
    assert r["recommendation"]["ranking"] == ["b"]
    json.dumps(r, allow_nan=False)


def test_ensemble_must_match_the_scores():
    scores, ens = _regression_sweep(k=3, n=50)
    with pytest.raises(ConfigError, match="higher_is_better"):
        analyze_seeds(scores, higher_is_better=True, ensemble=ens)
    with pytest.raises(ConfigError, match="no scores"):
        analyze_seeds({"stable": scores["stable"]}, higher_is_better=False, ensemble=ens)
    r = analyze_seeds(scores, higher_is_better=False, ensemble={"stable": ens["stable"]}, n_resamples=200)
    assert any("no ensemble for 'noisy'" in n for n in r["notes"])


def test_readme_example_prints_what_the_readme_says(capsys, tmp_path):
    import re
    import runpy
    from pathlib import Path

    text = Path(__file__).parents[2].joinpath("README.md").read_text()
    section = text[text.index("## Seeds as data"):]
    code, printed = re.findall(r"```(?:python)?\n(.*?)```", section, re.DOTALL)[:2]
    script = tmp_path / "readme_example.py"
    script.write_text(code)
    runpy.run_path(str(script))
    assert capsys.readouterr().out.split() == printed.split()


def test_the_recommendation_ranks_on_shared_seeds_and_never_picks_a_candidate_resolved_worse():
    # 'a' ran the easy seeds only (missing the hard ones); on the seeds both ran, 'b' beats 'a' every time
    rng = np.random.default_rng(0)
    seed_effect = np.r_[np.full(6, 0.95), np.full(6, 0.80)]  # 6 easy seeds, 6 hard ones
    b = seed_effect + 0.02 + rng.normal(0, 0.002, 12)
    a = seed_effect + rng.normal(0, 0.002, 12)
    a[6:] = np.nan  # by its own seeds, a's mean (0.95) beats b's (0.895)
    rec = recommend({"a": a, "b": b}, higher_is_better=True, metric="accuracy")
    assert rec["leader"] == "b"  # ranked over the 6 seeds both ran
    assert rec["resolved"] and "over the 6 seeds every candidate ran" in rec["reasons"][0]


def test_intervals_of_a_bounded_metric_stay_inside_its_bounds():
    scores = {"a": [0.876, 0.99, 0.999], "b": [0.02, 0.30, 0.01]}
    free = analyze_seeds(scores, higher_is_better=True, n_resamples=200)
    assert free["summary"]["a"]["intervals"]["mean"]["high"] > 1  # what the t interval says unbounded
    kept = analyze_seeds(scores, higher_is_better=True, n_resamples=200, bounds=(0.0, 1.0))
    for name in scores:
        for stat in ("mean", "median", "iqm"):
            interval = kept["summary"][name]["intervals"][stat]
            if interval["low"] is not None:  # 3 seeds: the median's and IQM's are withheld
                assert 0.0 <= interval["low"] <= interval["high"] <= 1.0
        assert kept["summary"][name]["intervals"]["iqm"]["low"] is None
        assert "withheld" in kept["summary"][name]["intervals"]["median"]["reason"]
    assert kept["summary"]["a"]["intervals"]["mean"]["clipped"] is True
    assert kept["summary"]["b"]["intervals"]["mean"]["low"] == 0.0


def test_a_sweep_knows_its_metrics_bounds(toy):
    from twinrun.sweeps._analysis import metric_bounds

    resolved = twinrun.spec.resolve(toy)
    assert metric_bounds(resolved, "accuracy") == (0.0, 1.0)
    assert metric_bounds(resolved, "loss") == (0.0, None)  # CrossEntropyLoss


def test_the_median_interval_is_exact_and_covers_by_simulation():
    from twinrun.stats._analyze import median_interval

    rng = np.random.default_rng(5)
    ceiling = 1 - (1 - 0.5 ** (1 / 30))  # the median of 1 - Beta(1, 30): accuracies near 1
    for n in (5, 10, 30):
        for draw, median in ((lambda k: rng.normal(size=k), 0.0), (lambda k: rng.standard_t(3, size=k), 0.0),
                             (lambda k: 1 - rng.beta(1, 30, size=k), ceiling)):
            sims = 2000
            covered = sum(r["low"] <= median <= r["high"] for r in (median_interval(draw(n)) for _ in range(sims)))
            assert 0.92 <= covered / sims <= 0.985, (n, covered / sims)


def test_a_failed_seed_is_pointed_out_because_the_mean_interval_assumes_none():
    scores = {"a": [0.91, 0.92, 0.90, 0.93, 0.91, 0.35, 0.92], "b": [0.90, 0.91, 0.92, 0.91, 0.90, 0.92, 0.91]}
    r = analyze_seeds(scores, higher_is_better=True, n_resamples=200)
    [note] = [n for n in r["notes"] if "far from the others" in n]
    assert note.startswith("'a': seed 5 lies far from the others") and "median" in note
    assert not any("'b'" in n and "far from" in n for n in r["notes"])
