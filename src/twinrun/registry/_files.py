"""The registry file: where it is, whether it is ours, creating it, connecting, upgrading.

Nothing here writes to a file before it is known to be a twinrun registry: the
check reads SQLite's 100-byte header directly (magic string and
``application_id``), so a text file or someone else's database is never opened
by SQLite for writing. A new registry is built under a temporary name and
hard-linked into place, so two processes creating it at once both end up using
the same complete file.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import uuid
import weakref
from pathlib import Path
from urllib.parse import quote

from twinrun._home import registry_path, twinrun_home
from twinrun.registry._errors import (
    NotARegistryError,
    RegistryError,
    RegistryNotFoundError,
    RegistryReadOnlyError,
    SchemaVersionError,
)
from twinrun.registry._schema import (
    APPLICATION,
    APPLICATION_ID,
    SCHEMA_VERSION,
    create_schema,
)

__all__ = [
    "BUSY_TIMEOUT_S",
    "FileKind",
    "check_schema",
    "connect",
    "create_registry_file",
    "file_kind",
    "open_checked",
    "read_schema_version",
    "resolve_registry_path",
    "translate",
]

SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 30.0
FileKind = str  # "missing", "empty", "ours", "foreign", "not-sqlite", "directory"


def resolve_registry_path(path: str | Path | None = None, *, home: str | Path | None = None) -> Path:
    """``path`` (a file, or a folder holding ``registry.sqlite``), else ``<home>/registry.sqlite``.

    ``home`` defaults to ``$TWINRUN_HOME``, else ``./.twinrun``.
    """
    if path is None:
        return registry_path(twinrun_home(home)).absolute()
    p = Path(path).expanduser()
    if p.is_dir():
        p = registry_path(p)
    return p.absolute()


#: Connections this process has open, per (device, inode) of their database file. SQLite's
#: locks are POSIX locks, which the operating system drops for the whole process when *any*
#: descriptor of the file is closed: reading the header of a registry this process already
#: has a connection to would release that connection's locks (and another connection could
#: then delete the write-ahead log under it: "disk I/O error", seen with seeds run in the
#: sweep's own process). While a connection is open the file is known to be a registry
#: (and its inode cannot be reused), so its header is not read again.
_OPEN_CONNECTIONS: dict[tuple[int, int], int] = {}


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class _TrackedConnection(sqlite3.Connection):
    """A connection that counts itself in :data:`_OPEN_CONNECTIONS` until it is closed."""

    _identity: tuple[int, int] | None = None
    _pending: list[bool] | None = None  # shared by close() and the finalizer: counted down once

    def track(self, identity: tuple[int, int] | None) -> None:
        if identity is None:
            return
        self._identity, self._pending = identity, [True]
        _OPEN_CONNECTIONS[identity] = _OPEN_CONNECTIONS.get(identity, 0) + 1
        weakref.finalize(self, _untrack, identity, self._pending)

    def close(self) -> None:
        super().close()
        if self._identity is not None and self._pending is not None:
            _untrack(self._identity, self._pending)


def _untrack(identity: tuple[int, int], pending: list[bool]) -> None:
    if pending and pending.pop() and identity in _OPEN_CONNECTIONS:
        _OPEN_CONNECTIONS[identity] -= 1
        if _OPEN_CONNECTIONS[identity] <= 0:
            del _OPEN_CONNECTIONS[identity]


def file_kind(path: Path) -> FileKind:
    """What is at ``path``, judged from the file header alone (nothing is written)."""
    if path.is_dir():
        return "directory"
    identity = _identity(path)
    if identity is not None and _OPEN_CONNECTIONS.get(identity):
        return "ours"  # this process has it open: reading (closing) a descriptor would drop its locks
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except FileNotFoundError:
        return "missing"
    except NotADirectoryError:
        return "missing"
    except PermissionError as exc:
        raise RegistryReadOnlyError(
            f"registry {str(path)!r} cannot be read: permission denied",
            fix=f"give yourself read access (chmod u+r {path}) or point --registry elsewhere",
        ) from exc
    if not header:
        return "empty"
    if not header.startswith(SQLITE_MAGIC):
        return "not-sqlite"
    if len(header) >= 72 and int.from_bytes(header[68:72], "big") == APPLICATION_ID:
        return "ours"
    return "foreign"


def not_a_registry(path: Path, kind: FileKind) -> NotARegistryError:
    what = {
        "not-sqlite": "is not an SQLite database",
        "foreign": "is an SQLite database of another application (no twinrun mark)",
        "directory": "is a folder",
    }.get(kind, f"is not a twinrun registry ({kind})")
    return NotARegistryError(
        f"{str(path)!r} {what}; it was left untouched",
        fix="point --registry (or TWINRUN_HOME) to a twinrun registry file or to a new path, "
        "e.g. --registry .twinrun/registry.sqlite",
    )


def translate(exc: BaseException, path: Path, action: str = "use") -> RegistryError:
    """A sqlite3/OS error as a :class:`RegistryError` that says what to do."""
    text = str(exc)
    lowered = text.lower()
    if (
        isinstance(exc, PermissionError)
        or "readonly" in lowered
        or "read-only" in lowered
        or (isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM))
    ):
        return RegistryReadOnlyError(
            f"cannot {action} registry {str(path)!r}: the location is read-only ({text})",
            fix="point --registry (or TWINRUN_HOME) to a writable folder, or make this one "
            f"writable (chmod u+w {path.parent})",
        )
    if "not a database" in lowered or "malformed" in lowered:
        return RegistryError(
            f"registry {str(path)!r} is damaged ({text})",
            fix=f"restore it from a backup (twinrun registry upgrade keeps one as {path.name}.*.bak), "
            "or move it aside to start a new registry",
        )
    if "unable to open" in lowered or isinstance(exc, OSError):
        return RegistryReadOnlyError(
            f"cannot {action} registry {str(path)!r}: {text}",
            fix="check that the folder exists and is writable, or point --registry elsewhere",
        )
    return RegistryError(f"cannot {action} registry {str(path)!r}: {text}")


def _mkdir(folder: Path, path: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # a file where a folder should be
        raise RegistryError(
            f"cannot create registry {str(path)!r}: {str(folder)!r} is a file, not a folder",
            fix="point --registry to a path inside a folder, e.g. --registry .twinrun/registry.sqlite",
        ) from exc
    except NotADirectoryError as exc:
        raise RegistryError(
            f"cannot create registry {str(path)!r}: a parent of {str(folder)!r} is a file, not a folder",
            fix="point --registry to a path inside a folder, e.g. --registry .twinrun/registry.sqlite",
        ) from exc
    except OSError as exc:
        raise translate(exc, path, "create") from exc


def create_registry_file(path: Path) -> bool:
    """Create a fresh registry at ``path`` unless one appears there first; True if we made it."""
    _mkdir(path.parent, path)
    if not os.access(path.parent, os.W_OK):
        raise translate(PermissionError(errno.EACCES, "folder not writable"), path, "create")
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        conn = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN")
            create_schema(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False  # another process created it first: use theirs
        except OSError:  # a filesystem without hard links
            if path.exists():
                return False
            os.rename(tmp, path)
        return True
    except sqlite3.Error as exc:
        raise translate(exc, path, "create") from exc
    except OSError as exc:
        raise translate(exc, path, "create") from exc
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """An autocommit connection (transactions are explicit) with WAL, busy timeout and FKs.

    ``readonly`` opens with ``mode=ro``; where even that fails (a WAL file in a
    folder nobody may write), the file is read as ``immutable`` (without the
    not yet checkpointed tail of its write-ahead log).
    """
    try:
        if not readonly:
            conn = sqlite3.connect(
                str(path),
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
                factory=_TrackedConnection,
            )
            conn.track(_identity(path))
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            return conn  # WAL was set at creation (ensure_wal() for files that lost it)
        uri = f"file:{quote(str(path))}?mode=ro"
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
            factory=_TrackedConnection,
        )
        conn.track(_identity(path))
        try:
            conn.execute("SELECT count(*) FROM meta").fetchone()
        except sqlite3.OperationalError:
            conn.close()
            uri = f"file:{quote(str(path))}?immutable=1"
            conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False, factory=_TrackedConnection
            )
            conn.track(_identity(path))
        return conn
    except sqlite3.Error as exc:
        raise translate(exc, path, "open") from exc


def read_schema_version(conn: sqlite3.Connection, path: Path) -> int:
    """The schema version in ``meta``; a file without our meta rows is not a registry."""
    try:
        rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            raise not_a_registry(path, "foreign") from exc
        raise translate(exc, path, "read") from exc
    if rows.get("application") != APPLICATION or not str(rows.get("schema_version", "")).isdigit():
        raise not_a_registry(path, "foreign")
    return int(rows["schema_version"])


def check_schema(version: int, path: Path) -> None:
    if version == SCHEMA_VERSION:
        return
    if version < SCHEMA_VERSION:
        raise SchemaVersionError(
            f"registry {str(path)!r} has schema version {version}; this twinrun uses version "
            f"{SCHEMA_VERSION}. The file was left untouched",
            fix=f"twinrun registry upgrade --registry {path}   (writes a backup copy first)",
            found=version,
            expected=SCHEMA_VERSION,
        )
    raise SchemaVersionError(
        f"registry {str(path)!r} has schema version {version}, newer than this twinrun's "
        f"({SCHEMA_VERSION}); it was written by a newer twinrun and was left untouched",
        fix="upgrade twinrun: pip install -U twinrun",
        found=version,
        expected=SCHEMA_VERSION,
    )


def ensure_wal(conn: sqlite3.Connection, path: Path) -> None:
    """Switch a registry of ours to WAL if it is not (e.g. after a copy by another tool)."""
    try:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
    except sqlite3.Error as exc:
        raise translate(exc, path, "open") from exc


def open_checked(path: Path, *, create: bool, readonly: bool) -> sqlite3.Connection:
    """Connect to the registry at ``path``, creating it if allowed; schema must be current."""
    kind = file_kind(path)
    if kind == "missing" or kind == "empty":
        if not create or readonly:
            raise RegistryNotFoundError(
                f"no twinrun registry at {str(path)!r}",
                fix="run a comparison first (twinrun demo), or point --registry / TWINRUN_HOME to an existing registry",
            )
        if kind == "empty":  # a zero-byte file (e.g. made by touch): a registry to be
            _replace_empty(path)
        create_registry_file(path)
        kind = file_kind(path)
    if kind != "ours":
        raise not_a_registry(path, kind)
    if not readonly and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        raise RegistryReadOnlyError(
            f"registry {str(path)!r} is read-only (no write permission on the file or its folder)",
            fix=f"make it writable (chmod u+w {path} {path.parent}), or open it read-only "
            "(twinrun runs / show / diff do that by themselves)",
        )
    conn = connect(path, readonly=readonly)
    try:
        check_schema(read_schema_version(conn, path), path)
        if not readonly:
            ensure_wal(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _replace_empty(path: Path) -> None:
    try:
        if path.stat().st_size == 0:
            path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise translate(exc, path, "create") from exc
