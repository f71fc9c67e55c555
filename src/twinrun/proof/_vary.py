"""The one factor ``twinrun repro`` varies on purpose between its two runs.

==========================  ==========================================================
``threads=1,2``             intra-op thread count (``torch.set_num_threads`` and
                            ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``); default 1 vs all
``hashseed=0,1``            ``PYTHONHASHSEED``: the iteration order of sets of strings
``deterministic``           deterministic mode off (run A) vs on (run B)
``seed=0,1``                the run seed (a different sample: expect a divergence at init)
==========================  ==========================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from twinrun.errors import ConfigError

__all__ = ["FACTORS", "Side", "Variation", "inherited_hashseed", "parse_vary"]

FACTORS = ("threads", "hashseed", "deterministic", "seed", "device")
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Side:
    """How one of the two runs is started."""

    label: str
    env: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None


@dataclass(frozen=True)
class Variation:
    """The factor varied (``None``: nothing, both runs alike) and the two sides."""

    factor: str | None
    a: Side
    b: Side

    def describe(self) -> str:
        if self.factor is None:
            return "nothing varied (two identical runs)"
        return f"{self.factor}: {self.a.label} vs {self.b.label}"


def _two(factor: str, raw: str | None, default: tuple[str, str]) -> tuple[str, str]:
    if raw is None:
        return default
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(
            f"--vary {factor}={raw} needs exactly two values",
            fix=f"write e.g. --vary {factor}={default[0]},{default[1]}",
        )
    return parts[0], parts[1]


def _ints(factor: str, values: tuple[str, str], low: int, high: int) -> tuple[int, int]:
    try:
        a, b = int(values[0]), int(values[1])
    except ValueError:
        a = b = low - 1
    if not (low <= a <= high and low <= b <= high):
        raise ConfigError(
            f"--vary {factor}={values[0]},{values[1]}: both values must be integers in [{low}, {high}]",
            fix=f"write e.g. --vary {factor}={low},{low + 1}",
        )
    if a == b:
        raise ConfigError(f"--vary {factor}={a},{b} varies nothing", fix="give two different values")
    return a, b


def parse_vary(spec: str | None, *, hashseed: str, seed: int, cpu_threads: int) -> Variation:
    """Parse ``--vary FACTOR[=A,B]``.

    Args:
        spec: e.g. ``"threads=1,2"``, ``"hashseed"``, ``"deterministic"``; ``None``: vary nothing.
        hashseed: the ``PYTHONHASHSEED`` both runs get unless it is varied.
        seed: the experiment's seed (the default of ``seed`` is it and the next one).
        cpu_threads: this machine's default thread count (the default of ``threads`` is 1 vs it).
    """
    base_env = {"PYTHONHASHSEED": hashseed}
    if spec is None:
        return Variation(None, Side("run A", base_env), Side("run B", base_env))
    factor, eq, raw = spec.partition("=")
    factor = factor.strip()
    raw_values = raw if eq else None
    if factor not in FACTORS:
        raise ConfigError(
            f"--vary {spec!r}: unknown factor {factor!r}",
            fix=f"vary one of: {', '.join(FACTORS)} (e.g. --vary threads=1,2)",
        )
    if factor == "threads":
        a, b = _ints(factor, _two(factor, raw_values, ("1", str(max(2, cpu_threads)))), 1, 4096)
        return Variation(
            factor,
            *(Side(f"threads={n}", {**base_env, **{v: str(n) for v in _THREAD_VARS}}, threads=n) for n in (a, b)),
        )
    if factor == "hashseed":
        a, b = _ints(factor, _two(factor, raw_values, ("0", "1")), 0, 4294967295)
        return Variation(
            factor,
            Side(f"PYTHONHASHSEED={a}", {"PYTHONHASHSEED": str(a)}),
            Side(f"PYTHONHASHSEED={b}", {"PYTHONHASHSEED": str(b)}),
        )
    if factor == "deterministic":
        if raw_values is not None:
            raise ConfigError(
                f"--vary deterministic={raw_values}: deterministic mode is varied off vs on",
                fix="write --vary deterministic",
            )
        return Variation(
            factor,
            Side("deterministic off", base_env, {"deterministic": False}),
            Side("deterministic on", base_env, {"deterministic": True}),
        )
    if factor == "device":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        a_dev, b_dev = _two(factor, raw_values, ("cuda:0", "cuda:1"))
        if count < 2 and raw_values is None:
            raise ConfigError(
                f"--vary device needs two devices; this machine has {count} CUDA device{'s' if count != 1 else ''}",
                fix="run it where two GPUs are visible, or name two devices: --vary device=cpu,cuda:0",
            )
        return Variation(
            factor,
            Side(f"device={a_dev}", base_env, {"device": a_dev}),
            Side(f"device={b_dev}", base_env, {"device": b_dev}),
        )
    a, b = _ints(factor, _two(factor, raw_values, (str(seed), str(seed + 1))), 0, 2**63 - 1)
    return Variation(factor, Side(f"seed={a}", base_env, {"seed": a}), Side(f"seed={b}", base_env, {"seed": b}))


def inherited_hashseed() -> str:
    """The ``PYTHONHASHSEED`` both runs get when it is not varied: this process's, if fixed, else 0."""
    from twinrun.rng import hash_seed_is_fixed

    return os.environ["PYTHONHASHSEED"] if hash_seed_is_fixed() else "0"
