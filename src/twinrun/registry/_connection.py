"""The connection under a ``Registry``: opening, one lock per process, retried writes.

Every run is remembered in one SQLite file, safe for many writers at once.

Concurrency and crashes:

* WAL journal: readers never block the writer; each write is one short
  ``BEGIN IMMEDIATE`` transaction, retried with backoff while another process
  holds the write lock (on top of SQLite's own 30 s busy timeout).
* A running run stores its pid, the pid's start time, the host name and a
  heartbeat. Opening the registry marks ``running`` runs ``crashed`` when their
  process is gone from this host, or when a run of another host has sent no
  heartbeat for ``stale_after`` seconds. Metrics flushed before the crash stay.
* A process killed at any instant leaves a consistent file: SQLite's
  transactions are atomic and WAL keeps committed ones across process death.

One ``Registry`` object serves one process; threads may share it (calls are
serialised by a lock). After ``fork`` the child opens its own connection.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

from twinrun.registry._errors import RegistryError, RegistryReadOnlyError, UnknownRunError
from twinrun.registry._files import open_checked, resolve_registry_path, translate
from twinrun.registry._schema import SCHEMA_VERSION

__all__ = ["RETRY_FOR_S", "STALE_AFTER_S", "Connection", "MetricRow"]

T = TypeVar("T")
#: ``(candidate, split, step, name, value)``; split is ``"train"`` or ``"val"``.
MetricRow = tuple[str, str, int, str, "float | None"]
#: A run of another host without a heartbeat for this long is taken as crashed.
STALE_AFTER_S = 1800.0
RETRY_FOR_S = 120.0
#: The key under which a sweep's analysis is kept in its row's JSON (see ``update_sweep``).
_SWEEP_ANALYSIS = "analysis"

_RUN_COLUMNS = (
    "id, name, status, started_at, ended_at, heartbeat_at, pid, hostname, experiment_path, "
    "experiment_sha256, experiment_source, config, config_hash, reference, seed, steps, "
    "last_step, device, env, env_fingerprint, result, error, sweep_id, extra"
)


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=False, default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Connection:
    """A registry's SQLite connection and the machinery every query goes through."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._conn_obj: sqlite3.Connection | None = conn
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._jitter = random.Random()  # a private generator: never the global one
        self._left_in_parent: list[sqlite3.Connection] = []

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        home: str | Path | None = None,
        create: bool = True,
        readonly: bool = False,
        reap: bool = True,
        stale_after: float = STALE_AFTER_S,
    ) -> Self:
        """Open (and on first use create) the registry.

        Args:
            path: the registry file, or a folder holding ``registry.sqlite``; default
                ``<home>/registry.sqlite``.
            home: twinrun's folder (default ``$TWINRUN_HOME`` or ``./.twinrun``).
            create: create the file if it does not exist.
            readonly: open without writing anything (no crash marking either).
            reap: mark runs whose process is gone ``crashed`` (see :meth:`reap_crashed`).
            stale_after: seconds without a heartbeat after which a run of another
                host counts as crashed.

        Raises:
            RegistryError: the path is not a twinrun registry, is read-only, has an
                older schema (the fix names ``twinrun registry upgrade``) or a newer one.
        """
        target = resolve_registry_path(path, home=home)
        conn = open_checked(target, create=create, readonly=readonly)
        registry = cls(conn, target, readonly=readonly)
        if reap and not readonly:
            registry.reap_crashed(stale_after=stale_after)
        return registry

    def reap_crashed(self, *, stale_after: float = STALE_AFTER_S) -> list[str]:
        """Mark ``running`` runs whose process is gone as crashed (the runs' side implements it)."""
        return []

    @property
    def schema_version(self) -> int:
        return SCHEMA_VERSION

    def close(self) -> None:
        with self._lock:
            if self._conn_obj is not None and self._pid == os.getpid():
                self._conn_obj.close()
            self._conn_obj = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({str(self.path)!r}{', readonly' if self.readonly else ''})"

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: never touch the parent's connection
            if self._conn_obj is not None:
                self._left_in_parent.append(self._conn_obj)
            self._conn_obj = open_checked(self.path, create=False, readonly=self.readonly)
            self._pid = os.getpid()
        if self._conn_obj is None:
            raise RegistryError(f"registry {str(self.path)!r} is closed", fix="open it again")
        return self._conn_obj

    # ------------------------------------------------------------------ plumbing
    def _retry(self, action: str, fn: Callable[[], T]) -> T:
        delay = 0.005
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            try:
                with self._lock:
                    return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise translate(exc, self.path, action) from exc
            except sqlite3.Error as exc:
                raise translate(exc, self.path, action) from exc
            time.sleep(delay * (0.5 + self._jitter.random()))
            delay = min(delay * 2, 0.5)

    def _write(self, fn: Callable[[sqlite3.Connection], T], action: str = "write to") -> T:
        """Run ``fn`` in one ``BEGIN IMMEDIATE`` transaction, retried while the file is busy."""
        if self.readonly:
            raise RegistryReadOnlyError(
                f"registry {str(self.path)!r} was opened read-only",
                fix="open it with Registry.open(path) (readonly=False) to change it",
            )

        def attempt() -> T:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                value = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return value

        return self._retry(action, attempt)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._retry("read", lambda: self._conn.execute(sql, params).fetchall())

    def _need_run(self, conn: sqlite3.Connection, run_id: str) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise UnknownRunError(
                f"no run {run_id!r} in registry {str(self.path)!r}",
                fix="pass a full run id (Registry.resolve turns a prefix into one)",
            )

    # ------------------------------------------------------------------ writing runs
