"""``Registry``: every run remembered in one SQLite file, safe for many writers at once.

How it stays consistent under concurrent writers and crashes is the connection's part
(``_connection``); runs and sweeps are ``_runs`` and ``_sweeps_store``.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from twinrun.registry._connection import STALE_AFTER_S, MetricRow, _dumps, _loads
from twinrun.registry._errors import RegistryError
from twinrun.registry._portable import (
    PortableRun,
    read_run_record,
    read_sweep_row,
    write_run_record,
    write_sweep_row,
)
from twinrun.registry._records import (
    Note,
)
from twinrun.registry._runs import Runs, clean_tags
from twinrun.registry._schema import SCHEMA_VERSION, STATUSES
from twinrun.registry._sweeps_store import Sweeps

__all__ = ["STALE_AFTER_S", "MetricRow", "Registry", "open_registry"]


class Registry(Runs, Sweeps):
    """The run registry. Open it with :meth:`Registry.open` (or :func:`open_registry`).

    Runs (``_runs``) and sweeps (``_sweeps_store``) over one connection (``_connection``); here: notes,
    tags, artifacts, check results and the file's health.
    """

    def add_note(self, run_id: str, text: str) -> Note:
        """Attach a free-text note to a run (notes accumulate, oldest first)."""
        if not text.strip():
            raise RegistryError("a note cannot be empty", fix='twinrun note RUN "what you noticed"')
        note = Note(time.time(), text.strip())

        def write(conn: sqlite3.Connection) -> None:
            self._need_run(conn, run_id)
            conn.execute(
                "INSERT INTO notes (run_id, created_at, text) VALUES (?, ?, ?)", (run_id, note.created_at, note.text)
            )

        self._write(write, "add a note to")
        return note

    def add_tags(self, run_id: str, *tags: str) -> tuple[str, ...]:
        """Tag a run (a tag already there is kept once); returns the run's tags."""
        clean = clean_tags(tags)
        now = time.time()

        def write(conn: sqlite3.Connection) -> tuple[str, ...]:
            self._need_run(conn, run_id)
            conn.executemany(
                "INSERT OR IGNORE INTO tags (run_id, tag, created_at) VALUES (?, ?, ?)",
                [(run_id, t, now) for t in clean],
            )
            return tuple(
                t for (t,) in conn.execute("SELECT tag FROM tags WHERE run_id = ? ORDER BY created_at, tag", (run_id,))
            )

        return self._write(write, "tag a run in")

    def remove_tags(self, run_id: str, *tags: str) -> tuple[str, ...]:
        """Remove tags from a run; returns the run's remaining tags."""

        def write(conn: sqlite3.Connection) -> tuple[str, ...]:
            self._need_run(conn, run_id)
            conn.executemany("DELETE FROM tags WHERE run_id = ? AND tag = ?", [(run_id, t) for t in tags])
            return tuple(
                t for (t,) in conn.execute("SELECT tag FROM tags WHERE run_id = ? ORDER BY created_at, tag", (run_id,))
            )

        return self._write(write, "untag a run in")

    # ------------------------------------------------------------------ for later capabilities
    def add_artifact(self, run_id: str, kind: str, *, path: str | Path | None = None, payload: Any = None) -> int:
        """Attach an artifact (a checkpoint, a ledger, a report...) to a run; returns its id."""

        def write(conn: sqlite3.Connection) -> int:
            self._need_run(conn, run_id)
            cur = conn.execute(
                "INSERT INTO artifacts (run_id, kind, path, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                (run_id, kind, None if path is None else str(path), _dumps(payload), time.time()),
            )
            return int(cur.lastrowid or 0)

        return self._write(write, "add an artifact to")

    def artifacts(self, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, kind, path, payload, created_at FROM artifacts WHERE run_id = ?"
        params: list[Any] = [run_id]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        return [
            {"id": i, "kind": k, "path": p, "payload": _loads(pl), "created_at": c}
            for i, k, p, pl, c in self._read(sql + " ORDER BY id", params)
        ]

    def record_checks(self, run_id: str, checks: Iterable[Mapping[str, Any]]) -> int:
        """Store check outcomes: each a mapping with ``name``, ``status`` and optional
        ``measured``, ``expected``, ``details`` (any JSON). A check recorded again replaces
        the old outcome. Returns the number stored."""
        rows = []
        now = time.time()
        for check in checks:
            if "name" not in check or "status" not in check:
                raise RegistryError(f"a check needs a name and a status, got {dict(check)!r}")
            rows.append(
                (
                    run_id,
                    str(check["name"]),
                    str(check["status"]),
                    _dumps(check.get("measured")),
                    _dumps(check.get("expected")),
                    _dumps(check.get("details")),
                    now,
                )
            )

        def write(conn: sqlite3.Connection) -> int:
            self._need_run(conn, run_id)
            conn.executemany(
                "INSERT OR REPLACE INTO checks (run_id, name, status, measured, "
                "expected, details, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return len(rows)

        return self._write(write, "record checks in")

    def checks(self, run_id: str) -> list[dict[str, Any]]:
        return [
            {
                "name": n,
                "status": s,
                "measured": _loads(m),
                "expected": _loads(e),
                "details": _loads(d),
                "created_at": c,
            }
            for n, s, m, e, d, c in self._read(
                "SELECT name, status, measured, expected, details, created_at FROM checks "
                "WHERE run_id = ? ORDER BY name",
                (run_id,),
            )
        ]

    # ------------------------------------------------------------------ one writer for a cluster
    def export_run(self, run_id: str) -> PortableRun:
        """Every row of run ``run_id``, to be written into another registry with :meth:`import_run`."""
        return self._retry("export a run from", lambda: read_run_record(self._conn, run_id))

    def import_run(self, record: PortableRun) -> None:
        """Write a run exported from another registry (a seed's, on its node), replacing any rows of that id."""
        self._write(lambda conn: write_run_record(conn, record), "import a run into")

    def export_sweep_row(self, sweep_id: str) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """The sweep's row, for a seed's own registry (:meth:`import_sweep_row`) before it records its run."""
        return self._retry("read a sweep from", lambda: read_sweep_row(self._conn, sweep_id))

    def import_sweep_row(self, columns: tuple[str, ...], row: tuple[Any, ...]) -> None:
        self._write(lambda conn: write_sweep_row(conn, columns, row), "add a sweep to")

    # ------------------------------------------------------------------ the file
    def seed_spread(self, experiment: str) -> tuple[str | None, dict[tuple[str, str], tuple[float, int]]]:
        """The newest sweep of ``experiment`` with 2 or more finished seeds, and the standard deviation over
        them of every final metric: ``(sweep short id, {(candidate, metric): (sd, seeds)})``, or ``(None, {})``."""
        for sweep in self.list_sweeps(experiment=experiment):
            values: dict[tuple[str, str], list[float]] = {}
            for rid in sweep.runs:
                run = self.get_run(rid)
                if run.status != "finished" or not run.result:
                    continue
                for cand, data in run.result.get("candidates", {}).items():
                    for metric, v in (data.get("final") or {}).items():
                        if v is not None:
                            values.setdefault((cand, metric), []).append(float(v))
            if any(len(v) >= 2 for v in values.values()):
                return sweep.short_id, {k: (statistics.stdev(v), len(v)) for k, v in values.items() if len(v) >= 2}
        return None, {}

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound file."""
        return "; ".join(r[0] for r in self._read("PRAGMA integrity_check"))

    def info(self) -> dict[str, Any]:
        """Path, schema version, size and run counts by status."""
        counts = dict(self._read("SELECT status, count(*) FROM runs GROUP BY status"))
        size = self.path.stat().st_size if self.path.exists() else 0
        wal = Path(f"{self.path}-wal")
        return {
            "path": str(self.path),
            "schema_version": SCHEMA_VERSION,
            "runs": int(sum(counts.values())),
            "by_status": {s: int(counts.get(s, 0)) for s in STATUSES},
            "metric_rows": self.count_metrics(),
            "bytes": size + (wal.stat().st_size if wal.exists() else 0),
            "readonly": self.readonly,
        }


def open_registry(path: str | Path | None = None, **kwargs: Any) -> Registry:
    """Shorthand for :meth:`Registry.open`."""
    return Registry.open(path, **kwargs)
