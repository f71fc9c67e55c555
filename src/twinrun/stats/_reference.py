"""Every candidate against one reference: paired differences, the gain from pairing, Holm's decision.

Shapes as in ``_paired``: ``[K]`` seed-aligned scores per candidate, NaN where a
seed is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from twinrun.errors import ConfigError
from twinrun.stats._bootstrap import (
    _check_resamples,
    check_confidence,
    counts_from_indices,
    resample_indices,
)
from twinrun.stats._improvement import improvement_from_counts
from twinrun.stats._paired import difference_from_counts, holm, pairing_gain
from twinrun.stats._power import seeds_needed
from twinrun.stats._random import Seed, base_seed, stream
from twinrun.stats._scores import (
    AlignedScores,
    SeedLabel,
    align_scores,
    describe_seeds,
)
from twinrun.stats._types import PairedDifference, SeedComparison, SeedsNeeded

__all__ = ["compare_to_reference", "decide"]


def decide(diff: float | None, reject: bool | None, higher_is_better: bool) -> str:
    """``"better"``, ``"worse"`` or ``"not resolved"`` for a candidate against the reference."""
    if not reject or diff is None or diff == 0:
        return "not resolved"
    return "better" if (diff > 0) == higher_is_better else "worse"


def compare_to_reference(
    scores: Mapping[str, Any],
    reference: str | None = None,
    *,
    higher_is_better: bool,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: Seed = 0,
    seeds: Sequence[SeedLabel] | None = None,
) -> dict[str, SeedComparison]:
    """Every candidate against ``reference`` across seeds, Holm-adjusted over the candidates.

    Args:
        scores: ``{candidate: [K]}`` seed-aligned scores (see :func:`~twinrun.stats.align_scores`).
        reference: the candidate the others are compared with (default: the first).
        higher_is_better: the metric's direction.
        seed: base seed; comparison ``c`` draws its resamples (shared by its difference and
            its probabilities of improvement) from its own stream ``(seed, "compare", c)``.

    Returns:
        ``{candidate: SeedComparison}`` for each non-reference candidate
        (:class:`~twinrun.stats.SeedComparison`; ``to_dict()`` is its stored record): ``reference``,
        ``seeds_used``, ``seeds_dropped``, ``difference`` (:func:`paired_difference`),
        ``pairing`` (:func:`pairing_gain`), ``improvement`` (``{"paired": ...,
        "unpaired": ...}``, :func:`~twinrun.stats.probability_of_improvement`),
        ``p_holm``, ``decision`` ("better", "worse" or "not resolved" at the Holm-adjusted
        level ``1 - confidence``), ``seeds_needed`` (:func:`~twinrun.stats.seeds_needed` at the
        Bonferroni level ``(1 - confidence) / m`` for ``m`` comparisons, which the Holm step-down
        never makes stricter) and ``notes``. ``difference.better`` reads the unadjusted t
        interval of that one comparison; ``decision`` is the Holm-adjusted verdict.
    """
    confidence = check_confidence(confidence)
    n_resamples = _check_resamples(n_resamples)
    aligned = align_scores(scores, seeds)
    return _compare(
        aligned,
        _reference(aligned, reference),
        higher_is_better=higher_is_better,
        confidence=confidence,
        n_resamples=n_resamples,
        base=base_seed(seed),
    )


def _reference(aligned: AlignedScores, reference: str | None) -> str:
    if reference is None:
        return aligned.names[0]
    if reference not in aligned.values:
        raise ConfigError(
            f"reference {reference!r} is not among the candidates {aligned.names}",
            fix=f"pass reference= one of {', '.join(repr(n) for n in aligned.names)}",
        )
    return reference


def _compare(
    aligned: AlignedScores,
    reference: str,
    *,
    higher_is_better: bool,
    confidence: float,
    n_resamples: int,
    base: int,
) -> dict[str, SeedComparison]:
    if not isinstance(higher_is_better, bool):
        raise ConfigError(
            f"higher_is_better={higher_is_better!r} must be True or False",
            fix="pass higher_is_better=True for accuracy-like metrics, False for losses",
        )
    ref = aligned.values[reference]
    alpha = round(1 - confidence, 12)
    level = alpha / max(1, len(aligned.values) - 1)  # Bonferroni: Holm is never stricter
    partial: dict[str, dict[str, Any]] = {}
    for name, row in aligned.values.items():
        if name == reference:
            continue
        both = np.isfinite(row) & np.isfinite(ref)
        some = np.isfinite(row) | np.isfinite(ref)
        dropped = aligned.labels(some & ~both)
        notes = []
        if dropped:
            notes.append(
                f"{name!r} vs {reference!r}: {describe_seeds(dropped)} left out "
                "(a score is missing or non-finite for one of the two)"
            )
        n = int(both.sum())
        # one set of resamples (by seed) serves every bootstrap of this comparison
        counts = (
            counts_from_indices(resample_indices(n, n_resamples, stream(base, "compare", name)), n) if n >= 2 else None
        )
        difference = difference_from_counts(
            row, ref, both, higher_is_better=higher_is_better, confidence=confidence, counts=counts
        )
        improvement = {
            pairing: improvement_from_counts(
                row[both],
                ref[both],
                higher_is_better=higher_is_better,
                pairing=pairing,
                confidence=confidence,
                counts=counts,
            )
            for pairing in ("paired", "unpaired")
        }
        needed = (
            seeds_needed(difference.estimate, difference.sd, alpha=level, n_run=difference.n)
            if difference.sd is not None and difference.estimate is not None
            else SeedsNeeded(None, None, None, level, 0.8, "needs the spread of at least 2 paired seeds")
        )
        partial[name] = {
            "seeds_used": tuple(aligned.labels(both)),
            "seeds_dropped": tuple(dropped),
            "difference": difference,
            "pairing": pairing_gain(row, ref),
            "improvement": improvement,
            "seeds_needed": needed,
            "notes": tuple(notes),
        }
    adjusted = holm({k: v["difference"].p_value for k, v in partial.items()}, alpha=alpha)
    result: dict[str, SeedComparison] = {}
    for name, entry in partial.items():
        d: PairedDifference = entry["difference"]
        decision = decide(d.estimate, adjusted[name].reject, higher_is_better)
        if decision != "not resolved" and d.sd is not None and d.estimate is not None:
            # resolved already: how many seeds it took at this effect, not "more than were run"
            entry["seeds_needed"] = seeds_needed(d.estimate, d.sd, alpha=level)
        result[name] = SeedComparison(name, reference, p_holm=adjusted[name].p_holm, decision=decision, **entry)
    return result
