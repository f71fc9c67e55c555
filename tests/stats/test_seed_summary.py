"""Per-candidate summaries and seed alignment: closed forms, scipy, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as sps

from twinrun.errors import DataError
from twinrun.stats import align_scores, iqm, summarize


def test_iqm_closed_forms():
    # 8 values: drop 2 from each end, average the middle 4
    assert iqm([1.0, 2.0, 3.0, 4.0, 100.0, -50.0, 5.0, 6.0]) == pytest.approx((2 + 3 + 4 + 5) / 4)
    # 10 values: drop 2 from each end, average the middle 6
    assert iqm(np.arange(10.0)) == pytest.approx(np.mean([2, 3, 4, 5, 6, 7]))
    # fewer than 4 values: nothing to drop, the plain mean
    assert iqm([1.0, 2.0, 9.0]) == pytest.approx(4.0)
    # an outlier does not move it
    assert iqm([1.0, 2.0, 3.0, 4.0, 1e9]) == iqm([1.0, 2.0, 3.0, 4.0, 5.0]) == 3.0


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 10, 13, 40])
def test_iqm_matches_scipy_trim_mean(n):
    x = np.random.default_rng(n).normal(size=(3, n))
    assert np.allclose(iqm(x, axis=-1), sps.trim_mean(x, 0.25, axis=-1), rtol=0, atol=1e-14)


def test_summarize_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.9, 0.01, 10), rng.normal(0.8, 0.02, 10)
    s = summarize({"a": a, "b": b})
    for name, x in (("a", a), ("b", b)):
        r = s[name]
        assert r.n == 10 and r.unavailable == {}
        assert r.mean == pytest.approx(x.mean(), abs=1e-15)
        assert r.std == pytest.approx(x.std(ddof=1), abs=1e-15)
        assert r.median == pytest.approx(np.median(x), abs=1e-15)
        assert r.iqm == pytest.approx(sps.trim_mean(x, 0.25), abs=1e-15)
        assert (r.min, r.max) == (x.min(), x.max())
        assert r.range == pytest.approx(x.max() - x.min(), abs=1e-15)
        assert r.values == tuple(x) and r.seeds == tuple(range(10))


def test_missing_seeds_are_left_out_and_named():
    s = summarize({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, None, float("nan"), 7.0]})
    assert s["b"].n == 2 and s["b"].mean == 4.0 and s["b"].values == (1.0, None, None, 7.0)
    notes = align_scores({"a": [1.0, 2.0], "b": [np.inf, 3.0]}).notes
    assert len(notes) == 1 and "'b'" in notes[0] and "seed 0 (inf)" in notes[0]


def test_one_seed_gives_what_it_can_and_says_why():
    s = summarize({"a": [0.9]})["a"]
    assert (s.mean, s.median, s.iqm, s.min, s.max) == (0.9,) * 5
    assert s.std is None and s.range is None
    assert s.unavailable["std"] == "std needs at least 2 seeds; there is 1"
    empty = summarize({"a": [np.nan, np.nan]})["a"]
    assert empty.mean is None and "no finite score" in empty.unavailable["mean"]
    json.dumps(empty.to_dict(), allow_nan=False)


def test_seed_mappings_align_by_seed():
    s = summarize({"a": {0: 0.9, 1: 0.8, 5: 0.7}, "b": {5: 0.6, 0: 0.5}})
    assert s["a"].seeds == (0, 1, 5)
    assert s["b"].values == (0.5, None, 0.6)
    labelled = summarize({"a": [1.0, 2.0]}, seeds=[17, 42])
    assert labelled["a"].seeds == (17, 42)


def test_mismatched_lengths_name_the_candidate_and_the_fix():
    with pytest.raises(DataError) as err:
        summarize({"base": [0.9, 0.91, 0.92], "wide": [0.93, 0.94]})
    assert "'wide' has 2 scores but 'base' has 3" in err.value.message
    assert "NaN" in err.value.fix
    with pytest.raises(DataError, match="4 seeds were given"):
        summarize({"a": [1.0, 2.0]}, seeds=[0, 1, 2, 3])


@pytest.mark.parametrize(
    ("scores", "match"),
    [
        ({}, "non-empty mapping"),
        ({"a": [[1.0, 2.0]]}, r"shape \(1, 2\)"),
        ({"a": ["x", "y"]}, "not numbers"),
        ({"a": {0: 1.0}, "b": [1.0]}, "mappings and others plain sequences"),
        ({"a": []}, "no seeds"),
        ({1: [1.0]}, "not a string"),
    ],
)
def test_bad_scores_raise_data_errors(scores, match):
    with pytest.raises(DataError, match=match):
        summarize(scores)
