"""The runs of a registry: created, logged, finished, reaped when their process died (read back: ``_run_queries``)."""

from __future__ import annotations

import math
import os
import sqlite3
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from twinrun.registry._connection import (
    STALE_AFTER_S,
    MetricRow,
    _dumps,
)
from twinrun.registry._errors import RegistryError, RegistryReadOnlyError
from twinrun.registry._process import hostname, process_alive, process_start
from twinrun.registry._records import Provenance
from twinrun.registry._run_queries import RunQueries
from twinrun.registry._schema import STATUSES

__all__ = ["Runs", "clean_tags"]


def _provenance(provenance: Provenance | None, legacy: Mapping[str, Any]) -> Provenance:
    """``provenance``, or one made of the old keywords (with a warning); anything else is a TypeError."""
    names = {f.name for f in fields(Provenance)}
    unknown = sorted(set(legacy) - names)
    if unknown:
        raise TypeError(f"create_run() got an unexpected keyword argument {unknown[0]!r}")
    if not legacy:
        return provenance or Provenance()
    if provenance is not None:
        raise RegistryError(
            f"create_run() got {', '.join(sorted(legacy))} both as keywords and with provenance=",
            fix="give them once, in provenance=Provenance(...)",
        )
    warnings.warn(
        f"create_run({', '.join(sorted(legacy))}=...) is deprecated: pass provenance=twinrun.registry.Provenance(...)",
        DeprecationWarning,
        stacklevel=3,
    )
    return Provenance(**legacy)


class Runs(RunQueries):
    """What a registry stores about runs: rows, metrics, results, candidates."""

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
        provenance: Provenance | None = None,
        run_id: str | None = None,
        sweep_id: str | None = None,
        tags: Iterable[str] = (),
        note: str | None = None,
        extra: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
        **legacy: Any,
    ) -> str:
        """Record a new run as ``running`` (with this process's pid and host); returns its id.

        ``provenance``: the experiment file, the config's hash and the environment
        (:class:`Provenance`; its fields as keywords, the old spelling, still work with a
        ``DeprecationWarning``). ``exist_ok``: a run with this id already recorded (a resumed
        run) becomes ``running`` again and keeps its metrics.
        """
        origin = _provenance(provenance, legacy)
        run_id = (run_id or uuid.uuid4().hex).lower()
        now = time.time()
        pid = os.getpid()
        cands = dict(candidates) if isinstance(candidates, Mapping) else {c: {} for c in candidates}

        def write(conn: sqlite3.Connection) -> None:
            exists = conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
            if exists and not exist_ok:
                raise RegistryError(
                    f"run {run_id!r} is already in the registry", fix="use a new run id (or exist_ok=True to resume it)"
                )
            if exists:
                conn.execute(
                    "UPDATE runs SET status = 'running', ended_at = NULL, error = NULL, "
                    "heartbeat_at = ?, pid = ?, pid_start = ?, hostname = ? WHERE id = ?",
                    (now, pid, process_start(pid), hostname(), run_id),
                )
                conn.execute(
                    "UPDATE candidates SET status = 'running' WHERE run_id = ? AND status <> 'diverged'", (run_id,)
                )
                return
            conn.execute(
                "INSERT INTO runs (id, name, status, started_at, heartbeat_at, pid, pid_start, "
                "hostname, experiment_path, experiment_sha256, experiment_source, config, "
                "config_hash, reference, seed, steps, last_step, device, env, env_fingerprint, "
                "sweep_id, extra) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "0, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    name,
                    now,
                    now,
                    pid,
                    process_start(pid),
                    hostname(),
                    origin.experiment_path,
                    origin.experiment_sha256,
                    origin.experiment_source,
                    _dumps(dict(config)),
                    origin.config_hash,
                    reference,
                    seed,
                    steps,
                    device,
                    _dumps(origin.env),
                    origin.env_fingerprint,
                    sweep_id,
                    _dumps(dict(extra or {})),
                ),
            )
            conn.executemany(
                "INSERT INTO candidates (run_id, name, config, status) VALUES (?, ?, ?, 'running')",
                [(run_id, n, _dumps(dict(c))) for n, c in cands.items()],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO tags (run_id, tag, created_at) VALUES (?, ?, ?)",
                [(run_id, t, now) for t in clean_tags(tags)],
            )
            if note:
                conn.execute("INSERT INTO notes (run_id, created_at, text) VALUES (?, ?, ?)", (run_id, now, note))

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
                "VALUES (?, ?, ?, ?, ?, ?)",
                batch,
            )
            if step is None:
                conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (now, run_id))
            else:
                conn.execute(
                    "UPDATE runs SET heartbeat_at = ?, last_step = max(coalesce(last_step, 0), ?) WHERE id = ?",
                    (now, step, run_id),
                )
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
            raise RegistryError(
                f"cannot end a run with status {status!r}", fix="use one of: finished, failed, interrupted, crashed"
            )
        now = time.time()

        def write(conn: sqlite3.Connection) -> None:
            self._need_run(conn, run_id)
            conn.execute(
                "UPDATE runs SET status = ?, ended_at = ?, heartbeat_at = ?, error = ?, "
                "result = coalesce(?, result), "
                "last_step = coalesce(?, last_step) WHERE id = ?",
                (status, now, now, error, _dumps(result), None if result is None else result.get("steps"), run_id),
            )
            _write_candidate_results(conn, run_id, result)
            conn.execute("UPDATE candidates SET status = ? WHERE run_id = ? AND status = 'running'", (status, run_id))

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
        rows = self._read(
            "SELECT id, pid, pid_start, hostname, heartbeat_at, started_at FROM runs WHERE status = 'running'"
        )
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
                    "UPDATE runs SET status = 'crashed', ended_at = ?, error = ? WHERE id = ? AND status = 'running'",
                    (last, why, run_id),
                )
                if cur.rowcount:
                    conn.execute(
                        "UPDATE candidates SET status = 'crashed' WHERE run_id = ? AND status = 'running'", (run_id,)
                    )
                    marked.append(run_id)
            return marked

        try:
            return self._write(write, "mark crashed runs in")
        except RegistryReadOnlyError:
            return []


def clean_tags(tags: Iterable[str]) -> list[str]:
    clean = []
    for tag in tags:
        t = str(tag).strip()
        if not t or any(c.isspace() for c in t) or "," in t:
            raise RegistryError(
                f"tag {tag!r} is not a valid tag", fix="use a single word without spaces or commas, e.g. baseline"
            )
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
            (data.get("status", "finished"), data.get("diverged_at"), _dumps(data.get("final")), run_id, cand),
        )
