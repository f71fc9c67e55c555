"""What a twin search found: every trial against the reference, and what the replicas confirmed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SearchResult", "Trial"]


@dataclass(frozen=True)
class Trial:
    """One sampled configuration, trained as a twin of the reference in its batch."""

    name: str
    number: int
    overrides: dict[str, Any]
    batch: int
    run_id: str | None
    diff: float | None  # trial minus reference, the metric's mean per-example difference on this run
    low: float | None
    high: float | None
    status: str = "finished"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "number": self.number,
            "overrides": dict(self.overrides),
            "batch": self.batch,
            "run_id": self.run_id,
            "diff": self.diff,
            "low": self.low,
            "high": self.high,
            "status": self.status,
        }


@dataclass(frozen=True)
class SearchResult:
    id: str
    experiment: str
    reference: str
    metric: str
    higher_is_better: bool
    sampler: str
    trials: tuple[Trial, ...]
    #: the confirmation across replicas: ``analyze_seeds``' comparisons and recommendation, or None
    confirmation: dict[str, Any] | None
    winner: str | None
    folder: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def ranked(self) -> list[Trial]:
        """The finished trials, best first by their difference to the reference."""
        done = [t for t in self.trials if t.diff is not None and math.isfinite(t.diff)]
        sign = 1.0 if self.higher_is_better else -1.0
        return sorted(done, key=lambda t: sign * float(t.diff or 0.0), reverse=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "experiment": self.experiment,
            "reference": self.reference,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "sampler": self.sampler,
            "trials": [t.to_dict() for t in self.trials],
            "ranking": [t.name for t in self.ranked()],
            "confirmation": self.confirmation,
            "winner": self.winner,
            "folder": self.folder,
            "notes": list(self.notes),
        }

    def format(self, top: int = 10) -> str:
        ranked = self.ranked()
        lines = [
            (
                f"twinrun search · {self.experiment} · search {self.id[:8]} · {len(self.trials)} trials "
                f"({self.sampler}) · {self.metric} ({'higher' if self.higher_is_better else 'lower'} is better)"
            ),
            "",
            (f"each trial against {self.reference} in its batch (one run: these weights on this validation set):"),
        ]
        for t in ranked[:top]:
            knobs = ", ".join(f"{k}={_show(v)}" for k, v in t.overrides.items())
            lines.append(f"  {t.name}  {t.diff:+.4f} [{t.low:+.4f}, {t.high:+.4f}]  {knobs}")
        if len(ranked) > top:
            lines.append(f"  ... {len(ranked) - top} more (--json has them all)")
        failed = [t.name for t in self.trials if t.status != "finished"]
        if failed:
            lines.append(f"  stopped or failed: {', '.join(failed)}")
        conf = self.confirmation
        if conf:
            lines += [
                "",
                (
                    f"confirmed across {conf['replicas']} replicas (seeds shared by every candidate; paired "
                    "across them: a statement about the recipes):"
                ),
            ]
            for name, c in conf["comparisons"].items():
                d = c["difference"]
                ci = f"[{d['low']:+.4f}, {d['high']:+.4f}]" if d.get("low") is not None else f"({d.get('reason')})"
                lines.append(f"  {name}  {d['diff']:+.4f} {ci}  {c['decision']}")
            lines.append(f"recommendation: {conf['recommendation']}")
        lines.append("")
        if self.winner:
            t = next(t for t in self.trials if t.name == self.winner)
            knobs = " ".join(f"--set {k}={_show(v)}" for k, v in t.overrides.items())
            lines.append(f"winner: {self.winner} ({knobs}), resolved better than {self.reference} across the replicas")
        else:
            lines.append(
                f"no trial is resolved better than {self.reference} across the replicas"
                if conf
                else "not confirmed (--confirm 0): the ranking above is one run's"
            )
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"stored in {self.folder}; again: twinrun search --show {self.id[:8]}")
        return "\n".join(lines)


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)
