"""The special functions of ``scipy.special`` that the statistics use, imported on first use.

``import scipy.special`` costs about a third of ``import torch``; importing it
lazily keeps ``import twinrun`` (and every command that computes no statistic)
as light as torch itself. The wrappers call through to scipy unchanged.
"""

from __future__ import annotations

from typing import Any

__all__ = ["bdtr", "betaincinv", "logsumexp", "nctdtr", "ndtr", "ndtri", "stdtr", "stdtrit"]


def _special() -> Any:
    import scipy.special

    return scipy.special


def bdtr(*args: Any, **kw: Any) -> Any:
    return _special().bdtr(*args, **kw)


def betaincinv(*args: Any, **kw: Any) -> Any:
    return _special().betaincinv(*args, **kw)


def logsumexp(*args: Any, **kw: Any) -> Any:
    return _special().logsumexp(*args, **kw)


def nctdtr(*args: Any, **kw: Any) -> Any:
    return _special().nctdtr(*args, **kw)


def ndtr(*args: Any, **kw: Any) -> Any:
    return _special().ndtr(*args, **kw)


def ndtri(*args: Any, **kw: Any) -> Any:
    return _special().ndtri(*args, **kw)


def stdtr(*args: Any, **kw: Any) -> Any:
    return _special().stdtr(*args, **kw)


def stdtrit(*args: Any, **kw: Any) -> Any:
    return _special().stdtrit(*args, **kw)
