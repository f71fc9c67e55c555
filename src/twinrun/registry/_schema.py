"""The registry's tables, one DDL per schema version, and the migrations between them.

A registry file is recognised as ours by two marks: SQLite's header field
``application_id`` (readable without opening the database) and the ``meta``
table (``application`` and ``schema_version``). ``PRAGMA user_version`` mirrors
the schema version.

Adding a version: write its DDL as ``DDL[n]``, a function ``_migrate_{n-1}_to_{n}``
appended to ``MIGRATIONS``, and bump ``SCHEMA_VERSION``. The tests check that a
file migrated from every older version has exactly the tables and columns of a
fresh one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from twinrun._version import __version__

__all__ = [
    "APPLICATION",
    "APPLICATION_ID",
    "DDL",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STATUSES",
    "create_schema",
    "migrate",
]

#: ``PRAGMA application_id`` of every twinrun registry: the bytes "TWNR".
APPLICATION_ID = int.from_bytes(b"TWNR", "big")
APPLICATION = "twinrun-registry"
SCHEMA_VERSION = 3
STATUSES = ("running", "finished", "failed", "interrupted", "crashed")

_META = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_METRICS = """
CREATE TABLE metrics (
    run_id    TEXT NOT NULL,
    candidate TEXT NOT NULL,
    split     TEXT NOT NULL,      -- 'train' (every step) or 'val' (every evaluation)
    name      TEXT NOT NULL,
    step      INTEGER NOT NULL,
    value     REAL,               -- NULL for NaN
    PRIMARY KEY (run_id, candidate, split, name, step)
) WITHOUT ROWID;
"""

#: Version 1: runs with their tags and a single note as columns of ``runs``.
_V1 = (
    _META
    + """
