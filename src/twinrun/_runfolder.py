"""A run named as users name it (a folder, a file, an id, a prefix, ``latest``) -> its folder."""

from __future__ import annotations

from pathlib import Path

from twinrun._home import runs_dir
from twinrun.errors import CheckpointError
from twinrun.registry import Registry, UnknownRunError

__all__ = ["find_run_folder"]


def find_run_folder(query: str | Path, root: Path, store: Registry | None) -> Path:
    """``query`` itself when it exists on disk; else the folder of the run it names.

    A run id, a prefix of one (as in git) or ``latest`` / ``latest~N`` is looked up
    in the registry when there is one, else among the folders of ``<home>/runs``.
    """
    path = Path(query)
    if path.exists():
        return path
    text = str(query).strip()
    fix = (
        "pass a run folder (<TWINRUN_HOME>/runs/<run id>), one of its checkpoint files, "
        "or a run id from `twinrun runs` (a prefix, or latest)"
    )
    if "/" in text or "\\" in text or not text:
        raise CheckpointError(f"nothing to resume at {text!r}: no such file or folder", fix=fix)
    if store is not None:
        try:
            run_id = store.resolve(text)
        except UnknownRunError as exc:
            raise CheckpointError(
                f"nothing to resume at {text!r}: not a file or folder, nor a run of registry "
                f"{str(store.path)!r} ({exc.message})",
                fix=fix,
            ) from None
        record = store.get_run(run_id)
        stored = ((record.result or {}).get("artifacts") or {}).get("run_dir")
        folder = Path(stored) if stored else runs_dir(root) / run_id
    else:
        matches = sorted(p for p in runs_dir(root).glob(f"{text}*") if p.is_dir()) if text else []
        if len(matches) != 1:
            raise CheckpointError(
                f"nothing to resume at {text!r}: not a file or folder, and it names {len(matches)} runs "
                f"in {str(runs_dir(root))!r}",
                fix=fix,
            )
        folder = matches[0]
    if not folder.is_dir():
        raise CheckpointError(
            f"run {text!r} is in the registry but its folder {str(folder)!r} is gone",
            fix="pass the folder where the run's files are now (--home, or the folder itself)",
        )
    return folder
