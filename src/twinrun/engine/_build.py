"""Build every candidate: models with shared initial weights, optimizers, losses.

Initial weights
---------------
Every model is constructed on the CPU with the global generators seeded from
the ``init`` stream, so candidates of the same architecture start identical and
a user's own init code runs untouched. Then, where ``share_init`` is on, each
parameter whose name and shape match one of an *earlier declared* candidate
gets that candidate's value, if its own value was drawn like it (see
:func:`share_initial_weights`: a deliberate init or loaded weights are kept, and
the init report says why). Donors are defined by the experiment's declaration
order, not by which candidates run: a candidate trained alone gets exactly the
weights it gets among its twins (twin = solo).
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_map

from twinrun.engine._layout import install_layout
from twinrun.errors import BuildError
from twinrun.rng import RngStreams
from twinrun.spec import CandidateSpec, Factory, ResolvedExperiment

__all__ = ["CandidateState", "InitReport", "build_candidates", "build_models", "share_initial_weights"]


@dataclass
class CandidateState:
    """One candidate, built and ready to train."""

    name: str
    spec: CandidateSpec
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any | None
    loss_fn: Callable[[Any, Any], torch.Tensor]
    augment: Callable[..., tuple[Any, Any]] | None
    diverged_at: int | None = None
    diverged_value: float | None = None
    error: str | None = None  # set when the candidate's own code raised at ``diverged_at``
    output_key: str | int = "auto"  # which part of a structured output is the prediction (``_outputs``)
    loss_takes: str | None = None  # "outputs" or "prediction": decided on the first outputs (``_outputs``)
    stopped_at: int | None = None  # stopped early (``patience``): finished, trained no further
    train_model: nn.Module | None = None  # a data-parallel run's DistributedDataParallel(model): trains through it

    @property
    def alive(self) -> bool:
        """Still training: neither diverged nor stopped early."""
        return self.diverged_at is None and self.stopped_at is None

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


@dataclass(frozen=True)
class InitReport:
    """Which initial parameter tensors are shared between candidates, from the actual values.

    ``shared[c]`` lists parameters of ``c`` equal to the same-named parameter of
    at least one other candidate; ``own[c]`` the rest; ``groups`` maps a
    parameter name to the candidates that share one identical initial value.
    """

    shared: Mapping[str, list[str]]
    own: Mapping[str, list[str]]
    groups: Mapping[str, list[list[str]]] = field(default_factory=dict)
    #: ``not_shared[c][param]``: why candidate ``c``'s parameter keeps its own initial value
    not_shared: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def summary(self) -> list[str]:
        sizes = {name: (len(self.shared[name]), len(self.own[name])) for name in self.shared}
        return [f"{n}: {s}/{s + o} parameter tensors share initial weights" for n, (s, o) in sizes.items()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "shared": dict(self.shared),
            "own": dict(self.own),
            "groups": dict(self.groups),
            "not_shared": {c: dict(r) for c, r in self.not_shared.items()},
        }


def build_models(resolved: ResolvedExperiment, streams: RngStreams) -> tuple[dict[str, nn.Module], InitReport]:
    """Build the selected candidates' models (on the CPU) with shared initial weights."""
    needed = list(resolved.candidates)
    declared = list(resolved.declared)
    last = max(declared.index(n) for n in needed)
    policy = share_policy(resolved.settings.share_init, declared)
    donors_order = declared[: last + 1] if any(v is not False for v in policy.values()) else needed
    built: dict[str, nn.Module] = {}
    for name in donors_order:
        try:
            built[name] = _construct(resolved.declared[name], streams)
        except BuildError:
            if name in needed:
                raise
            # an unselected candidate that cannot be built donates nothing; its twin run fails anyway
    order = [n for n in donors_order if n in built]
    kept = share_initial_weights([built[n] for n in order], policies=[policy[n] for n in order])
    models = {n: built[n] for n in needed}
    reasons = {n: kept[order.index(n)] for n in needed}
    return models, init_report(models, reasons)


