"""The run registry with real SQLite files: records, ids, notes, tags, migrations, bad input."""

from __future__ import annotations

import hashlib
import math
import sqlite3
from pathlib import Path

import pytest
import torch
from torch import nn

import twinrun
from twinrun.cli import main as cli_main
from twinrun.engine import Sink, TwinEngine
from twinrun.registry import (
    APPLICATION_ID,
    DDL,
    SCHEMA_VERSION,
    NotARegistryError,
    Registry,
    RegistryError,
    RegistrySink,
    SchemaVersionError,
    UnknownRunError,
    upgrade_registry,
)
from twinrun.registry._schema import create_schema


def _fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def _run(reg: Registry, name: str = "exp", run_id: str | None = None, **kw) -> str:
    return reg.create_run(name=name, config={"settings": {"seed": 0}}, candidates=["a", "b"],
                          run_id=run_id, **kw)


# ---------------------------------------------------------------------- records
def test_default_location_is_created_on_first_use(tmp_path):
    with Registry.open() as reg:  # TWINRUN_HOME is tmp_path/home (conftest)
        assert reg.path == tmp_path / "home" / "registry.sqlite"
    header = (tmp_path / "home" / "registry.sqlite").read_bytes()[:100]
    assert int.from_bytes(header[68:72], "big") == APPLICATION_ID
    raw = sqlite3.connect(tmp_path / "home" / "registry.sqlite")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()
    assert Registry.open(tmp_path / "home").path == tmp_path / "home" / "registry.sqlite"  # a folder


def test_compare_records_the_whole_run(toy):
    result = twinrun.compare(toy, candidates=["small", "wide"], overrides={"steps": 6, "eval_every": 3},
                             progress=False, logdir=None, tags=["first"])
    run_id = result.artifacts["registry_run"]
    assert run_id == result.run_id
    with Registry.open() as reg:
        run = reg.get_run(run_id[:6])
        assert run.status == "finished" and run.name == "toy" and run.seed == 3 and run.tags == ("first",)
        assert run.experiment_source == toy.source.text and run.experiment_sha256 == toy.source.sha256
        assert run.config["settings"]["steps"] == 6 and run.steps == 6 and run.last_step == 6
        assert run.candidates["wide"].config["model"]["kwargs"] == {"width": 32}
        assert run.env["torch"]["version"] == torch.__version__ and run.env_fingerprint
        assert run.result["candidates"]["wide"]["final"] == run.candidates["wide"].final
        assert run.result["artifacts"]["registry_run"] == run_id
        metrics = reg.metrics(run_id)
        # every step, every candidate: loss, lr and accuracy; evaluations at 0, 3, 6
        assert reg.count_metrics(run_id) == 2 * (6 * 3 + 3 * 2)
        train = [v for _, v in metrics["wide"]["train"]["loss"]]
        assert train == pytest.approx(result.candidates["wide"].train_loss.tolist(), abs=0, rel=0)
        assert [s for s, _ in metrics["small"]["val"]["accuracy"]] == [0, 3, 6]
        assert metrics["small"]["val"]["accuracy"][-1][1] == result.candidates["small"].final["accuracy"]


def test_compare_without_registry_writes_none(toy, tmp_path):
    result = twinrun.compare(toy, candidates=["small"], overrides={"steps": 2}, progress=False,
                             logdir=None, registry=False)
    assert "registry_run" not in result.artifacts
    assert not (tmp_path / "home" / "registry.sqlite").exists()


def test_an_interrupted_run_is_recorded_as_interrupted(toy):
    class StopAt3(Sink):
        def on_step_done(self, event):
            if event.step == 3:
                raise KeyboardInterrupt

    with Registry.open() as reg:
        resolved = twinrun.spec.resolve(toy, {"steps": 10}, candidates=["small"])
        engine = TwinEngine(resolved, sinks=[RegistrySink(reg, flush_every=1), StopAt3()])
        with pytest.raises(KeyboardInterrupt):
            engine.run()
        run = reg.get_run(engine.run_id)
        assert run.status == "interrupted" and run.error == "interrupted after step 3"
        assert run.last_step == 3 and run.candidates["small"].status == "interrupted"