CREATE TABLE runs (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    status            TEXT NOT NULL,
    started_at        REAL NOT NULL,
    ended_at          REAL,
    pid               INTEGER,
    hostname          TEXT,
    experiment_path   TEXT,
    experiment_sha256 TEXT,
    experiment_source TEXT,
    config            TEXT NOT NULL,
    reference         TEXT,
    seed              INTEGER,
    env               TEXT,
    result            TEXT,
    error             TEXT,
    tags              TEXT NOT NULL DEFAULT '',
    note              TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_started ON runs (started_at);
CREATE TABLE candidates (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name   TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""
    + _METRICS
)

_RUNS_COLUMNS = """
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN (%s)),
    started_at        REAL NOT NULL,
    ended_at          REAL,
    heartbeat_at      REAL,
    pid               INTEGER,
    pid_start         TEXT,
    hostname          TEXT,
    experiment_path   TEXT,
    experiment_sha256 TEXT,
    experiment_source TEXT,
    config            TEXT NOT NULL,
    config_hash       TEXT,
    reference         TEXT,
    seed              INTEGER,
    steps             INTEGER,
    last_step         INTEGER,
    device            TEXT,
    env               TEXT,
    env_fingerprint   TEXT,
    result            TEXT,
    error             TEXT,
    sweep_id          TEXT REFERENCES sweeps (id) ON DELETE SET NULL,
    extra             TEXT
);
"""
_RUNS_V2 = "\nCREATE TABLE runs (" + _RUNS_COLUMNS % "'running', 'finished', 'failed', 'crashed'"
#: Version 3: an interrupted run has a status of its own (it can be resumed).
_RUNS_V3 = "\nCREATE TABLE runs (" + _RUNS_COLUMNS % "'running', 'finished', 'failed', 'interrupted', 'crashed'"
_RUNS_INDEXES = """
CREATE INDEX runs_started ON runs (started_at);
CREATE INDEX runs_name ON runs (name);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_sweep ON runs (sweep_id);
"""

#: Version 2: notes and tags get their own tables; heartbeats for crash detection;
#: sweeps, artifacts and checks for the capabilities built on the registry.
_V2 = (
    _META
    + """
CREATE TABLE sweeps (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    experiment TEXT,
    config     TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""
    + _RUNS_V2
    + _RUNS_INDEXES
    + """
CREATE TABLE candidates (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    config      TEXT NOT NULL,
    status      TEXT NOT NULL,
    diverged_at INTEGER,
    final       TEXT,
    PRIMARY KEY (run_id, name)
);
"""
    + _METRICS
    + """
CREATE TABLE notes (
    id         INTEGER PRIMARY KEY,
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    text       TEXT NOT NULL
);
CREATE INDEX notes_run ON notes (run_id);
CREATE TABLE tags (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    tag        TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, tag)
) WITHOUT ROWID;
CREATE INDEX tags_tag ON tags (tag);
CREATE TABLE artifacts (
    id         INTEGER PRIMARY KEY,
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    path       TEXT,
    payload    TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX artifacts_run ON artifacts (run_id, kind);
CREATE TABLE checks (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,
    measured   TEXT,
    expected   TEXT,
    details    TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""
)

#: Version 3: as version 2, with the status 'interrupted'.
_V3 = _V2.replace(_RUNS_V2, _RUNS_V3)

#: The complete DDL of each schema version (a fresh file gets ``DDL[SCHEMA_VERSION]``).
DDL: dict[int, str] = {1: _V1, 2: _V2, 3: _V3}


def create_schema(conn: sqlite3.Connection, version: int = SCHEMA_VERSION) -> None:
    """Create the tables of ``version`` and its meta rows; the caller holds a transaction."""
    for statement in _statements(DDL[version]):
        conn.execute(statement)
    now = repr(time.time())
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [
            ("application", APPLICATION),
            ("schema_version", str(version)),
            ("created_at", now),
            ("created_by", f"twinrun {__version__}"),
        ],
    )
    conn.execute(f"PRAGMA user_version = {int(version)}")


def _statements(script: str) -> list[str]:
    """Split a DDL script into statements (ours contain no semicolons inside strings)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Tags and the note move to their own tables; runs gain heartbeat, sweep and more."""
    old_runs = conn.execute("SELECT id, tags, note, started_at FROM runs").fetchall()
    conn.execute("ALTER TABLE runs RENAME TO runs_v1")
    conn.execute("ALTER TABLE candidates RENAME TO candidates_v1")
    conn.execute("DROP INDEX IF EXISTS runs_started")
    for statement in _statements(_V2):
        head = statement.split("(", 1)[0]
        if head.startswith(("CREATE TABLE meta", "CREATE TABLE metrics")):
            continue
        conn.execute(statement)
    conn.execute(
        "INSERT INTO runs (id, name, status, started_at, ended_at, heartbeat_at, pid, hostname, "
        "experiment_path, experiment_sha256, experiment_source, config, reference, seed, env, "
        "result, error) "
        "SELECT id, name, CASE WHEN status IN ('running', 'finished', 'failed', 'crashed') "
        "THEN status ELSE 'failed' END, started_at, ended_at, COALESCE(ended_at, started_at), "
        "pid, hostname, experiment_path, experiment_sha256, experiment_source, config, "
        "reference, seed, env, result, error FROM runs_v1"
    )
    conn.execute(
        "INSERT INTO candidates (run_id, name, config, status) SELECT run_id, name, config, status FROM candidates_v1"
    )
    for run_id, tags, note, started_at in old_runs:
        for tag in dict.fromkeys(t.strip() for t in (tags or "").split(",")):
            if tag:
                conn.execute("INSERT INTO tags (run_id, tag, created_at) VALUES (?, ?, ?)", (run_id, tag, started_at))
        if note and note.strip():
            conn.execute(
                "INSERT INTO notes (run_id, created_at, text) VALUES (?, ?, ?)", (run_id, started_at, note.strip())
            )
    conn.execute("DROP TABLE candidates_v1")
    conn.execute("DROP TABLE runs_v1")


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """Runs gain the status 'interrupted' (SQLite cannot alter a CHECK: the table is rebuilt).

    Runs stored as ``failed`` with the error ``interrupted ...`` become ``interrupted``.
    """
    # legacy renaming: the other tables' references to ``runs`` must stay as written
    conn.execute("PRAGMA legacy_alter_table = ON")
    try:
        conn.execute("ALTER TABLE runs RENAME TO runs_v2")
        for statement in _statements(_RUNS_INDEXES):
            conn.execute(f"DROP INDEX IF EXISTS {statement.split()[2]}")
        conn.execute(_RUNS_V3)
        conn.execute("INSERT INTO runs SELECT * FROM runs_v2")
        conn.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'failed' AND error LIKE 'interrupted%'")
        conn.execute("DROP TABLE runs_v2")
        for statement in _statements(_RUNS_INDEXES):
            conn.execute(statement)
    finally:
        conn.execute("PRAGMA legacy_alter_table = OFF")


#: ``MIGRATIONS[n]`` turns a version-``n`` file into version ``n + 1``.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_1_to_2, 2: _migrate_2_to_3}


def migrate(conn: sqlite3.Connection, from_version: int) -> None:
    """Apply every migration from ``from_version`` to :data:`SCHEMA_VERSION`.

    The caller holds one transaction around the whole call (with foreign keys off),
    so a failed migration leaves the file as it was.
    """
    for version in range(from_version, SCHEMA_VERSION):
        MIGRATIONS[version](conn)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version + 1),))
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('migrated_by', ?)", (f"twinrun {__version__}",))
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
