"""Two runs side by side: config, metrics, environment, and whether they are comparable.

Config differences are what a comparison is about; the **comparability verdict**
asks whether anything *else* could have moved the numbers: a numerics-relevant
environment difference (library versions, device, thread count, deterministic
mode, dirty or different code), a changed experiment file, different data (a
split's content hash, or the training order under the same seed), a missing
environment, or a run that did not finish. Differences that cannot change the
numbers (host name, unrelated packages...) are listed separately.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from twinrun.env import EnvDifference, diff_environments
from twinrun.registry._records import RunRecord

__all__ = [
    "Comparability",
    "ConfigDifference",
    "CurveDifference",
    "MetricDifference",
    "RunDiff",
    "diff_runs",
    "flatten",
]

Metrics = Mapping[str, Mapping[str, Mapping[str, list[tuple[int, float]]]]]


def flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested dicts as dotted keys (lists and scalars are leaves)."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, path + ".")
        else:
            yield path, value


@dataclass(frozen=True)
class ConfigDifference:
    """A resolved-config value that differs (``in_a``/``in_b``: whether the key exists there)."""

    key: str
    a: Any
    b: Any
    in_a: bool = True
    in_b: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "a": self.a, "b": self.b, "in_a": self.in_a, "in_b": self.in_b}


@dataclass(frozen=True)
class MetricDifference:
    """A candidate's last validation value of one metric in each run."""

    candidate: str
    metric: str
    a: float
    b: float
    step_a: int
    step_b: int

    @property
    def delta(self) -> float:
        return self.b - self.a

    @property
    def identical(self) -> bool:
        return self.a == self.b or (math.isnan(self.a) and math.isnan(self.b))

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "metric": self.metric,
            "a": _num(self.a),
            "b": _num(self.b),
            "delta": _num(self.delta),
            "step_a": self.step_a,
            "step_b": self.step_b,
            "identical": self.identical,
        }


@dataclass(frozen=True)
class CurveDifference:
    """A per-step training curve compared step by step over the steps both runs have."""

    candidate: str
    metric: str
    steps: int
    first_difference: int | None
    max_abs_difference: float

    @property
    def identical(self) -> bool:
        return self.first_difference is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "metric": self.metric,
            "steps": self.steps,
            "first_difference": self.first_difference,
            "max_abs_difference": _num(self.max_abs_difference),
            "identical": self.identical,
        }


@dataclass(frozen=True)
class Comparability:
    """``comparable`` when nothing but the config differences can explain different numbers."""

    comparable: bool
    reasons: list[str]
    harmless: list[str]

    @property
    def summary(self) -> str:
        if self.comparable:
            return "comparable: the numbers can differ only through the config differences"
        return "not comparable: " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "comparable": self.comparable,
            "summary": self.summary,
            "reasons": list(self.reasons),
            "harmless": list(self.harmless),
        }


@dataclass(frozen=True)
class RunDiff:
    """Everything that differs between run ``a`` and run ``b``."""

    a: RunRecord
    b: RunRecord
    config: list[ConfigDifference]
    only_in_a: list[str]
    only_in_b: list[str]
    metrics: list[MetricDifference]
    curves: list[CurveDifference]
    environment: list[EnvDifference]
    source_changed: bool
    verdict: Comparability
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def head(r: RunRecord) -> dict[str, Any]:
            return {
                "id": r.id,
                "name": r.name,
                "status": r.status,
                "seed": r.seed,
                "started_at": r.started_at,
                "experiment_sha256": r.experiment_sha256,
                "env_fingerprint": r.env_fingerprint,
            }

        return {
            "a": head(self.a),
            "b": head(self.b),
            "config": [d.to_dict() for d in self.config],
            "candidates_only_in_a": list(self.only_in_a),
            "candidates_only_in_b": list(self.only_in_b),
            "metrics": [d.to_dict() for d in self.metrics],
            "curves": [d.to_dict() for d in self.curves],
            "environment": [d.to_dict() for d in self.environment],
            "source_changed": self.source_changed,
            "verdict": self.verdict.to_dict(),
        }


def _num(x: float) -> float | None:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


#: the module name an experiment file is imported under: one hash per file path (spec/_loader.py)
_EXPERIMENT_MODULE = re.compile(r"\btwinrun_experiment_[0-9a-f]{12}(?=[:.])")


def _without_file_module(value: Any) -> Any:
    """A factory name with the per-path module of its experiment file replaced by ``<experiment>``: the
    same factory loaded from two paths (a copy, another checkout) is not a difference of configuration;
    whether the files differ is the source's difference."""
    return _EXPERIMENT_MODULE.sub("<experiment>", value) if isinstance(value, str) else value


def _config_differences(a: RunRecord, b: RunRecord) -> tuple[list[ConfigDifference], list[str], list[str]]:
    cands_a = (a.config.get("candidates") or {}) if a.config else {}
    cands_b = (b.config.get("candidates") or {}) if b.config else {}
    only_a = [c for c in cands_a if c not in cands_b]
    only_b = [c for c in cands_b if c not in cands_a]
    skip = tuple(f"candidates.{c}." for c in only_a + only_b)
    flat_a = {k: v for k, v in flatten(a.config) if not k.startswith(skip)}
    flat_b = {k: v for k, v in flatten(b.config) if not k.startswith(skip)}
    diffs = []
    for key in sorted(set(flat_a) | set(flat_b)):
        va, vb = flat_a.get(key), flat_b.get(key)
        if key not in flat_a or key not in flat_b or _without_file_module(va) != _without_file_module(vb):
            diffs.append(ConfigDifference(key, va, vb, key in flat_a, key in flat_b))
    return diffs, only_a, only_b


