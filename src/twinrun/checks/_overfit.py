"""Check 3, ``overfit_batch``: a handful of examples must be fit to (nearly) zero loss within a step budget."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from twinrun.checks._context import CheckContext
from twinrun.checks._floors import (
    loss_floor,
    perfect_prediction_loss,
    units_of,
)
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult
from twinrun.checks._schedule import working_lrs
from twinrun.checks._training import probe_losses

__all__ = ["OVERFIT"]


# ---------------------------------------------------------------------- 3
def check_overfit_batch(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    name = "overfit_batch"
    k = max(1, min(opts["examples"], ctx.settings.batch_size))
    batch = ctx.gather("train", [int(i) for i in ctx.data.plan.indices(1)[:k]])  # from the first batch
    state = dataclasses.replace(ctx.fresh(), scheduler=None)
    lrs = working_lrs(ctx)
    for group, lr in zip(state.optimizer.param_groups, lrs):
        group["lr"] = lr
    x, y = batch
    start = float(np.mean(probe_losses(ctx, state, batch, 0)))
    units = units_of(state, x)
    floor = loss_floor(ctx, y, units)
    estimated = None
    if ctx.loss_kind is None:
        estimated = perfect_prediction_loss(ctx, state, batch)
        floor = estimated if estimated is not None else floor
    tolerance = 0.25 if estimated is not None else 0.2  # an estimated floor is only near what can be reached
    target = floor + opts["target"] * max(start - floor, 0.0)
    history: list[tuple[int, float]] = [(0, start)]
    reached: int | None = None
    best = start
    # past the budget, training goes on while the loss still falls (a small GPT needs ~550 steps),
    # up to 4x the budget: it stops at a plateau, where a longer budget would not change the verdict
    cap = 4 * opts["steps"]
    window = 5 * opts["check_every"]
    for step in range(1, cap + 1):
        out = ctx.train(state, step, batch)
        if not out.finite:
            history.append((step, out.loss))
            best = math.nan
            break
        if step % opts["check_every"] == 0 or step == opts["steps"]:
            value = float(np.mean(probe_losses(ctx, state, batch, step)))
            history.append((step, value))
            best = min(best, value)
            if value <= target:
                reached = step
                break
            if step >= opts["steps"] and not _still_falling(history, window, 0.02 * max(start - floor, 1e-12), floor):
                break
    details = {
        "examples": k,
        "loss_start": start,
        "loss_best": best,
        "target": target,
        "floor": floor,
        "floor_estimated": estimated is not None,
        "reached_at": reached,
        "budget": opts["steps"],
        "ran": history[-1][0],
        "lr": lrs,
        "history": history,
    }
    measured = (
        f"{start:.4g} -> {best:.4g} in {reached} steps"
        if reached
        else f"{start:.4g} -> {best:.4g} after {history[-1][0]} steps"
    )
    expected = (
        f"<= {target:.3g} ({opts['target']:.0%} of the way from the start to {floor:.3g}) within "
        f"{opts['steps']} steps (longer while the loss still falls, up to {cap})"
    )
    explanation = (
        f"A copy of the model was trained on the same {k} training examples over and over (no augmentation, "
        f"no scheduler, the schedule's peak learning rate {_fmt_lrs(lrs)}), measuring their loss in eval mode every "
        f"{opts['check_every']} steps: {start:.4g} at the start, {best:.4g} at best."
    )
    if reached is not None:
        return CheckResult(
            name,
            "pass",
            measured,
            expected,
            explanation + (" A network that can fit anything should memorise a few examples, and this one does."),
            details=details,
        )
    if not math.isfinite(best):
        return CheckResult(
            name,
            "fail",
            measured,
            expected,
            explanation
            + (
                f" The loss became non-finite after {history[-1][0]} steps: training on a few examples at this "
                "learning rate diverges."
            ),
            "lower the learning rate (lr_range names a working range) or clip gradients (--set grad_clip=1.0)",
            details=details,
        )
    if (
        estimated is not None
        and math.isfinite(best)
        and best <= floor + tolerance * max(start - floor, 0.0)
        and best < start
    ):
        return CheckResult(
            name,
            "pass",
            measured,
            expected,
            explanation
            + (
                f" The loss is not one whose floor is known, so its floor was estimated as the loss of a perfect "
                f"prediction (the targets in place of the model's prediction): {floor:.4g}. The loss came "
                f"{(start - best) / max(start - floor, 1e-12):.0%} of the way there and stopped falling, as far as "
                "a loss with other terms (a KL, a penalty) or sampling inside the model lets it: the network "
                "memorises."
            ),
            details=details,
        )
    if math.isfinite(best) and best <= floor + tolerance * max(start - floor, 0.0):
        return CheckResult(
            name,
            "warn",
            measured,
            expected,
            explanation + (" It gets most of the way but not to nearly zero within the budget."),
            f"raise the budget (--check-option {name}.steps=1000) or the learning rate; if it still stalls, "
            "look for a bounded output (sigmoid/tanh/softmax before the loss) or strong regularisation",
            details=details,
        )
    return CheckResult(
        name,
        "fail",
        measured,
        expected,
        explanation
        + (
            " The network cannot even memorise a few examples, so something between the output and the loss "
            "is broken: outputs squashed before the loss (softmax, sigmoid or tanh before cross-entropy), a "
            "loss on the wrong targets or shapes, a learning rate far too small or large, or a model too "
            "constrained (e.g. a 1-unit bottleneck)."
        ),
        "remove any activation after the final layer (the loss applies it), check the loss arguments' "
        "order and shapes, and try a learning rate 10x larger or smaller",
        details=details,
    )


def _still_falling(history: list[tuple[int, float]], window: int, by: float, floor: float = 0.0) -> bool:
    """Whether the loss fell over the last ``window`` steps of ``history`` by more than ``by`` or by more
    than a twentieth of what is left above ``floor`` (near the floor, steps are small but still steady)."""
    now_step, now = history[-1]
    earlier = [v for s, v in history if s <= now_step - window]
    if not earlier or not math.isfinite(now):
        return False
    fell = min(earlier) - now
    return fell > by or fell > 0.05 * max(now - floor, 0.0)


def _fmt_lrs(lrs: list[float]) -> str:
    unique = sorted(set(lrs))
    return ", ".join(f"{v:.3g}" for v in unique)


OVERFIT = Check(
    name="overfit_batch",
    title="a few examples can be fit to nearly zero loss",
    fn=check_overfit_batch,
    options={
        "examples": Option(8, "how many training examples to memorise (2-8 is the recipe)"),
        "steps": Option(300, "step budget"),
        "target": Option(0.02, "success: the loss falls within this fraction of the start, above the floor"),
        "check_every": Option(10, "measure the loss (in eval mode) every this many steps"),
    },
)
