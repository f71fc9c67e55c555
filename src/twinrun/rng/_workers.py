"""Seeding DataLoader workers: distinct per worker, per epoch and per rank; repeatable.

A ``torch.utils.data.DataLoader`` with ``num_workers > 0`` draws a base seed
each epoch (from its ``generator``, else from torch's *global* generator) and
seeds worker ``i`` with ``base + i``: Python's and torch's generators directly,
NumPy's from ``(base, i)``. Two gaps remain, and this module closes them:

* **ranks**: every process of a distributed job usually builds its loader with
  the same seed, so rank 0's worker 3 and rank 1's worker 3 draw the very same
  "random" augmentations. :func:`seed_worker` mixes the rank in.
* **the global generator**: without a ``generator``, a stray draw from
  ``torch.rand`` anywhere in the main process shifts every worker's seed.
  :func:`dataloader_generator` gives the loader its own generator, derived
  from the run seed and the rank.

Use both::

    loader = DataLoader(ds, num_workers=4, shuffle=True,
                        worker_init_fn=twinrun.seed_worker,
                        generator=twinrun.dataloader_generator(seed))
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from twinrun.errors import ConfigError
from twinrun.rng._seed import numpy_legacy_seed
from twinrun.rng._streams import derive_seed

__all__ = ["current_rank", "dataloader_generator", "seed_worker"]


def current_rank() -> int:
    """This process's rank: ``torch.distributed`` when initialised, else ``$RANK``, else 0."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    raw = os.environ.get("RANK")
    if raw is None or not raw.strip():
        return 0
    try:
        rank = int(raw)
    except ValueError:
        rank = -1
    if rank < 0:
        raise ConfigError(f"RANK={raw!r} is not a process rank", fix="set RANK to 0, 1, 2 ... or unset it")
    return rank


def seed_worker(worker_id: int) -> None:
    """A ``worker_init_fn`` that seeds Python, NumPy and torch inside a DataLoader worker.

    The seed is derived from ``torch.initial_seed()`` (which the DataLoader
    already makes distinct per worker and per epoch) and the rank (see
    :func:`current_rank`), so it differs across workers, epochs and ranks and
    is repeatable when the loader has a seeded ``generator``.

    Side effects (inside the worker process only): ``random.seed``,
    ``np.random.seed`` and ``torch.manual_seed``.
    """
    seed = derive_seed(torch.initial_seed(), "worker", current_rank(), worker_id)
    random.seed(seed)
    np.random.seed(numpy_legacy_seed(seed))
    torch.manual_seed(seed)


def dataloader_generator(seed: int, *, rank: int | None = None, name: str = "dataloader") -> torch.Generator:
    """A CPU ``torch.Generator`` for a DataLoader, derived from ``seed``, ``name`` and the rank.

    It orders shuffling and seeds workers, independently of torch's global
    generator. ``rank`` defaults to :func:`current_rank`.
    """
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, name, current_rank() if rank is None else rank))
    return g
