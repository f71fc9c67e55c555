"""From the runs of a sweep to what its seeds say: one :func:`~twinrun.stats.analyze_seeds` per metric.

For every metric the runs measured (the loss first, then the experiment's
metrics, each with its direction), the final validation value of each
candidate on each seed becomes a seed-aligned score (``None`` where a seed did
not finish or the candidate diverged). Seed ensembles come from each seed's
saved validation outputs (``outputs.pt``) through
:func:`~twinrun.stats.seed_ensemble`: the experiment's own metric functions,
and for the loss each candidate's own loss made per-example, exactly as the
engine evaluates it, so a single seed's ensemble score equals its run's score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch

from twinrun.engine.parts import build_callable, per_example_loss
from twinrun.spec import Metric, ResolvedExperiment
from twinrun.stats import analyze_seeds, json_safe, seed_ensemble
from twinrun.sweeps._plan import SweepPlan
from twinrun.sweeps._records import SeedRecord

__all__ = ["ANALYSIS_SEED", "analyze_records", "load_outputs", "metric_functions"]

#: The seed of every bootstrap and ensemble subset draw of a sweep's analysis.
ANALYSIS_SEED = 0


def load_outputs(path: str) -> dict[str, Any]:
    """A seed's ``outputs.pt``: ``{"kind", "targets", "outputs": {candidate: [N, ...] or None}, ...}``."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or "outputs" not in data or "kind" not in data:
        raise ValueError(f"{path} is not a twinrun seed outputs file")
    return data


def metric_functions(resolved: ResolvedExperiment) -> dict[str, dict[str, Metric]]:
    """``{metric: {candidate: Metric}}``: each candidate's own per-example loss, and the metrics."""
    losses = {}
    for name, spec in resolved.candidates.items():
        fn = build_callable(spec.loss, "loss", name)
        losses[name] = Metric(per_example_loss(fn), higher_is_better=False, name="loss")  # type: ignore[arg-type]
    out: dict[str, dict[str, Metric]] = {"loss": losses}
    for metric_name, metric in resolved.metrics.items():
        out[metric_name] = {name: metric for name in resolved.candidates}
    return out


#: Losses that cannot go below 0 (their per-example values are squares, absolutes or -log p).
NON_NEGATIVE_LOSSES = frozenset(
    {
        "CrossEntropyLoss",
        "MSELoss",
        "L1Loss",
        "BCELoss",
        "BCEWithLogitsLoss",
        "HuberLoss",
        "SmoothL1Loss",
        "KLDivLoss",
        "cross_entropy",
        "mse_loss",
        "l1_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "huber_loss",
        "smooth_l1_loss",
    }
)


def metric_bounds(resolved: ResolvedExperiment | None, metric: str) -> tuple[float | None, float | None]:
    """The range ``metric`` cannot leave: the metric's declared bounds; ``loss`` is ``(0, None)`` when
    every candidate's loss is one of the non-negative losses."""
    if resolved is None:
        return (None, None)
    if metric != "loss":
        m = resolved.metrics.get(metric)
        return tuple(m.bounds) if m is not None else (None, None)  # type: ignore[return-value]
    names = {getattr(spec.loss.fn, "__name__", "") for spec in resolved.candidates.values()}
    return (0.0, None) if names and names <= NON_NEGATIVE_LOSSES else (None, None)


def _scores(
    records: Mapping[int, SeedRecord],
    seeds: Sequence[int],
    candidates: Sequence[str],
    metric: str,
    split: str = "final",
) -> dict[str, list[float | None]]:
    scores: dict[str, list[float | None]] = {c: [] for c in candidates}
    for seed in seeds:
        rec = records[seed]
        cands = (rec.result or {}).get("candidates", {}) if rec.done else {}
        for c in candidates:
            value = (cands.get(c) or {}).get(split, {}).get(metric)
            scores[c].append(None if value is None else float(value))
    return scores


