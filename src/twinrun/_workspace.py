"""Whether and where a run is recorded: one rule for every entry point.

The ``registry`` argument of :func:`twinrun.compare`, :func:`twinrun.check`,
``run_check``, :func:`~twinrun.sweeps.run_sweep`, ``analyze_sweep``,
``load_sweep``, the Lightning and Hugging Face callbacks and ``RegistrySink``
means the same everywhere:

* ``True`` or ``None`` (the default): ``<home>/registry.sqlite``, where ``home`` is
  the ``home`` argument, else ``$TWINRUN_HOME``, else ``./.twinrun``;
* a path: that registry file (or a folder holding ``registry.sqlite``);
* an open :class:`~twinrun.registry.Registry`: that one (left open);
* ``False``: nothing is recorded; refused, with the reason, where a registry is
  needed (a sweep keeps its seeds' runs there).

Packages that record a run without owning the registry (the checks) take what they
need from here: the rule, and :class:`~twinrun.registry.Provenance`, what a run records
of where it came from.
"""

from __future__ import annotations

import os
from pathlib import Path

from twinrun.errors import ConfigError
from twinrun.registry import Provenance, Registry, resolve_registry_path

__all__ = ["Provenance", "RegistryChoice", "chosen_registry", "chosen_registry_path"]

RegistryChoice = Registry | str | os.PathLike[str] | bool | None


def chosen_registry_path(registry: RegistryChoice, home: str | Path | None, *, needed_by: str) -> Path:
    """The registry file ``registry`` names; ``needed_by`` says who cannot do without one (for the error)."""
    if registry is False:
        raise ConfigError(
            f"{needed_by} records its runs in a registry; registry=False records nothing",
            fix="pass registry=True (the default: <home>/registry.sqlite) or a path",
        )
    if isinstance(registry, Registry):
        return registry.path
    if registry is True or registry is None:
        return resolve_registry_path(None, home=home)
    return resolve_registry_path(Path(registry), home=home)


def chosen_registry(registry: RegistryChoice, home: str | Path | None) -> Registry | None:
    """The registry ``registry`` names, opened (``None``: nothing is recorded). Opening it first makes a bad
    registry fail before anything runs; an open ``Registry`` given is handed back, for the caller to keep open."""
    if registry is False:
        return None
    if isinstance(registry, Registry):
        return registry
    return Registry.open(chosen_registry_path(registry, home, needed_by="recording"))
