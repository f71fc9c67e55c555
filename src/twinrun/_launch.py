"""The one way twinrun starts a child process: ``python -m MODULE ARGS``, importing this very twinrun.

Every child goes through :func:`launch`: the training child of ``twinrun compare``
(a fixed hash seed, ``cli/_child``), the two runs of ``twinrun repro``, each seed
of a sweep, the ``hash_seed`` check's builder. Their environment comes from
:func:`child_environment` (this twinrun first on ``PYTHONPATH``, the hash seed
and thread counts pinned where asked); :func:`stop` ends a child and its process
group, SIGTERM first so it can record how it ended, then SIGKILL after a grace
period; :func:`describe_exit` words an exit status for an error message.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from twinrun._pythonpath import this_twinrun_first

__all__ = ["child_environment", "describe_exit", "launch", "stop"]


def child_environment(
    base: Mapping[str, str] | None = None,
    *,
    hashseed: str | None = None,
    threads: int | None = None,
    drop: Sequence[str] = (),
) -> dict[str, str]:
    """``base`` (default: this process's environment) with this twinrun first on ``PYTHONPATH``,
    ``PYTHONHASHSEED`` and the BLAS thread counts set where given, and the ``drop`` variables removed."""
    env = this_twinrun_first(os.environ if base is None else base)
    if hashseed is not None:
        env["PYTHONHASHSEED"] = hashseed
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    for name in drop:
        env.pop(name, None)
    return env


def launch(
    module: str,
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str],
    stdin: int | IO[Any] | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    text: bool = False,
    own_session: bool = False,
    pass_fds: Sequence[int] = (),
    cwd: str | None = None,
) -> subprocess.Popen[Any]:
    """Start ``python -m module args`` with this interpreter (``own_session``: its own process group,
    so that Ctrl-C at the terminal reaches only the parent, which stops it with :func:`stop`)."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=dict(env),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        text=text,
        start_new_session=own_session,
        pass_fds=tuple(pass_fds),
        cwd=cwd,
    )


def stop(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM to the child's process group (the child records the interruption), SIGKILL after ``grace`` s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait()


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
