"""The suite, in the order it runs (the order of the recipe).

Each entry is a :class:`~twinrun.checks.Check` defined in the module named for
what it checks; the names are stable (``--only``, ``--skip``, options and stored
reports refer to them).
"""

from __future__ import annotations

from twinrun.checks import (
    _dependencies,
    _devices,
    _dynamics,
    _eval_mode,
    _inputs,
    _leakage,
    _learning,
    _loss_init,
    _params,
    _schedule,
    _workers,
)
from twinrun.checks._registry import Check

__all__ = ["CHECKS"]

CHECKS: tuple[Check, ...] = (
    _loss_init.CHECK,  # 1
    _learning.ZERO_INPUT,  # 2
    _learning.OVERFIT,  # 3
    _learning.LOSS_DECREASES,  # 4
    _dependencies.BATCH_INDEPENDENCE,  # 5
    _dependencies.CAUSALITY,  # 6
    _params.CHECK,  # 7
    _schedule.CHECK,  # 8
    _inputs.CHECK,  # 9
    _leakage.CHECK,  # 10
    _eval_mode.CHECK,  # 11
    _workers.CHECK,  # 12
    _devices.CHECK,  # 13
    _dynamics.CHECK,  # 14
)
