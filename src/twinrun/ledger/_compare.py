"""Where two runs parted: the first record on which two ledgers disagree."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from twinrun.errors import LedgerError
from twinrun.ledger._ledger import Ledger, Record

__all__ = ["Divergence", "LedgerComparison", "compare_ledgers", "first_divergence"]


def _json_number(value: Any) -> Any:
    """JSON has no NaN or infinity: those become the strings "nan", "inf", "-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


@dataclass(frozen=True)
class Divergence:
    """The first difference between two runs.

    ``a``/``b`` are the two records (``None`` when only one run has it).
    ``max_abs_diff`` is known once the tensors themselves were compared (see
    ``twinrun repro``, which narrows a divergence down to them); ``others``
    lists the other records that differ at the same step.
    """

    step: int
    candidate: str
    kind: str
    name: str
    a: Record | None
    b: Record | None
    others: tuple[tuple[str, str, str], ...] = ()
    max_abs_diff: float | None = None
    tensors: tuple[tuple[str, str, str, float], ...] = field(default=())
    rank: int | None = None  # the process of a data-parallel run whose records parted first

    def key_tuple(self) -> tuple[int, str, str, str]:
        return (self.step, self.candidate, self.kind, self.name)

    @property
    def reason(self) -> str:
        if self.a is None:
            return "only in run B"
        if self.b is None:
            return "only in run A"
        return "control sums differ"

    def with_tensors(self, diffs: list[tuple[str, str, str, float]]) -> Divergence:
        """Attach exact tensor differences ``(candidate, kind, name, max |a - b|)`` from a dump."""
        own = next((d[3] for d in diffs if d[:3] == (self.candidate, self.kind, self.name)), None)
        return replace(self, max_abs_diff=own, tensors=tuple(diffs))

    def describe(self) -> str:
        what = {"init": "initial weights", "batch": "batch", "loss": "loss", "weights": "weights", "rng": "RNG state"}[
            self.kind
        ]
        text = f"step {self.step} · candidate {self.candidate} · {what} · {self.name}"
        if self.rank is not None:
            text = f"rank {self.rank} · {text}"
        if self.max_abs_diff is not None:
            text += f" · max |a - b| = {self.max_abs_diff:.3g}"
        elif self.kind == "loss" and self.a is not None and self.b is not None:
            text += f" · {self.a.value!r} vs {self.b.value!r}"
        elif self.kind == "rng" and self.a is not None and self.b is not None and self.a.value is not None:
            text += f" · seed {self.a.value} vs {self.b.value}"
        if self.reason != "control sums differ":
            text += f" ({self.reason})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "rank": self.rank,
            "candidate": self.candidate,
            "kind": self.kind,
            "name": self.name,
            "reason": self.reason,
            "hash_a": self.a.hash if self.a else None,
            "hash_b": self.b.hash if self.b else None,
            "value_a": _json_number(self.a.value) if self.a else None,
            "value_b": _json_number(self.b.value) if self.b else None,
            "max_abs_diff": _json_number(self.max_abs_diff),
            "also_different": [{"candidate": c, "kind": k, "name": n} for c, k, n in self.others],
            "tensors": [
                {"candidate": c, "kind": k, "name": n, "max_abs_diff": _json_number(d)} for c, k, n, d in self.tensors
            ],
        }


@dataclass(frozen=True)
class LedgerComparison:
    """The outcome of comparing two ledgers record by record."""

    compared: int
    divergence: Divergence | None
    last_step_a: int
    last_step_b: int
    skipped: int = 0
    ranks: int = 1  # the processes of a data-parallel run, compared rank by rank

    @property
    def identical(self) -> bool:
        return self.divergence is None and self.last_step_a == self.last_step_b

    def to_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "records_compared": self.compared,
            "records_skipped": self.skipped,
            "ranks": self.ranks,
            "last_step_a": self.last_step_a,
            "last_step_b": self.last_step_b,
            "divergence": None if self.divergence is None else self.divergence.to_dict(),
        }


def _check_comparable(a: Ledger, b: Ledger) -> None:
    if a.config_hash and a.config_hash == b.config_hash:
        return
    raise LedgerError(
        f"the ledgers belong to different configurations: A is experiment {a.experiment!r} with "
        f"config {a.config_hash or '?'}, B is experiment {b.experiment!r} with config "
        f"{b.config_hash or '?'}; their records cannot be compared",
        fix="compare runs of the same experiment file with the same --set overrides (only the "
        "seed, cadence, checkpoints and deterministic mode may differ); `twinrun ledger RUN` shows "
        "a ledger's config",
    )


def compare_ledgers(a: Ledger, b: Ledger) -> LedgerComparison:
    """Compare two ledgers of the same configuration up to the last step both reached.

    Records that only one cadence produces (weights and RNG records of ledgers
    with different ``ledger_every``) are skipped, not counted as differences.

    Raises:
        LedgerError: the ledgers belong to different configurations.
    """
    _check_comparable(a, b)
    common = min(a.last_step, b.last_step)
    same_cadence = a.header.get("ledger_every") == b.header.get("ledger_every")
    index_b = {r.key: r for r in b.records if r.step <= common}
    keys_a = {r.key for r in a.records if r.step <= common}
    differing: list[tuple[tuple[int, int, int], Record | None, Record | None]] = []
    compared = skipped = 0
    for position, ra in enumerate(r for r in a.records if r.step <= common):
        rb = index_b.get(ra.key)
        if rb is None:
            if not same_cadence and ra.kind in ("weights", "rng"):
                skipped += 1
                continue
            differing.append(((ra.step, 0, position), ra, None))
            continue
        compared += 1
        if rb.hash != ra.hash:
            differing.append(((ra.step, 0, position), ra, rb))
    for position, rb in enumerate(r for r in b.records if r.step <= common):
        if rb.key not in keys_a:
            if not same_cadence and rb.kind in ("weights", "rng"):
                skipped += 1
                continue
            differing.append(((rb.step, 1, position), None, rb))
    if not differing:
        return LedgerComparison(compared, None, a.last_step, b.last_step, skipped)
    differing.sort(key=lambda d: d[0])
    _, first_a, first_b = differing[0]
    first = first_a or first_b
    assert first is not None
    others = tuple(
        (r.candidate, r.kind, r.name)
        for _, ra, rb in differing[1:]
        for r in [ra or rb]
        if r is not None and r.step == first.step
    )
    divergence = Divergence(first.step, first.candidate, first.kind, first.name, first_a, first_b, others)
    return LedgerComparison(compared, divergence, a.last_step, b.last_step, skipped)


def first_divergence(a: Ledger, b: Ledger) -> Divergence | None:
    """The first record on which ledgers ``a`` and ``b`` disagree, or ``None`` if they agree.

    Records are compared in the order run A recorded them (within a step:
    batch, loss, weights, RNG state), up to the last step both runs reached.

    Raises:
        LedgerError: the ledgers belong to different configurations.
    """
    return compare_ledgers(a, b).divergence
