"""The members' training metrics of a batched step in one call per metric, where that changes no number.

twinrun's own metrics (``accuracy``, ``mse``, ``mae``) give each example a value
from its own row alone, so on ``[K, B, ...]`` outputs they are computed once
over the ``K * B`` rows and averaged per member: the same per-example values,
and each member's mean over its row of ``B``, bit for bit what ``metric(out_k,
y).mean()`` gives (tested). A metric of the user's may look across the batch,
so it is called member by member, as are outputs that are not one stacked tensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from twinrun.spec import Metric, accuracy, mae, mse

__all__ = ["batched_metrics", "row_wise"]

_ROW_WISE = frozenset({accuracy.fn, mse.fn, mae.fn})


def row_wise(metrics: Mapping[str, Metric]) -> bool:
    """Whether every metric is one of twinrun's own, each example's value from its own row alone."""
    return all(getattr(m, "fn", None) in _ROW_WISE for m in metrics.values())


def batched_metrics(
    out: Any, targets: Sequence[Any], metrics: Mapping[str, Metric], output_keys: Sequence[Any]
) -> torch.Tensor | None:
    """``[K, n_metrics]`` on the device: member ``k``'s mean of each metric, or ``None`` (member by member)."""
    k = len(targets)
    if not isinstance(out, torch.Tensor) or out.ndim < 2 or out.shape[0] != k or not metrics:
        return None
    if any(key != "auto" for key in output_keys) or any(
        getattr(m, "fn", None) not in _ROW_WISE for m in metrics.values()
    ):
        return None
    first = targets[0]
    if not all(isinstance(t, torch.Tensor) and t.shape == first.shape for t in targets) or first.shape[:1] != (
        out.shape[1],
    ):
        return None
    rows = out.detach().reshape(k * out.shape[1], *out.shape[2:])
    flat_targets = torch.cat(list(targets))
    return torch.stack([metric(rows, flat_targets).float().view(k, -1).mean(1) for metric in metrics.values()], 1)
