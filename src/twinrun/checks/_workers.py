"""Check 12, ``worker_streams``: random augmentation differs across DataLoader workers and epochs.

A dataset that draws random numbers in ``__getitem__`` from a generator created
in ``__init__`` (``self.rng = np.random.default_rng(0)``), or from NumPy's global
generator re-seeded to a constant in ``worker_init_fn``, hands every worker the
same stream: worker 0 and worker 1 produce the same "random" crops, and every
epoch repeats the previous one, because workers are forked from a parent whose
generator never moves. (Since PyTorch 1.9 NumPy's *global* generator is seeded
per worker, so plain ``np.random`` calls without a custom ``worker_init_fn`` are
fine.)

The check loads one example many times through a DataLoader with several
workers, for two epochs, and compares what each worker produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset, get_worker_info

from twinrun.checks._context import CheckContext, first_tensor
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult
from twinrun.spec import import_object

__all__ = ["CHECK", "worker_samples"]

NAME = "worker_streams"


class _Repeat(Dataset[Any]):
    """``length`` copies of ``dataset[index]``, each tagged with the worker that loaded it."""

    _OWN = ("dataset", "index", "length")

    def __init__(self, dataset: Any, index: int, length: int) -> None:
        object.__setattr__(self, "dataset", dataset)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "length", length)

    # ``worker_init_fn`` idiom: ``get_worker_info().dataset.rng = ...`` re-seeds the user's dataset, not this view
    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "dataset"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.dataset, name, value)

    def __len__(self) -> int:
        return cast("int", self.length)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        info = get_worker_info()
        inputs = first_tensor(self.dataset[self.index][0])
        if inputs is None:
            raise TypeError("the example's input holds no tensor")
        return (info.id if info is not None else -1), inputs.detach().clone()


def _one(items: list[Any]) -> Any:
    return items[0]


def worker_samples(
    dataset: Any,
    *,
    index: int,
    workers: int,
    per_worker: int,
    epochs: int,
    worker_init_fn: Any = None,
    multiprocessing_context: Any = None,
) -> list[dict[int, list[torch.Tensor]]]:
    """For each epoch, worker id -> the inputs it produced for ``dataset[index]``, in order."""
    loader = DataLoader(
        _Repeat(dataset, index, workers * per_worker),
        batch_size=1,
        shuffle=False,
        num_workers=workers,
        worker_init_fn=worker_init_fn,
        collate_fn=_one,
        multiprocessing_context=multiprocessing_context,
    )
    result = []
    for _ in range(epochs):
        by_worker: dict[int, list[torch.Tensor]] = {}
        for worker, tensor in loader:
            by_worker.setdefault(int(worker), []).append(tensor)
        result.append(by_worker)
    return result


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b))


def check_worker_streams(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    dataset = ctx.data.train
    loader = ctx.train_loader
    if isinstance(dataset, TensorDataset):
        return CheckResult(
            NAME,
            "skip",
            "a TensorDataset",
            "-",
            "The training data is a fixed tensor dataset with no per-example randomness, so "
            "DataLoader workers have no random stream to duplicate.",
            "",
        )
    workers = opts["num_workers"]
    if workers < 2:
        return CheckResult(
            NAME,
            "skip",
            f"num_workers={workers}",
            "-",
            "With fewer than two workers there is no stream to duplicate.",
            "",
        )
    init = opts["worker_init_fn"]
    source = "check option"
    if init is None and loader is not None and getattr(loader, "worker_init_fn", None) is not None:
        init, source = loader.worker_init_fn, "your DataLoader"
    if isinstance(init, str):
        init = import_object(init, where=f"check option {NAME}.worker_init_fn")
    context = getattr(loader, "multiprocessing_context", None) if loader is not None else None
    samples = worker_samples(
        dataset,
        index=opts["index"],
        workers=workers,
        per_worker=opts["per_worker"],
        epochs=2,
        worker_init_fn=init,
        multiprocessing_context=context,
    )
    flat = [t for epoch in samples for seq in epoch.values() for t in seq]
    init_name = getattr(init, "__qualname__", repr(init)) if init is not None else "none (PyTorch's default seeding)"
    details = {
        "workers": workers,
        "per_worker": opts["per_worker"],
        "index": opts["index"],
        "worker_init_fn": init_name,
        "worker_init_fn_from": source if init is not None else None,
    }
    if all(torch.equal(flat[0], t) for t in flat[1:]):
        return CheckResult(
            NAME,
            "skip",
            "no per-example randomness",
            "-",
            f"Example {opts['index']} came out identical {len(flat)} times across {workers} workers "
            "and two epochs: the dataset draws no random numbers, so there is no stream to check.",
            "",
            details=details,
        )
    pairs, same_pairs = 0, []
    for e, epoch in enumerate(samples):
        ids = sorted(epoch)
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)):
                pairs += 1
                if _same(epoch[ids[a]], epoch[ids[b]]):
                    same_pairs.append((e, ids[a], ids[b]))
    repeated = [w for w in samples[0] if w in samples[1] and _same(samples[0][w], samples[1][w])]
    details.update(worker_pairs=pairs, identical_worker_pairs=len(same_pairs), workers_repeating_epoch=repeated)
    measured = (
        f"identical worker pairs {len(same_pairs)}/{pairs}; workers repeating the previous epoch "
        f"{len(repeated)}/{len(samples[0])}"
    )
    expected = "0 and 0: every worker and every epoch draws its own augmentation"
    explanation = (
        f"Example {opts['index']} was loaded {opts['per_worker']} times by each of {workers} DataLoader workers, "
        f"for two epochs (worker_init_fn: {init_name})."
    )
    problems = []
    if same_pairs:
        problems.append(
            f" Workers produce the very same sequence of random transforms ({len(same_pairs)} of {pairs} worker "
            "pairs): with N workers each 'random' augmentation is repeated N times per epoch, so the model "
            "sees N times fewer distinct examples than you think."
        )
    if repeated:
        problems.append(
            f" {len(repeated)} worker(s) repeat exactly the transforms of the previous epoch: augmentation is "
            "fixed per example instead of fresh each epoch."
        )
    if not problems:
        return CheckResult(
            NAME,
            "pass",
            measured,
            expected,
            explanation + (" Every worker and every epoch drew different transforms."),
            details=details,
        )
    return CheckResult(
        NAME,
        "fail",
        measured,
        expected,
        explanation
        + "".join(problems)
        + (
            " This happens when the dataset keeps its own generator created in __init__ (copied into every "
            "forked worker), or when worker_init_fn re-seeds NumPy with a constant."
        ),
        "seed per worker and epoch: pass worker_init_fn=twinrun.seed_worker (or seed NumPy in each worker from "
        "torch.initial_seed(), e.g. np.random.seed(torch.initial_seed() % 2**32)); draw from np.random or "
        "torch inside __getitem__ instead of a generator stored in __init__",
        details=details,
    )


CHECK = Check(
    name=NAME,
    title="DataLoader workers draw different augmentation streams",
    fn=check_worker_streams,
    options={
        "num_workers": Option(2, "DataLoader workers to start"),
        "per_worker": Option(3, "times each worker loads the example"),
        "index": Option(0, "the training example loaded over and over"),
        "worker_init_fn": Option(
            None,
            "your worker_init_fn (a callable or 'module:function'); default: "
            "the one of the DataLoader given to run_checks, else none",
            callable_ok=True,
        ),
    },
)
