"""What a check returns, and the report of a whole suite.

Every check measures something (a number, not just a verdict), says what it
expected, explains in one paragraph why that matters and gives a concrete fix.
``CheckReport.to_dict()`` is complete and strictly JSON-safe (no NaN, no
tensors), so it can be printed with ``--json`` or stored as it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["STATUSES", "CheckReport", "CheckResult", "Status", "json_safe"]

Status = Literal["pass", "warn", "fail", "skip"]
#: Every status a check can return, from best to worst (skip: the check does not apply).
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "skip")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: the check's short stable name (``loss_at_init``...).
        status: ``pass``, ``warn``, ``fail`` or ``skip`` (the check does not apply; see ``explanation``).
        measured: what was measured, in words and numbers (``"2.31 (log 10 = 2.30)"``).
        expected: what a healthy setup gives.
        explanation: one paragraph: what the check did and what the measurement means.
        fix: what to do about a warn or fail (empty when there is nothing to do).
        artifacts: name -> path of files written (PNG figures).
        details: numbers behind the verdict (JSON-safe after :func:`json_safe`).
        seconds: wall time of the check itself (shared training excluded).
    """

    name: str
    status: Status
    measured: str
    expected: str
    explanation: str
    fix: str = ""
    artifacts: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check {self.name!r}: status {self.status!r} is not one of {STATUSES}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "measured": self.measured,
            "expected": self.expected,
            "explanation": self.explanation,
            "fix": self.fix,
            "artifacts": dict(self.artifacts),
            "details": json_safe(self.details),
            "seconds": round(self.seconds, 4),
        }


@dataclass
class CheckReport:
    """The results of a suite of checks on one model/data/optimizer setup."""

    results: list[CheckResult]
    subject: dict[str, Any] = field(default_factory=dict)
    outdir: str | None = None
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True when at least one check failed."""
        return any(r.status == "fail" for r in self.results)

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in STATUSES}

    def by_status(self, *statuses: Status) -> list[CheckResult]:
        return [r for r in self.results if r.status in statuses]

    def __getitem__(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no check named {name!r} in this report; it has {[r.name for r in self.results]}")

    def __contains__(self, name: object) -> bool:
        return any(r.name == name for r in self.results)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts.items() if n)
        return f"CheckReport({len(self.results)} checks: {counts}; failed={self.failed})"

    def __str__(self) -> str:
        """One line per check: status, name and what it measured (``twinrun check`` prints more)."""
        width = max((len(r.name) for r in self.results), default=0)
        lines = [repr(self)] + [f"  {r.status:<4}  {r.name:<{width}}  {r.measured}" for r in self.results]
        return "\n".join(lines)

    def statuses(self) -> dict[str, str]:
        """``{check name: status}``, in the order the checks ran."""
        return {r.name: r.status for r in self.results}

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": json_safe(self.subject),
            "outdir": self.outdir,
            "failed": self.failed,
            "counts": self.counts,
            "timing": json_safe({k: round(v, 4) for k, v in self.timing.items()}),
            "results": [r.to_dict() for r in self.results],
        }


def json_safe(value: Any) -> Any:
    """Turn numbers, arrays and tensors into plain JSON values; NaN and Inf become ``None``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        x = float(value)
        return x if math.isfinite(x) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # torch tensors
        return json_safe(value.detach().cpu().tolist())
    if isinstance(value, (Sequence, set, frozenset)):
        return [json_safe(v) for v in value]
    return str(value)
