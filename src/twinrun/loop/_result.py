"""A :class:`~twinrun.Twin` loop's result, in the engine's own type: what the registry, ``show``, ``diff`` and the
report read for a ``compare`` run, they read for your loop too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from twinrun.engine import CandidateResult, Comparison, TwinResult, compare_candidates

if TYPE_CHECKING:
    from twinrun.loop._twin import Twin

__all__ = ["twin_result"]


def twin_result(twin: Twin, verdict: dict[str, Comparison] | None = None) -> TwinResult | None:
    """The loop's :class:`TwinResult` from its last evaluation (``evaluate`` or ``verdict``): each candidate's
    final metrics, curves and per-example values, and the paired verdict (``verdict``: the one just made,
    else computed from the last evaluation). ``None`` before any evaluation."""
    history = twin.history
    if not history.last_eval:
        return None
    steps = history.step
    reference = next(iter(twin.states))
    candidates: dict[str, CandidateResult] = {}
    for name, state in twin.states.items():
        last = history.last_eval.get(name)
        status = "finished" if state.diverged_at is None else ("failed" if state.error else "diverged")
        candidates[name] = CandidateResult(
            name,
            status,
            last.means() if last is not None else {},
            last.per_example if last is not None else {},
            history.train_loss[name][:steps].copy(),
            {m: v[:steps].copy() for m, v in history.train_metrics[name].items()},
            list(history.eval_history[name]),
            diverged_at=state.diverged_at,
            n_parameters=sum(p.numel() for p in state.model.parameters()),
            step_seconds=history.step_seconds.get(name, 0.0),
            config=dict(twin.config["candidates"][name]),
            error=state.error,
        )
    goals = {"loss": False, **{k: m.higher_is_better for k, m in twin.metrics.items()}}
    if verdict is None:
        evaluated = {n: c for n, c in candidates.items() if c.per_example}
        verdict = compare_candidates(evaluated, reference, goals, seed=0) if reference in evaluated else {}
    devices: Any = ",".join(map(str, twin.devices)) or "cpu"
    return TwinResult(
        run_id=twin.run_id,
        experiment="twin",
        reference=reference,
        seed=twin.streams.seed,
        steps=steps,
        device=devices,
        metric_goals=goals,
        candidates=candidates,
        comparisons=dict(verdict),
        init=twin.init,
        output_kind="unknown",
        config=dict(twin.config),
        timing={"train": float(np.sum(list(history.step_seconds.values())))},
    )
