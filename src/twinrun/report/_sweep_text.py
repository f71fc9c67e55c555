"""The terminal report of a seed sweep: per metric, a table per candidate and per comparison."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from twinrun.report._numbers import interval, number, percent
from twinrun.report._text import format_table

__all__ = ["format_sweep", "format_sweep_list"]


def _seeds(values: Sequence[Any], show: int = 10) -> str:
    text = ", ".join(str(v) for v in values[:show])
    return text + (f", ... ({len(values)})" if len(values) > show else "")


def _candidate_table(m: Mapping[str, Any]) -> str:
    k = m["k"]
    ens = m.get("ensemble") or {}
    headers = [
        "candidate",
        "seeds",
        "mean",
        "std",
        "median",
        "IQM",
        "min",
        "max",
        "range",
        f"mean {m['confidence']:.0%} CI",
        "ensemble",
        "gain",
    ]
    rows = []
    for name in m["candidates"]:
        s = m["summary"][name]
        e = ens.get(name) or {}
        ens_cell = "-" if e.get("ensemble") is None else f"{number(e['ensemble'])} ({e.get('n_seeds')})"
        mean_ci = s["intervals"]["mean"]
        rows.append(
            [
                name + (" (ref)" if name == m["reference"] else ""),
                f"{s['n']}/{k}",
                number(s["mean"]),
                number(s["std"]),
                number(s["median"]),
                number(s["iqm"]),
                number(s["min"]),
                number(s["max"]),
                number(s["range"]),
                interval(mean_ci.get("low"), mean_ci.get("high")),
                ens_cell,
                number(e.get("gain"), signed=True),
            ]
        )
    return format_table(headers, rows, right=list(range(1, 12)))


def _comparison_table(m: Mapping[str, Any]) -> str:
    conf = f"{m['confidence']:.0%}"
    headers = [
        "candidate",
        "seeds",
        f"Δ mean [{conf} CI]",
        f"P(better) [{conf} CI]",
        "corr",
        "var. removed",
        "p Holm",
        "decision",
    ]
    rows = []
    for name, c in m["comparisons"].items():
        d, p, g = c["difference"], c["improvement"]["paired"], c["pairing"]
        delta = (
            "-"
            if d["diff"] is None
            else f"{number(d['diff'], signed=True)} {interval(d['low'], d['high'], signed=True)}"
        )
        prob = "-" if p["value"] is None else f"{number(p['value'], 2)} {interval(p['low'], p['high'], 2)}"
        rows.append(
            [
                name,
                str(d["n"]),
                delta,
                prob,
                number(g.get("correlation"), 2),
                percent(g.get("variance_reduction")),
                number(c.get("p_holm"), 3),
                c.get("decision", "-"),
            ]
        )
    return format_table(headers, rows, right=[1, 4, 5, 6])


def _metric_block(name: str, m: Mapping[str, Any], main: bool) -> list[str]:
    direction = "higher" if m["higher_is_better"] else "lower"
    lines = [f"{name} ({direction} is better){' · main metric' if main else ''}", _candidate_table(m)]
    if m["comparisons"]:
        lines += [
            "",
            f"paired across seeds, against {m['reference']} (Δ = candidate − {m['reference']}):",
            _comparison_table(m),
        ]
    rec = m["recommendation"]["line"]
    lines += ["", f"recommendation{'' if main else f' ({name})'}: {rec}"]
    return lines


def format_sweep(analysis: Mapping[str, Any], *, all_metrics: bool = True) -> str:
    """The report printed by ``twinrun seeds``: header, tables per metric, what is missing."""
    sweep = analysis["sweep"]
    finished, k = analysis["finished"], analysis["k"]
    session = (analysis.get("sessions") or [{}])[-1]
    how = ""
    if session:
        how = f" · {session.get('backend')}, {session.get('jobs')} job(s) x {session.get('threads')} thread(s)"
    lines = [
        (
            f"twinrun seeds · {sweep['name']} · sweep {sweep['id'][:8]} · {len(finished)}/{k} seeds "
            f"finished ({_seeds(finished) or 'none'}) · {sweep['status']}{how}"
        ),
    ]
    main = analysis["metric"]
    for name, m in analysis["metrics"].items():
        if not all_metrics and name != main:
            continue
        lines += [""] + _metric_block(name, m, name == main)
    ens = analysis.get("ensemble") or {}
    if ens.get("available"):
        lines += [
            "",
            (
                f"ensemble: the {ens.get('kind')} of the seeds averaged as probabilities "
                "(values for regression), scored on the shared validation set; gain = "
                "ensemble − mean single seed, positive is better."
            ),
        ]
    lines += _test_lines(analysis.get("test"))
    failed = analysis.get("not_finished") or []
    if failed:
        lines += ["", "seeds that did not finish (left out):"]
        for r in failed:
            error = (r.get("error") or "").strip().splitlines()
            lines.append(
                f"  seed {r['seed']}: {r['status']}"
                + (f": {error[0]}" if error else "")
                + (f" (run {r['run_id'][:8]})" if r.get("run_id") else "")
            )
    unavailable = list(analysis.get("unavailable") or [])
    for name, m in analysis["metrics"].items():
        if all_metrics or name == main:
            unavailable += [f"{name}: {u}" for u in m.get("unavailable", [])]
    if unavailable:
        lines += ["", "cannot be computed:"] + [f"  - {u}" for u in _grouped(unavailable)]
    notes = list(analysis.get("notes") or [])
    main_notes = analysis["metrics"].get(main, {}).get("notes", []) if analysis["metrics"] else []
    notes += [n for n in main_notes if n not in notes]
    if notes:
        lines += ["", "notes:"] + [f"  - {n}" for n in notes]
    lines += [
        "",
        (
            f"stored with sweep {sweep['id'][:8]} in {sweep.get('registry')}; "
            f"again: twinrun seeds --show {sweep['id'][:8]}"
        ),
    ]
    return "\n".join(lines)


def _test_lines(test: Mapping[str, Any] | None) -> list[str]:
    """The test split against validation: inside each candidate's seed range, and rank-correlated?"""
    if not test:
        return []
    metric = test["metric"]
    lines = ["", f"test split ({metric}; evaluated once per seed, at the end; no decision uses it):"]
    for c, entry in test["candidates"].items():
        low, high = entry["val_range"]
        where = "inside" if entry["inside"] else "OUTSIDE"
        lines.append(
            f"  {c}: test mean {number(entry['test_mean'])} over {entry['seeds']} seed(s), {where} its "
            f"validation seed range [{number(low)}, {number(high)}]"
        )
    rank = test["rank_correlation"]
    if rank.get("rho") is None:
        lines.append(f"  validation vs test rank correlation: {rank.get('reason')} (there are {rank['n']})")
    else:
        lines.append(
            f"  validation vs test rank correlation over {rank['n']} runs: Spearman {rank['rho']:+.2f} "
            f"(p = {rank['p_value']:.2g}): "
            + (
                "the validation set ranks runs as the test set does"
                if rank["rho"] > 0.5
                else "the validation set is a weak guide to test: rankings on it may not carry over"
            )
        )
    return lines


def format_sweep_list(rows: Sequence[Sequence[str]]) -> str:
    headers = ["sweep", "experiment", "status", "seeds done", "created", "main metric: recommendation"]
    return format_table(headers, rows, right=[3])


def _grouped(items: Sequence[str]) -> list[str]:
    """``"metric: 'cand' what: reason"`` lines with the same what and reason, said once."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    order: list[tuple[str, str] | str] = []
    for item in items:
        match = re.match(r"^([^:]+): '([^']+)' ([^:]+): (.*)$", item)
        if not match:
            order.append(item)
            continue
        metric, cand, what, reason = match.groups()
        key = (what, reason)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((metric, cand))
    out = []
    for entry in order:
        if isinstance(entry, str):
            out.append(entry)
            continue
        pairs = groups[entry]
        metrics = list(dict.fromkeys(m for m, _ in pairs))
        cands = list(dict.fromkeys(c for _, c in pairs))
        out.append(f"{entry[0]} of {', '.join(cands)} ({', '.join(metrics)}): {entry[1]}")
    return out
