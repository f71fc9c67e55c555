"""What a run's data was: a content fingerprint of each split, its order, and how much of it each epoch trains on.

Two runs are comparable only if they saw the same data. The experiment file's hash
says the code is the same, not that the files it read are: a dataset re-exported,
re-split or cleaned in place changes the numbers without changing a line. So every
run records, in ``result.data``:

* for each split, ``examples`` and ``sha256``: a hash of its content (tensors and
  arrays by dtype, shape and bytes; numbers and strings by value), so it changes
  when one example, its label or the split's membership does. A ``TensorDataset``
  is hashed whole; a dataset of its own by what its attributes store (``data``,
  ``targets``, a list of file paths and labels, a ``Subset``'s indices and its
  dataset's data), without calling ``__getitem__``, so a generator it owns is not
  advanced (for files, their paths are hashed, not their bytes). One that stores
  nothing of the kind is read example by example from a copy (inside one isolated,
  constant stream, so a random transform draws the same values every time); above
  :data:`HASH_LIMIT` examples, an evenly spaced sample of that many is hashed and
  ``complete`` is False;
* ``order_sha256``: the permutation of the first epoch (a function of the seed);
* ``epoch``: how many training examples an epoch uses. twinrun's batches all have
  the same size, so the last ``size % batch_size`` examples of each epoch's
  permutation are left out; on a small set that can be a large share.

``twinrun diff --check`` calls two runs incomparable when a split's hash differs
(and when the order differs under the same seed).
"""

from __future__ import annotations

import copy
import hashlib
import random
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from twinrun.rng import derive_seed, isolated_global_rng

__all__ = ["HASH_LIMIT", "LEFT_OUT_WARNING", "coverage_warning", "data_facts", "dataset_fingerprint", "epoch_coverage"]

#: The most examples of a (non-tensor) dataset read to fingerprint it.
HASH_LIMIT = 4096

#: An epoch that leaves out more than this share of the training set is warned about.
LEFT_OUT_WARNING = 0.10


def _feed(h: Any, value: Any) -> None:
    """Hash ``value``'s content (not its identity) into ``h``."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        h.update(f"A{a.dtype}{a.shape}".encode())
        h.update(a.tobytes() if a.dtype != object else repr(a.tolist()).encode())
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}".encode())
        for v in value:
            _feed(h, v)
    elif isinstance(value, dict):
        h.update(f"D{len(value)}".encode())
        for k in sorted(value, key=str):
            _feed(h, str(k))
            _feed(h, value[k])
    elif isinstance(value, (bool, int, float, complex, str, bytes, type(None), np.generic)):
        h.update(f"{type(value).__name__}:{value!r}".encode())
    elif hasattr(value, "tobytes"):  # a PIL image and the like
        h.update(f"{type(value).__name__}{getattr(value, 'size', '')}{getattr(value, 'mode', '')}".encode())
        h.update(value.tobytes())
    else:  # an object of the user's: its type only (a default repr holds a memory address)
        h.update(f"O{type(value).__qualname__}".encode())


_NOT_DATA = (torch.Generator, np.random.Generator, np.random.RandomState, random.Random)


def _stored(dataset: Any, depth: int = 0) -> list[tuple[str, Any]]:
    """The data a dataset object stores in its attributes (tensors, arrays, sequences of values), read
    without calling ``__getitem__``: generators, transforms and other callables are left out; a nested
    dataset (a ``Subset``'s) is read the same way."""
    found: list[tuple[str, Any]] = []
    for name, value in sorted(vars(dataset).items()) if hasattr(dataset, "__dict__") else []:
        if isinstance(value, _NOT_DATA) or callable(value):
            continue
        if isinstance(value, (torch.Tensor, np.ndarray)) or (
            isinstance(value, (list, tuple)) and value and not any(callable(v) for v in value[:8])
        ):
            found.append((name, value))
        elif depth < 3 and hasattr(value, "__getitem__") and hasattr(value, "__len__") and hasattr(value, "__dict__"):
            found += [(f"{name}.{k}", v) for k, v in _stored(value, depth + 1)]
    return found


def dataset_fingerprint(dataset: Any, *, limit: int = HASH_LIMIT) -> dict[str, Any]:
    """``{"examples", "sha256", "hashed", "complete"}`` of a map-style dataset (see the module).

    It never changes the dataset: what it stores is hashed from its attributes; only a dataset that
    stores none is read item by item, from a copy (a generator it owns is copied with it).
    """
    h = hashlib.sha256()
    n = len(dataset)
    if isinstance(dataset, TensorDataset):
        for tensor in dataset.tensors:
            _feed(h, tensor)
        return {"examples": n, "sha256": h.hexdigest(), "hashed": n, "complete": True, "from": "tensors"}
    stored = _stored(dataset)
    if stored:
        h.update(f"{type(dataset).__qualname__}:{n}".encode())
        for name, value in stored:
            _feed(h, name)
            _feed(h, value)
        return {"examples": n, "sha256": h.hexdigest(), "hashed": n, "complete": True, "from": "attributes"}
    try:
        copy_ = copy.deepcopy(dataset)
    except Exception as exc:  # noqa: BLE001 - an unpicklable handle: say so rather than read the original
        return {
            "examples": n,
            "sha256": None,
            "hashed": 0,
            "complete": False,
            "from": None,
            "reason": f"the dataset cannot be copied to be read safely ({type(exc).__name__})",
        }
    index = range(n) if n <= limit else np.linspace(0, n - 1, limit).round().astype(int).tolist()
    with isolated_global_rng(derive_seed(0, "data_fingerprint")):
        for i in index:
            _feed(h, copy_[int(i)])
    return {"examples": n, "sha256": h.hexdigest(), "hashed": len(index), "complete": n <= limit, "from": "items"}


def epoch_coverage(size: int, batch_size: int) -> dict[str, Any]:
    """How many of ``size`` training examples an epoch of equal ``batch_size`` batches uses."""
    used = (size // batch_size) * batch_size
    return {"examples": size, "used_per_epoch": used, "share": used / size if size else 0.0, "batch_size": batch_size}


def coverage_warning(coverage: dict[str, Any]) -> str | None:
    """A warning when an epoch leaves out more than :data:`LEFT_OUT_WARNING` of the training set."""
    size, used, batch = coverage["examples"], coverage["used_per_epoch"], coverage["batch_size"]
    if size == 0 or 1 - used / size <= LEFT_OUT_WARNING:
        return None
    divisors = [b for b in range(batch, 0, -1) if size % b == 0 and b >= batch // 2]
    fix = (
        f"--set batch_size={divisors[0]} uses every example"
        if divisors
        else f"a batch_size that divides {size} uses every example"
    )
    return (
        f"each epoch trains on {used} of the {size} training examples ({1 - used / size:.0%} left out): "
        f"batches all have batch_size={batch}, so the last {size - used} examples of each epoch's "
        f"order are dropped (a different {size - used} every epoch); {fix}"
    )


def data_facts(train: Any, val: Any, test: Any, *, order: torch.Tensor, batch_size: int) -> dict[str, Any]:
    """Everything :mod:`twinrun.engine._data_facts` records for a run."""
    splits = {"train": train, "val": val, **({"test": test} if test is not None else {})}
    facts: dict[str, Any] = {name: dataset_fingerprint(d) for name, d in splits.items()}
    facts["order_sha256"] = hashlib.sha256(order.to(torch.int64).numpy().tobytes()).hexdigest()
    facts["epoch"] = epoch_coverage(len(train), batch_size)
    return facts
