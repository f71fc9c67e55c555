"""Check ``lr_range``: is the learning rate within the range where this model learns?

A learning rate 10-100x off rarely crashes: too large, the loss drops at
first and then thrashes on a plateau; too small, it creeps. A learning-rate
range test (Smith, 2017) tells which rates work: a copy of the model trains on
the run's batches while the rate grows geometrically, from 1/1000 of the
configured peak rate to 1000 times it, and the smoothed loss is read against
the rate. It falls once the rate is large enough to make progress, bottoms out,
and climbs or diverges where the rate is too large. The working range reported
runs from where the loss starts falling to a third of where it bottoms out (the
usual margin). Every parameter group is scaled by the same factor, so their
ratios (a smaller rate for a backbone) are kept; a warm-up is replaced by the
sweep itself.

The check fails when the loss bottoms out at a rate at least ``factor`` times
smaller than the configured one (the configured rate is past the point where
the loss climbs), and warns when the loss has not yet started to fall at
``factor`` times the configured rate. A rate inside, or within ``factor`` of,
the range passes: the test is noisy, and only gross errors are claimed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from twinrun.checks._context import CheckContext
from twinrun.checks._plots import line_plot
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult
from twinrun.checks._schedule import working_lrs
from twinrun.engine import train_step

__all__ = ["CHECK", "lr_range_test"]

NAME = "lr_range"


def lr_range_test(ctx: CheckContext, steps: int, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """Factors of the configured rate and the loss of each step of a range test (NaN after a divergence)."""
    state = dataclasses.replace(ctx.fresh(), scheduler=None)
    base = working_lrs(ctx)
    factors = np.geomspace(low, high, steps)
    losses = np.full(steps, np.nan)
    best = math.inf
    smooth = 0.0
    for i, factor in enumerate(factors):
        for group, lr in zip(state.optimizer.param_groups, base):
            group["lr"] = lr * float(factor)
        x, y = ctx.batch(i + 1)
        with ctx.streams.isolated("dropout", i + 1, devices=[ctx.device]):
            out = train_step(state, x, y, metrics={}, grad_clip=ctx.settings.grad_clip)
        if not out.finite:
            break
        losses[i] = out.loss
        smooth = 0.9 * smooth + 0.1 * out.loss
        value = smooth / (1 - 0.9 ** (i + 1))
        best = min(best, value)
        if value > 4 * best and i > steps // 4:  # climbing steeply: the rest of the sweep says nothing new
            break
    return factors, losses


def _smoothed(losses: np.ndarray) -> np.ndarray:
    out = np.full_like(losses, np.nan)
    avg = 0.0
    for i, v in enumerate(losses):
        if not math.isfinite(v):
            break
        avg = 0.9 * avg + 0.1 * v
        out[i] = avg / (1 - 0.9 ** (i + 1))
    return out


def check_lr_range(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    base = working_lrs(ctx)
    if not base or not all(lr > 0 for lr in base):
        return CheckResult(NAME, "skip", "no positive learning rate", "-",
                           "The optimizer has no positive learning rate to scale.", "")
    decades = float(opts["decades"])
    factors, losses = lr_range_test(ctx, opts["steps"], 10.0**-decades, 10.0**decades)
    smooth = _smoothed(losses)
    ok = np.isfinite(smooth)
    if ok.sum() < 10:
        return CheckResult(NAME, "skip", "the range test diverged at once", "-",
                           f"Even at {factors[0]:.3g}x the configured rate the loss was not finite within 10 "
                           "steps; loss_decreases and loss_at_init say more.", "")
    start = float(np.mean(smooth[ok][:5]))
    i_min = int(np.nanargmin(smooth))
    lowest = float(smooth[i_min])
    f_min = float(factors[i_min])
    falling = np.nonzero(ok & (smooth <= start - 0.1 * (start - lowest)))[0]
    lower = float(factors[falling[0]]) if falling.size and start > lowest else f_min
    upper = max(lower, f_min / 3)
    configured = ", ".join(f"{lr:.3g}" for lr in sorted(set(base)))
    work = (f"{lower * min(base):.3g} to {upper * max(base):.3g}" if len(set(base)) == 1 else
            f"{lower:.3g}x to {upper:.3g}x the configured rates")
    figure = ctx.artifact(f"{NAME}.png")
    artifacts = {}
    if figure is not None:
        line_plot(figure, factors[ok] * max(base), {"smoothed loss": smooth[ok]}, xlabel="learning rate",
                  ylabel="training loss (smoothed)", title="learning-rate range test", logx=True,
                  vlines={"configured": max(base)})
        artifacts["plot"] = str(figure)
    details = {"factors": factors.tolist(), "losses": [v if math.isfinite(v) else None for v in losses],
               "start": start, "lowest": lowest, "lowest_at": f_min, "range": [lower, upper],
               "configured": base, "stopped_at": float(factors[ok][-1])}
    measured = f"lowest loss at {f_min:.3g}x the configured rate; works from {lower:.3g}x to {upper:.3g}x"
    expected = f"the configured rate within {opts['factor']:g}x of the working range"
    explanation = (
        f"A copy of the model trained {int(ok.sum())} steps on the run's batches while the learning rate grew "
        f"from {factors[0]:.3g}x to {factors[ok][-1]:.3g}x the configured peak rate ({configured}). The smoothed "
        f"loss started at {start:.4g}, was lowest ({lowest:.4g}) at {f_min:.3g}x and began to fall at "
        f"{lower:.3g}x: rates from {work} work for this model on these batches.")
    factor = float(opts["factor"])
    if f_min * factor <= 1.0:
        return CheckResult(NAME, "fail", measured, expected, explanation + (
            f" The configured rate is {1 / f_min:.3g}x the rate at which the loss bottoms out: past it the "
            "loss climbs, so training at the configured learning rate thrashes on a plateau (or diverges) "
            "instead of converging. A rate meant for another optimizer (SGD's 0.1 for Adam) or a typo does this."),
            f"use a learning rate from {work} (e.g. {upper * max(base):.3g})", artifacts=artifacts, details=details)
    if lower >= factor:
        return CheckResult(NAME, "warn", measured, expected, explanation + (
            f" The loss only starts to fall at {lower:.3g}x the configured rate: at the configured learning "
            "rate training creeps, and most of the run is spent far from a minimum."),
            f"use a learning rate from {work}", artifacts=artifacts, details=details)
    return CheckResult(NAME, "pass", measured, expected, explanation + " The configured rate is in, or near, "
                       "that range.", artifacts=artifacts, details=details)


CHECK = Check(
    name=NAME,
    title="the learning rate is in the range where the loss falls (range test)",
    fn=check_lr_range,
    options={
        "steps": Option(120, "steps of the range test"),
        "decades": Option(3.0, "the sweep runs from 10**-decades to 10**decades times the configured rate"),
        "factor": Option(10.0, "how far outside the working range the configured rate may be before an alarm"),
    },
)