def test_split_analysis(
    val: Mapping[str, Sequence[float | None]], test: Mapping[str, Sequence[float | None]]
) -> dict[str, Any] | None:
    """Is the validation set predictive of test? ``val``/``test``: ``{candidate: [K]}`` seed-aligned scores.

    Per candidate: its mean test score and whether it lies inside the range of its validation scores
    over the seeds. Spearman's rank correlation between validation and test over every (candidate,
    seed) run, and over the seeds of each candidate (with 3 or more seeds). ``None`` without test scores.
    """
    from scipy.stats import spearmanr

    pairs = {c: [(v, t) for v, t in zip(val[c], test.get(c, [])) if v is not None and t is not None] for c in val}
    if not any(pairs.values()):
        return None

    def rank(points: Sequence[tuple[float, float]]) -> dict[str, Any]:
        if len(points) < 3 or len({v for v, _ in points}) < 2 or len({t for _, t in points}) < 2:
            return {
                "rho": None,
                "p_value": None,
                "n": len(points),
                "reason": "needs 3 or more runs whose validation and test scores vary",
            }
        r = spearmanr([v for v, _ in points], [t for _, t in points])
        return {"rho": float(r.statistic), "p_value": float(r.pvalue), "n": len(points)}

    candidates = {}
    for c, points in pairs.items():
        if not points:
            continue
        vals = [v for v, _ in points]
        mean = sum(t for _, t in points) / len(points)
        candidates[c] = {
            "test_mean": mean,
            "val_range": [min(vals), max(vals)],
            "inside": min(vals) <= mean <= max(vals),
            "seeds": len(points),
            "rank_over_seeds": rank(points),
        }
    return {"candidates": candidates, "rank_correlation": rank([p for ps in pairs.values() for p in ps])}


def _ensemble_inputs(
    records: Mapping[int, SeedRecord], seeds: Sequence[int], candidates: Sequence[str], notes: list[str]
) -> tuple[dict[str, list[Any]], Any, str | None, str | None]:
    """Per-candidate seed-aligned outputs, the shared targets and kind, or a reason there are none."""
    outputs: dict[str, list[Any]] = {c: [None] * len(seeds) for c in candidates}
    targets, kind, first = None, None, None
    for i, seed in enumerate(seeds):
        rec = records[seed]
        if not rec.done or rec.outputs is None:
            continue
        try:
            data = load_outputs(rec.outputs)
        except Exception as exc:  # noqa: BLE001 - a broken file is a note, not a failure
            notes.append(
                f"seed {seed}: its outputs file {rec.outputs} cannot be read ({exc}); left out of the ensembles"
            )
            continue
        if data.get("targets") is None:
            return {}, None, None, "the validation targets are not tensors, so outputs cannot be scored"
        if targets is None:
            targets, kind, first = data["targets"], data["kind"], seed
        elif data["kind"] != kind:
            return {}, None, None, f"seed {seed} has outputs of kind {data['kind']!r}, seed {first} {kind!r}"
        elif data["targets"].shape != targets.shape or not torch.equal(data["targets"], targets):
            return (
                {},
                None,
                None,
                (
                    f"the validation targets of seed {seed} differ from those of seed {first}: "
                    "the validation set depends on the seed, and an ensemble needs one"
                ),
            )
        for c in candidates:
            outputs[c][i] = data["outputs"].get(c)
    if targets is None:
        return {}, None, None, "no finished seed has saved validation outputs"
    return outputs, targets, kind, None


