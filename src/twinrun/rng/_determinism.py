"""Deterministic mode: the torch and cuDNN switches that make kernels repeatable.

A seed fixes which random numbers are drawn; it does not fix the order in
which a GPU kernel adds numbers up, and floating-point addition is not
associative. Deterministic mode asks torch for kernels that always reduce in
the same order (raising an error for an op that has none), turns cuDNN's
autotuner off (it may pick a different algorithm each run) and configures
cuBLAS's workspace, which it reads once, when CUDA initialises.

Even in deterministic mode, results can differ between thread counts, library
versions, devices and drivers; twinrun records those with every run.
"""

from __future__ import annotations

import os
import warnings
from types import TracebackType
from typing import Any, Self

import torch

from twinrun.errors import ReproducibilityWarning

__all__ = [
    "CUBLAS_DETERMINISTIC",
    "CUBLAS_ENV",
    "DeterministicMode",
    "determinism_settings",
    "deterministic_mode",
    "ensure_cublas_workspace_config",
]

CUBLAS_ENV = "CUBLAS_WORKSPACE_CONFIG"
#: A workspace configuration under which cuBLAS is deterministic (":16:8" also works, slower).
CUBLAS_DETERMINISTIC = ":4096:8"
_DETERMINISTIC_CUBLAS = (":4096:8", ":16:8")


def determinism_settings() -> dict[str, Any]:
    """The switches that decide whether kernels are repeatable, as they are now."""
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        CUBLAS_ENV: os.environ.get(CUBLAS_ENV),
    }


def ensure_cublas_workspace_config(*, stacklevel: int = 2) -> bool:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` for deterministic cuBLAS if CUDA is not initialised yet.

    Returns whether cuBLAS will be deterministic. When CUDA is already
    initialised and the variable is missing, it is too late for this process:
    a :class:`~twinrun.errors.ReproducibilityWarning` says how to fix it.
    Side effect: ``os.environ[CUBLAS_WORKSPACE_CONFIG]`` (inherited by child processes).
    """
    if os.environ.get(CUBLAS_ENV) in _DETERMINISTIC_CUBLAS:
        return True
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        warnings.warn(
            f"deterministic mode: CUDA is already initialised, so {CUBLAS_ENV} can no longer "
            "take effect and cuBLAS matrix products may differ between runs. Fix: start the "
            f"process with {CUBLAS_ENV}={CUBLAS_DETERMINISTIC} in its environment (e.g. "
            f"`{CUBLAS_ENV}={CUBLAS_DETERMINISTIC} python train.py`), or use the twinrun command, "
            "which sets it before CUDA starts",
            ReproducibilityWarning,
            stacklevel=stacklevel + 1,
        )
        return False
    os.environ[CUBLAS_ENV] = CUBLAS_DETERMINISTIC
    return True


class DeterministicMode:
    """Switch deterministic kernels on (or off) now; as a context manager, restore on exit.

    Created by :func:`deterministic_mode`. Calling it as a function changes the
    process-wide switches for good (they are global in torch); in a ``with``
    block, every switch and ``CUBLAS_WORKSPACE_CONFIG`` get their previous
    values back when the block ends.
    """

    def __init__(self, enabled: bool = True, *, warn_only: bool = False) -> None:
        self.enabled = enabled
        self.previous = determinism_settings()
        self.cublas_ready = ensure_cublas_workspace_config(stacklevel=3) if enabled else False
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.backends.cudnn.deterministic = enabled
        if enabled:
            torch.backends.cudnn.benchmark = False

    def restore(self) -> None:
        """Put every switch back as it was before this object was created."""
        p = self.previous
        torch.use_deterministic_algorithms(p["deterministic_algorithms"], warn_only=p["deterministic_warn_only"])
        torch.backends.cudnn.deterministic = p["cudnn_deterministic"]
        torch.backends.cudnn.benchmark = p["cudnn_benchmark"]
        if p[CUBLAS_ENV] is None:
            os.environ.pop(CUBLAS_ENV, None)
        else:
            os.environ[CUBLAS_ENV] = p[CUBLAS_ENV]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.restore()


def deterministic_mode(enabled: bool = True, *, warn_only: bool = False) -> DeterministicMode:
    """Deterministic kernels: ``torch.use_deterministic_algorithms``, cuDNN flags, cuBLAS workspace.

    With ``enabled=True``:

    * ``torch.use_deterministic_algorithms(True)``: an op without a
      deterministic implementation raises an error (``warn_only=True``: warns);
    * ``torch.backends.cudnn.deterministic = True`` and ``benchmark = False``;
    * ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` if CUDA is not initialised yet, else a
      warning with the fix.

    With ``enabled=False`` deterministic algorithms and cuDNN determinism are
    switched off (the autotuner setting is left alone).

    Use it as a function (the switches stay) or as a context manager (they are
    restored at the end of the block)::

        with twinrun.deterministic_mode():
            train()
    """
    return DeterministicMode(enabled, warn_only=warn_only)
