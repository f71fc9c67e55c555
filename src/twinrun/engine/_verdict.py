"""Paired comparisons of each candidate against the reference."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from twinrun.engine._evaluate import EvalOutput
from twinrun.engine._result import CandidateResult, Comparison, Difference
from twinrun.stats import paired_t_interval

__all__ = ["ONE_RUN_SCOPE", "ONE_RUN_TRAIN_SCOPE", "baseline_report", "compare_at_best", "compare_candidates"]

#: One run: the interval holds which validation examples were drawn, not training noise.
ONE_RUN_SCOPE = (
    "these trained weights on this validation set: the interval holds which validation "
    "examples were drawn, not training noise (initial weights, batch order, dropout), so it "
    "says nothing about the recipe; replicas or seeds do (--replicas K, twinrun seeds)"
)
ONE_RUN_TRAIN_SCOPE = (
    "the mean per-step difference of one run, without an interval: the steps of one "
    "training trajectory drift together, and no resampling of them measures what "
    "another run would give; replicas or seeds do (--replicas K, twinrun seeds)"
)


def compare_candidates(
    candidates: Mapping[str, CandidateResult],
    reference: str,
    metric_goals: Mapping[str, bool],
    *,
    seed: int,
    confidence: float = 0.95,
) -> dict[str, Comparison]:
    """Compare every candidate with ``reference``, on this run alone.

    * Validation: the mean per-example difference on the shared validation set,
      with a paired t interval (examples are independent pairs). Its scope is
      these trained weights on this validation set (:data:`ONE_RUN_SCOPE`).
    * Training: the mean per-step difference of training loss on the shared
      batches, with no interval. The difference drifts persistently over a run
      (one trajectory), and a block bootstrap of it was about 3.7x too narrow
      against the spread across seeds: no interval from one run can cover the
      run-to-run variation (:data:`ONE_RUN_TRAIN_SCOPE`).

    ``seed`` is kept for the signature (no resampling is done any more).
    """
    ref = candidates[reference]
    comparisons: dict[str, Comparison] = {}
    for name, cand in candidates.items():
        if name == reference:
            continue
        val: dict[str, Difference] = {}
        if cand.status == "finished" and ref.status == "finished":
            for metric, higher in metric_goals.items():
                diffs = cand.per_example[metric] - ref.per_example[metric]
                r = paired_t_interval(diffs, confidence)
                val[metric] = Difference.of(r, "paired t over validation examples", higher, scope=ONE_RUN_SCOPE)
        train_diffs = cand.train_loss - ref.train_loss
        finite = train_diffs[np.isfinite(train_diffs)]
        train: Difference | None = None
        if finite.size >= 1:
            train = Difference(
                float(finite.mean()),
                None,
                None,
                int(finite.size),
                "mean over shared training steps (no interval from one run)",
                False,
                scope=ONE_RUN_TRAIN_SCOPE,
            )
        comparisons[name] = Comparison(name, reference, val, train)
    return comparisons


def baseline_report(
    candidates: Mapping[str, CandidateResult],
    evals: Mapping[str, EvalOutput],
    metric_goals: Mapping[str, bool],
    skipped: Mapping[str, str],
    declared: Mapping[str, float],
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The baselines' scores and each finished candidate's paired difference to each (``_baselines``).

    ``above[candidate][baseline][metric]``: candidate minus baseline per validation example, with a
    t interval; its scope is this validation set, as for one run's verdict.
    """
    above: dict[str, dict[str, dict[str, Any]]] = {}
    for name, cand in candidates.items():
        if cand.status != "finished":
            continue
        for base, out in evals.items():
            for metric, higher in metric_goals.items():
                if metric not in cand.per_example or metric not in out.per_example:
                    continue
                r = paired_t_interval(cand.per_example[metric] - out.per_example[metric], confidence)
                how = f"paired t over validation examples, {name} minus the {base} baseline"
                d = Difference.of(r, how, higher, scope=ONE_RUN_SCOPE)
                above.setdefault(name, {}).setdefault(base, {})[metric] = d.to_dict()
    return {
        "scores": {base: out.means() for base, out in evals.items()},
        "skipped": dict(skipped),
        "declared": dict(declared),
        "above": above,
    }


#: The verdict at each candidate's best step: the half of the validation set that did not choose it.
BEST_SCOPE = (
    "each candidate at its best step, chosen on one half of the validation set, judged on the "
    "other half (which played no part in choosing it); these trained weights, not the recipe"
)


def compare_at_best(
    held_out: Mapping[str, Mapping[str, np.ndarray]],
    reference: str,
    metric_goals: Mapping[str, bool],
    steps: Mapping[str, int],
    confidence: float = 0.95,
) -> dict[str, Comparison]:
    """Every candidate at its best step against the reference at its own, on the judging half."""
    if reference not in held_out:
        return {}
    out: dict[str, Comparison] = {}
    for name, values in held_out.items():
        if name == reference:
            continue
        val = {}
        for metric, higher in metric_goals.items():
            r = paired_t_interval(values[metric] - held_out[reference][metric], confidence)
            how = f"paired t over the judging half, step {steps[name]} vs {reference}'s step {steps[reference]}"
            val[metric] = Difference.of(r, how, higher, scope=BEST_SCOPE)
        out[name] = Comparison(name, reference, val, None)
    return out
