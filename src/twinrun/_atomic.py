"""Crash-safe file writes: a file is either its old self or its new self, never half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["atomic_write", "write_json"]


def atomic_write(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync and ``os.replace``.

    The folder is fsynced too (where the platform allows), so the rename survives a power loss.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is None:  # a failed write names no file: name the one being written
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        if tmp.exists():
            tmp.unlink()
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    return path


def write_json(path: str | Path, data: Any, *, sort_keys: bool = False, allow_nan: bool = True) -> Path:
    """``atomic_write`` of ``data`` as indented JSON: every JSON file twinrun writes goes through here.

    ``allow_nan=False`` refuses NaN and infinities (which JSON does not have) with a ``ValueError``.
    """
    text = json.dumps(data, indent=2, sort_keys=sort_keys, allow_nan=allow_nan, default=str)
    return atomic_write(path, text.encode())
