"""Where twinrun keeps its files: ``TWINRUN_HOME`` (default ``./.twinrun``)."""

from __future__ import annotations

import os
from pathlib import Path

from twinrun.errors import ConfigError

__all__ = ["registry_path", "runs_dir", "tensorboard_dir", "twinrun_home"]

HOME_ENV = "TWINRUN_HOME"


def twinrun_home(explicit: str | Path | None = None) -> Path:
    """The twinrun home folder: ``explicit``, else ``$TWINRUN_HOME``, else ``./.twinrun``.

    The folder is not created here.
    """
    if explicit is not None:
        return Path(explicit).expanduser()
    value = os.environ.get(HOME_ENV)
    if value is None:
        return Path.cwd() / ".twinrun"
    if not value.strip():
        raise ConfigError(
            f"{HOME_ENV} is set but empty",
            fix=f"unset {HOME_ENV} to use ./.twinrun, or set it to a folder",
        )
    return Path(value).expanduser()


def runs_dir(home: Path) -> Path:
    return home / "runs"


def sweeps_dir(home: Path) -> Path:
    """Where sweeps keep their files: ``<home>/sweeps/<sweep id>/``."""
    return home / "sweeps"


def tensorboard_dir(home: Path) -> Path:
    return home / "tb"


def registry_path(home: Path) -> Path:
    """The default run registry: ``<home>/registry.sqlite``."""
    return home / "registry.sqlite"
