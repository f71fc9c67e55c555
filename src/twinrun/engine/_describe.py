"""What a candidate built outside an experiment file is, as data: the config a registry entry records."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["candidate_config", "plain_config"]


def plain_config(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-able data (hyperparameters, a framework's arguments): tensors of one value become
    numbers, other objects their ``repr`` (cut at 200 characters)."""
    if isinstance(value, Mapping) and depth < 8:
        return {str(k): plain_config(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and depth < 8:
        return [plain_config(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return repr(value)[:200]


def _qualname(obj: Any) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def candidate_config(
    model: nn.Module, optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None
) -> dict[str, Any]:
    """The model's class and size, the optimizer's class and hyperparameters per group, the scheduler's
    class and settings: what ``twinrun diff`` compares between two runs of your own loop."""
    out: dict[str, Any] = {
        "model": _qualname(model),
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    if optimizer is not None:
        out["optimizer"] = _qualname(optimizer)
        out["optimizer_groups"] = [
            plain_config({k: v for k, v in g.items() if k != "params"}) for g in optimizer.param_groups
        ]
    if scheduler is not None:
        out["scheduler"] = _qualname(scheduler)
        out["scheduler_settings"] = plain_config(
            {
                k: v
                for k, v in vars(scheduler).items()
                if not k.startswith("_") and k != "optimizer" and isinstance(v, (int, float, str, bool, list, tuple))
            }
        )
    return out
