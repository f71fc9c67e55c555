"""Seeds and generators for the bootstrap: honoured always, global RNGs never touched.

Every random function of this subpackage takes ``seed``: an ``int`` (a fresh
``numpy.random.default_rng(seed)``) or a ``numpy.random.Generator`` (drawn from,
so it advances). Functions that resample several things (one stream per
candidate, per comparison) derive one named stream per thing from a single base
seed, so adding a candidate never changes the resamples of another.
"""

from __future__ import annotations

import numpy as np

from twinrun.errors import ConfigError

__all__ = ["Seed", "as_generator", "base_seed", "stream"]

#: What a random function accepts as its seed.
Seed = int | np.random.Generator


def _check(seed: object) -> None:
    if isinstance(seed, np.random.Generator):
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(
            f"seed={seed!r} must be a non-negative integer or a numpy.random.Generator",
            fix="pass seed=0 (or any non-negative int), or seed=numpy.random.default_rng(0)",
        )


def as_generator(seed: Seed) -> np.random.Generator:
    """``seed`` itself when it is a Generator, else ``numpy.random.default_rng(seed)``."""
    _check(seed)
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(int(seed))


def base_seed(seed: Seed) -> int:
    """An ``int`` seed: ``seed`` itself, or one draw from the Generator ``seed``."""
    _check(seed)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63 - 1))
    return int(seed)


def stream(base: int, *keys: str | int) -> np.random.Generator:
    """The generator named ``keys`` under ``base`` (see :func:`twinrun.rng.derive_seed`)."""
    from twinrun.rng import (
        derive_seed,  # the rng package imports torch; statistics need it only here
    )

    return np.random.default_rng(derive_seed(base, *keys))
