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
  the child to stop cleanly (to interrupt from a script, signal the group:
  ``kill -INT -- -PGID``, or send SIGTERM to the parent); SIGTERM and SIGHUP
  sent to the parent are forwarded;
* the child dies with its parent: it holds the read end of a pipe whose only
  writer is the parent, and when the parent is gone, however it died
  (``kill -9`` included), the pipe closes and the child stops as on SIGTERM
  (final checkpoint, run recorded as interrupted);
* the child handles SIGINT itself, also when it was started with SIGINT ignored.

``TWINRUN_NO_REEXEC=1`` turns this off (training then runs in the first
process, and twinrun warns that set order may vary).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Mapping, Sequence
from types import FrameType

from twinrun._hashseed import hash_seed_is_fixed
from twinrun._launch import child_environment, launch

__all__ = ["CHILD_ENV", "CHILD_HASHSEED", "NO_REEXEC_ENV", "as_child", "early_child", "needs_child", "run_in_child"]

NO_REEXEC_ENV = "TWINRUN_NO_REEXEC"
#: Set in the child, so that it never starts a grandchild.
CHILD_ENV = "TWINRUN_CHILD"
CHILD_HASHSEED = "0"
#: The file descriptor (in the child) of the pipe the parent holds open while it lives.
PARENT_FD_ENV = "TWINRUN_PARENT_FD"


def needs_child(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a training command should re-run itself with a fixed ``PYTHONHASHSEED``."""
    env = os.environ if environ is None else environ
    if env.get(NO_REEXEC_ENV, "").strip() not in ("", "0"):
        return False
    if env.get(CHILD_ENV):
        return False
    return not hash_seed_is_fixed(dict(env))


#: Commands that train in the first process (``seeds``: with its default in-process backend).
TRAINING_COMMANDS = ("compare", "demo", "seeds", "search")
_NOT_TRAINING = ("-h", "--help", "--version", "--show-file", "--list", "--show")


def early_child(argv: Sequence[str]) -> int | None:
    """Re-run a training command in a child *before* anything imports torch (``None``: go on here).

    A decision from the raw arguments, so that the first process pays only an
    interpreter start, not torch's import; :func:`twinrun.cli._app.main` decides
    again from the parsed ones for the cases this leaves alone.
    """
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in TRAINING_COMMANDS or not needs_child():
        return None
    options = {a.split("=", 1)[0] for a in argv if a.startswith("-")}
    if options & set(_NOT_TRAINING):
        return None
    if command == "seeds" and options & {"--backend", "--jobs", "-j", "--address"}:
        return None  # maybe processes or Ray: decided once parsed
    return run_in_child(list(argv))


def run_in_child(argv: Sequence[str], *, hashseed: str = CHILD_HASHSEED) -> int:
    """Run ``python -m twinrun ARGV`` with ``PYTHONHASHSEED=hashseed``; return its exit status."""
    alive_r, alive_w = os.pipe()  # the parent keeps alive_w open for as long as it lives
    env = {**child_environment(hashseed=hashseed), CHILD_ENV: "1", PARENT_FD_ENV: str(alive_r)}
    try:
        proc = launch("twinrun", argv, env=env, pass_fds=(alive_r,))
    finally:
        os.close(alive_r)

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
        os.close(alive_w)
    return 128 - code if code < 0 else code


def as_child(environ: Mapping[str, str] | None = None) -> None:
    """In a training child: handle SIGINT, and stop (as on SIGTERM) when the parent is gone."""
    env = os.environ if environ is None else environ
    if not env.get(CHILD_ENV):
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    value = env.get(PARENT_FD_ENV, "")
    if not value.isdigit():
        return
    fd = int(value)

    def watch() -> None:
        try:
            while os.read(fd, 1):  # the parent never writes: this returns b"" when it is gone
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="twinrun-parent-watch", daemon=True).start()
