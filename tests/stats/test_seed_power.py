"""Seeds needed: the paired t-test's power against a published table, simulation and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from twinrun.stats import paired_t_power, seeds_needed


@pytest.mark.parametrize(
    ("effect", "n"),
    # two-sided paired t-test, alpha 0.05, power 0.8 (G*Power "matched pairs" / Cohen 1988)
    [(0.2, 199), (0.3, 90), (0.5, 34), (0.8, 15), (1.0, 10), (1.5, 6)],
)
def test_seeds_needed_matches_the_published_table(effect, n):
    r = seeds_needed(effect * 0.01, 0.01)
    assert r.seeds == n
    assert r.power >= 0.8 > paired_t_power(effect, n - 1)
    assert r.effect_size == pytest.approx(effect)
    assert seeds_needed(-effect, 1.0).seeds == n  # the sign does not matter


def test_power_by_simulation():
    """Simulate 20,000 paired t-tests with 34 seeds at effect 0.5: rejections ~ the computed power."""
    rng = np.random.default_rng(0)
    d = rng.normal(0.5, 1.0, size=(20_000, 34))
    p = sps.ttest_1samp(d, 0.0, axis=1).pvalue
    assert (p < 0.05).mean() == pytest.approx(paired_t_power(0.5, 34), abs=0.01)


def test_power_closed_form_limits():
    # for many seeds the t-test is the z-test: power = Phi(e sqrt(n) - z_0.975) (+ a negligible tail)
    e, n = 0.1, 4000
    z = sps.norm.ppf(0.975)
    assert paired_t_power(e, n) == pytest.approx(sps.norm.cdf(e * math.sqrt(n) - z), abs=2e-3)
    # with no effect the power is the level
    assert paired_t_power(0.0, 12) == pytest.approx(0.05, abs=1e-9)
    assert math.isnan(paired_t_power(1.0, 1))
    # huge effects stay finite (scipy's noncentral t underflows in the far tail)
    assert paired_t_power(50.0, 3) == pytest.approx(1.0)


def test_stricter_levels_and_power_need_more_seeds():
    base = seeds_needed(0.5, 1.0).seeds
    assert seeds_needed(0.5, 1.0, alpha=0.05 / 4).seeds > base
    assert seeds_needed(0.5, 1.0, power=0.9).seeds > base


def test_unresolvable_differences():
    zero = seeds_needed(0.0, 0.01)
    assert zero.seeds is None and "observed mean difference is 0" in zero.reason
    identical = seeds_needed(0.0, 0.0)
    assert identical.seeds is None and "exactly the same on every seed" in identical.reason
    constant = seeds_needed(0.01, 0.0)
    assert constant.seeds == 2
    tiny = seeds_needed(1e-6, 1.0)
    assert tiny.seeds is None and "more than 10000 seeds" in tiny.reason
    broken = seeds_needed(float("nan"), 1.0)
    assert broken.seeds is None and "finite" in broken.reason


def test_seeds_needed_after_a_pilot_is_a_range_and_never_the_seeds_already_run():
    # a pilot of 3 seeds that did not resolve a clear effect: the point estimate would be 2
    r = seeds_needed(1.0, 0.3, n_run=3)
    assert r.seeds >= 4 and r.range[0] >= 4 and r.evidence is True
    assert r.range[1] is None or r.range[1] >= r.seeds
    assert "normal" in r.assumes
    # under a true null the interval holds 0: "no evidence of a difference yet", no upper end
    null = seeds_needed(0.01, 0.5, n_run=5)
    assert null.evidence is False and null.range[1] is None
    assert null.reason.startswith("no evidence of a difference yet")
