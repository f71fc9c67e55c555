"""Progress of a sweep on stderr: a bar counting finished seeds, failures as they happen."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from twinrun.sweeps._task import SeedOutcome

__all__ = ["SweepProgress"]


class SweepProgress:
    """A ``tqdm`` bar (only on a terminal unless ``enabled``) plus one line per failed seed.

    Args:
        enabled: ``None``: the bar only on a terminal, lines always; ``False``: silent.
    """

    def __init__(self, total: int, *, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.silent = enabled is False
        self.ok = 0
        self.failed = 0
        self._bar: Any = None
        if not self.silent and total:
            from tqdm.auto import tqdm

            show = self.stream.isatty() if enabled is None else enabled
            self._bar = tqdm(
                total=total,
                desc="seeds",
                unit="seed",
                file=self.stream,
                disable=not show,
                dynamic_ncols=True,
                leave=True,
            )

    def line(self, text: str) -> None:
        if self.silent:
            return
        if self._bar is not None and not self._bar.disable:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def seed_done(self, outcome: SeedOutcome) -> None:
        if outcome.ok:
            self.ok += 1
        else:
            self.failed += 1
            error = (outcome.error or "no error message").strip()
            first = error.splitlines()[0] if error else ""
            where = f" (log: {outcome.log})" if outcome.log else ""
            self.line(f"seed {outcome.seed} {outcome.status}: {first}{where}")
        if self._bar is not None:
            self._bar.set_postfix_str(f"ok={self.ok} failed={self.failed}", refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
