"""Checks 2 and 4: does the network learn at all, and from its inputs?

``zero_input_baseline``
    trains twice for the first steps of a run, once on the real inputs and once
    on inputs replaced by zeros; on held-out data the real run must be clearly better.
``overfit_batch`` (check 3) is in ``_overfit``.
``loss_decreases``
    the loss on a fixed set of training examples must go down over the first steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from twinrun.checks._context import CheckContext
from twinrun.checks._floors import (
    autoencoder,
    gradient_norm,
    initial_scale,
    loss_floor,
    val_floor,
)
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult, Status
from twinrun.checks._schedule import working_lrs
from twinrun.checks._training import shared_training
from twinrun.stats import Interval, paired_t_interval

__all__ = ["LOSS_DECREASES", "SHORT_STEPS", "ZERO_INPUT", "loss_floor"]

SHORT_STEPS = 60


# ---------------------------------------------------------------------- 2
def check_zero_input_baseline(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    name = "zero_input_baseline"
    budget = opts["steps"]
    floor = val_floor(ctx)  # the gain is measured against what can be gained: zeros' loss minus the floor
    while True:
        real = shared_training(ctx, budget)
        zero = shared_training(ctx, budget, zero_inputs=True)
        real_val, zero_val = real.probe_after["val"], zero.probe_after["val"]
        steps = real.steps
        diff = paired_t_interval(zero_val - real_val)
        real_mean, zero_mean = float(np.mean(real_val)), float(np.mean(zero_val))
        reachable = zero_mean - floor
        gain = (zero_mean - real_mean) / abs(reachable) if reachable else math.nan
        # not clearly better yet (an autoencoder first learns the mean image, which zeros reach too):
        # train longer, doubling up to 8x the budget and never past the run's own steps
        passed = diff.low is not None and diff.low > 0 and gain >= opts["min_gain"]
        if passed or real.diverged_at is not None or budget >= 8 * opts["steps"] or steps >= ctx.settings.steps:
            break
        budget *= 2
    details = {
        "steps": steps,
        "budget": opts["steps"],
        "val_examples": int(real_val.size),
        "val_loss_real": real_mean,
        "val_loss_zero_inputs": zero_mean,
        "relative_gain": gain,
        "difference": diff.to_dict(),
        "floor": floor,
        "diverged_at": real.diverged_at,
    }
    measured = f"val loss {real_mean:.4g} (real) vs {zero_mean:.4g} (zeros), gain {gain:.1%}"
    expected = f"real inputs clearly better (gain >= {opts['min_gain']:.0%}, 95% interval above 0)"
    explanation = (
        f"A copy of the model trained for the first {steps} steps of a run on the real inputs, and another "
        f"on the same batches with every input replaced by zeros. On {real_val.size} validation examples the "
        f"loss is {real_mean:.4g} with real inputs and {zero_mean:.4g} with zeros ({_span(diff)})."
    )
    if real.recalibrated:
        explanation += (
            f" Before measuring, the statistics of {len(real.recalibrated)} batch-norm layer(s) were "
            "recomputed on 8 training batches, so eval mode sees the weights, not lagging averages."
        )
    if real.diverged_at is not None or not math.isfinite(real_mean):
        return CheckResult(
            name,
            "fail",
            measured,
            expected,
            explanation + (f" Training on real inputs diverged (non-finite loss at step {real.diverged_at})."),
            "lower the learning rate and check the inputs for NaN/Inf (input_stats)",
            details=details,
        )
    if diff.low is not None and diff.low > 0 and gain >= opts["min_gain"]:
        return CheckResult(
            name, "pass", measured, expected, explanation + " The network uses its inputs.", details=details
        )
    if floor:
        explanation += (
            f" The gain is measured against what can be gained: the zeros' loss minus the loss's floor, {floor:.4g}."
        )
    lrs = working_lrs(ctx)
    mean_lr = float(np.nanmean(real.lrs)) if np.isfinite(real.lrs).any() else math.nan
    warming = bool(lrs and math.isfinite(mean_lr) and mean_lr < 0.1 * max(lrs))
    details["mean_lr"] = mean_lr
    helps = diff.low is not None and diff.low > 0
    if not helps and autoencoder(ctx):
        return CheckResult(
            name,
            "warn" if real.losses[-1] < real.losses[0] else "fail",
            measured,
            expected,
            explanation
            + (
                " The targets are the inputs (an autoencoder), yet it reconstructs no better from them "
                "than from zeros: "
                "it has learned an average output. A latent the decoder ignores (a VAE's KL term winning: "
                "posterior collapse), a bottleneck too narrow, or too few steps at this learning rate do this."
            ),
            "train longer or with a larger learning rate, weigh the KL term down at first (KL annealing), or "
            "widen the latent; check that the decoder reads the encoder's output",
            details=details,
        )
    if helps or warming:
        reason = (
            " The real inputs help, but only a little this early in training."
            if helps
            else f" The learning rate was still warming up (mean {mean_lr:.3g} against {max(lrs):.3g}), so "
            "the network has hardly trained yet."
        )
        if helps and steps > opts["steps"]:
            reason = (
                f" The real inputs help, but only a little even after {steps} steps (the check trains "
                f"longer than {opts['steps']} steps while the gain stays below {opts['min_gain']:.0%})."
            )
        return CheckResult(
            name,
            "warn",
            measured,
            expected,
            explanation + reason,
            f"if the task is hard this may be fine; else check the inputs reach the model (input_stats) "
            f"or raise --check-option {name}.steps",
            details=details,
        )
    scale = initial_scale(real)
    details["initial_output_std"] = scale
    if math.isfinite(scale) and scale > opts["max_initial_std"]:
        return CheckResult(
            name,
            "fail",
            measured,
            expected,
            explanation
            + (
                f" The network does no better with its inputs than with zeros, and its outputs before training "
                f"had a standard deviation of {scale:.3g} (a healthy initialisation gives about 1 or less): the "
                "initial weights are far too large, so the first updates are spent shrinking them, or the units "
                "saturate, and the inputs are not used yet."
            ),
            "use the default (Kaiming/Xavier) initialisation, or scale the custom one down; activations shows "
            "which layer blows up",
            details=details,
        )
    return CheckResult(
        name,
        "fail",
        measured,
        expected,
        explanation
        + (
            " The network does no better with its inputs than with zeros: the inputs carry nothing it can use "
            "about the labels. Typical causes: inputs and labels shuffled separately, labels from another "
            "split or file, inputs overwritten or masked to zero inside the model, a detached input branch."
        ),
        "check that example i's input and label belong together (print a few with their labels), and that "
        "the model's forward uses its input",
        details=details,
    )


ZERO_INPUT = Check(
    name="zero_input_baseline",
    title="real inputs beat zeroed inputs after a short training",
    fn=check_zero_input_baseline,
    options={
        "steps": Option(SHORT_STEPS, "training steps of each of the two short trainings"),
        "min_gain": Option(0.1, "smallest relative drop in validation loss that counts as clearly better"),
        "max_initial_std": Option(30.0, "outputs before training with a larger standard deviation: a huge init"),
    },
)


# ---------------------------------------------------------------------- 4
def check_loss_decreases(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    name = "loss_decreases"
    run = shared_training(ctx, opts["steps"])
    before, after = run.probe_mean("train", "before"), run.probe_mean("train", "after")
    drop = (before - after) / abs(before) if before else math.nan
    n = len(run.losses)
    w = max(1, n // 5)
    finite = run.losses[np.isfinite(run.losses)]
    early, late = (float(np.mean(finite[:w])), float(np.mean(finite[-w:]))) if finite.size else (math.nan, math.nan)
    lrs = working_lrs(ctx)
    mean_lr = float(np.nanmean(run.lrs)) if np.isfinite(run.lrs).any() else math.nan
    warming = bool(lrs and math.isfinite(mean_lr) and mean_lr < 0.1 * max(lrs))
    details = {
        "steps": run.steps,
        "probe_before": before,
        "probe_after": after,
        "relative_drop": drop,
        "train_loss_first": early,
        "train_loss_last": late,
        "mean_lr": mean_lr,
        "train_losses": run.losses.tolist(),
        "diverged_at": run.diverged_at,
    }
    measured = f"{before:.4g} -> {after:.4g} ({-drop:+.1%})"
    expected = f"a drop of at least {opts['min_drop']:.0%} over {run.steps} steps"
    explanation = (
        f"A copy of the model trained for the first {run.steps} steps of a run (same batches, augmentation, "
        f"scheduler). Its loss on {run.probe_before['train'].size} fixed training examples (eval mode) went "
        f"from {before:.4g} to {after:.4g}; the batch losses averaged {early:.4g} over the first "
        f"{w} steps and {late:.4g} over the last {w}."
    )
    if run.recalibrated:
        explanation += (
            f" Before the second measurement, the statistics of {len(run.recalibrated)} batch-norm "
            "layer(s) were recomputed on 8 training batches."
        )
    if run.diverged_at is not None:
        return CheckResult(
            name,
            "fail",
            measured,
            expected,
            explanation + (f" The loss became non-finite at step {run.diverged_at}: training diverged."),
            "lower the learning rate (10x), add gradient clipping (--set grad_clip=1.0) and check the "
            "inputs for NaN/Inf (input_stats)",
            details=details,
        )
    if math.isfinite(drop) and drop >= opts["min_drop"]:
        return CheckResult(name, "pass", measured, expected, explanation + " The network learns.", details=details)
    status: Status = "warn" if (math.isfinite(drop) and drop >= 0.01) or warming else "fail"
    reach = gradient_norm(ctx)
    details["gradient_norm_at_step_1"] = reach
    if reach == 0.0 and not warming:
        return CheckResult(
            name,
            "fail",
            measured,
            expected,
            explanation
            + (
                " No gradient reaches the parameters: on the first batch the loss's gradient is exactly zero for "
                "every parameter, so no update can change anything. The loss is cut from the model: clamped "
                "(torch.clamp passes no gradient where it clamps), rounded, detached (.detach(), .item(), "
                "torch.no_grad around the forward), or computed from argmax/integer outputs."
            ),
            "compute the loss from the model's raw outputs with differentiable operations; replace a clamp "
            "of the loss by clipping gradients (--set grad_clip=1.0) or a smooth bound",
            details=details,
        )
    reason = (
        " The learning rate was still warming up (mean "
        f"{mean_lr:.3g} against {max(lrs):.3g}), so little "
        "change is expected yet."
        if warming
        else ""
    )
    return CheckResult(
        name,
        status,
        measured,
        expected,
        explanation
        + (
            " The loss barely moves or goes up: the updates do not reduce it. Typical causes: a learning rate "
            "off by orders of magnitude (a typo like 3e-6 for 3e-3), gradient ascent (maximize=True, a sign "
            "flipped in the loss), parameters missing from the optimizer, or a loss detached from the model." + reason
        ),
        f"try learning rates 10x and 100x larger, check the loss sign and param_updates; or give the check "
        f"more steps: --check-option {name}.steps=200",
        details=details,
    )


LOSS_DECREASES = Check(
    name="loss_decreases",
    title="the training loss goes down over the first steps",
    fn=check_loss_decreases,
    options={
        "steps": Option(SHORT_STEPS, "training steps (shared with zero_input_baseline and prediction_dynamics)"),
        "min_drop": Option(0.05, "smallest relative drop of the loss on fixed training examples that passes"),
    },
)


def _span(interval: Interval) -> str:
    """The paired difference in words, whatever of it could be estimated (none of it after a divergence)."""
    if interval.estimate is None:
        return f"no paired difference: {interval.reason}"
    if interval.low is None or interval.high is None:
        return f"paired difference {interval.estimate:.4g}, no interval: {interval.reason}"
    return f"paired difference {interval.estimate:.4g}, 95% interval [{interval.low:.4g}, {interval.high:.4g}]"
