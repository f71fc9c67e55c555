"""Tensor dumps at one step, and the exact differences between two of them.

A ledger says *that* a tensor differs (its control sum); the dump of both runs
at that step says *by how much*: ``twinrun repro`` dumps initial weights
(step 0), or the augmented batches and the weights after the updates (steps
``t``), and compares them tensor by tensor.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from twinrun.engine import BatchPrepared, RunStarted, Sink, StepDone

__all__ = ["DumpSink", "max_abs_diff", "tensor_differences"]


def _clone(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _flat(obj: Any, prefix: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return {prefix: obj.detach().cpu().clone()}
    if isinstance(obj, dict):
        out: dict[str, torch.Tensor] = {}
        for key, value in obj.items():
            out.update(_flat(value, f"{prefix}.{key}"))
        return out
    if isinstance(obj, (list, tuple)):
        out = {}
        for i, value in enumerate(obj):
            out.update(_flat(value, f"{prefix}.{i}"))
        return out
    return {}


class DumpSink(Sink):
    """Keeps the tensors of some steps and saves them to ``path`` as ``{step: {candidate: {kind: {name: tensor}}}}``.

    Step 0: every model's initial ``state_dict`` (kind ``init``). Step ``t``:
    the augmented batch of every candidate (kind ``batch``, names ``inputs`` and
    ``targets``) and every model's ``state_dict`` after the update (kind ``weights``).
    """

    every_rank = True  # under torchrun every rank dumps its own tensors (``twinrun repro --nproc``)

    def __init__(self, path: str | Path, steps: Iterable[int]) -> None:
        self.path = Path(path)
        self.steps = set(steps)
        self.tensors: dict[int, dict[str, dict[str, dict[str, torch.Tensor]]]] = {}

    def _put(self, step: int, candidate: str, kind: str, named: dict[str, torch.Tensor]) -> None:
        self.tensors.setdefault(step, {}).setdefault(candidate, {}).setdefault(kind, {}).update(named)

    def on_run_started(self, event: RunStarted) -> None:
        if 0 in self.steps and event.start_step == 0:
            for candidate, model in event.models.items():
                self._put(0, candidate, "init", _clone(model))
            self.save()

    def on_batch_prepared(self, event: BatchPrepared) -> None:
        if event.step in self.steps:
            for candidate, key in event.assignment.items():
                inputs, targets = event.batches[key]
                self._put(event.step, candidate, "batch", {**_flat(inputs, "inputs"), **_flat(targets, "targets")})

    def on_step_done(self, event: StepDone) -> None:
        if event.step in self.steps:
            for candidate in event.losses:
                self._put(event.step, candidate, "weights", _clone(event.models[candidate]))
            self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.tensors, self.path)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a - b|`` in float64 (NaN where only one side is NaN; ``inf`` for other shapes)."""
    if a.shape != b.shape:
        return float("inf")
    x, y = a.to(torch.float64), b.to(torch.float64)
    both_nan = torch.isnan(x) & torch.isnan(y)
    diff = (x - y).abs().masked_fill(both_nan, 0.0)
    if diff.numel() == 0:
        return 0.0
    if torch.isnan(diff).any():
        return float("nan")
    return float(diff.max())


def tensor_differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str, float]]:
    """``(candidate, kind, name, max |a - b|)`` for every tensor that is not bit-identical.

    Ordered as run A holds them: candidates, then kinds (init, batch, weights), then names.
    """
    diffs = []
    for candidate, kinds in a.items():
        for kind in ("init", "batch", "weights"):
            for name, ta in kinds.get(kind, {}).items():
                tb = b.get(candidate, {}).get(kind, {}).get(name)
                if tb is None:
                    diffs.append((candidate, kind, name, float("inf")))
                    continue
                same = (
                    ta.dtype == tb.dtype
                    and ta.shape == tb.shape
                    and torch.equal(
                        ta.reshape(-1).view(torch.uint8) if ta.numel() else ta,
                        tb.reshape(-1).view(torch.uint8) if tb.numel() else tb,
                    )
                )
                if not same:
                    diffs.append((candidate, kind, name, max_abs_diff(ta, tb)))
    return diffs
