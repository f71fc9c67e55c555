"""Check 7, ``param_updates``: every parameter that should train gets a gradient and moves.

One training step on the first batch of a run (the scheduler left out, each
param group at its configured learning rate) on a copy of the candidate, then:

* parameters with ``requires_grad=False`` that were not declared frozen;
* trainable parameters missing from the optimizer (they never change);
* parameters whose gradient is ``None`` (not used by forward) or exactly zero;
* parameters in the optimizer, with a gradient, that did not change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from fnmatch import fnmatch
from typing import Any

import torch

from twinrun.checks._context import CheckContext
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult, Status
from twinrun.checks._schedule import working_lrs

__all__ = ["CHECK"]

NAME = "param_updates"


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch(name, p) for p in patterns)


def _short(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _observe_gradients(
    ctx: CheckContext, state: Any, trainable: Mapping[str, torch.Tensor], steps: int
) -> tuple[set[str], set[str], Any] | CheckResult:
    """Train ``steps`` updates: which parameters got a gradient, which a non-zero one, the last step's output;
    a failing result when a loss is not finite."""
    got_grad: set[str] = set()  # a gradient tensor at some step
    nonzero: set[str] = set()  # a non-zero gradient at some step
    for step in range(1, steps + 1):
        out = ctx.train(state, step)
        if not out.finite:
            return CheckResult(
                NAME,
                "fail",
                f"loss {out.loss} at step {step}",
                "a finite loss",
                f"The loss of update {step} is not finite, so no gradient could be taken.",
                "check the inputs for NaN/Inf (input_stats) and the loss at init (loss_at_init)",
            )
        with torch.no_grad():
            for n, p in trainable.items():
                grad = p.grad
                if grad is None:
                    continue
                got_grad.add(n)
                values = grad.coalesce().values() if grad.is_sparse else grad
                if bool((values != 0).any()):
                    nonzero.add(n)
    return got_grad, nonzero, out


def check_param_updates(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    frozen_ok, ignore = list(opts["frozen"]), list(opts["ignore"])
    state = dataclasses.replace(ctx.fresh(), scheduler=None)
    model, optimizer = state.model, state.optimizer
    for group, lr in zip(optimizer.param_groups, working_lrs(ctx)):
        group["lr"] = lr
    named = dict(model.named_parameters())
    group_lr = {id(p): float(g["lr"]) for g in optimizer.param_groups for p in g["params"]}
    frozen = [n for n, p in named.items() if not p.requires_grad]
    unexpected_frozen = [n for n in frozen if not _matches(n, frozen_ok)]
    declared_but_training = [n for n, p in named.items() if p.requires_grad and frozen_ok and _matches(n, frozen_ok)]
    trainable = [n for n, p in named.items() if p.requires_grad]
    missing = [n for n in trainable if id(named[n]) not in group_lr]
    before = {n: p.detach().clone() for n, p in named.items()}
    steps = max(1, min(opts["steps"], ctx.settings.steps))
    model.train()
    observed = _observe_gradients(ctx, state, {n: named[n] for n in trainable}, steps)
    if isinstance(observed, CheckResult):
        return observed
    got_grad, nonzero, out = observed
    no_grad: list[str] = []
    zero_grad: list[str] = []
    unchanged: list[str] = []
    zero_lr: list[str] = []
    ratios: dict[str, float] = {}
    with torch.no_grad():
        for n in trainable:
            p = named[n]
            if _matches(n, ignore):
                continue
            if n not in got_grad:
                no_grad.append(n)
                continue
            if n not in nonzero:
                zero_grad.append(n)
            if n in missing:
                continue
            change = (p - before[n]).norm()
            ratios[n] = float(change / before[n].norm().clamp_min(1e-12))
            if float(change) == 0.0 and n not in zero_grad:
                (zero_lr if group_lr.get(id(p), 1.0) == 0.0 else unchanged).append(n)
    counts = {
        "parameters": len(named),
        "trainable": len(trainable),
        "frozen": len(frozen),
        "missing_from_optimizer": len(missing),
        "no_gradient": len(no_grad),
        "zero_gradient": len(zero_grad),
        "unchanged": len(unchanged) + len(zero_lr),
    }
    details = {
        **counts,
        "frozen_names": frozen,
        "unexpected_frozen": unexpected_frozen,
        "declared_frozen_but_training": declared_but_training,
        "missing_names": missing,
        "no_gradient_names": no_grad,
        "zero_gradient_names": zero_grad,
        "unchanged_names": unchanged,
        "zero_lr_names": zero_lr,
        "update_ratio": ratios,
        "loss": out.loss,
    }
    measured = (
        f"{len(trainable)}/{len(named)} trainable; missing from optimizer {len(missing)}, no grad "
        f"{len(no_grad)}, zero grad {len(zero_grad)}, unchanged {counts['unchanged']}, "
        f"unexpectedly frozen {len(unexpected_frozen)}"
    )
    expected = "every trainable parameter in the optimizer, with a non-zero gradient, changed"
    explanation = (
        f"{steps} training step(s) on the first batches of a run (the schedule's peak learning rate, no "
        "scheduler) on a "
        f"copy of the model with {len(named)} parameter tensors, of which {len(trainable)} require gradients; a "
        "gradient counts if it is non-zero at any of the steps (zero-initialised gates open after one)."
    )
    problems, fixes = [], []
    if missing:
        problems.append(
            f" {len(missing)} trainable parameter(s) are not in the optimizer and never change: {_short(missing)}."
        )
        fixes.append(
            "build the optimizer from model.parameters() (or add the missing layer's parameters to a param group)"
        )
    if no_grad:
        problems.append(
            f" {len(no_grad)} parameter(s) never got a gradient, so forward never uses them: {_short(no_grad)}."
        )
        fixes.append(
            "use the layer in forward or delete it (if it is used only in some modes, declare it: "
            f"--check-option {NAME}.ignore=\"['name.*']\")"
        )
    if zero_grad:
        problems.append(
            f" {len(zero_grad)} parameter(s) got only all-zero gradients: {_short(zero_grad)} (dead "
            "ReLUs, a multiplication by zero, a detached branch or saturated units)."
        )
        fixes.append("look at what feeds those layers: initial biases, activations, detach() calls")
    if zero_lr:
        problems.append(f" {len(zero_lr)} parameter(s) sit in a param group with learning rate 0: {_short(zero_lr)}.")
        fixes.append("give every param group a non-zero learning rate")
    status: Status = "fail" if problems else "pass"
    if unchanged:
        problems.append(
            f" {len(unchanged)} parameter(s) have a gradient but did not change at all: "
            f"{_short(unchanged)}; the update is below float precision."
        )
        fixes.append("the gradients vanish or the learning rate is tiny: check the update ratios in details")
        status = "fail" if status == "fail" else "warn"
    if unexpected_frozen:
        problems.append(
            f" {len(unexpected_frozen)} parameter(s) are frozen (requires_grad=False) though "
            f"none was declared frozen that way: {_short(unexpected_frozen)}."
        )
        fixes.append(
            "unfreeze them (p.requires_grad_(True)), or declare the freezing intended: "
            f"--check-option {NAME}.frozen=\"['{unexpected_frozen[0].rsplit('.', 1)[0]}.*']\""
        )
        status = "fail" if status == "fail" else "warn"
    if declared_but_training:
        problems.append(
            f" {len(declared_but_training)} parameter(s) declared frozen still train: {_short(declared_but_training)}."
        )
        fixes.append("call requires_grad_(False) on them before building the optimizer")
        status = "fail" if status == "fail" else "warn"
    if not problems:
        explanation += " Every one of them got a non-zero gradient and moved."
    return CheckResult(
        NAME,
        status,
        measured,
        expected,
        explanation + "".join(problems),
        "; ".join(fixes),
        details=details,
    )


CHECK = Check(
    name=NAME,
    title="every trainable parameter gets a gradient and changes",
    fn=check_param_updates,
    options={
        "steps": Option(3, "training steps; a parameter must get a non-zero gradient in at least one"),
        "frozen": Option([], "glob patterns of parameters meant to be frozen, e.g. ['backbone.*']", types=(list,)),
        "ignore": Option(
            [], "glob patterns of parameters allowed to get no gradient in a training step", types=(list,)
        ),
    },
)