def _metric_differences(ma: Metrics, mb: Metrics, both: list[str]) -> list[MetricDifference]:
    out = []
    for cand in both:
        val_a, val_b = ma.get(cand, {}).get("val", {}), mb.get(cand, {}).get("val", {})
        for metric in [m for m in val_a if m in val_b]:
            (sa, xa), (sb, xb) = val_a[metric][-1], val_b[metric][-1]
            out.append(MetricDifference(cand, metric, xa, xb, sa, sb))
    return out


def _curve_differences(ma: Metrics, mb: Metrics, both: list[str]) -> list[CurveDifference]:
    out = []
    for cand in both:
        tr_a, tr_b = ma.get(cand, {}).get("train", {}), mb.get(cand, {}).get("train", {})
        for metric in [m for m in tr_a if m in tr_b and m != "lr"]:
            a, b = dict(tr_a[metric]), dict(tr_b[metric])
            steps = sorted(set(a) & set(b))
            first, worst = None, 0.0
            for step in steps:
                x, y = a[step], b[step]
                if x == y or (math.isnan(x) and math.isnan(y)):
                    continue
                if first is None:
                    first = step
                gap = abs(x - y)
                worst = gap if math.isnan(gap) or gap > worst else worst
            out.append(CurveDifference(cand, metric, len(steps), first, worst))
    return out


def _show(value: Any, limit: int = 40) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _group(diffs: list[EnvDifference], numerics: bool) -> list[str]:
    groups: dict[str, list[str]] = {}
    for d in diffs:
        if d.numerics != numerics:
            continue
        shown = d.to_dict()
        key = d.key.removeprefix("packages.").removeprefix("env_vars.")
        groups.setdefault(d.reason, []).append(f"{key} {_show(shown['a'])} → {_show(shown['b'])}")
    lines = []
    for reason, items in groups.items():
        more = f", and {len(items) - 3} more" if len(items) > 3 else ""
        lines.append(f"{reason}: " + ", ".join(items[:3]) + more)
    return lines


def _data_reasons(a: RunRecord, b: RunRecord) -> list[str]:
    """What differs in the data two finished runs recorded (``result.data``, see ``engine/_data_facts``)."""
    da, db = (a.result or {}).get("data") or {}, (b.result or {}).get("data") or {}
    if not da or not db:
        return []
    reasons = []
    for split in ("train", "val", "test"):
        fa, fb = da.get(split), db.get(split)
        if fa is None and fb is None:
            continue
        if fa is None or fb is None:
            which = "a" if fa is None else "b"
            reasons.append(f"data: run {which} has no {split} split, the other has one")
        elif fa.get("sha256") != fb.get("sha256"):
            size = (
                f"{fa.get('examples')} examples"
                if fa.get("examples") == fb.get("examples")
                else f"{fa.get('examples')} → {fb.get('examples')} examples"
            )
            reasons.append(
                f"data: the {split} split's content differs ({size}, sha256 "
                f"{str(fa.get('sha256'))[:12]} → {str(fb.get('sha256'))[:12]})"
            )
    if a.seed == b.seed and da.get("order_sha256") and da.get("order_sha256") != db.get("order_sha256"):
        reasons.append(
            "data: the training order differs under the same seed "
            f"(first epoch sha256 {da['order_sha256'][:12]} → {str(db.get('order_sha256'))[:12]})"
        )
    return reasons


def diff_runs(a: RunRecord, b: RunRecord, metrics_a: Metrics, metrics_b: Metrics) -> RunDiff:
    """Compare two recorded runs (``metrics_*`` from :meth:`Registry.metrics`)."""
    config, only_a, only_b = _config_differences(a, b)
    both = [c for c in a.candidates if c in b.candidates]
    metrics = _metric_differences(metrics_a, metrics_b, both)
    curves = _curve_differences(metrics_a, metrics_b, both)
    env = diff_environments(a.env, b.env) if a.env is not None and b.env is not None else []
    source_changed = (
        a.experiment_sha256 is not None
        and b.experiment_sha256 is not None
        and a.experiment_sha256 != b.experiment_sha256
    )
    reasons: list[str] = []
    for run, label in ((a, "a"), (b, "b")):
        if run.status != "finished":
            reasons.append(f"run {label} ({run.short_id}) is {run.status}: its numbers are partial")
        if run.env is None:
            reasons.append(
                f"run {label} ({run.short_id}) has no recorded environment: nothing is known about what else changed"
            )
    if source_changed:
        reasons.append(
            f"code: the experiment file changed (sha256 {a.experiment_sha256[:12]} → "  # type: ignore[index]
            f"{b.experiment_sha256[:12]}); changes outside the resolved config (model or data "  # type: ignore[index]
            "code) cannot be ruled out (twinrun diff --source shows them)"
        )
    reasons += _data_reasons(a, b)
    reasons += _group(env, True)
    verdict = Comparability(not reasons, reasons, _group(env, False))
    return RunDiff(a, b, config, only_a, only_b, metrics, curves, env, source_changed, verdict)
