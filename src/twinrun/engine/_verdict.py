"""Paired comparisons of each candidate against the reference."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from twinrun.engine._result import CandidateResult, Comparison, Difference
from twinrun.rng import derive_seed
from twinrun.stats import block_bootstrap_interval, paired_t_interval

__all__ = ["compare_candidates"]


def compare_candidates(
    candidates: Mapping[str, CandidateResult],
    reference: str,
    metric_goals: Mapping[str, bool],
    *,
    seed: int,
    confidence: float = 0.95,
) -> dict[str, Comparison]:
    """Compare every candidate with ``reference``.

    * Validation: the mean per-example difference on the shared validation set,
      with a paired t interval (examples are independent pairs).
    * Training: the mean per-step difference of training loss on the shared
      batches, with a circular block bootstrap interval (steps are autocorrelated).
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
                val[metric] = Difference(
                    r["mean"], r["low"], r["high"], int(r["n"]), "paired t over validation examples", higher
                )
        train_diffs = cand.train_loss - ref.train_loss
        train: Difference | None = None
        if np.isfinite(train_diffs).sum() >= 2:
            r = block_bootstrap_interval(
                train_diffs, confidence=confidence, seed=derive_seed(seed, "verdict", name)
            )
            train = Difference(
                r["mean"], r["low"], r["high"], int(r["n"]),
                "circular block bootstrap over training steps", False, block=int(r["block"]),
            )
        comparisons[name] = Comparison(name, reference, val, train)
    return comparisons
