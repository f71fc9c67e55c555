"""Registry errors, one class per thing a caller may want to handle differently."""

from __future__ import annotations

from twinrun.errors import RegistryError

__all__ = [
    "NotARegistryError",
    "RegistryError",
    "RegistryNotFoundError",
    "RegistryReadOnlyError",
    "SchemaVersionError",
    "UnknownRunError",
]


class RegistryNotFoundError(RegistryError):
    """No registry file exists at the path (and creating one was not asked for)."""


class NotARegistryError(RegistryError):
    """The path holds a file that is not a twinrun registry; it is left untouched."""


class RegistryReadOnlyError(RegistryError):
    """The registry (or the folder it lives in) cannot be written."""


class SchemaVersionError(RegistryError):
    """The file's schema is older (upgrade it) or newer (upgrade twinrun) than this twinrun's."""

    def __init__(self, message: str, *, fix: str | None = None, found: int = 0, expected: int = 0) -> None:
        super().__init__(message, fix=fix)
        self.found = found
        self.expected = expected


class UnknownRunError(RegistryError):
    """A run id or prefix matches no run, or more than one."""
