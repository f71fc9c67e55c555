"""Control sums: a fast non-cryptographic hash (xxh3, 64 bits) of exact tensor contents.

A control sum covers a tensor's dtype, shape and raw bytes, so two tensors
have the same sum exactly when they are bit-identical (up to the odds of a
64-bit collision). ``-0.0`` and ``0.0`` differ, as do two NaNs with different
payloads: bit-exactness is what is being checked.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

import torch
import xxhash

__all__ = ["float_hash", "int_hash", "tensor_hash", "tree_hash"]


#: dtypes NumPy can view directly; any other (bfloat16, float8 ...) is hashed through a byte view
_NUMPY_DTYPES = frozenset(
    {
        torch.float64,
        torch.float32,
        torch.float16,
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
        torch.bool,
        torch.complex64,
        torch.complex128,
    }
)


_headers: dict[tuple[torch.dtype, torch.Size], bytes] = {}


def _header(t: torch.Tensor) -> bytes:
    key = (t.dtype, t.shape)
    header = _headers.get(key)
    if header is None:
        header = _headers[key] = f"{t.dtype}|{tuple(t.shape)}|".encode()
    return header


def _update(h: Any, tensor: torch.Tensor) -> None:
    t = tensor.detach()
    local = getattr(t, "to_local", None)  # a DTensor (FSDP): this rank's shard, as its ledger records it
    if local is not None and callable(local):
        t = local()
    if not t.is_cpu:
        t = t.cpu()
    if t.is_conj() or t.is_neg():  # lazy views: materialise the values they stand for
        t = t.resolve_conj().resolve_neg()
    if not t.is_contiguous():
        t = t.contiguous()
    h.update(_header(t))
    if not t.numel():
        return
    if t.dtype in _NUMPY_DTYPES:
        h.update(t.numpy())
    else:
        h.update(t.reshape(-1).view(torch.uint8).numpy())


def tensor_hash(tensor: torch.Tensor) -> str:
    """The xxh3-64 control sum (16 hex digits) of a tensor's dtype, shape and bytes."""
    h = xxhash.xxh3_64()
    _update(h, tensor)
    return h.hexdigest()


def _update_tree(h: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        h.update(b"T")
        _update(h, obj)
    elif isinstance(obj, Mapping):
        h.update(f"M{len(obj)}".encode())
        for key in obj:
            h.update(f"{key!r}:".encode())
            _update_tree(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for item in obj:
            _update_tree(h, item)
    else:
        h.update(b"R" + repr(obj).encode())


def tree_hash(obj: Any) -> str:
    """The control sum of a tensor or a nested tuple/list/dict of tensors (other leaves by ``repr``)."""
    h = xxhash.xxh3_64()
    _update_tree(h, obj)
    return h.hexdigest()


def float_hash(value: float) -> str:
    """The control sum of a Python float's exact IEEE-754 double bits (every NaN alike)."""
    return xxhash.xxh3_64_hexdigest(struct.pack("<d", value) if not math.isnan(value) else b"nan")


def int_hash(value: int) -> str:
    """The control sum of an integer (a derived seed)."""
    return xxhash.xxh3_64_hexdigest(str(int(value)).encode())
