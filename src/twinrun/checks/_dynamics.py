"""Check 14, ``prediction_dynamics``: how predictions on a fixed batch move in a short training.

During the short training shared with ``loss_decreases`` the model's outputs on
16 fixed validation examples are recorded at regular steps and drawn as a heat
map (probability of the true class, or the prediction error for regression),
next to the training loss; for conv nets the first layer's filters are drawn at
initialisation and after training. The check fails when predictions collapse to
one answer for every input, or do not move at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from twinrun.checks._context import CheckContext
from twinrun.checks._plots import filters_png, prediction_dynamics_png
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult
from twinrun.checks._training import ShortTraining, shared_training

__all__ = ["CHECK", "per_example_view"]

NAME = "prediction_dynamics"


def per_example_view(kind: str, outputs: torch.Tensor, targets: Any) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(value per example, predicted classes [example, position] or None, what the value is)."""
    o = outputs.double()
    if isinstance(targets, torch.Tensor) and kind == "logits" and o.ndim >= 2 and not targets.is_floating_point():
        if o.ndim >= 3 and tuple(targets.shape) == tuple(o.shape[:-1]):
            o = o.movedim(-1, 1)  # classes last (a language model's [B, T, V] against [B, T])
        probs = o.softmax(1)
        t = targets.long().clamp(0, o.shape[1] - 1).unsqueeze(1)
        p_true = probs.gather(1, t).reshape(o.shape[0], -1).mean(1)
        predicted = probs.argmax(1).reshape(o.shape[0], -1)
        return p_true.numpy(), predicted.numpy(), "probability of the true class"
    if isinstance(targets, torch.Tensor) and kind == "binary_logits":
        p = o.sigmoid().reshape(targets.shape)
        t = targets.double()
        p_true = (p * t + (1 - p) * (1 - t)).reshape(o.shape[0], -1).mean(1)
        return p_true.numpy(), (p > 0.5).reshape(o.shape[0], -1).numpy().astype(int), "probability of the true label"
    flat = o.reshape(o.shape[0], -1)
    if isinstance(targets, torch.Tensor) and targets.numel() == o.numel():
        error = (flat - targets.double().reshape(flat.shape)).abs().mean(1)
        return error.numpy(), None, "absolute error"
    return flat.mean(1).numpy(), None, "mean output"


def check_prediction_dynamics(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    run: ShortTraining = shared_training(ctx, opts["steps"])
    kind = ctx.output_kind
    targets = run.fixed_targets
    views = [per_example_view(kind, s, targets) for s in run.snapshots]
    values = np.stack([v[0] for v in views], axis=1)  # [examples, snapshots]
    label = views[0][2]
    start, end = run.snapshots[0], run.snapshots[-1]
    n = int(end.shape[0])
    flat_end = end.double().reshape(n, -1)
    spread = float(flat_end.std(0).max()) if n > 1 else 0.0
    scale = float(flat_end.abs().max()) if flat_end.numel() else 0.0
    moved = float((end.double() - start.double()).abs().max())
    details: dict[str, Any] = {
        "steps": run.snapshot_steps,
        "examples": n,
        "value": label,
        "values": values.round(5).tolist(),
        "output_spread_end": spread,
        "output_change": moved,
        "diverged_at": run.diverged_at,
    }
    predicted_end = views[-1][1]
    summary = f"{label}: {float(values[:, 0].mean()):.3g} -> {float(values[:, -1].mean()):.3g}"
    collapsed = spread <= 1e-6 * (1.0 + scale)
    if predicted_end is not None and isinstance(targets, torch.Tensor):
        t = targets.reshape(-1).cpu()
        distinct_targets = len(set(t.tolist()))
        distinct_pred = len(set(predicted_end.reshape(-1).tolist()))
        correct = float((torch.as_tensor(predicted_end).reshape(-1) == t).double().mean())
        details.update(distinct_predictions=distinct_pred, distinct_targets=distinct_targets, accuracy_end=correct)
        summary += f"; {distinct_pred} distinct predicted classes for {distinct_targets} true ones"
        # a language model rightly predicts the most frequent next token for a long while (and for good, on
        # text whose tokens are independent): one predicted token is not a collapse there, equal outputs are
        one_answer = distinct_pred == 1 and distinct_targets > 1
        collapsed = collapsed or (one_answer and not ctx.next_token)
        if one_answer and ctx.next_token:
            details["one_predicted_token"] = True
    elif isinstance(targets, torch.Tensor) and targets.is_floating_point() and n > 1:
        target_spread = float(targets.double().reshape(n, -1).std(0).max())
        collapsed = collapsed or spread < 0.01 * target_spread
    artifacts: dict[str, str] = {}
    path = ctx.artifact("prediction_dynamics.png")
    if path is not None:
        prediction_dynamics_png(
            path,
            run.snapshot_steps,
            values,
            run.losses,
            value_label=label,
            title=f"{ctx.candidate}: predictions on {n} fixed validation examples",
        )
        artifacts["prediction_dynamics"] = str(path)
    if run.first_layer is not None:
        fpath = ctx.artifact("first_layer.png")
        if fpath is not None:
            filters_png(
                fpath,
                *run.first_layer,
                title=f"{ctx.candidate}: first convolution's filters, "
                f"initialisation (top) and after {run.steps} steps (bottom)",
            )
            artifacts["first_layer"] = str(fpath)
    measured = summary
    expected = "predictions differ between inputs and move towards the targets"
    drawn = f" Figures: {', '.join(sorted(artifacts))}." if artifacts else ""
    explanation = (
        f"The model's outputs on {n} fixed validation examples were recorded at steps {run.snapshot_steps} of "
        f"the short training ({label} per example).{drawn}"
    )
    if collapsed:
        return CheckResult(
            NAME,
            "fail",
            measured,
            expected,
            explanation
            + (
                " At the end every input gets the same prediction: the network has collapsed to a constant "
                "(dead ReLUs from a bad initialisation or a too-high learning rate, inputs that do not reach the "
                "output, or a loss that rewards the majority class)."
            ),
            "look at the first layers' initial biases and activations (param_updates lists parameters with zero "
            "gradients), lower the learning rate, and check the inputs reach the model (zero_input_baseline)",
            artifacts=artifacts,
            details=details,
        )
    if moved == 0.0:
        return CheckResult(
            NAME,
            "fail",
            measured,
            expected,
            explanation + (" The predictions did not move at all during training."),
            "check that the optimizer updates the model (param_updates) and the learning rate is not 0",
            artifacts=artifacts,
            details=details,
        )
    if details.get("one_predicted_token"):
        return CheckResult(
            NAME,
            "pass",
            measured,
            expected,
            explanation
            + (
                " Every position predicts the same next token: for a language model early in training (or on text "
                "whose tokens barely depend on their context) that is the most frequent token, the right answer; the "
                "outputs still differ between inputs and move as training goes."
            ),
            artifacts=artifacts,
            details=details,
        )
    return CheckResult(
        NAME,
        "pass",
        measured,
        expected,
        explanation + (" Predictions differ between inputs and move as training goes."),
        artifacts=artifacts,
        details=details,
    )


CHECK = Check(
    name=NAME,
    title="predictions on a fixed batch during a short training (PNG)",
    fn=check_prediction_dynamics,
    options={
        "steps": Option(60, "training steps (shared with loss_decreases and zero_input_baseline)"),
    },
)
