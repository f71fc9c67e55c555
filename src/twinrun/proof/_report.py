"""What ``twinrun repro`` found, for people (:meth:`ReproReport.format`) and scripts (``to_dict``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twinrun.ledger import Divergence, LedgerComparison
from twinrun.proof._vary import Variation

__all__ = ["ReproReport", "RunInfo"]


@dataclass(frozen=True)
class RunInfo:
    """One of the two runs: how it was started, how long it took, what it ran on."""

    label: str
    seconds: float
    train_seconds: float
    factors: Mapping[str, Any]
    ledger: str

    @classmethod
    def from_outcome(cls, label: str, seconds: float, outcome: Mapping[str, Any]) -> RunInfo:
        timing = outcome.get("timing", {})
        return cls(
            label,
            seconds,
            float(timing.get("train", math.nan)),
            dict(outcome.get("reproducibility", {}).get("factors", {})),
            str(outcome.get("ledger")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "seconds": round(self.seconds, 3),
            "train_seconds": round(self.train_seconds, 6),
            "factors": dict(self.factors),
            "ledger": self.ledger,
        }


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@dataclass
class ReproReport:
    """The outcome of ``repro()``: identical, or where the runs parted."""

    experiment: str
    steps: int
    variation: Variation
    comparison: LedgerComparison
    divergence: Divergence | None
    narrowed_from: Divergence | None
    runs: dict[str, RunInfo]
    notes: list[str] = field(default_factory=list)
    workdir: Path | None = None

    @property
    def identical(self) -> bool:
        return self.comparison.identical

    @property
    def factor_differences(self) -> dict[str, tuple[Any, Any]]:
        """Recorded factors that differ between the two runs (what can explain a divergence)."""
        a, b = _flat(self.runs["a"].factors), _flat(self.runs["b"].factors)
        return {
            k: (a.get(k), b.get(k))
            for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and k != "numerics_fingerprint"
        }

    @property
    def determinism_cost(self) -> dict[str, float] | None:
        """Training time with deterministic mode off vs on (``--vary deterministic`` only; one run each)."""
        if self.variation.factor != "deterministic":
            return None
        off, on = self.runs["a"].train_seconds, self.runs["b"].train_seconds
        return {"train_seconds_off": off, "train_seconds_on": on, "relative": (on / off - 1.0) if off > 0 else math.nan}

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "steps": self.steps,
            "identical": self.identical,
            "varied": {"factor": self.variation.factor, "a": self.variation.a.label, "b": self.variation.b.label},
            "records_compared": self.comparison.compared,
            "ranks": self.comparison.ranks,
            "divergence": None if self.divergence is None else self.divergence.to_dict(),
            "seen_first": None if self.narrowed_from is None else self.narrowed_from.to_dict(),
            "factor_differences": {k: {"a": a, "b": b} for k, (a, b) in self.factor_differences.items()},
            "determinism_cost": self.determinism_cost,
            "runs": {k: v.to_dict() for k, v in self.runs.items()},
            "notes": list(self.notes),
            "workdir": str(self.workdir) if self.workdir else None,
        }

    def format(self) -> str:
        v = self.variation
        lines = [f"twinrun repro · {self.experiment} · {self.steps} steps · varied: {v.describe()}", ""]
        for tag in ("a", "b"):
            run = self.runs[tag]
            lines.append(f"run {tag.upper()} ({run.label}): {run.seconds:.1f} s, training {run.train_seconds:.2f} s")
        lines.append("")
        if self.identical:
            ranks = self.comparison.ranks
            over = f", {ranks} ranks" if ranks > 1 else ""
            lines.append(f"bit-identical ({self.comparison.compared} records compared{over})")
            if v.factor is not None:
                lines.append(f"varying {v.factor} ({v.a.label} vs {v.b.label}) did not change a single bit.")
        else:
            d = self.divergence
            if d is None:
                lines.append(
                    f"DIFFERENT LENGTHS: run A reached step {self.comparison.last_step_a}, run B "
                    f"step {self.comparison.last_step_b}; the records both have agree"
                )
            else:
                lines.append(f"DIVERGED. first divergence: {d.describe()}")
                if self.narrowed_from is not None:
                    lines.append(
                        f"  (seen first at the ledger's cadence as: {self.narrowed_from.describe()};"
                        " narrowed by reruns with ledger_every=1)"
                    )
                if d.tensors:
                    lines.append(f"  tensors that differ at step {d.step} (max |a - b|):")
                    for candidate, kind, name, diff in d.tensors[:12]:
                        lines.append(f"    {candidate:<12} {kind:<8} {name:<28} {diff:.3g}")
                    if len(d.tensors) > 12:
                        lines.append(f"    ... and {len(d.tensors) - 12} more")
                elif d.others:
                    more = ", ".join(f"{c}/{k}/{n}" for c, k, n in d.others[:6])
                    lines.append(f"  also different at step {d.step}: {more}{' ...' if len(d.others) > 6 else ''}")
            if v.factor is not None:
                lines.append(f"varying {v.factor} ({v.a.label} vs {v.b.label}) breaks bit-exactness.")
            else:
                lines.append(
                    "nothing was varied: two identical runs parted, so this experiment is not "
                    "reproducible as it stands (try --vary hashseed / threads / deterministic to "
                    "learn which factor matters)."
                )
        differences = self.factor_differences
        if differences:
            shown = "; ".join(f"{k}: {a} vs {b}" for k, (a, b) in list(differences.items())[:6])
            lines.append(f"recorded factors that differ: {shown}")
        cost = self.determinism_cost
        if cost is not None and math.isfinite(cost["relative"]):
            lines.append(
                f"deterministic mode cost: training {cost['train_seconds_off']:.2f} s off vs "
                f"{cost['train_seconds_on']:.2f} s on ({cost['relative']:+.0%}; one run each, see BENCHMARKS.md)"
            )
        for note in self.notes:
            lines.append(f"note: {note}")
        if self.workdir is not None:
            lines.append(f"runs and ledgers: {self.workdir}")
        return "\n".join(lines)
