"""Train in a child process whose ``PYTHONHASHSEED`` is fixed.

Python randomises ``hash(str)`` per process unless ``PYTHONHASHSEED`` is set
when the interpreter starts, and with it the iteration order of sets of
strings. No code can change that after start, so ``twinrun compare`` and
``twinrun demo``, when started without it, run themselves again as
``python -m twinrun <same arguments>`` with ``PYTHONHASHSEED=0``:

* standard input, output and error are inherited (nothing is buffered);
* the exit status is the child's (a child killed by signal ``N`` gives ``128+N``);
* Ctrl-C reaches the child once: the terminal signals the whole foreground
  process group, child included, so the parent ignores SIGINT and waits for
  the child to finish cleanly (to interrupt from a script, signal the group:
  ``kill -INT -- -PGID``); SIGTERM and SIGHUP sent to the parent are forwarded.

``TWINRUN_NO_REEXEC=1`` turns this off (training then runs in the first
process, and twinrun warns that set order may vary).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from types import FrameType

from twinrun.rng import hash_seed_is_fixed

__all__ = ["CHILD_ENV", "CHILD_HASHSEED", "NO_REEXEC_ENV", "needs_child", "run_in_child"]

NO_REEXEC_ENV = "TWINRUN_NO_REEXEC"
#: Set in the child, so that it never starts a grandchild.
CHILD_ENV = "TWINRUN_CHILD"
CHILD_HASHSEED = "0"


def needs_child(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a training command should re-run itself with a fixed ``PYTHONHASHSEED``."""
    env = os.environ if environ is None else environ
    if env.get(NO_REEXEC_ENV, "").strip() not in ("", "0"):
        return False
    if env.get(CHILD_ENV):
        return False
    return not hash_seed_is_fixed(dict(env))


def run_in_child(argv: Sequence[str], *, hashseed: str = CHILD_HASHSEED) -> int:
    """Run ``python -m twinrun ARGV`` with ``PYTHONHASHSEED=hashseed``; return its exit status."""
    env = {**os.environ, "PYTHONHASHSEED": hashseed, CHILD_ENV: "1"}
    proc = subprocess.Popen([sys.executable, "-m", "twinrun", *argv], env=env)

    def forward(signum: int, frame: FrameType | None) -> None:
        if proc.poll() is None:
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code
