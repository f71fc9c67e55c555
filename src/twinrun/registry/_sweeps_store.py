"""The sweeps of a registry: groups of runs (the seeds of ``twinrun seeds``) and their analyses."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Mapping
from typing import Any

from twinrun.registry._connection import (
    _SWEEP_ANALYSIS,
    Connection,
    _dumps,
    _loads,
)
from twinrun.registry._errors import RegistryError, UnknownRunError
from twinrun.registry._records import (
    Sweep,
)

__all__ = ["Sweeps"]


class Sweeps(Connection):
    """What a registry stores about sweeps."""

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
            raise RegistryError(
                f"a sweep's config cannot hold the key {_SWEEP_ANALYSIS!r}",
                fix="store the analysis with update_sweep(sweep_id, analysis=...)",
            )
        sweep_id = sweep_id or uuid.uuid4().hex
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO sweeps (id, name, experiment, config, status, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (sweep_id, name, experiment, _dumps(dict(config or {})), status, time.time()),
            ),
            "record a sweep in",
        )
        return sweep_id

    def set_sweep_status(self, sweep_id: str, status: str) -> None:
        self._write(
            lambda conn: conn.execute("UPDATE sweeps SET status = ? WHERE id = ?", (status, sweep_id)),
            "update a sweep in",
        )

    def get_sweep(self, sweep_id: str) -> Sweep:
        """One sweep, its runs (oldest first) and its stored analysis; ``sweep_id`` may be a prefix."""
        sweep_id = self.resolve_sweep(sweep_id)
        rows = self._read(
            "SELECT id, name, experiment, config, status, created_at FROM sweeps WHERE id = ?", (sweep_id,)
        )
        sid, name, exp, config, status, created = rows[0]
        runs = self._read("SELECT id FROM runs WHERE sweep_id = ? ORDER BY started_at", (sid,))
        config_data = _loads(config) or {}
        analysis = config_data.pop(_SWEEP_ANALYSIS, None)
        return Sweep(sid, name, exp, config_data, status, created, tuple(r for (r,) in runs), analysis)

    def resolve_sweep(self, query: str) -> str:
        """The full id of the sweep ``query`` names: an id or a prefix of one (as in git)."""
        text = query.strip().lower()
        rows = self._read("SELECT id FROM sweeps WHERE substr(id, 1, ?) = ? ORDER BY created_at", (len(text), text))
        ids = [r for (r,) in rows]
        if text and text in ids:
            return text
        if len(ids) == 1 and text:
            return str(ids[0])
        if not ids or not text:
            raise UnknownRunError(
                f"no sweep {query!r} in registry {str(self.path)!r}", fix="list the sweeps with: twinrun seeds --list"
            )
        raise UnknownRunError(
            f"sweep id {query!r} is ambiguous: it starts {len(ids)} sweeps ({', '.join(i[:8] for i in ids[:5])})",
            fix="give more characters of the id",
        )

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
        sql = (
            "SELECT id, name, experiment, config, status, created_at FROM sweeps"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY created_at DESC, id"
        )
        if limit is not None and limit > 0:
            sql += f" LIMIT {int(limit)}"
        runs: dict[str, list[str]] = {}
        for rid, sid in self._read("SELECT id, sweep_id FROM runs WHERE sweep_id IS NOT NULL ORDER BY started_at"):
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
            raise RegistryError(
                f"a sweep's config cannot hold the key {_SWEEP_ANALYSIS!r}",
                fix="store the analysis with update_sweep(sweep_id, analysis=...)",
            )
        try:
            json.dumps([config, analysis], default=str, allow_nan=False)
        except ValueError as exc:
            raise RegistryError(
                f"sweep {sweep_id!r}: the config or analysis is not valid JSON ({exc})",
                fix="replace NaN and infinity with None, e.g. twinrun.stats.json_safe(value)",
            ) from exc

        def write(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT config FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
            if row is None:
                raise UnknownRunError(f"no sweep {sweep_id!r} in registry {str(self.path)!r}")
            stored = _loads(row[0]) or {}
            kept = stored.get(_SWEEP_ANALYSIS)
            new = dict(config) if config is not None else {k: v for k, v in stored.items() if k != _SWEEP_ANALYSIS}
            if analysis is not None:
                kept = dict(analysis)
            if kept is not None:
                new[_SWEEP_ANALYSIS] = kept
            conn.execute(
                "UPDATE sweeps SET config = ?, status = coalesce(?, status) WHERE id = ?",
                (json.dumps(new, default=str, allow_nan=False), status, sweep_id),
            )

        self._write(write, "update a sweep in")
