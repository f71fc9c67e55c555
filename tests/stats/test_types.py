"""The typed results: one meaning for "not estimable", the stored record, the terminal's formatters."""

import json
import math

import numpy as np
import pytest

from twinrun.report import difference, interval, number, percent
from twinrun.stats import (
    BlockInterval,
    BootstrapInterval,
    Improvement,
    Interval,
    PairedDifference,
    SkewInterval,
    block_bootstrap_interval,
    bootstrap_ci,
    compare_to_reference,
    mean_interval,
    paired_difference,
    paired_t_interval,
    paired_t_test,
    probability_of_improvement,
)


def test_every_estimate_is_a_frozen_typed_result():
    x = [0.1, 0.4, 0.2, 0.5]
    assert type(paired_t_interval(x)) is Interval
    assert type(mean_interval(x)) is SkewInterval and type(mean_interval(x).t) is Interval
    assert type(block_bootstrap_interval(np.arange(20.0), seed=0)) is BlockInterval
    assert type(paired_t_test(x, [0.0] * 4)) is PairedDifference
    assert type(bootstrap_ci(x, seed=0)) is BootstrapInterval
    assert type(probability_of_improvement(x, [0.3] * 4)) is Improvement
    assert probability_of_improvement(x, [0.3] * 4).to_dict()["value"] == 0.5
    with pytest.raises(AttributeError):
        paired_t_interval(x).low = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "result",
    [
        paired_t_interval([]),
        paired_t_interval([1.0]),
        mean_interval([1.0]),
        block_bootstrap_interval([1.0], seed=0),
        paired_t_test([1.0, 2.0], [0.0, 0.5]),
        paired_t_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
        paired_difference([1.0, np.nan], [0.0, 1.0]),
        bootstrap_ci([0.5, np.nan], seed=0),
        probability_of_improvement([1.0], [0.0]),
        probability_of_improvement([1.0], [0.0], pairing="unpaired"),
    ],
)
def test_not_estimable_is_none_with_a_reason_never_nan(result):
    assert result.low is None and result.high is None and result.reason
    record = result.to_dict()
    json.dumps(record, allow_nan=False)  # strictly JSON: no NaN anywhere
    assert not any(isinstance(v, float) and math.isnan(v) for v in record.values())
    assert not result.excludes(0.0)


def test_interval_reads_its_direction():
    up = paired_t_interval([1.0, 1.2, 0.9, 1.1])
    down = paired_t_interval([-1.0, -1.2, -0.9, -1.1])
    around = paired_t_interval([-1.0, 1.0, -0.5, 0.5])
    assert up.excludes(0.0) and up.better(True) is True and up.better(False) is False
    assert down.better(True) is False and around.better(True) is None
    assert up.width == pytest.approx(up.high - up.low) and paired_t_interval([1.0]).width is None


def test_paired_difference_record_keeps_the_stored_keys():
    """Analyses recorded before the types existed read the same: ``diff``, ``t_test`` as a dict."""
    r = paired_difference([0.91, 0.93, 0.92, 0.95], [0.90, 0.91, 0.92, 0.93], higher_is_better=True)
    record = r.to_dict()
    assert record["diff"] == r.estimate and "estimate" not in record
    assert record["t_test"] == {"low": r.t_test.low, "high": r.t_test.high, "p_value": r.t_test.p_value}
    assert record["diffs"] == list(r.diffs) and record["intervals"] == r.intervals
    compared = compare_to_reference({"a": [0.91, 0.93, 0.92, 0.95], "b": [0.90, 0.91, 0.92, 0.93]}, reference="b",
                                    higher_is_better=True)["a"]
    assert compared.candidate == "a" and compared.reference == "b" and "candidate" not in compared.to_dict()
    json.dumps(compared.to_dict(), allow_nan=False)
    stored = compared.to_dict()["difference"]
    assert {k: stored[k] for k in ("diff", "low", "high", "p_value", "sd", "n")} == {
        k: record[k] for k in ("diff", "low", "high", "p_value", "sd", "n")
    }
    assert r.interval == Interval(r.estimate, r.low, r.high, r.n, r.confidence, "t_skew", r.se, r.p_value)


def test_one_formatter_for_every_kind_of_difference():
    typed = paired_t_interval([1.0, 1.2, 0.9, 1.1])
    stored = {"diff": typed.estimate, "low": typed.low, "high": typed.high, "better": True}
    text = f"{typed.estimate:+.4f} [{typed.low:+.4f}, {typed.high:+.4f}]"
    assert difference(stored) == text + " better"
    assert difference(typed) == text + " ~"  # an Interval alone does not know the metric's direction
    assert difference(paired_t_test([0.5, 0.7, 0.6], [0.0, 0.0, 0.0])).startswith("+0.6000 [")
    assert difference({"diff": 0.25, "low": None, "high": None}) == "+0.2500"
    assert difference(None) == difference({"diff": None}) == "-"
    assert number(float("nan")) == number(None) == number(True) == "-" and number(0.5, 2) == "0.50"
    assert number(0.5, signed=True) == "+0.5000" and percent(0.423) == "42%" and percent(None) == "-"
    assert interval(None, 1.0) == "-" and interval(0.1, 0.2, 2) == "[0.10, 0.20]"
