"""A run's rows carried from one registry to another: how a seed on a Ray node reports to the one writer."""

from __future__ import annotations

import pickle
import sqlite3

import pytest

from twinrun.registry import PortableRun, Registry, RegistryError, UnknownRunError

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")


def _rows(path, run_id: str) -> dict[str, list[tuple]]:
    """Every row naming the run, table by table, without the surrogate ids (read with plain sqlite3)."""
    conn = sqlite3.connect(path)
    try:
        out = {}
        for (table,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ):
            columns = [c[1] for c in conn.execute(f"PRAGMA table_info({table})") if not (c[5] and c[2] == "INTEGER")]
            key = "id" if table == "runs" else "run_id" if "run_id" in columns else None
            if key:
                out[table] = sorted(
                    conn.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {key} = ?", (run_id,)).fetchall(),
                    key=repr,
                )
        return out
    finally:
        conn.close()


def _recorded_run(reg: Registry, sweep: str, seed: int) -> str:
    run = reg.create_run(
        name="exp",
        config={"settings": {"seed": seed}},
        candidates=["a", "b"],
        seed=seed,
        sweep_id=sweep,
        tags=["seeds"],
        note="on node 2",
    )
    reg.log_metrics(
        run, [("a", "train", s, "loss", 1.0 / (s + 1)) for s in range(5)] + [("b", "val", 4, "accuracy", float("nan"))]
    )
    reg.add_artifact(run, "outputs", path="/shared/runs/outputs.pt", payload={"seed": seed})
    reg.record_checks(run, [{"name": "lr_range", "status": "passed", "measured": 0.1}])
    reg.finish_run(run, result={"candidates": {"a": {"final": {"loss": 0.2}}}})
    return run


def test_a_run_exported_from_a_nodes_registry_is_the_same_rows_in_the_writers(tmp_path):
    with Registry.open(tmp_path / "main.sqlite") as main:
        sweep = main.create_sweep("seeds", experiment="toy", config={"seeds": [0, 1]})
        main.add_note(_recorded_run(main, sweep, 0), "already here")  # the writer has runs of its own
        row = main.export_sweep_row(sweep)
    with Registry.open(tmp_path / "node.sqlite") as node:
        node.import_sweep_row(*row)
        run = _recorded_run(node, sweep, 1)
        record = pickle.loads(pickle.dumps(node.export_run(run)))  # it travels as Ray pickles it
    assert isinstance(record, PortableRun) and record.rows >= 10
    with Registry.open(tmp_path / "main.sqlite") as main:
        main.import_run(record)
        main.import_run(record)  # reported twice (a retried task): still one run
        assert main.get_sweep(sweep).runs == tuple(r.id for r in reversed(main.list_runs(sweep_id=sweep)))
        assert len(main.list_runs(sweep_id=sweep)) == 2
        assert main.get_run(run).seed == 1 and main.count_metrics(run) == 6
        assert main.integrity_check() == "ok"
    assert _rows(tmp_path / "main.sqlite", run) == _rows(tmp_path / "node.sqlite", run)


def test_an_unknown_run_a_foreign_schema_and_a_mislabelled_record_are_refused(tmp_path):
    with Registry.open(tmp_path / "r.sqlite") as reg:
        with pytest.raises(UnknownRunError):
            reg.export_run("nope")
        sweep = reg.create_sweep("seeds")
        record = reg.export_run(_recorded_run(reg, sweep, 0))
        old = PortableRun(record.run_id, record.schema_version - 1, record.tables)
        with pytest.raises(RegistryError, match="install the same twinrun version"):
            reg.import_run(old)
        other = PortableRun("another", record.schema_version, record.tables)
        with pytest.raises(RegistryError, match="rows of another run"):
            reg.import_run(other)
        assert reg.get_run(record.run_id).status == "finished"  # the failed import changed nothing
