"""The global generators' states: captured into checkpoints, restored on resume, digested for the ledger.

twinrun never draws from the global generators itself, but code outside its
streams may (a user's sink, a library). A checkpoint therefore keeps their
states (Python, NumPy, torch's CPU generator and every CUDA device's), so that
such code continues exactly where it was after a resume.

Captured states hold only tensors, lists, ints, floats and strings, so they
load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import numpy as np
import torch
import xxhash

from twinrun.errors import ReproducibilityWarning

__all__ = ["capture_global_rng", "global_rng_digest", "restore_global_rng"]


def _cuda_in_use() -> bool:
    """CUDA generators are only read once CUDA is initialised (reading them would initialise it)."""
    return torch.cuda.is_available() and torch.cuda.is_initialized()


def capture_global_rng() -> dict[str, Any]:
    """The states of Python's, NumPy's, torch's CPU and every CUDA device's global generator."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64).copy()),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.random.get_rng_state(),
        "cuda": [s.clone() for s in torch.cuda.get_rng_state_all()] if _cuda_in_use() else [],
    }
    return state


def restore_global_rng(state: dict[str, Any]) -> None:
    """Put every global generator back into a state from :func:`capture_global_rng`.

    CUDA states are restored when this process has as many CUDA devices as the
    one that captured them; otherwise a warning says they were skipped.
    """
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": npy["bit_generator"],
            "state": {"key": npy["key"].numpy().astype(np.uint32), "pos": npy["pos"]},
            "has_gauss": npy["has_gauss"],
            "gauss": npy["gauss"],
        }
    )
    torch.random.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda:
        if torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
            torch.cuda.set_rng_state_all(cuda)
        else:
            have = torch.cuda.device_count() if torch.cuda.is_available() else 0
            warnings.warn(
                f"the checkpoint holds the generator states of {len(cuda)} CUDA device(s) but this "
                f"process has {have}; CUDA generator states were not restored",
                ReproducibilityWarning,
                stacklevel=2,
            )


def global_rng_digest() -> str:
    """A control sum of the global generators' states (Python, NumPy, torch CPU, CUDA in use)."""
    h = xxhash.xxh3_64()
    _, internal, gauss = random.getstate()
    # a tuple of ints hashes alike in every process (no PYTHONHASHSEED, no addresses involved)
    h.update(f"{hash(internal)},{gauss!r}".encode())
    _, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    h.update(np.ascontiguousarray(key, dtype=np.uint32).tobytes())
    h.update(f"{pos},{has_gauss},{gauss!r}".encode())
    h.update(torch.random.get_rng_state().numpy().tobytes())
    if _cuda_in_use():
        for s in torch.cuda.get_rng_state_all():
            h.update(s.numpy().tobytes())
    return h.hexdigest()
