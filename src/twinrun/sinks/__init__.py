"""Sinks consume engine events: TensorBoard files, a progress bar, ... (the engine knows none)."""

from twinrun.sinks._progress import ProgressSink
from twinrun.sinks._tensorboard import TensorBoardSink

__all__ = ["ProgressSink", "TensorBoardSink"]
