"""Check 13, ``batch_divisibility``: the batch splits evenly over the devices that share it.

Data-parallel training splits each batch over N devices. A batch size not
divisible by N gives devices different shard sizes (or silently drops/pads
examples), so the effective batch and the gradient average differ from what
was configured; a shard of one example breaks batch norm.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from twinrun.checks._context import CheckContext
from twinrun.checks._dependencies import batch_norm_layers
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult

__all__ = ["CHECK"]

NAME = "batch_divisibility"


def check_batch_divisibility(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    devices = opts["devices"]
    source = "declared"
    if devices is None and ctx.device.type == "cuda":
        devices, source = torch.cuda.device_count(), "visible CUDA devices"
    if devices is None or devices <= 1:
        return CheckResult(
            NAME,
            "skip",
            f"{devices or 1} device",
            "-",
            "The batch is not shared between devices, so there is nothing to divide.",
            f"if training will run data-parallel, declare the device count: --devices N "
            f"(or check_options={{'{NAME}': {{'devices': N}}}})",
            details={"devices": devices or 1},
        )
    sizes = {"batch_size": ctx.settings.batch_size, "eval_batch_size": ctx.settings.eval_batch_size}
    details: dict[str, Any] = {"devices": devices, "source": source, **sizes}
    uneven = {k: v % devices for k, v in sizes.items() if v % devices}
    shard = ctx.settings.batch_size // devices
    norms = batch_norm_layers(ctx.state.model)
    details.update(per_device=shard, remainders=uneven, batch_norm=norms)
    measured = ", ".join(f"{k} {v} = {devices} x {v // devices} + {v % devices}" for k, v in sizes.items())
    expected = f"both divisible by {devices}"
    explanation = f"The batch is to be shared by {devices} devices ({source})."
    if "batch_size" in uneven:
        return CheckResult(
            NAME,
            "fail",
            measured,
            expected,
            explanation
            + (
                f" {ctx.settings.batch_size} examples do not split evenly: devices get different shard sizes (or "
                "examples are dropped or padded), so gradients are averaged with unequal weights and the "
                "effective batch is not the one configured."
            ),
            f"use a multiple of {devices}: --set "
            f"batch_size={max(devices, round(ctx.settings.batch_size / devices) * devices)}",
            details=details,
        )
    if shard < 2 and norms:
        return CheckResult(
            NAME,
            "fail",
            measured,
            expected,
            explanation
            + (
                f" Each device gets {shard} example(s), and batch norm ({norms[0]}...) cannot estimate statistics "
                "from one example."
            ),
            f"use at least 2 examples per device: --set batch_size={2 * devices}",
            details=details,
        )
    if uneven:
        return CheckResult(
            NAME,
            "warn",
            measured,
            expected,
            explanation
            + (
                f" The evaluation batch ({ctx.settings.eval_batch_size}) does not split evenly; some devices idle or "
                "pad at evaluation."
            ),
            f"use a multiple of {devices}: --set eval_batch_size="
            f"{max(devices, round(ctx.settings.eval_batch_size / devices) * devices)}",
            details=details,
        )
    return CheckResult(
        NAME,
        "pass",
        measured,
        expected,
        explanation + (f" Each device gets {shard} training examples."),
        details=details,
    )


CHECK = Check(
    name=NAME,
    title="the batch size divides over the devices sharing it",
    fn=check_batch_divisibility,
    options={
        "devices": Option(None, "how many devices will share each batch (data-parallel)", types=(int,), nullable=True),
    },
)
