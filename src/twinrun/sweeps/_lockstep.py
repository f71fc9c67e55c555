"""Seeds of an in-process sweep stepped together: the replicas of one architecture in one batched step.

Each seed runs the very function a seed's process runs (``run_task_steps``, a
generator of step requests; see ``engine/_drive``). This driver starts every
seed, then answers their requests step by step: the candidates of all seeds at
the same step go to one :class:`~twinrun.engine.VectorisedExecutor` call, which
batches same-architecture candidates across seeds (a candidate's replicas)
with ``vmap``, each replica drawing its own dropout masks, and steps the rest
one at a time. Every seed keeps its own run folder, registry row, ledger,
checkpoints and outcome, exactly as one after another.

What one seed would see alone is kept apart: Python's, NumPy's and torch's
global generators are swapped per seed around each of its turns (each starts
seeded from its seed, as the one-at-a-time backend does), and the caller's are
restored at the end. Ctrl-C: one stop request for every seed (each stops at the
end of its step, with a final checkpoint); a second one stops them at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import torch

from twinrun._interrupt import StopRequest, stop_on_signals
from twinrun.engine.parts import Member, StepRequest, VectorisedExecutor, batch_for
from twinrun.rng import isolated_global_rng
from twinrun.spec import parse_bytes
from twinrun.sweeps._task import SeedOutcome, SeedTask

__all__ = ["lockstep_allowed", "run_lockstep"]


def _globals() -> tuple[Any, ...]:
    return random.getstate(), np.random.get_state(), torch.random.get_rng_state()


def _set_globals(state: tuple[Any, ...]) -> None:
    random.setstate(state[0])
    np.random.set_state(state[1])
    torch.random.set_rng_state(state[2])


@dataclass
class _Seed:
    task: SeedTask
    log: IO[str]
    steps: Generator[StepRequest, Any, int]
    world: tuple[Any, ...]  # this seed's global generators between its turns
    started: float = field(default_factory=time.monotonic)
    request: StepRequest | None = None
    code: int | None = None

    def advance(self, value: Any, *, throw: BaseException | None = None) -> None:
        """Run this seed to its next step request (or its end), in its own global-generator world."""
        outside = _globals()
        _set_globals(self.world)
        try:
            if throw is not None:
                self.request = self.steps.throw(throw)
            elif value is None and self.request is None:
                self.request = next(self.steps)
            else:
                self.request = self.steps.send(value)
        except StopIteration as done:
            self.request, self.code = None, int(done.value)
        finally:
            self.world = _globals()
            _set_globals(outside)


def lockstep_allowed(task: SeedTask) -> bool:
    """Whether the seeds of ``task``'s sweep can be stepped together: not with ``deterministic`` (its
    switches are process-wide, entered and left by each run) nor ``executor='sequential'`` (one at a
    time by request). A sweep whose experiment fails to load goes one at a time: each seed reports it."""
    from twinrun.engine import detect_world
    from twinrun.spec import load_experiment, parse_overrides, resolve

    if detect_world() is not None:  # under torchrun each seed is a data-parallel run, stepped by its own DDP
        return False
    try:
        resolved = resolve(
            load_experiment(task.experiment),
            {**parse_overrides(list(task.overrides)), "seed": task.seed},
            candidates=list(task.candidates),
            reference=task.reference,
        )
    except Exception:  # noqa: BLE001 - reported by the seed's own run
        return False
    return not resolved.settings.deterministic and resolved.settings.executor != "sequential"


def run_lockstep(tasks: Sequence[SeedTask], on_outcome: Callable[[SeedOutcome], None]) -> None:
    """Run ``tasks`` (seeds) together in this process; ``on_outcome`` hears each as it ends."""
    from twinrun.sweeps._process import _outcome
    from twinrun.sweeps._worker import run_task_steps

    stop = StopRequest()
    seeds: list[_Seed] = []
    executor: list[VectorisedExecutor] = []  # made from the first request's settings
    try:
        with stop_on_signals(stop):
            for task in tasks:
                task.seed_dir.mkdir(parents=True, exist_ok=True)
                task.outcome_path.unlink(missing_ok=True)
                with isolated_global_rng(task.seed):
                    world = _globals()
                log = open(task.log_path, "a")  # noqa: SIM115 - open while the seed lives, closed in _finish
                seed = _Seed(task, log, run_task_steps(task, log=log, stop=stop), world)
                seeds.append(seed)
                seed.advance(None)
                _finish_if_done(seed, on_outcome, _outcome)
            while any(s.request is not None for s in seeds):
                pending = [s for s in seeds if s.request is not None]
                if not executor:
                    settings = pending[0].request.engine.settings  # type: ignore[union-attr]
                    executor.append(VectorisedExecutor(settings.executor, budget=parse_bytes(settings.memory_budget)))
                _step_together(pending, executor[0])
                for seed in seeds:
                    _finish_if_done(seed, on_outcome, _outcome)
    except BaseException as exc:  # a second Ctrl-C, outside a seed: every seed records it and ends
        for seed in seeds:
            if seed.request is not None:
                seed.advance(None, throw=exc if isinstance(exc, KeyboardInterrupt) else KeyboardInterrupt())
                _finish_if_done(seed, on_outcome, _outcome)
        raise
    finally:
        for seed in seeds:
            seed.log.close()
    if any(s.code == 130 for s in seeds):  # the seeds were interrupted: so is the sweep
        raise KeyboardInterrupt("the sweep was interrupted")


def _finish_if_done(seed: _Seed, on_outcome: Callable[[SeedOutcome], None], outcome: Any) -> None:
    if seed.request is None and seed.code is not None and not seed.log.closed:
        seed.log.close()
        on_outcome(outcome(seed.task, seed.code, time.monotonic() - seed.started))


def _step_together(seeds: Sequence[_Seed], executor: VectorisedExecutor) -> None:
    """Answer every pending request: one executor call per step number, then each seed goes on."""
    by_step: dict[int, list[_Seed]] = {}
    for seed in seeds:
        assert seed.request is not None
        by_step.setdefault(seed.request.step, []).append(seed)
    answers: dict[int, dict[str, Any]] = {}
    for step, group in sorted(by_step.items()):
        members = []
        for seed in group:
            request = seed.request
            assert request is not None
            members += [
                Member(state, batch_for(request.batches, state), request.context, f"{state.name}@{seed.task.seed}")
                for state in request.candidates
            ]
        outputs = executor.run_members(step, members)
        for member, out in zip(members, outputs):
            answers.setdefault(id(member.context), {})[member.state.name] = out
        for seed in group:
            request = seed.request
            assert request is not None
            request.engine.execution = {s.name: executor.how.get(id(s), "sequential") for s in request.candidates}
    for seed in seeds:
        assert seed.request is not None
        seed.advance(answers[id(seed.request.context)])
