"""Shared data: which examples form the batch of each step, and the validation batches.

The order of training examples is a pure function of (seed, epoch): the batch of
step ``t`` can be recomputed at any time, which makes resuming mid-epoch exact
and lets every candidate see the very same examples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import TensorDataset, default_collate

from twinrun.engine._loader import LoaderFeed
from twinrun.errors import DataError
from twinrun.rng import RngStreams, derive_seed, isolated_global_rng
from twinrun.spec import Factory

__all__ = ["BatchPlan", "SharedData", "as_dataset", "augment_once", "load_data", "move_to"]


def as_dataset(value: Any, *, split: str, experiment: str) -> Any:
    """Accept a map-style dataset or a tuple ``(inputs, targets)`` of tensors/arrays."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (torch.Tensor, np.ndarray)) for v in value):
        tensors = [torch.as_tensor(v) for v in value]
        if tensors[0].shape[0] != tensors[1].shape[0]:
            raise DataError(
                f"experiment {experiment!r}: {split} inputs have {tensors[0].shape[0]} rows but "
                f"targets have {tensors[1].shape[0]}",
                fix="return (inputs, targets) with one target per input",
            )
        value = TensorDataset(*tensors)
    if not (hasattr(value, "__getitem__") and hasattr(value, "__len__")):
        raise DataError(
            f"experiment {experiment!r}: the {split} data is a {type(value).__name__}, not a map-style dataset",
            fix="return a torch Dataset (with __len__ and __getitem__) or a tuple (inputs, targets)",
        )
    if len(value) == 0:
        raise DataError(
            f"experiment {experiment!r}: the {split} dataset is empty",
            fix="check the data factory's filtering and paths",
        )
    return value


