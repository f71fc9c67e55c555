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

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from twinrun._pythonpath import this_twinrun_first
from twinrun.sweeps._task import SeedOutcome, SeedTask

__all__ = ["HASH_SEED", "child_env", "describe_exit", "run_seed"]

#: ``PYTHONHASHSEED`` of every seed's process.
HASH_SEED = "0"
#: Seconds a child gets to record its interruption before it is killed.
GRACE_S = 15.0
_POLL_S = 0.1


def child_env(threads: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a seed's process: ours, with the hash seed and thread counts fixed."""
    env = this_twinrun_first(os.environ if base is None else base)
    env.update(PYTHONHASHSEED=HASH_SEED, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.pop("PYTHONSTARTUP", None)
    return env


def describe_exit(code: int) -> str:
    """``"exit status 3"`` or ``"signal SIGKILL (killed; out of memory?)"``."""
    if code >= 0:
        return f"exit status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    if name == "SIGKILL":
        return "signal SIGKILL (killed; out of memory?)"
    return f"signal {name}"


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's process group (the child records the interruption), then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait()


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
        proc = subprocess.Popen(
            [sys.executable, "-m", "twinrun.sweeps._worker", str(task.task_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(task.threads),
            start_new_session=True,
        )
        try:
            while True:
                try:
                    code = proc.wait(timeout=_POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    if stop is not None and stop.is_set():
                        _stop(proc)
                        code = proc.returncode
                        break
        except BaseException:
            _stop(proc)
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