def test_a_run_stopped_while_starting_is_recorded_as_failed_by_every_sink(toy):
    """Ctrl-C (or a sink's error) while the start event is delivered must not leave a "running" run."""
    seen: list[str] = []

    class InterruptAtStart(Sink):
        def on_run_started(self, event):
            raise KeyboardInterrupt

    class BrokenOnFailure(Sink):
        def on_run_failed(self, event):
            seen.append("broken")
            raise OSError("disk full")

    class Witness(Sink):
        def on_run_failed(self, event):
            seen.append(f"witness {event.interrupted} {event.step}")

    with Registry.open() as reg:
        resolved = twinrun.spec.resolve(toy, {"steps": 10}, candidates=["small"])
        sinks = [RegistrySink(reg), InterruptAtStart(), BrokenOnFailure(), Witness()]
        engine = TwinEngine(resolved, sinks=sinks)
        with pytest.raises(KeyboardInterrupt) as raised:  # the run's own error, not the failing sink's
            engine.run()
        assert raised.value.__notes__ == [
            "twinrun: a sink also failed while recording this: OSError: disk full"]
        run = reg.get_run(engine.run_id)
        assert run.status == "interrupted" and run.error == "interrupted after step 0"
        assert seen == ["broken", "witness True 0"]


def test_twin_in_your_own_loop_is_recorded_with_buffered_flushes():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 4, generator=g), torch.randint(0, 2, (12,), generator=g)
    models = {n: nn.Linear(4, 2) for n in ("a", "b")}
    reg = Registry.open()
    sink = RegistrySink(reg, name="mine", env=False, flush_every=5, flush_seconds=1e9)
    twin = twinrun.Twin({n: (m, torch.optim.SGD(m.parameters(), lr=0.1)) for n, m in models.items()},
                        sinks=[sink])
    for i in range(12):
        twin.step(x[i : i + 1], y[i : i + 1], nn.functional.cross_entropy)
    with Registry.open() as other:  # a second connection sees only flushed steps
        assert other.get_run(twin.run_id).status == "running"
        assert other.count_metrics(twin.run_id) == 10 * 2 * 2  # steps 1..10, loss + lr each
    twin.close()
    run = reg.get_run(twin.run_id)
    assert run.status == "finished" and run.name == "mine" and run.env is None
    assert reg.count_metrics(twin.run_id) == 12 * 2 * 2
    reg.close()


def test_nan_and_diverged_candidates():
    with Registry.open() as reg:
        run_id = _run(reg)
        reg.log_metrics(run_id, [("a", "train", 1, "loss", math.nan), ("b", "train", 1, "loss", 0.5)],
                        step=1, diverged=[("a", 1)])
        values = reg.metrics(run_id)
        assert math.isnan(values["a"]["train"]["loss"][0][1]) and values["b"]["train"]["loss"] == [(1, 0.5)]
        reg.finish_run(run_id)
        run = reg.get_run(run_id)
        assert run.candidates["a"].status == "diverged" and run.candidates["a"].diverged_at == 1
        assert run.candidates["b"].status == "finished"


def test_list_filters_newest_first_notes_and_tags():
    with Registry.open() as reg:
        first = _run(reg, "alpha")
        second = _run(reg, "beta")
        third = _run(reg, "alpha")
        reg.finish_run(first)
        reg.fail_run(second, "boom")
        reg.add_tags(third, "keep", "paper")
        reg.add_tags(third, "keep")
        assert reg.remove_tags(third, "paper") == ("keep",)
        reg.add_note(third, "first thought")
        reg.add_note(third, "second thought")
        assert [r.id for r in reg.list_runs()] == [third, second, first]
        assert [r.id for r in reg.list_runs(name="alpha")] == [third, first]
        assert [r.id for r in reg.list_runs(name="al*")] == [third, first]
        assert [r.id for r in reg.list_runs(tag="keep")] == [third]
        assert [r.id for r in reg.list_runs(status="failed")] == [second]
        assert [r.id for r in reg.list_runs(limit=1)] == [third]
        assert reg.count_runs() == 3 and reg.count_runs(name="alpha", tag="keep") == 1
        assert [n.text for n in reg.get_run(third).notes] == ["first thought", "second thought"]
        with pytest.raises(RegistryError, match="tag 'two words'"):
            reg.add_tags(third, "two words")
        with pytest.raises(RegistryError, match="unknown run status 'done'"):
            reg.list_runs(status="done")


def test_room_for_sweeps_artifacts_and_checks():
    with Registry.open() as reg:
        sweep = reg.create_sweep("seeds", experiment="toy", config={"seeds": [0, 1]})
        runs = [_run(reg, seed=s, sweep_id=sweep) for s in (0, 1)]
        assert reg.get_sweep(sweep).runs == tuple(runs)
        assert {r.id for r in reg.list_runs(sweep_id=sweep)} == set(runs)
        art = reg.add_artifact(runs[0], "checkpoint", path="/tmp/ck.pt", payload={"step": 5})
        assert reg.artifacts(runs[0], "checkpoint") == [
            {"id": art, "kind": "checkpoint", "path": "/tmp/ck.pt", "payload": {"step": 5},
             "created_at": reg.artifacts(runs[0])[0]["created_at"]}]
        assert reg.record_checks(runs[0], [{"name": "lr_warmup", "status": "passed", "measured": 0.1}]) == 1
        reg.record_checks(runs[0], [{"name": "lr_warmup", "status": "failed", "measured": 0.3}])
        checks = reg.checks(runs[0])
        assert len(checks) == 1 and checks[0]["status"] == "failed" and checks[0]["measured"] == 0.3


