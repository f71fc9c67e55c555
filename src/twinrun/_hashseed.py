"""Whether ``PYTHONHASHSEED`` is fixed: a torch-free check, so the CLI can decide before importing torch."""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["MAX_HASHSEED", "hash_seed_is_fixed"]

MAX_HASHSEED = 4294967295


def hash_seed_is_fixed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``PYTHONHASHSEED`` is set to a fixed value (an integer in [0, 4294967295]).

    It reads the environment, which is what this interpreter started with
    unless someone changed ``os.environ`` since (changing it has no effect on
    this process's string hashes, only on child processes).
    """
    value = (os.environ if environ is None else environ).get("PYTHONHASHSEED")
    if value is None:
        return False
    try:
        return 0 <= int(value.strip(), 10) <= MAX_HASHSEED
    except ValueError:
        return False  # "random" or garbage
