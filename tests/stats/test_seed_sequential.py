"""Seeds added until resolved: the false-positive rate stays at its level under optional stopping."""

from __future__ import annotations

import numpy as np
import pytest

from twinrun.errors import ConfigError
from twinrun.stats import paired_t_test, sequential_decision


def _run(draw, n_max, n_min=3):
    d = list(draw(n_min))
    while True:
        r = sequential_decision(d, n_max=n_max, n_min=n_min)
        if r.decision != "continue":
            return r
        d.extend(draw(1))


@pytest.mark.parametrize("dist", ["normal", "t3"])
def test_under_the_null_it_calls_a_difference_at_most_5_percent_of_the_time(dist):
    rng = np.random.default_rng(1 if dist == "normal" else 2)
    draw = (lambda k: rng.normal(size=k)) if dist == "normal" else (lambda k: rng.standard_t(3, size=k))
    sims = 3000
    false = sum(_run(draw, n_max=20).decision == "resolved" for _ in range(sims))
    se = np.sqrt(0.05 * 0.95 / sims)
    assert false / sims <= 0.05 + 3 * se, false / sims


def test_naive_peeking_would_have_inflated_it():
    rng = np.random.default_rng(3)
    sims, naive = 2000, 0
    for _ in range(sims):
        d = list(rng.normal(size=3))
        while len(d) <= 20:
            p = paired_t_test(d, np.zeros(len(d))).p_value
            if p is not None and p < 0.05:
                naive += 1
                break
            d.append(rng.normal())
    assert naive / sims > 0.15  # why the rule spends its level over the looks


def test_a_real_difference_is_resolved_and_a_tiny_one_stops_for_futility():
    rng = np.random.default_rng(4)
    resolved = _run(lambda k: rng.normal(1.0, 1.0, k), n_max=30)
    assert resolved.decision == "resolved" and resolved.estimate > 0 and resolved.n < 30
    stops = [_run(lambda k: rng.normal(0.0, 1.0, k), n_max=12).decision for _ in range(200)]
    assert {"futile", "exhausted"} >= set(stops) - {"resolved"} and "futile" in stops


def test_bad_bounds_are_refused():
    with pytest.raises(ConfigError, match="n_min"):
        sequential_decision([1.0, 2.0, 3.0], n_max=2)
