"""Every planted silent bug is caught by the check meant for it, and by no unrelated check."""

from __future__ import annotations

import pytest
from planted import PLANTED, kwargs_for

import twinrun


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Using a target size")  # torch's own warning, for the planted MSE broadcast
@pytest.mark.parametrize("name", list(PLANTED))
def test_planted_bug_is_caught_by_its_check(name, tmp_path):
    case = PLANTED[name]
    report = twinrun.checks.run_checks(**kwargs_for(case), outdir=tmp_path)
    result = report[case.check]
    assert result.status in case.caught, (name, result.status, result.measured, result.explanation)
    assert result.fix, "a caught bug comes with a fix"
    alarms = {r.name: r.status for r in report.results if r.status in ("warn", "fail")}
    unexpected = {k: v for k, v in alarms.items() if k != case.check and k not in case.also}
    assert not unexpected, f"{name}: checks alarmed that should not: {unexpected}"
    assert report.failed == any(s == "fail" for s in alarms.values())


#: checks whose planted bug needs more than run_checks' pieces, and the test that plants it
PLANTED_ELSEWHERE = {"hash_seed": "tests/checks/test_new_checks.py (a vocabulary from set(), an experiment file)"}


def test_every_check_has_a_planted_bug():
    covered = {case.check for case in PLANTED.values()} | set(PLANTED_ELSEWHERE)
    assert covered == set(twinrun.checks.check_names()), sorted(set(twinrun.checks.check_names()) - covered)


@pytest.mark.parametrize("name, needle", [
    ("softmax_then_cross_entropy", "softmax"),
    ("head_left_out_of_optimizer", "not in the optimizer"),
    ("steplr_epochs_per_batch", "per epoch but stepped per batch"),
    ("causal_mask_off_by_one", "depends on the input at position"),
    ("dropout_on_in_eval", "training=True"),
])
def test_the_explanation_names_the_cause(name, needle, tmp_path):
    case = PLANTED[name]
    report = twinrun.checks.run_checks(**kwargs_for(case), outdir=tmp_path, only=[case.check])
    assert needle in report[case.check].explanation
