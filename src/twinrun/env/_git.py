"""The git state of the code a run came from: commit, branch, dirty flag and diff."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

__all__ = ["git_state"]

MAX_DIFF_BYTES = 1_000_000


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(path: str | Path | None = None) -> dict[str, Any]:
    """Commit, branch, dirty flag and the diff of uncommitted changes to tracked files.

    ``path`` is a file or folder inside the repository (default: the working
    directory). Outside a repository, ``{"repository": None}``. Diffs larger than
    1 MB are truncated (``diff_truncated`` says so).
    """
    where = Path(path) if path is not None else Path.cwd()
    cwd = where if where.is_dir() else where.parent
    root = _git(["rev-parse", "--show-toplevel"], cwd)
    if root is None:
        return {"repository": None}
    commit = (_git(["rev-parse", "HEAD"], cwd) or "").strip() or None
    branch = (_git(["rev-parse", "--abbrev-ref", "HEAD"], cwd) or "").strip() or None
    status = _git(["status", "--porcelain", "--untracked-files=normal"], cwd) or ""
    modified = [line[3:] for line in status.splitlines() if not line.startswith("??")]
    untracked = [line[3:] for line in status.splitlines() if line.startswith("??")]
    diff = _git(["diff", "HEAD", "--no-color"], cwd) if commit else _git(["diff", "--no-color"], cwd)
    diff = diff or ""
    truncated = len(diff.encode()) > MAX_DIFF_BYTES
    if truncated:
        diff = diff.encode()[:MAX_DIFF_BYTES].decode(errors="ignore")
    return {
        "repository": root.strip(),
        "commit": commit,
        "branch": branch,
        "dirty": bool(modified),
        "modified_files": modified,
        "untracked_files": len(untracked),
        "diff": diff,
        "diff_truncated": truncated,
    }
