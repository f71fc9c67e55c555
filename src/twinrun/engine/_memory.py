"""Measure activation memory: the tensors autograd saves for backward, per candidate.

Twin training promises that only one candidate's activations are alive at a
time (a vectorised group: its members' together). :class:`ActivationMeter`
checks it: it counts the bytes of every tensor saved for backward while a
candidate steps (intermediate results, and tensors made in the forward that
need no gradient, such as max-pool indices or dropout masks), leaving out what
existed before the step (parameters, buffers, the batch), how many were still
alive when each candidate started, and the peak over the whole step.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = ["ActivationMeter", "process_peak_rss_bytes"]


class _Saved:
    __slots__ = ("_key", "_meter", "tensor")

    def __init__(self, tensor: torch.Tensor, meter: ActivationMeter, key: int) -> None:
        self.tensor = tensor
        self._meter = meter
        self._key = key

    def __del__(self) -> None:
        self._meter._release(self._key)


class ActivationMeter:
    """Counts bytes of saved activations, deduplicated by storage."""

    def __init__(self) -> None:
        self.live_bytes = 0
        self.peak_bytes = 0
        self.peak_by_candidate: dict[str, int] = {}
        self.live_at_start: dict[str, int] = {}
        self._refs: dict[int, list[int]] = {}  # storage ptr -> [refcount, nbytes]

    def _release(self, key: int) -> None:
        entry = self._refs.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.live_bytes -= entry[1]
            del self._refs[key]

    @contextmanager
    def measure(self, candidate: str, existing: Iterable[Any] = ()) -> Iterator[None]:
        """Count what ``candidate`` saves for backward inside the block.

        ``existing``: tensors (or nested containers of them) that are not activations
        even though the forward saves them: the batch, buffers.
        """
        start = self.live_bytes
        self.live_at_start[candidate] = max(self.live_at_start.get(candidate, 0), start)
        before = {t.untyped_storage().data_ptr() for t in _tensors(existing)}

        def pack(t: torch.Tensor) -> Any:
            if t.is_leaf and t.requires_grad:  # parameters are not activations
                return t
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key in before:  # the batch, a buffer
                return t
            entry = self._refs.get(key)
            if entry is None:
                self._refs[key] = [1, storage.nbytes()]
                self.live_bytes += storage.nbytes()
            else:
                entry[0] += 1
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
            mine = self.live_bytes - start
            self.peak_by_candidate[candidate] = max(self.peak_by_candidate.get(candidate, 0), mine)
            return _Saved(t, self, key)

        def unpack(obj: Any) -> torch.Tensor:
            return obj.tensor if isinstance(obj, _Saved) else obj

        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            yield

    def report(self) -> dict[str, Any]:
        return {
            "activation_peak_bytes": self.peak_bytes,
            "activation_peak_by_candidate": dict(self.peak_by_candidate),
            "activation_sum_of_candidates": sum(self.peak_by_candidate.values()),
            "activation_live_at_candidate_start": dict(self.live_at_start),
        }


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def process_peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
