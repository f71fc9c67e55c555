"""The HTML page of a twin search: every trial against each hyperparameter, and the confirmation."""

from __future__ import annotations

import math
from typing import Any

from twinrun.report._figures import new_axes, plot_search
from twinrun.report._page import Page

__all__ = ["search_report"]


def search_report(result: Any) -> Page:
    """A page for a :class:`~twinrun.search.SearchResult`: the verdict, one figure per hyperparameter,
    the trials and the confirmation across replicas."""
    page = Page(f"twinrun search {result.id[:8]} · {result.experiment}")
    page.heading(f"search {result.id[:8]} · {result.experiment} · {len(result.trials)} trials ({result.sampler})")
    page.pre(result.format())
    done = [t for t in result.ranked()]
    keys = sorted({k for t in result.trials for k in t.overrides})
    winner = next((i for i, t in enumerate(done) if t.name == result.winner), None)
    for key in keys:
        values = [t.overrides.get(key) for t in done]
        numeric = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        log = len(numeric) == len(values) and min(numeric, default=0) > 0 and max(numeric) / min(numeric) > 20
        ax = plot_search(
            values,
            [t.diff for t in done],
            [_finite(t.low, t.diff) for t in done],
            [_finite(t.high, t.diff) for t in done],
            ax=new_axes(),
            xlabel=key,
            log=log,
            winner=winner,
            ylabel=f"Δ {result.metric} vs {result.reference}",
        )
        page.figure(
            ax, f"each trial's paired difference to {result.reference} in its batch (one run), against {key}", "search"
        )
    page.heading("Trials", 3)
    page.table(
        ["trial", "batch", *keys, f"Δ {result.metric}", "95% CI", "run"],
        [
            [
                t.name,
                t.batch,
                *(t.overrides.get(k, "") for k in keys),
                "" if t.diff is None else f"{t.diff:+.4f}",
                "" if t.low is None else f"[{t.low:+.4f}, {t.high:+.4f}]",
                (t.run_id or "")[:8],
            ]
            for t in result.trials
        ],
    )
    conf = result.confirmation
    if conf:
        page.heading(f"Confirmed across {conf['replicas']} replicas", 3)
        page.table(
            ["trial", "Δ mean", "95% CI", "decision"],
            [
                [
                    n,
                    f"{c['difference']['diff']:+.4f}",
                    ""
                    if c["difference"].get("low") is None
                    else f"[{c['difference']['low']:+.4f}, {c['difference']['high']:+.4f}]",
                    c["decision"],
                ]
                for n, c in conf["comparisons"].items()
            ],
        )
        page.text(conf["recommendation"])
    return page


def _finite(value: float | None, fallback: float | None) -> float:
    v = value if value is not None and math.isfinite(value) else fallback
    return float(v if v is not None else math.nan)
