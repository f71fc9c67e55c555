"""Short trainings shared by several checks, run with the engine's own step.

``short_training(ctx, steps)`` trains a copy of the candidate for the first
``steps`` updates of a real run: the same batches, augmentation, dropout stream,
scheduler and gradient clipping (it uses the engine's executor), so its losses
are the first losses of ``twinrun compare``. ``zero_inputs=True`` trains the same
way on inputs replaced by zeros: the input-independent baseline. Before the
losses after training are measured in eval mode, batch-norm statistics are
recomputed on a few training batches (:func:`recalibrate_batch_norm`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from twinrun.checks._context import CheckContext
from twinrun.engine import CandidateState, SequentialExecutor, StepContext
from twinrun.engine.parts import evaluate, prediction

__all__ = ["ShortTraining", "first_conv", "probe_losses", "short_training", "zeros_like_inputs"]


@dataclass
class ShortTraining:
    """Losses of a short training, before and after, on fixed probe sets."""

    steps: int
    zero_inputs: bool
    losses: np.ndarray  # training loss of each update (before the update)
    lrs: np.ndarray
    probe_before: dict[str, np.ndarray]  # split -> per-example loss at step 0 (eval mode)
    probe_after: dict[str, np.ndarray]
    snapshot_steps: list[int] = field(default_factory=list)
    snapshots: list[torch.Tensor] = field(default_factory=list)  # outputs on the fixed batch
    fixed_targets: Any = None
    first_layer: tuple[torch.Tensor, torch.Tensor] | None = None  # conv weights before, after
    diverged_at: int | None = None
    trained: CandidateState | None = field(default=None, repr=False)  # the copy as it ended (for later looks)
    recalibrated: list[str] = field(default_factory=list)  # batch-norm layers whose statistics were recomputed

    def probe_mean(self, split: str, when: str) -> float:
        values = (self.probe_before if when == "before" else self.probe_after)[split]
        return float(np.mean(values)) if values.size else math.nan


def zeros_like_inputs(inputs: Any) -> Any:
    """Inputs with every tensor replaced by zeros of the same shape and dtype."""
    if isinstance(inputs, torch.Tensor):
        return torch.zeros_like(inputs)
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(zeros_like_inputs(v) for v in inputs)
    if isinstance(inputs, dict):
        return {k: zeros_like_inputs(v) for k, v in inputs.items()}
    return inputs


def probe_losses(ctx: CheckContext, state: CandidateState, batch: tuple[Any, Any], step: int) -> np.ndarray:
    """Per-example loss of ``state`` on ``batch`` in eval mode (the engine's evaluation)."""
    out = evaluate(
        state,
        [batch],
        loss_per_example=ctx.loss_per_example,
        metrics={},
        device=ctx.device,
        streams=ctx.streams,
        step=step,
    )
    return out.per_example["loss"]


def first_conv(model: nn.Module) -> nn.Conv2d | None:
    """The first 2-D convolution of ``model`` in definition order."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    return None


def recalibrate_batch_norm(
    ctx: CheckContext, state: CandidateState, transform: Any, step: int, batches: int = 8
) -> list[str]:
    """Recompute every batch-norm layer's running statistics as a plain average over ``batches`` training
    batches ("precise BN"), so eval-mode losses after a short training measure the weights, not running
    averages that lag them (momentum 0.1 at a high learning rate remembers weights of many steps ago).
    Returns the layers recalibrated (none: nothing done)."""
    norms = [
        (n, m)
        for n, m in state.model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    if not norms:
        return []
    saved = [m.momentum for _, m in norms]
    for _, m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches seen
    try:
        with torch.no_grad(), ctx.mode(state.model, training=True):
            for i in range(1, batches + 1):
                inputs, _ = ctx.batch(i)
                with ctx.streams.isolated("dropout", step + i, devices=[ctx.device]):
                    state.model(transform(inputs))
    finally:
        for (_, m), momentum in zip(norms, saved):
            m.momentum = momentum
    return [n for n, _ in norms]


def short_training(
    ctx: CheckContext,
    steps: int,
    *,
    zero_inputs: bool = False,
    snapshots: int = 10,
    fixed_examples: int = 16,
) -> ShortTraining:
    """Train a fresh copy of the candidate for ``steps`` updates, as a run would."""
    state = ctx.fresh()
    transform = zeros_like_inputs if zero_inputs else (lambda x: x)
    probes = {split: ctx.probe(split) for split in ("train", "val")}
    probes = {s: (transform(x), y) for s, (x, y) in probes.items()}
    fixed_x, fixed_y = ctx.gather("val", range(min(fixed_examples, ctx.size("val"))))
    fixed_x = transform(fixed_x)
    want = sorted({0, steps, *np.linspace(0, steps, snapshots).round().astype(int).tolist()})
    conv = first_conv(state.model)
    conv_before = conv.weight.detach().cpu().clone() if conv is not None else None

    def snapshot(step: int) -> torch.Tensor:
        with torch.no_grad(), ctx.mode(state.model), ctx.streams.isolated("eval", step, devices=[ctx.device]):
            return prediction(state.model(fixed_x), state.output_key).detach().float().cpu()

    before = {s: probe_losses(ctx, state, b, 0) for s, b in probes.items()}
    result = ShortTraining(
        steps=steps,
        zero_inputs=zero_inputs,
        losses=np.full(steps, np.nan),
        lrs=np.full(steps, np.nan),
        probe_before=before,
        probe_after={},
        fixed_targets=fixed_y.detach().cpu() if isinstance(fixed_y, torch.Tensor) else fixed_y,
    )
    result.snapshot_steps.append(0)
    result.snapshots.append(snapshot(0))
    executor = SequentialExecutor()
    context = StepContext(ctx.streams, [ctx.device], {}, ctx.settings.grad_clip)
    for step in range(1, steps + 1):
        inputs, targets = ctx.batch(step)
        batch = {state.spec.augment_key: (transform(inputs), targets)}
        out = executor.run_step(step, [state], batch, context)[state.name]
        result.losses[step - 1] = out.loss
        result.lrs[step - 1] = out.lr
        if not out.finite:
            result.diverged_at = step
            break
        if step in want:
            result.snapshot_steps.append(step)
            result.snapshots.append(snapshot(step))
    last = result.diverged_at or steps
    if result.diverged_at is None:
        result.recalibrated = recalibrate_batch_norm(ctx, state, transform, last)
    result.probe_after = {s: probe_losses(ctx, state, b, last) for s, b in probes.items()}
    if conv is not None and conv_before is not None:
        result.first_layer = (conv_before, conv.weight.detach().cpu().clone())
    result.trained = state
    return result


def shared_training(ctx: CheckContext, steps: int, *, zero_inputs: bool = False) -> ShortTraining:
    """:func:`short_training` of ``steps`` steps after the schedule's warm-up (see ``warmup_end``), at most
    the run's own steps; computed once per context for each (steps, zero_inputs)."""
    from twinrun.checks._schedule import warmup_end

    steps = max(1, min(steps + warmup_end(ctx), ctx.settings.steps))
    return cast(
        "ShortTraining",
        ctx.cached(("short_training", steps, zero_inputs), lambda: short_training(ctx, steps, zero_inputs=zero_inputs)),
    )
