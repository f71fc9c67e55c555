"""The one exception hierarchy of twinrun.

Every error twinrun raises on purpose derives from :class:`TwinrunError`. Its
message names the bad value and, where there is one, the exact fix, so that a
user reading a traceback (or the CLI's one-line error) knows what to type next.
"""

from __future__ import annotations

__all__ = [
    "BuildError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Interrupted",
    "LedgerError",
    "RegistryError",
    "ReproducibilityWarning",
    "TwinrunError",
    "TwinrunWarning",
]


class TwinrunError(Exception):
    """Base class of every error twinrun raises on purpose.

    Args:
        message: what is wrong, naming the offending value.
        fix: what the user should do about it (optional, printed on its own line).
    """

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message if fix is None else f"{message}\n  fix: {fix}")


class ConfigError(TwinrunError):
    """An experiment, an override or a setting is invalid (unknown key, bad type...)."""


class BuildError(TwinrunError):
    """A factory failed to build its object for a candidate, or candidates don't fit together."""


class DataError(TwinrunError):
    """The data is unusable: empty dataset, bad batch structure, wrong shapes."""


class CheckpointError(TwinrunError):
    """A checkpoint is corrupt, truncated, or belongs to another experiment."""


class RegistryError(TwinrunError):
    """The run registry cannot be opened, read or written."""


class LedgerError(TwinrunError):
    """A ledger is unreadable, or two ledgers cannot be compared (different configurations)."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal (Ctrl-C, SIGTERM, its parent process gone).

    A ``KeyboardInterrupt``, so code that handles Ctrl-C handles it too. ``step``
    is the last completed update; ``checkpoint`` the file a resume continues
    from (``None``: nothing to resume from, the run starts again).

    Args:
        reason: what stopped the run (``"SIGINT"``, ``"SIGTERM"``, ...).
        at_step_boundary: the run stopped between two steps, so its state is complete.
    """

    def __init__(
        self,
        reason: str,
        *,
        step: int | None = None,
        at_step_boundary: bool = False,
        run_id: str | None = None,
        checkpoint: str | None = None,
        checkpoint_step: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.step = step
        self.at_step_boundary = at_step_boundary
        self.run_id = run_id
        self.checkpoint = checkpoint
        self.checkpoint_step = checkpoint_step


class TwinrunWarning(UserWarning):
    """Base class of the warnings twinrun issues on purpose (filter them as a group)."""


class ReproducibilityWarning(TwinrunWarning):
    """Something about this process can make a run impossible to repeat bit for bit."""
