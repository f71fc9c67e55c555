"""What a run hands back: its :class:`TwinResult`, built from the engine's histories at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from twinrun.engine._data_facts import coverage_warning
from twinrun.engine._memory import process_peak_rss_bytes
from twinrun.engine._result import CandidateResult, TwinResult
from twinrun.engine._verdict import baseline_report, compare_at_best, compare_candidates

if TYPE_CHECKING:
    from twinrun.engine._loop import TwinEngine

__all__ = ["build_result"]


def build_result(engine: TwinEngine) -> TwinResult:
    """The result of ``engine``'s run: every candidate, the verdicts, baselines, selection and facts."""
    candidates: dict[str, CandidateResult] = {}
    for name, state in engine.states.items():
        last = engine.history.last_eval.get(name)
        candidates[name] = CandidateResult(
            name=name,
            status="finished" if state.diverged_at is None else ("failed" if state.error else "diverged"),
            error=state.error,
            final=last.means() if last and state.diverged_at is None else {},
            per_example=last.per_example if last else {},
            train_loss=engine.history.train_loss[name],
            train_metrics=engine.history.train_metrics[name],
            eval_history=engine.history.eval_history[name],
            outputs=last.outputs if last and state.diverged_at is None else None,
            diverged_at=state.diverged_at,
            n_parameters=state.n_parameters,
            step_seconds=engine.history.step_seconds[name],
            config=state.spec.to_config(),
            test=dict(engine.history.test_scores.get(name, {})),
            stopped_at=state.stopped_at,
            **_best(engine, name),
        )
    comparisons = compare_candidates(
        candidates, engine.resolved.reference, engine.metric_goals, seed=engine.settings.seed
    )
    memory: dict[str, Any] = dict(engine.meter.report()) if engine.meter and engine._measured else {}
    estimates = getattr(engine.executor, "estimates", None)
    if estimates:
        memory["vectorised_estimate_bytes"] = dict(estimates)
    memory["process_peak_rss_bytes"] = process_peak_rss_bytes()
    cuda = [d for d in engine.placement.devices if d.type == "cuda"]
    if cuda:
        memory["cuda_max_allocated_bytes"] = int(torch.cuda.max_memory_allocated(cuda[0]))
    if len(cuda) > 1:
        memory["cuda_max_allocated_bytes_by_device"] = {str(d): int(torch.cuda.max_memory_allocated(d)) for d in cuda}
    targets = [b[1] for b in engine.val.batches]
    val_targets = torch.cat(targets) if all(isinstance(t, torch.Tensor) for t in targets) else None
    return TwinResult(
        run_id=engine.run_id,
        experiment=engine.resolved.name,
        reference=engine.resolved.reference,
        seed=engine.settings.seed,
        steps=engine.step,
        device=engine.placement.label,
        metric_goals=dict(engine.metric_goals),
        candidates=candidates,
        comparisons=comparisons,
        init=engine.init,
        output_kind=engine.output_kind,
        val_targets=val_targets,
        memory=memory,
        timing={k: round(v, 6) for k, v in engine.history.timing.items()},
        config=engine.resolved.to_config(),
        warnings=[*engine.resolved.warnings, *filter(None, [coverage_warning(engine.data_facts["epoch"])])],
        data=engine.data_facts,
        baselines=baseline_report(
            candidates,
            engine.history.baseline_evals,
            engine.metric_goals,
            {} if engine.baselines is None else engine.baselines.skipped,
            dict(engine.resolved.reference_scores),
        )
        if engine.settings.baselines
        else {},
        reproducibility={"deterministic": engine.settings.deterministic, "switches": dict(engine.determinism)},
        execution=engine.execution_report(),
        selection=_selection(engine, candidates),
    )


def _best(engine: TwinEngine, name: str) -> dict[str, Any]:
    best = engine.selection.best.get(name) if engine.selection is not None else None
    if best is None:
        return {}
    return {
        "best": {"step": best.step, "value": best.value, "metric": engine.selection.metric},  # type: ignore[union-attr]
        "best_state": best.state,
    }


def _selection(engine: TwinEngine, candidates: dict[str, CandidateResult]) -> dict[str, Any]:
    """The best steps, and the verdict at them on the judging half (``_selection``); {} without select_by."""
    sel = engine.selection
    if sel is None:
        return {}
    held = {
        n: sel.held_out(sel.best[n].per_example)
        for n, c in candidates.items()
        if c.status == "finished" and n in sel.best
    }
    comparisons = compare_at_best(
        held, engine.resolved.reference, engine.metric_goals, {n: sel.best[n].step for n in held}
    )
    return {**sel.report(), "comparisons": {n: c.to_dict() for n, c in comparisons.items()}}
