"""Metrics: per-example functions of (outputs, targets) with a known direction.

twinrun compares candidates example by example on the shared validation set, so
a metric returns one value per example (shape ``[batch]``), never a batch mean.
Its direction (higher or lower is better) is part of the metric, because a
verdict that has to guess it is silent config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a metric runs: reading a spec (twinrun --help) needs none
    import torch

from twinrun.errors import ConfigError

__all__ = ["Metric", "accuracy", "check_metric_output", "mae", "mse"]


@dataclass(frozen=True)
class Metric:
    """A per-example metric.

    Args:
        fn: ``fn(outputs, targets) -> Tensor[batch]``, one value per example.
        higher_is_better: the metric's direction, used by verdicts and statistics.
        name: a display name (defaults to the function's name).
        bounds: ``(low, high)`` the metric cannot leave (``None``: unbounded); intervals
            over seeds are kept inside them (an accuracy interval never passes 1).
    """

    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    higher_is_better: bool
    name: str = ""
    bounds: tuple[float | None, float | None] = (None, None)

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ConfigError(f"Metric fn {self.fn!r} is not callable")
        if not isinstance(self.higher_is_better, bool):
            raise ConfigError(f"Metric higher_is_better must be True or False, got {self.higher_is_better!r}")
        if not self.name:
            object.__setattr__(self, "name", getattr(self.fn, "__name__", "metric"))

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.fn(outputs, targets)


def _accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if outputs.ndim >= 2 and outputs.shape[-1] > 1:
        predicted = outputs.argmax(dim=-1)
    else:  # one logit per example: binary classification, threshold at 0
        predicted = (outputs.reshape(targets.shape) > 0).to(targets.dtype)
    import torch

    correct = (predicted == targets).to(torch.float32)
    return correct.reshape(correct.shape[0], -1).mean(dim=1)


def _squared_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    import torch

    diff = (outputs.reshape(targets.shape) - targets).to(torch.float32)
    return diff.pow(2).reshape(diff.shape[0], -1).mean(dim=1)


def _absolute_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    import torch

    diff = (outputs.reshape(targets.shape) - targets).to(torch.float32)
    return diff.abs().reshape(diff.shape[0], -1).mean(dim=1)


#: Fraction of correct predictions (argmax over the last dim, or logit > 0 for one output).
accuracy = Metric(_accuracy, higher_is_better=True, name="accuracy", bounds=(0.0, 1.0))
#: Mean squared error per example.
mse = Metric(_squared_error, higher_is_better=False, name="mse", bounds=(0.0, None))
#: Mean absolute error per example.
mae = Metric(_absolute_error, higher_is_better=False, name="mae", bounds=(0.0, None))


def check_metric_output(name: str, value: torch.Tensor, batch: int) -> torch.Tensor:
    """Validate that a metric returned one finite-typed value per example."""
    import torch

    if not isinstance(value, torch.Tensor) or value.ndim != 1 or value.shape[0] != batch:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ConfigError(
            f"metric {name!r} returned {shape}; twinrun needs one value per example, shape ({batch},)",
            fix="return a per-example tensor (no .mean()); twinrun averages it itself",
        )
    return value
