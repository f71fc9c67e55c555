"""A vectorised group's evaluation in one forward per batch, where that changes no number.

Evaluating K candidates one by one pays K forwards of a small model and the
bookkeeping around each (eval mode, the stream, per-example values, copies to
the host): for 8 small MLPs on the digits' 360 validation examples, about
0.8 ms a candidate. A group whose forward is the layer-wise one (``_layerwise``:
each member's outputs are its own model's, bit for bit), whose loss is a plain
``nn.CrossEntropyLoss`` (per-example values bit-identical on the stacked rows, as
in ``_batched_loss``) and whose metrics are twinrun's own row-wise ones is
evaluated in one forward per batch instead, in the same ``eval`` stream and
eval mode. Anything else (``vmap``'s forward, another loss, a metric of the
user's, test-time augmentation, members on several devices) is evaluated one
candidate at a time by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from twinrun.engine._batched_loss import plain_cross_entropy
from twinrun.engine._batched_metrics import row_wise
from twinrun.engine._data import move_to
from twinrun.engine._evaluate import EvalOutput, EvalSet
from twinrun.engine._layerwise import NotPlain
from twinrun.engine._vector_step import BatchedGroup
from twinrun.spec import check_metric_output

__all__ = ["evaluate_together"]


def _fits(group: BatchedGroup, val: EvalSet) -> torch.device | None:
    """The members' one device if the group can be evaluated at once, else ``None``."""
    members = group.members
    if val.views is not None or group.stack is None or not group.stack.bound() or group.plain_forward() is None:
        return None
    settings = {plain_cross_entropy(m.loss_fn) for m in members}
    # the layer-wise forward's output is one tensor: the loss's "outputs" and "prediction" are the same
    if None in settings or len(settings) != 1 or any(m.loss_takes not in ("outputs", "prediction") for m in members):
        return None
    if any(m.output_key != "auto" for m in members) or not row_wise(val.metrics):
        return None
    devices = {val.placement.device_of(m.name) for m in members}
    return devices.pop() if len(devices) == 1 else None


def evaluate_together(
    group: BatchedGroup, val: EvalSet, step: int, *, index: Sequence[int] | None = None, keep_outputs: bool = False
) -> dict[str, EvalOutput] | None:
    """Every member's :class:`EvalOutput` on the batches ``index`` (default: all), as
    :meth:`EvalSet.evaluate` gives it one by one; ``None``: the group cannot be evaluated at once."""
    device = _fits(group, val)
    forward = group.plain_forward()
    if device is None or forward is None or group.stack is None:
        return None
    members, k = group.members, len(group.members)
    loss = val.losses[members[0].name]  # the same plain cross-entropy for every member (``_fits``)
    values: dict[str, list[torch.Tensor]] = {"loss": [], **{name: [] for name in val.metrics}}
    kept: list[torch.Tensor] = []
    modes = [m.model.training for m in members]
    for m in members:
        m.model.eval()
    try:
        with torch.no_grad(), val.streams.isolated("eval", step, devices=[device]):
            for i in range(len(val.batches)) if index is None else index:
                inputs, targets = (move_to(t, device) for t in val.batches[i])
                out = forward(group.stack.params(), group.stack.buffers, inputs)  # (K, B, ...)
                n = int(targets.shape[0])
                rows, flat_targets = out.reshape(k * n, *out.shape[2:]), torch.cat([targets] * k)
                values["loss"].append(check_metric_output("loss", loss(rows, flat_targets), k * n).float().cpu())
                for name, metric in val.metrics.items():
                    value = check_metric_output(name, metric(rows, flat_targets), k * n)
                    values[name].append(value.float().cpu())
                if keep_outputs:
                    kept.append(out.detach().float().cpu())
    except NotPlain:  # inputs the layer-wise forward does not take: one candidate at a time
        return None
    finally:
        for m, training in zip(members, modes):
            m.model.train(training)
    results = {}
    for j, m in enumerate(members):
        per_example = {
            key: torch.cat([v.view(k, -1)[j] for v in chunks]).numpy().astype(np.float64)
            for key, chunks in values.items()
        }
        outputs = torch.cat([o[j] for o in kept]) if kept else None
        results[m.name] = EvalOutput(step=step, per_example=per_example, outputs=outputs)
    return results
