"""Typed results of the statistics: intervals, paired differences, and what is built on them.

All are frozen dataclasses with one meaning for "not estimable": ``None``, with a
``reason`` saying why (never NaN). ``to_dict()`` gives the strictly JSON-safe record a
registry stores; its keys are the ones sweeps have always been stored under, so an
analysis recorded before these types existed reads the same.

>>> from twinrun.stats import paired_t_interval
>>> r = paired_t_interval([1.0, 2.0, 3.0])
>>> r.estimate, round(r.low, 3), round(r.high, 3), r.excludes(0.0)
(2.0, -0.484, 4.484, False)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

__all__ = [
    "BlockInterval",
    "BootstrapInterval",
    "HolmTest",
    "Improvement",
    "Interval",
    "PairedDifference",
    "PairingGain",
    "SeedComparison",
    "SeedsNeeded",
    "SequentialDecision",
    "SkewInterval",
    "Summary",
    "finite_or_none",
]


def finite_or_none(x: Any) -> float | None:
    """``float(x)`` when it is a finite number, else ``None`` (NaN, infinity, ``None``)."""
    if x is None or isinstance(x, bool):
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def _side(low: float | None, high: float | None, value: float) -> int:
    """+1 when ``[low, high]`` lies above ``value``, -1 below, 0 when it holds it or is not estimable."""
    if low is None or high is None:
        return 0
    return 1 if low > value else -1 if high < value else 0


def _plain(value: Any) -> Any:
    """``value`` as JSON: a typed result as its record, NaN and infinity as ``None``, tuples as lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return value.to_dict()  # type: ignore[attr-defined]
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _record(result: Any, *, leave: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every field of ``result`` but ``leave``, JSON-safe."""
    return {f.name: _plain(getattr(result, f.name)) for f in fields(result) if f.name not in leave}


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval.

    Attributes:
        estimate: the point estimate (a mean, a mean difference), ``None`` without data.
        low, high: the interval's endpoints, ``None`` when it is not estimable (``reason``).
        n: how many values it was computed from.
        confidence: its nominal coverage.
        method: how it was computed (``"t"``, ``"t_skew"``, ``"block bootstrap"``...).
        se: the estimate's standard error, where the method gives one.
        p_value: the two-sided p-value against 0, where the method gives one.
        reason: why ``low``/``high`` (or ``estimate``) are ``None``.
    """

    estimate: float | None
    low: float | None
    high: float | None
    n: int
    confidence: float
    method: str
    se: float | None = None
    p_value: float | None = None
    reason: str | None = None

    @property
    def estimable(self) -> bool:
        """Whether both endpoints are known."""
        return self.low is not None and self.high is not None

    @property
    def width(self) -> float | None:
        return None if self.low is None or self.high is None else self.high - self.low

    def excludes(self, value: float = 0.0) -> bool:
        """Whether the interval is estimable and leaves ``value`` out."""
        return _side(self.low, self.high, value) != 0

    def better(self, higher_is_better: bool) -> bool | None:
        """For a difference ``a - b``: True when ``a`` is resolved better, False worse, None unresolved."""
        side = _side(self.low, self.high, 0.0)
        return None if side == 0 else (side > 0) == higher_is_better

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-safe (nested intervals as dicts)."""
        return _record(self)


@dataclass(frozen=True)
class SkewInterval(Interval):
    """The interval of a mean, widened where the sample is skewed (:func:`~twinrun.stats.mean_interval`).

    ``t`` is the plain Student-t interval it contains, with that test's p-value.
    """

    skewness: float | None = None
    t: Interval | None = None


@dataclass(frozen=True)
class BlockInterval(Interval):
    """A circular block bootstrap interval (:func:`~twinrun.stats.block_bootstrap_interval`)."""

    block: int = 0


@dataclass(frozen=True)
class BootstrapInterval(Interval):
    """A bootstrap interval of a statistic over seeds (:func:`~twinrun.stats.bootstrap_ci`).

    ``dropped``: the seeds left out (a non-finite score); ``bias`` and ``acceleration``:
    BCa's corrections (``None`` for the other methods).
    """

    dropped: int = 0
    n_resamples: int = 0
    bias: float | None = None
    acceleration: float | None = None


@dataclass(frozen=True)
class Improvement(Interval):
    """P(A > B) over seeds with its interval (:func:`~twinrun.stats.probability_of_improvement`).

    ``estimate`` is the probability (stored as ``value``); ``intervals``: every method's
    ``{"low", "high"}`` (``percentile``, ``expanded``, ``bca``, and for paired seeds
    ``exact`` and ``score``, the headline).
    """

    pairing: str = "paired"
    higher_is_better: bool = True
    intervals: Mapping[str, Mapping[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored record: ``value`` for the probability (and no ``p_value``: it tests nothing)."""
        out = super().to_dict()
        out.pop("p_value")
        return {"value": out.pop("estimate"), **out}


@dataclass(frozen=True)
class PairedDifference:
    """The paired difference ``a - b`` across seeds (:func:`~twinrun.stats.paired_t_test`,
    :func:`~twinrun.stats.paired_difference`).

    Attributes:
        estimate: the mean of ``a - b`` over the seeds finite in both (stored as ``diff``).
        low, high: the headline interval's endpoints (the skew-adjusted t interval).
        n: the seeds used.
        confidence: the intervals' nominal coverage.
        sd: the differences' standard deviation (``ddof=1``); se, t, df: the t statistic's parts.
        p_value: two-sided, of the headline interval (below ``1 - confidence`` exactly when it excludes 0).
        skewness: of the differences.
        t_test: the plain paired t-test (``scipy.stats.ttest_rel``'s numbers) as an interval.
        reason: why something is ``None`` (too few seeds, no spread).
        diffs: the per-seed differences, ``None`` where a seed is left out (:func:`paired_difference` only).
        intervals: every method's ``{"low", "high"}`` (``t_skew``, ``t``, ``percentile``,
            ``expanded``, ``bca``; :func:`paired_difference` only).
        better: read with the metric's direction when it was given, else ``None``.
    """

    estimate: float | None
    low: float | None
    high: float | None
    n: int
    confidence: float
    sd: float | None = None
    se: float | None = None
    t: float | None = None
    df: int | None = None
    p_value: float | None = None
    skewness: float | None = None
    t_test: Interval | None = None
    reason: str | None = None
    method: str = "t_skew"
    diffs: tuple[float | None, ...] | None = None
    intervals: Mapping[str, Mapping[str, Any]] | None = None
    better: bool | None = None

    @property
    def interval(self) -> Interval:
        """The headline interval alone."""
        return Interval(self.estimate, self.low, self.high, self.n, self.confidence, self.method, self.se,
                        self.p_value, self.reason)  # fmt: skip

    def excludes(self, value: float = 0.0) -> bool:
        return _side(self.low, self.high, value) != 0

    def to_dict(self) -> dict[str, Any]:
        """The stored record: ``diff`` for the estimate, the plain test as ``t_test``."""
        out = _record(self, leave=("estimate",))
        t_test = self.t_test
        out["t_test"] = None if t_test is None else {"low": t_test.low, "high": t_test.high, "p_value": t_test.p_value}
        return {"diff": self.estimate, **out}


@dataclass(frozen=True)
class PairingGain:
    """What pairing the seeds bought against an unpaired design (:func:`~twinrun.stats.pairing_gain`).

    ``var_paired`` is ``Var(a - b)``, ``var_unpaired`` ``Var(a) + Var(b)``;
    ``variance_reduction`` is ``1 - var_paired / var_unpaired`` and ``seeds_factor``
    ``var_unpaired / var_paired`` (how many times as many seeds an unpaired design needs).
    """

    n: int
    correlation: float | None = None
    var_a: float | None = None
    var_b: float | None = None
    var_paired: float | None = None
    var_unpaired: float | None = None
    variance_reduction: float | None = None
    seeds_factor: float | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _record(self)


@dataclass(frozen=True)
class SeedsNeeded:
    """How many seeds a paired difference needs (:func:`~twinrun.stats.seeds_needed`).

    ``seeds`` is ``None`` when no number of seeds is predicted to resolve it (``reason``).
    ``range``, ``evidence`` and ``assumes`` come with a pilot (``n_run``): the seeds needed
    at both ends of the pilot's interval, whether that interval excludes 0, and what the
    estimate assumes.
    """

    seeds: int | None
    effect_size: float | None
    power: float | None
    alpha: float
    target_power: float
    reason: str | None = None
    range: tuple[int | None, int | None] | None = None
    evidence: bool | None = None
    assumes: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stored record (``range``, ``evidence`` and ``assumes`` only with a pilot)."""
        return _record(self, leave=() if self.range is not None else ("range", "evidence", "assumes"))


@dataclass(frozen=True)
class Summary:
    """One candidate over its seeds (:func:`~twinrun.stats.summarize`).

    ``seeds`` and ``values`` are the ``K`` seeds and their scores (``None`` where missing);
    the statistics are over the ``n`` finite ones, ``None`` where there are too few
    (``unavailable`` says why, by statistic).
    """

    n: int
    seeds: tuple[int | str, ...]
    values: tuple[float | None, ...]
    mean: float | None
    std: float | None
    median: float | None
    iqm: float | None
    min: float | None
    max: float | None
    range: float | None
    unavailable: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _record(self)


@dataclass(frozen=True)
class HolmTest:
    """One test of a family under Holm's step-down adjustment (:func:`~twinrun.stats.holm`).

    All three are ``None`` for a test that could not be run (no p-value).
    """

    p_value: float | None
    p_holm: float | None
    reject: bool | None

    def to_dict(self) -> dict[str, Any]:
        return _record(self)


@dataclass(frozen=True)
class SequentialDecision:
    """What to do after the seeds so far (:func:`~twinrun.stats.sequential_decision`).

    ``decision``: ``"continue"`` (add a seed), ``"resolved"``, ``"exhausted"`` (``n_max``
    seeds, not resolved) or ``"futile"`` (not resolvable within ``n_max``); ``estimate``,
    ``low``, ``high``: the mean difference and its interval at the per-look ``level``
    (stored as ``diff``).
    """

    decision: str
    n: int
    n_max: int
    n_min: int
    looks: int
    level: float
    alpha: float
    estimate: float | None = None
    low: float | None = None
    high: float | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**_record(self, leave=("estimate",)), "diff": self.estimate}


@dataclass(frozen=True)
class SeedComparison:
    """One candidate against the reference across seeds (:func:`~twinrun.stats.compare_to_reference`).

    Attributes:
        candidate, reference: who is compared with whom (``difference`` is candidate minus reference).
        seeds_used, seeds_dropped: the seeds finite for both, and those left out (one of the two missing).
        difference: the paired difference with its intervals.
        pairing: what the pairing bought (:func:`~twinrun.stats.pairing_gain`).
        improvement: P(candidate > reference), ``"paired"`` and ``"unpaired"``.
        seeds_needed: how many seeds the difference needs (:func:`~twinrun.stats.seeds_needed`).
        p_holm: the Holm-adjusted p-value over the candidates.
        decision: ``"better"``, ``"worse"`` or ``"not resolved"``, at the Holm-adjusted level.
        notes: what was left out, and why.
    """

    candidate: str
    reference: str
    seeds_used: tuple[int | str, ...]
    seeds_dropped: tuple[int | str, ...]
    difference: PairedDifference
    pairing: PairingGain
    improvement: Mapping[str, Improvement]
    seeds_needed: SeedsNeeded
    p_holm: float | None
    decision: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The stored record (as analyses have always stored it: no ``candidate`` key, the dict is keyed by it)."""
        return _record(self, leave=("candidate",))
