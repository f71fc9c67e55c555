"""The two ways in: an experiment file (``check``) or a user's own pieces (``run_checks``).

Both build a :class:`~twinrun.engine.TwinEngine` for one candidate, so the
model, optimizer, scheduler, loss, augmentation and batches checked are exactly
those a run trains, then run the selected checks on copies. Objects passed in
(a model, an optimizer, a scheduler) are copied and never changed, with one
exception asked for by name: ``loss_at_init``'s ``apply_bias`` sets the final
bias of a model object you passed.
"""

from __future__ import annotations

import difflib
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from twinrun._atomic import write_json
from twinrun._home import runs_dir, twinrun_home
from twinrun.checks._clone import SteppedEvery, copy_optimizer_onto, copy_scheduler_onto
from twinrun.checks._context import CheckContext
from twinrun.checks._record import RegistryLike, open_for_checks, record_report
from twinrun.checks._registry import Check, select_checks, validate_options
from twinrun.checks._result import CheckReport
from twinrun.checks._runner import run_suite
from twinrun.engine import TwinEngine, new_run_id
from twinrun.errors import BuildError, ConfigError
from twinrun.spec import SETTING_HELP, Experiment, load_experiment, resolve

if TYPE_CHECKING:
    from twinrun.registry import Registry

__all__ = ["check", "merge_options", "run_checks"]

Names = Iterable[str] | str | None


