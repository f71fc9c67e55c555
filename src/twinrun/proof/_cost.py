"""The cost of deterministic mode, measured on the run's own candidates and batches.

``twinrun compare --determinism-cost`` measures it before training: a few
steps of *copies* of the candidates (models, optimizers and schedulers with
copied states, so the run itself is untouched), on the run's own first batches,
with deterministic mode off and on, interleaved, several times. The global
generators are untouched too (every step runs inside twinrun's streams). It
costs ``2 x repeats x steps`` extra training steps, which is why it is opt-in.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
import time
from typing import Any

import torch

from twinrun.engine import CandidateState, StepContext, TwinEngine
from twinrun.engine.parts import build_optimizer, build_scheduler
from twinrun.rng import deterministic_mode

__all__ = ["measure_determinism_cost"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _copy(state: CandidateState, steps: int) -> CandidateState:
    """An independent copy of a candidate: its model, a new optimizer and scheduler with copied states.

    (A deep copy of an optimizer is not independent: a scheduler patches
    ``optimizer.step`` with a closure that refers to the original optimizer.)
    """
    model = copy.deepcopy(state.model)
    optimizer = build_optimizer(state.spec, model)
    scheduler = build_scheduler(state.spec, optimizer, steps)
    optimizer.load_state_dict(copy.deepcopy(state.optimizer.state_dict()))
    if scheduler is not None and state.scheduler is not None:
        scheduler.load_state_dict(copy.deepcopy(state.scheduler.state_dict()))
    return dataclasses.replace(state, model=model, optimizer=optimizer, scheduler=scheduler)


def measure_determinism_cost(engine: TwinEngine, *, steps: int = 5, repeats: int = 3) -> dict[str, Any]:
    """Median seconds of ``steps`` training steps with deterministic mode off and on.

    Returns ``{"steps", "repeats", "seconds_off", "seconds_on", "relative"}``
    where ``relative = on / off - 1``. The first round is a warm-up and not counted.
    """
    steps = max(1, min(steps, engine.settings.steps))
    batches = [engine.prepared_batches(s)[0] for s in range(1, steps + 1)]
    timings: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(repeats + 1):
        for enabled in (False, True) if round_ % 2 == 0 else (True, False):
            copies = [_copy(state, engine.settings.steps) for state in engine.live]
            context = StepContext(engine.streams, [engine.device], engine.metrics, engine.settings.grad_clip)
            with deterministic_mode(enabled):
                _sync(engine.device)
                start = time.perf_counter()
                for step, prepared in enumerate(batches, start=1):
                    engine.executor.run_step(step, copies, prepared, context)
                _sync(engine.device)
                elapsed = time.perf_counter() - start
            if round_ > 0:
                timings[enabled].append(elapsed)
    off, on = statistics.median(timings[False]), statistics.median(timings[True])
    return {
        "steps": steps,
        "repeats": repeats,
        "seconds_off": off,
        "seconds_on": on,
        "relative": on / off - 1.0 if off > 0 else float("nan"),
    }
