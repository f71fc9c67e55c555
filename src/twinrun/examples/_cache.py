"""Arrays computed from an installed package, kept on disk between processes (the demo's digits split).

Reading scikit-learn's digits costs its import, about 1.4 s a process; the arrays
it gives are a function of scikit-learn's version and the split's arguments, so
they are saved once under the cache folder and read back in milliseconds (exactly:
``.npz`` round-trips every value). The folder is ``$TWINRUN_CACHE_DIR``, else
``$XDG_CACHE_HOME/twinrun``, else ``~/.cache/twinrun``; a folder that cannot be
written is no error (the arrays are then computed every time).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from twinrun._atomic import atomic_write

__all__ = ["cache_dir", "cached_arrays"]


def cache_dir() -> Path:
    explicit = os.environ.get("TWINRUN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "twinrun"


def cached_arrays(key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``compute()``'s arrays, read from ``<cache>/<key>.npz`` when an earlier process saved them."""
    path = cache_dir() / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as saved:
            return {name: saved[name] for name in saved.files}
    except (OSError, ValueError, KeyError):
        pass  # not there yet, or unreadable: computed and saved again
    arrays = compute()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    try:
        atomic_write(path, buffer.getvalue())
    except OSError:
        pass  # a read-only home: no cache, the same arrays
    return arrays
