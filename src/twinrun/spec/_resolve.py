"""Resolve an experiment and its overrides into one exact config per candidate.

Override keys, from the experiment's candidates or from ``--set key=value``:

==========================  =====================================================
``steps``                   a shared setting (see ``Settings``)
``model.width``             a keyword argument of a factory, for every candidate
``model``                   replace a whole factory (value: callable or "pkg.mod:Name")
``wide:model.width``        the same, for candidate ``wide`` only (CLI)
``data.n_samples``          a keyword argument of the shared data factory
==========================  =====================================================

Precedence, lowest first: the experiment's factories, ``--set`` for all
candidates, the candidate's own overrides, ``--set NAME:key`` for one candidate.
When a candidate's own override shadows a ``--set`` for all, a warning says so.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from twinrun.errors import ConfigError
from twinrun.spec._experiment import Experiment, ExperimentSource
from twinrun.spec._factory import Factory, as_factory, jsonable, parameter_default
from twinrun.spec._metrics import Metric
from twinrun.spec._overrides import parse_overrides
from twinrun.spec._settings import Settings, coerce_setting

__all__ = [
    "CANDIDATE_ROLES",
    "CandidateSpec",
    "ResolvedExperiment",
    "parse_overrides",
    "resolve",
]

#: Roles a candidate may override; ``data`` is shared by construction.
CANDIDATE_ROLES = ("model", "optimizer", "scheduler", "loss", "augment")
_SETTING_NAMES = tuple(f.name for f in dataclasses.fields(Settings))


@dataclass(frozen=True)
class CandidateSpec:
    """The exact factories one candidate is built from."""

    name: str
    model: Factory
    optimizer: Factory
    loss: Factory
    scheduler: Factory | None
    augment: Factory | None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    #: a batch size of its own (``{"batch_size": 64}`` on the candidate); None: the run's
    batch_size: int | None = None

    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for role in CANDIDATE_ROLES:
            f = getattr(self, role)
            config[role] = None if f is None else f.to_config()
        if self.batch_size is not None:
            config["batch_size"] = self.batch_size
        config["overrides"] = {k: jsonable(v) for k, v in self.overrides.items()}
        return config

    @functools.cached_property  # read for every candidate at every step; the spec is frozen
    def augment_key(self) -> str:
        """Candidates with equal keys share one augmented batch per step (its batch size is part of it)."""
        key = "none" if self.augment is None else json.dumps(self.augment.to_config(), sort_keys=True)
        return key if self.batch_size is None else f"{key}|batch_size={self.batch_size}"


@dataclass(frozen=True)
class ResolvedExperiment:
    """An experiment with every override applied: what a run actually trains."""

    name: str
    settings: Settings
    data: Factory
    metrics: Mapping[str, Metric]
    candidates: Mapping[str, CandidateSpec]
    declared: Mapping[str, CandidateSpec]
    reference: str
    overrides: Mapping[str, Any]
    warnings: tuple[str, ...] = ()
    source: ExperimentSource | None = None
    description: str = ""
    loader: Factory | None = None
    eval_augment: Factory | None = None
    reference_scores: Mapping[str, float] = field(default_factory=dict)

    def to_config(self) -> dict[str, Any]:
        """The fully resolved config, JSON-serialisable; saved with every run."""
        return {
            "experiment": self.name,
            "settings": self.settings.to_config(),
            "data": self.data.to_config(),
            **({"loader": self.loader.to_config()} if self.loader is not None else {}),
            **({"eval_augment": self.eval_augment.to_config()} if self.eval_augment is not None else {}),
            "metrics": {
                name: {"fn": jsonable(m.fn), "higher_is_better": m.higher_is_better} for name, m in self.metrics.items()
            },
            "reference": self.reference,
            "candidates": {name: c.to_config() for name, c in self.candidates.items()},
            "overrides": {k: jsonable(v) for k, v in self.overrides.items()},
        }

    def config_hash(self) -> str:
        """A short stable hash of :meth:`to_config` (identifies the exact configuration)."""
        text = json.dumps(self.to_config(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve(
    experiment: Experiment,
    overrides: Mapping[str, Any] | None = None,
    *,
    candidates: Sequence[str] | None = None,
    reference: str | None = None,
) -> ResolvedExperiment:
    """Apply ``overrides`` and select ``candidates`` (default: all, in declared order)."""
    overrides = dict(overrides or {})
    declared_names = list(experiment.candidates)
    settings_changes: dict[str, Any] = {}
    data = experiment.data
    assert isinstance(data, Factory)
    loader = experiment.loader
    assert loader is None or isinstance(loader, Factory)
    shared: dict[str, Factory | None] = {"loader": loader, "eval_augment": experiment.eval_augment}  # type: ignore[dict-item]
    base: dict[str, Factory | None] = {r: getattr(experiment, r) for r in CANDIDATE_ROLES}
    global_kwargs: dict[str, dict[str, Any]] = {r: {} for r in CANDIDATE_ROLES}
    scoped: dict[str, dict[str, Any]] = {n: {} for n in declared_names}

    for key, value in overrides.items():
        scope, colon, bare = key.rpartition(":")
        if colon:
            if scope not in experiment.candidates:
                raise ConfigError(
                    f"override {key!r} names candidate {scope!r}, which is not in experiment {experiment.name!r}",
                    fix=f"candidates are: {', '.join(declared_names)}",
                )
            scoped[scope][bare] = value
            continue
        role, dot, kw = key.partition(".")
        if not dot and key in _SETTING_NAMES:
            settings_changes[key] = coerce_setting(key, value)
        elif role == "data":
            if not dot:
                data = as_factory(value, role="data", where=f"override {key!r}")
            else:
                _check_key(data, "data", kw, where=f"override {key!r}")
                data = data.with_kwargs(**{kw: _coerce(data, kw, value, f"override {key!r}")})
        elif role in shared:
            f = shared[role]
            if not dot:
                shared[role] = None if value is None else as_factory(value, role=role, where=f"override {key!r}")
            elif f is None:
                raise ConfigError(
                    f"override {key!r}: experiment {experiment.name!r} has no {role}",
                    fix=f"set {role}=twinrun.factory(...) on the experiment first",
                )
            else:
                _check_key(f, role, kw, where=f"override {key!r}")
                shared[role] = f.with_kwargs(**{kw: _coerce(f, kw, value, f"override {key!r}")})
        elif role in CANDIDATE_ROLES and not dot:
            base[role] = None if value is None else as_factory(value, role=role, where=f"override {key!r}")
            global_kwargs[role] = {}
        elif role in CANDIDATE_ROLES:
            global_kwargs[role][kw] = value
        else:
            raise ConfigError(
                f"unknown override key {key!r} in experiment {experiment.name!r}",
                fix="valid keys: " + ", ".join(_valid_keys(experiment)),
            )

    warnings: list[str] = []
    declared: dict[str, CandidateSpec] = {}
    unused_global = {(r, k) for r in CANDIDATE_ROLES for k in global_kwargs[r]}
    for name in declared_names:
        spec, used = _build_candidate(name, base, global_kwargs, experiment.candidates[name], scoped[name], warnings)
        unused_global -= used
        declared[name] = spec
    for role, kw in sorted(unused_global):
        factory = base[role]
        valid = sorted(factory.valid_keys(role) or []) if factory else []
        raise ConfigError(
            f"override {role}.{kw!r} applies to no candidate of experiment {experiment.name!r}",
            fix=f"valid {role} keys: {', '.join(valid) or '(none)'}",
        )

    selected = _select(declared, candidates, experiment.name)
    ref = reference or next(iter(selected))
    if ref not in selected:
        raise ConfigError(
            f"reference candidate {ref!r} is not among the candidates run",
            fix=f"choose one of: {', '.join(selected)}",
        )
    settings = dataclasses.replace(experiment.settings, **settings_changes)
    selected = {
        n: dataclasses.replace(c, batch_size=None) if c.batch_size == settings.batch_size else c
        for n, c in selected.items()
    }
    own_sizes = {n: c.batch_size for n, c in selected.items() if c.batch_size is not None}
    if own_sizes:
        warnings.append(
            "candidates with a batch size of their own ("
            + ", ".join(f"{n} {b}" for n, b in own_sizes.items())
            + f"; the others {settings.batch_size}) no longer train on the same batches: each takes the same "
            "order of examples, cut into batches of its size, so a difference includes the batches' "
            "composition and the number of examples per step (steps are updates); the per-step "
            "training-loss difference is not paired on shared batches for them"
        )
    from twinrun.spec._ladder import one_change_warnings  # it builds on this module

    warnings += one_change_warnings(selected, ref)
    return ResolvedExperiment(
        name=experiment.name,
        settings=settings,
        data=data,
        loader=shared["loader"],
        eval_augment=shared["eval_augment"],
        reference_scores=dict(experiment.reference_scores),
        metrics=dict(experiment.metrics),
        candidates=selected,
        declared=declared,
        reference=ref,
        overrides=overrides,
        warnings=tuple(warnings),
        source=experiment.source,
        description=experiment.description,
    )


def _build_candidate(
    name: str,
    base: Mapping[str, Factory | None],
    global_kwargs: Mapping[str, Mapping[str, Any]],
    own: Mapping[str, Any],
    scoped: Mapping[str, Any],
    warnings: list[str],
) -> tuple[CandidateSpec, set[tuple[str, str]]]:
    factories = dict(base)
    used: set[tuple[str, str]] = set()
    batch_size = scoped.get("batch_size", own.get("batch_size"))
    if batch_size is not None:
        coerce_setting("batch_size", batch_size)
    for layer_name, layer in (("candidate", own), ("--set", scoped)):
        for key in layer:
            role, dot, _ = key.partition(".")
            where = f"candidate {name!r}, override {key!r}"
            if key == "batch_size":
                continue  # a batch size of its own: the one setting a candidate may have
            if key in _SETTING_NAMES:
                raise ConfigError(
                    f"{where}: {key} is a setting shared by all candidates",
                    fix=f"set it on the experiment or with --set {key}=...",
                )
            if role in ("data", "loader", "eval_augment"):
                raise ConfigError(
                    f"{where}: candidates share the data, its loader and the test-time augmentation, so "
                    f"{role} cannot be "
                    "overridden per candidate",
                    fix="compare data variants as an augmentation, or in separate experiments",
                )
            if role not in CANDIDATE_ROLES:
                raise ConfigError(
                    f"{where}: unknown role {role!r}",
                    fix=f"override one of: {', '.join(CANDIDATE_ROLES)} (as role or role.key)",
                )
            if not dot:
                value = layer[key]
                factories[role] = None if value is None else as_factory(value, role=role, where=where)
        if layer_name == "candidate":
            # --set for all candidates sits between the experiment and the candidate's own keys
            for role, kwargs in global_kwargs.items():
                f = factories[role]
                if f is None:
                    continue
                valid = f.valid_keys(role)
                for kw, value in kwargs.items():
                    if valid is not None and kw not in valid:
                        continue
                    if f"{role}.{kw}" in own:
                        warnings.append(
                            f"--set {role}.{kw}={value!r} does not apply to candidate {name!r}, "
                            f"which sets {role}.{kw}={own[f'{role}.{kw}']!r}; "
                            f"use --set {name}:{role}.{kw}=... to change it"
                        )
                        used.add((role, kw))
                        continue
                    f = f.with_kwargs(**{kw: _coerce(f, kw, value, f"--set {role}.{kw}")})
                    used.add((role, kw))
                factories[role] = f
        for key, value in layer.items():
            role, dot, kw = key.partition(".")
            if not dot:
                continue
            f = factories[role]
            where = f"candidate {name!r}, override {key!r}"
            if f is None:
                raise ConfigError(
                    f"{where}: the candidate has no {role}",
                    fix=f"give it one first: {{'{role}': twinrun.factory(...)}}",
                )
            _check_key(f, role, kw, where=where)
            factories[role] = f.with_kwargs(**{kw: _coerce(f, kw, value, where)})
    for role in ("model", "optimizer", "loss"):
        if factories[role] is None:
            raise ConfigError(f"candidate {name!r}: the {role} factory is missing")
    spec = CandidateSpec(
        name=name,
        model=factories["model"],  # type: ignore[arg-type]
        optimizer=factories["optimizer"],  # type: ignore[arg-type]
        loss=factories["loss"],  # type: ignore[arg-type]
        scheduler=factories["scheduler"],
        augment=factories["augment"],
        overrides={**own, **scoped},
        batch_size=batch_size,
    )
    return spec, used


def _select(
    declared: Mapping[str, CandidateSpec], names: Sequence[str] | None, experiment: str
) -> dict[str, CandidateSpec]:
    if names is None:
        return dict(declared)
    if not names:
        raise ConfigError("no candidate selected", fix=f"choose from: {', '.join(declared)}")
    missing = [n for n in names if n not in declared]
    if missing:
        raise ConfigError(
            f"candidate {missing[0]!r} is not in experiment {experiment!r}",
            fix=f"choose from: {', '.join(declared)}",
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"candidates {list(names)} name one candidate twice")
    return {n: declared[n] for n in declared if n in names}


def _check_key(f: Factory, role: str, key: str, *, where: str) -> None:
    valid = f.valid_keys(role)
    if valid is not None and key not in valid:
        raise ConfigError(
            f"{where}: {f.name} takes no keyword argument {key!r}",
            fix=f"valid {role} keys: {', '.join(sorted(valid)) or '(none)'}",
        )


def _coerce(f: Factory, key: str, value: Any, where: str) -> Any:
    """Check a new value against the type of the current value or signature default."""
    current = f.kwargs.get(key, parameter_default(f.fn, key))
    if current is inspect.Parameter.empty or current is None or value is None:
        return value
    if isinstance(current, bool):
        ok = isinstance(value, bool)
    elif isinstance(current, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(current, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
    elif isinstance(current, str):
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise ConfigError(
            f"{where}: {key}={value!r} is a {type(value).__name__}, but {f.name} expects a "
            f"{type(current).__name__} (currently {current!r})",
            fix=f"give {key} a {type(current).__name__} value",
        )
    return value


def _valid_keys(experiment: Experiment) -> list[str]:
    keys = list(_SETTING_NAMES)
    for role in ("data", "loader", "eval_augment", *CANDIDATE_ROLES):
        f = getattr(experiment, role)
        if role in ("loader", "eval_augment") and f is None:
            continue
        keys.append(role)
        if isinstance(f, Factory):
            valid = f.valid_keys(role)
            keys.extend(f"{role}.{k}" for k in sorted(valid or []))
    keys.append("NAME:role.key (one candidate)")
    return keys
