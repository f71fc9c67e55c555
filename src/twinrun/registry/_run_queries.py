"""Reading a registry's runs: ids resolved, one run whole, runs listed and counted, metrics."""

from __future__ import annotations

from typing import Any

from twinrun.registry._connection import _RUN_COLUMNS, Connection, _loads
from twinrun.registry._errors import RegistryError
from twinrun.registry._ids import resolve_run_id
from twinrun.registry._records import CandidateRecord, Note, RunRecord, RunSummary, best_of
from twinrun.registry._schema import STATUSES

__all__ = ["RunQueries"]


class RunQueries(Connection):
    """What a registry answers about its runs."""

    def resolve(self, query: str) -> str:
        """The full id of the run ``query`` names: an id, a prefix (as in git), ``latest``,
        ``latest~N``. Unknown or ambiguous: :class:`UnknownRunError` with close matches."""
        text = query.strip().lower()
        if len(text) == 32 and self._read("SELECT 1 FROM runs WHERE id = ?", (text,)):
            return text
        rows = self._read("SELECT id, name, started_at, status FROM runs")
        return resolve_run_id(query, [tuple(r) for r in rows])

    def get_run(self, query: str) -> RunRecord:
        """Everything about one run (``query`` as for :meth:`resolve`)."""
        run_id = self.resolve(query)
        row = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))[0]
        cands = self._read(
            "SELECT name, config, status, diverged_at, final FROM candidates WHERE run_id = ? ORDER BY rowid", (run_id,)
        )
        tags = self._read("SELECT tag FROM tags WHERE run_id = ? ORDER BY created_at, tag", (run_id,))
        notes = self._read("SELECT created_at, text FROM notes WHERE run_id = ? ORDER BY id", (run_id,))
        (
            rid,
            name,
            status,
            started,
            ended,
            beat,
            pid,
            host,
            epath,
            esha,
            esrc,
            config,
            chash,
            ref,
            seed,
            steps,
            last_step,
            device,
            env,
            efp,
            result,
            error,
            sweep_id,
            extra,
        ) = row
        return RunRecord(
            id=rid,
            name=name,
            status=status,
            started_at=started,
            ended_at=ended,
            heartbeat_at=beat,
            pid=pid,
            hostname=host,
            experiment_path=epath,
            experiment_sha256=esha,
            experiment_source=esrc,
            config=_loads(config) or {},
            config_hash=chash,
            reference=ref,
            seed=seed,
            steps=steps,
            last_step=last_step,
            device=device,
            env=_loads(env),
            env_fingerprint=efp,
            result=_loads(result),
            error=error,
            sweep_id=sweep_id,
            extra=_loads(extra) or {},
            candidates={n: CandidateRecord(n, _loads(c) or {}, s, d, _loads(f)) for n, c, s, d, f in cands},
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
        sql = (
            "SELECT id, name, status, started_at, ended_at, reference, seed, steps, last_step, "
            "result, sweep_id, error FROM runs" + where + " ORDER BY started_at DESC, id"
        )
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
                id=rid,
                name=n,
                status=st,
                started_at=sa,
                ended_at=ea,
                candidates=tuple(cands[rid]),
                reference=ref,
                seed=seed,
                steps=steps,
                last_step=last,
                tags=tuple(tags[rid]),
                best=best_of(_loads(res)),
                sweep_id=sw,
                error=err,
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
            + " AND ".join(where)
            + " ORDER BY candidate, split, name, step",
            params,
        )
        out: dict[str, dict[str, dict[str, list[tuple[int, float]]]]] = {}
        for cand, sp, nm, step, value in rows:
            out.setdefault(cand, {}).setdefault(sp, {}).setdefault(nm, []).append(
                (step, float("nan") if value is None else value)
            )
        return out

    def count_metrics(self, run_id: str | None = None) -> int:
        """Number of metric rows (of one run, or of the whole registry)."""
        if run_id is None:
            return int(self._read("SELECT count(*) FROM metrics")[0][0])
        return int(self._read("SELECT count(*) FROM metrics WHERE run_id = ?", (run_id,))[0][0])


def _run_filter(name: str | None, tag: str | None, status: str | None, sweep_id: str | None) -> tuple[str, list[Any]]:
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
