"""Check 11, ``eval_determinism``: in eval mode the same batch gives the same outputs.

After ``model.eval()`` the model is called on the same batch twice with the
global generators in different states, and on half of that batch; outputs must
match, and no buffer (batch-norm running statistics) may change. Dropout left on
(``F.dropout(x, training=True)``) makes the two calls differ; batch norm left in
training mode makes outputs depend on the rest of the batch and updates the
running statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from twinrun.checks._context import CheckContext, first_tensor
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult

__all__ = ["CHECK"]

NAME = "eval_determinism"


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def check_eval_determinism(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    state = ctx.fresh()
    model = state.model
    inputs, _ = ctx.batch(1)
    k = max(2, min(opts["examples"], ctx.settings.batch_size))
    x = inputs[:k] if isinstance(inputs, torch.Tensor) else inputs
    half = max(1, k // 2)
    model.eval()
    still_training = [n or type(model).__name__ for n, m in model.named_modules() if m.training]
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    with torch.no_grad():
        with ctx.streams.isolated("checks", NAME, 1, devices=[ctx.device]):
            first = first_tensor(model(x))
        with ctx.streams.isolated("checks", NAME, 2, devices=[ctx.device]):
            second = first_tensor(model(x))
        with ctx.streams.isolated("checks", NAME, 1, devices=[ctx.device]):
            part = first_tensor(model(x[:half])) if isinstance(x, torch.Tensor) else None
    if first is None or second is None:
        return CheckResult(
            NAME, "skip", "the model returned no tensor", "-", "The outputs hold no tensor to compare.", ""
        )
    scale = float(first.double().abs().max()) if first.numel() else 0.0
    relative = opts["tolerance"] if opts["tolerance"] is not None else (1e-5 if ctx.device.type == "cpu" else 1e-3)
    tol = relative * (1.0 + scale)
    repeat = _max_diff(first, second)
    batch_dep = _max_diff(first[:half], part) if part is not None and part.shape == first[:half].shape else 0.0
    changed = [n for n, b in model.named_buffers() if n in buffers and not torch.equal(buffers[n], b)]
    details = {
        "examples": k,
        "repeat_max_diff": repeat,
        "half_batch_max_diff": batch_dep,
        "output_scale": scale,
        "tolerance": tol,
        "buffers_changed": changed,
        "modules_training_after_eval": still_training,
    }
    measured = (
        f"max |out1 - out2| = {repeat:.3g}; batch of {k} vs {half}: {batch_dep:.3g}; buffers changed: {len(changed)}"
    )
    expected = f"0 (within {tol:.2g}); no buffer changes"
    explanation = (
        f"In eval mode the model ran twice on the same {k} examples with the global random generators in "
        f"different states, then on the first {half} of them alone."
    )
    problems: list[tuple[str, str]] = []
    has_dropout = any(isinstance(m, nn.modules.dropout._DropoutNd) for m in model.modules())
    has_norm = any(isinstance(m, nn.modules.batchnorm._NormBase) for m in model.modules())
    details.update(declared_stochastic=bool(opts["stochastic"]), dropout_modules=has_dropout, batch_norm=has_norm)
    if repeat > tol and opts["stochastic"]:
        return CheckResult(
            NAME,
            "pass",
            measured,
            "outputs may vary (declared stochastic)",
            explanation
            + (
                f" The two calls differ by up to {repeat:.3g}, as a model declared stochastic may (it samples by "
                "design): its validation scores carry that sampling noise; average several calls to reduce it."
            ),
            details=details,
        )
    if repeat > tol:
        cause = (
            "Dropout called as F.dropout(x, p, training=True) (or without training=self.training), or a "
            "noise layer that ignores self.training, does this"
            if has_dropout
            else "The model has no dropout module: it draws random numbers in its forward in eval mode (a "
            "sampling step such as a VAE's reparameterisation, torch.randn_like, or a functional dropout)"
        )
        problems.append(
            (
                (
                    f" The two calls differ by up to {repeat:.3g}: randomness stays on in eval mode, so "
                    "validation scores "
                    f"are noisy and predictions change from call to call. {cause}."
                ),
                (
                    "pass training=self.training to F.dropout (or use nn.Dropout modules), and gate any noise on "
                    "self.training; a model that samples by design: declare it, --check-option "
                    f"{NAME}.stochastic=True"
                ),
            )
        )
    if batch_dep > tol and repeat <= tol:  # with randomness on, the batch comparison says nothing more
        where = (
            "a normalisation still uses batch statistics in eval mode (F.batch_norm(..., training=True), "
            "or a module whose train()/eval() is overridden)"
            if has_norm
            else "the model has no batch norm, so some other operation mixes the examples of a batch in eval "
            "mode (a reshape across the batch dimension, a statistic over it)"
        )
        problems.append(
            (
                f" An example's output changes by up to {batch_dep:.3g} with the rest of the batch: {where}.",
                "use nn.BatchNorm modules, or pass training=self.training to F.batch_norm"
                if has_norm
                else "find the operation that reduces or reshapes across dimension 0 (batch_independence charts it)",
            )
        )
    if changed:
        problems.append(
            (
                (
                    f" Buffers changed during eval-mode calls: {', '.join(changed[:5])}. Running statistics are being "
                    "updated at evaluation, so evaluating changes the model."
                ),
                "make sure every batch norm is in eval mode when model.eval() is called",
            )
        )
    if not problems and still_training:
        return CheckResult(
            NAME,
            "warn",
            measured,
            expected,
            explanation
            + (
                f" Outputs match, but after model.eval() these modules still report training=True: "
                f"{', '.join(still_training[:5])} (an overridden train()/eval())."
            ),
            "call super().train(mode) in any train() override",
            details=details,
        )
    if not problems:
        return CheckResult(
            NAME,
            "pass",
            measured,
            expected,
            explanation + (" The outputs are identical: evaluation is deterministic and per-example."),
            details=details,
        )
    return CheckResult(
        NAME,
        "fail",
        measured,
        expected,
        explanation + "".join(p[0] for p in problems),
        "; ".join(p[1] for p in problems),
        details=details,
    )


CHECK = Check(
    name=NAME,
    title="eval mode: the same batch gives the same outputs",
    fn=check_eval_determinism,
    options={
        "examples": Option(16, "examples in the batch"),
        "stochastic": Option(
            False,
            "the model samples by design in eval mode (a VAE, a diffusion model): differing outputs are then expected",
            types=(bool,),
        ),
        "tolerance": Option(
            None,
            "largest difference allowed, relative to 1 + the largest output (default "
            "1e-5 on the CPU, 1e-3 on accelerators, where TF32 and kernel choice vary with the "
            "batch size)",
            types=(float,),
            nullable=True,
        ),
    },
)
