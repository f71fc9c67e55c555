"""Check 8, ``lr_schedule``: simulate the scheduler over the planned steps.

A copy of the optimizer and scheduler is stepped exactly as a run steps them
(once per update, ``steps`` times) and the learning rate of each update is
recorded. Flags:

* collapse: the rate falls below 1% of its working value before half of training
  (``StepLR(step_size=30)`` meant per epoch but stepped per batch);
* a configured warm-up that does not happen (the rate starts at full value, or
  reaches it much later than configured);
* a long tail at ~zero (a cosine whose ``total_steps`` is shorter than the run);
* a scheduler that raises before the run ends (``OneCycleLR`` with too few steps).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import torch

from twinrun.checks._context import CheckContext
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult, Status

__all__ = ["CHECK", "configured_warmup", "simulate_schedule", "working_lrs"]

NAME = "lr_schedule"


def simulate_schedule(
    scheduler: Any, optimizer: torch.optim.Optimizer, steps: int
) -> tuple[np.ndarray, str | None, int]:
    """Learning rates ``[steps, groups]`` used by updates 1..steps, the error raised (if any) and when."""
    lrs = np.full((steps, len(optimizer.param_groups)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "lr_scheduler.step() before optimizer.step()"
        for t in range(steps):
            lrs[t] = [float(g["lr"]) for g in optimizer.param_groups]
            try:
                scheduler.step()
            except Exception as exc:  # noqa: BLE001  (the run would crash right after update t + 1)
                if t + 1 < steps:
                    return lrs[: t + 1], f"{type(exc).__name__}: {exc}", t + 1
    return lrs, None, steps


def working_lrs(ctx: CheckContext, limit: int = 10_000) -> list[float]:
    """Each param group's working learning rate: its peak over the run's schedule.

    That is the configured rate without a scheduler, the rate after warm-up with one, and
    ``max_lr`` for cyclic and one-cycle schedules (which overwrite the optimizer's rate).
    """

    def compute() -> list[float]:
        state = ctx.fresh()
        current = [float(g["lr"]) for g in state.optimizer.param_groups]
        if state.scheduler is None or isinstance(state.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            return [float(g.get("initial_lr", lr)) for g, lr in zip(state.optimizer.param_groups, current)]
        lrs, _, _ = simulate_schedule(state.scheduler, state.optimizer, min(ctx.settings.steps, limit))
        return [float(v) for v in np.nanmax(lrs, axis=0)]

    return cast("list[float]", ctx.cached(("working_lrs", limit), compute))


#: scheduler keywords that name the number of updates a schedule is built for
_HORIZON_KEYS = (
    "total_steps",
    "num_training_steps",
    "max_steps",
    "total_iters",
    "T_max",
    "t_total",
    "num_steps",
    "training_steps",
    "steps",
)


def schedule_horizon(ctx: CheckContext) -> tuple[str, int] | None:
    """``(keyword, value)`` of the scheduler factory's horizon (``total_steps=300``...), if it has one."""
    spec = ctx.state.spec.scheduler
    if spec is None:
        return None
    for key in _HORIZON_KEYS:
        value = spec.kwargs.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return key, value
    return None


def warmup_end(ctx: CheckContext, limit: int = 10_000) -> int:
    """The update at which the simulated learning rate first reaches half of its peak (0: no warm-up).

    Checks that train a copy for a short while count their steps from there: inside a warm-up,
    little change is expected and a verdict would be about the schedule, not the model.
    """

    def compute() -> int:
        state = ctx.fresh()
        if state.scheduler is None or isinstance(state.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            return 0
        lrs, _, _ = simulate_schedule(state.scheduler, state.optimizer, min(ctx.settings.steps, limit))
        per_step = np.nanmax(lrs, axis=1)
        if not np.isfinite(per_step).any():
            return 0
        peak = float(np.nanmax(per_step))
        reached = np.nonzero(per_step >= 0.5 * peak)[0]
        return int(reached[0]) if reached.size else 0

    return cast("int", ctx.cached(("warmup_end", limit), compute))


def configured_warmup(ctx: CheckContext, declared: int | None) -> tuple[int | None, str]:
    """The warm-up length: declared, or read from a scheduler keyword with 'warmup' in its name."""
    if declared is not None:
        return declared, "declared"
    spec = ctx.state.spec.scheduler
    if spec is None:
        return None, "none"
    for key, value in spec.kwargs.items():
        if "warmup" in key.lower() and isinstance(value, int) and not isinstance(value, bool):
            return value, f"scheduler keyword {key}={value}"
    try:
        parameters = inspect.signature(spec.fn).parameters.values()
    except (TypeError, ValueError):
        return None, "none"
    for p in parameters:
        if "warmup" in p.name.lower() and isinstance(p.default, int) and not isinstance(p.default, bool):
            return p.default, f"scheduler default {p.name}={p.default}"
    return None, "none"


def check_lr_schedule(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    if ctx.state.scheduler is None:
        return CheckResult(
            NAME, "skip", "no scheduler", "-", "The candidate has no learning-rate scheduler: the rate is constant.", ""
        )
    if isinstance(ctx.state.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return CheckResult(
            NAME,
            "skip",
            "ReduceLROnPlateau",
            "-",
            "This scheduler follows a validation metric, so its schedule cannot be simulated.",
            "",
        )
    steps = opts["steps"] or ctx.settings.steps
    state = ctx.fresh()
    lrs, error, ran = simulate_schedule(state.scheduler, state.optimizer, steps)
    frac = opts["collapse_fraction"]
    half = max(1, steps // 2)
    warmup, warmup_source = configured_warmup(ctx, opts["warmup_steps"])
    groups: list[dict[str, Any]] = []
    problems: list[tuple[str, str, str]] = []  # status, explanation, fix
    horizon = schedule_horizon(ctx)
    if horizon is not None and horizon[1] > ctx.settings.steps:  # shorter horizons: the collapse checks below
        key, planned = horizon
        end_ratio = float(np.nanmax(lrs[-1]) / max(float(np.nanmax(lrs)), 1e-30))
        problems.append(
            (
                "warn",
                (
                    f" The schedule is built for {planned} updates ({key}={planned}) but the run makes "
                    f"{ctx.settings.steps}: "
                    "it ends at "
                    f"{end_ratio:.0%} of the peak rate instead of where the schedule would bring it "
                    "(a --set steps=N without the schedule's horizon)."
                ),
                f"set the schedule's horizon to the run's steps: --set scheduler.{key}={ctx.settings.steps}",
            )
        )
    for g in range(lrs.shape[1]):
        lr = lrs[:, g]
        first = lr[: min(half, len(lr))]
        peak_at = int(np.argmax(first))
        ref = float(first[peak_at])
        info: dict[str, Any] = {
            "group": g,
            "start": float(lr[0]),
            "peak": ref,
            "peak_at": peak_at + 1,
            "end": float(lr[-1]),
            "min": float(lr.min()),
        }
        groups.append(info)
        if ref <= 0 or not math.isfinite(ref):
            problems.append(
                (
                    "fail",
                    f" Param group {g}: the learning rate is {ref} over the first half of training.",
                    "give the optimizer a positive learning rate",
                )
            )
            continue
        after_peak = lr[peak_at:half]
        # collapsed: from some update on, the rate stays below frac * peak through half-time
        # (a cyclic schedule's brief troughs do not count)
        stays_low = np.maximum.accumulate(after_peak[::-1])[::-1] < frac * ref
        low = np.flatnonzero(stays_low)
        if low.size:
            at = peak_at + int(low[0]) + 1
            info["collapse_at"] = at
            problems.append(
                (
                    "fail",
                    (
                        f" Param group {g}: the rate falls from {ref:.3g} to {lr[at - 1]:.3g} (< {frac:.0%}) at update "
                        f"{at} of {steps}, before half of training; the rest of the run barely learns. A scheduler "
                        "meant per epoch but stepped per batch (twinrun steps it once per update), or a "
                        "total/step size shorter than the run, does this."
                    ),
                    (
                        "size the scheduler in updates, not epochs: multiply step_size/T_max/total_steps by the "
                        f"batches per epoch ({ctx.data.plan.batches_per_epoch}), or make total_steps = steps ({steps})"
                    ),
                )
            )
        tail = float(np.mean(lr[peak_at:] < frac * ref)) if len(lr) > peak_at else 0.0
        info["tail_fraction"] = tail
        if not low.size and tail > opts["max_tail"]:
            problems.append(
                (
                    "warn",
                    (
                        f" Param group {g}: {tail:.0%} of the updates after the peak run below {frac:.0%} of it; "
                        "that part of training is wasted."
                    ),
                    f"end the schedule at the last update: total_steps = steps ({steps})",
                )
            )
        if warmup:
            reach = np.flatnonzero(lr >= 0.95 * ref)
            reached = int(reach[0]) + 1 if reach.size else None
            info.update(warmup=warmup, warmup_source=warmup_source, reaches_peak_at=reached)
            if lr[0] >= 0.95 * ref:
                problems.append(
                    (
                        "fail",
                        (
                            f" Param group {g}: a warm-up of {warmup} updates is configured "
                            f"({warmup_source}) but the first "
                            f"update already uses {lr[0]:.3g}, the full rate: the warm-up never happens."
                        ),
                        "check the warm-up formula: the factor at update 0 should be about 1/warmup",
                    )
                )
            elif reached is None or reached > 2 * warmup + 1:
                when = f"only at update {reached}" if reached else "never"
                problems.append(
                    (
                        "fail",
                        (
                            f" Param group {g}: a warm-up of {warmup} updates is configured "
                            f"({warmup_source}) but the rate "
                            f"reaches {ref:.3g} {when}."
                        ),
                        "check the warm-up length the scheduler actually uses (units: updates, not epochs)",
                    )
                )
    if error is not None:
        problems.insert(
            0,
            (
                "fail",
                (f" The scheduler raises after update {ran} of {steps}: {error}. The run would crash there."),
                f"size the scheduler for {steps} updates (e.g. OneCycleLR(total_steps={steps}))",
            ),
        )
    g0 = groups[0]
    measured = f"{g0['start']:.3g} -> peak {g0['peak']:.3g} (update {g0['peak_at']}) -> {g0['end']:.3g} at update {ran}"
    if "collapse_at" in g0:
        measured += f"; < {frac:.0%} of peak at update {g0['collapse_at']}"
    expected = f"no collapse below {frac:.0%} of the peak before update {half}" + (
        f"; warm-up over {warmup} updates" if warmup else ""
    )
    explanation = (
        f"A copy of the optimizer and scheduler was stepped {steps} times, once per update as a run does, "
        f"recording the learning rate of each update."
    )
    details = {
        "steps": steps,
        "groups": groups,
        "error": error,
        "lr": [round(float(v), 10) for v in lrs[:, 0][:: max(1, steps // 200)]],
    }
    if not problems:
        return CheckResult(
            NAME, "pass", measured, expected, explanation + " The schedule looks as configured.", details=details
        )
    status: Status = "fail" if any(p[0] == "fail" for p in problems) else "warn"
    return CheckResult(
        NAME,
        status,
        measured,
        expected,
        explanation + "".join(p[1] for p in problems),
        "; ".join(dict.fromkeys(p[2] for p in problems)),
        details=details,
    )


CHECK = Check(
    name=NAME,
    title="the learning-rate schedule over the planned steps",
    fn=check_lr_schedule,
    options={
        "steps": Option(None, "updates to simulate (default: the experiment's steps)", types=(int,), nullable=True),
        "warmup_steps": Option(
            None,
            "the intended warm-up length in updates (default: read from a scheduler keyword containing 'warmup')",
            types=(int,),
            nullable=True,
        ),
        "collapse_fraction": Option(0.01, "a rate below this fraction of the peak counts as collapsed"),
        "max_tail": Option(0.25, "largest fraction of updates after the peak allowed below collapse_fraction"),
    },
)
