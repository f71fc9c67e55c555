"""Check ``activations``: what happens inside the net, layer by layer.

Forward hooks record, on the first training batch, every leaf module's output:
its standard deviation (the scale), whether it is finite, and for activation
modules the share of units that are dead (a ReLU that outputs 0 for every
example of the batch) or saturated (the share of a tanh's or sigmoid's outputs
within 1 % of its bounds). It looks at initialisation and again after the short training
the other checks share, and draws both (``activations.png``). Activations
applied as functions (``F.relu``) are not modules, so only the scale of the
layers around them is seen.

Dead units stop learning for good (their gradient is 0); saturated ones nearly
so; a scale that grows by orders of magnitude through the layers precedes a
divergence. Each is reported with the layer that shows it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from twinrun.checks._context import CheckContext
from twinrun.checks._learning import SHORT_STEPS
from twinrun.checks._plots import layer_bars_png
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult, Status
from twinrun.checks._training import shared_training

__all__ = ["CHECK", "layer_statistics"]

NAME = "activations"


@dataclass
class LayerStats:
    name: str
    kind: str
    std: float
    finite: bool
    dead: float | None = None  # share of units that are 0 for every example
    saturated: float | None = None  # share of the outputs (units x examples) within 1 % of a bound


def _units(out: torch.Tensor) -> torch.Tensor:
    """``[examples, units]``: channels of a 2-D or 3-D conv map ``[B, C, ...]``, the last dimension otherwise."""
    if out.ndim in (4, 5):
        return out.transpose(0, 1).reshape(out.shape[1], -1).T
    return out.reshape(-1, out.shape[-1])


def _functional_activations() -> dict[Any, str]:
    import torch.nn.functional as F

    return {
        torch.relu: "relu",
        F.relu: "relu",
        torch.Tensor.relu: "relu",
        F.relu6: "relu",
        torch.tanh: "tanh",
        F.tanh: "tanh",
        torch.Tensor.tanh: "tanh",
        torch.sigmoid: "sigmoid",
        F.sigmoid: "sigmoid",
        torch.Tensor.sigmoid: "sigmoid",
    }


def _measure(name: str, kind: str, output: torch.Tensor) -> LayerStats:
    out = output.detach().double()
    finite = bool(torch.isfinite(out).all())
    entry = LayerStats(name, kind, float(out.std()) if finite else math.inf, finite)
    if not finite or out.ndim < 2:
        return entry
    if kind in ("ReLU", "ReLU6", "relu"):
        entry.dead = float((_units(out) <= 0).all(dim=0).double().mean())
    bounds = {
        "Tanh": (-1.0, 1.0),
        "tanh": (-1.0, 1.0),
        "Hardtanh": (-1.0, 1.0),
        "Sigmoid": (0.0, 1.0),
        "sigmoid": (0.0, 1.0),
    }.get(kind)
    if bounds is not None:
        lo, hi = bounds
        span = hi - lo
        units = _units(out)
        entry.saturated = float(((units <= lo + 0.01 * span) | (units >= hi - 0.01 * span)).double().mean())
    return entry


def layer_statistics(model: nn.Module, inputs: Any) -> list[LayerStats]:
    """One forward of ``model`` (in its current mode, no gradient) with every leaf module's output measured,
    and the outputs of activations applied as functions (``torch.relu``, ``F.tanh``...), named after the
    module that called them."""
    from torch.overrides import TorchFunctionMode

    stats: list[LayerStats] = []
    stack: list[str] = []
    functions = _functional_activations()
    counts: dict[str, int] = {}

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            kind = functions.get(func)
            if kind is not None and isinstance(out, torch.Tensor) and out.is_floating_point() and out.numel() >= 2:
                where = stack[-1] if stack else "model"
                counts[where] = counts.get(where, 0) + 1
                stats.append(_measure(f"{where}:{kind}{counts[where]}", kind, out))
            return out

    def enter(name: str) -> Any:
        def push(module: nn.Module, args: Any) -> None:
            stack.append(name)

        return push

    def leave(name: str, leaf: bool) -> Any:
        def pop(module: nn.Module, args: Any, output: Any) -> None:
            if stack:
                stack.pop()
            if leaf and isinstance(output, torch.Tensor) and output.is_floating_point() and output.numel() >= 2:
                stats.append(_measure(name, type(module).__name__, output))

        return pop

    handles = []
    for n, m in model.named_modules():
        leaf = not list(m.children())
        handles.append(m.register_forward_pre_hook(enter(n or type(model).__name__)))
        handles.append(m.register_forward_hook(leave(n or type(model).__name__, leaf and bool(n))))
    try:
        with torch.no_grad(), Watch():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    return stats


def check_activations(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    inputs, _ = ctx.batch(1)
    fresh = ctx.fresh()
    with ctx.mode(fresh.model, training=True), ctx.streams.isolated("dropout", 1, devices=[ctx.device]):
        at_init = layer_statistics(fresh.model, inputs)
    run = shared_training(ctx, SHORT_STEPS)
    after: list[LayerStats] = []
    if run.trained is not None and run.diverged_at is None:
        with ctx.mode(run.trained.model, training=True), ctx.streams.isolated("dropout", 1, devices=[ctx.device]):
            after = layer_statistics(run.trained.model, inputs)
    if not at_init:
        return CheckResult(
            NAME,
            "skip",
            "no layer output to measure",
            "-",
            "No leaf module returned a floating-point tensor on the first batch.",
            "",
        )
    figure = ctx.artifact(f"{NAME}.png")
    artifacts = {}
    if figure is not None:
        series = {"std at init": [s.std if s.finite else 0.0 for s in at_init]}
        if after and len(after) == len(at_init):
            series["std after training"] = [s.std if s.finite else 0.0 for s in after]
            series["dead/saturated share"] = [max(s.dead or 0.0, s.saturated or 0.0) for s in after]
        layer_bars_png(figure, [s.name for s in at_init], series, title="activations per layer (first batch)")
        artifacts["plot"] = str(figure)
    problems: list[tuple[str, str, str]] = []
    for when, stats in (("At initialisation", at_init), (f"After {run.steps} training steps", after)):
        broken = [s for s in stats if not s.finite]
        if broken:
            problems.append(
                (
                    "fail",
                    f" {when}, the output of {broken[0].name} ({broken[0].kind}) is not finite.",
                    "look for a division by zero, a log of 0 or an overflow in that layer",
                )
            )
            continue
        dead = [s for s in stats if s.dead is not None and s.dead >= opts["dead"]]
        if dead:
            worst = max(dead, key=lambda s: s.dead or 0.0)
            problems.append(
                (
                    "fail" if (worst.dead or 0.0) >= 0.9 else "warn",
                    (
                        f" {when}, {worst.dead:.0%} of the units of {worst.name} ({worst.kind}) are 0 "
                        "for every example "
                        "of the batch: dead ReLUs, which get no gradient and never recover."
                    ),
                    "lower the learning rate, use He (kaiming) initialisation, or a leaky activation",
                )
            )
        saturated = [s for s in stats if s.saturated is not None and s.saturated >= opts["saturated"]]
        if saturated:
            worst = max(saturated, key=lambda s: s.saturated or 0.0)
            problems.append(
                (
                    "warn",
                    (
                        f" {when}, {worst.saturated:.0%} of the outputs of {worst.name} "
                        f"({worst.kind}) sit at a bound: saturated, their gradient is nearly 0."
                    ),
                    "scale the inputs or the initial weights down (Xavier/Glorot for tanh/sigmoid)",
                )
            )
        big = [s for s in stats if s.std > opts["max_std"]]
        if big:
            problems.append(
                (
                    "warn",
                    (
                        f" {when}, the output of {big[0].name} ({big[0].kind}) has a standard "
                        f"deviation of {big[0].std:.3g}: activations explode through the layers."
                    ),
                    "check the initialisation scale, add normalisation, or lower the learning rate",
                )
            )
    worst_dead = max((s.dead or 0.0 for s in at_init + after), default=0.0)
    worst_sat = max((s.saturated or 0.0 for s in at_init + after), default=0.0)
    top = max((s.std for s in at_init + after), default=0.0)
    details = {
        "layers": len(at_init),
        "at_init": [vars(s) for s in at_init],
        "after": [vars(s) for s in after],
        "steps": run.steps,
    }
    measured = f"{len(at_init)} layers; dead units {worst_dead:.0%}, saturated {worst_sat:.0%}, largest std {top:.3g}"
    expected = (
        f"dead and saturated shares below {opts['dead']:.0%} / {opts['saturated']:.0%}, scales below "
        f"{opts['max_std']:g}"
    )
    explanation = (
        f"The outputs of {len(at_init)} layers were measured on the first training batch, at "
        f"initialisation" + (f" and after {run.steps} training steps." if after else ".")
    )
    if not problems:
        return CheckResult(
            NAME,
            "pass",
            measured,
            expected,
            explanation + " Every layer is alive and in scale.",
            artifacts=artifacts,
            details=details,
        )
    status: Status = "fail" if any(p[0] == "fail" for p in problems) else "warn"
    return CheckResult(
        NAME,
        status,
        measured,
        expected,
        explanation + "".join(p[1] for p in problems),
        "; ".join(dict.fromkeys(p[2] for p in problems)),
        artifacts=artifacts,
        details=details,
    )


CHECK = Check(
    name=NAME,
    title="no dead, saturated or exploding activations inside the net",
    fn=check_activations,
    options={
        "dead": Option(0.5, "warn when at least this share of a ReLU layer's units is dead (fail from 90 %)"),
        "saturated": Option(0.5, "warn when at least this share of a tanh/sigmoid layer's units is saturated"),
        "max_std": Option(1e3, "warn when a layer's output has a larger standard deviation"),
    },
)
