"""Check 1, ``loss_at_init``: the loss before any update, against what the label prior says.

A freshly initialised classifier should be unsure: its loss is close to
``log C`` for cross-entropy, ``log 2`` for binary cross-entropy, and the mean
squared target for MSE. The best any input-independent prediction can do is the
*prior's* loss (the label entropy, or the target variance), reached by setting the
final layer's bias to ``log p`` (cross-entropy), ``logit p`` (BCE) or the target
mean (MSE). A loss far above these means a badly scaled final layer; far below
means labels leak into the inputs. Outputs that already are probabilities fed to
a loss that applies softmax itself are caught here too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from twinrun.checks._context import LOSS_KINDS, CheckContext, first_tensor
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult
from twinrun.engine.parts import loss_input

__all__ = ["CHECK", "find_final_layer", "prior_of"]

NAME = "loss_at_init"


def _units(outputs: torch.Tensor, kind: str, class_dim: int | None) -> tuple[int, int]:
    """(dimension holding classes/output units, its size)."""
    if kind in ("cross_entropy", "nll"):
        dim = 1 if class_dim is None else class_dim
    else:
        dim = (outputs.ndim - 1 if outputs.ndim >= 2 else 0) if class_dim is None else class_dim
    dim = dim % max(outputs.ndim, 1)
    return dim, int(outputs.shape[dim]) if outputs.ndim >= 2 else 1


def prior_of(kind: str, targets: torch.Tensor, n_units: int, class_dim: int) -> dict[str, Any]:
    """The uniform loss, the prior's (best constant) loss and the bias that reaches it."""
    if kind in ("cross_entropy", "nll"):
        if targets.is_floating_point():  # class probabilities
            p = targets.movedim(class_dim, -1).reshape(-1, n_units).double().mean(0)
        else:
            labels = targets.reshape(-1)
            labels = labels[(labels >= 0) & (labels < n_units)]  # drops ignore_index (-100)
            p = torch.bincount(labels, minlength=n_units).double()
            p = p / p.sum().clamp_min(1)
        nz = p[p > 0]
        return {
            "uniform": math.log(n_units),
            "prior": float(-(nz * nz.log()).sum()),
            "bias": p.clamp_min(1e-6).log().float(),
            "prior_values": p.float(),
        }
    t = targets.double().reshape(-1, n_units) if targets.numel() % n_units == 0 else targets.double().reshape(-1, 1)
    if kind in ("bce_logits", "bce"):
        p = t.mean(0).clamp(1e-6, 1 - 1e-6)
        entropy = -(p * p.log() + (1 - p) * (1 - p).log())
        return {
            "uniform": math.log(2.0),
            "prior": float(entropy.mean()),
            "bias": (p / (1 - p)).log().float(),
            "prior_values": p.float(),
        }
    mean, var = t.mean(0), t.var(0, unbiased=False)
    return {
        "uniform": float((t**2).mean()),
        "prior": float(var.mean()),
        "bias": mean.float(),
        "prior_values": mean.float(),
    }


@contextmanager
def biased_calls(model: nn.Module) -> Iterator[list[tuple[str, int]]]:
    """Record, in call order, ``(name, bias size)`` of every module with a 1-D bias that runs."""
    calls: list[tuple[str, int]] = []
    handles = []

    def recorder(name: str, size: int) -> Any:
        return lambda module, args, output: calls.append((name, size))

    for name, module in model.named_modules():
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter) and bias.ndim == 1:
            handles.append(module.register_forward_hook(recorder(name, bias.numel())))
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


def find_final_layer(calls: list[tuple[str, int]], n_units: int) -> str | None:
    """The last module called whose bias has one entry per output unit."""
    matching = [name for name, size in calls if size == n_units]
    return matching[-1] if matching else None


def _outputs_look_like(outputs: torch.Tensor, dim: int) -> dict[str, bool]:
    o = outputs.detach().float()
    in_unit = bool(o.min() >= 0 and o.max() <= 1)
    sums = o.sum(dim=dim)
    lse = torch.logsumexp(o, dim=dim)
    return {
        "probabilities": in_unit and bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-3)),
        "log_probabilities": bool(torch.allclose(lse, torch.zeros_like(lse), atol=1e-3)),
    }


@dataclass
class _Measured:
    loss: float
    examples: int
    first_out: torch.Tensor
    first_targets: Any
    calls: list[tuple[str, int]]


def _measure(ctx: CheckContext, model: nn.Module, examples: int) -> _Measured:
    """Mean loss over the first batches of a run, in train mode, before any update."""
    steps = max(1, min(ctx.settings.steps, math.ceil(examples / ctx.settings.batch_size)))
    total, count = 0.0, 0
    first: tuple[Any, Any, list[tuple[str, int]]] | None = None
    model.train()
    with torch.no_grad():
        for step in range(1, steps + 1):
            inputs, targets = ctx.batch(step)
            with ctx.streams.isolated("dropout", step, devices=[ctx.device]), biased_calls(model) as calls:
                outputs = model(inputs)
            if first is None:
                first = (first_tensor(outputs), targets, list(calls))
                if first[0] is None:
                    raise TypeError(f"the model returned a {type(outputs).__name__} holding no tensor")
            n = int(targets.shape[0])
            total += float(loss_input(ctx.loss_fn, outputs, targets)[1]) * n
            count += n
    assert first is not None
    return _Measured(total / count, count, first[0], first[1], first[2])


