"""The headline verdict's truth, measured through the real engine and the real analysis.

A null pair: two candidates with the same architecture and learning rate whose
only difference is their own draw of initial weights (``tests/experiments/null_pair.py``:
the layers are named differently, so nothing is shared). Judged across replicas
(K = 4 seeds paired across candidates, run as ``twinrun compare --replicas 4`` runs
them: in this process, each candidate's replicas batched), "better"/"worse" must come
no more often than the nominal 5 % (up to a binomial bound); a real difference (width 2
against width 32) must still be found with the right sign.
"""

from __future__ import annotations

import pytest
from _subprocess import HERE
from scipy.stats import binom

from twinrun.sweeps import Analysis, run_sweep

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")]

K, EXPERIMENTS = 4, 60
NULL_PAIR = HERE / "experiments" / "null_pair.py"


def _verdict(home, candidates, base_seed):
    sweep = run_sweep(NULL_PAIR, seeds=[base_seed + r for r in range(K)], candidates=candidates,
                      execution="inprocess", analysis=Analysis(metric="loss", n_resamples=200), ensemble=False,
                      home=home, progress=False)
    assert sweep.ok and sweep.execution["backend"] == "inprocess"
    return sweep.analysis["metrics"]["loss"]


def test_a_null_pair_is_called_different_at_most_at_the_nominal_rate(tmp_path):
    calls = 0
    for e in range(EXPERIMENTS):
        verdict = _verdict(tmp_path, ["a", "b"], base_seed=1000 * e)
        assert verdict["k"] == K and verdict["reference"] == "a"
        calls += verdict["comparisons"]["b"]["decision"] != "not resolved"
    # P(calls >= bound) <= 1 % if the rate were the nominal 5 %
    bound = int(binom.ppf(0.99, EXPERIMENTS, 0.05)) + 1
    assert calls < bound, f"{calls} of {EXPERIMENTS} null pairs were called different (bound {bound})"


def test_a_real_difference_is_found_with_the_right_sign(tmp_path):
    verdict = _verdict(tmp_path, ["narrow", "wide"], base_seed=0)
    assert verdict["comparisons"]["wide"]["decision"] == "better"
