"""``twinrun report``: one HTML file for runs or a sweep, from the registry alone.

For each run: the verdict table as ``twinrun show`` prints it, what each verdict
may claim (its scope), training and validation curves of every candidate
overlaid, the paired difference of each candidate to the reference over steps,
the checks with their figures and fixes, what initial weights were shared, what
each candidate's configuration changes, the environment, tags and notes. For a
sweep (seeds, or the replicas of one ``compare --replicas K``): curves with a
band across seeds, paired differences with their band, per-seed scores, the
intervals of the means and of the paired differences, P(A > B), and the text
report of ``twinrun seeds`` (ensembles, seeds needed). For two runs: their diff.
What is missing (a run that failed, a diverged candidate, a sweep with one seed)
is said where it would have been.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from twinrun.registry import Registry, RunRecord, UnknownRunError, diff_runs
from twinrun.report import _figures as fig
from twinrun.report._page import Page
from twinrun.report._sweep_text import format_sweep
from twinrun.report._text import format_diff, format_show

__all__ = ["build_report"]

Metrics = Mapping[str, Mapping[str, Mapping[str, list[tuple[int, float]]]]]  # candidate -> split -> metric


def build_report(
    registry: Registry, runs: Sequence[str] = (), *, sweep: str | None = None, n_resamples: int = 2_000
) -> Page:
    """The page for ``runs`` (ids or prefixes) or for ``sweep``; unknown ids are listed as missing."""
    page = Page("twinrun report")
    records: list[RunRecord] = []
    missing: list[str] = []
    for query in runs:
        try:
            records.append(registry.get_run(query))
        except UnknownRunError as exc:
            missing.append(f"{query}: {exc.message}")
    sweep_record = registry.get_sweep(registry.resolve_sweep(sweep)) if sweep else None
    if sweep_record is not None:
        records += [registry.get_run(r) for r in sweep_record.runs if r not in {x.id for x in records}]
    title = (
        f"sweep {sweep_record.short_id} · {sweep_record.name}"
        if sweep_record
        else " vs ".join(f"{r.name} {r.id[:8]}" for r in records) or "no run"
    )
    page.title = f"twinrun report · {title}"
    page.heading(page.title, 1)
    page.text(f"{len(records)} run(s) from {registry.path}", "meta")
    for line in missing:
        page.text(f"missing: {line}", "missing")
    experiments = sorted({r.name for r in records})
    if len(experiments) > 1:
        page.text(
            f"These runs come from different experiments ({', '.join(experiments)}): their curves are "
            "shown side by side, not compared (twinrun diff says what differs).",
            "missing",
        )
    if sweep_record is not None:
        _sweep_section(page, registry, sweep_record, records, n_resamples)
    elif len(records) == 2:
        _diff_section(page, registry, records[0], records[1])
    for record in records if sweep_record is None else records[:1]:
        _run_section(page, registry, record, detail=sweep_record is None)
    return page


# ---------------------------------------------------------------------- one run
def _run_section(page: Page, registry: Registry, r: RunRecord, *, detail: bool) -> None:
    page.heading(
        f"run {r.id[:8]} · {r.name} · {r.status}" + ("" if detail else " (the first seed)"), anchor=f"run-{r.id[:8]}"
    )
    if r.status != "finished":
        page.text(
            f"This run {r.status}" + (f": {r.error}" if r.error else "") + "; what it recorded is shown.", "missing"
        )
    diverged = [f"{n} at step {c.diverged_at}" for n, c in r.candidates.items() if c.diverged_at is not None]
    if diverged:
        page.text("diverged: " + ", ".join(diverged) + " (their curves stop there)", "missing")
    page.pre(format_show(r, registry))
    _scopes(page, r)
    _facts(page, r)
    metrics = registry.metrics(r.id)
    _curves(page, {r.id: metrics}, r)
    _differences(page, {r.id: metrics}, r)
    if detail:
        _checks(page, registry, r)
        _init_and_config(page, r)


def _num4(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def _facts(page: Page, r: RunRecord) -> None:
    """The dumb baselines, the test split, the best steps and the data a run recorded (when it did)."""
    result = r.result or {}
    base = result.get("baselines") or {}
    if base.get("scores"):
        page.heading("Baselines, trained on the same batches", 3)
        metrics = sorted({m for v in base["scores"].values() for m in v})
        rows = [[name, *(_num4(v.get(m)) for m in metrics)] for name, v in base["scores"].items()]
        rows += [
            [f"{name} (declared)", *(_num4(v) if m == name else "" for m in metrics)]
            for name, v in (base.get("declared") or {}).items()
        ]
        page.table(["baseline", *metrics], rows)
        for name, why in (base.get("skipped") or {}).items():
            page.text(f"no {name} baseline: {why}", "missing")
    tested = {n: c["test"] for n, c in (result.get("candidates") or {}).items() if c.get("test")}
    if tested:
        page.heading("Test split (evaluated once, at the end; no decision uses it)", 3)
        metrics = sorted({m for v in tested.values() for m in v})
        page.table(["candidate", *metrics], [[n, *(_num4(v.get(m)) for m in metrics)] for n, v in tested.items()])
    sel = result.get("selection") or {}
    if sel:
        page.heading(
            f"Best steps by {sel['metric']} (chosen on {sel['chosen_on']} validation examples, "
            f"judged on the other {sel['judged_on']})",
            3,
        )
        rows = []
        for name, best in sel.get("best", {}).items():
            d = ((sel.get("comparisons") or {}).get(name) or {}).get("val", {}).get(sel["metric"]) or {}
            ci = f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]" if d.get("low") is not None else ""
            rows.append([name, best["step"], _num4(best["value"]), ci])
        page.table(["candidate", "best step", "on the choosing half", "Δ vs reference, judging half"], rows)
    data = result.get("data") or {}
    splits = [(k, v) for k, v in data.items() if isinstance(v, Mapping) and "sha256" in v]
    if splits:
        page.heading("Data", 3)
        page.table(
            ["split", "examples", "sha256", "hashed from"],
            [[k, v.get("examples"), str(v.get("sha256"))[:16], v.get("from", "")] for k, v in splits],
        )


def _scopes(page: Page, r: RunRecord) -> None:
    comparisons = (r.result or {}).get("comparisons", {})
    scopes: dict[str, str] = {}
    for comp in comparisons.values():
        for value in [*(comp.get("val") or {}).values(), comp.get("train_loss") or {}]:
            if isinstance(value, Mapping) and value.get("scope"):
                scopes.setdefault(str(value.get("method")), str(value["scope"]))
    if scopes:
        page.heading("What these verdicts claim", 3)
        page.table(["method", "scope"], list(scopes.items()))


def _series(metrics: Metrics, candidate: str, split: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    rows = (metrics.get(candidate) or {}).get(split, {}).get(metric) or []
    return np.array([s for s, _ in rows], dtype=float), np.array([v for _, v in rows], dtype=float)


def _stacked(
    per_run: Mapping[str, Metrics], candidate: str, split: str, metric: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """Steps common to every run and the values ``[K, T]`` there (K runs); ``None`` when none has any."""
    series = [_series(m, candidate, split, metric) for m in per_run.values()]
    series = [(s, v) for s, v in series if s.size]
    if not series:
        return None
    common = series[0][0]
    for s, _ in series[1:]:
        common = np.intersect1d(common, s)
    values = np.stack([v[np.isin(s, common)] for s, v in series])
    return common, values


def _metric_names(per_run: Mapping[str, Metrics], split: str) -> list[str]:
    names: list[str] = []
    for metrics in per_run.values():
        for cand in metrics.values():
            names += [m for m in cand.get(split, {}) if m not in names and m != "lr"]
    return names


def _curves(page: Page, per_run: Mapping[str, Metrics], r: RunRecord) -> None:
    page.heading("Curves", 3)
    page.open_grid()
    k = len(per_run)
    for split in ("train", "val"):
        for metric in _metric_names(per_run, split):
            curves = {c: s for c in r.candidates if (s := _stacked(per_run, c, split, metric)) is not None}
            if curves:
                ax = fig.plot_curves(curves, ylabel=f"{split} {metric}")
                ax.set_title(f"{split} {metric}" + (f" (mean and 95% band over {k} seeds)" if k > 1 else ""))
                page.figure(ax, f"{split} {metric} of every candidate", "curves")
    page.close_grid()


def _differences(page: Page, per_run: Mapping[str, Metrics], r: RunRecord) -> None:
    ref = r.reference
    if ref is None or len(r.candidates) < 2:
        return
    k = len(per_run)
    page.heading(f"Paired difference to the reference ({ref}) over steps", 3)
    if k == 1:
        page.text(
            "One run: the curves show this run's difference, with no band (replicas or seeds give one: "
            "twinrun compare --replicas K).",
            "meta",
        )
    page.open_grid()
    for split, metric in [("train", "loss"), *(("val", m) for m in _metric_names(per_run, "val"))]:
        base = _stacked(per_run, ref, split, metric)
        if base is None:
            continue
        ax = None
        for i, cand in enumerate(c for c in r.candidates if c != ref):
            other = _stacked(per_run, cand, split, metric)
            if other is None:
                continue
            steps = np.intersect1d(base[0], other[0])
            diff = other[1][:, np.isin(other[0], steps)] - base[1][:, np.isin(base[0], steps)]
            ax = fig.plot_paired_difference(steps, diff, ax=ax, label=f"{cand} - {ref}", color=f"C{(i + 1) % 10}")
        if ax is not None:
            ax.set_ylabel(f"{split} {metric}: candidate - {ref}")
            page.figure(
                ax,
                f"{split} {metric} of each candidate minus {ref}, step by step on the same batches",
                "paired-difference",
            )
    page.close_grid()


def _checks(page: Page, registry: Registry, r: RunRecord) -> None:
    checks = registry.checks(r.id)
    page.heading("Checks", 3)
    if not checks:
        page.text("No checks recorded for this run (twinrun check FILE records them as a run of their own).", "meta")
        return
    page.table(
        ["status", "check", "measured", "fix"],
        [[c["status"], c["name"], c.get("measured") or "", c.get("fix") or ""] for c in checks],
        classes=[c["status"] for c in checks],
    )
    for c in checks:
        for name, path in (c.get("artifacts") or {}).items():
            if not page.image(path, f"{c['name']}: {name}"):
                page.text(f"{c['name']}: figure {name} is no longer at {path}", "missing")


def _init_and_config(page: Page, r: RunRecord) -> None:
    init = (r.result or {}).get("init") or {}
    if init.get("shared"):
        page.heading("Initial weights shared with the reference", 3)
        page.table(
            ["candidate", "shared", "own"],
            [
                [c, ", ".join(init["shared"].get(c, [])) or "-", ", ".join(init.get("own", {}).get(c, [])) or "-"]
                for c in r.candidates
            ],
        )
    ref = r.candidates.get(r.reference or "")
    if ref is not None:
        from twinrun.registry import flatten_config

        base = dict(flatten_config(ref.config or {}))
        rows = []
        for name, cand in r.candidates.items():
            if name == r.reference:
                continue
            own = dict(flatten_config(cand.config or {}))
            rows += [
                [name, k, str(base.get(k, "(absent)")), str(own.get(k, "(absent)"))]
                for k in sorted(set(base) | set(own))
                if base.get(k) != own.get(k)
            ]
        page.heading(f"What each candidate changes against {r.reference}", 3)
        page.table(["candidate", "key", str(r.reference), "candidate"], rows or [["-", "(nothing)", "", ""]])
        for name, cand in r.candidates.items():
            page.details(
                f"resolved config of {name}", json.dumps(cand.config or {}, indent=2, sort_keys=True, default=str)
            )
    env = r.env or {}
    if env:
        page.heading("Environment", 3)
        keep = [(k, v) for k, v in env.items() if not isinstance(v, (dict, list))][:24]
        page.table(["key", "value"], [[k, v] for k, v in keep])
    page.text("tags: " + (", ".join(r.tags) if r.tags else "-"), "meta")
    for note in r.notes:
        page.text(f"note: {note.text}", "meta")


# ---------------------------------------------------------------------- a sweep
def _sweep_section(page: Page, registry: Registry, sweep: Any, records: list[RunRecord], n_resamples: int) -> None:
    page.heading(f"Across {len(records)} seeds", anchor="sweep")
    finished = [r for r in records if r.status == "finished"]
    if len(finished) < 2:
        page.text(
            f"Only {len(finished)} finished seed(s): no band, interval or P(A > B) across seeds can be "
            "drawn yet (twinrun seeds --resume adds seeds).",
            "missing",
        )
    analysis = sweep.analysis  # stored by twinrun seeds (with its own resamples): nothing to recompute
    if analysis is None or len(analysis.get("finished") or []) != len(finished):
        from twinrun.sweeps import Analysis, analyze_sweep  # imports the engine (torch): only when needed

        analysis = analyze_sweep(sweep.id, registry=registry.path, analysis=Analysis(n_resamples=n_resamples))
    page.pre(format_sweep(analysis))
    per_run = {r.id: registry.metrics(r.id) for r in finished}
    if finished:
        _curves(page, per_run, finished[0])
        _differences(page, per_run, finished[0])
    metric = str(analysis.get("metric") or "")
    block = (analysis.get("metrics") or {}).get(metric) if metric else None
    if not block:
        return
    page.heading(f"{metric}: per-seed scores and intervals", 3)
    page.open_grid()
    summary = block.get("summary") or {}
    scores = {c: s.get("values") or [] for c, s in summary.items()}
    if scores:
        page.figure(fig.plot_scores(scores, xlabel=metric), f"{metric} of each seed (bar: the mean)", "scores")
        for stat, how in (
            ("mean", "skew-adjusted t interval"),
            ("median", "exact order-statistic interval"),
            ("iqm", "percentile bootstrap interval"),
        ):
            values = {c: _estimate(s.get("intervals", {}).get(stat)) for c, s in summary.items()}
            if any(math.isfinite(v[0]) for v in values.values()):
                withheld = all(not math.isfinite(v[1]) for v in values.values())
                page.figure(
                    fig.plot_interval_estimates(values, xlabel=f"{stat} {metric}"),
                    f"{stat} {metric} across seeds, "
                    + (
                        "its interval withheld with this few seeds (see 'cannot be computed' above)"
                        if withheld
                        else f"with its 95% {how}"
                    ),
                    "interval-estimates",
                )
    comps = block.get("comparisons") or {}
    diffs = {f"{c} - {block.get('reference')}": _estimate(v.get("difference"), key="diff") for c, v in comps.items()}
    if diffs:
        page.figure(
            fig.plot_interval_estimates(diffs, xlabel=f"paired difference in {metric}", zero=True),
            "paired difference per seed, mean and 95% skew-adjusted t interval",
            "paired-intervals",
        )
    probs = {c: _estimate((v.get("improvement") or {}).get("paired"), key="value") for c, v in comps.items()}
    if probs:
        page.figure(
            fig.plot_probability_of_improvement(probs, reference=str(block.get("reference"))),
            "P(candidate > reference) over paired seeds, score interval",
            "probability-of-improvement",
        )
    ensembles = {
        c: e["curve"] for c, e in (block.get("ensemble") or {}).items() if isinstance(e, Mapping) and e.get("curve")
    }
    if ensembles:
        curves = {
            c: ([p["k"] for p in v], [p["mean"] for p in v], [p["min"] for p in v], [p["max"] for p in v])
            for c, v in ensembles.items()
        }
        page.figure(
            fig.plot_ensemble_gain(curves, ylabel=f"ensemble {metric}"),
            f"{metric} of an ensemble of k seeds (averaged probabilities), mean and range over subsets",
            "ensemble-gain",
        )
    page.close_grid()


def _estimate(d: Mapping[str, Any] | None, key: str = "estimate") -> tuple[float, float, float]:
    def f(x: Any) -> float:
        return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else math.nan

    d = d or {}
    return f(d.get(key)), f(d.get("low")), f(d.get("high"))


def _diff_section(page: Page, registry: Registry, a: RunRecord, b: RunRecord) -> None:
    page.heading(f"diff {a.id[:8]} → {b.id[:8]}", anchor="diff")
    d = diff_runs(a, b, registry.metrics(a.id), registry.metrics(b.id))
    page.pre(format_diff(d))


def default_path(home: Path, runs: Sequence[RunRecord], sweep_id: str | None) -> Path:
    """Where a report goes by default: the sweep's or the first run's folder."""
    from twinrun._home import runs_dir

    if sweep_id:
        from twinrun._home import sweeps_dir

        return sweeps_dir(home) / sweep_id / "report.html"
    return runs_dir(home) / runs[0].id / "report.html"
