"""Checks by short stable name, their options, and the validation of user options.

A check is a function ``fn(ctx, options) -> CheckResult`` plus the options it
understands. Options come from ``Experiment(check_options=...)``, from the
Python API and from the command line (``--check-option causality.time_dim=1``);
unknown check names, unknown keys and badly typed values are rejected here with
the list of what is valid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twinrun.errors import ConfigError

if TYPE_CHECKING:
    from twinrun.checks._context import CheckContext
    from twinrun.checks._result import CheckResult

__all__ = ["Check", "Option", "select_checks", "validate_options"]


@dataclass(frozen=True)
class Option:
    """One option of a check: its default, the types it accepts and what it does."""

    default: Any
    help: str
    types: tuple[type, ...] = ()
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    callable_ok: bool = False

    def coerce(self, check: str, key: str, value: Any) -> Any:
        where = f"check option {check}.{key}={value!r}"
        if value is None and (self.nullable or self.default is None):
            return None
        if self.callable_ok and (callable(value) or isinstance(value, str)):
            return value
        if self.choices:
            if value not in self.choices:
                raise ConfigError(f"{where} is not allowed", fix=f"choose one of: {', '.join(map(str, self.choices))}")
            return value
        types = self.types or (type(self.default),)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if list in types and isinstance(value, (tuple, str)):
            value = [value] if isinstance(value, str) else list(value)
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            names = " or ".join(getattr(t, "__name__", str(t)) for t in types)
            raise ConfigError(f"{where} must be a {names}", fix=f"{key}: {self.help}")
        return value


@dataclass(frozen=True)
class Check:
    """A check: short stable name, one-line title, the function and its options."""

    name: str
    title: str
    fn: Callable[[CheckContext, Mapping[str, Any]], CheckResult]
    options: Mapping[str, Option] = field(default_factory=dict)
    #: work started when the suite starts, collected by ``fn`` (a check that waits on child processes)
    start: Callable[[CheckContext, Mapping[str, Any]], None] | None = None

    def defaults(self) -> dict[str, Any]:
        return {k: o.default for k, o in self.options.items()}


def _registry() -> dict[str, Check]:
    from twinrun.checks import _checklist

    return {c.name: c for c in _checklist.CHECKS}


def check_names() -> list[str]:
    """Every check's name, in the order the suite runs them."""
    return list(_registry())


def get_check(name: str) -> Check:
    registry = _registry()
    if name not in registry:
        raise ConfigError(f"there is no check named {name!r}", fix="valid checks: " + ", ".join(registry))
    return registry[name]


def _names(value: Iterable[str] | str | None, what: str) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    items = [v for v in items if v]
    valid = check_names()
    unknown = [v for v in items if v not in valid]
    if unknown:
        raise ConfigError(
            f"{what} names unknown check(s): {', '.join(unknown)}", fix="valid checks: " + ", ".join(valid)
        )
    return items


def select_checks(only: Iterable[str] | str | None = None, skip: Iterable[str] | str | None = None) -> list[Check]:
    """The checks to run, in suite order: ``only`` (default: all) minus ``skip``."""
    wanted = _names(only, "--only")
    unwanted = set(_names(skip, "--skip") or [])
    selected = [c for c in _registry().values() if (wanted is None or c.name in wanted) and c.name not in unwanted]
    if not selected:
        raise ConfigError("--only/--skip leave no check to run", fix="valid checks: " + ", ".join(check_names()))
    return selected


def validate_options(options: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Every check's options: its defaults updated with ``options`` (validated)."""
    registry = _registry()
    merged = {name: check.defaults() for name, check in registry.items()}
    if options is None:
        return merged
    if not isinstance(options, Mapping):
        raise ConfigError(
            f"check options must map check names to option mappings, got {options!r}",
            fix='e.g. {"causality": {"time_dim": 1}}',
        )
    for name, values in options.items():
        if name not in registry:
            raise ConfigError(f"check options name unknown check {name!r}", fix="valid checks: " + ", ".join(registry))
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"check options for {name!r} must be a mapping, got {values!r}",
                fix=f'e.g. {{"{name}": {{"key": value}}}}',
            )
        check = registry[name]
        for key, value in values.items():
            if key not in check.options:
                valid = ", ".join(check.options) or "(it has no options)"
                raise ConfigError(f"check {name!r} has no option {key!r}", fix=f"options of {name}: {valid}")
            merged[name][key] = check.options[key].coerce(name, key, value)
    return merged


def parse_check_options(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Parse ``["causality.time_dim=1", "param_updates.frozen=['embed.*']"]`` (values are literals)."""
    from twinrun.spec import parse_overrides

    result: dict[str, dict[str, Any]] = {}
    for key, value in parse_overrides(list(items)).items():
        name, dot, option = key.partition(".")
        if not dot or not option:
            raise ConfigError(
                f"check option {key!r} is not of the form CHECK.KEY=VALUE",
                fix="e.g. --check-option causality.time_dim=1",
            )
        result.setdefault(name, {})[option] = value
    return result
