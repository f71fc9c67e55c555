"""The recommendation: which candidate to deploy, in one plain-words line with its reasons.

Seeds are data: a candidate is a distribution of scores, not one number. The
rule, for a practitioner choosing after a sweep of ``K`` seeds:

1. Rank candidates by mean score over the seeds *every* candidate ran (the
   shared seeds; a mean over each one's own seeds compares different seeds); the
   first is the *leader*. Without a seed shared by all, each one's own seeds are
   used, and the line says so.
2. Test every other candidate against the leader (paired t over the seeds both
   ran, Holm-adjusted at ``1 - confidence``). Those not resolved worse are the
   *contenders*, the leader included; a rival resolved *better* than the leader
   (possible when the pairs of seeds differ) makes the choice unresolved, named.
3. If the leader is the only contender the choice is *resolved*. Otherwise it is
   not, and the line says about how many seeds would resolve it: the largest
   :func:`~twinrun.stats.seeds_needed` over the contenders, from their observed
   paired difference and spread, at the Bonferroni level ``(1 - confidence) / m``
   (``m`` comparisons; Holm is never stricter than that).
4. To deploy an ensemble of seeds: the candidate with the best ensemble score
   (compared at a common ensemble size when candidates kept different numbers of
   seeds). To deploy a single seed: among the contenders, the one with the
   smallest range of scores (ties: the better mean) — the one whose one seed is
   the least likely to disappoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from twinrun.errors import ConfigError
from twinrun.stats._bootstrap import check_confidence
from twinrun.stats._json import json_safe
from twinrun.stats._paired import holm, paired_t_test
from twinrun.stats._power import seeds_needed
from twinrun.stats._scores import AlignedScores, SeedLabel, align_scores
from twinrun.stats._summary import summarize_values

__all__ = ["DEPLOY", "recommend", "recommend_aligned"]

#: What the line recommends for: both ways of deploying, or one.
DEPLOY = ("both", "ensemble", "single")


def recommend(
    scores: Mapping[str, Any],
    *,
    higher_is_better: bool,
    ensemble: Mapping[str, Mapping[str, Any]] | None = None,
    confidence: float = 0.95,
    metric: str = "score",
    deploy: str = "both",
    seeds: Sequence[SeedLabel] | None = None,
) -> dict[str, Any]:
    """Recommend a candidate from per-seed scores (see the module docstring for the rule).

    Args:
        scores: ``{candidate: [K]}`` seed-aligned scores.
        higher_is_better: the metric's direction.
        ensemble: the result of :func:`~twinrun.stats.seed_ensemble` for the same metric,
            or ``None`` (then no ensemble recommendation).
        metric: the metric's name, used in the line.
        deploy: ``"both"``, ``"ensemble"`` or ``"single"``: what the line covers.

    Returns:
        ``line`` (plain words), ``resolved``, ``leader``, ``ranking``, ``contenders``,
        ``against_leader`` (``{candidate: {"diff", "sd", "n", "p_value", "p_holm",
        "worse", "seeds_needed"}}``), ``seeds_needed`` (the headline estimate, with
        ``between``), ``ensemble`` and ``single`` (each ``{"candidate", ..., "reason"}``),
        ``reasons`` (the steps in words) and ``deploy``.
    """
    return recommend_aligned(
        align_scores(scores, seeds),
        higher_is_better=higher_is_better,
        ensemble=ensemble,
        confidence=confidence,
        metric=metric,
        deploy=deploy,
    )


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _gain(gain: float | None) -> str:
    """A direction-adjusted gain in words: "0.012 better than one seed"."""
    if gain is None:
        return "no gain measured"
    if gain == 0:
        return "no better than one seed"
    return f"{abs(gain):.4g} {'better' if gain > 0 else 'worse'} than one seed on average"


def recommend_aligned(
    aligned: AlignedScores,
    *,
    higher_is_better: bool,
    ensemble: Mapping[str, Mapping[str, Any]] | None = None,
    confidence: float = 0.95,
    metric: str = "score",
    deploy: str = "both",
) -> dict[str, Any]:
    """:func:`recommend` on already aligned scores."""
    if not isinstance(higher_is_better, bool):
        raise ConfigError(
            f"higher_is_better={higher_is_better!r} must be True or False",
            fix="pass higher_is_better=True for accuracy-like metrics, False for losses",
        )
    if deploy not in DEPLOY:
        raise ConfigError(f"deploy={deploy!r} is not one of {', '.join(DEPLOY)}", fix="pass deploy='both'")
    confidence = check_confidence(confidence)
    alpha = round(1 - confidence, 12)
    summaries = {n: summarize_values(r[np.isfinite(r)]) for n, r in aligned.values.items()}
    sign = 1.0 if higher_is_better else -1.0
    shared = np.logical_and.reduce([np.isfinite(r) for r in aligned.values.values()])
    has_seeds = [n for n, s in summaries.items() if s["n"]]
    if shared.any():
        rank_by = {n: float(aligned.values[n][shared].mean()) for n in has_seeds}
    else:
        rank_by = {n: summaries[n]["mean"] for n in has_seeds}
    ranking = sorted(has_seeds, key=lambda n: -sign * rank_by[n])
    out: dict[str, Any] = {
        "line": "",
        "resolved": False,
        "leader": None,
        "ranking": ranking,
        "contenders": [],
        "against_leader": {},
        "seeds_needed": None,
        "ensemble": None,
        "single": None,
        "reasons": [],
        "deploy": deploy,
        "metric": metric,
        "confidence": confidence,
    }
    reasons: list[str] = out["reasons"]
    if not ranking:
        out["line"] = "nothing to recommend: no candidate has a finite score on any seed"
        return cast("dict[str, Any]", json_safe(out))
    leader = ranking[0]
    out["leader"] = leader
    k = len(aligned.seeds)
    lead = summaries[leader]
    if shared.any():
        reasons.append(
            f"{leader} has the best mean {metric} over the {int(shared.sum())} seeds every "
            f"candidate ran ({_fmt(rank_by[leader])})"
        )
    else:
        reasons.append(
            f"no seed was run by every candidate: ranked by each one's own seeds, which differ; "
            f"{leader} has the best mean {metric} over its {lead['n']} seeds ({_fmt(lead['mean'])})"
        )
    out["ensemble"] = _ensemble_pick(ensemble, ranking, higher_is_better)
    if len(ranking) == 1:
        out.update(resolved=True, contenders=[leader])
        out["single"] = _single_pick([leader], summaries)
        out["line"] = _single_candidate_line(leader, lead, out["ensemble"], metric)
        return cast("dict[str, Any]", json_safe(out))

    others = ranking[1:]
    tests = {c: paired_t_test(aligned.values[c], aligned.values[leader], confidence=confidence) for c in others}
    adjusted = holm({c: t.p_value for c, t in tests.items()}, alpha=alpha)
    level = alpha / len(others)
    contenders = [leader]
    for c in others:
        t = tests[c]
        worse = bool(adjusted[c].reject) and t.estimate is not None and sign * t.estimate < 0
        needed = (
            seeds_needed(t.estimate, t.sd, alpha=level, n_run=t.n).to_dict()
            if t.sd is not None and t.estimate is not None
            else {"seeds": None, "reason": "needs at least 2 seeds with scores for both to estimate the spread"}
        )
        out["against_leader"][c] = {
            "diff": t.estimate,
            "sd": t.sd,
            "n": t.n,
            "p_value": t.p_value,
            "p_holm": adjusted[c].p_holm,
            "worse": worse,
            "seeds_needed": needed,
        }
        if bool(adjusted[c].reject) and t.estimate is not None and sign * t.estimate > 0:
            out.setdefault("better_than_leader", []).append(c)
        if not worse:
            contenders.append(c)
    out["contenders"] = contenders
    out["resolved"] = contenders == [leader] and not out.get("better_than_leader")
    if out.get("better_than_leader"):
        reasons.append(
            f"{', '.join(out['better_than_leader'])} resolved better than {leader} on the seeds "
            "both ran: the ranking and the paired tests disagree"
        )
    if out.get("better_than_leader"):
        pass
    elif out["resolved"]:
        reasons.append(
            f"every other candidate is resolved worse than {leader} "
            f"(paired t over seeds, Holm-adjusted, {confidence:.0%})"
        )
    else:
        reasons.append(f"the seeds do not separate {leader} from {', '.join(contenders[1:])}")
        out["seeds_needed"] = _hardest(out["against_leader"], contenders[1:], leader)
    if out.get("better_than_leader") and out["seeds_needed"] is None and len(contenders) > 1:
        out["seeds_needed"] = _hardest(out["against_leader"], contenders[1:], leader)
    out["single"] = _single_pick(contenders, summaries)
    _explain_picks(out, metric)
    out["line"] = _line(out, lead, metric, k)
    return cast("dict[str, Any]", json_safe(out))


def _explain_picks(out: dict[str, Any], metric: str) -> None:
    ens, single = out["ensemble"], out["single"]
    if ens["candidate"] is not None:
        out["reasons"].append(
            f"{ens['candidate']} has the best ensemble {metric} ({_fmt(ens['score'])} with {ens['k']} seeds)"
        )
    if single["candidate"] is not None and len(single["among"]) > 1:
        out["reasons"].append(
            f"{single['candidate']} has the smallest range of {metric} over seeds "
            f"({_fmt(single['range'])}) among {', '.join(single['among'])}"
        )


def _hardest(against: Mapping[str, Any], contenders: list[str], leader: str) -> dict[str, Any]:
    """The contender that needs the most seeds (``None`` = no number of seeds suffices)."""

    def cost(c: str) -> float:
        n = against[c]["seeds_needed"]["seeds"]
        return float("inf") if n is None else float(n)

    worst = max(contenders, key=cost)
    needed = against[worst]["seeds_needed"]
    return {
        "seeds": needed["seeds"],
        "between": [leader, worst],
        "reason": needed.get("reason"),
        "diff": against[worst]["diff"],
        "sd": against[worst]["sd"],
        "range": needed.get("range"),
        "evidence": needed.get("evidence"),
        "assumes": needed.get("assumes"),
    }


def _single_pick(contenders: list[str], summaries: Mapping[str, Any]) -> dict[str, Any]:
    ranged = [c for c in contenders if summaries[c]["range"] is not None]
    if not ranged:
        return {
            "candidate": None,
            "range": None,
            "mean": None,
            "reason": "a range needs at least 2 seeds per candidate",
        }
    best = min(ranged, key=lambda c: (summaries[c]["range"], contenders.index(c)))
    return {
        "candidate": best,
        "range": summaries[best]["range"],
        "mean": summaries[best]["mean"],
        "among": list(contenders),
        "reason": None,
    }


def _ensemble_pick(
    ensemble: Mapping[str, Mapping[str, Any]] | None, ranking: list[str], higher_is_better: bool
) -> dict[str, Any]:
    if ensemble is None:
        return {"candidate": None, "reason": "no per-seed validation outputs were given to ensemble"}
    usable = {c: e for c, e in ensemble.items() if e.get("ensemble") is not None and e.get("n_seeds", 0) >= 2}
    if not usable:
        return {"candidate": None, "reason": "no candidate has 2 seeds with outputs to ensemble"}
    size = min(e["n_seeds"] for e in usable.values())
    scores = {c: e["curve"][size - 1]["mean"] for c, e in usable.items()}
    sign = 1.0 if higher_is_better else -1.0
    order = {c: i for i, c in enumerate(ranking)}
    best = max(scores, key=lambda c: (sign * scores[c], -order.get(c, len(order))))
    same = len({e["n_seeds"] for e in usable.values()}) == 1
    entry = usable[best]
    return {
        "candidate": best,
        "score": scores[best],
        "k": size,
        "gain": entry["curve"][size - 1]["gain"],
        "scores": scores,
        "reason": None if same else f"candidates kept different numbers of seeds; ensembles compared at {size} seeds",
    }


def _single_candidate_line(name: str, summary: Mapping[str, Any], ens: Mapping[str, Any], metric: str) -> str:
    seeds = f"{summary['n']} seed{'s' if summary['n'] != 1 else ''}"
    head = f"{name} is the only candidate: mean {metric} {_fmt(summary['mean'])} over {seeds}"
    if summary["range"] is not None:
        head += f", range {_fmt(summary['range'])}"
    parts = [head]
    if ens.get("candidate") is not None:
        parts.append(f"an ensemble of {ens['k']} seeds scores {_fmt(ens['score'])} ({_gain(ens['gain'])})")
    return "; ".join(parts) + "."


def _line(out: Mapping[str, Any], lead: Mapping[str, Any], metric: str, k: int) -> str:
    leader = out["leader"]
    if out["resolved"]:
        head = (
            f"{leader}: best mean {metric} over {lead['n']} seeds ({_fmt(lead['mean'])}), resolved "
            "against every other candidate."
        )
    elif out.get("better_than_leader"):
        head = (
            f"not resolved: {', '.join(out['better_than_leader'])} resolved better than {leader} on the "
            f"seeds both ran, though {leader} leads the ranking; the candidates ran different seeds: "
            "run the missing seeds (twinrun seeds --resume) so that every comparison uses the same ones."
        )
    else:
        need = out["seeds_needed"]
        rival = need["between"][1]
        if lead["n"] < 2:
            head = (
                "not resolved: one seed shows no spread, so nothing can be resolved and no seed "
                f"count estimated; run at least 2 seeds (10 is a sensible start). Best single "
                f"score so far: {leader} ({_fmt(lead['mean'])})."
            )
        elif need["seeds"] is None:
            head = f"not resolved: {leader} vs {rival}: {need['reason'] or 'no estimate'} ({k} seeds run)."
        elif need.get("evidence") is False:
            low = need["range"][0]
            head = (
                f"not resolved: no evidence yet of a difference between {leader} and {rival} ({k} seeds; "
                f"{rival} - {leader} = {_fmt(need['diff'], True)} on average per seed, sd "
                f"{_fmt(need['sd'])}). If the true difference were as large as observed, about "
                f"{need['seeds']} seeds would resolve it; these seeds are consistent with anything from "
                f"{low if low is not None else 'many'} seeds to no number at all (no difference)."
            )
        else:
            span = need.get("range") or [None, None]
            within = (
                (
                    f" (from {span[0]} to {span[1] if span[1] is not None else 'many more'} across the "
                    "pilot's uncertainty)"
                )
                if span[0] is not None
                else ""
            )
            head = (
                f"not resolved: about {need['seeds']} seeds needed to tell {leader} from {rival}{within} "
                f"({k} run; {rival} - {leader} = {_fmt(need['diff'], True)} on average per seed, "
                f"sd {_fmt(need['sd'])})."
            )
    parts = [head]
    deploy = out["deploy"]
    ens, single = out["ensemble"], out["single"]
    if deploy in ("both", "ensemble"):
        if ens["candidate"] is not None:
            parts.append(
                f"To deploy an ensemble: {ens['candidate']} (ensemble {metric} "
                f"{_fmt(ens['score'])} with {ens['k']} seeds, {_gain(ens['gain'])})."
            )
        elif deploy == "ensemble":
            parts.append(f"No ensemble recommendation: {ens['reason']}.")
    if deploy in ("both", "single"):
        if single["candidate"] is not None:
            if out["resolved"]:
                why = f"best mean, range {_fmt(single['range'])}"
            else:
                why = (
                    f"smallest range, {_fmt(single['range'])}, among "
                    f"{', '.join(single['among'])}, which the seeds do not separate"
                )
            parts.append(f"To deploy a single seed: {single['candidate']} ({why}).")
        elif deploy == "single" or out["resolved"] is False:
            parts.append(f"No single-seed recommendation: {single['reason']}.")
    return " ".join(parts)
