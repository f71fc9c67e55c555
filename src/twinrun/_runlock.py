"""One writer per run folder: a lock held while a process trains (or resumes) a run.

The lock is an ``flock`` on ``<run>/.lock``, which also holds the writer's pid.
The operating system releases it when the process ends, however it ends
(``kill -9`` included), so a stale lock never blocks a resume. A second
process that tries to write the same run (a ``--resume`` of a live run) is
refused with the pid of the one writing it. Where ``fcntl`` does not exist
(Windows) runs are not locked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from twinrun.errors import CheckpointError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "run_lock"]

LOCK_FILE = ".lock"


@contextmanager
def run_lock(run_dir: Path, run_id: str) -> Iterator[None]:
    """Hold the run's lock for the block; :class:`CheckpointError` naming the pid if another holds it."""
    if fcntl is None:
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise CheckpointError(
                f"run {run_id[:8]} is being written by process {holder} right now; a second process "
                "would train alongside it in the same folder and registry row",
                fix=f"wait for it to finish, or stop it first (kill -INT {holder}: it writes a final "
                "checkpoint), then resume",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
