"""Test-time augmentation, identical for every candidate.

With ``eval_augment`` (called like ``augment``: ``fn(inputs, targets, *, generator, **kw)``)
and the ``eval_passes`` setting, every validation batch is augmented ``eval_passes``
times, once, when the run is built: pass ``p`` of batch ``b`` draws from the
``eval_augment`` stream at ``(p, b)``. So every candidate sees the very same augmented
batches, in every evaluation, and every run of that seed sees them again. A
candidate's prediction on a batch is the mean of its predictions on the passes; the
loss and the metrics are computed on that mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from twinrun.errors import ConfigError, DataError
from twinrun.rng import RngStreams

__all__ = ["augment_views"]

Batch = tuple[Any, Any]


def augment_views(
    augment: Callable[..., tuple[Any, Any]],
    batches: Sequence[Batch],
    *,
    passes: int,
    streams: RngStreams,
    split: str,
    experiment: str,
) -> list[list[Batch]]:
    """``eval_passes`` augmented views of every batch (``[batch][pass]``), checked against the batch."""
    stream = "eval_augment" if split == "val" else f"eval_augment_{split}"
    views: list[list[Batch]] = []
    for b, (inputs, targets) in enumerate(batches):
        row = []
        for p in range(passes):
            generator = streams.torch(stream, p, b)
            with streams.isolated(stream, p, b):
                try:
                    out = augment(inputs, targets, generator=generator)
                except Exception as exc:
                    raise ConfigError(
                        f"experiment {experiment!r}: eval_augment failed on {split} batch {b}, pass {p}: "
                        f"{type(exc).__name__}: {exc}",
                        fix="eval_augment is called as fn(inputs, targets, *, generator, **kw) -> (inputs, targets)",
                    ) from exc
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise DataError(
                    f"experiment {experiment!r}: eval_augment returned {type(out).__name__}, not (inputs, targets)",
                    fix="return (inputs, targets)",
                )
            x, y = out
            _check(inputs, targets, x, y, split=split, batch=b, experiment=experiment)
            row.append((x, y))
        views.append(row)
    return views


def _check(inputs: Any, targets: Any, x: Any, y: Any, *, split: str, batch: int, experiment: str) -> None:
    shape = getattr(inputs, "shape", None)
    if shape is not None and getattr(x, "shape", None) != shape:
        raise DataError(
            f"experiment {experiment!r}: eval_augment changed the shape of {split} batch {batch} from "
            f"{tuple(shape)} to {tuple(getattr(x, 'shape', ()))}",
            fix="test-time augmentation averages predictions over passes of the same examples: keep the "
            "inputs' shape (crop back to size, flip, shift)",
        )
    same = (
        torch.equal(targets, y) if isinstance(targets, torch.Tensor) and isinstance(y, torch.Tensor) else targets == y
    )
    if not same:
        raise DataError(
            f"experiment {experiment!r}: eval_augment changed the targets of {split} batch {batch}",
            fix="test-time augmentation must keep each example's target; return the targets unchanged",
        )
