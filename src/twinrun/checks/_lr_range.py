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

A range test is optimistic about large rates (it reaches them with a model
already trained by the smaller ones), so the verdict comes from the horizon:
two copies train for a longer stretch (``horizon`` steps) at constant rates,
the configured peak rate and one ``factor`` times smaller, on the same batches,
and their mean training losses over the last quarter are compared (an
evaluation at one step is noisy at a large rate, and sees batch-norm running
statistics lagging the weights). The check fails when the smaller rate ends
lower by at least ``margin`` of the initial loss (near zero, ratios of losses
mean nothing), the thrashing of a rate too large; the range test names the
rates to use. A rate too small is not claimed: over a short stretch a larger
rate always looks better, whatever suits the whole run. (Measured on
digits, initial loss 2.3: a ResNet-18 with SGD at 0.1, a clean setup, ends
0.006-0.044 above SGD at 0.01; an MLP with Adam at 0.1 ends 0.45-0.62 above
Adam at 0.01.)
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

__all__ = ["CHECK", "lr_range_test"]

NAME = "lr_range"


def lr_range_test(ctx: CheckContext, steps: int, low: float, high: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factors of the configured rate, the loss of each step of a range test, and that loss smoothed (an
    exponential average, bias-corrected); NaN after a divergence or once the loss climbs steeply."""
    state = dataclasses.replace(ctx.fresh(), scheduler=None)
    base = working_lrs(ctx)
    factors = np.geomspace(low, high, steps)
    losses = np.full(steps, np.nan)
    smooth = np.full(steps, np.nan)
    average = 0.0
    for i, factor in enumerate(factors):
        for group, lr in zip(state.optimizer.param_groups, base):
            group["lr"] = lr * float(factor)
        out = ctx.train(state, i + 1)
        if not out.finite:
            break
        losses[i] = out.loss
        average = 0.9 * average + 0.1 * out.loss
        smooth[i] = average / (1 - 0.9 ** (i + 1))
        if smooth[i] > 4 * np.nanmin(smooth) and i > steps // 4:  # climbing steeply: the rest says nothing new
            break
    return factors, losses, smooth


def horizon_losses(ctx: CheckContext, factors: tuple[float, ...], steps: int) -> dict[float, float]:
    """Mean training loss over the last quarter of ``steps`` updates at a constant rate of each factor x the
    peak rate (``inf`` after a divergence). Batch losses in training mode, on the same batches for every
    factor: less noisy than one evaluation at the end, and blind to lagging batch-norm statistics."""
    base = working_lrs(ctx)
    tail = max(1, steps // 4)
    out: dict[float, float] = {}
    for factor in factors:
        state = dataclasses.replace(ctx.fresh(), scheduler=None)
        for group, lr in zip(state.optimizer.param_groups, base):
            group["lr"] = lr * factor
        seen: list[float] = []
        for step in range(1, steps + 1):
            result = ctx.train(state, step)
            if not result.finite:
                seen = []
                break
            if step > steps - tail:
                seen.append(result.loss)
        out[factor] = float(np.mean(seen)) if seen else math.inf
    return out


def check_lr_range(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    base = working_lrs(ctx)
    if not base or not all(lr > 0 for lr in base):
        return CheckResult(
            NAME, "skip", "no positive learning rate", "-", "The optimizer has no positive learning rate to scale.", ""
        )
    decades = float(opts["decades"])
    factors, losses, smooth = lr_range_test(ctx, opts["steps"], 10.0**-decades, 10.0**decades)
    ok = np.isfinite(smooth)
    if ok.sum() < 10:
        return CheckResult(
            NAME,
            "skip",
            "the range test diverged at once",
            "-",
            f"Even at {factors[0]:.3g}x the configured rate the loss was not finite within 10 "
            "steps; loss_decreases and loss_at_init say more.",
            "",
        )
    start = float(np.mean(smooth[ok][:5]))
    i_min = int(np.nanargmin(smooth))
    lowest = float(smooth[i_min])
    f_min = float(factors[i_min])
    falling = np.nonzero(ok & (smooth <= start - 0.1 * (start - lowest)))[0]
    lower = float(factors[falling[0]]) if falling.size and start > lowest else f_min
    upper = max(lower, f_min / 3)
    factor = float(opts["factor"])
    horizon = max(1, min(int(opts["horizon"]), ctx.settings.steps))
    at = horizon_losses(ctx, (1.0 / factor, 1.0), horizon)
    configured = ", ".join(f"{lr:.3g}" for lr in sorted(set(base)))
    work = (
        f"{lower * min(base):.3g} to {upper * max(base):.3g}"
        if len(set(base)) == 1
        else f"{lower:.3g}x to {upper:.3g}x the configured rates"
    )
    figure = ctx.artifact(f"{NAME}.png")
    artifacts = {}
    if figure is not None:
        line_plot(
            figure,
            factors[ok] * max(base),
            {"smoothed loss": smooth[ok]},
            xlabel="learning rate",
            ylabel="training loss (smoothed)",
            title="learning-rate range test",
            logx=True,
            vlines={"configured": max(base)},
        )
        artifacts["plot"] = str(figure)
    details = {
        "factors": factors.tolist(),
        "losses": [v if math.isfinite(v) else None for v in losses],
        "start": start,
        "lowest": lowest,
        "lowest_at": f_min,
        "range": [lower, upper],
        "configured": base,
        "stopped_at": float(factors[ok][-1]),
        "horizon": horizon,
        "horizon_losses": {f"{k:g}": (v if math.isfinite(v) else None) for k, v in at.items()},
    }
    smaller, same = at[1.0 / factor], at[1.0]

    def fmt(v: float) -> str:
        return f"{v:.4g}" if math.isfinite(v) else "diverged"

    measured = (
        f"training loss over steps {horizon - max(1, horizon // 4) + 1}-{horizon}: {fmt(smaller)} at "
        f"lr/{factor:g}, {fmt(same)} at lr; the range test works from {lower:.3g}x to {upper:.3g}x"
    )
    expected = (
        f"a {factor:g}x smaller rate not lower by {float(opts['margin']):.0%} of the initial loss "
        f"({start:.4g}) over {horizon} steps"
    )
    explanation = (
        f"Two copies of the model trained {horizon} steps on the run's batches at constant rates, the "
        f"configured peak rate ({configured}) and one {factor:g} times smaller; their training losses over the "
        f"last quarter of it averaged {fmt(same)} and {fmt(smaller)}. A range test (the rate growing "
        f"from {factors[0]:.3g}x to {factors[ok][-1]:.3g}x over "
        f"{int(ok.sum())} steps) found the loss falling from {lower:.3g}x and lowest at {f_min:.3g}x: rates "
        f"from {work} work for this model on these batches."
    )
    margin = float(opts["margin"])
    gap = float(same - smaller) if math.isfinite(smaller) else -math.inf  # inf - x = inf: a divergence
    details["gap_of_start"] = gap / start if math.isfinite(gap) and start else (math.inf if gap > 0 else None)
    if gap >= margin * abs(start):
        return CheckResult(
            NAME,
            "fail",
            measured,
            expected,
            explanation
            + (
                f" A rate {factor:g} times smaller ends clearly lower ({fmt(smaller)} against {fmt(same)}, a gap of "
                f"{gap / abs(start):.0%} of the initial loss {start:.4g}): at the "
                "configured rate the loss falls at first, then thrashes on a plateau (or diverges) instead of "
                "converging. A rate meant for another optimizer (SGD's 0.1 for Adam) or a typo does this."
            ),
            f"use a learning rate from {work} (e.g. {upper * max(base):.3g}), or {max(base) / factor:.3g}",
            artifacts=artifacts,
            details=details,
        )
    return CheckResult(
        NAME,
        "pass",
        measured,
        expected,
        explanation + (f" A {factor:g}x smaller rate does not do clearly better: the configured rate does not thrash."),
        artifacts=artifacts,
        details=details,
    )


CHECK = Check(
    name=NAME,
    title="the learning rate is in the range where the loss falls (range test)",
    fn=check_lr_range,
    options={
        "steps": Option(120, "steps of the range test"),
        "decades": Option(3.0, "the sweep runs from 10**-decades to 10**decades times the configured rate"),
        "factor": Option(10.0, "the smaller rate compared is the configured one divided by this"),
        "horizon": Option(200, "steps of each of the two constant-rate trainings (at most the run's)"),
        "margin": Option(0.1, "the smaller rate must end lower by at least this fraction of the initial loss"),
    },
)
