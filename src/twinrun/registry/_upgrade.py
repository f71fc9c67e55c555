"""``twinrun registry upgrade``: a registry file of an older schema migrated in place, with a backup."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinrun.registry._errors import (
    RegistryError,
    RegistryNotFoundError,
)
from twinrun.registry._files import (
    check_schema,
    connect,
    ensure_wal,
    file_kind,
    not_a_registry,
    read_schema_version,
    resolve_registry_path,
    translate,
)
from twinrun.registry._schema import (
    SCHEMA_VERSION,
    migrate,
)

__all__ = ["UpgradeReport", "upgrade_registry"]


@dataclass(frozen=True)
class UpgradeReport:
    """What ``upgrade_registry`` did."""

    path: Path
    from_version: int
    to_version: int
    backup: Path | None

    @property
    def changed(self) -> bool:
        return self.from_version != self.to_version

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "from_version": self.from_version,
            "to_version": self.to_version,
            "backup": None if self.backup is None else str(self.backup),
            "changed": self.changed,
        }


def upgrade_registry(path: str | Path | None = None, *, home: str | Path | None = None) -> UpgradeReport:
    """Migrate an older registry to the current schema, after writing a backup copy.

    The backup (``<name>.v<old>-<time>.bak`` beside the file) is a consistent
    copy made with SQLite's backup API. The migration runs in one transaction:
    if it fails, the file is as it was. A current file is left alone; a newer
    one raises :class:`SchemaVersionError`.
    """
    target = resolve_registry_path(path, home=home)
    kind = file_kind(target)
    if kind in ("missing", "empty"):
        raise RegistryNotFoundError(
            f"no twinrun registry at {str(target)!r}; nothing to upgrade",
            fix="check the path given to --registry (or TWINRUN_HOME)",
        )
    if kind != "ours":
        raise not_a_registry(target, kind)
    conn = connect(target)
    try:
        version = read_schema_version(conn, target)
        if version == SCHEMA_VERSION:
            return UpgradeReport(target, version, version, None)
        if version > SCHEMA_VERSION:
            check_schema(version, target)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = target.with_name(f"{target.name}.v{version}-{stamp}.bak")
        try:
            dest = sqlite3.connect(str(backup))
            try:
                conn.backup(dest)
            finally:
                dest.close()
        except (sqlite3.Error, OSError) as exc:
            raise translate(exc, backup, "write the backup of") from exc
        try:
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("BEGIN IMMEDIATE")
            try:
                migrate(conn, version)
                problems = conn.execute("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise RegistryError(f"migration left {len(problems)} dangling references")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("PRAGMA foreign_keys = ON")
            ensure_wal(conn, target)
        except sqlite3.Error as exc:
            raise translate(exc, target, "upgrade") from exc
        return UpgradeReport(target, version, SCHEMA_VERSION, backup)
    finally:
        conn.close()
