"""The members' losses of a batched step in one call, where that changes no gradient.

K candidates' ``nn.CrossEntropyLoss()`` (mean over the batch, no class
weights, no label smoothing) on ``[K, B, C]`` logits and ``[B]`` class targets
are computed as one per-example cross-entropy over the ``K * B`` rows, then a
mean per member. The per-example losses and every gradient are bit-identical to
K separate calls (tested); the recorded mean of a member may differ from
``F.cross_entropy``'s own in the last bit (its sum runs in another order:
within 3e-7 relative). Anything else is computed member by member.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from twinrun.engine._build import CandidateState

__all__ = ["batched_loss", "plain_cross_entropy"]


def plain_cross_entropy(loss_fn: Any) -> tuple[Any, ...] | None:
    """The settings of an ``nn.CrossEntropyLoss`` this path computes exactly (``None``: another loss)."""
    if type(loss_fn) is not nn.CrossEntropyLoss:
        return None
    own = vars(loss_fn)  # read directly: nn.Module's lookup of a buffer costs a microsecond a member, every step
    try:
        weight, reduction, smoothing, ignore = (
            own["_buffers"]["weight"],
            own["reduction"],
            own["label_smoothing"],
            own["ignore_index"],
        )
    except KeyError:  # another torch's layout
        weight, reduction = loss_fn.weight, loss_fn.reduction
        smoothing, ignore = loss_fn.label_smoothing, loss_fn.ignore_index
    if weight is not None or reduction != "mean" or smoothing != 0.0:
        return None
    return (ignore,)


def batched_loss(
    members: Sequence[CandidateState], out: Any, targets: Sequence[Any], shared: bool
) -> torch.Tensor | None:
    """The ``[K]`` losses in one call, or ``None`` when this loss or these outputs need the members' own calls."""
    if not isinstance(out, torch.Tensor) or out.ndim != 3 or not members:
        return None
    first = plain_cross_entropy(members[0].loss_fn)
    if first is None or any(m.loss_takes is None or plain_cross_entropy(m.loss_fn) != first for m in members):
        return None  # the first step decides what each member's loss takes: member by member until then
    y = targets[0]
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.is_floating_point():
        return None
    k, b = out.shape[0], out.shape[1]
    flat_targets = torch.cat([y] * k if shared else list(targets))
    if flat_targets.shape[0] != k * b:
        return None
    per_example = F.cross_entropy(out.reshape(k * b, -1), flat_targets, reduction="none", ignore_index=first[0])
    # the mean is over the targets not ignored: one count for all members when they share the batch
    kept = (y != first[0]).sum() if shared else (flat_targets != first[0]).view(k, b).sum(1)
    return cast("torch.Tensor | None", per_example.view(k, b).sum(1) / kept)
