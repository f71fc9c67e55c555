"""The checkpoint file: a verifiable header, then a ``torch.save`` body.

Layout::

    TWINRUN-CHECKPOINT 1\\n
    {"experiment": ..., "config_hash": ..., "step": ..., "body_bytes": ..., "body_xxh3": ...}\\n
    <xxh3-64 of the header line>\\n
    <body: torch.save of the payload>

Truncation and corruption are detected from the header (length and checksum
of the body, checksum of the header itself) before ``torch.load`` sees a byte,
and the body is loaded with ``weights_only=True``: a checkpoint can hold
tensors, numbers, strings, lists and dicts, never code.
"""

from __future__ import annotations

import datetime
import io
import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import xxhash

from twinrun._atomic import atomic_write
from twinrun._version import __version__
from twinrun.errors import CheckpointError

__all__ = ["MAGIC", "Checkpoint", "read_checkpoint", "read_checkpoint_header", "write_checkpoint"]

MAGIC = b"TWINRUN-CHECKPOINT 1\n"
_FIX_RERUN = "resume from another checkpoint of the run (its folder holds the last few), or start the run again"


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: its file, its header and (once loaded) its payload."""

    path: Path
    header: dict[str, Any]
    payload: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.header["step"])

    @property
    def experiment(self) -> str:
        return str(self.header["experiment"])


def write_checkpoint(path: str | Path, payload: dict[str, Any], header: dict[str, Any]) -> Path:
    """Serialise ``payload`` and write it with ``header`` atomically (temp file, fsync, rename)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    full = {
        **header,
        "twinrun_version": __version__,
        "torch_version": torch.__version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "body_bytes": len(body),
        "body_xxh3": xxhash.xxh3_128_hexdigest(body),
    }
    line = json.dumps(full, sort_keys=True, default=str).encode()
    data = b"".join([MAGIC, line, b"\n", xxhash.xxh3_64_hexdigest(line).encode(), b"\n", body])
    return atomic_write(Path(path), data)


def _split(path: Path, data: bytes) -> tuple[dict[str, Any], bytes]:
    where = f"checkpoint {str(path)!r}"
    if not data.startswith(MAGIC):
        raise CheckpointError(
            f"{where} is not a twinrun checkpoint (it does not start with {MAGIC.strip().decode()!r})",
            fix="pass a file from <run folder>/checkpoints/, or the run folder itself",
        )
    rest = data[len(MAGIC) :]
    line, sep1, rest = rest.partition(b"\n")
    digest, sep2, body = rest.partition(b"\n")
    if not (sep1 and sep2) or xxhash.xxh3_64_hexdigest(line).encode() != digest:
        raise CheckpointError(f"{where}: its header is corrupt or truncated", fix=_FIX_RERUN)
    header = json.loads(line)
    expected = int(header["body_bytes"])
    if len(body) != expected:
        raise CheckpointError(
            f"{where} is truncated: its body has {len(body)} of {expected} bytes",
            fix=_FIX_RERUN,
        )
    if xxhash.xxh3_128_hexdigest(body) != header["body_xxh3"]:
        raise CheckpointError(f"{where} is corrupt: the checksum of its body does not match", fix=_FIX_RERUN)
    return header, body


def _read(path: str | Path) -> tuple[Path, bytes]:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(
            f"no checkpoint file at {str(path)!r}",
            fix="pass a run folder or a file from <run folder>/checkpoints/ (runs write checkpoints "
            "with --checkpoint-every K)",
        )
    try:
        return p, p.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {exc}") from exc


def read_checkpoint_header(path: str | Path) -> dict[str, Any]:
    """The verified header of a checkpoint (the body is checked, not loaded)."""
    p, data = _read(path)
    return _split(p, data)[0]


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Verify a checkpoint and load its payload with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: missing, not a checkpoint, truncated, corrupt, or holding
            objects that cannot be loaded safely.
    """
    p, data = _read(path)
    header, body = _split(p, data)
    try:
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        # torch's own message suggests weights_only=False: never pass that advice on (it runs code)
        blocked = _unsafe_global(str(exc))
        what = f"an object of a class that is not allowed ({blocked})" if blocked else "data torch cannot load"
        raise CheckpointError(
            f"checkpoint {str(p)!r} passed its checksums but holds {what}; it is not loaded, "
            "because loading it could run code",
            fix="if an optimizer or scheduler of yours keeps custom objects in its state, allow exactly "
            "those classes with torch.serialization.add_safe_globals([...]) before resuming; otherwise "
            "resume from another checkpoint of the run or start it again",
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {str(p)!r} does not hold a twinrun run state", fix=_FIX_RERUN)
    return Checkpoint(p, header, payload)


def _unsafe_global(message: str) -> str | None:
    """The class name torch's weights-only unpickler refused, if its message names one."""
    match = re.search(r"GLOBAL ([\w.]+)", message) or re.search(r"Unsupported global: ([\w.]+)", message)
    return match.group(1) if match else None
