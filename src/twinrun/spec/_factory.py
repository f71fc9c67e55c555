"""Factories: a callable plus the keyword arguments it will be called with.

An experiment names one factory per *role* (data, model, optimizer, ...).
Candidates override a factory's keyword arguments (``{"model.width": 256}``) or
replace the factory itself (``{"model": OtherNet}``). This module knows which
keyword arguments a factory accepts, so unknown keys are rejected with the list
of valid ones instead of failing deep inside training.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twinrun.errors import ConfigError

__all__ = ["ROLES", "Factory", "as_factory", "describe_callable", "factory", "import_object", "jsonable"]

#: The factory roles of an experiment and how twinrun calls each one.
ROLES: dict[str, str] = {
    "data": "fn(**kwargs) -> (train_dataset, val_dataset)",
    "model": "fn(**kwargs) -> torch.nn.Module",
    "optimizer": (
        "an Optimizer class: cls(model.parameters(), **kwargs); any other callable: fn(model, **kwargs) -> Optimizer"
    ),
    "scheduler": "fn(optimizer, **kwargs) -> LR scheduler, stepped once per training step",
    "loss": (
        "a class: cls(**kwargs) -> callable(outputs, targets); a function: fn(outputs, targets, **kwargs) -> scalar"
    ),
    "augment": (
        "a class: cls(**kwargs)(inputs, targets, generator=g); "
        "a function: fn(inputs, targets, *, generator, **kwargs) -> (inputs, targets)"
    ),
    "eval_augment": (
        "test-time augmentation, shared by every candidate, called like augment; "
        "the eval_passes setting says how many passes"
    ),
}

# Leading positional parameters twinrun fills in itself, per role, for plain functions.
_RESERVED_POSITIONAL = {"optimizer": 1, "scheduler": 1, "loss": 2, "augment": 2, "eval_augment": 2}
_RESERVED_NAMES = {"augment": {"generator"}, "eval_augment": {"generator"}}


@dataclass(frozen=True)
class Factory:
    """A callable and the keyword arguments twinrun will call it with.

    Build one with :func:`factory`. Factories are immutable: :meth:`with_kwargs`
    returns a new one.
    """

    fn: Callable[..., Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ConfigError(
                f"factory target {self.fn!r} is not callable",
                fix="pass a class or a function, e.g. twinrun.factory(MyNet, width=64)",
            )
        object.__setattr__(self, "kwargs", dict(self.kwargs))

    def with_kwargs(self, **kwargs: Any) -> Factory:
        """Return a copy whose keyword arguments are updated with ``kwargs``."""
        return Factory(self.fn, {**self.kwargs, **kwargs})

    @property
    def name(self) -> str:
        """``module:qualname`` of the callable, as shown in configs."""
        return describe_callable(self.fn)

    def to_config(self) -> dict[str, Any]:
        """A JSON-friendly description: the callable's name and its keyword arguments."""
        return {"factory": self.name, "kwargs": {k: _jsonable(v) for k, v in self.kwargs.items()}}

    def valid_keys(self, role: str) -> set[str] | None:
        """Keyword arguments this factory accepts in ``role``; ``None`` when any key is accepted."""
        return _accepted_keywords(self.fn, role)


def factory(fn: Callable[..., Any], /, **kwargs: Any) -> Factory:
    """Describe how to build one part of an experiment.

    Example:
        >>> import torch
        >>> opt = factory(torch.optim.AdamW, lr=3e-4, weight_decay=0.01)
        >>> opt.kwargs["lr"]
        0.0003
    """
    return Factory(fn, kwargs)


def as_factory(value: Any, *, role: str, where: str) -> Factory:
    """Coerce a user's value for ``role`` (a Factory, a callable, or ``"module:attr"``)."""
    if isinstance(value, Factory):
        return value
    if isinstance(value, str):
        return Factory(import_object(value, where=where))
    if callable(value):
        return Factory(value)
    raise ConfigError(
        f"{where}: {role} must be a callable or twinrun.factory(...), got {value!r}",
        fix=f"e.g. {role}=twinrun.factory(SomeClass, key=value)",
    )


def import_object(path: str, *, where: str) -> Any:
    """Import ``"package.module:attribute"`` (or ``"package.module.attribute"``)."""
    module_name, _, attr = path.partition(":")
    if not attr:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(
            f"{where}: cannot import {path!r}",
            fix="write the object as 'package.module:attribute'",
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"{where}: cannot import {path!r}: {exc}",
            fix="check the spelling and that the module is importable (pip install it, or fix PYTHONPATH)",
        ) from exc
    return obj


def describe_callable(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{qualname}"


def _accepted_keywords(fn: Callable[..., Any], role: str) -> set[str] | None:
    """The keywords ``fn`` accepts in ``role`` (``None``: any); the answer for a hashable ``fn`` is kept (a run
    asks it for every candidate and role, and ``inspect.signature`` takes ~100 us)."""
    try:
        keys = _keywords_of(fn, role)
    except TypeError:  # an unhashable callable: asked anew
        return _keywords(fn, role)
    return None if keys is None else set(keys)


@functools.lru_cache(maxsize=512)
def _keywords_of(fn: Callable[..., Any], role: str) -> frozenset[str] | None:
    keys = _keywords(fn, role)
    return None if keys is None else frozenset(keys)


def _keywords(fn: Callable[..., Any], role: str) -> set[str] | None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # builtins without a signature: accept anything
    params = list(signature.parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    skip = (
        0 if inspect.isclass(fn) and role in ("loss", "augment", "eval_augment") else _RESERVED_POSITIONAL.get(role, 0)
    )
    reserved = _RESERVED_NAMES.get(role, set()) if not inspect.isclass(fn) else set()
    keys: set[str] = set()
    for index, p in enumerate(params):
        if index < skip and p.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            continue
        keyword = p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        if keyword and p.name not in reserved:
            keys.add(p.name)
    return keys


def parameter_default(fn: Callable[..., Any], key: str) -> Any:
    """The signature default of ``key`` in ``fn``, or ``inspect.Parameter.empty``."""
    try:
        return inspect.signature(fn).parameters[key].default
    except (TypeError, ValueError, KeyError):
        return inspect.Parameter.empty


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Factory):
        return value.to_config()
    if callable(value):
        return describe_callable(value)
    return repr(value)


jsonable = _jsonable
