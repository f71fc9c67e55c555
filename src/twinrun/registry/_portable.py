"""A run's rows as a portable record: how a seed on another machine reports back to the one registry.

On a cluster the registry has one writer, the process that drives the sweep:
a seed runs with a registry file of its own on its node, then its run (the
``runs`` row and every row of every table that names the run) travels back as
a :class:`PortableRun`, and the driver writes it with :meth:`Registry.import_run`.
No SQLite file is ever shared over a network file system.

A record is plain data (picklable, JSON-ready), tied to the schema version it
was read under. Importing replaces whatever the registry held for that run id,
so a seed reported twice (a retried Ray task) is one run. Surrogate keys (the
``INTEGER PRIMARY KEY`` of notes and artifacts) are left out and given anew.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from twinrun.registry._errors import RegistryError, UnknownRunError
from twinrun.registry._schema import SCHEMA_VERSION

__all__ = ["PortableRun", "read_run_record", "read_sweep_row", "write_run_record", "write_sweep_row"]


@dataclass(frozen=True)
class PortableRun:
    """One run's rows: ``tables[name] = (columns, rows)``, the ``runs`` table first."""

    run_id: str
    schema_version: int
    tables: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = field(repr=False)

    @property
    def rows(self) -> int:
        return sum(len(rows) for _, rows in self.tables.values())


def _run_tables(conn: sqlite3.Connection) -> dict[str, tuple[str, list[str], list[str]]]:
    """Every table holding a run's rows: ``name -> (the column naming the run, the columns to copy,
    the primary key's columns, to read the rows in their order)``."""
    tables: dict[str, tuple[str, list[str], list[str]]] = {}
    names = [
        n
        for (n,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    for name in names:
        info = list(conn.execute(f'PRAGMA table_info("{name}")'))
        columns = [c[1] for c in info]
        key = "id" if name == "runs" else "run_id" if "run_id" in columns else None
        if key is None:
            continue
        surrogate = {c[1] for c in info if c[5] == 1 and str(c[2]).upper() == "INTEGER"}
        primary = [c[1] for c in sorted(info, key=lambda c: c[5]) if c[5] > 0]
        tables[name] = (key, [c for c in columns if c not in surrogate], primary)
    return {"runs": tables.pop("runs"), **tables}


def read_run_record(conn: sqlite3.Connection, run_id: str) -> PortableRun:
    """The rows of run ``run_id`` (an :class:`UnknownRunError` when there is none)."""
    tables: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {}
    for name, (key, columns, primary) in _run_tables(conn).items():
        listed = ", ".join(f'"{c}"' for c in columns)
        order = " ORDER BY " + ", ".join(f'"{c}"' for c in primary) if primary else ""
        rows = list(conn.execute(f'SELECT {listed} FROM "{name}" WHERE "{key}" = ?{order}', (run_id,)))
        tables[name] = (tuple(columns), rows)
    if not tables["runs"][1]:
        raise UnknownRunError(f"no run {run_id!r} to export", fix="twinrun runs   (lists the runs there)")
    return PortableRun(run_id, SCHEMA_VERSION, tables)


def write_run_record(conn: sqlite3.Connection, record: PortableRun) -> None:
    """Write ``record`` inside the caller's transaction, replacing the registry's rows of that run."""
    if record.schema_version != SCHEMA_VERSION:
        raise RegistryError(
            f"run {record.run_id} was recorded under registry schema {record.schema_version}, "
            f"this registry has schema {SCHEMA_VERSION}",
            fix="install the same twinrun version on every node of the cluster",
        )
    here = _run_tables(conn)
    unknown = sorted(set(record.tables) - set(here))
    if unknown:
        raise RegistryError(
            f"run {record.run_id} has rows in tables this registry lacks: {', '.join(unknown)}",
            fix="install the same twinrun version on every node of the cluster",
        )
    for name, (key, _, _) in reversed(list(here.items())):  # the run's own row last: the others name it
        conn.execute(f'DELETE FROM "{name}" WHERE "{key}" = ?', (record.run_id,))
    for name, (columns, rows) in record.tables.items():
        key = here[name][0]
        if any(row[columns.index(key)] != record.run_id for row in rows):
            raise RegistryError(f"the record of run {record.run_id} holds rows of another run in {name}")
        listed = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        conn.executemany(f'INSERT INTO "{name}" ({listed}) VALUES ({marks})', rows)


def read_sweep_row(conn: sqlite3.Connection, sweep_id: str) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """The ``sweeps`` row a seed's own registry needs before its run can name the sweep."""
    cursor = conn.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,))
    row = cursor.fetchone()
    if row is None:
        raise UnknownRunError(f"no sweep {sweep_id!r} in this registry", fix="twinrun sweeps   (lists them)")
    return tuple(d[0] for d in cursor.description), tuple(row)


def write_sweep_row(conn: sqlite3.Connection, columns: tuple[str, ...], row: tuple[Any, ...]) -> None:
    """Add a sweep's row (from :func:`read_sweep_row`) unless the registry has it."""
    listed = ", ".join(f'"{c}"' for c in columns)
    conn.execute(f"INSERT OR IGNORE INTO sweeps ({listed}) VALUES ({', '.join('?' for _ in columns)})", row)