def move_to(obj: Any, device: torch.device) -> Any:
    """Move every tensor inside ``obj`` (tensor, tuple, list, dict) to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    return obj


@dataclass(frozen=True)
class BatchPlan:
    """Which training examples make up the batch of each step (1-based).

    Each epoch is a fresh permutation drawn from the ``data_order`` stream at
    that epoch; the last incomplete batch of an epoch is dropped so every batch
    has the same size.
    """

    size: int
    batch_size: int
    streams: RngStreams
    _last_order: list[Any] = field(default_factory=list, compare=False, repr=False)

    @property
    def batches_per_epoch(self) -> int:
        return self.size // self.batch_size

    def epoch_of(self, step: int) -> int:
        return (step - 1) // self.batches_per_epoch

    def order(self, epoch: int) -> torch.Tensor:
        """The permutation of ``epoch`` (drawn once per epoch: the last one is kept)."""
        cached = self._last_order
        if cached and cached[0] == epoch:
            return cast("torch.Tensor", cached[1])
        order = torch.randperm(self.size, generator=self.streams.torch("data_order", epoch))
        self._last_order[:] = [epoch, order]
        return order

    def indices(self, step: int) -> torch.Tensor:
        """Example indices of the batch used by update ``step`` (1-based)."""
        order = self.order(self.epoch_of(step))
        position = (step - 1) % self.batches_per_epoch
        return order[position * self.batch_size : (position + 1) * self.batch_size]


class SharedData:
    """The training, validation and (optional) test data of a run, shared by all candidates.

    The test split is evaluated once, at the end, and never used for any decision.
    """

    def __init__(
        self,
        train: Any,
        val: Any,
        *,
        batch_size: int,
        eval_batch_size: int,
        streams: RngStreams,
        experiment: str,
        loader: Factory | None = None,
        reload_train: Callable[[], Any] | None = None,
        test: Any = None,
    ) -> None:
        self.train = as_dataset(train, split="train", experiment=experiment)
        self.val = as_dataset(val, split="validation", experiment=experiment)
        self.test = None if test is None else as_dataset(test, split="test", experiment=experiment)
        if batch_size > len(self.train):
            raise DataError(
                f"experiment {experiment!r}: batch_size={batch_size} is larger than the training "
                f"set ({len(self.train)} examples)",
                fix=f"use --set batch_size={max(1, len(self.train) // 4)} or fewer",
            )
        self.plan = BatchPlan(len(self.train), batch_size, streams)
        self._plans: dict[int, BatchPlan] = {}
        self.eval_batch_size = eval_batch_size
        self._experiment = experiment
        self._check_item(self.train, "train")
        self._check_item(self.val, "validation")
        if self.test is not None:
            self._check_item(self.test, "test")
            self._check_same_inputs(self.test, "test")

        def reload() -> Any:  # the training set as built at the start (its own generators too)
            assert reload_train is not None
            dataset = as_dataset(reload_train(), split="train", experiment=experiment)
            self._check_item(dataset, "train")
            return dataset

        self.feed = (
            None
            if loader is None
            else LoaderFeed(
                loader, self.train, self.plan, streams, experiment, reload=None if reload_train is None else reload
            )
        )

    def _check_item(self, dataset: Any, split: str) -> None:
        with self.plan.streams.isolated("data_fetch", 0):  # a random transform draws from a stream of its own
            item = dataset[0]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DataError(
                f"experiment {self._experiment!r}: a {split} example is a "
                f"{type(item).__name__} of {len(item) if hasattr(item, '__len__') else '?'} items; "
                "twinrun needs (input, target) pairs",
                fix="make the dataset's __getitem__ return (input, target)",
            )

    def _check_same_inputs(self, dataset: Any, split: str) -> None:
        """A split whose inputs are shaped unlike the training inputs is refused before training."""

        def shape(ds: Any) -> Any:
            with self.plan.streams.isolated("data_fetch", 0):
                x = ds[0][0]
            return tuple(x.shape) if hasattr(x, "shape") else type(x).__name__

        train, other = shape(self.train), shape(dataset)
        if train != other:
            raise DataError(
                f"experiment {self._experiment!r}: a {split} input has shape {other}, a training input {train}",
                fix=f"make the data factory's {split} split hold inputs like the training split's "
                "(the same preprocessing), or return (train, val) only",
            )

    def gather(self, dataset: Any, indices: Sequence[int] | torch.Tensor) -> tuple[Any, Any]:
        """Examples ``indices`` of ``dataset`` as one collated ``(inputs, targets)`` batch (CPU)."""
        if isinstance(dataset, TensorDataset):
            index = torch.as_tensor(indices)
            return dataset.tensors[0][index], dataset.tensors[1][index]
        items = [dataset[int(i)] for i in indices]
        return tuple(default_collate(items))

    def plan_for(self, batch_size: int | None) -> BatchPlan:
        """The batch plan of a candidate with a batch size of its own: the same order of examples in every
        epoch (the ``data_order`` stream), cut into batches of its size; the run's plan otherwise."""
        if batch_size is None or batch_size == self.plan.batch_size:
            return self.plan
        if batch_size > len(self.train):
            raise DataError(
                f"experiment {self._experiment!r}: a candidate's batch_size={batch_size} is larger than "
                f"the training set ({len(self.train)} examples)",
                fix=f"give it batch_size={max(1, len(self.train) // 4)} or fewer",
            )
        if self.feed is not None:
            raise DataError(
                f"experiment {self._experiment!r}: a candidate with batch_size={batch_size} of its own "
                "cannot read through the experiment's loader, which serves the run's batches",
                fix="drop the loader, or give every candidate the run's batch_size",
            )
        return self._plans.setdefault(batch_size, BatchPlan(len(self.train), batch_size, self.plan.streams))

    def train_batch(self, step: int, batch_size: int | None = None) -> tuple[Any, Any]:
        """The raw (un-augmented) training batch of update ``step``, on the CPU.

        A dataset of its own (not a ``TensorDataset``) may draw from the global
        generators in ``__getitem__`` (random transforms): it is read inside the
        ``data_fetch`` stream of the step, so its draws are a function of the seed and
        the step alone, whatever the process did before (a sweep's seed equals that
        seed's ``compare``; a resumed run equals an uninterrupted one).
        """
        plan = self.plan_for(batch_size)
        if self.feed is not None:  # the user's loader reads the same examples (see _loader)
            return self.feed.batch(step)
        indices = plan.indices(step)
        if isinstance(self.train, TensorDataset):
            return self.gather(self.train, indices)
        with self.plan.streams.isolated("data_fetch", step):
            return self.gather(self.train, indices)

    def close(self) -> None:
        """Stop the loader's workers, if there is a loader."""
        if self.feed is not None:
            self.feed.close()

    def val_batches(self, split: str = "val") -> Iterator[tuple[Any, Any]]:
        """Validation (or ``split="test"``) batches in a fixed order (the same for every candidate and
        evaluation)."""
        dataset = self.val if split == "val" else self.test
        if dataset is None:
            raise DataError(
                f"experiment {self._experiment!r} has no {split} split",
                fix="return (train, val, test) from the data factory",
            )
        n = len(dataset)
        for start in range(0, n, self.eval_batch_size):
            yield self.gather(dataset, range(start, min(n, start + self.eval_batch_size)))

    def val_targets(self) -> Any:
        targets = [batch[1] for batch in self.val_batches()]
        return torch.cat(targets) if isinstance(targets[0], torch.Tensor) else targets


