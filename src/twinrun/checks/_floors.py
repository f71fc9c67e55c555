"""What a loss can reach and what the model's first outputs say: helpers of the learning checks.

``loss_floor`` (known losses: label smoothing, soft targets), an estimated floor for
an unrecognised loss (the loss of a perfect prediction), whether a loss sums over
the batch, whether the data is an autoencoder's, the gradient norm on the first
batch and the scale of the first outputs.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from twinrun.checks._context import CheckContext
from twinrun.engine.parts import prediction

__all__ = [
    "autoencoder",
    "gradient_norm",
    "initial_scale",
    "loss_floor",
    "perfect_prediction_loss",
    "units_of",
    "val_floor",
]


def gradient_norm(ctx: CheckContext) -> float | None:
    """The gradient norm over every parameter after one backward pass on the first batch (``None``: failed)."""
    from twinrun.engine.parts import candidate_loss

    state = ctx.fresh()
    x, y = ctx.batch(1)
    try:
        with (
            torch.enable_grad(),
            ctx.mode(state.model, training=True),
            ctx.streams.isolated("dropout", 1, devices=[ctx.device]),
        ):
            loss = candidate_loss(state, state.model(x), y)
            if not loss.requires_grad:
                return 0.0
            params = [p for p in state.model.parameters() if p.requires_grad]
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        return float(sum(float(g.double().pow(2).sum()) for g in grads if g is not None) ** 0.5)
    except Exception:  # noqa: BLE001 - the measurement is a hint; the verdict stands without it
        return None


def initial_scale(run: Any) -> float:
    """The standard deviation of the prediction on the fixed examples before training (huge init: >> 1)."""
    first = run.snapshots[0] if run.snapshots else None
    return float(first.double().std()) if first is not None and first.numel() > 1 else math.nan


def autoencoder(ctx: CheckContext) -> bool:
    x, y = ctx.probe("train", 16)
    return (
        isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == y.shape and bool(torch.equal(x, y))
    )


def val_floor(ctx: CheckContext) -> float:
    """The loss's floor on the validation probe: known for recognised losses, else estimated (0 when neither)."""

    def compute() -> float:
        x, y = ctx.probe("val")
        state = ctx.fresh()
        if ctx.loss_kind is not None:
            return loss_floor(ctx, y, units_of(state, x))
        estimate = perfect_prediction_loss(ctx, state, (x, y))
        return 0.0 if estimate is None else estimate

    return float(ctx.cached("val_floor", compute))


def _sums_over_batch(ctx: CheckContext, state: Any, batch: tuple[Any, Any]) -> bool:
    """Whether the loss sums over the examples of a batch (a VAE's ``reduction='sum'``): the per-example losses
    the checks compare are then one batch value divided by nothing, so a batch-level floor is divided here."""
    x, y = batch
    try:
        with torch.no_grad(), ctx.mode(state.model), ctx.streams.isolated("eval", 0, devices=[ctx.device]):
            outputs = state.model(x)
            value = ctx.loss_fn(outputs if state.loss_takes == "outputs" else prediction(outputs, state.output_key), y)
            per_example = ctx.loss_per_example(
                outputs if state.loss_takes == "outputs" else prediction(outputs, state.output_key), y
            )
        return bool(abs(float(value) - float(per_example.sum())) <= 1e-3 * abs(float(value)))
    except Exception:  # noqa: BLE001 - undecidable: treat as a mean
        return False


def loss_floor(ctx: CheckContext, targets: Any, units: int) -> float:
    """The lowest loss reachable on ``targets`` (label smoothing and soft targets keep it above 0)."""
    kind = ctx.loss_kind
    smoothing = _label_smoothing(ctx.loss_fn)
    if not isinstance(targets, torch.Tensor):
        return 0.0
    if kind == "cross_entropy":
        if targets.is_floating_point():
            t = targets.double().clamp_min(1e-12)
            return float(-(t * t.log()).sum(1).mean())
        if smoothing > 0 and units > 1:
            hi = 1 - smoothing + smoothing / units
            lo = smoothing / units
            return float(-(hi * math.log(hi) + (units - 1) * lo * math.log(lo)))
    if kind in ("bce_logits", "bce") and targets.is_floating_point():
        t = targets.double().clamp(1e-12, 1 - 1e-12)
        return float((-(t * t.log() + (1 - t) * (1 - t).log())).mean())
    return 0.0


def _label_smoothing(loss_fn: Any) -> float:
    if isinstance(loss_fn, functools.partial):
        return float(loss_fn.keywords.get("label_smoothing", 0.0) or 0.0)
    return float(getattr(loss_fn, "label_smoothing", 0.0) or 0.0)


def perfect_prediction_loss(ctx: CheckContext, state: Any, batch: tuple[Any, Any]) -> float | None:
    """The loss per example when the prediction equals the targets (other outputs as the model gives them):
    the floor of an unrecognised loss that compares a prediction with targets of its shape, on the scale of
    the per-example losses the checks measure (a loss summed over the batch is divided by its size);
    ``None`` elsewhere."""
    from twinrun.engine.parts import replace_prediction

    x, y = batch
    if not isinstance(y, torch.Tensor) or not y.is_floating_point():
        return None
    try:
        with torch.no_grad(), ctx.mode(state.model), ctx.streams.isolated("eval", 0, devices=[ctx.device]):
            outputs = state.model(x)
            pred = prediction(outputs, state.output_key)
            if pred.shape != y.shape:
                return None
            perfect = replace_prediction(outputs, y.to(pred.dtype), state.output_key)
            value = ctx.loss_fn(perfect, y) if state.loss_takes == "outputs" else ctx.loss_fn(y.to(pred.dtype), y)
        if not (torch.is_tensor(value) and value.numel() == 1 and torch.isfinite(value)):
            return None
    except Exception:  # noqa: BLE001 - a loss that refuses the substitute: no estimate
        return None
    return float(value) / len(y) if _sums_over_batch(ctx, state, batch) else float(value)


def units_of(state: Any, x: Any) -> int:
    with torch.no_grad():
        was = state.model.training
        state.model.eval()
        try:
            out = prediction(state.model(x), state.output_key)
        finally:
            state.model.train(was)
    return int(out.shape[1]) if isinstance(out, torch.Tensor) and out.ndim >= 2 else 1
