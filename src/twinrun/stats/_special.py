"""The special functions of ``scipy.special`` that the statistics use, imported on first use.

``import scipy.special`` costs about a third of ``import torch``; importing it
lazily keeps ``import twinrun`` (and every command that computes no statistic)
as light as torch itself. The wrappers call through to scipy unchanged.
"""

from __future__ import annotations

from typing import Any

__all__ = ["bdtr", "betaincinv", "logsumexp", "nctdtr", "ndtr", "ndtri", "stdtr", "stdtrit"]


def _lazy(name: str) -> Any:
    """``scipy.special.<name>``, imported on the first call."""

    def call(*args: Any, **kw: Any) -> Any:
        import scipy.special

        return getattr(scipy.special, name)(*args, **kw)

    call.__name__ = call.__qualname__ = name
    return call


bdtr = _lazy("bdtr")
betaincinv = _lazy("betaincinv")
logsumexp = _lazy("logsumexp")
nctdtr = _lazy("nctdtr")
ndtr = _lazy("ndtr")
ndtri = _lazy("ndtri")
stdtr = _lazy("stdtr")
stdtrit = _lazy("stdtrit")