def batch_size_of(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, (list, tuple)) and batch:
        return batch_size_of(batch[0])
    if isinstance(batch, dict) and batch:
        return batch_size_of(next(iter(batch.values())))
    raise DataError(f"cannot tell the batch size of a {type(batch).__name__}")


def load_data(resolved: Any, streams: RngStreams) -> SharedData:
    """Call the experiment's data factory and wrap its splits for the run."""
    settings = resolved.settings
    loaded = _call_data_factory(resolved)
    return SharedData(
        loaded[0],
        loaded[1],
        batch_size=settings.batch_size,
        eval_batch_size=settings.eval_batch_size,
        streams=streams,
        experiment=resolved.name,
        loader=resolved.loader,
        reload_train=lambda: _call_data_factory(resolved)[0],
        test=loaded[2] if len(loaded) == 3 else None,
    )


def _call_data_factory(resolved: Any) -> tuple[Any, ...]:
    data = resolved.data
    # A constant stream: a random split inside the data factory is the same for every seed.
    with isolated_global_rng(derive_seed(0, "data")):
        try:
            loaded = data.fn(**data.kwargs)
        except Exception as exc:
            raise DataError(
                f"experiment {resolved.name!r}: data factory {data.name} failed: {type(exc).__name__}: {exc}",
                fix=f"check the data keys: {data.kwargs}",
            ) from exc
    if not isinstance(loaded, (tuple, list)) or len(loaded) not in (2, 3):
        raise DataError(
            f"experiment {resolved.name!r}: data factory {data.name} returned "
            f"{type(loaded).__name__}"
            f"{f' of {len(loaded)} items' if isinstance(loaded, (tuple, list)) else ''}; "
            "twinrun needs (train, val) or (train, val, test)",
            fix="return a pair (train_dataset, val_dataset), or a triple with a test split "
            "that is evaluated once, at the end",
        )
    return tuple(loaded)


def augment_once(
    streams: RngStreams,
    device: torch.device,
    step: int,
    raws: Mapping[int | None, tuple[Any, Any]],
    live: Sequence[Any],
) -> tuple[dict[str, tuple[Any, Any]], dict[str, str]]:
    """The batch of ``step`` augmented once per distinct augmentation of the ``live`` candidates, from the
    step's ``augment`` stream; and which candidate uses which (``{candidate: augment_key}``). ``raws``: the
    raw batch by batch size (``None``: the run's)."""
    batches: dict[str, tuple[Any, Any]] = {}
    assignment: dict[str, str] = {}
    for state in live:
        key = state.spec.augment_key
        assignment[state.name] = key
        if key in batches:
            continue
        raw = raws[state.spec.batch_size]
        if state.augment is None:
            batches[key] = raw
            continue
        generator = streams.torch("augment", step, device=device)
        with streams.isolated("augment", step, devices=[device]):
            augmented = state.augment(raw[0], raw[1], generator=generator)
        batches[key] = (augmented[0], augmented[1])
    return batches, assignment