# ---------------------------------------------------------------------- ids
def test_ids_abbreviated_ambiguous_unknown_and_latest():
    with Registry.open() as reg:
        a = _run(reg, "digits", run_id="abc1" + "0" * 28)
        b = _run(reg, "digits", run_id="abc2" + "0" * 28)
        c = _run(reg, "toy", run_id="9f00" + "1" * 28)
        assert reg.resolve("abc1") == a and reg.resolve("ABC2") == b and reg.resolve(c) == c
        assert reg.resolve("latest") == c and reg.resolve("latest~2") == a
        with pytest.raises(UnknownRunError, match="ambiguous: 2 runs match") as err:
            reg.resolve("abc")
        assert "abc10000" in str(err.value) and "abc20000" in str(err.value)
        assert "twinrun show abc1" in err.value.fix or "twinrun show abc2" in err.value.fix
        with pytest.raises(UnknownRunError, match="no run '9f01'") as err:
            reg.resolve("9f01")
        assert "did you mean 9f001111" in err.value.fix
        with pytest.raises(UnknownRunError) as err:
            reg.resolve("digits")
        assert "experiment name" in err.value.fix and "twinrun runs --name digits" in err.value.fix
        with pytest.raises(UnknownRunError) as err:
            reg.resolve("digts")
        assert "twinrun runs --name digits" in err.value.fix
        with pytest.raises(UnknownRunError, match="holds 3 run"):
            reg.resolve("latest~3")


