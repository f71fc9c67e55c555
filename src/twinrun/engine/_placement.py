"""Where each candidate trains: one device for all, or candidates spread over several (``devices``).

With ``devices`` unset every candidate trains on ``device``. With a list
(``"cuda:0,cuda:1"``) or ``"auto"`` (every visible CUDA device) the candidates
are spread over them, and with a mapping (``{"wide": "cuda:1"}``) each is put
where it is told. The spreading rule, readable from the run report:

* no more candidates than devices: candidate ``i`` on device ``i``;
* more: candidates of the same architecture (module class, parameter names and
  shapes) are kept next to each other, and the list is cut into one
  contiguous slice per device, as equal as can be, so that a device holding
  several same-architecture candidates can batch them (the vectorised executor).

Nothing else about a twin changes: initial weights are drawn on the CPU before
any model moves, every batch is made (and augmented, once) on the first device
and copied to the others, the dropout stream seeds every device in use alike.
So a candidate trained on ``cuda:1`` beside others gets the numbers it gets
alone on ``cuda:1``, for devices of one kind (a CPU and a GPU augment or
draw dropout masks with different kernels).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import nn

from twinrun.engine._data import move_to
from twinrun.errors import ConfigError

__all__ = ["PlacedBatches", "Placement", "batch_for", "place", "resolve_placement"]


@dataclass(frozen=True)
class Placement:
    """The device of every candidate; ``primary``: where data is made and augmented (the first device)."""

    primary: torch.device
    of: Mapping[str, torch.device]

    @cached_property
    def devices(self) -> list[torch.device]:
        """The distinct devices in use, the primary first."""
        seen: list[torch.device] = [self.primary]
        for device in self.of.values():
            if device not in seen:
                seen.append(device)
        return seen

    @cached_property
    def spread(self) -> bool:
        """Candidates on more than one device."""
        return len(self.devices) > 1

    @property
    def label(self) -> str:
        """``cpu``, or ``cuda:0,cuda:1`` for a spread run (what the result and the registry record)."""
        return ",".join(str(d) for d in self.devices)

    def device_of(self, name: str) -> torch.device:
        return self.of.get(name, self.primary)


def _architecture(model: nn.Module) -> Hashable:
    return (type(model), tuple((n, tuple(p.shape), p.dtype) for n, p in model.named_parameters()))


def place(
    names: Sequence[str], models: Mapping[str, nn.Module], devices: Sequence[torch.device]
) -> dict[str, torch.device]:
    """The spreading rule of the module: candidate name -> device."""
    if len(names) <= len(devices):
        return {name: devices[i] for i, name in enumerate(names)}
    first_of: dict[Hashable, int] = {}
    for i, name in enumerate(names):
        first_of.setdefault(_architecture(models[name]), i)
    ordered = sorted(names, key=lambda n: (first_of[_architecture(models[n])], names.index(n)))
    share, extra = divmod(len(ordered), len(devices))
    placed: dict[str, torch.device] = {}
    start = 0
    for i, device in enumerate(devices):
        size = share + (1 if i < extra else 0)
        placed.update(dict.fromkeys(ordered[start : start + size], device))
        start += size
    return {name: placed[name] for name in names}


def _device_list(value: Any) -> list[str]:
    """``devices`` as a list of names: ``"auto"`` is every visible CUDA device (none: an empty list)."""
    if value == "auto":
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v) for v in value]


def resolve_placement(
    settings: Any,
    models: Mapping[str, nn.Module],
    check: Callable[[str], torch.device],
    declared: Sequence[str] = (),
) -> Placement:
    """The placement of ``settings.devices`` (or ``settings.device`` for all), each device checked by ``check``
    (the engine's ``resolve_device``: it names a device this machine lacks, and the fix). A mapping may name
    any ``declared`` candidate: those that do not run now are passed over."""
    names = list(models)
    value = settings.devices
    listed = [] if value is None or isinstance(value, Mapping) else _device_list(value)
    if value is None or (value == "auto" and not listed):
        device = check(settings.device)
        return Placement(device, dict.fromkeys(names, device))
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(names) - set(declared))
        if unknown:
            raise ConfigError(
                f"setting devices names {', '.join(map(repr, unknown))}, not a candidate of the experiment",
                fix=f"name its candidates: {', '.join(declared or names)}",
            )
        primary = check(settings.device)
        return Placement(primary, {n: check(value[n]) if n in value else primary for n in names})
    devices = [check(name) for name in listed]
    if settings.device != "cpu" and torch.device(settings.device) not in devices:
        raise ConfigError(
            f"setting device={settings.device!r} is not one of devices={value!r}",
            fix="drop --device (the first of devices is where data is made), or list it in devices",
        )
    return Placement(devices[0], place(names, models, devices))


class PlacedBatches(Mapping[str, tuple[Any, Any]]):
    """A step's batches (by augmentation) on the primary device, copied to another device once, when first asked."""

    def __init__(self, batches: Mapping[str, tuple[Any, Any]], placement: Placement) -> None:
        self.batches = batches
        self.placement = placement
        self._copies: dict[tuple[str, torch.device], tuple[Any, Any]] = {}

    def __getitem__(self, key: str) -> tuple[Any, Any]:
        return self.batches[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    def on(self, key: str, device: torch.device) -> tuple[Any, Any]:
        if device == self.placement.primary:
            return self.batches[key]
        copy = self._copies.get((key, device))
        if copy is None:
            batch = self.batches[key]
            # another name of the primary device (cpu:0 for cpu) holds the very batch: shared as such, not copied
            copy = batch if _actual(device) == _actual(self.placement.primary) else move_to(batch, device)
            self._copies[(key, device)] = copy
        return copy


@functools.cache
def _actual(device: torch.device) -> torch.device:
    """The device a tensor put on ``device`` reports (``cpu:0`` -> ``cpu``, ``cuda`` -> ``cuda:N``)."""
    return torch.empty(0, device=device).device


def batch_for(batches: Mapping[str, tuple[Any, Any]], state: Any) -> tuple[Any, Any]:
    """The batch of candidate ``state`` on its own device (a plain mapping: the batch as it is)."""
    if isinstance(batches, PlacedBatches):
        return batches.on(state.spec.augment_key, batches.placement.device_of(state.name))
    return batches[state.spec.augment_key]
