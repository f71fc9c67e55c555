"""Run a selection of checks on one context: timing, progress, isolation, crashes.

Every check runs with the global random generators seeded from the run's seed
and restored afterwards, so a suite neither depends on nor changes the caller's
random state. A check that raises becomes a ``fail`` result carrying the error,
so one broken check does not hide the others' results.
"""

from __future__ import annotations

import sys
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from tqdm.auto import tqdm

from twinrun.checks._context import CheckContext
from twinrun.checks._registry import Check
from twinrun.checks._result import CheckReport, CheckResult
from twinrun.errors import TwinrunError
from twinrun.rng import isolated_global_rng

__all__ = ["run_suite"]

# Stepping copied schedulers trips PyTorch's "called in the wrong order" heuristics; the order is right.
_SCHEDULER_WARNINGS = (
    r"Seems like `optimizer.step\(\)` has been overridden",
    r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`",
)


def run_suite(
    ctx: CheckContext,
    checks: Sequence[Check],
    options: Mapping[str, Mapping[str, Any]],
    *,
    progress: bool | None = None,
    setup_seconds: float = 0.0,
) -> CheckReport:
    """Run ``checks`` in order on ``ctx``; ``progress=None`` shows a bar only on a terminal."""
    show = sys.stderr.isatty() if progress is None else progress
    started = time.perf_counter()
    results: list[CheckResult] = []
    bar = tqdm(checks, desc="twinrun check", unit="check", file=sys.stderr, disable=not show, leave=False)
    with isolated_global_rng(ctx.streams.seed_for("checks")), warnings.catch_warnings():
        for pattern in _SCHEDULER_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        for check in checks:  # work that runs alongside the others (child processes)
            if check.start is not None:
                check.start(ctx, options[check.name])
        for check in bar:
            bar.set_postfix_str(check.name)
            shared_before = ctx.shared_seconds
            t0 = time.perf_counter()
            try:
                result = check.fn(ctx, options[check.name])
            except TwinrunError:
                raise
            except Exception as exc:  # noqa: BLE001  (reported as the check's result, with the traceback)
                result = _crashed(check, exc)
            elapsed = time.perf_counter() - t0
            shared = ctx.shared_seconds - shared_before
            details = result.details
            if shared > 0 and "shared_seconds" not in details:
                details = {**details, "shared_seconds": round(shared, 4)}
            results.append(replace(result, seconds=max(0.0, elapsed - shared), details=details))
    bar.close()
    total = time.perf_counter() - started
    timing = {
        "setup": setup_seconds,
        "checks": total - ctx.shared_seconds,
        "shared_training": ctx.shared_seconds,
        "total": setup_seconds + total,
    }
    return CheckReport(
        results=results,
        subject=ctx.describe(),
        timing=timing,
        outdir=str(ctx.outdir) if ctx.outdir is not None else None,
    )


def _crashed(check: Check, exc: Exception) -> CheckResult:
    return CheckResult(
        check.name,
        "fail",
        f"error: {type(exc).__name__}: {exc}",
        "the check runs",
        f"The check raised {type(exc).__name__} while running the model/data/optimizer: {exc}. The setup "
        "breaks on something a training run may also meet (a batch of a different size, eval mode, "
        "a second call).",
        "see the traceback in the details (--json) and run the failing call yourself",
        details={"traceback": traceback.format_exception(exc)},
    )