def share_policy(setting: Any, candidates: Sequence[str]) -> dict[str, bool | tuple[str, ...]]:
    """Each candidate's ``share_init``: ``True``, ``False`` or the parameter names it takes.

    The setting is one bool for all, or ``{candidate: True | False | [names]}`` (unlisted
    candidates: ``True``).
    """
    if isinstance(setting, bool):
        return dict.fromkeys(candidates, setting)
    unknown = sorted(set(setting) - set(candidates))
    if unknown:
        raise BuildError(
            f"share_init names candidates {unknown} that the experiment does not declare",
            fix=f"use names of: {', '.join(candidates)}",
        )
    return {c: (v if isinstance(v, bool) else tuple(v)) for c, v in ((c, setting.get(c, True)) for c in candidates)}


def _construct(spec: CandidateSpec, streams: RngStreams) -> nn.Module:
    with streams.isolated("init"):
        try:
            model = spec.model.fn(**spec.model.kwargs)
        except Exception as exc:
            raise BuildError(
                f"candidate {spec.name!r}: model factory {spec.model.name} failed: {type(exc).__name__}: {exc}",
                fix=f"check the candidate's model keys: {spec.model.kwargs}",
            ) from exc
    if not isinstance(model, nn.Module):
        raise BuildError(
            f"candidate {spec.name!r}: model factory {spec.model.name} returned a "
            f"{type(model).__name__}, not a torch.nn.Module",
        )
    return model


def share_initial_weights(
    models: Sequence[nn.Module],
    *,
    policies: Sequence[bool | Sequence[str]] | None = None,
) -> list[dict[str, str]]:
    """Give each model the initial value of an earlier model's same-named, same-shaped parameter.

    A parameter takes the earlier value only where it was drawn like it: the
    candidate's own fresh value and the donor's are both the same constant, or
    both random with the same mean and spread (within 5 standard errors of
    their sampling noise: a false alarm about once in a million tensors;
    tensors of fewer than 16 values are shared unless one is a constant). A value the user set on purpose (loaded or
    pretrained weights, a deliberate init such as a depth-scaled projection, a
    bias set to the label prior) differs in scale or location, and is kept.
    ``policies[i]`` limits model ``i``: ``False`` takes nothing, a list of
    names takes only those. Modifies the models in place (``copy_`` under
    ``no_grad``), so optimizers built on their parameters stay valid.

    Returns, per model, each parameter that had a donor but was not shared, with the reason.
    """
    first_value: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}
    kept: list[dict[str, str]] = []
    with torch.no_grad():
        for i, model in enumerate(models):
            policy = True if policies is None else policies[i]
            reasons: dict[str, str] = {}
            for name, p in model.named_parameters():
                key = (name, tuple(p.shape))
                donor = first_value.get(key)
                if donor is None:
                    first_value[key] = p.detach()
                    continue
                why = _why_not_shared(name, p, donor, policy)
                if why is None:
                    p.copy_(donor.to(p.device))
                else:
                    reasons[name] = why
            kept.append(reasons)
    return kept


def _why_not_shared(name: str, own: torch.Tensor, donor: torch.Tensor, policy: bool | Sequence[str]) -> str | None:
    if policy is False:
        return "share_init is off for this candidate"
    if policy is not True and name not in policy:
        return "not among the names its share_init lists"
    if donor.dtype != own.dtype:
        return f"dtype {own.dtype} differs from the earlier candidate's {donor.dtype}"
    if torch.equal(own.detach().cpu(), donor.detach().cpu()):
        return None
    a, b = own.detach().double().flatten().cpu(), donor.detach().double().flatten().cpu()
    sa, sb = float(a.std()) if a.numel() > 1 else 0.0, float(b.std()) if b.numel() > 1 else 0.0
    if sa == 0.0 or sb == 0.0:
        return (
            f"its own initial value is constant {float(a[0]):.4g} where the earlier candidate's is "
            f"{'constant ' + format(float(b[0]), '.4g') if sb == 0.0 else 'random'}: set on purpose, kept"
        )
    n = a.numel()
    if n < 16:  # too few values to tell two draws apart (a constant was caught above)
        return None
    # log(std ratio) has a standard error of about 1/sqrt(n - 1) for two samples of n values
    spread_ok = abs(math.log(sa / sb)) <= 5.0 / math.sqrt(max(n - 1, 1)) + 0.01
    mean_ok = abs(float(a.mean()) - float(b.mean())) <= 5.0 * math.sqrt((sa**2 + sb**2) / n)
    if spread_ok and mean_ok:
        return None
    return (
        f"its own initial value is not drawn like the earlier candidate's (std {sa:.4g} vs {sb:.4g}, "
        f"mean {float(a.mean()):.3g} vs {float(b.mean()):.3g}): set on purpose (a deliberate init or "
        "loaded weights), kept"
    )


