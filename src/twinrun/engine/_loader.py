"""Training batches read through the user's own loader (DataLoader workers and all).

The loader decides *how* examples are read (worker processes, ``worker_init_fn``,
pinned memory, a custom collate); twinrun still decides *which*: the loader is
built with ``batch_sampler=`` a sampler that yields, for each step, the indices
of :class:`~twinrun.engine._data.BatchPlan`. So every candidate sees the same
batches, and a loader over a deterministic dataset gives the very batches of
the in-process path.

Randomness inside the loader, and how resuming stays exact:

* the loader's ``generator`` (which seeds its workers) is re-seeded from the
  ``loader`` stream at the start of every epoch, so each epoch's workers start
  from a function of (seed, epoch);
* with fresh workers every epoch (``num_workers > 0`` and no persistent workers),
  a worker's state at step ``t`` depends only on the batches of ``t``'s epoch
  before it: a resume (or any batch asked for out of order) replays the epoch up
  to that step;
* with persistent workers, or ``num_workers=0`` (the dataset's own generator
  lives in this process), the state carries over from epoch to epoch: a resume
  replays the data from step 1 (in this process, from a dataset built anew by
  the data factory). Replay reads batches without training on them.

In this process (``num_workers=0``) each batch is read inside the ``data_fetch``
stream of its step, as in the in-process path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import Sampler

from twinrun.errors import DataError
from twinrun.rng import RngStreams
from twinrun.spec import Factory

__all__ = ["LoaderFeed", "PlanBatchSampler"]


class PlanBatchSampler(Sampler[list[int]]):
    """The batches of one epoch of a :class:`BatchPlan`, as lists of indices."""

    def __init__(self, plan: Any) -> None:
        self.plan = plan
        self.epoch = 0

    def __iter__(self) -> Iterator[list[int]]:
        per = self.plan.batches_per_epoch
        for position in range(per):
            yield self.plan.indices(self.epoch * per + position + 1).tolist()

    def __len__(self) -> int:
        return int(self.plan.batches_per_epoch)


class LoaderFeed:
    """The batch of each step from the user's loader: in order for free, out of order by replay."""

    def __init__(
        self,
        factory: Factory,
        dataset: Any,
        plan: Any,
        streams: RngStreams,
        experiment: str,
        reload: Callable[[], Any] | None = None,
    ) -> None:
        self.factory = factory
        self.dataset = dataset
        self.reload = reload
        self.plan = plan
        self.streams = streams
        self.experiment = experiment
        self.replayed = 0  # batches read without being used (resume, out-of-order reads)
        self._build()

    def _build(self) -> None:
        self.sampler = PlanBatchSampler(self.plan)
        self.generator = torch.Generator()
        try:
            self.loader = self.factory.fn(
                self.dataset, batch_sampler=self.sampler, generator=self.generator, **self.factory.kwargs
            )
        except Exception as exc:
            raise DataError(
                f"experiment {self.experiment!r}: loader factory {self.factory.name} failed: "
                f"{type(exc).__name__}: {exc}",
                fix="a loader factory is called as fn(train_dataset, batch_sampler=..., generator=..., **kw); "
                "pass both on to torch.utils.data.DataLoader, and do not set batch_size, shuffle or sampler",
            ) from exc
        workers = int(getattr(self.loader, "num_workers", 0) or 0)
        self.in_process = workers == 0
        self.carries_over = self.in_process or bool(getattr(self.loader, "persistent_workers", False))
        self._batches: Iterator[Any] | None = None
        self._next_step: int | None = None
        self._last: tuple[int, tuple[Any, Any]] | None = None

    def _epochs(self, first_epoch: int) -> Iterator[Any]:
        epoch = first_epoch
        while True:
            self.sampler.epoch = epoch
            self.generator.manual_seed(self.streams.seed_for("loader", epoch))
            yield from self.loader
            epoch += 1

    def batch(self, step: int) -> tuple[Any, Any]:
        """The raw training batch of update ``step`` (1-based), on the CPU."""
        if self._last is not None and self._last[0] == step:  # asked again (the preflight reads step 1)
            return self._last[1]
        if self._next_step != step:
            self._seek(step)
        assert self._batches is not None
        if self.in_process:
            with self.streams.isolated("data_fetch", step):
                batch = next(self._batches)
        else:
            batch = next(self._batches)
        self._next_step = step + 1
        checked = self._check(batch, step)
        self._last = (step, checked)
        return checked

    def _seek(self, step: int) -> None:
        first = 1 if self.carries_over else self.plan.epoch_of(step) * self.plan.batches_per_epoch + 1
        self.close()
        if self.in_process and self.reload is not None and self._last is not None:
            self.dataset = self.reload()  # its own generators as they were at step 1
            self._build()
        elif self.carries_over and not self.in_process:
            self._build()  # fresh persistent workers, started as they were at step 1
        self._batches = self._epochs(self.plan.epoch_of(first))
        for skipped in range(first, step):
            if self.in_process:
                with self.streams.isolated("data_fetch", skipped):
                    next(self._batches)
            else:
                next(self._batches)
            self.replayed += 1

    def _check(self, batch: Any, step: int) -> tuple[Any, Any]:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise DataError(
                f"experiment {self.experiment!r}: the loader gave a {type(batch).__name__} at step {step}; "
                "twinrun needs (inputs, targets) batches",
                fix="make the dataset return (input, target) pairs, or the collate_fn (inputs, targets)",
            )
        size = _rows(batch[1])
        if size is not None and size != self.plan.batch_size:
            raise DataError(
                f"experiment {self.experiment!r}: the loader's batch of step {step} has {size} examples, "
                f"not batch_size={self.plan.batch_size}: it does not read the batch_sampler twinrun gives it",
                fix="pass batch_sampler=... on to DataLoader and set no batch_size, shuffle or sampler",
            )
        return batch[0], batch[1]

    def close(self) -> None:
        """Stop the workers of the current pass (they are started again when needed)."""
        self._batches = None
        self._next_step = None
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
            self.loader._iterator = None


def _rows(value: Any) -> int | None:
    if isinstance(value, torch.Tensor) and value.ndim > 0:
        return int(value.shape[0])
    return None
