"""How many seeds a paired comparison needs: the power of the paired t-test.

From the observed mean paired difference ``d`` and the standard deviation ``s``
of the per-seed paired differences, the effect size is ``e = |d| / s``. With
``n`` seeds the two-sided paired t-test at level ``alpha`` rejects with
probability (its power)

    P(|T| > t_{n-1, 1-alpha/2}),  T ~ noncentral t(df = n - 1, nc = e * sqrt(n)).

:func:`seeds_needed` returns the smallest ``n >= 2`` whose power reaches the target
(0.8 by default), starting from the normal approximation
``((z_{1-alpha/2} + z_power) / e)^2`` and stepping with the exact t power. It is
an estimate: ``d`` and ``s`` are themselves measured on few seeds, and power
computed from a pilot's own estimate is optimistic (from 2-3 pilot seeds the real
power of the suggested ``n`` was measured at 0.41-0.63, not 0.80). So, given the
seeds the pilot ran (``n_run``), it also returns a *range*: the seeds needed if the
true difference sits at either end of the pilot's t interval of the mean
difference; an interval that holds 0 means "no evidence of a difference yet" and
the range has no upper end. The answer is never at or below the seeds already
run (those did not resolve it).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import cast

from twinrun.errors import ConfigError
from twinrun.stats._special import nctdtr, ndtri, stdtrit
from twinrun.stats._types import SeedsNeeded

__all__ = ["paired_t_power", "seeds_needed"]


def paired_t_power(effect_size: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test with ``n`` seeds at standardised effect ``|d| / s``.

    >>> round(paired_t_power(0.5, 34), 3)
    0.808
    """
    if n < 2:
        return math.nan
    df = n - 1
    critical = float(stdtrit(df, 1 - alpha / 2))
    nc = abs(effect_size) * math.sqrt(n)
    upper = float(1.0 - nctdtr(df, nc, critical))
    lower = float(nctdtr(df, nc, -critical))  # rejections in the wrong direction: tiny
    if not math.isfinite(lower):  # scipy's nct underflows to NaN far in the tail
        lower = 0.0
    return upper + lower


def seeds_needed(
    diff: float,
    sd: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    max_seeds: int = 10_000,
    n_run: int | None = None,
) -> SeedsNeeded:
    """Seeds a paired t-test needs to resolve a difference ``diff`` when paired differences vary by ``sd``.

    Args:
        diff: the mean paired difference across seeds (either sign).
        sd: the standard deviation (``ddof=1``) of the per-seed paired differences.
        alpha: the test's two-sided level.
        power: the probability of resolving the difference if it is real.
        max_seeds: beyond this the answer is "not resolvable in practice".
        n_run: the seeds ``diff`` and ``sd`` were measured on; adds ``range``,
            ``evidence`` and ``assumes``, and keeps ``seeds`` above ``n_run``.

    Returns:
        a :class:`~twinrun.stats.SeedsNeeded`: ``seeds`` (``int``, or ``None`` when no number
        of seeds is predicted to resolve it), ``effect_size`` (``|diff| / sd``), ``power``
        (reached at ``seeds``), ``alpha``, ``target_power`` and ``reason`` (why ``seeds`` is
        ``None``, or a remark); with ``n_run``, also ``range``, ``evidence`` and ``assumes``.

    >>> seeds_needed(0.5, 1.0).seeds
    34
    """
    for name, value in (("alpha", alpha), ("power", power)):
        if not 0 < value < 1:
            raise ConfigError(
                f"{name}={value!r} must be strictly between 0 and 1",
                fix=f"pass e.g. {name}={0.05 if name == 'alpha' else 0.8}",
            )

    diff, sd = float(diff), float(sd)  # plain floats in the result, whatever came in

    def result(seeds: int | None = None, effect: float | None = None, reason: str | None = None) -> SeedsNeeded:
        reached = paired_t_power(effect, seeds, alpha) if seeds is not None and effect else None
        found = SeedsNeeded(seeds, effect, reached, alpha, power, reason)
        return _pilot_range(found, diff, sd, n_run, max_seeds) if n_run is not None and n_run >= 2 else found

    if not (math.isfinite(diff) and math.isfinite(sd)) or sd < 0:
        why = f"needs a finite difference and spread; got difference {diff}, sd {sd}"
        return SeedsNeeded(None, None, None, alpha, power, why)
    if sd == 0:
        if diff == 0:
            why = "the two scored exactly the same on every seed; no number of seeds separates them"
            return SeedsNeeded(None, None, None, alpha, power, why)
        return SeedsNeeded(2, None, None, alpha, power, "the paired difference is the same on every seed")
    if diff == 0:
        why = "the observed mean difference is 0; no number of seeds is predicted to resolve it"
        return SeedsNeeded(None, 0.0, None, alpha, power, why)
    effect = abs(diff) / sd
    z = ndtri(1 - alpha / 2) + ndtri(power)
    n = max(2, math.ceil((z / effect) ** 2))
    if n > max_seeds:
        return result(None, effect, f"more than {max_seeds} seeds (effect size {effect:.3g})")
    while paired_t_power(effect, n, alpha) < power:
        n += 1
    while n > 2 and paired_t_power(effect, n - 1, alpha) >= power:
        n -= 1
    return result(n, effect)


def _n_for(effect: float, alpha: float, power: float, max_seeds: int) -> int | None:
    if effect <= 0:
        return None
    z = ndtri(1 - alpha / 2) + ndtri(power)
    n = max(2, math.ceil((z / effect) ** 2))
    if n > max_seeds:
        return None
    while paired_t_power(effect, n, alpha) < power:
        n += 1
    return cast("int | None", n)


def _pilot_range(found: SeedsNeeded, diff: float, sd: float, n_run: int, max_seeds: int) -> SeedsNeeded:
    """``found`` with the seeds needed at both ends of the pilot's interval of the mean difference."""
    alpha, power = found.alpha, found.target_power
    half = float(stdtrit(n_run - 1, 1 - alpha / 2)) * sd / math.sqrt(n_run)
    near, far = abs(diff) - half, abs(diff) + half
    low = _n_for(far / sd, alpha, power, max_seeds)
    high = _n_for(near / sd, alpha, power, max_seeds) if near > 0 else None
    low = None if low is None else max(low, n_run + 1)
    high = None if high is None else max(high, n_run + 1)
    reason = found.reason
    if near <= 0:
        reason = (
            f"no evidence of a difference yet: the {n_run} seeds' interval of the mean "
            f"difference, {diff:+.4g} ± {half:.4g}, holds 0"
        )
    return replace(
        found,
        seeds=None if found.seeds is None else max(found.seeds, n_run + 1),
        reason=reason,
        range=(low, high),
        evidence=bool(near > 0),
        assumes=(
            "roughly normal per-seed differences whose true mean lies in the pilot's "
            f"{1 - alpha:.0%} interval and whose spread is the pilot's sd; a pilot's own estimate "
            "of power is optimistic, so trust the range over the point"
        ),
    )
