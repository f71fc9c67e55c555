"""The engine's complete state after a step, and how to load it back: exact resume.

What continuing bit-identically needs, and where it comes from:

* models, optimizers, schedulers: their ``state_dict``;
* the data position: the step alone (the batch of step ``t`` is a pure
  function of the seed and ``t``, so resuming mid-epoch is exact);
* twinrun's random streams: nothing (each is a pure function of seed, name
  and step);
* the global generators, which code outside the streams may use: their states
  (Python, NumPy, torch CPU, every CUDA device in use);
* the histories behind the verdict: per-step losses and metrics, evaluations,
  diverged candidates, timings.

The state holds only tensors, numbers, strings, lists and dicts, so a
checkpoint of it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from twinrun.errors import CheckpointError
from twinrun.rng import capture_global_rng, restore_global_rng

if TYPE_CHECKING:
    from twinrun.engine._build import CandidateState
    from twinrun.engine._loop import TwinEngine

__all__ = ["STATE_VERSION", "engine_state", "load_engine_state", "load_parts", "parts_state"]

STATE_VERSION = 1


def _is_dtensor(obj: Any) -> bool:
    return isinstance(obj, torch.Tensor) and hasattr(obj, "placements") and callable(getattr(obj, "to_local", None))


def _clone_tree(obj: Any) -> Any:
    if _is_dtensor(obj):  # FSDP: this rank's shard, a plain tensor (a checkpoint loads without code)
        return obj.to_local().detach().clone()
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone_tree(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clone_tree(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_clone_tree(v) for v in obj)
    return copy.deepcopy(obj)


def parts_state(state: CandidateState) -> dict[str, Any]:
    """A copy of a candidate's ``model``, ``optimizer`` and ``scheduler`` states (the engine's and ``Twin``'s)."""
    scheduler = state.scheduler
    return {
        "model": _clone_tree(state.model.state_dict()),
        "optimizer": _clone_tree(state.optimizer.state_dict()),
        "scheduler": _clone_tree(scheduler.state_dict())
        if scheduler is not None and hasattr(scheduler, "state_dict")
        else None,
    }


def _like(local: Any, template: Any) -> Any:
    """A saved shard back as the ``DTensor`` ``template`` is (same mesh and placements), else as it is."""
    if not _is_dtensor(template) or not isinstance(local, torch.Tensor):
        return local
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(
        local, template.device_mesh, template.placements, shape=template.shape, stride=template.stride()
    )


def _sharded(target: CandidateState, saved: dict[str, Any]) -> dict[str, Any]:
    """``saved`` with each FSDP shard put back into a ``DTensor`` like the live parameter it belongs to."""
    params = [p for group in target.optimizer.param_groups for p in group["params"]]
    if not any(_is_dtensor(p) for p in params):
        return saved
    live = target.model.state_dict()
    model = {k: _like(v, live.get(k)) for k, v in saved["model"].items()}
    optimizer = dict(saved["optimizer"])
    optimizer["state"] = {
        i: {k: v if k == "step" else _like(v, params[int(i)]) for k, v in entry.items()}
        for i, entry in saved["optimizer"]["state"].items()
    }
    return {**saved, "model": model, "optimizer": optimizer}


def load_parts(target: CandidateState, saved: dict[str, Any]) -> None:
    """Load :func:`parts_state` back; raises what ``load_state_dict`` raises on a misfit (callers name it)."""
    saved = _sharded(target, saved)
    target.model.load_state_dict(saved["model"])
    target.optimizer.load_state_dict(saved["optimizer"])
    if saved["scheduler"] is not None and target.scheduler is not None:
        target.scheduler.load_state_dict(saved["scheduler"])


