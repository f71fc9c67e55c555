"""``CheckpointSink``: a checkpoint every ``k`` steps, written atomically, the last few kept."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twinrun.checkpoint._file import write_checkpoint
from twinrun.engine import RunFailed, RunFinished, Sink, StepDone
from twinrun.errors import CheckpointError

__all__ = ["CheckpointSink", "checkpoint_name", "list_checkpoints"]

_NAME = re.compile(r"^step-(\d+)\.ckpt$")

#: ``snapshot()`` returns ``(payload, header)`` for the current step.
Snapshot = Callable[[], tuple[dict[str, Any], dict[str, Any]]]


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}.ckpt"


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of the checkpoint files in ``folder``, oldest first."""
    found = []
    for path in Path(folder).glob("step-*.ckpt"):
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


class CheckpointSink(Sink):
    """After every ``every``-th step, writes ``folder/step-NNNNNNNN.ckpt`` and keeps the last ``keep``.

    An interrupted run (a requested stop, between two steps) gets a final
    checkpoint of the step it stopped at, also with ``every=None``; a finished
    run (with ``every`` set) one of its last step, which ``--extend`` continues.

    The engine's state after ``StepDone`` is a complete resume point: a run
    resumed from it re-does that step's evaluation, with identical results.
    The sink does not know what a run's state is made of: ``snapshot`` (set
    here or with :meth:`bind`) returns the payload and header to write. Put
    the sink after a :class:`~twinrun.ledger.LedgerSink` so the ledger in the
    snapshot already holds the step's records.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        every: int | None,
        keep: int = 2,
        snapshot: Snapshot | None = None,
        on_interrupt: bool = True,
    ) -> None:
        if (every is not None and every < 1) or keep < 1:
            raise CheckpointError(
                f"CheckpointSink(every={every}, keep={keep}): both must be >= 1",
                fix="every=None writes only the final checkpoint of an interrupted run",
            )
        self.on_interrupt = on_interrupt
        self.folder = Path(folder)
        self.every = every
        self.keep = keep
        self.snapshot = snapshot
        self.written: list[Path] = []

    def bind(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def on_step_done(self, event: StepDone) -> None:
        if self.every is not None and event.step % self.every == 0:
            self.write(event.step)

    def on_run_finished(self, event: RunFinished) -> None:
        """A finished run with checkpoints on keeps its last step too: what ``--extend`` continues from."""
        step = event.result.steps
        if self.every is not None and step > 0 and step % self.every != 0:
            self.write(step)

    def on_run_failed(self, event: RunFailed) -> None:
        """An interrupt that stopped the run between two steps: keep its state (nothing is lost)."""
        if self.on_interrupt and event.interrupted and event.at_step_boundary and event.step > 0:
            self.write(event.step)

    def write(self, step: int) -> Path:
        if self.snapshot is None:
            raise CheckpointError("CheckpointSink has no snapshot function", fix="call sink.bind(snapshot) first")
        payload, header = self.snapshot()
        path = write_checkpoint(self.folder / checkpoint_name(step), payload, {**header, "step": step})
        self.written.append(path)
        for _, old in list_checkpoints(self.folder)[: -self.keep]:
            old.unlink(missing_ok=True)
        for stale in self.folder.glob(".step-*.ckpt.tmp-*"):  # left by a process killed while writing
            if not stale.name.endswith(f".tmp-{os.getpid()}"):
                stale.unlink(missing_ok=True)
        return path
