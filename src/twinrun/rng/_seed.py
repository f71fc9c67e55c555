"""``seed_everything``: the one function of twinrun that is *asked* to touch global generators.

twinrun's own randomness never comes from global generators (see ``_streams``).
Code that twinrun does not control does: the module level of an experiment
file, a user's sink, a library that calls ``np.random``. Seeding every global
generator from one seed makes that code repeatable too, as far as seeds can.

What seeds cannot fix is the iteration order of sets (and of dicts built from
them) of strings: it follows ``hash(str)``, which Python randomises per process
unless ``PYTHONHASHSEED`` was fixed *before the interpreter started*. Setting it
later has no effect, so twinrun can only warn here; the ``twinrun`` command
runs training in a child process that has it set.
"""

from __future__ import annotations

import os
import random
import warnings

import numpy as np
import torch

from twinrun._hashseed import hash_seed_is_fixed
from twinrun.errors import ConfigError, ReproducibilityWarning

__all__ = [
    "SEED_ENV",
    "hash_seed_is_fixed",
    "numpy_legacy_seed",
    "seed_everything",
    "warn_if_hash_seed_varies",
]

#: The environment variable through which the seed reaches child processes.
SEED_ENV = "TWINRUN_SEED"
_MAX_SEED = 2**63
_MAX_HASHSEED = 4294967295
_warned_hash_seed = False


def numpy_legacy_seed(seed: int) -> int | list[int]:
    """A seed NumPy's legacy global generator accepts (it wants 32-bit words), losing nothing."""
    if seed < 2**32:
        return seed
    return [seed & 0xFFFFFFFF, seed >> 32]


def _seed_from_env() -> int | None:
    raw = os.environ.get(SEED_ENV)
    if raw is None:
        return None
    text = raw.strip()
    try:
        value = int(text, 10)
    except ValueError:
        value = -1
    if not text or not 0 <= value < _MAX_SEED:
        raise ConfigError(
            f"{SEED_ENV}={raw!r} is not a seed (an integer in [0, 2**63))",
            fix=f"set e.g. {SEED_ENV}=0, or unset {SEED_ENV} to draw a fresh seed",
        )
    return value


def seed_everything(seed: int | None = None) -> int:
    """Seed every global generator from ``seed`` and return it.

    Side effects, all deliberate:

    * ``random.seed(seed)`` (Python's global generator);
    * ``np.random.seed(...)`` (NumPy's legacy global generator; seeds of 32 bits
      and more are passed as two 32-bit words, so no two seeds collide);
    * ``torch.manual_seed(seed)`` (the CPU generator) and
      ``torch.cuda.manual_seed_all(seed)`` (every CUDA device; lazy, so this
      does not initialise CUDA);
    * ``os.environ["TWINRUN_SEED"] = str(seed)``, so child processes started
      afterwards (DataLoader workers, ``subprocess``) can call
      ``seed_everything()`` and get the same seed.

    It also warns (:class:`~twinrun.errors.ReproducibilityWarning`, once per
    process) when ``PYTHONHASHSEED`` is not fixed, since no seed fixes the
    iteration order of sets of strings in that case.

    Args:
        seed: an integer in ``[0, 2**63)``. ``None``: the value of
            ``$TWINRUN_SEED`` (an error if it is not a valid seed), else a fresh
            seed from ``os.urandom``, which is returned and announced in a
            warning so that the run can be repeated.

    Returns:
        the seed used.
    """
    if seed is None:
        seed = _seed_from_env()
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little") % 2**32
            warnings.warn(
                f"seed_everything() drew a fresh seed {seed}; pass seed={seed} "
                f"(or set {SEED_ENV}={seed}) to repeat this run",
                ReproducibilityWarning,
                stacklevel=2,
            )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < _MAX_SEED:
        raise ConfigError(
            f"seed {seed!r} is not an integer in [0, 2**63)",
            fix="pass a non-negative integer, e.g. seed_everything(0)",
        )
    seed_globals(seed)
    os.environ[SEED_ENV] = str(seed)
    warn_if_hash_seed_varies(stacklevel=3)
    return seed


def seed_globals(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (every CUDA device, lazily) from ``seed``.

    What :func:`seed_everything` does without its other effects (no environment
    variable, no warning): cheap enough to call at every step, as the framework
    callbacks do to make each step's randomness a function of the seed and the step.
    """
    random.seed(seed)
    np.random.seed(numpy_legacy_seed(seed))
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)  # lazy: queued until CUDA initialises


def warn_if_hash_seed_varies(*, stacklevel: int = 2, once: bool = True) -> bool:
    """Warn when ``PYTHONHASHSEED`` is not fixed; returns whether it is fixed.

    With ``once=True`` (the library's use) the warning is issued once per process.
    """
    global _warned_hash_seed
    if hash_seed_is_fixed():
        return True
    if once and _warned_hash_seed:
        return False
    _warned_hash_seed = True
    warnings.warn(
        "PYTHONHASHSEED is not set, so the iteration order of sets (and of dicts built "
        "from them) of strings differs between processes; code that depends on it cannot "
        "be repeated bit for bit. Fix: start Python with PYTHONHASHSEED=0 (the twinrun "
        "command does this for you)",
        ReproducibilityWarning,
        stacklevel=stacklevel + 1,
    )
    return False