# ---------------------------------------------------------------------- migrations
def _make_v1(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN")
    create_schema(conn, version=1)
    for i, (tags, note) in enumerate([("baseline,paper", "first run"), ("", "")]):
        conn.execute(
            "INSERT INTO runs (id, name, status, started_at, ended_at, pid, hostname, config, "
            "reference, seed, env, result, tags, note) VALUES (?, 'old', 'finished', ?, ?, 1, 'h', "
            "'{\"settings\": {}}', 'a', ?, '{}', NULL, ?, ?)",
            (f"{i:032x}", 100.0 + i, 110.0 + i, i, tags, note))
        conn.execute("INSERT INTO candidates (run_id, name, config, status) VALUES (?, 'a', '{}', 'finished')",
                     (f"{i:032x}",))
        conn.executemany("INSERT INTO metrics VALUES (?, 'a', 'train', 'loss', ?, ?)",
                         [(f"{i:032x}", s, 1.0 / s) for s in range(1, 51)])
    conn.execute("COMMIT")
    conn.close()


def _schema_of(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
    conn.close()
    return rows


def test_an_older_schema_asks_for_upgrade_then_migrates_with_a_backup(tmp_path, capsys):
    path = tmp_path / "old.sqlite"
    _make_v1(path)
    before = _fingerprint(path)
    with pytest.raises(SchemaVersionError) as err:
        Registry.open(path)
    assert "schema version 1" in err.value.message and err.value.found == 1
    assert err.value.fix.startswith(f"twinrun registry upgrade --registry {path}")
    assert _fingerprint(path) == before  # untouched

    assert cli_main(["registry", "upgrade", "--registry", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"from schema 1 to {SCHEMA_VERSION}" in out
    backups = list(tmp_path.glob("old.sqlite.v1-*.bak"))
    assert len(backups) == 1
    raw = sqlite3.connect(backups[0])  # the backup is the old file, as it was
    assert raw.execute("SELECT count(*) FROM metrics").fetchone()[0] == 100
    assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
    assert raw.execute("SELECT tags FROM runs ORDER BY id").fetchall() == [("baseline,paper",), ("",)]
    raw.close()

    with Registry.open(path) as reg:
        runs = reg.list_runs()
        assert [r.id for r in runs] == [f"{1:032x}", f"{0:032x}"]
        old = reg.get_run(f"{0:032x}")
        assert old.tags == ("baseline", "paper") and [n.text for n in old.notes] == ["first run"]
        assert old.status == "finished" and old.heartbeat_at == 110.0
        assert reg.get_run(f"{1:032x}").tags == () and reg.count_metrics() == 100
        assert reg.integrity_check() == "ok"
        _run(reg)  # and it takes new runs
    fresh = tmp_path / "fresh.sqlite"
    Registry.open(fresh).close()
    assert _schema_of(path) == _schema_of(fresh)  # migrated == created at the current version
    assert cli_main(["registry", "upgrade", "--registry", str(path)]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_every_schema_version_has_a_migration():
    from twinrun.registry._schema import MIGRATIONS

    assert sorted(DDL) == list(range(1, SCHEMA_VERSION + 1))
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION))


# ---------------------------------------------------------------------- bad input
def test_a_newer_schema_asks_to_upgrade_twinrun(tmp_path):
    path = tmp_path / "new.sqlite"
    with Registry.open(path) as reg:
        _run(reg)
    raw = sqlite3.connect(path)
    raw.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    before = _fingerprint(path)
    with pytest.raises(SchemaVersionError) as err:
        Registry.open(path)
    assert "newer" in err.value.message and err.value.fix == "upgrade twinrun: pip install -U twinrun"
    with pytest.raises(SchemaVersionError):
        upgrade_registry(path)
    assert _fingerprint(path) == before


def test_a_text_file_is_not_a_registry_and_stays_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("my precious notes\n" * 10)
    before = _fingerprint(path)
    with pytest.raises(NotARegistryError, match="is not an SQLite database; it was left untouched") as err:
        Registry.open(path)
    assert "--registry" in err.value.fix
    assert _fingerprint(path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_foreign_sqlite_database_stays_untouched(tmp_path):
    path = tmp_path / "app.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE meta (key TEXT, value TEXT)")  # even a look-alike table
    raw.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    raw.commit()
    raw.close()
    before = _fingerprint(path)
    with pytest.raises(NotARegistryError, match="another application"):
        Registry.open(path)
    with pytest.raises(NotARegistryError):
        upgrade_registry(path)
    assert _fingerprint(path) == before and not Path(f"{path}-wal").exists()


def test_a_registry_path_under_a_file(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(RegistryError, match="is a file, not a folder") as err:
        Registry.open(tmp_path / "plain" / "registry.sqlite")
    assert "--registry" in err.value.fix and (tmp_path / "plain").read_text() == "x"


def test_a_missing_registry_is_not_created_when_reading(tmp_path):
    with pytest.raises(RegistryError, match="no twinrun registry at") as err:
        Registry.open(tmp_path / "nowhere.sqlite", create=False)
    assert "twinrun demo" in err.value.fix and not (tmp_path / "nowhere.sqlite").exists()


def test_a_dead_process_on_this_host_marks_its_run_crashed_on_open(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    with Registry.open() as reg:
        mine = _run(reg)
        theirs = _run(reg)
        raw = sqlite3.connect(reg.path)
        raw.execute("UPDATE runs SET pid = ?, pid_start = NULL WHERE id = ?", (pid, theirs))
        raw.execute("UPDATE runs SET hostname = 'elsewhere', heartbeat_at = 0 WHERE id = ?", (mine,))
        raw.commit()
        raw.close()
    with Registry.open(stale_after=3600) as reg:
        assert reg.get_run(theirs).status == "crashed"
        crashed_elsewhere = reg.get_run(mine)
        assert crashed_elsewhere.status == "crashed" and "no heartbeat from elsewhere" in crashed_elsewhere.error
        alive = _run(reg)
    with Registry.open() as reg:
        assert reg.get_run(alive).status == "running"  # our own process is alive


def test_a_run_records_its_provenance_and_the_old_keywords_warn(tmp_path):
    from twinrun.registry import Provenance

    origin = Provenance(experiment_path="/x/exp.py", experiment_sha256="ab" * 32, experiment_source="print(1)",
                        config_hash="c0ffee", env={"python": {"version": "3.11"}}, env_fingerprint="f1")
    with Registry.open(tmp_path / "r.sqlite") as reg:
        rid = _run(reg, provenance=origin)
        assert reg.get_run(rid).provenance == origin
        with pytest.warns(DeprecationWarning, match=r"create_run\(config_hash, experiment_path=...\) is deprecated") as seen:
            old = reg.create_run(name="exp", config={}, experiment_path="/x/exp.py", config_hash="c0ffee")
        assert seen[0].filename == __file__  # the warning names the caller's line
        assert reg.get_run(old).provenance == Provenance(experiment_path="/x/exp.py", config_hash="c0ffee")
        with pytest.raises(RegistryError, match="both as keywords and with provenance="):
            _run(reg, provenance=origin, config_hash="other")
        with pytest.raises(TypeError, match="unexpected keyword argument 'config_hsah'"):
            _run(reg, config_hsah="c0ffee")
        assert reg.count_runs() == 2
