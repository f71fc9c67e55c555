"""Check ``position_sensitivity``: a model that should use position must see it.

A transformer's attention and layer norms are blind to order: without a
positional embedding that reaches the computation, a token model's per-position
outputs merely follow a permutation of its inputs (equivariance), and a ViT's
class-token output does not change at all when its patches are shuffled
(invariance). The check permutes the positions of a batch (the tokens of a
sequence; the patches of an image, for a model with a patch embedding, i.e. a
``Conv2d`` whose stride equals its kernel) and compares the outputs with the
unpermuted ones, permuted alike. Identical up to rounding means position is
ignored. A zero-initialised positional parameter adds nothing at
initialisation, so an order-blind model is measured again after a few training
steps before it fails.

It applies to next-token language models, to models with a patch embedding and
to token models with a parameter or buffer named for positions; models that are
order-invariant by design (bags, sets) have none of these, or may skip it.
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

NAME = "position_sensitivity"


def _patch_size(model: nn.Module) -> int | None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            k, s = module.kernel_size, module.stride
            return int(k[0]) if k == s and k[0] > 1 and k[0] == k[1] else None
    return None


def _positional(model: nn.Module) -> list[str]:
    named = [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]
    names = [n for n in named if any(w in n.lower() for w in ("pos", "wpe", "pe."))]
    names += [n for n, m in model.named_modules() if "pos" in n.lower().split(".")[-1] and n not in names]
    return names


def _permuted(x: torch.Tensor, layout: str, patch: int, perm: torch.Tensor) -> torch.Tensor:
    if layout == "tokens":
        return x[:, perm]
    b, c, h, w = x.shape
    gh, gw = h // patch, w // patch
    grid = x.reshape(b, c, gh, patch, gw, patch).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c, patch, patch)
    grid = grid[:, perm]
    return grid.reshape(b, gh, gw, c, patch, patch).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def _blindness(
    model: nn.Module, x: torch.Tensor, layout: str, patch: int, perm: torch.Tensor, ctx: CheckContext
) -> tuple[str | None, float]:
    """How the outputs follow the permutation: ``invariant``, ``equivariant`` or ``None``; the relative change."""
    with torch.no_grad(), ctx.mode(model), ctx.streams.isolated("eval", 0, devices=[ctx.device]):
        out = first_tensor(model(x))
        moved = first_tensor(model(_permuted(x, layout, patch, perm)))
    assert out is not None and moved is not None
    scale = float(out.double().abs().max()) + 1e-12
    tolerance = 1e-4 * scale
    change = float((moved.double() - out.double()).abs().max())
    if out.shape != moved.shape:
        return None, change / scale
    if change <= tolerance:
        return "invariant", change / scale
    n = len(perm)
    for dim in range(1, out.ndim):
        if (
            out.shape[dim] == n
            and float((moved.double() - out.index_select(dim, perm).double()).abs().max()) <= tolerance
        ):
            return "equivariant", change / scale
    return None, change / scale


def check_position_sensitivity(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    state = ctx.fresh()
    model = state.model
    inputs, _ = ctx.batch(1)
    k = max(1, min(opts["examples"], ctx.settings.batch_size))
    if not isinstance(inputs, torch.Tensor):
        return CheckResult(
            NAME,
            "skip",
            "inputs are not a tensor",
            "-",
            "The check permutes positions of a tensor input; these inputs are a structure.",
            "",
        )
    x = inputs[:k]
    patch = _patch_size(model)
    positional = _positional(model)
    if not x.is_floating_point() and x.ndim == 2 and x.shape[1] >= 3 and (ctx.next_token or positional):
        layout, n, what = "tokens", int(x.shape[1]), "the tokens of each sequence"
    elif (
        x.is_floating_point()
        and x.ndim == 4
        and patch
        and x.shape[2] % patch == 0
        and x.shape[3] % patch == 0
        and (x.shape[2] // patch) * (x.shape[3] // patch) >= 3
    ):
        layout, n, what = "patches", (x.shape[2] // patch) * (x.shape[3] // patch), f"the {patch}x{patch} patches"
    else:
        return CheckResult(
            NAME,
            "skip",
            "no positions to permute",
            "-",
            "Position sensitivity applies to token-sequence models (next-token targets, or a parameter named for "
            "positions) and to image models with a patch embedding (a Conv2d whose stride equals its kernel); "
            "this model is neither, and convolutions and recurrences see order by construction.",
            "",
        )
    generator = ctx.streams.torch("checks", NAME)
    perm = torch.randperm(n, generator=generator)
    while n > 1 and bool((perm == torch.arange(n)).any()):  # a derangement: every position moves
        perm = torch.randperm(n, generator=generator)
    perm = perm.to(x.device)
    blind, change = _blindness(model, x, layout, patch or 1, perm, ctx)
    trained = 0
    if blind is not None:  # a zero-initialised positional embedding adds nothing yet: train a little, look again
        for step in range(1, opts["train_steps"] + 1):
            ctx.train(state, step)
            trained = step
        blind, change = _blindness(model, x, layout, patch or 1, perm, ctx)
    details = {
        "layout": layout,
        "positions": n,
        "patch": patch,
        "relative_change": change,
        "blind": blind,
        "trained_steps": trained,
        "positional": positional,
    }
    measured = (
        f"outputs {blind} under a permutation of {n} positions"
        if blind
        else f"outputs changed by {change:.3g} (relative) under a permutation of {n} positions"
    )
    expected = "outputs change when positions are permuted"
    explanation = (
        f"{what.capitalize()} of {k} examples were permuted (every position moved) and the outputs "
        f"compared in eval mode with the outputs on the original order"
        + (f", at initialisation and again after {trained} training steps." if trained else ".")
    )
    if blind is None:
        return CheckResult(
            NAME,
            "pass",
            measured,
            expected,
            explanation + " The model uses the order of its positions.",
            details=details,
        )
    found = (
        f" The model has {', '.join(positional[:3])}, which evidently never reaches the output: it is "
        "not added (or added to a copy that is discarded)."
        if positional
        else " The model has no parameter or buffer named for positions."
    )
    return CheckResult(
        NAME,
        "fail",
        measured,
        expected,
        explanation
        + (
            f" The outputs are {blind} to the permutation: the model does not know where each position is, so it "
            "sees a sequence as a bag (of tokens or patches). Attention, layer norms and per-position layers are "
            "blind to order; only a positional embedding (or a causal mask, a convolution, a recurrence) adds it."
            + found
        ),
        "add the positional embedding to the token/patch embeddings in forward (x = x + self.pos_embed), "
        "after any class token is concatenated; if the model is order-invariant by design, skip this check "
        f"(--skip {NAME})",
        details=details,
    )


CHECK = Check(
    name=NAME,
    title="outputs depend on the order of positions (tokens, patches)",
    fn=check_position_sensitivity,
    options={
        "examples": Option(4, "examples whose positions are permuted"),
        "train_steps": Option(10, "training steps before a second look at an order-blind model"),
    },
)
