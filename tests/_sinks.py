"""Sinks the tests share."""

from __future__ import annotations

from twinrun._interrupt import StopRequest
from twinrun.engine import Sink


class StopAt(Sink):
    """Asks the run to stop after ``step`` (the engine then raises ``Interrupted`` at that step boundary)."""

    def __init__(self, stop: StopRequest, step: int) -> None:
        self.stop, self.at = stop, step

    def on_step_done(self, event) -> None:
        if event.step == self.at:
            self.stop.set("test")
