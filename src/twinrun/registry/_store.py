"""``Registry``: every run remembered in one SQLite file, safe for many writers at once.

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
import math
import os
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

from twinrun.registry._errors import RegistryError, RegistryReadOnlyError, UnknownRunError
from twinrun.registry._files import open_checked, resolve_registry_path, translate
from twinrun.registry._ids import resolve_run_id
from twinrun.registry._process import hostname, process_alive, process_start
from twinrun.registry._records import (
    CandidateRecord,
    Note,
    RunRecord,
    RunSummary,
    Sweep,
    best_of,
)
from twinrun.registry._schema import SCHEMA_VERSION, STATUSES

__all__ = ["STALE_AFTER_S", "MetricRow", "Registry", "open_registry"]

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


class Registry:
    """The run registry. Open it with :meth:`Registry.open` (or :func:`open_registry`)."""

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
    ) -> Registry:
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
            raise UnknownRunError(f"no run {run_id!r} in registry {str(self.path)!r}",
                                  fix="pass a full run id (Registry.resolve turns a prefix into one)")

    # ------------------------------------------------------------------ writing runs
    def create_run(
        self,
        *,
        name: str,
        config: Mapping[str, Any],
        candidates: Mapping[str, Mapping[str, Any]] | Sequence[str] = (),
        reference: str | None = None,
        seed: int | None = None,
        steps: int | None = None,
        device: str | None = None,
        experiment_path: str | None = None,
        experiment_sha256: str | None = None,
        experiment_source: str | None = None,
        config_hash: str | None = None,
        env: Mapping[str, Any] | None = None,
        env_fingerprint: str | None = None,
        run_id: str | None = None,
        sweep_id: str | None = None,
        tags: Iterable[str] = (),
        note: str | None = None,
        extra: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> str:
        """Record a new run as ``running`` (with this process's pid and host); returns its id.

        ``exist_ok``: a run with this id already recorded (a resumed run) becomes
        ``running`` again and keeps its metrics.
        """
        run_id = (run_id or uuid.uuid4().hex).lower()
        now = time.time()
        pid = os.getpid()
        cands = dict(candidates) if isinstance(candidates, Mapping) else {c: {} for c in candidates}

        def write(conn: sqlite3.Connection) -> None:
            exists = conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
            if exists and not exist_ok:
                raise RegistryError(f"run {run_id!r} is already in the registry",
                                    fix="use a new run id (or exist_ok=True to resume it)")
            if exists:
                conn.execute(
                    "UPDATE runs SET status = 'running', ended_at = NULL, error = NULL, "
                    "heartbeat_at = ?, pid = ?, pid_start = ?, hostname = ? WHERE id = ?",
                    (now, pid, process_start(pid), hostname(), run_id),
                )
                conn.execute("UPDATE candidates SET status = 'running' WHERE run_id = ? "
                             "AND status <> 'diverged'", (run_id,))
                return
            conn.execute(
                "INSERT INTO runs (id, name, status, started_at, heartbeat_at, pid, pid_start, "
                "hostname, experiment_path, experiment_sha256, experiment_source, config, "
                "config_hash, reference, seed, steps, last_step, device, env, env_fingerprint, "
                "sweep_id, extra) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "0, ?, ?, ?, ?, ?)",
                (run_id, name, now, now, pid, process_start(pid), hostname(), experiment_path,
                 experiment_sha256, experiment_source, _dumps(dict(config)), config_hash,
                 reference, seed, steps, device, _dumps(env), env_fingerprint, sweep_id,
                 _dumps(dict(extra or {}))),
            )
            conn.executemany(
                "INSERT INTO candidates (run_id, name, config, status) VALUES (?, ?, ?, 'running')",
                [(run_id, n, _dumps(dict(c))) for n, c in cands.items()],
            )
            conn.executemany("INSERT OR IGNORE INTO tags (run_id, tag, created_at) VALUES (?, ?, ?)",
                             [(run_id, t, now) for t in _clean_tags(tags)])
            if note:
                conn.execute("INSERT INTO notes (run_id, created_at, text) VALUES (?, ?, ?)",
                             (run_id, now, note))

        self._write(write, "record a run in")
        return run_id

    def log_metrics(
        self,
        run_id: str,
        rows: Iterable[MetricRow],
        *,
        step: int | None = None,
        diverged: Iterable[tuple[str, int]] = (),
    ) -> int:
        """Write metric rows in one transaction and refresh the run's heartbeat.

        A row logged again for the same (candidate, split, name, step) replaces the
        old one (a resumed run re-logs the steps after its checkpoint).
        ``step`` records the last completed step; ``diverged`` marks candidates.
        Returns the number of rows written.
        """
        batch = [(run_id, c, s, st, n, _finite_or_none(v)) for c, s, st, n, v in rows]
        marks = list(diverged)
        now = time.time()

        def write(conn: sqlite3.Connection) -> int:
            conn.executemany(
                "INSERT OR REPLACE INTO metrics (run_id, candidate, split, step, name, value) "
                "VALUES (?, ?, ?, ?, ?, ?)", batch,
            )
            if step is None:
                conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (now, run_id))
            else:
                conn.execute("UPDATE runs SET heartbeat_at = ?, last_step = max(coalesce(last_step, 0), ?) "
                             "WHERE id = ?", (now, step, run_id))
            conn.executemany(
                "UPDATE candidates SET status = 'diverged', diverged_at = ? WHERE run_id = ? AND name = ?",
                [(at, run_id, cand) for cand, at in marks],
            )
            return len(batch)

        return self._write(write, "log metrics to")

    def heartbeat(self, run_id: str, step: int | None = None) -> None:
        """Tell the registry the run's process is alive (``log_metrics`` does it too)."""
        self.log_metrics(run_id, (), step=step)

    def finish_run(
        self,
        run_id: str,
        result: Mapping[str, Any] | None = None,
        *,
        status: str = "finished",
        error: str | None = None,
    ) -> None:
        """End a run: its status, end time, final result (``TwinResult.to_dict()``) and error."""
        if status not in STATUSES or status == "running":
            raise RegistryError(f"cannot end a run with status {status!r}",
                                fix="use one of: finished, failed, interrupted, crashed")
        now = time.time()

        def write(conn: sqlite3.Connection) -> None:
            self._need_run(conn, run_id)
            conn.execute(
                "UPDATE runs SET status = ?, ended_at = ?, heartbeat_at = ?, error = ?, "
                "result = coalesce(?, result), "
                "last_step = coalesce(?, last_step) WHERE id = ?",
                (status, now, now, error, _dumps(result),
                 None if result is None else result.get("steps"), run_id),
            )
            _write_candidate_results(conn, run_id, result)
            conn.execute("UPDATE candidates SET status = ? WHERE run_id = ? AND status = 'running'",
                         (status, run_id))

        self._write(write, "finish a run in")

    def fail_run(self, run_id: str, error: str, *, interrupted: bool = False) -> None:
        """End a run as ``failed`` (or ``interrupted``) with the error that stopped it."""
        self.finish_run(run_id, None, status="interrupted" if interrupted else "failed", error=error)

    def set_result(self, run_id: str, result: Mapping[str, Any]) -> None:
        """Replace a run's stored result (e.g. after artifacts were added to it)."""
        def write(conn: sqlite3.Connection) -> None:
            self._need_run(conn, run_id)
            conn.execute("UPDATE runs SET result = ? WHERE id = ?", (_dumps(result), run_id))
            _write_candidate_results(conn, run_id, result)

        self._write(write, "store a result in")

    def reap_crashed(self, *, stale_after: float = STALE_AFTER_S) -> list[str]:
        """Mark ``crashed`` every running run whose process is gone; returns their ids.

        On this host a run is gone when its pid no longer runs (or now belongs to
        another process); for runs of other hosts, when their heartbeat is older
        than ``stale_after`` seconds.
        """
        rows = self._read("SELECT id, pid, pid_start, hostname, heartbeat_at, started_at "
                          "FROM runs WHERE status = 'running'")
        if not rows:
            return []
        here, now = hostname(), time.time()
        dead: list[tuple[str, float, str]] = []
        for run_id, pid, pid_start, host, beat, started in rows:
            last = beat if beat is not None else started
            if host == here:
                if pid is None or not process_alive(int(pid), pid_start):
                    dead.append((run_id, last, f"process {pid} on {host} ended without finishing the run"))
            elif now - last > stale_after:
                dead.append((run_id, last, f"no heartbeat from {host} (pid {pid}) for {now - last:.0f} s"))
        if not dead:
            return []

        def write(conn: sqlite3.Connection) -> list[str]:
            marked = []
            for run_id, last, why in dead:
                cur = conn.execute(
                    "UPDATE runs SET status = 'crashed', ended_at = ?, error = ? "
                    "WHERE id = ? AND status = 'running'", (last, why, run_id))
                if cur.rowcount:
                    conn.execute("UPDATE candidates SET status = 'crashed' WHERE run_id = ? "
                                 "AND status = 'running'", (run_id,))
                    marked.append(run_id)
            return marked

        try:
            return self._write(write, "mark crashed runs in")
        except RegistryReadOnlyError:
            return []

    # ------------------------------------------------------------------ reading runs
    def resolve(self, query: str) -> str:
        """The full id of the run ``query`` names: an id, a prefix (as in git), ``latest``,
        ``latest~N``. Unknown or ambiguous: :class:`UnknownRunError` with close matches."""
        text = query.strip().lower()
        if len(text) == 32 and self._read("SELECT 1 FROM runs WHERE id = ?", (text,)):
            return text
        rows = self._read("SELECT id, name, started_at, status FROM runs")
        return resolve_run_id(query, [tuple(r) for r in rows])  # type: ignore[misc]

    def get_run(self, query: str) -> RunRecord:
        """Everything about one run (``query`` as for :meth:`resolve`)."""
        run_id = self.resolve(query)
        row = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))[0]
        cands = self._read("SELECT name, config, status, diverged_at, final FROM candidates "
                           "WHERE run_id = ? ORDER BY rowid", (run_id,))
        tags = self._read("SELECT tag FROM tags WHERE run_id = ? ORDER BY created_at, tag", (run_id,))
        notes = self._read("SELECT created_at, text FROM notes WHERE run_id = ? ORDER BY id", (run_id,))
        (rid, name, status, started, ended, beat, pid, host, epath, esha, esrc, config, chash, ref,
         seed, steps, last_step, device, env, efp, result, error, sweep_id, extra) = row
        return RunRecord(
            id=rid, name=name, status=status, started_at=started, ended_at=ended, heartbeat_at=beat,
            pid=pid, hostname=host, experiment_path=epath, experiment_sha256=esha,
            experiment_source=esrc, config=_loads(config) or {}, config_hash=chash, reference=ref,
            seed=seed, steps=steps, last_step=last_step, device=device, env=_loads(env),
            env_fingerprint=efp, result=_loads(result), error=error, sweep_id=sweep_id,
            extra=_loads(extra) or {},
            candidates={n: CandidateRecord(n, _loads(c) or {}, s, d, _loads(f))
                        for n, c, s, d, f in cands},
            tags=tuple(t for (t,) in tags),
            notes=tuple(Note(t, x) for t, x in notes),
        )

    def list_runs(
        self,
        *,
        name: str | None = None,
        tag: str | None = None,
        status: str | None = None,
        sweep_id: str | None = None,
        limit: int | None = None,
    ) -> list[RunSummary]:
        """Runs, newest first. ``name`` may use shell wildcards (``digits*``)."""
        where, params = _run_filter(name, tag, status, sweep_id)
        sql = ("SELECT id, name, status, started_at, ended_at, reference, seed, steps, last_step, "
               "result, sweep_id, error FROM runs" + where + " ORDER BY started_at DESC, id")
        if limit is not None and limit > 0:
            sql += f" LIMIT {int(limit)}"
        rows = self._read(sql, params)
        if not rows:
            return []
        ids = [r[0] for r in rows]
        marks = ",".join("?" * len(ids))
        cands: dict[str, list[str]] = {i: [] for i in ids}
        for rid, cname in self._read(
            f"SELECT run_id, name FROM candidates WHERE run_id IN ({marks}) ORDER BY rowid", ids
        ):
            cands[rid].append(cname)
        tags: dict[str, list[str]] = {i: [] for i in ids}
        for rid, t in self._read(
            f"SELECT run_id, tag FROM tags WHERE run_id IN ({marks}) ORDER BY created_at, tag", ids
        ):
            tags[rid].append(t)
        return [
            RunSummary(
                id=rid, name=n, status=st, started_at=sa, ended_at=ea,
                candidates=tuple(cands[rid]), reference=ref, seed=seed, steps=steps,
                last_step=last, tags=tuple(tags[rid]), best=best_of(_loads(res)),
                sweep_id=sw, error=err,
            )
            for rid, n, st, sa, ea, ref, seed, steps, last, res, sw, err in rows
        ]

    def count_runs(
        self,
        *,
        name: str | None = None,
        tag: str | None = None,
        status: str | None = None,
        sweep_id: str | None = None,
    ) -> int:
        """How many runs :meth:`list_runs` would list without a limit."""
        where, params = _run_filter(name, tag, status, sweep_id)
        return int(self._read("SELECT count(*) FROM runs" + where, params)[0][0])

    def metrics(
        self,
        run_id: str,
        *,
        candidate: str | None = None,
        split: str | None = None,
        name: str | None = None,
    ) -> dict[str, dict[str, dict[str, list[tuple[int, float]]]]]:
        """Per-step metrics: ``{candidate: {split: {name: [(step, value), ...]}}}``, by step.

        NaN values (stored as NULL) come back as ``nan``.
        """
        where, params = ["run_id = ?"], [run_id]
        for column, value in (("candidate", candidate), ("split", split), ("name", name)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = self._read(
            "SELECT candidate, split, name, step, value FROM metrics WHERE "
            + " AND ".join(where) + " ORDER BY candidate, split, name, step", params)
        out: dict[str, dict[str, dict[str, list[tuple[int, float]]]]] = {}
        for cand, sp, nm, step, value in rows:
            out.setdefault(cand, {}).setdefault(sp, {}).setdefault(nm, []).append(
                (step, float("nan") if value is None else value))
        return out

    def count_metrics(self, run_id: str | None = None) -> int:
        """Number of metric rows (of one run, or of the whole registry)."""
        if run_id is None:
            return int(self._read("SELECT count(*) FROM metrics")[0][0])
        return int(self._read("SELECT count(*) FROM metrics WHERE run_id = ?", (run_id,))[0][0])

    # ------------------------------------------------------------------ notes and tags
    def add_note(self, run_id: str, text: str) -> Note:
        """Attach a free-text note to a run (notes accumulate, oldest first)."""
        if not text.strip():
            raise RegistryError("a note cannot be empty", fix='twinrun note RUN "what you noticed"')
        note = Note(time.time(), text.strip())

        def write(conn: sqlite3.Connection) -> None:
            self._need_run(conn, run_id)
            conn.execute("INSERT INTO notes (run_id, created_at, text) VALUES (?, ?, ?)",
                         (run_id, note.created_at, note.text))

        self._write(write, "add a note to")
        return note

    def add_tags(self, run_id: str, *tags: str) -> tuple[str, ...]:
        """Tag a run (a tag already there is kept once); returns the run's tags."""
        clean = _clean_tags(tags)
        now = time.time()

        def write(conn: sqlite3.Connection) -> tuple[str, ...]:
            self._need_run(conn, run_id)
            conn.executemany("INSERT OR IGNORE INTO tags (run_id, tag, created_at) VALUES (?, ?, ?)",
                             [(run_id, t, now) for t in clean])
            return tuple(t for (t,) in conn.execute(
                "SELECT tag FROM tags WHERE run_id = ? ORDER BY created_at, tag", (run_id,)))

        return self._write(write, "tag a run in")

    def remove_tags(self, run_id: str, *tags: str) -> tuple[str, ...]:
        """Remove tags from a run; returns the run's remaining tags."""
        def write(conn: sqlite3.Connection) -> tuple[str, ...]:
            self._need_run(conn, run_id)
            conn.executemany("DELETE FROM tags WHERE run_id = ? AND tag = ?",
                             [(run_id, t) for t in tags])
            return tuple(t for (t,) in conn.execute(
                "SELECT tag FROM tags WHERE run_id = ? ORDER BY created_at, tag", (run_id,)))

        return self._write(write, "untag a run in")

    # ------------------------------------------------------------------ for later capabilities
    def create_sweep(
        self,
        name: str,
        *,
        experiment: str | None = None,
        config: Mapping[str, Any] | None = None,
        sweep_id: str | None = None,
        status: str = "running",
    ) -> str:
        """Record a sweep (a group of runs, e.g. seeds); runs join it via ``create_run(sweep_id=)``."""
        if config is not None and _SWEEP_ANALYSIS in config:
            raise RegistryError(f"a sweep's config cannot hold the key {_SWEEP_ANALYSIS!r}",
                                fix="store the analysis with update_sweep(sweep_id, analysis=...)")
        sweep_id = sweep_id or uuid.uuid4().hex
        self._write(lambda conn: conn.execute(
            "INSERT INTO sweeps (id, name, experiment, config, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (sweep_id, name, experiment, _dumps(dict(config or {})), status, time.time())),
            "record a sweep in")
        return sweep_id

    def set_sweep_status(self, sweep_id: str, status: str) -> None:
        self._write(lambda conn: conn.execute("UPDATE sweeps SET status = ? WHERE id = ?",
                                              (status, sweep_id)), "update a sweep in")

    def get_sweep(self, sweep_id: str) -> Sweep:
        """One sweep, its runs (oldest first) and its stored analysis; ``sweep_id`` may be a prefix."""
        sweep_id = self.resolve_sweep(sweep_id)
        rows = self._read("SELECT id, name, experiment, config, status, created_at FROM sweeps "
                          "WHERE id = ?", (sweep_id,))
        sid, name, exp, config, status, created = rows[0]
        runs = self._read("SELECT id FROM runs WHERE sweep_id = ? ORDER BY started_at", (sid,))
        config_data = _loads(config) or {}
        analysis = config_data.pop(_SWEEP_ANALYSIS, None)
        return Sweep(sid, name, exp, config_data, status, created, tuple(r for (r,) in runs), analysis)

    def resolve_sweep(self, query: str) -> str:
        """The full id of the sweep ``query`` names: an id or a prefix of one (as in git)."""
        text = query.strip().lower()
        rows = self._read("SELECT id FROM sweeps WHERE substr(id, 1, ?) = ? ORDER BY created_at",
                          (len(text), text))
        ids = [r for (r,) in rows]
        if text and text in ids:
            return text
        if len(ids) == 1 and text:
            return str(ids[0])
        if not ids or not text:
            raise UnknownRunError(f"no sweep {query!r} in registry {str(self.path)!r}",
                                  fix="list the sweeps with: twinrun seeds --list")
        raise UnknownRunError(
            f"sweep id {query!r} is ambiguous: it starts {len(ids)} sweeps ({', '.join(i[:8] for i in ids[:5])})",
            fix="give more characters of the id")

    def list_sweeps(
        self, *, experiment: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[Sweep]:
        """Sweeps, newest first (without their analyses; :meth:`get_sweep` has them)."""
        where, params = [], []
        if experiment is not None:
            where.append("experiment = ?")
            params.append(experiment)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        sql = ("SELECT id, name, experiment, config, status, created_at FROM sweeps"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created_at DESC, id")
        if limit is not None and limit > 0:
            sql += f" LIMIT {int(limit)}"
        runs: dict[str, list[str]] = {}
        for rid, sid in self._read("SELECT id, sweep_id FROM runs WHERE sweep_id IS NOT NULL "
                                   "ORDER BY started_at"):
            runs.setdefault(sid, []).append(rid)
        out = []
        for sid, name, exp, config, state, created in self._read(sql, params):
            config_data = _loads(config) or {}
            config_data.pop(_SWEEP_ANALYSIS, None)
            out.append(Sweep(sid, name, exp, config_data, state, created, tuple(runs.get(sid, ()))))
        return out

    def update_sweep(
        self,
        sweep_id: str,
        *,
        status: str | None = None,
        config: Mapping[str, Any] | None = None,
        analysis: Mapping[str, Any] | None = None,
    ) -> None:
        """Change a sweep's status, replace its config, and/or store its analysis (JSON).

        The analysis is kept in the sweep row next to the config (under the reserved
        key ``"analysis"``, which :meth:`get_sweep` returns as ``Sweep.analysis``), so
        storing it needs no schema change. Each call is one transaction.
        """
        if config is not None and _SWEEP_ANALYSIS in config:
            raise RegistryError(f"a sweep's config cannot hold the key {_SWEEP_ANALYSIS!r}",
                                fix="store the analysis with update_sweep(sweep_id, analysis=...)")
        try:
            json.dumps([config, analysis], default=str, allow_nan=False)
        except ValueError as exc:
            raise RegistryError(f"sweep {sweep_id!r}: the config or analysis is not valid JSON ({exc})",
                                fix="replace NaN and infinity with None, e.g. twinrun.stats.json_safe(value)") from exc

        def write(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT config FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
            if row is None:
                raise UnknownRunError(f"no sweep {sweep_id!r} in registry {str(self.path)!r}")
            stored = _loads(row[0]) or {}
            kept = stored.get(_SWEEP_ANALYSIS)
            new = dict(config) if config is not None else {k: v for k, v in stored.items()
                                                              if k != _SWEEP_ANALYSIS}
            if analysis is not None:
                kept = dict(analysis)
            if kept is not None:
                new[_SWEEP_ANALYSIS] = kept
            conn.execute("UPDATE sweeps SET config = ?, status = coalesce(?, status) WHERE id = ?",
                         (json.dumps(new, default=str, allow_nan=False), status, sweep_id))

        self._write(write, "update a sweep in")

    def add_artifact(
        self, run_id: str, kind: str, *, path: str | Path | None = None, payload: Any = None
    ) -> int:
        """Attach an artifact (a checkpoint, a ledger, a report...) to a run; returns its id."""
        def write(conn: sqlite3.Connection) -> int:
            self._need_run(conn, run_id)
            cur = conn.execute(
                "INSERT INTO artifacts (run_id, kind, path, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                (run_id, kind, None if path is None else str(path), _dumps(payload), time.time()))
            return int(cur.lastrowid or 0)

        return self._write(write, "add an artifact to")

    def artifacts(self, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, kind, path, payload, created_at FROM artifacts WHERE run_id = ?"
        params: list[Any] = [run_id]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        return [{"id": i, "kind": k, "path": p, "payload": _loads(pl), "created_at": c}
                for i, k, p, pl, c in self._read(sql + " ORDER BY id", params)]

    def record_checks(self, run_id: str, checks: Iterable[Mapping[str, Any]]) -> int:
        """Store check outcomes: each a mapping with ``name``, ``status`` and optional
        ``measured``, ``expected``, ``details`` (any JSON). A check recorded again replaces
        the old outcome. Returns the number stored."""
        rows = []
        now = time.time()
        for check in checks:
            if "name" not in check or "status" not in check:
                raise RegistryError(f"a check needs a name and a status, got {dict(check)!r}")
            rows.append((run_id, str(check["name"]), str(check["status"]),
                         _dumps(check.get("measured")), _dumps(check.get("expected")),
                         _dumps(check.get("details")), now))

        def write(conn: sqlite3.Connection) -> int:
            self._need_run(conn, run_id)
            conn.executemany("INSERT OR REPLACE INTO checks (run_id, name, status, measured, "
                             "expected, details, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            return len(rows)

        return self._write(write, "record checks in")

    def checks(self, run_id: str) -> list[dict[str, Any]]:
        return [{"name": n, "status": s, "measured": _loads(m), "expected": _loads(e),
                 "details": _loads(d), "created_at": c}
                for n, s, m, e, d, c in self._read(
                    "SELECT name, status, measured, expected, details, created_at FROM checks "
                    "WHERE run_id = ? ORDER BY name", (run_id,))]

    # ------------------------------------------------------------------ the file
    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound file."""
        return "; ".join(r[0] for r in self._read("PRAGMA integrity_check"))

    def info(self) -> dict[str, Any]:
        """Path, schema version, size and run counts by status."""
        counts = dict(self._read("SELECT status, count(*) FROM runs GROUP BY status"))
        size = self.path.stat().st_size if self.path.exists() else 0
        wal = Path(f"{self.path}-wal")
        return {
            "path": str(self.path), "schema_version": SCHEMA_VERSION,
            "runs": int(sum(counts.values())), "by_status": {s: int(counts.get(s, 0)) for s in STATUSES},
            "metric_rows": self.count_metrics(), "bytes": size + (wal.stat().st_size if wal.exists() else 0),
            "readonly": self.readonly,
        }


def open_registry(path: str | Path | None = None, **kwargs: Any) -> Registry:
    """Shorthand for :meth:`Registry.open`."""
    return Registry.open(path, **kwargs)


def _run_filter(
    name: str | None, tag: str | None, status: str | None, sweep_id: str | None
) -> tuple[str, list[Any]]:
    """The WHERE clause (with a leading space, or empty) and parameters of a run query."""
    if status is not None and status not in STATUSES:
        raise RegistryError(f"unknown run status {status!r}", fix=f"use one of: {', '.join(STATUSES)}")
    where: list[str] = []
    params: list[Any] = []
    if name is not None:
        where.append("name GLOB ?" if any(c in name for c in "*?[") else "name = ?")
        params.append(name)
    if tag is not None:
        where.append("id IN (SELECT run_id FROM tags WHERE tag = ?)")
        params.append(tag)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if sweep_id is not None:
        where.append("sweep_id = ?")
        params.append(sweep_id)
    return (" WHERE " + " AND ".join(where) if where else ""), params


def _clean_tags(tags: Iterable[str]) -> list[str]:
    clean = []
    for tag in tags:
        t = str(tag).strip()
        if not t or any(c.isspace() for c in t) or "," in t:
            raise RegistryError(f"tag {tag!r} is not a valid tag",
                                fix="use a single word without spaces or commas, e.g. baseline")
        clean.append(t)
    return list(dict.fromkeys(clean))


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return None if math.isnan(v) else v


def _write_candidate_results(conn: sqlite3.Connection, run_id: str, result: Mapping[str, Any] | None) -> None:
    if not result:
        return
    for cand, data in (result.get("candidates") or {}).items():
        conn.execute(
            "UPDATE candidates SET status = ?, diverged_at = ?, final = ? WHERE run_id = ? AND name = ?",
            (data.get("status", "finished"), data.get("diverged_at"), _dumps(data.get("final")),
             run_id, cand))
