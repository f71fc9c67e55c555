"""Checks 5 and 6: chart what each output depends on, with backprop.

The gradient of one output with respect to the inputs is exactly zero wherever
that output does not depend on the input, so autograd draws the dependency map:

``batch_independence``
    the output of example i must not depend on the input of example j != i
    (a ``view`` where a ``permute`` was meant mixes examples silently).
``causality``
    for sequence models, the output at position t must not depend on inputs
    after t (or, declared strict, at or after t): a causal mask off by one
    lets the model read the answer.

Integer inputs (token ids) are differentiated at the output of the first
embedding that runs on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from twinrun.checks._context import CheckContext, first_tensor
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult
from twinrun.engine.parts import model_batch_dim

__all__ = ["BATCH_INDEPENDENCE", "CAUSALITY", "batch_norm_layers", "forward_with_input_grad"]

_TOLERANCE = 1e-6


def batch_norm_layers(model: nn.Module) -> list[str]:
    """Modules that mix the examples of a batch in training mode by design."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def forward_with_input_grad(model: nn.Module, inputs: Any) -> tuple[Any, torch.Tensor | None, str]:
    """Run ``model`` so that gradients reach the inputs: (outputs, tensor to differentiate by, what it is).

    The tensor is batch-first: for a sequence-first model (``batch_dim=1``) whose embedding runs on
    ``(time, batch)`` tokens, it is the embedding's output with the batch moved to the front, so gradients
    with respect to it index examples along dimension 0 as for any other model.
    """
    if isinstance(inputs, torch.Tensor) and inputs.is_floating_point():
        x = inputs.detach().clone().requires_grad_(True)
        return model(x), x, "the inputs"
    if not isinstance(inputs, torch.Tensor):
        return model(inputs), None, "none"
    captured: list[torch.Tensor] = []
    names = {m: n for n, m in model.named_modules()}
    where: list[str] = []
    bdim = model_batch_dim(model)
    moved_shape = tuple(inputs.movedim(0, bdim).shape) if bdim and inputs.ndim > bdim else None

    def hook(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor | None:
        if captured or not isinstance(output, torch.Tensor):
            return None
        lead = tuple(output.shape[: inputs.ndim])
        if lead == tuple(inputs.shape):
            leaf = output.detach().requires_grad_(True)
            captured.append(leaf)
            where.append(names[module])
            return leaf
        if moved_shape is not None and lead == moved_shape:
            leaf = output.detach().movedim(bdim, 0).requires_grad_(True)  # batch-first leaf
            captured.append(leaf)
            where.append(names[module])
            return leaf.movedim(0, bdim)
        return None  # e.g. a position embedding shared by the batch

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Embedding)]
    try:
        outputs = model(inputs)
    finally:
        for h in handles:
            h.remove()
    if not captured:
        return outputs, None, "none"
    return outputs, captured[0], f"the output of embedding {where[0]!r}"


def _time_major_rnns(model: nn.Module) -> list[str]:
    """Recurrent layers (and transformer layers) that read dimension 0 as time (no ``batch_first``)."""
    kinds = (nn.RNNBase, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.MultiheadAttention)
    return [
        f"{type(m).__name__} {n!r}"
        for n, m in model.named_modules()
        if isinstance(m, kinds) and not getattr(m, "batch_first", True)
    ]


def _picks(n: int, count: int) -> list[int]:
    return sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(min(count, n))})