def engine_state(engine: TwinEngine) -> dict[str, Any]:
    """A copy of everything :func:`load_engine_state` needs to continue ``engine`` exactly."""
    candidates: dict[str, Any] = {}
    for name, state in engine.states.items():
        candidates[name] = {
            **parts_state(state),
            "diverged_at": state.diverged_at,
            "stopped_at": state.stopped_at,
            "diverged_value": state.diverged_value,
            "error": state.error,
            **engine.history.candidate_state(name),
        }
    return {
        "version": STATE_VERSION,
        "step": engine.step,
        "run_id": engine.run_id,
        "experiment": engine.resolved.name,
        "config_hash": engine.resolved.config_hash(),
        "candidates": candidates,
        "timing": {k: float(v) for k, v in engine.history.timing.items()},
        "world": {"size": engine.world.size, "rank": engine.world.rank} if engine.world is not None else None,
        "global_rng": capture_global_rng(),
        **({"baselines": engine.baselines.state_dict()} if engine.baselines is not None else {}),
        **({"selection": engine.selection.state_dict()} if engine.selection is not None else {}),
    }


def _fit(values: torch.Tensor, steps: int) -> np.ndarray:
    """A history array of length ``steps`` (a forced resume may have changed ``steps``)."""
    out = np.full(steps, np.nan)
    old = values.numpy()
    n = min(steps, old.shape[0])
    out[:n] = old[:n]
    return out


def load_engine_state(engine: TwinEngine, state: dict[str, Any]) -> None:
    """Load a state from :func:`engine_state` into a freshly built ``engine``.

    Side effect (deliberate, this is what resuming means): the global
    generators are put back into the states they had at that step.

    Raises:
        CheckpointError: the state belongs to another experiment or other candidates.
    """
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(
            f"the engine state has version {state.get('version')!r}; this twinrun reads {STATE_VERSION}",
            fix="resume with the twinrun version that wrote the checkpoint",
        )
    if state["experiment"] != engine.resolved.name:
        raise CheckpointError(
            f"the checkpoint belongs to experiment {state['experiment']!r}, not {engine.resolved.name!r}",
            fix="resume with the experiment file the checkpoint was written by",
        )
    world = {"size": engine.world.size, "rank": engine.world.rank} if engine.world is not None else None
    if state.get("world") != world:  # each rank's state is its own, and the shards depend on the world size

        def described(w: Any) -> str:
            return "one process" if not w else f"rank {w['rank']} of {w['size']}"

        raise CheckpointError(
            f"the checkpoint was written by {described(state.get('world'))}; this is {described(world)}",
            fix=(
                f"resume with the same launch: torchrun --nproc_per_node {state['world']['size']}"
                if state.get("world")
                else "resume without torchrun"
            ),
        )
    saved, built = sorted(state["candidates"]), sorted(engine.states)
    if saved != built:
        raise CheckpointError(
            f"the checkpoint holds candidates {saved} but this run builds {built}",
            fix=f"resume with --candidates {','.join(saved)}",
        )
    steps = engine.settings.steps
    for name, saved_state in state["candidates"].items():
        target = engine.states[name]
        try:
            load_parts(target, saved_state)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(
                f"candidate {name!r}: the checkpoint's weights or optimizer state do not fit the "
                f"model built now: {exc}",
                fix="resume with the same experiment file and overrides the checkpoint was written with",
            ) from exc
        target.diverged_at = saved_state["diverged_at"]
        target.diverged_value = saved_state["diverged_value"]
        target.stopped_at = saved_state.get("stopped_at")
        target.error = saved_state.get("error")
        engine.history.train_loss[name] = _fit(saved_state["train_loss"], steps)
        engine.history.train_metrics[name] = {m: _fit(v, steps) for m, v in saved_state["train_metrics"].items()}
        # an evaluation off the schedule is the end of a run now longer (--extend): a run planned this long
        # from the start did not make it
        engine.history.eval_history[name] = [
            (int(s), dict(v))
            for s, v in saved_state["eval_history"]
            if int(s) % engine.settings.eval_every == 0 or int(s) >= steps
        ]
        engine.history.step_seconds[name] = float(saved_state["step_seconds"])
    if engine.selection is not None and state.get("selection") is not None:
        engine.selection.load_state_dict(state["selection"])
    if engine.baselines is not None and state.get("baselines") is not None:
        engine.baselines.load_state_dict(state["baselines"])
    engine.history.timing.update(state["timing"])
    engine.history.step = int(state["step"])
    restore_global_rng(state["global_rng"])
