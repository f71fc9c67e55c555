"""The seed function: run one seed in a fresh Python process and report how it ended.

Every backend calls :func:`run_seed` (the local pool from a thread, Ray as a
remote task). A fresh process per seed means:

* ``PYTHONHASHSEED`` is fixed (to ``"0"``) before the interpreter starts, so
  anything that iterates over a ``set`` of strings does so in the same order on
  every run of the seed;
* ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` (and ``torch.set_num_threads`` in the
  child) give each seed ``threads`` cores, so ``jobs`` seeds at once do not
  oversubscribe the machine;
* a seed that raises, segfaults or is killed for memory takes only itself down.

The child runs in its own session (Ctrl-C at the terminal reaches the parent,
which stops the children in order: SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

from twinrun._launch import child_environment, describe_exit, launch
from twinrun._launch import stop as stop_child
from twinrun.sweeps._task import SeedOutcome, SeedTask

__all__ = ["HASH_SEED", "child_env", "describe_exit", "run_seed"]

#: ``PYTHONHASHSEED`` of every seed's process.
HASH_SEED = "0"
#: Seconds a child gets to record its interruption before it is killed.
GRACE_S = 15.0
_POLL_S = 0.1


def child_env(threads: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a seed's process: ours, with the hash seed and thread counts fixed."""
    return child_environment(base, hashseed=HASH_SEED, threads=threads, drop=("PYTHONSTARTUP",))


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def run_seed(task: SeedTask, stop: threading.Event | None = None) -> SeedOutcome:
    """Run ``task`` in a fresh process and wait for it; never raises for the seed's own failure.

    ``stop``: set it to stop the seed (the child is terminated and the outcome is
    ``interrupted``). A ``KeyboardInterrupt`` while waiting (Ctrl-C, or a Ray
    cancellation) stops the child too, then propagates.
    """
    task.seed_dir.mkdir(parents=True, exist_ok=True)
    task.task_path.write_text(task.to_json())
    task.outcome_path.unlink(missing_ok=True)
    started = time.monotonic()
    if stop is not None and stop.is_set():
        return SeedOutcome(task.seed, "interrupted", error="not started: the sweep was stopped")
    with open(task.log_path, "ab") as log:
        log.write(
            f"--- seed {task.seed}, {time.strftime('%Y-%m-%d %H:%M:%S')}, "
            f"{task.threads} thread(s), PYTHONHASHSEED={HASH_SEED}\n".encode()
        )
        log.flush()
        proc = launch(
            "twinrun.sweeps._worker",
            [str(task.task_path)],
            env=child_env(task.threads),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            own_session=True,
        )
        try:
            while True:
                try:
                    code = proc.wait(timeout=_POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    if stop is not None and stop.is_set():
                        stop_child(proc, GRACE_S)
                        code = proc.returncode
                        break
        except BaseException:
            stop_child(proc, GRACE_S)
            raise
    return _outcome(task, code, time.monotonic() - started)


def _outcome(task: SeedTask, code: int, seconds: float) -> SeedOutcome:
    import json

    try:
        data = json.loads(task.outcome_path.read_text())
    except (OSError, ValueError):
        data = None
    if data is not None:
        outcome = SeedOutcome.from_dict(data)
        # a seed that reported "finished" has its run and outputs recorded, whatever came after
        outcome.returncode, outcome.seconds, outcome.log = code, seconds, str(task.log_path)
        return outcome
    tail = _log_tail(task.log_path)
    error = f"the seed's process ended with {describe_exit(code)} without reporting a result"
    if tail:
        error += "; last lines of its log:\n" + tail
    status = "interrupted" if code in (130, -signal.SIGINT, -signal.SIGTERM) else "crashed"
    return SeedOutcome(task.seed, status, error=error, returncode=code, seconds=seconds, log=str(task.log_path))
