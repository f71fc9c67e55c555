"""Data-parallel twins on ``torch.distributed``: a run launched by ``torchrun``.

Every rank builds the same run (the same seed gives the same candidates, data
plan and augmentation), so the global batch of a step is the same on every rank;
each rank trains on its contiguous shard of it, every candidate wrapped in
``DistributedDataParallel``, which averages the gradients: with equal shards and a
mean loss, the update is the full batch's (to rounding). A step's loss and metrics
are averaged over the ranks before anything is decided (a non-finite loss stops
the candidate on every rank at once), dropout draws from a stream of (seed, rank),
and every rank evaluates the whole validation set on the unwrapped model (the
same weights everywhere). Rank 0 alone writes the registry, TensorBoard and the
verdict; every rank writes its own ledger.

Each rank checkpoints its own state (the world size and rank are in it: a resume
with another launch is refused). ``data_parallel="fsdp"`` shards each candidate
with ``fully_shard`` instead (FSDP2): its parameters become ``DTensor`` shards,
each rank's ledger records its own shards, and every rank still evaluates the
whole validation set (each forward gathers the parameters). Replicas under
``torchrun`` are data-parallel runs one after another in one process group
(``cli/_replicas``). What is not done yet: batching those replicas together, and
spreading candidates over devices in one process.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils import _pytree as pytree

from twinrun.errors import ConfigError

__all__ = [
    "World",
    "broadcast_text",
    "check_divisible",
    "detect_world",
    "global_mean",
    "join_world",
    "leave_world",
    "shard",
    "spread_over_ranks",
    "wrap_model",
]

_TIMEOUT_S_ENV = "TWINRUN_DIST_TIMEOUT_S"


@dataclass(frozen=True)
class World:
    """This process's place in a ``torchrun`` launch."""

    rank: int
    size: int
    local_rank: int

    @property
    def main(self) -> bool:
        """Rank 0: the one that records."""
        return self.rank == 0


def _env_int(name: str, environ: Mapping[str, str]) -> int | None:
    raw = environ.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer", fix=f"launch with torchrun, which sets {name}") from None
    if value < 0:
        raise ConfigError(f"{name}={value} is negative", fix=f"launch with torchrun, which sets {name}")
    return value


def detect_world(environ: Mapping[str, str] | None = None) -> World | None:
    """The launch ``torchrun`` made (``WORLD_SIZE`` > 1, ``RANK``, ``LOCAL_RANK``), or ``None`` for one process."""
    env = os.environ if environ is None else environ
    size = _env_int("WORLD_SIZE", env)
    if size is None or size <= 1:
        return None
    rank, local = _env_int("RANK", env), _env_int("LOCAL_RANK", env)
    if rank is None or rank >= size:
        raise ConfigError(
            f"WORLD_SIZE={size} but RANK={env.get('RANK')!r}", fix="launch with torchrun --nproc_per_node N"
        )
    return World(rank, size, local if local is not None else rank)


def join_world(world: World, device: torch.device) -> bool:
    """Start the process group (gloo on the CPU, NCCL on CUDA) unless one is running; returns whether it
    started one. A rank that waits longer than ``$TWINRUN_DIST_TIMEOUT_S`` (default 120) for the others fails."""
    if dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl" and not dist.is_nccl_available():
        raise ConfigError(
            "a data-parallel run on CUDA needs NCCL, which this torch build lacks",
            fix="install a CUDA build of torch, or run on the CPU (--device cpu, gloo)",
        )
    if device.type == "cuda":
        torch.cuda.set_device(world.local_rank)  # "cuda" is this rank's own device from here on
    timeout = _env_int(_TIMEOUT_S_ENV, os.environ) or 120
    dist.init_process_group(
        backend, rank=world.rank, world_size=world.size, timeout=datetime.timedelta(seconds=timeout)
    )
    return True


def leave_world(started: bool) -> None:
    if started and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_text(value: str) -> str:
    """Rank 0's ``value`` on every rank (the run id)."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return str(box[0])


def check_divisible(batch_size: int, world: World, what: str) -> None:
    """A batch that does not split into equal shards is refused before training, on every rank."""
    if batch_size % world.size:
        low = batch_size - batch_size % world.size
        raise ConfigError(
            f"{what}={batch_size} does not split over {world.size} ranks ({batch_size / world.size:g} examples each): "
            "unequal shards would weigh examples unequally in the averaged gradient",
            fix=f"use a multiple of {world.size}, e.g. --set batch_size={low or world.size} or {low + world.size}",
        )


def shard(batch: tuple[Any, Any], world: World) -> tuple[Any, Any]:
    """This rank's contiguous slice of every tensor of ``(inputs, targets)`` along the batch dimension."""

    def part(t: Any) -> Any:
        if not isinstance(t, torch.Tensor) or t.ndim == 0:
            return t
        size = t.shape[0] // world.size
        return t[world.rank * size : (world.rank + 1) * size]

    return pytree.tree_map(part, batch[0]), pytree.tree_map(part, batch[1])


def wrap_model(
    model: nn.Module, device: torch.device, how: str = "ddp", optimizer: torch.optim.Optimizer | None = None
) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` (its parameters and buffers are rank 0's from here), or, with
    ``how="fsdp"``, sharded in place by ``fully_shard`` (the same object, its parameters now ``DTensor`` shards;
    every rank holds the same initial weights, so the shards are the full model's). ``fully_shard`` makes new
    parameter objects: ``optimizer``'s param groups are pointed at them, name by name."""
    if how == "fsdp":
        from torch.distributed.fsdp import fully_shard

        names = {id(p): n for n, p in model.named_parameters()}
        fully_shard(model)
        if optimizer is not None:
            sharded = dict(model.named_parameters())
            if optimizer.state:
                raise ConfigError(
                    f"data_parallel=fsdp shards a model before its first update, but {type(optimizer).__name__} "
                    "has already stepped",
                    fix="give the candidate a fresh optimizer (its factory builds one per run)",
                )
            for group in optimizer.param_groups:
                group["params"] = [sharded[names[id(p)]] for p in group["params"]]
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def spread_over_ranks(states: Iterable[Any], settings: Any, device: torch.device, world: World) -> str:
    """Check that every batch splits over the ranks, wrap each candidate (``settings.data_parallel``: DDP or
    FSDP); returns how its steps run, for the run's report."""
    how = settings.data_parallel
    if how == "fsdp" and settings.select_by is not None:
        raise ConfigError(
            f"select_by={settings.select_by!r} keeps each candidate's best weights, which data_parallel=fsdp "
            "holds in shards over the ranks",
            fix="use --set data_parallel=ddp with select_by, or drop select_by",
        )
    check_divisible(settings.batch_size, world, "batch_size")
    for state in states:
        if state.spec.batch_size is not None:
            check_divisible(state.spec.batch_size, world, f"{state.name}:batch_size")
        state.train_model = wrap_model(state.model, device, how, state.optimizer)
    kind = "FullyShardedDataParallel, fully_shard" if how == "fsdp" else "DistributedDataParallel"
    return f"sequential, data-parallel over {world.size} ranks ({kind})"


def global_mean(values: Sequence[float], device: torch.device) -> list[float]:
    """The mean over the ranks of each of ``values`` (one collective for all of them)."""
    if not values:
        return []
    on = device if device.type == "cuda" else torch.device("cpu")
    total = torch.tensor(list(values), dtype=torch.float64, device=on)
    dist.all_reduce(total)
    return (total / dist.get_world_size()).tolist()
