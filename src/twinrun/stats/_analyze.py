"""One call for a seed sweep: summaries, intervals, comparisons, ensembles, recommendation.

Shapes: ``scores`` is ``{candidate: [K]}`` — one final metric value per seed,
seed-aligned (position ``k`` is the same seed, so the same init, batches and
augmentation, for every candidate); ``NaN``/``None`` where a seed is missing, or
``{candidate: {seed: score}}``. ``ensemble`` is the result of
:func:`~twinrun.stats.seed_ensemble` for the same metric.

The result is a JSON-safe dict (no NaN: ``None`` plus a reason), stable enough
for a registry, with everything later plots need: per-seed values, every
interval's endpoints, the per-seed paired differences and the ensemble gain curve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from twinrun.errors import ConfigError
from twinrun.stats._bootstrap import _candidate_intervals, _check_resamples, check_confidence
from twinrun.stats._intervals import mean_interval
from twinrun.stats._json import json_safe
from twinrun.stats._random import Seed, base_seed, stream
from twinrun.stats._recommend import recommend_aligned
from twinrun.stats._reference import _compare, _reference
from twinrun.stats._scores import AlignedScores, SeedLabel, align_scores
from twinrun.stats._special import bdtr
from twinrun.stats._summary import summarize_values

__all__ = ["HEADLINE_INTERVALS", "IQM_MIN_SEEDS", "analyze_seeds", "median_interval"]

#: The fewest seeds with which an IQM interval is reported.
IQM_MIN_SEEDS = 10
#: The least coverage an exact median interval must reach to be reported.
MEDIAN_MIN_COVERAGE = 0.93

#: The headline interval of each quantity: the method whose coverage, measured by simulation
#: at 3, 5, 10 and 30 seeds (BENCHMARKS.md), is closest to the nominal one. Its endpoints are
#: the ``low``/``high`` of the quantity; the other methods are kept next to them. The median's
#: is exact (order statistics: distribution-free); the IQM's is withheld below
#: :data:`IQM_MIN_SEEDS` seeds, where no bootstrap of it covers (0.77 at 3 seeds, 0.90 at 5).
HEADLINE_INTERVALS = {
    "mean": "t_skew",
    "median": "exact",
    "iqm": "percentile",
    "paired difference": "t_skew",
    "probability of improvement": "score",
}


def analyze_seeds(
    scores: Mapping[str, Any],
    *,
    higher_is_better: bool,
    reference: str | None = None,
    ensemble: Mapping[str, Mapping[str, Any]] | None = None,
    seed: Seed = 0,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    metric: str = "score",
    deploy: str = "both",
    seeds: Sequence[SeedLabel] | None = None,
    bounds: tuple[float | None, float | None] = (None, None),
) -> dict[str, Any]:
    """Everything the seeds of a sweep say about one metric.

    Args:
        scores: ``{candidate: [K]}`` seed-aligned scores (see the module docstring).
        higher_is_better: the metric's direction.
        reference: the candidate the others are compared with (default: the first).
        ensemble: :func:`~twinrun.stats.seed_ensemble`'s result for this metric, or ``None``.
        seed: ``int`` or ``numpy.random.Generator``; every bootstrap draws from a stream
            named after what it resamples, derived from this one seed (recorded as ``seed``).
        confidence: nominal coverage of every interval and ``1 -`` the level of every test.
        n_resamples: bootstrap resamples per interval.
        metric: the metric's name, for the recommendation line.
        deploy: ``"both"``, ``"ensemble"`` or ``"single"`` (see :func:`~twinrun.stats.recommend`).
        seeds: labels of the ``K`` seeds (default ``0..K-1``).
        bounds: ``(low, high)`` the metric cannot leave (accuracy ``(0, 1)``, a loss
            ``(0, None)``): every interval of a candidate's mean, median and IQM is kept
            inside them (clipped, and ``clipped`` says so), and of a difference inside
            ``(low - high, high - low)``.

    Returns:
        ``metric``, ``higher_is_better``, ``confidence``, ``n_resamples``, ``seed``,
        ``seeds`` (labels), ``k``, ``candidates``, ``reference``, ``headline_intervals``,
        ``summary`` (per candidate: :func:`~twinrun.stats.summarize` fields plus
        ``intervals``: for ``mean``, ``median`` and ``iqm``, ``{"estimate", "low", "high",
        "method", "se", "percentile", "expanded", "bca"}`` (and ``"t"`` for the mean), where
        ``low``/``high`` are the headline method's endpoints), ``comparisons``
        (:func:`~twinrun.stats.compare_to_reference`),
        ``ensemble`` (as given, or ``None``), ``recommendation``
        (:func:`~twinrun.stats.recommend`), ``unavailable`` (what could not be computed,
        and why) and ``notes`` (missing seeds, dropped pairs, ensembles).

    Raises:
        DataError: scores that are not seed-aligned (the message names the candidate
            and the lengths).
        ConfigError: an unknown reference, a bad confidence, seed or direction.
    """
    if not isinstance(higher_is_better, bool):
        raise ConfigError(
            f"higher_is_better={higher_is_better!r} must be True or False",
            fix="pass higher_is_better=True for accuracy-like metrics, False for losses",
        )
    confidence = check_confidence(confidence)
    n_resamples = _check_resamples(n_resamples)
    aligned = align_scores(scores, seeds)
    ref = _reference(aligned, reference)
    base = base_seed(seed)
    notes = list(aligned.notes)
    unavailable: list[str] = []
    ensemble = _check_ensemble(ensemble, aligned, higher_is_better, notes)

    summary = {
        name: _candidate_summary(aligned, name, confidence, n_resamples, base, unavailable) for name in aligned.names
    }
    for name in aligned.names:
        notes.extend(_outlying_seeds(aligned, name))
    compared = _compare(
        aligned, ref, higher_is_better=higher_is_better, confidence=confidence, n_resamples=n_resamples, base=base
    )
    comparisons = {name: c.to_dict() for name, c in compared.items()}  # the record, clipped below
    low, high = bounds
    for entry in summary.values():
        for interval in (entry.get("intervals") or {}).values():
            _clip(interval, low, high)
    span = None if low is None or high is None else high - low
    for entry in comparisons.values():
        _clip(entry["difference"], None if span is None else -span, span)
    for name, entry in comparisons.items():
        notes.extend(entry["notes"])
        if entry["difference"]["reason"] and entry["difference"]["low"] is None:
            unavailable.append(f"{name!r} vs {ref!r}: {entry['difference']['reason']}")
    recommendation = recommend_aligned(
        aligned,
        higher_is_better=higher_is_better,
        ensemble=ensemble,
        confidence=confidence,
        metric=metric,
        deploy=deploy,
    )
    return json_safe(
        {
            "metric": metric,
            "higher_is_better": higher_is_better,
            "confidence": confidence,
            "n_resamples": n_resamples,
            "seed": base,
            "seeds": list(aligned.seeds),
            "k": len(aligned.seeds),
            "candidates": aligned.names,
            "reference": ref,
            "headline_intervals": dict(HEADLINE_INTERVALS),
            "summary": summary,
            "comparisons": comparisons,
            "ensemble": None if ensemble is None else dict(ensemble),
            "recommendation": recommendation,
            "unavailable": unavailable,
            "notes": notes,
        }
    )


def _outlying_seeds(aligned: AlignedScores, name: str) -> list[str]:
    """A seed far from the others (a failed seed): the mean's interval assumes there is none."""
    row = aligned.values[name]
    keep = np.isfinite(row)
    x = row[keep]
    if x.size < 4:
        return []
    med = float(np.median(x))
    spread = 1.4826 * float(np.median(np.abs(x - med)))
    if spread == 0:
        return []
    far = [s for s, v in zip(aligned.labels(keep), x) if abs(v - med) > 5 * spread]
    if not far:
        return []
    which = f"seed{'s' if len(far) > 1 else ''} {', '.join(map(str, far))} lie{'' if len(far) > 1 else 's'}"
    return [
        (
            f"{name!r}: {which} far from the others (more than 5 robust sds from the median): a failure "
            "mode? The mean and its interval assume seeds without rare failures (simulated: a 1-in-10 "
            "failure makes the interval of the mean cover 0.81 at 10 seeds); the median and IQM, and their "
            "intervals, are robust to it"
        )
    ]


def median_interval(x: Any, confidence: float = 0.95) -> dict[str, Any]:
    """The exact, distribution-free interval of the median from order statistics.

    ``[x_(l), x_(n+1-l)]`` covers the median with probability ``1 - 2 P(Bin(n, 1/2) < l)``
    whatever the distribution: the narrowest symmetric pair reaching ``confidence``,
    interpolated towards the next inner pair (Hettmansperger and Sheather, 1986) so
    that its level is nominal rather than the pair's (0.979 at 10 seeds); with too
    few seeds for that (3 seeds reach at most 0.75), the widest pair is reported
    only if it reaches 0.93, else withheld with the reason.

    >>> r = median_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    >>> r["low"], r["high"], round(r["coverage"], 4)
    (1.0, 5.0, 0.9375)
    """
    xs = np.sort(np.asarray(x, dtype=np.float64)[np.isfinite(np.asarray(x, dtype=np.float64))])
    n = xs.size
    best: tuple[int, float] | None = None
    for l in range(n // 2, 0, -1):  # the rank, as in the literature
        coverage = 1.0 - 2.0 * float(bdtr(l - 1, n, 0.5))
        best = (l, coverage)
        if coverage >= confidence:
            break
    if best is None or best[1] < MEDIAN_MIN_COVERAGE:
        most = 0.0 if best is None else best[1]
        return {
            "low": None,
            "high": None,
            "coverage": most or None,
            "reason": f"withheld: with {n} seeds the widest order-statistic interval (min to max) covers "
            f"the median {most:.0%} of the time; it needs at least 5 seeds (93.8%)",
        }
    l, coverage = best
    low, high = float(xs[l - 1]), float(xs[n - l])
    inner = l + 1 <= n - l and (n - l - 1) >= l
    if coverage > confidence and inner:
        # Hettmansperger-Sheather: interpolate towards the next inner pair for a nominal level
        next_cov = 1.0 - 2.0 * float(bdtr(l, n, 0.5))
        if next_cov < confidence:
            share = (coverage - confidence) / (coverage - next_cov)
            lam = (n - l) * share / (l + (n - 2 * l) * share)
            low = (1 - lam) * low + lam * float(xs[l])
            high = (1 - lam) * high + lam * float(xs[n - l - 1])
            coverage = confidence
    return {"low": low, "high": high, "coverage": coverage}


def _clip(interval: dict[str, Any], low: float | None, high: float | None) -> None:
    """Keep ``interval``'s endpoints (and those of its variants) inside ``[low, high]``."""
    if not isinstance(interval, dict):
        return
    clipped = False
    for key, bound, keep in (("low", low, max), ("high", low, max), ("low", high, min), ("high", high, min)):
        value = interval.get(key)
        if bound is not None and isinstance(value, (int, float)) and keep(value, bound) != value:
            interval[key] = keep(value, bound)
            clipped = True
    for value in list(interval.values()):
        if isinstance(value, dict) and ("low" in value or "high" in value):
            _clip(value, low, high)
    if clipped:
        interval["clipped"] = True


def _candidate_summary(
    aligned: AlignedScores,
    name: str,
    confidence: float,
    n_resamples: int,
    base: int,
    unavailable: list[str],
) -> dict[str, Any]:
    row = aligned.values[name]
    x = row[np.isfinite(row)]
    entry: dict[str, Any] = {"seeds": list(aligned.seeds), "values": row, **summarize_values(x)}
    for stat, why in entry["unavailable"].items():
        unavailable.append(f"{name!r} {stat}: {why}")
    boot = _candidate_intervals(x, ("mean", "median", "iqm"), confidence, n_resamples, stream(base, "bootstrap", name))
    if x.size >= 2:
        t = mean_interval(x, confidence)
        plain = t.t
        boot["mean"]["t"] = {"low": None if plain is None else plain.low, "high": None if plain is None else plain.high}
        boot["mean"]["t_skew"] = {"low": t.low, "high": t.high}
        boot["median"]["exact"] = median_interval(x, confidence)
        for stat, interval in boot.items():
            method = HEADLINE_INTERVALS[stat]
            boot[stat] = {
                "estimate": interval.pop("estimate"),
                "low": interval[method]["low"],
                "high": interval[method]["high"],
                "method": method,
                **interval,
            }
        if boot["median"]["exact"].get("reason"):
            boot["median"]["reason"] = boot["median"]["exact"]["reason"]
            unavailable.append(f"{name!r} median interval: {boot['median']['reason']}")
        if x.size < IQM_MIN_SEEDS:
            boot["iqm"].update(
                low=None,
                high=None,
                reason=(
                    f"withheld: with {x.size} seeds no IQM interval covers its nominal level (the percentile "
                    f"bootstrap covered 0.77 at 3 seeds and 0.90 at 5); it needs {IQM_MIN_SEEDS} or more"
                ),
            )
            unavailable.append(f"{name!r} IQM interval: {boot['iqm']['reason']}")
    else:
        unavailable.append(f"{name!r} intervals: {boot['mean']['reason']}")
    entry["intervals"] = boot
    return entry


def _check_ensemble(
    ensemble: Mapping[str, Mapping[str, Any]] | None,
    aligned: AlignedScores,
    higher_is_better: bool,
    notes: list[str],
) -> Mapping[str, Mapping[str, Any]] | None:
    if ensemble is None:
        return None
    if not isinstance(ensemble, Mapping):
        raise ConfigError(
            f"ensemble must be seed_ensemble()'s result, a mapping; got {type(ensemble).__name__}",
            fix="pass ensemble=twinrun.stats.seed_ensemble(outputs, targets, kind=..., metric=...)",
        )
    extra = [c for c in ensemble if c not in aligned.values]
    if extra:
        raise ConfigError(
            f"ensemble has candidates {extra} that have no scores; candidates: {aligned.names}",
            fix="ensemble the same candidates whose scores you pass",
        )
    for name, entry in ensemble.items():
        if entry.get("higher_is_better") is not None and entry["higher_is_better"] != higher_is_better:
            raise ConfigError(
                f"ensemble of {name!r} was measured with a metric where higher_is_better="
                f"{entry['higher_is_better']}, but the scores say higher_is_better={higher_is_better}",
                fix="ensemble with the same metric as the scores",
            )
        notes.extend(entry.get("notes", []))
    missing = [c for c in aligned.values if c not in ensemble]
    if missing:
        notes.append(f"no ensemble for {', '.join(repr(c) for c in missing)} (no outputs given)")
    return ensemble
