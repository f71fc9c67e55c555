"""Seed-aligned scores: one score per seed per candidate.

Shapes. ``scores`` maps each candidate name to either

* a sequence of ``K`` numbers, shape ``[K]``: position ``k`` is the same seed for
  every candidate (all candidates share seed ``k``'s init, batches and
  augmentation), and ``NaN`` or ``None`` marks a seed the candidate lacks; or
* a mapping ``{seed: score}``: a seed absent from it is missing for that candidate.

:func:`align_scores` turns either form into ``{candidate: float64[K]}`` with ``NaN``
for every missing or non-finite score, the seed labels, and plain-words notes
naming what is missing. Everything downstream uses only finite scores: a
candidate's own statistics use its finite seeds, a comparison of two candidates
the seeds finite for both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from twinrun.errors import DataError

__all__ = ["AlignedScores", "SeedLabel", "align_scores", "describe_seeds", "pair_scores"]

#: How a seed is named in results and notes: its position or the label the caller gave.
SeedLabel = int | str

_FIX_ALIGN = (
    "give every candidate one score per seed in the same seed order, with NaN (or None) "
    "where a seed is missing, e.g. {'a': [0.91, 0.93, 0.92], 'b': [0.90, None, 0.94]}; "
    "or give {seed: score} mappings"
)


@dataclass(frozen=True)
class AlignedScores:
    """Scores aligned on seeds: ``values[name]`` is ``float64[K]`` with NaN where missing."""

    seeds: tuple[SeedLabel, ...]
    values: dict[str, np.ndarray]
    notes: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return list(self.values)

    def present(self, name: str) -> np.ndarray:
        """``bool[K]``: the seeds where ``name`` has a finite score."""
        return cast("np.ndarray", np.isfinite(self.values[name]))

    def labels(self, mask: np.ndarray) -> list[SeedLabel]:
        """The seed labels where ``mask`` (``bool[K]``) is true."""
        return [s for s, keep in zip(self.seeds, mask) if keep]


def describe_seeds(labels: Sequence[SeedLabel]) -> str:
    """``"seed 3"`` or ``"seeds 3, 7"``."""
    word = "seed" if len(labels) == 1 else "seeds"
    return f"{word} {', '.join(str(s) for s in labels)}"


def align_scores(scores: Mapping[str, Any], seeds: Sequence[SeedLabel] | None = None) -> AlignedScores:
    """Validate and align ``scores`` (see the module docstring for the accepted shapes).

    Args:
        scores: ``{candidate: [K] scores or {seed: score}}``.
        seeds: optional labels of the ``K`` seeds (e.g. the seed values run); they name
            seeds in notes and fix the order of ``{seed: score}`` mappings.

    Raises:
        DataError: no candidates, a non-numeric or non-1-D score array, candidates with
            different numbers of seeds, or ``seeds`` of the wrong length.
    """
    if not isinstance(scores, Mapping) or not scores:
        raise DataError(
            f"scores must be a non-empty mapping of candidate name to per-seed scores, got {scores!r}",
            fix="pass e.g. {'base': [0.91, 0.93, 0.92], 'wide': [0.92, 0.95, 0.93]}",
        )
    for name in scores:
        if not isinstance(name, str):
            raise DataError(f"candidate name {name!r} is not a string", fix="name candidates with strings")
    labels = _seed_labels(scores, seeds)
    values = {name: _row(name, raw, labels) for name, raw in scores.items()}
    _check_lengths(values, labels, seeds is not None)
    return AlignedScores(tuple(labels), values, tuple(_missing_notes(values, labels)))


def _seed_labels(scores: Mapping[str, Any], seeds: Sequence[SeedLabel] | None) -> list[SeedLabel]:
    if seeds is not None:
        labels = [s.item() if isinstance(s, np.generic) else s for s in seeds]
        if len(set(labels)) != len(labels):
            raise DataError(f"seeds {labels} contain duplicates", fix="give each seed once")
        return labels
    mappings = [raw for raw in scores.values() if isinstance(raw, Mapping)]
    if not mappings:
        first = next(iter(scores.values()))
        return list(range(np.size(first)))
    if len(mappings) != len(scores):
        raise DataError(
            "some candidates give {seed: score} mappings and others plain sequences; "
            "without seed labels the sequences cannot be matched to seeds",
            fix="pass seeds=[...] naming the seed at each position, or use one form for all",
        )
    union: dict[SeedLabel, None] = {}
    for raw in mappings:
        union.update(dict.fromkeys(raw))
    try:
        return sorted(union)
    except TypeError:
        return list(union)


def _row(name: str, raw: Any, labels: list[SeedLabel]) -> np.ndarray:
    if isinstance(raw, Mapping):
        unknown = [s for s in raw if s not in labels]
        if unknown:
            raise DataError(
                f"candidate {name!r} has scores for {describe_seeds(unknown)}, not among seeds {labels}",
                fix="add those seeds to seeds=[...] or drop their scores",
            )
        raw = [raw.get(s) for s in labels]
    try:
        row = np.asarray(
            [np.nan if v is None else v for v in raw] if isinstance(raw, (list, tuple)) else raw,
            dtype=np.float64,
        )
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"candidate {name!r}: scores {raw!r} are not numbers ({exc})",
            fix="give one number per seed (NaN or None for a missing seed)",
        ) from None
    if row.ndim != 1:
        raise DataError(
            f"candidate {name!r}: scores have shape {row.shape}; twinrun needs one score per seed, shape [K]",
            fix="pass a flat list with one final metric value per seed",
        )
    return row


def _check_lengths(values: dict[str, np.ndarray], labels: list[SeedLabel], labelled: bool) -> None:
    k = len(labels)
    for name, row in values.items():
        if row.size != k:
            first = next(iter(values))
            expected = f"{len(labels)} seeds were given" if labelled else (f"{first!r} has {values[first].size}")
            raise DataError(
                f"candidate {name!r} has {row.size} scores but {expected}; scores must be "
                "seed-aligned (position k is the same seed for every candidate)",
                fix=_FIX_ALIGN,
            )
    if k == 0:
        raise DataError(
            "no seeds: every candidate has an empty list of scores",
            fix="run at least one seed (at least 2 for a spread, 10 for intervals)",
        )


def _missing_notes(values: dict[str, np.ndarray], labels: list[SeedLabel]) -> list[str]:
    notes = []
    for name, row in values.items():
        bad = ~np.isfinite(row)
        if not bad.any():
            continue
        what = [f"{label} ({'missing' if np.isnan(v) else str(v)})" for label, v, b in zip(labels, row, bad) if b]
        kept = int((~bad).sum())
        word = "seed" if bad.sum() == 1 else "seeds"
        notes.append(
            f"candidate {name!r}: no finite score for {word} {', '.join(what)}; its own statistics "
            f"use the other {kept} seed{'s' if kept != 1 else ''}, its comparisons only the seeds "
            "both candidates have"
        )
    return notes


def pair_scores(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two seed-aligned ``[K]`` score arrays as float64, and the mask of seeds finite in both."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise DataError(
            f"a and b must be seed-aligned [K] arrays of one length, got shapes {x.shape} and {y.shape}",
            fix="pass one score per seed for each, NaN where a seed is missing",
        )
    return x, y, np.isfinite(x) & np.isfinite(y)