def _set_bias(model: nn.Module, layer: str, bias: torch.Tensor) -> bool:
    module = dict(model.named_modules()).get(layer)
    current = getattr(module, "bias", None)
    if not isinstance(current, torch.Tensor) or current.numel() != bias.numel():
        return False
    with torch.no_grad():
        current.copy_(bias.reshape(current.shape).to(current.device, current.dtype))
    return True


def check_loss_at_init(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    kind = ctx.loss_kind if opts["kind"] == "auto" else opts["kind"]
    if kind is None:
        return CheckResult(
            NAME,
            "skip",
            "loss not recognised",
            "-",
            f"The loss {ctx.state.spec.loss.name} is not one whose value at initialisation twinrun can "
            "predict (cross-entropy, NLL, binary cross-entropy, MSE), so it was not checked.",
            f"if it is one of them in disguise, declare it: --check-option {NAME}.kind=cross_entropy "
            f"(one of {', '.join(LOSS_KINDS)})",
        )
    m = _measure(ctx, ctx.fresh().model, opts["examples"])
    loss0, first_out, first_targets = m.loss, m.first_out, m.first_targets
    class_dim = (
        opts["class_dim"] if opts["class_dim"] is not None else (ctx.loss_class_dim if opts["kind"] == "auto" else None)
    )
    dim, units = _units(first_out, kind, class_dim)
    final_layer = find_final_layer(m.calls, units)
    targets_all = ctx.targets("train")
    if targets_all is None:
        targets_all = first_targets
    details: dict[str, Any] = {
        "loss_kind": kind,
        "loss_at_init": loss0,
        "examples": m.examples,
        "units": units,
        "final_layer": final_layer,
    }
    shape_problem = None
    # elementwise losses broadcast mismatched shapes: (B, 1) against (B,) gives (B, B)
    if (
        kind in ("mse", "bce_logits", "bce")
        and isinstance(first_targets, torch.Tensor)
        and first_out.shape != first_targets.shape
    ):
        shape_problem = (tuple(first_out.shape), tuple(first_targets.shape))
    try:
        prior = prior_of(kind, targets_all.to("cpu"), units, dim)
    except RuntimeError:
        prior = None
    if prior is None:
        return CheckResult(
            NAME,
            "skip",
            f"loss at init {loss0:.4g}",
            "-",
            "The targets do not fit the model's outputs in a way twinrun understands, so the loss the "
            "prior gives could not be computed.",
            f"declare which output dimension holds the classes: --check-option {NAME}.class_dim=N",
            details=details,
        )
    uniform, best = prior["uniform"], prior["prior"]
    with_bias = math.nan
    if final_layer is not None and shape_problem is None:
        trial = ctx.fresh().model
        if _set_bias(trial, final_layer, prior["bias"]):
            with_bias = _measure(ctx, trial, opts["examples"]).loss
    details.update(
        uniform_loss=uniform,
        prior_loss=best,
        loss_with_prior_bias=with_bias,
        prior=prior["prior_values"].tolist(),
        bias=prior["bias"].tolist(),
    )
    look = _outputs_look_like(first_out, dim) if kind in ("cross_entropy", "nll") and first_out.ndim >= 2 else {}
    details.update(look)
    what = {
        "cross_entropy": f"log C = log {units} = {uniform:.4g}",
        "nll": f"log C = log {units} = {uniform:.4g}",
        "bce_logits": f"log 2 = {uniform:.4g}",
        "bce": f"log 2 = {uniform:.4g}",
        "mse": f"mean squared target = {uniform:.4g}",
    }[kind]
    measured = f"{loss0:.4g}" + (f" ({with_bias:.4g} with the prior's bias)" if math.isfinite(with_bias) else "")
    expected = f"about {what}; the prior's best is {best:.4g}"
    bias_fix = _bias_fix(kind, final_layer, prior["bias"])
    fail_factor, warn_factor = (3.0, 1.5) if kind == "mse" else (2.0, 1.25)
    status, explanation, fix = (
        "pass",
        (
            f"Before any update, on the first {m.examples} training examples a run sees (train mode), the loss is "
            f"{loss0:.4g}. An unsure network gives about {what}; the best input-independent prediction "
            f"(the label prior) gives {best:.4g}"
            + (
                f", and this network with its final bias set to the prior gives {with_bias:.4g}."
                if math.isfinite(with_bias)
                else "."
            )
        ),
        "",
    )
    bias_helps = loss0 > 1.25 * with_bias if math.isfinite(with_bias) else loss0 > 1.25 * best
    if not math.isfinite(loss0):
        status = "fail"
        explanation += " The loss is not finite before any training: the forward pass or the loss overflows."
        fix = "look for log(0), division by zero or huge initial weights; check the inputs (input_stats)"
    elif look.get("probabilities") and kind == "cross_entropy":
        status = "fail"
        explanation += (
            " The outputs are already probabilities (non-negative, summing to 1 over classes), but "
            "cross-entropy applies log-softmax itself: softmax is applied twice, the gradients shrink and "
            f"the loss cannot go below log(1 + (C-1)/e) = {math.log(1 + (units - 1) / math.e):.3g}."
        )
        fix = "remove the final softmax from the model (return logits), or use NLLLoss on log_softmax outputs"
    elif kind == "nll" and not look.get("log_probabilities", True):
        status = "fail"
        explanation += (
            " NLLLoss expects log-probabilities, but the outputs' logsumexp over classes is not 0: the model "
            "returns raw scores (or probabilities), so the loss is not a likelihood and can go negative."
        )
        fix = "end the model with log_softmax, or use CrossEntropyLoss on the raw logits"
    elif shape_problem is not None:
        status = "fail"
        explanation += (
            f" The outputs have shape {shape_problem[0]} but the targets {shape_problem[1]}: elementwise "
            "losses broadcast them against each other and compare every output with every target."
        )
        fix = "make the shapes equal, e.g. outputs.squeeze(-1) or targets.unsqueeze(-1)"
    elif loss0 > fail_factor * uniform:
        status = "fail"
        explanation += (
            f" It is {loss0 / uniform:.1f}x the unsure value: the network starts confidently wrong, so the first "
            "steps are spent shrinking the output scale (a 'hockey stick' loss curve) and some units may "
            "saturate."
        )
        fix = "initialise the final layer with small weights (e.g. scale them by 0.01) and " + bias_fix
    elif uniform > 1.5 * best and bias_helps:
        status = "warn"
        explanation += (
            f" The labels are far from what a neutral output assumes (the prior's loss {best:.4g} is well below "
            f"{uniform:.4g}), so the first steps only learn the label frequencies or the target mean; starting "
            "from the prior saves them."
        )
        fix = bias_fix
    elif loss0 > warn_factor * uniform:
        status = "warn"
        explanation += f" It is {loss0 / uniform:.2f}x the unsure value: the outputs start too large."
        fix = "scale down the final layer's initial weights; " + bias_fix
    elif loss0 < 0.8 * best:
        status = "warn"
        explanation += (
            " The untrained network already beats the best input-independent prediction: the inputs may "
            "contain the labels (leakage), or the loss is not computed on what you think."
        )
        fix = "check how inputs are built from the data (see data_leakage, input_stats) and the loss arguments"
    else:
        explanation += " The network starts unsure, as it should."
    if opts["apply_bias"]:
        applied = final_layer is not None and all(
            _set_bias(model, final_layer, prior["bias"])
            for model in [ctx.state.model, *([ctx.user_model] if ctx.user_model is not None else [])]
        )
        details["bias_applied"] = applied
        explanation += (
            f" The bias of {final_layer} was set to the prior, as asked; later checks use it."
            if applied
            else " No final layer with one bias per output was found, so no bias was applied."
        )
    return CheckResult(NAME, status, measured, expected, explanation, fix, details=details)  # type: ignore[arg-type]


def _bias_fix(kind: str, layer: str | None, bias: torch.Tensor) -> str:
    values = ", ".join(f"{v:.3g}" for v in bias.tolist()[:12]) + (", ..." if bias.numel() > 12 else "")
    formula = {
        "cross_entropy": "log p",
        "nll": "log p",
        "bce_logits": "log(p/(1-p))",
        "bce": "log(p/(1-p))",
        "mse": "the target mean",
    }[kind]
    where = f"model.{layer}.bias" if layer else "the final layer's bias"
    return (
        f"set {where} to {formula} = [{values}] (torch.nn.init or .data.copy_), "
        f"or rerun with --apply-init-bias to try it"
    )


CHECK = Check(
    name=NAME,
    title="loss at initialisation against the label prior",
    fn=check_loss_at_init,
    options={
        "kind": Option(
            "auto",
            "the loss: auto (from the loss function) or one of " + ", ".join(LOSS_KINDS),
            choices=("auto", *LOSS_KINDS),
        ),
        "examples": Option(512, "training examples (the first batches of a run) the loss is averaged over"),
        "class_dim": Option(
            None,
            "output dimension holding the classes/units (default: 1 for cross-entropy, the last otherwise)",
            types=(int,),
            nullable=True,
        ),
        "apply_bias": Option(
            False,
            "set the final layer's bias to the prior's value; later checks (and a model "
            "object given to run_checks) use it",
        ),
    },
)
