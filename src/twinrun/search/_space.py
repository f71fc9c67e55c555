"""A search space: distributions over override keys, validated against the experiment like ``--set``.

``{"optimizer.lr": loguniform(1e-4, 1e-2), "model.width": choice([64, 128, 256])}``: each key is
any key ``--set`` takes (``wide:optimizer.lr`` for one candidate's); each value a distribution.
Samples are drawn from a NumPy generator the caller seeds, key by key in sorted order, so a
seed gives the same trials on every machine and another seed other trials.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twinrun.errors import ConfigError

__all__ = [
    "Choice",
    "Distribution",
    "IntUniform",
    "LogUniform",
    "Uniform",
    "check_space",
    "choice",
    "integer",
    "loguniform",
    "parse_space",
    "sample",
    "uniform",
]


class Distribution:
    """A distribution of one hyperparameter."""

    def draw(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name}: {value!r} is not a finite number", fix="e.g. loguniform(1e-4, 1e-2)")
    return float(value)


@dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float

    def __post_init__(self) -> None:
        low, high = _number("uniform low", self.low), _number("uniform high", self.high)
        if not low < high:
            raise ConfigError(f"uniform({self.low!r}, {self.high!r}) is an empty range", fix="give low < high")

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def describe(self) -> str:
        return f"uniform({self.low!r}, {self.high!r})"


@dataclass(frozen=True)
class LogUniform(Distribution):
    low: float
    high: float

    def __post_init__(self) -> None:
        low, high = _number("loguniform low", self.low), _number("loguniform high", self.high)
        if low <= 0 or high <= 0:
            raise ConfigError(
                f"loguniform({self.low!r}, {self.high!r}): both bounds must be positive",
                fix="e.g. loguniform(1e-5, 1e-1); for a range through 0 use uniform",
            )
        if not low < high:
            raise ConfigError(f"loguniform({self.low!r}, {self.high!r}) is an empty range", fix="give low < high")

    def draw(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def describe(self) -> str:
        return f"loguniform({self.low!r}, {self.high!r})"


@dataclass(frozen=True)
class IntUniform(Distribution):
    low: int
    high: int  # inclusive

    def __post_init__(self) -> None:
        for v in (self.low, self.high):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(
                    f"integer({self.low!r}, {self.high!r}): bounds must be whole numbers", fix="e.g. integer(1, 4)"
                )
        if self.low > self.high:
            raise ConfigError(f"integer({self.low}, {self.high}) is an empty range", fix="give low <= high")

    def draw(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))

    def describe(self) -> str:
        return f"integer({self.low}, {self.high})"


@dataclass(frozen=True)
class Choice(Distribution):
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ConfigError("choice([]) has nothing to choose from", fix="e.g. choice([64, 128, 256])")

    def draw(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def describe(self) -> str:
        return f"choice({list(self.values)!r})"


def uniform(low: float, high: float) -> Uniform:
    """A float drawn uniformly from ``[low, high]``."""
    return Uniform(low, high)


def loguniform(low: float, high: float) -> LogUniform:
    """A float whose logarithm is uniform on ``[log low, log high]`` (learning rates, weight decay)."""
    return LogUniform(low, high)


def integer(low: int, high: int) -> IntUniform:
    """A whole number from ``low`` to ``high``, both included."""
    return IntUniform(low, high)


def choice(values: Sequence[Any]) -> Choice:
    """One of ``values`` (numbers, strings, booleans), each as likely."""
    return Choice(tuple(values))


def sample(space: Mapping[str, Distribution], rng: np.random.Generator) -> dict[str, Any]:
    """One trial's overrides: a draw of every key, in sorted order (the same for a seed everywhere)."""
    return {key: space[key].draw(rng) for key in sorted(space)}


def check_space(space: Mapping[str, Any], experiment: Any) -> dict[str, Distribution]:
    """The space, with every value a distribution and every key one ``--set`` accepts (before training)."""
    from twinrun.spec import resolve

    if not space:
        raise ConfigError(
            f"experiment {experiment.name!r} has no search space",
            fix='give it search={"optimizer.lr": twinrun.search.loguniform(1e-4, 1e-2)} or pass '
            "--space KEY=DIST on the command line",
        )
    checked: dict[str, Distribution] = {}
    for key, dist in space.items():
        if not isinstance(dist, Distribution):
            raise ConfigError(
                f"search space key {key!r}: {dist!r} is not a distribution",
                fix="use twinrun.search.loguniform, uniform, integer or choice",
            )
        checked[key] = dist
    for key, dist in checked.items():  # each key alone, at a draw of it: an unknown key is named
        resolve(experiment, {key: dist.draw(np.random.default_rng(0))})
    return checked


_NAMES: dict[str, Callable[..., Distribution]] = {
    "uniform": uniform,
    "loguniform": loguniform,
    "integer": integer,
    "choice": choice,
}


def parse_space(items: Sequence[str]) -> dict[str, Distribution]:
    """``["optimizer.lr=loguniform(1e-4, 1e-2)", "model.width=choice([64, 128])"]`` (the CLI's ``--space``)."""
    out: dict[str, Distribution] = {}
    for item in items:
        key, sep, text = item.partition("=")
        try:
            call = ast.parse(text.strip(), mode="eval").body
            if not (
                sep
                and isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id in _NAMES
                and not call.keywords
            ):
                raise ValueError
            args = [ast.literal_eval(a) for a in call.args]
        except (SyntaxError, ValueError):
            raise ConfigError(
                f"--space {item!r} is not KEY=DISTRIBUTION(...)",
                fix="e.g. --space 'optimizer.lr=loguniform(1e-4, 1e-2)' or --space 'model.width=choice([64, 128])'",
            ) from None
        out[key.strip()] = _NAMES[call.func.id](*args)
    return out
