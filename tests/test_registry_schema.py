"""Schema version 3: a version-2 file migrates, and its interrupted runs get their own status."""

from __future__ import annotations

import sqlite3

import pytest
from test_registry import _run, _schema_of

from twinrun.cli import main as cli_main
from twinrun.registry import Registry, SchemaVersionError


def test_a_version_2_file_migrates_and_its_interrupted_runs_get_their_status(tmp_path):
    from twinrun.registry._schema import create_schema

    path = tmp_path / "v2.sqlite"
    Registry.open(path).close()  # a file with twinrun's marks, then its tables replaced by version 2's
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        conn.execute(f"DROP TABLE {name}")
    create_schema(conn, 2)
    for i, (status, error) in enumerate([("failed", "interrupted (after step 3)"), ("failed", "ValueError: x"),
                                         ("finished", None)]):
        conn.execute("INSERT INTO runs (id, name, status, started_at, config, error) VALUES (?, 'r', ?, ?, '{}', ?)",
                     (f"{i:032x}", status, 100.0 + i, error))
        conn.execute("INSERT INTO candidates (run_id, name, config, status) VALUES (?, 'a', '{}', ?)",
                     (f"{i:032x}", status))
    conn.execute("COMMIT")
    conn.close()
    with pytest.raises(SchemaVersionError):
        Registry.open(path)
    assert cli_main(["registry", "upgrade", "--registry", str(path)]) == 0
    with Registry.open(path) as reg:
        assert [reg.get_run(f"{i:032x}").status for i in range(3)] == ["interrupted", "failed", "finished"]
        assert reg.integrity_check() == "ok" and reg.get_run(f"{0:032x}").candidates["a"].status == "failed"
        _run(reg)
    fresh = tmp_path / "fresh.sqlite"
    Registry.open(fresh).close()
    assert _schema_of(path) == _schema_of(fresh)


def test_a_registry_this_process_has_open_is_never_reopened_by_a_raw_read(tmp_path, monkeypatch):
    """SQLite's POSIX locks drop when any descriptor of the file closes: a header read of an open
    registry would release them (in-process seeds then hit "disk I/O error")."""
    import builtins

    from twinrun.registry._files import file_kind

    path = tmp_path / "r.sqlite"
    first = Registry.open(path)
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        assert str(file) != str(path), "the registry's header was read while a connection is open"
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    assert file_kind(path) == "ours"
    with Registry.open(path) as second:  # as compare() does inside an in-process sweep
        _run(second)
    _run(first)  # the first connection still works
    first.close()
    monkeypatch.setattr(builtins, "open", real_open)
    assert file_kind(path) == "ours"  # closed: the header is read again
