"""The suite, in the order it runs (the order of the recipe).

Each entry is a :class:`~twinrun.checks.Check` defined in the module named for
what it checks; the names are stable (``--only``, ``--skip``, options and stored
reports refer to them).
"""

from __future__ import annotations

from twinrun.checks import (
    _activations,
    _dependencies,
    _devices,
    _dynamics,
    _eval_mode,
    _hash_seed,
    _inputs,
    _leakage,
    _learning,
    _loss_init,
    _lr_range,
    _overfit,
    _params,
    _position,
    _schedule,
    _workers,
)
from twinrun.checks._registry import Check

__all__ = ["CHECKS"]

CHECKS: tuple[Check, ...] = (
    _loss_init.CHECK,  # 1
    _learning.ZERO_INPUT,  # 2
    _overfit.OVERFIT,  # 3
    _learning.LOSS_DECREASES,  # 4
    _dependencies.BATCH_INDEPENDENCE,  # 5
    _dependencies.CAUSALITY,  # 6
    _position.CHECK,  # 7
    _params.CHECK,  # 8
    _schedule.CHECK,  # 9
    _lr_range.CHECK,  # 10
    _inputs.CHECK,  # 11
    _leakage.CHECK,  # 12
    _eval_mode.CHECK,  # 13
    _workers.CHECK,  # 14
    _hash_seed.CHECK,  # 15
    _devices.CHECK,  # 16
    _dynamics.CHECK,  # 17
    _activations.CHECK,  # 18
)
