"""Stopping a run cleanly on a signal: the first one stops at the next step boundary.

``compare()`` runs the engine inside :func:`stop_on_signals`. The first SIGINT
(Ctrl-C) or SIGTERM only sets a :class:`StopRequest`; the engine looks at it
after every step, stops there, and the run's final checkpoint is written, so an
interrupted run resumes bit-identically from where it stopped. A second signal
raises ``KeyboardInterrupt`` at once (the run then resumes from its last
periodic checkpoint, if it has one).

Side effects, documented: while the context is open, the handlers of SIGINT and
SIGTERM in this process are twinrun's; the previous handlers are put back on
exit. Outside the main thread (where Python cannot install handlers) nothing
is installed and signals behave as before.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["StopRequest", "stop_on_signals"]


class StopRequest:
    """Asks a running engine to stop after its current step (thread- and signal-safe)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()


@contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[StopRequest]:
    """Turn the first SIGINT/SIGTERM into ``stop.set(name)``; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.requested:
            raise KeyboardInterrupt(f"{name} again: stopping now, without a final checkpoint")
        stop.set(name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