def init_report(
    models: Mapping[str, nn.Module],
    not_shared: Mapping[str, Mapping[str, str]] | None = None,
) -> InitReport:
    params = {c: dict(m.named_parameters()) for c, m in models.items()}
    shared: dict[str, list[str]] = {c: [] for c in models}
    own: dict[str, list[str]] = {c: [] for c in models}
    groups: dict[str, list[list[str]]] = {}
    for c, named in params.items():
        for pname, p in named.items():
            twins = [
                o
                for o in models
                if o != c
                and pname in params[o]
                and params[o][pname].shape == p.shape
                and torch.equal(params[o][pname].detach().cpu(), p.detach().cpu())
            ]
            (shared if twins else own)[c].append(pname)
            if twins and pname not in groups:
                groups[pname] = [[c, *twins]]
    reasons: dict[str, dict[str, str]] = {}
    for c in models:
        given = dict((not_shared or {}).get(c, {}))
        reasons[c] = {p: given.get(p, "no earlier candidate has a parameter of this name and shape") for p in own[c]}
    return InitReport(shared=shared, own=own, groups=groups, not_shared=reasons)


def build_optimizer(spec: CandidateSpec, model: nn.Module) -> torch.optim.Optimizer:
    f = spec.optimizer
    try:
        fn: Any = f.fn
        if inspect.isclass(fn) and issubclass(fn, torch.optim.Optimizer):
            optimizer = fn(model.parameters(), **f.kwargs)
        else:
            optimizer = fn(model, **f.kwargs)
    except Exception as exc:
        raise BuildError(
            f"candidate {spec.name!r}: optimizer {f.name} failed: {type(exc).__name__}: {exc}",
            fix=f"check the optimizer keys: {f.kwargs}",
        ) from exc
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise BuildError(
            f"candidate {spec.name!r}: optimizer factory {f.name} returned a "
            f"{type(optimizer).__name__}, not a torch.optim.Optimizer"
        )
    return optimizer


#: keywords through which a scheduler factory may take the run's number of steps (filled in when not given)
RUN_STEPS_KEYWORDS = ("run_steps", "total_steps")


def scheduler_kwargs(f: Factory, steps: int | None) -> dict[str, Any]:
    """The factory's keywords, plus the run's ``steps`` for a ``run_steps`` or ``total_steps`` parameter it
    has and was not given (``OneCycleLR``'s ``total_steps``; ``def warmup_cosine(opt, run_steps)``), so a
    schedule follows ``--set steps=N`` instead of keeping the horizon it was written for."""
    kwargs = dict(f.kwargs)
    if steps is None:
        return kwargs
    try:
        parameters = inspect.signature(f.fn).parameters
    except (TypeError, ValueError):
        return kwargs
    for key in RUN_STEPS_KEYWORDS:
        p = parameters.get(key)
        if p is not None and key not in kwargs and (p.default is inspect.Parameter.empty or p.default is None):
            kwargs[key] = steps
    return kwargs


def build_scheduler(spec: CandidateSpec, optimizer: torch.optim.Optimizer, steps: int | None = None) -> Any | None:
    """The candidate's scheduler on ``optimizer``; ``steps``: the run's, for factories that take them."""
    f = spec.scheduler
    if f is None:
        return None
    try:
        return f.fn(optimizer, **scheduler_kwargs(f, steps))
    except Exception as exc:
        raise BuildError(
            f"candidate {spec.name!r}: scheduler {f.name} failed: {type(exc).__name__}: {exc}",
            fix=f"check the scheduler keys: {f.kwargs}",
        ) from exc


