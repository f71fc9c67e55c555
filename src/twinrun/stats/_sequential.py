"""Adding seeds until a paired difference is resolved, with a false-positive rate that holds.

Looking at a t-test after every new seed and stopping at the first "significant"
answer inflates the false-positive rate far above its level (optional stopping).
The rule here stays valid under any stopping: with at most ``n_max`` seeds and
the first look at ``n_min``, there are ``L = n_max - n_min + 1`` planned looks, and
each uses the paired t interval at level ``alpha / L`` (Bonferroni over the looks:
the chance that *any* look excludes a true zero is at most ``alpha``, whatever the
correlation between looks). Stopping for futility never raises it:

* ``resolved``: the interval at level ``alpha / L`` excludes 0;
* ``futile``: even a difference at the far end of the current interval at level
  ``alpha`` would need more than ``n_max`` seeds at level ``alpha / L`` (from the
  spread seen so far), so adding seeds up to ``n_max`` is not expected to resolve it;
* ``exhausted``: ``n_max`` seeds and still not resolved;
* ``continue``: add a seed.

Shape: ``diffs`` is ``[n]``, the per-seed paired differences so far, in seed order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twinrun.errors import ConfigError
from twinrun.stats._intervals import paired_t_interval
from twinrun.stats._power import seeds_needed
from twinrun.stats._types import Interval, SequentialDecision

__all__ = ["sequential_decision"]


def sequential_decision(diffs: Any, *, n_max: int, n_min: int = 3, alpha: float = 0.05) -> SequentialDecision:
    """The decision after the seeds so far (see the module docstring): a :class:`~twinrun.stats.SequentialDecision`.

    >>> sequential_decision([0.5, 0.52, 0.49], n_max=10).decision
    'resolved'
    """
    if not (isinstance(n_max, int) and isinstance(n_min, int)) or n_min < 3 or n_max < n_min:
        raise ConfigError(
            f"n_min={n_min!r}, n_max={n_max!r}: need 3 <= n_min <= n_max",
            fix="e.g. --seeds 3 --until-resolved --max 20",
        )
    d = np.asarray(diffs, dtype=np.float64)
    d = d[np.isfinite(d)]
    n = int(d.size)
    looks = n_max - n_min + 1
    level = alpha / looks

    def decision(what: str, reason: str, interval: Interval | None = None) -> SequentialDecision:
        found = (None, None, None) if interval is None else (interval.estimate, interval.low, interval.high)
        return SequentialDecision(what, n, n_max, n_min, looks, level, alpha, *found, reason=reason)

    if n < n_min:
        return decision("continue", f"{n} of the {n_min} seeds of the first look")
    interval = paired_t_interval(d, 1 - level)
    sd = float(d.std(ddof=1))
    if sd > 0 and interval.excludes(0.0):
        why = f"the {1 - level:.4%} interval ({looks} planned looks at level {alpha:g}/{looks}) excludes 0"
        return decision("resolved", why, interval)
    if n >= n_max:
        return decision("exhausted", f"{n_max} seeds, the most allowed, and the difference is not resolved", interval)
    if sd > 0:
        mean, wide = float(d.mean()), paired_t_interval(d, 1 - alpha).high
        assert wide is not None  # sd > 0 and n >= 2
        far = abs(mean) + wide - mean
        best_case = seeds_needed(far, sd, alpha=level).seeds
        if best_case is None or best_case > n_max:
            why = (
                f"even a difference of {far:.4g} (the far end of its {1 - alpha:.0%} interval) "
                f"would need {best_case or 'more'} seeds at this level, more than the {n_max} "
                "allowed"
            )
            return decision("futile", why, interval)
    return decision("continue", "not resolved yet: add a seed", interval)
