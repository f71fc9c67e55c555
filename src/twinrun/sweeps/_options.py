"""What ``run_sweep`` and ``analyze_sweep`` accept, grouped and checked before anything runs.

* :class:`Execution`: where the seeds run (``backend``, ``jobs``, ``threads``, ``address``).
* :class:`Analysis`: how their scores are read (``metric``, ``deploy``, ``confidence``, ``n_resamples``).

Both are frozen and check themselves when made, so a bad value fails with its fix
before the first seed starts. The flat keywords they replace (``run_sweep(jobs=2)``)
still work, with a ``DeprecationWarning`` naming the object to use.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from twinrun.errors import ConfigError
from twinrun.stats import DEPLOY

__all__ = ["BACKENDS", "Analysis", "Execution", "split_legacy"]

BACKENDS = ("local", "inprocess", "ray")


@dataclass(frozen=True)
class Execution:
    """Where and how the seeds of a sweep run.

    Attributes:
        backend: ``"local"`` (a fresh process per seed on this machine), ``"inprocess"``
            (seeds one after another in this process, no start-up per seed) or ``"ray"``
            (a Ray cluster; needs ``pip install "twinrun[ray]"``).
        jobs: seeds at once (local default: the number of cores).
        threads: threads per seed (default: cores // jobs).
        address: the Ray cluster (``backend="ray"`` only; default: a local Ray instance).

    >>> Execution("inprocess", threads=1)
    Execution(backend='inprocess', jobs=None, threads=1, address=None)
    """

    backend: str = "local"
    jobs: int | None = None
    threads: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"backend {self.backend!r} is not one of {', '.join(BACKENDS)}",
                fix="pass --backend local (this machine) or --backend ray (a Ray cluster)",
            )
        if self.address is not None and self.backend != "ray":
            raise ConfigError(
                f"--address {self.address} names a Ray cluster, but the backend is {self.backend!r}",
                fix=f"add --backend ray to run on the cluster at {self.address}",
            )

    @classmethod
    def of(cls, value: Execution | str | None) -> Execution:
        """``None``: the defaults; a backend's name: that backend; an ``Execution``: itself."""
        if value is None:
            return cls()
        if isinstance(value, str):
            return cls(value)
        if not isinstance(value, Execution):
            raise ConfigError(
                f"execution={value!r} is neither an Execution nor a backend's name",
                fix='pass execution="inprocess" or execution=twinrun.sweeps.Execution(jobs=2)',
            )
        return value


@dataclass(frozen=True)
class Analysis:
    """How the seeds' scores are analysed.

    Attributes:
        metric: the metric the recommendation leads with (default: the experiment's first).
        deploy: ``"both"``, ``"ensemble"`` or ``"single"``: what the recommendation is for.
        confidence: of every interval, and ``1 -`` the level of every test.
        n_resamples: bootstrap resamples per interval.
    """

    metric: str | None = None
    deploy: str = "both"
    confidence: float = 0.95
    n_resamples: int = 10_000

    def __post_init__(self) -> None:
        if self.deploy not in DEPLOY:
            raise ConfigError(
                f"deploy={self.deploy!r} is not one of {', '.join(DEPLOY)}",
                fix="pass --deploy ensemble, --deploy single, or leave it out for both",
            )
        c = self.confidence
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 < c < 1:
            raise ConfigError(f"confidence={c!r} must be between 0 and 1", fix="pass 0.95")
        n = self.n_resamples
        if isinstance(n, bool) or not isinstance(n, int) or n < 100:
            raise ConfigError(f"n_resamples={n!r} must be an integer of at least 100", fix="pass 10000")


Options = TypeVar("Options", Execution, Analysis)


def with_legacy(options: Options, legacy: Mapping[str, Any], *, function: str, argument: str) -> Options:
    """``options`` with the flat keywords of ``legacy`` that belong to it folded in, each with a warning.

    A keyword given both ways is refused: there would be two answers to one question.
    """
    names = {f.name for f in fields(options)}
    mine = {k: v for k, v in legacy.items() if k in names}
    if not mine:
        return options
    kind = type(options).__name__
    default = type(options)()
    clash = [k for k in mine if getattr(options, k) != getattr(default, k)]
    if clash:
        raise ConfigError(
            f"{function}() got {', '.join(clash)} both as keywords and in {argument}={options!r}",
            fix=f"give them once, in {argument}=twinrun.sweeps.{kind}(...)",
        )
    spelled = ", ".join(f"{k}={v!r}" for k, v in mine.items())
    warnings.warn(
        f"{function}({spelled}) is deprecated: pass {argument}=twinrun.sweeps.{kind}({spelled})",
        DeprecationWarning,
        stacklevel=4,  # with_legacy, split_legacy, run_sweep: the warning names the caller's line
    )
    return replace(options, **mine)


def split_legacy(
    execution: Execution | str | None, analysis: Analysis | None, legacy: Mapping[str, Any], *, function: str
) -> tuple[Execution, Analysis]:
    """The two option objects, with any flat keyword of the old signature folded in (and warned about)."""
    known = {f.name for f in fields(Execution)} | {f.name for f in fields(Analysis)}
    unknown = sorted(set(legacy) - known)
    if unknown:
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}")
    run = with_legacy(Execution.of(execution), legacy, function=function, argument="execution")
    read = with_legacy(analysis if analysis is not None else Analysis(), legacy, function=function, argument="analysis")
    return run, read