def analyze_records(
    plan: SweepPlan,
    records: Mapping[int, SeedRecord],
    *,
    resolved: ResolvedExperiment | None,
    metric: str | None = None,
    deploy: str = "both",
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = ANALYSIS_SEED,
    n_subsets: int = 50,
) -> dict[str, Any]:
    """Every metric's seed analysis, the ensembles, and what could not be computed.

    ``resolved``: the experiment (for the metric functions of the ensembles); ``None``
    when it cannot be loaded any more (then there are no ensembles, and a note says why).
    """
    seeds = list(plan.seeds)
    candidates = list(plan.candidates)
    primary = metric or plan.metric
    order = [primary, *(m for m in plan.metrics if m != primary)]
    finished = [s for s in seeds if records[s].done]
    notes: list[str] = []
    unavailable: list[str] = []
    not_finished = [records[s].to_dict() for s in seeds if not records[s].done]
    notes.extend(_diverged_notes(records, finished, candidates))
    if len(finished) < 2:
        unavailable.append(
            f"{len(finished)} seed{'s' if len(finished) != 1 else ''} finished: a spread (std, range), "
            "intervals, paired tests, P(A > B) and ensemble gains need at least 2 seeds"
        )
    ensemble_state: dict[str, Any] = {"available": False, "kind": None, "reason": None}
    outputs: dict[str, list[Any]] = {}
    targets = None
    if not plan.save_outputs:
        ensemble_state["reason"] = "the sweep did not keep validation outputs (--no-ensemble)"
    elif resolved is None:
        ensemble_state["reason"] = "the experiment could not be loaded to score ensembles"
    else:
        outputs, targets, kind, why = _ensemble_inputs(records, seeds, candidates, notes)
        ensemble_state.update(available=why is None, kind=kind, reason=why)
    functions = metric_functions(resolved) if (resolved is not None and targets is not None) else {}

    metrics: dict[str, Any] = {}
    for name in order:
        scores = _scores(records, seeds, candidates, name)
        ensemble = None
        if ensemble_state["available"] and name in functions:
            ensemble = {}
            for c in candidates:  # one call per candidate: each may have its own loss
                ensemble.update(
                    seed_ensemble(
                        {c: outputs[c]},
                        targets,
                        kind=ensemble_state["kind"],
                        metric=functions[name][c],
                        seed=seed,
                        n_subsets=n_subsets,
                        seeds=seeds,
                    )
                )
        metrics[name] = analyze_seeds(
            scores,
            higher_is_better=bool(plan.metrics[name]),
            reference=plan.reference,
            ensemble=ensemble,
            seed=seed,
            confidence=confidence,
            n_resamples=n_resamples,
            metric=name,
            deploy=deploy,
            seeds=seeds,
            bounds=metric_bounds(resolved, name),
        )
    if ensemble_state["reason"]:
        unavailable.append(f"seed ensembles: {ensemble_state['reason']}")
    test = test_split_analysis(
        _scores(records, seeds, candidates, primary), _scores(records, seeds, candidates, primary, split="test")
    )
    return cast(
        "dict[str, Any]",
        json_safe(
            {
                "seeds": seeds,
                "k": len(seeds),
                "finished": finished,
                "not_finished": not_finished,
                "runs": {str(s): records[s].run_id for s in seeds if records[s].done},
                "candidates": candidates,
                "reference": plan.reference,
                "metric": primary,
                "metrics": metrics,
                "ensemble": ensemble_state,
                "deploy": deploy,
                "confidence": confidence,
                "n_resamples": n_resamples,
                "analysis_seed": seed,
                "recommendation": metrics[primary]["recommendation"]["line"],
                "unavailable": unavailable,
                "notes": notes,
                **({"test": {"metric": primary, **test}} if test is not None else {}),
            }
        ),
    )


def _diverged_notes(records: Mapping[int, SeedRecord], finished: Sequence[int], candidates: Sequence[str]) -> list[str]:
    """``candidate 'x' diverged on seed 2 (step 5): it has no score there``, one line per candidate."""
    where: dict[str, list[str]] = {}
    for seed in finished:
        cands = (records[seed].result or {}).get("candidates", {})
        for c in candidates:
            data = cands.get(c) or {}
            if data.get("status") == "diverged":
                where.setdefault(c, []).append(f"{seed} (step {data.get('diverged_at')})")
    return [
        f"candidate {c!r} diverged on seed{'s' if len(w) > 1 else ''} {', '.join(w)}: no score or outputs there"
        for c, w in where.items()
    ]
