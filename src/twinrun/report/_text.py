"""Plain text of runs, as the terminal shows them: tables, a run in full, the diff of two runs.

``twinrun show`` and ``twinrun diff`` print these, and the HTML report embeds them, so
the two never disagree. They read registry records only (no torch).
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Mapping, Sequence
from typing import Any

from twinrun.registry import Registry, RunDiff, RunRecord
from twinrun.report._numbers import difference, number

__all__ = ["duration", "format_diff", "format_show", "format_table", "format_wrapped_table", "when"]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; columns listed in ``right`` are right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            (c.rjust(w) if i in right else c.ljust(w)) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def format_wrapped_table(headers: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int | None]) -> str:
    """A table whose cells wrap (never cut) at ``widths`` characters (``None``: as wide as its longest cell);
    a row that wraps continues on the next lines, its other cells left blank there."""
    wrapped = [[textwrap.wrap(c, w) or [""] if w else [c] for c, w in zip(row, widths)] for row in rows]
    cols = [max([len(h), *(len(line) for row in wrapped for line in row[i])]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, cols)).rstrip()

    out = [line(headers), line(["-" * w for w in cols])]
    for row in wrapped:
        for k in range(max(len(cell) for cell in row)):
            out.append(line([cell[k] if k < len(cell) else "" for cell in row]))
    return "\n".join(out)


def when(ts: float | None, seconds: bool = False) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M", time.localtime(ts))


def duration(seconds: float | None, status: str) -> str:
    if seconds is None:
        return "running" if status == "running" else "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _final_metrics(record: RunRecord, registry: Registry) -> dict[str, dict[str, float]]:
    if record.result:
        return {
            c: {k: v for k, v in (d.get("final") or {}).items() if v is not None}
            for c, d in record.result.get("candidates", {}).items()
        }
    out: dict[str, dict[str, float]] = {}
    for cand, splits in registry.metrics(record.id, split="val").items():
        out[cand] = {m: values[-1][1] for m, values in splits.get("val", {}).items()}
    return out


def _env_lines(env: Mapping[str, Any] | None, fingerprint: str | None) -> list[str]:
    if not env:
        return ["environment: not recorded"]
    py, t, dev = env.get("python", {}), env.get("torch", {}), env.get("devices", {})
    gpus = ", ".join(f"{g['name']} (driver {g['driver']})" for g in dev.get("gpus", [])) or "no GPU"
    lines = [
        (
            f"environment: python {py.get('version')} · torch {t.get('version')} "
            f"(CUDA {t.get('cuda') or '-'}, cuDNN {t.get('cudnn') or '-'}) · "
            f"{env.get('os', {}).get('system')} {env.get('os', {}).get('release')}"
        ),
        f"  devices: {dev.get('cpu_model')} ({dev.get('cpu_count')} cores) · {gpus}",
        (
            f"  threads: {t.get('num_threads')} intra-op, {t.get('num_interop_threads')} inter-op · "
            f"deterministic algorithms: {t.get('deterministic_algorithms')} · "
            f"{len(env.get('packages', {}))} packages · numerics fingerprint {fingerprint}"
        ),
    ]
    set_vars = [f"{k}={v}" for k, v in (env.get("env_vars") or {}).items() if v is not None]
    if set_vars:
        lines.append("  numerics variables: " + " ".join(set_vars))
    git = env.get("git") or {}
    if git.get("repository"):
        dirty = f" · dirty: {len(git.get('modified_files', []))} modified file(s)" if git.get("dirty") else ""
        lines.append(f"git: {git.get('branch')} @ {(git.get('commit') or '-')[:12]} in {git['repository']}{dirty}")
    else:
        lines.append("git: not in a repository")
    return lines


def format_show(record: RunRecord, registry: Registry) -> str:
    r = record
    settings = r.config.get("settings", {}) if r.config else {}
    lines = [
        f"run {r.id} · {r.name} · {r.status}",
        (f"started {when(r.started_at, True)} · {duration(r.duration, r.status)} · pid {r.pid} on {r.hostname}"),
    ]
    if r.experiment_path:
        lines.append(f"experiment {r.experiment_path} (sha256 {(r.experiment_sha256 or '')[:12]})")
    lines.append(
        f"seed {r.seed} · {r.last_step}/{r.steps if r.steps is not None else '?'} steps · batch "
        f"{settings.get('batch_size', '-')} · "
        f"device {r.device} · reference {r.reference} · config {r.config_hash or '-'}"
    )
    if r.error:
        lines.append(f"error: {r.error}")
    finals = _final_metrics(r, registry)
    metric_names: list[str] = []
    for values in finals.values():
        metric_names += [m for m in values if m not in metric_names]
    comparisons = (r.result or {}).get("comparisons", {})
    headers = [
        "candidate",
        "status",
        *[f"val {m}" for m in metric_names],
        *[f"Δ {m} vs {r.reference} [95% CI]" for m in metric_names],
    ]
    rows = []
    for name, cand in r.candidates.items():
        status = cand.status if cand.diverged_at is None else f"diverged@{cand.diverged_at}"
        row = [name + (" (ref)" if name == r.reference else ""), status]
        row += [number(finals.get(name, {}).get(m)) for m in metric_names]
        comp = comparisons.get(name, {}).get("val", {})
        row += ["" if name == r.reference else difference(comp.get(m)) for m in metric_names]
        rows.append(row)
    lines += ["", format_table(headers, rows), ""]
    if not r.result and r.status != "finished":
        lines.append(f"(no final result: values are the last evaluation before the run {r.status})")
    checks = registry.checks(r.id)
    if checks:
        counts = {s: sum(c["status"] == s for c in checks) for s in ("pass", "warn", "fail", "skip")}
        lines.append("checks: " + " · ".join(f"{n} {s}" for s, n in counts.items()))
        lines += [f"  {c['status']:<4}  {c['name']:<22} {c['measured'] or ''}" for c in checks]
        lines.append("")
    lines += _env_lines(r.env, r.env_fingerprint)
    lines.append("tags: " + (", ".join(r.tags) if r.tags else "-"))
    if r.notes:
        lines.append("notes:")
        lines += [f"  {when(n.created_at)}  {n.text}" for n in r.notes]
    if r.sweep_id:
        lines.append(f"sweep: {r.sweep_id}")
    return "\n".join(lines)


def _value(v: Any, none: str = "(absent)") -> str:
    text = none if v is None else str(v)
    return text if len(text) <= 48 else text[:47] + "…"


def format_diff(d: RunDiff, *, show_all: bool = False) -> str:
    a, b = d.a, d.b
    lines = [
        f"a = {a.short_id} ({a.name}, {a.status}, seed {a.seed}, {when(a.started_at)})",
        f"b = {b.short_id} ({b.name}, {b.status}, seed {b.seed}, {when(b.started_at)})",
        "",
    ]
    if d.only_in_a or d.only_in_b:
        lines.append(
            f"candidates only in a: {', '.join(d.only_in_a) or '-'} · only in b: {', '.join(d.only_in_b) or '-'}"
        )
    if d.config:
        lines.append(f"config: {len(d.config)} difference(s)")
        rows = [[c.key, _value(c.a) if c.in_a else "(absent)", _value(c.b) if c.in_b else "(absent)"] for c in d.config]
        lines += ["  " + line for line in format_table(["key", "a", "b"], rows).splitlines()]
    else:
        lines.append("config: identical")
    lines.append("")
    if d.metrics:
        lines.append("final validation metrics (last evaluation of each run):")
        rows = [
            [m.candidate, m.metric, number(m.a), number(m.b), "identical" if m.identical else f"{m.delta:+.4g}"]
            for m in d.metrics
        ]
        lines += ["  " + line for line in format_table(["candidate", "metric", "a", "b", "b − a"], rows).splitlines()]
    else:
        lines.append("final validation metrics: no candidate was evaluated in both runs")
    if d.curves:
        by_cand: dict[str, list[Any]] = {}
        for c in d.curves:
            by_cand.setdefault(c.candidate, []).append(c)
        same = [n for n, cs in by_cand.items() if all(c.identical for c in cs)]
        parts = [f"identical step for step for {', '.join(same)}"] if same else []
        for name, cs in by_cand.items():
            if name in same:
                continue
            parts.append(
                f"{name}: "
                + ", ".join(
                    f"{c.metric} first differs at step {c.first_difference} (max |b − a| {c.max_abs_difference:.3g})"
                    for c in cs
                    if not c.identical
                )
            )
        steps = max(c.steps for c in d.curves)
        lines.append(f"training curves ({steps} shared steps): " + "; ".join(parts))
    lines.append("")
    relevant = [e for e in d.environment if e.numerics]
    harmless = [e for e in d.environment if not e.numerics]
    lines.append(f"environment: {len(d.environment)} difference(s), {len(relevant)} can change the numbers")
    for title, items, cap in (
        ("can change the numbers", relevant, None),
        ("cannot change the numbers", harmless, None if show_all else 12),
    ):
        if not items:
            continue
        shown = items if cap is None else items[:cap]
        rows = [[e.key, _value(e.to_dict()["a"], "-"), _value(e.to_dict()["b"], "-"), e.reason] for e in shown]
        lines.append(f"  {title}:")
        lines += ["    " + line for line in format_table(["fact", "a", "b", "why"], rows).splitlines()]
        if len(shown) < len(items):
            lines.append(f"    … {len(items) - len(shown)} more (--all)")
    lines.append("")
    verdict = d.verdict
    if verdict.comparable:
        lines.append(
            "verdict: COMPARABLE: the numbers can differ only through the config "
            "differences above" + ("" if d.config else " (there are none)")
        )
    else:
        lines.append("verdict: NOT COMPARABLE: these differences can change the numbers:")
        lines += [f"  - {reason}" for reason in verdict.reasons]
    if verdict.harmless:
        lines.append(
            "  cannot change the numbers: "
            + "; ".join(verdict.harmless[:6])
            + (" …" if len(verdict.harmless) > 6 else "")
        )
    return "\n".join(lines)
