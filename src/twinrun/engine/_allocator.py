"""Keep the memory one CPU step frees for the next step, instead of giving it back to the system.

glibc's ``malloc`` serves a large block (from 128 KiB at first) with a mapping
of its own and gives freed memory at the top of its heap back to the system
once more than a threshold is free there. A training step frees the same large
blocks it will ask for again at the next step, so each one is mapped again and
faulted in page by page, every step. A vectorised group makes this worse: its
tensors are K times one model's. The demo's CNN with 8 members took 2,300 to
3,000 page faults per step on the development machine; with the thresholds
raised, 0 to 70, and the run took 0.80 of the time (peak memory unchanged).

:func:`keep_freed_memory` raises both thresholds with ``mallopt``, once per
process: blocks under 32 MiB come from the heap, and up to 256 MiB free at its
top stays with the process. Numbers are unchanged: PyTorch aligns every block
to 64 bytes either way.

Side effects: process-wide and for good (glibc cannot report the values it
replaces). Nothing is done where the C library is not glibc, where the process
was started with glibc's own malloc settings (``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_``, ``MALLOC_MMAP_MAX_``, or
``glibc.malloc`` in ``GLIBC_TUNABLES``: the user chose), or with
``TWINRUN_KEEP_FREED_MEMORY=0``.
"""

from __future__ import annotations

import ctypes
import os
import platform

from twinrun.errors import ConfigError

__all__ = ["ENV", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory"]

ENV = "TWINRUN_KEEP_FREED_MEMORY"
MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for the threshold it adapts by itself
TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
_state: dict[str, str] = {}  # "outcome": what the first call did (the process keeps it)


def _wanted() -> bool:
    raw = os.environ.get(ENV)
    if raw is None or raw.strip() == "1":
        return True
    if raw.strip() == "0":
        return False
    raise ConfigError(
        f"{ENV}={raw!r} is neither 0 nor 1",
        fix=f"set {ENV}=0 to leave glibc's malloc settings alone, {ENV}=1 (the default) to keep freed memory",
    )


def keep_freed_memory() -> str:
    """Raise glibc's trim and mapping thresholds once per process; what was done, in words.

    Returns ``"kept"`` (done, now or by an earlier call), ``"off"`` (``TWINRUN_KEEP_FREED_MEMORY=0``),
    ``"user"`` (the process has malloc settings of its own) or ``"unavailable"`` (not glibc).
    """
    if "outcome" in _state:
        return _state["outcome"]
    if not _wanted():
        return "off"  # not remembered: the variable is read again by the next run
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if any(name in os.environ for name in _USER_SETTINGS) or "glibc.malloc." in tunables:
        outcome = "user"
    elif platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        outcome = "unavailable"
    else:
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            mallopt = None
        done = mallopt is not None and all(
            mallopt(option, value) == 1
            for option, value in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        )
        outcome = "kept" if done else "unavailable"
    _state["outcome"] = outcome
    return outcome