def build_callable(f: Factory | None, role: str, candidate: str) -> Callable[..., Any] | None:
    """Instantiate a class factory, or bind keyword arguments to a function factory."""
    if f is None:
        return None
    try:
        if inspect.isclass(f.fn):
            cls: Any = f.fn
            built: Callable[..., Any] = cls(**f.kwargs)
            return built
        return functools.partial(f.fn, **f.kwargs) if f.kwargs else f.fn
    except Exception as exc:
        raise BuildError(
            f"candidate {candidate!r}: {role} {f.name} failed: {type(exc).__name__}: {exc}",
            fix=f"check the {role} keys: {f.kwargs}",
        ) from exc


def build_candidates(
    resolved: ResolvedExperiment,
    streams: RngStreams,
    device: torch.device | Callable[[Mapping[str, nn.Module]], Mapping[str, torch.device]],
) -> tuple[dict[str, CandidateState], InitReport]:
    """Build models (shared init), move them to ``device`` (or each where ``device(models)`` puts it), then
    optimizers and the rest."""
    models, report = build_models(resolved, streams)
    where = device(models) if callable(device) else dict.fromkeys(models, device)
    states: dict[str, CandidateState] = {}
    for name, spec in resolved.candidates.items():
        model = install_layout(models[name].to(where[name]), resolved.settings.batch_dim)
        model.train()
        optimizer = build_optimizer(spec, model)
        states[name] = CandidateState(
            name=name,
            spec=spec,
            model=model,
            optimizer=optimizer,
            scheduler=build_scheduler(spec, optimizer, resolved.settings.steps),
            loss_fn=build_callable(spec.loss, "loss", name),  # type: ignore[arg-type]
            augment=build_callable(spec.augment, "augment", name),
            output_key=resolved.settings.output_key,
        )
    return states, report


def per_example_loss(loss_fn: Callable[[Any, Any], torch.Tensor]) -> Callable[[Any, Any], torch.Tensor]:
    """A version of ``loss_fn`` that returns one value per example (shape ``[batch]``).

    Uses ``reduction="none"`` where the loss supports it, else ``torch.func.vmap``
    over the batch, else a Python loop.
    """
    unreduced: Callable[[Any, Any], torch.Tensor] | None = None
    if isinstance(loss_fn, nn.Module) and getattr(loss_fn, "reduction", None) in ("mean", "sum"):
        clone = copy.copy(loss_fn)
        setattr(clone, "reduction", "none")  # noqa: B010 - an attribute of the loss module, not a field
        unreduced = clone
    elif isinstance(loss_fn, functools.partial) and _takes(loss_fn.func, "reduction"):
        unreduced = functools.partial(loss_fn.func, *loss_fn.args, **{**loss_fn.keywords, "reduction": "none"})
    elif not isinstance(loss_fn, functools.partial) and inspect.isfunction(loss_fn) and _takes(loss_fn, "reduction"):
        unreduced = functools.partial(loss_fn, reduction="none")

    def reduce_rows(values: torch.Tensor, batch: int) -> torch.Tensor:
        if values.ndim == 0 or values.shape[0] != batch:
            raise ValueError("not per-example")
        return values.reshape(batch, -1).mean(dim=1)

    def per_example(outputs: Any, targets: Any) -> torch.Tensor:
        batch = int(targets.shape[0])
        if unreduced is not None:
            try:
                return reduce_rows(unreduced(outputs, targets), batch)
            except (ValueError, RuntimeError, TypeError):
                pass

        def one(o: Any, t: Any) -> torch.Tensor:
            return loss_fn(tree_map(lambda v: v.unsqueeze(0) if isinstance(v, torch.Tensor) else v, o), t.unsqueeze(0))

        try:
            return torch.func.vmap(one)(outputs, targets)
        except Exception:  # noqa: BLE001 - a loss vmap cannot trace: one example at a time

            def rows(i: int) -> Any:
                return tree_map(lambda v: v[i : i + 1] if isinstance(v, torch.Tensor) else v, outputs)

            return torch.stack([loss_fn(rows(i), targets[i : i + 1]).reshape(()) for i in range(batch)])

    return per_example


def _takes(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