# ---------------------------------------------------------------------- 5
def check_batch_independence(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    name = "batch_independence"
    state = ctx.fresh()
    model = state.model
    norms = batch_norm_layers(model)
    inputs, _ = ctx.batch(1)
    k = min(opts["examples"], ctx.settings.batch_size)
    if k < 2:
        return CheckResult(
            name,
            "skip",
            f"batches of {k}",
            "-",
            "With one example per batch there is no other example to depend on.",
            "",
        )
    x = inputs[:k] if isinstance(inputs, torch.Tensor) else inputs
    with (
        ctx.mode(model, training=not norms),
        torch.enable_grad(),
        ctx.streams.isolated("dropout", 1, devices=[ctx.device]),
    ):
        outputs, wrt, what = forward_with_input_grad(model, x)
        out = first_tensor(outputs)
        mode = (
            "eval mode, because " + ", ".join(norms[:4]) + " (batch norm) mixes examples in training mode by design"
            if norms
            else "training mode"
        )
        if wrt is None or out is None or not out.requires_grad:
            return CheckResult(
                name,
                "skip",
                "no differentiable input",
                "-",
                "The inputs are neither floating-point tensors nor token ids read by an nn.Embedding, so "
                "autograd cannot chart which outputs depend on which examples.",
                "nothing to do; to check it anyway, call the model on float inputs in a test",
            )
        bdim = opts["batch_dim"] % out.ndim
        generator = ctx.streams.torch("checks", name, device=out.device)
        rows: list[dict[str, Any]] = []
        for i in _picks(k, opts["samples"]):
            own = out.select(bdim, i)
            weights = torch.randn(own.shape, generator=generator, device=own.device, dtype=own.dtype)
            (grad,) = torch.autograd.grad((own * weights).sum(), wrt, retain_graph=True, allow_unused=True)
            if grad is None:
                grad = torch.zeros_like(wrt)
            per_example = grad.reshape(grad.shape[0], -1).norm(dim=1)
            others = torch.cat([per_example[:i], per_example[i + 1 :]])
            top = int(torch.argmax(others)) if others.numel() else 0
            rows.append(
                {
                    "i": i,
                    "own": float(per_example[i]),
                    "max_other": float(others.max()) if others.numel() else 0.0,
                    "worst_j": top if top < i else top + 1,
                }
            )
    leaks = [r for r in rows if r["max_other"] > _TOLERANCE * max(r["own"], 1e-12) and r["max_other"] > 0]
    details = {
        "examples": k,
        "checked": rows,
        "mode": "eval" if norms else "train",
        "batch_norm": norms,
        "differentiated": what,
    }
    worst = max(rows, key=lambda r: r["max_other"] / max(r["own"], 1e-30))
    ratio = worst["max_other"] / max(worst["own"], 1e-30)
    measured = f"max |d out_i / d x_j| / |d out_i / d x_i| = {ratio:.3g} (j != i)"
    expected = "0 (each output depends on its own example only)"
    explanation = (
        f"On {k} examples of the first batch, in {mode}, the gradient of example i's output (a random "
        f"projection of it) was taken with respect to {what} of every example, for i in "
        f"{[r['i'] for r in rows]}."
    )
    if all(r["own"] == 0 for r in rows):
        return CheckResult(
            name,
            "warn",
            "outputs do not depend on any input",
            expected,
            explanation + (" The gradient is zero everywhere: the outputs do not depend on the inputs at all."),
            "look for a detached or overwritten input in forward (x.detach(), torch.zeros_like(x), x * 0)",
            details=details,
        )
    if leaks:
        bad = leaks[0]
        time_major = _time_major_rnns(model) if model_batch_dim(model) == 0 else []
        details["time_major_rnns"] = time_major
        if time_major:
            return CheckResult(
                name,
                "fail",
                measured,
                expected,
                explanation
                + (
                    f" The output of example {bad['i']} depends on example {bad['worst_j']}'s input: the model "
                    f"mixes examples of a batch. It has recurrent layers without batch_first=True "
                    f"({', '.join(time_major[:3])}): they read dimension 0 as time, and the data comes batch-first, "
                    "so they recur across the examples of a batch and each output sees the examples before it."
                ),
                "build them with batch_first=True, or, for a model written for (time, batch) inputs, declare "
                "it: --set batch_dim=1 (Experiment(batch_dim=1), run_checks(settings={'batch_dim': 1}))",
                details=details,
            )
        return CheckResult(
            name,
            "fail",
            measured,
            expected,
            explanation
            + (
                f" The output of example {bad['i']} depends on example {bad['worst_j']}'s input: the model "
                "mixes examples of a batch. Its predictions then change with what else is in the batch, and "
                "it can cheat by reading other examples. The usual cause is a reshape across the batch "
                "dimension: view/reshape where permute/transpose was meant (e.g. (batch, time) to (time, "
                "batch)), or a mean/softmax/normalisation over dim 0."
            ),
            "find the view/reshape that moves the batch dimension and use permute/transpose (then "
            ".contiguous()); reductions should use the feature dimensions, not dim 0",
            details=details,
        )
    return CheckResult(
        name,
        "pass",
        measured,
        expected,
        explanation + (" Every cross-example gradient is exactly zero: examples do not leak into each other."),
        details=details,
    )


BATCH_INDEPENDENCE = Check(
    name="batch_independence",
    title="no example's output depends on another example's input",
    fn=check_batch_independence,
    options={
        "examples": Option(8, "batch size used for the check"),
        "samples": Option(3, "how many outputs i to differentiate"),
        "batch_dim": Option(0, "dimension of the model output that indexes examples"),
    },
)


# ---------------------------------------------------------------------- 6
def check_causality(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    name = "causality"
    detected = opts["time_dim"] is None and opts["input_time_dim"] is None and ctx.next_token
    if detected:
        opts = {**opts, "time_dim": 1}
    if opts["time_dim"] is None and opts["input_time_dim"] is None:
        return CheckResult(
            name,
            "skip",
            "not declared a sequence model",
            "-",
            "Causality applies to models whose output at position t must not see later inputs; the "
            "experiment does not declare this one such a model.",
            f"declare it: check_options={{'{name}': {{'time_dim': 1}}}} in the experiment or "
            f"--check-option {name}.time_dim=1 (add strict=True if output t may only see inputs before t)",
        )
    in_dim = opts["input_time_dim"] if opts["input_time_dim"] is not None else opts["time_dim"]
    out_dim = opts["output_time_dim"] if opts["output_time_dim"] is not None else opts["time_dim"]
    strict = bool(opts["strict"])
    state = ctx.fresh()
    model = state.model
    inputs, _ = ctx.batch(1)
    k = min(opts["examples"], ctx.settings.batch_size)
    x = inputs[:k] if isinstance(inputs, torch.Tensor) else inputs
    with ctx.mode(model), torch.enable_grad(), ctx.streams.isolated("eval", 0, devices=[ctx.device]):
        outputs, wrt, what = forward_with_input_grad(model, x)
        out = first_tensor(outputs)
        if wrt is None or out is None or not out.requires_grad:
            return CheckResult(
                name,
                "skip",
                "no differentiable input",
                "-",
                "The inputs are neither floating-point tensors nor token ids read by an "
                "nn.Embedding, so autograd cannot chart which positions outputs depend on.",
                "nothing to do",
            )
        t_in, t_out = int(wrt.shape[in_dim]), int(out.shape[out_dim])
        if t_in != t_out:
            return CheckResult(
                name,
                "skip",
                f"{t_out} output vs {t_in} input positions",
                "equal lengths",
                f"Dimension {out_dim} of the output has {t_out} positions but dimension {in_dim} of "
                f"{what} has {t_in}; position t cannot be matched with position t.",
                f"declare the time dimensions: --check-option {name}.input_time_dim=N and {name}.output_time_dim=M",
            )
        generator = ctx.streams.torch("checks", name, device=out.device)
        positions = _picks(t_out, opts["positions"])
        rows: list[dict[str, Any]] = []
        sample_out = out.select(0, 0)
        for t in positions:
            at_t = sample_out.select(out_dim - 1, t)
            weights = torch.randn(at_t.shape, generator=generator, device=at_t.device, dtype=at_t.dtype)
            (grad,) = torch.autograd.grad((at_t * weights).sum(), wrt, retain_graph=True, allow_unused=True)
            g = torch.zeros_like(wrt[0]) if grad is None else grad[0]
            per_pos = g.movedim(in_dim - 1, 0).reshape(t_in, -1).norm(dim=1)
            limit = t if strict else t + 1  # allowed: positions < limit
            allowed = per_pos[:limit]
            future = per_pos[limit:]
            leak_at = int(torch.argmax(future)) + limit if future.numel() else None
            rows.append(
                {
                    "t": t,
                    "allowed": float(allowed.max()) if allowed.numel() else 0.0,
                    "future": float(future.max()) if future.numel() else 0.0,
                    "leak_at": leak_at,
                }
            )
    bad = [r for r in rows if r["future"] > 0 and r["future"] > _TOLERANCE * max(r["allowed"], 1e-12)]
    rule = "before t" if strict else "up to t"
    details = {
        "strict": strict,
        "positions": t_out,
        "checked": rows,
        "differentiated": what,
        "input_time_dim": in_dim,
        "output_time_dim": out_dim,
        "declared": not detected,
        "detected": "next-token targets" if detected else None,
    }
    worst_ratio = max((r["future"] / max(r["allowed"], 1e-30) for r in rows), default=0.0)
    measured = (
        f"output {bad[0]['t']} depends on input {bad[0]['leak_at']}"
        if bad
        else f"max future/allowed gradient {worst_ratio:.3g}"
    )
    expected = f"output t depends only on inputs {rule}"
    explanation = (
        (
            "The targets are the inputs shifted by one position (a next-token language model), so the model "
            "must be causal along dimension 1. "
            if detected
            else ""
        )
        + f"For {len(positions)} positions t of a sequence of {t_out}, the gradient of the output at t was "
        f"taken with respect to {what} at every position (eval mode)."
    )
    if bad:
        first = bad[0]
        offset = first["leak_at"] - first["t"]
        return CheckResult(
            name,
            "fail",
            measured,
            expected,
            explanation
            + (
                f" The output at position {first['t']} depends on the input at position {first['leak_at']} "
                f"({offset:+d}), though it may only see inputs {rule}: the model reads the future, so training "
                "looks great and generation fails. Typical causes: a causal mask off by one (triu diagonal, "
                "< vs <=), a convolution padded on both sides instead of only on the left, targets not shifted "
                "against inputs, or a layer (attention, pooling, normalisation) across time."
            ),
            "mask with torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1) for 'up to t' "
            "(diagonal=0 for 'before t'), pad convolutions (kernel-1)*dilation on the left only, and keep "
            "every time-mixing layer causal",
            details=details,
        )
    return CheckResult(
        name,
        "pass",
        measured,
        expected,
        explanation + (f" No output depends on an input it may not see ({rule})."),
        details=details,
    )


CAUSALITY = Check(
    name="causality",
    title="sequence outputs depend only on past inputs",
    fn=check_causality,
    options={
        "time_dim": Option(
            None, "time dimension of inputs and outputs (declaring it turns the check on)", types=(int,), nullable=True
        ),
        "input_time_dim": Option(None, "time dimension of the inputs, if not time_dim", types=(int,), nullable=True),
        "output_time_dim": Option(None, "time dimension of the outputs, if not time_dim", types=(int,), nullable=True),
        "strict": Option(False, "output t may only see inputs before t (not t itself)"),
        "positions": Option(16, "how many positions t to check (all when the sequence is shorter)"),
        "examples": Option(2, "sequences in the batch used for the check"),
    },
)
