"""Plain-text tables for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the engine imports torch; tables for `twinrun runs` must not
    from twinrun.engine import TwinResult

from twinrun.report import (  # plain-text tables live with the report
    difference,
    format_table,
    format_wrapped_table,
    number,
)

__all__ = ["format_table", "format_verdict", "format_wrapped_table", "human_bytes", "human_count"]


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def human_count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}k"
    return str(n)


def format_verdict(result: TwinResult) -> str:
    """The verdict table and the notes under it, as printed by ``twinrun compare``."""
    ref = result.reference
    metrics = list(result.metric_goals)
    headers = ["candidate", "params", "status"]
    for m in metrics:
        headers += [f"val {m}", f"Δ {m} vs {ref} [95% CI]"]
    headers.append("Δ train loss (mean)")
    rows = []
    for name, cand in result.candidates.items():
        status = "ok" if cand.status == "finished" else f"{cand.status}@{cand.diverged_at}"
        row = [name + (" (ref)" if name == ref else ""), human_count(cand.n_parameters), status]
        comp = result.comparisons.get(name)
        for m in metrics:
            row.append(number(cand.final.get(m)))
            row.append("" if name == ref else difference(comp.val.get(m) if comp else None))
        row.append("" if name == ref else difference(comp.train_loss if comp else None))
        rows.append(row)
    lines = [
        (
            f"twinrun · {result.experiment} · run {result.run_id[:8]} · seed {result.seed} · "
            f"{result.steps} steps · {result.device} · {result.timing.get('total', 0.0):.1f} s"
        ),
        "",
        format_table(headers, rows, right=[1]),
        "",
        (
            "Δ = candidate − reference, paired per validation example (t interval) and per shared "
            "training batch (mean only)."
        ),
        (
            "scope: one run. better/worse: the interval excludes 0 for these trained weights on this "
            "validation set; ~: not resolved. The interval leaves out training noise (initial weights, batch "
            "order, dropout): it is not a verdict on the recipe. For that: --replicas 4, or twinrun seeds FILE "
            "--seeds 10."
        ),
    ]
    lines += baseline_lines(result) + selection_lines(result)
    tested = [
        f"{name} " + " ".join(f"{m} {number(v)}" for m, v in cand.test.items())
        for name, cand in result.candidates.items()
        if cand.test
    ]
    if tested:
        lines.append("test split (evaluated once, at the end; no decision uses it): " + " · ".join(tested))
    groups = []
    for name in result.candidates:
        shared, own = result.init.shared.get(name, []), result.init.own.get(name, [])
        groups.append(f"{name} {len(shared)}/{len(shared) + len(own)}")
    lines.append("shared initial weights (tensors): " + ", ".join(groups))
    batched = sorted({how.split(": ", 1)[1] for how in result.execution.values() if how.startswith("vectorised")})
    if batched:
        alone = [n for n, how in result.execution.items() if not how.startswith("vectorised")]
        lines.append(
            "steps batched with torch.func.vmap: "
            + ", ".join(batched)
            + (f"; one at a time: {', '.join(alone)}" if alone else "")
        )
    mem = result.memory
    if "activation_peak_bytes" in mem:
        how = "a batched group's members together, the others one at a time" if batched else "one candidate at a time"
        lines.append(
            f"peak activations: {human_bytes(mem['activation_peak_bytes'])} ({how}; "
            f"{human_bytes(mem['activation_sum_of_candidates'])} if all were alive at once)"
        )
    partial = [
        f"{n} {len(result.init.shared.get(n, []))}/{len(result.init.shared.get(n, [])) + len(own)}"
        for n, own in result.init.own.items()
        if own
    ]
    if partial:
        lines.append(
            "warning: not every initial tensor is shared (" + ", ".join(partial) + "): part of each "
            "difference is the candidates' own draws of initial weights, which one run cannot average "
            "out (--replicas K can)"
        )
    for warning in result.warnings:
        lines.append(f"warning: {warning}")
    for name, cand in result.candidates.items():
        if cand.error:
            lines.append(f"failed: {cand.error} (at step {cand.diverged_at}; the other candidates went on)")
    if "tensorboard" in result.artifacts:
        lines.append(f"curves: tensorboard --logdir {result.artifacts['tensorboard']}")
    if "registry_run" in result.artifacts:
        short = result.artifacts["registry_run"][:8]
        lines.append(f"recorded as run {short}: twinrun show {short} · twinrun diff {short} OTHER")
    return "\n".join(lines)


def baseline_lines(result: TwinResult) -> list[str]:
    """The dumb baselines (same batches, this validation set) and how far above them each candidate is."""
    b = result.baselines
    if not b:
        return []
    metric = next((m for m in result.metric_goals if m != "loss"), "loss")
    scores = [
        f"{base} " + " ".join(f"{m} {number(v)}" for m, v in values.items())
        for base, values in b.get("scores", {}).items()
    ]
    declared = [f"{m} {number(v)}" for m, v in b.get("declared", {}).items()]
    lines = []
    if scores or declared:
        lines.append(
            "baselines (trained on the same batches; this validation set): "
            + " · ".join(scores + ([f"declared: {', '.join(declared)}"] if declared else []))
        )
    word = {True: "better", False: "worse", None: "~"}
    for base in b.get("scores", {}):
        parts = []
        for name, against in b.get("above", {}).items():
            d = against.get(base, {}).get(metric)
            if d is not None and d.get("diff") is not None and d.get("low") is not None:
                parts.append(f"{name} {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] {word[d['better']]}")
        if parts:
            lines.append(f"  Δ {metric} vs the {base} baseline: " + ", ".join(parts))
    for base, why in b.get("skipped", {}).items():
        lines.append(f"  no {base} baseline: {why}")
    return lines


def selection_lines(result: TwinResult) -> list[str]:
    """select_by: each candidate's best step, and the verdict there on the half that did not choose it."""
    sel = result.selection
    if not sel:
        return []
    metric = sel["metric"]
    steps = ", ".join(f"{n} {b['step']}" for n, b in sel["best"].items())
    lines = [
        (
            f"best step by {metric} (chosen on {sel['chosen_on']} validation examples, judged on the other "
            f"{sel['judged_on']}): {steps}"
        )
    ]
    word = {True: "better", False: "worse", None: "~"}
    parts = []
    for name, comp in sel.get("comparisons", {}).items():
        d = comp["val"].get(metric)
        if d and d.get("low") is not None:
            parts.append(f"{name} {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] {word[d['better']]}")
    if parts:
        lines.append(f"  Δ {metric} vs {result.reference} at their best steps (judging half): " + ", ".join(parts))
    stopped = [f"{n} at step {c.stopped_at}" for n, c in result.candidates.items() if c.stopped_at is not None]
    if stopped:
        lines.append(f"  stopped early (patience {sel['patience']}): " + ", ".join(stopped))
    return lines
