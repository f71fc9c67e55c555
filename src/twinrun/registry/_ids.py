"""Run ids as users type them: full, abbreviated as in git, ``latest``, ``latest~N``.

Pure functions over ``(id, name, started_at, status)`` rows, so the rules are
testable without a database.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Sequence

from twinrun.registry._errors import UnknownRunError

__all__ = ["describe", "resolve_run_id"]

Row = tuple[str, str, float, str]  # id, name, started_at, status
_LATEST = re.compile(r"^(?:latest|@)(?:~(\d+))?$")
_HEX = re.compile(r"^[0-9a-f]+$")


def describe(row: Row) -> str:
    run_id, name, started, status = row
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(started))
    return f"{run_id[:8]} ({name}, {status}, {when})"


def resolve_run_id(query: str, rows: Sequence[Row]) -> str:
    """The one run ``query`` names, or :class:`UnknownRunError` with the closest matches."""
    text = query.strip().lower()
    newest = sorted(rows, key=lambda r: r[2], reverse=True)
    latest = _LATEST.match(text)
    if latest:
        back = int(latest.group(1) or 0)
        if back < len(newest):
            return newest[back][0]
        raise UnknownRunError(
            f"run {query!r}: the registry holds {len(newest)} run(s)",
            fix="list them with: twinrun runs",
        )
    if text and _HEX.match(text):
        matches = [r for r in newest if r[0].startswith(text)]
        if len(matches) == 1:
            return matches[0][0]
        if len(matches) > 1:
            shown = ", ".join(describe(r) for r in matches[:5])
            more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
            width = _unique_width(matches)
            raise UnknownRunError(
                f"run id prefix {query!r} is ambiguous: {len(matches)} runs match: {shown}{more}",
                fix=f"type more characters ({width} are enough here), e.g. twinrun show {matches[0][0][:width]}",
            )
    raise UnknownRunError(f"no run {query!r} in the registry", fix=_suggest(text, newest))


def _unique_width(matches: Sequence[Row]) -> int:
    ids = [r[0] for r in matches]
    for width in range(4, 33):
        if len({i[:width] for i in ids}) == len(ids):
            return width
    return 32


def _suggest(text: str, newest: Sequence[Row]) -> str:
    if not newest:
        return "the registry is empty: run a comparison first (twinrun demo)"
    hints: list[str] = []
    named = [r for r in newest if r[1].lower() == text]
    if named:
        hints.append(
            f"{text!r} is an experiment name; its newest runs: "
            + ", ".join(describe(r) for r in named[:3])
            + f" (all: twinrun runs --name {named[0][1]})"
        )
    else:
        names = sorted({r[1] for r in newest})
        close_names = difflib.get_close_matches(text, names, n=2, cutoff=0.6)
        for name in close_names:
            hints.append(f"experiment {name!r}: twinrun runs --name {name}")
    by_prefix = {r[0][: max(len(text), 8)]: r for r in newest}
    close_ids = difflib.get_close_matches(text, list(by_prefix), n=3, cutoff=0.6)
    if close_ids:
        hints.append("did you mean " + ", ".join(describe(by_prefix[c]) for c in close_ids) + "?")
    hints.append("list runs with: twinrun runs")
    return "; ".join(hints)
