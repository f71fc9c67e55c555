"""The run registry: every run remembered, listed, shown and diffed.

One SQLite file (``<TWINRUN_HOME>/registry.sqlite`` by default) holds each run's
experiment source, resolved config per candidate, seed, status, environment,
per-step metrics, final result and verdict, notes and tags. ``compare()``
records every run through :class:`RegistrySink`; ``twinrun runs / show / diff``
read it back.
"""

from typing import TYPE_CHECKING

from twinrun.registry._diff import (
    Comparability,
    ConfigDifference,
    CurveDifference,
    MetricDifference,
    RunDiff,
    diff_runs,
)
from twinrun.registry._diff import flatten as flatten_config
from twinrun.registry._errors import (
    NotARegistryError,
    RegistryError,
    RegistryNotFoundError,
    RegistryReadOnlyError,
    SchemaVersionError,
    UnknownRunError,
)
from twinrun.registry._files import resolve_registry_path
from twinrun.registry._portable import PortableRun
from twinrun.registry._records import CandidateRecord, Note, Provenance, RunRecord, RunSummary, Sweep
from twinrun.registry._schema import APPLICATION_ID, DDL, SCHEMA_VERSION, STATUSES
from twinrun.registry._store import STALE_AFTER_S, MetricRow, Registry, open_registry
from twinrun.registry._upgrade import UpgradeReport, upgrade_registry

if TYPE_CHECKING:
    from twinrun.registry._sink import RegistrySink

__all__ = [
    "APPLICATION_ID",
    "DDL",
    "SCHEMA_VERSION",
    "STALE_AFTER_S",
    "STATUSES",
    "CandidateRecord",
    "Comparability",
    "ConfigDifference",
    "CurveDifference",
    "MetricDifference",
    "MetricRow",
    "NotARegistryError",
    "Note",
    "PortableRun",
    "Provenance",
    "Registry",
    "RegistryError",
    "RegistryNotFoundError",
    "RegistryReadOnlyError",
    "RegistrySink",
    "RunDiff",
    "RunRecord",
    "RunSummary",
    "SchemaVersionError",
    "Sweep",
    "UnknownRunError",
    "UpgradeReport",
    "diff_runs",
    "flatten_config",
    "open_registry",
    "resolve_registry_path",
    "upgrade_registry",
]


def __getattr__(name: str) -> object:
    """``RegistrySink`` on first use: it imports the engine (and torch), which reading a registry needs not
    (``twinrun runs`` starts without torch)."""
    if name == "RegistrySink":
        from twinrun.registry._sink import RegistrySink

        return RegistrySink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
