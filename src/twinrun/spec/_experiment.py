"""The experiment: factories, candidates and settings, as one immutable value."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from twinrun._names import check_name
from twinrun.errors import ConfigError
from twinrun.spec._factory import Factory, as_factory
from twinrun.spec._metrics import Metric
from twinrun.spec._settings import Settings

__all__ = ["Experiment", "ExperimentSource", "FactoryLike"]

FactoryLike = Factory | Callable[..., Any] | str

_S = Settings  # defaults below come from Settings, the single source of truth


@dataclass(frozen=True)
class ExperimentSource:
    """Where an experiment was loaded from: the file, its hash and its text."""

    path: str
    sha256: str
    text: str


@dataclass(frozen=True)
class Experiment:
    """A comparison of candidates that share data, batches, augmentation and seed.

    Args:
        name: a short name, used for folders and the run registry.
        data: ``fn(**kw) -> (train, val)``; each a map-style dataset of
            ``(input, target)`` pairs or a tuple ``(inputs, targets)`` of tensors.
        model: ``fn(**kw) -> nn.Module``.
        optimizer: an optimizer class (called with ``model.parameters()``) or
            ``fn(model, **kw) -> Optimizer``.
        loss: a loss class (``nn.CrossEntropyLoss``) or ``fn(outputs, targets, **kw)``.
        candidates: name -> overrides. An override is ``"role.key": value`` to
            change one keyword argument (``{"model.width": 256}``) or
            ``"role": factory`` to replace a whole factory. The first candidate is
            the reference unless another is chosen.
        scheduler: optional ``fn(optimizer, **kw)``, stepped once per training step.
        augment: optional ``fn(inputs, targets, *, generator, **kw) -> (inputs, targets)``,
            applied once per batch and shared by every candidate with the same augmentation.
        loader: optional ``fn(train_dataset, *, batch_sampler, generator, **kw)`` returning
            an iterable of ``(inputs, targets)`` batches, typically
            ``twinrun.factory(torch.utils.data.DataLoader, num_workers=4,
            worker_init_fn=..., persistent_workers=True)``: training batches are read
            through it (workers, ``worker_init_fn``, pinned memory...), with the same
            examples per step as without it; exact resume replays the data (see
            :mod:`twinrun.engine._loader`).
        metrics: name -> :class:`Metric` (per-example, with a direction).
        steps, batch_size, eval_every, eval_batch_size, eval_batches, eval_passes, monitor, baselines, select_by,
        patience, seed, device, devices, grad_clip,
        output, output_key, batch_dim, share_init, deterministic, ledger_every, checkpoint_every, executor,
        memory_budget, data_parallel: shared
            settings, see :class:`~twinrun.spec.Settings`.
        search: the search space of ``twinrun search``: override key -> distribution
            (``twinrun.search.loguniform(1e-4, 1e-2)``, ``choice([64, 128])``...).
        reference_scores: declared scores shown beside the baselines (a human level, a paper's
            number), by metric: ``{"accuracy": 0.98}``.
        replicas: how many replicas ``twinrun compare`` trains by default (``--replicas``):
            replica ``r`` is the run with seed ``seed + r``, shared by every candidate.
        check_options: options of ``twinrun check`` that the experiment cannot express
            otherwise, by check name: ``{"causality": {"time_dim": 1}}``. Validated by
            :mod:`twinrun.checks` (``twinrun check --list`` shows every option).
    """

    name: str
    data: FactoryLike
    model: FactoryLike
    optimizer: FactoryLike
    loss: FactoryLike
    candidates: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: {"base": {}})
    scheduler: FactoryLike | None = None
    augment: FactoryLike | None = None
    loader: FactoryLike | None = None
    eval_augment: FactoryLike | None = None
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    description: str = ""
    steps: int = _S.steps
    batch_size: int = _S.batch_size
    eval_every: int = _S.eval_every
    eval_batch_size: int = _S.eval_batch_size
    eval_batches: int | None = _S.eval_batches
    eval_passes: int = _S.eval_passes
    monitor: bool = _S.monitor
    baselines: bool = _S.baselines
    select_by: str | None = _S.select_by
    patience: int | None = _S.patience
    seed: int = _S.seed
    device: str = _S.device
    devices: str | Sequence[str] | Mapping[str, str] | None = _S.devices
    grad_clip: float | None = _S.grad_clip
    output: str = _S.output
    output_key: str | int = _S.output_key
    batch_dim: int = _S.batch_dim
    share_init: bool | Mapping[str, bool | Sequence[str]] = _S.share_init
    deterministic: bool = _S.deterministic
    ledger_every: int | None = _S.ledger_every
    checkpoint_every: int | None = _S.checkpoint_every
    executor: str = _S.executor
    memory_budget: int | str = _S.memory_budget
    data_parallel: str = _S.data_parallel
    check_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    replicas: int = 1
    reference_scores: Mapping[str, float] = field(default_factory=dict)
    search: Mapping[str, Any] = field(default_factory=dict)
    source: ExperimentSource | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        where = f"experiment {self.name!r}"
        check_name(self.name, "experiment name")
        for role in ("data", "model", "optimizer", "loss"):
            value = getattr(self, role)
            if value is None:
                raise ConfigError(f"{where}: the {role} factory is missing", fix=f"pass {role}=...")
            object.__setattr__(self, role, as_factory(value, role=role, where=where))
        for role in ("scheduler", "augment", "loader", "eval_augment"):
            value = getattr(self, role)
            if value is not None:
                object.__setattr__(self, role, as_factory(value, role=role, where=where))
        self._check_candidates(where)
        self._check_metrics(where)
        self._check_check_options(where)
        known = {"loss", *self.metrics}
        for key, value in dict(self.reference_scores).items():
            if key not in known or isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(
                    f"{where}: reference_scores[{key!r}] = {value!r}: a declared score is a number for loss "
                    "or one of the metrics",
                    fix=f"e.g. reference_scores={{'{next(iter(self.metrics), 'loss')}': 0.98}}; metrics: "
                    f"{', '.join(sorted(known))}",
                )
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int) or self.replicas < 1:
            raise ConfigError(
                f"{where}: replicas={self.replicas!r} must be a whole number >= 1",
                fix="replicas=4 (or 1 for a single run)",
            )
        self.settings  # validates every setting  # noqa: B018

    @property
    def settings(self) -> Settings:
        """The shared settings of this experiment."""
        names = [f.name for f in dataclasses.fields(Settings)]
        return Settings(**{n: getattr(self, n) for n in names})

    @property
    def candidate_names(self) -> tuple[str, ...]:
        return tuple(self.candidates)

    def replace(self, **changes: Any) -> Experiment:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def _check_candidates(self, where: str) -> None:
        if not isinstance(self.candidates, Mapping) or not self.candidates:
            raise ConfigError(
                f"{where}: candidates must be a non-empty mapping name -> overrides",
                fix='e.g. candidates={"small": {"model.width": 64}, "wide": {"model.width": 256}}',
            )
        for name, overrides in self.candidates.items():
            check_name(name, f"{where}: candidate name")
            if not isinstance(overrides, Mapping):
                raise ConfigError(
                    f"{where}: candidate {name!r} must map override keys to values, got {overrides!r}",
                    fix='e.g. {"model.width": 256} or {} for the base configuration',
                )
        object.__setattr__(self, "candidates", {k: dict(v) for k, v in self.candidates.items()})

    def _check_check_options(self, where: str) -> None:
        # Only the shape is checked here; names and keys are validated by twinrun.checks.
        if not isinstance(self.check_options, Mapping) or not all(
            isinstance(k, str) and isinstance(v, Mapping) for k, v in self.check_options.items()
        ):
            raise ConfigError(
                f"{where}: check_options must map check names to option mappings, got {self.check_options!r}",
                fix='e.g. check_options={"causality": {"time_dim": 1}}',
            )
        object.__setattr__(self, "check_options", {k: dict(v) for k, v in self.check_options.items()})

    def _check_metrics(self, where: str) -> None:
        for name, metric in self.metrics.items():
            if name == "loss":
                raise ConfigError(f"{where}: metric name 'loss' is reserved for the loss")
            if not isinstance(metric, Metric):
                raise ConfigError(
                    f"{where}: metric {name!r} is {metric!r}, not a twinrun.Metric",
                    fix=f"wrap it with its direction: twinrun.Metric({getattr(metric, '__name__', name)},"
                    " higher_is_better=True)",
                )
        object.__setattr__(self, "metrics", dict(self.metrics))
