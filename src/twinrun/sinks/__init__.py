"""Sinks consume engine events (the engine knows none of them): every sink twinrun has, in one place.

* :class:`TensorBoardSink`, :class:`ProgressSink`: what you watch (defined here);
* :class:`RegistrySink`: the run in the registry (``twinrun.registry``);
* :class:`CheckpointSink`: verified checkpoints for exact resume (``twinrun.checkpoint``);
* :class:`LedgerSink`: the control sums that name a first divergence (``twinrun.ledger``);
* :class:`DumpSink`: tensors of chosen steps, for ``twinrun repro`` (``twinrun.proof``).

The last four live beside the format they write and are imported on first use (they
import the registry, torch's serialisation...); a sink of your own subclasses
:class:`twinrun.Sink` and overrides the ``on_*`` methods it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twinrun.sinks._progress import ProgressSink
from twinrun.sinks._tensorboard import TensorBoardSink

if TYPE_CHECKING:
    from twinrun.checkpoint import CheckpointSink
    from twinrun.ledger import LedgerSink
    from twinrun.proof import DumpSink
    from twinrun.registry import RegistrySink

__all__ = ["CheckpointSink", "DumpSink", "LedgerSink", "ProgressSink", "RegistrySink", "TensorBoardSink"]


def __getattr__(name: str) -> Any:
    """The sinks that live beside their formats, on first use."""
    if name == "CheckpointSink":
        from twinrun.checkpoint import CheckpointSink

        return CheckpointSink
    if name == "DumpSink":
        from twinrun.proof import DumpSink

        return DumpSink
    if name == "LedgerSink":
        from twinrun.ledger import LedgerSink

        return LedgerSink
    if name == "RegistrySink":
        from twinrun.registry import RegistrySink

        return RegistrySink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