def merge_options(*layers: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Check options from several sources, later ones winning key by key."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for name, values in (layer or {}).items():
            if not isinstance(values, Mapping):
                raise ConfigError(
                    f"check options for {name!r} must be a mapping, got {values!r}",
                    fix=f'e.g. {{"{name}": {{"key": value}}}}',
                )
            merged.setdefault(name, {}).update(values)
    return merged


def check(
    experiment: Experiment | str | Path,
    candidate: str | None = None,
    *,
    only: Names = None,
    skip: Names = None,
    overrides: Mapping[str, Any] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    outdir: str | Path | None = None,
    home: str | Path | None = None,
    progress: bool | None = False,
    registry: RegistryLike = True,
    logdir: str | Path | None = None,
) -> CheckReport:
    """Run the training-recipe checks on one candidate of an experiment.

    Args:
        experiment: an :class:`Experiment` or the path of a file defining one.
        candidate: the candidate to check (default: the first declared).
        only, skip: check names (a list or ``"a,b"``) to run / leave out.
        overrides: ``--set``-style overrides (``{"steps": 100, "optimizer.lr": 1e-3}``).
        options: check options, on top of the experiment's ``check_options``.
        outdir: folder for figures and ``checks.json`` (default: a new run folder's ``checks/``).
        home: twinrun's folder (default ``$TWINRUN_HOME`` or ``./.twinrun``).
        progress: a progress bar on stderr (``None``: only on a terminal).
        registry: where the report is recorded (a run tagged ``check``): ``True`` or ``None`` (default)
            ``<home>/registry.sqlite``, a path or an open ``Registry``; ``False``: nowhere.
        logdir: a TensorBoard folder for the checks' figures and verdicts (``"default"``:
            ``<home>/tb/<experiment>-checks-<run>``; ``None``: none).

    Returns:
        a :class:`CheckReport`; ``report.failed`` is True when a check failed.
    """
    started = time.perf_counter()
    store = open_for_checks(registry, home)
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    name = candidate or next(iter(exp.candidates))
    if name not in exp.candidates:
        raise ConfigError(
            f"candidate {name!r} is not in experiment {exp.name!r}", fix=f"choose one of: {', '.join(exp.candidates)}"
        )
    validated = validate_options(merge_options(exp.check_options, options))
    selected = select_checks(only, skip)
    resolved = resolve(exp, overrides, candidates=[name])
    run_id = new_run_id()
    folder = Path(outdir) if outdir is not None else runs_dir(twinrun_home(home)) / run_id / "checks"
    engine = TwinEngine(resolved, run_id=run_id, measure_memory=False)
    ctx = CheckContext(engine, name, outdir=folder, overrides=overrides)
    board = _logdir(logdir, home, exp.name, run_id)
    return produce_report(
        ctx,
        selected,
        validated,
        progress=progress,
        setup_seconds=time.perf_counter() - started,
        registry=store,
        logdir=board,
    )


#: The settings ``run_checks`` took as keywords before ``settings=`` (still accepted, with a warning).
_OLD_SETTING_KEYWORDS = ("steps", "batch_size", "eval_batch_size", "seed", "device", "grad_clip", "output", "batch_dim")


def run_checks(
    *,
    model: nn.Module | Any,
    train: Any,
    val: Any,
    loss: Any,
    optimizer: torch.optim.Optimizer | Any,
    scheduler: Any = None,
    scheduler_every: int = 1,
    augment: Any = None,
    settings: Mapping[str, Any] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    only: Names = None,
    skip: Names = None,
    outdir: str | Path | None = None,
    home: str | Path | None = None,
    progress: bool | None = False,
    name: str = "checks",
    registry: RegistryLike = True,
    **legacy: Any,
) -> CheckReport:
    """Run the training-recipe checks on your own pieces, without an experiment file.

    Args:
        model: an ``nn.Module`` (copied, never changed) or a factory ``fn() -> nn.Module``.
        train, val: a map-style dataset of ``(input, target)``, a tuple ``(inputs, targets)``
            of tensors, or a ``DataLoader`` (its dataset, batch size and worker settings are used).
        loss: a loss class, object or function ``fn(outputs, targets)``.
        optimizer: an optimizer object built on ``model`` (copied with its state), an optimizer
            class, or ``fn(model) -> Optimizer``.
        scheduler: ``None``, a scheduler object built on ``optimizer`` (copied), or
            ``fn(optimizer) -> scheduler``; stepped once per update, or once every ``scheduler_every``
            updates (a scheduler meant per epoch: the batches per epoch).
        augment: ``fn(inputs, targets, *, generator) -> (inputs, targets)``, applied per batch.
        settings: any setting of an experiment, checked as an experiment checks it
            (``twinrun.spec.SETTING_HELP``; unknown names are refused): ``steps`` (the planned
            updates, over which the schedule is simulated; default 200), ``batch_size`` (default:
            the DataLoader's, else 32), ``seed``, ``device``, ``grad_clip``, ``batch_dim`` (1 for a
            sequence-first model taking ``(time, batch, ...)`` tensors; the data stays batch-first)...
        options: check options by check name, e.g. ``{"causality": {"time_dim": 1}}``.
        only, skip, outdir, home, progress, registry: as for :func:`check`.
        name: the name the run is recorded under.
        legacy: ``steps=``, ``batch_size=``... as keywords, the old spelling of ``settings``
            (folded in, with a ``DeprecationWarning``).

    Example:
        >>> report = twinrun.checks.run_checks(model=net, train=(x, y), val=(xv, yv),  # doctest: +SKIP
        ...                             loss=nn.CrossEntropyLoss(), optimizer=opt, settings={"steps": 1000})
        >>> report.failed  # doctest: +SKIP
        False
    """
    chosen = _settings(settings, legacy)
    started = time.perf_counter()
    store = open_for_checks(registry, home)
    loader = train if isinstance(train, DataLoader) else None
    train_data = train.dataset if isinstance(train, DataLoader) else train
    val_data = val.dataset if isinstance(val, DataLoader) else val
    if chosen.get("batch_size") is None:
        chosen["batch_size"] = int(loader.batch_size) if loader is not None and loader.batch_size else 32
    user_model = model if isinstance(model, nn.Module) else None
    model_factory = _model_factory(model)
    optimizer_factory = _optimizer_factory(optimizer, user_model)
    scheduler_factory = _scheduler_factory(scheduler, optimizer)
    if isinstance(scheduler_every, bool) or not isinstance(scheduler_every, int) or scheduler_every < 1:
        raise BuildError(
            f"scheduler_every={scheduler_every!r} is not a positive number of updates",
            fix="pass 1 (a scheduler stepped per update) or the batches per epoch",
        )
    if scheduler_every > 1 and scheduler_factory is not None:
        per_update = scheduler_factory

        def scheduler_factory(opt: torch.optim.Optimizer) -> Any:
            return SteppedEvery(per_update(opt), scheduler_every)

    experiment = Experiment(
        name=name,
        data=lambda: (train_data, val_data),
        model=model_factory,
        optimizer=optimizer_factory,
        loss=loss,
        scheduler=scheduler_factory,
        augment=augment,
        candidates={"model": {}},
        **{"steps": 200, **chosen},
    )
    validated = validate_options(options)
    selected = select_checks(only, skip)
    resolved = resolve(experiment)
    run_id = new_run_id()
    folder = Path(outdir) if outdir is not None else runs_dir(twinrun_home(home)) / run_id / "checks"
    engine = TwinEngine(resolved, run_id=run_id, measure_memory=False)
    ctx = CheckContext(engine, "model", outdir=folder, user_model=user_model, train_loader=loader)
    return produce_report(
        ctx, selected, validated, progress=progress, setup_seconds=time.perf_counter() - started, registry=store
    )


def _settings(settings: Mapping[str, Any] | None, legacy: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` checked (names and values, as an experiment's), with the old keywords folded in."""
    unknown = sorted(set(legacy) - set(_OLD_SETTING_KEYWORDS))
    if unknown:
        raise TypeError(f"run_checks() got an unexpected keyword argument {unknown[0]!r}")
    chosen = dict(settings or {})
    if legacy:
        both = sorted(set(legacy) & set(chosen))
        if both:
            raise ConfigError(
                f"run_checks() got {', '.join(both)} both as keywords and in settings=",
                fix="give them once, in settings={...}",
            )
        spelled = ", ".join(f"{k}={v!r}" for k, v in legacy.items())
        as_dict = ", ".join(f"{k!r}: {v!r}" for k, v in legacy.items())
        warnings.warn(
            f"run_checks({spelled}) is deprecated: pass settings={{{as_dict}}}",
            DeprecationWarning,
            stacklevel=3,
        )
        chosen.update(legacy)
    for key in chosen:
        if key not in SETTING_HELP:
            close = difflib.get_close_matches(key, SETTING_HELP, n=1)
            raise ConfigError(
                f"settings: {key!r} is not a setting" + (f" (did you mean {close[0]!r}?)" if close else ""),
                fix="use one of: " + ", ".join(sorted(SETTING_HELP)),
            )
    return chosen


def _logdir(logdir: str | Path | None, home: str | Path | None, experiment: str, run_id: str) -> Path | None:
    if logdir is None:
        return None
    if str(logdir) == "default":
        from twinrun._home import tensorboard_dir

        return tensorboard_dir(twinrun_home(home)) / f"{experiment}-checks-{run_id[:8]}"
    return Path(logdir)


def produce_report(
    ctx: CheckContext,
    checks: list[Check],
    options: Mapping[str, Mapping[str, Any]],
    *,
    progress: bool | None,
    setup_seconds: float = 0.0,
    registry: Registry | None = None,
    logdir: Path | None = None,
) -> CheckReport:
    """The single place a check report is produced (and saved: ``checks.json`` in the output folder;
    with a ``logdir``, the figures and verdicts for TensorBoard)."""
    report = run_suite(ctx, checks, options, progress=progress, setup_seconds=setup_seconds)
    if logdir is not None:
        from twinrun.checks._tensorboard import write_check_images

        report.subject["tensorboard"] = str(write_check_images(logdir, report).parent)
    if registry is not None:
        report.subject["registry_run"] = record_report(registry, ctx, report)
    if ctx.outdir is not None:
        ctx.outdir.mkdir(parents=True, exist_ok=True)
        write_json(ctx.outdir / "checks.json", report.to_dict(), allow_nan=False)
    return report


def _model_factory(model: Any) -> Any:
    if isinstance(model, nn.Module):
        import copy

        return lambda: copy.deepcopy(model)
    if callable(model):
        return model
    raise BuildError(
        f"model must be an nn.Module or a factory fn() -> nn.Module, got {type(model).__name__}",
        fix="pass model=MyNet() or model=lambda: MyNet()",
    )


def _optimizer_factory(optimizer: Any, user_model: nn.Module | None) -> Any:
    if not isinstance(optimizer, torch.optim.Optimizer):
        return optimizer  # a class, a factory or fn(model) -> Optimizer
    if user_model is None:
        raise BuildError(
            "an optimizer object was given with a model factory; it is bound to another model's parameters",
            fix=(
                "pass the model object the optimizer was built on, or optimizer=lambda m: "
                "torch.optim.SGD(m.parameters(), ...)"
            ),
        )

    def bind(model: nn.Module) -> torch.optim.Optimizer:
        return copy_optimizer_onto(optimizer, user_model, model)[0]

    return bind


def _scheduler_factory(scheduler: Any, optimizer: Any) -> Any:
    if scheduler is None or not hasattr(scheduler, "optimizer"):
        return scheduler  # None or fn(optimizer) -> scheduler
    if scheduler.optimizer is not optimizer:
        raise BuildError(
            "the scheduler object steps another optimizer than the one given",
            fix="pass the optimizer the scheduler was built on",
        )

    def bind(copied: torch.optim.Optimizer) -> Any:
        memo: dict[int, Any] = {id(optimizer): copied}
        for old, new in zip(optimizer.param_groups, copied.param_groups):
            memo.update({id(p): q for p, q in zip(old["params"], new["params"])})
        return copy_scheduler_onto(scheduler, memo)

    return bind
