"""Seed ensembles: average the K seeds' validation outputs, measure what it buys.

Shapes. Per candidate, ``outputs`` is ``[K, N, ...]`` (seed ``k``'s final outputs
on the ``N`` shared validation examples; a tensor, an array, or a sequence of
``K`` entries each ``[N, ...]`` or ``None`` for a missing seed); ``targets`` is
``[N, ...]``. Position ``k`` is the same seed for every candidate.

How seeds are averaged, by output ``kind`` (as the engine names them):

* ``"logits"`` (``[K, N, C]``): average the softmax probabilities; the ensemble's
  logits are the log of the mean probability (``logsumexp_k log_softmax - log K``),
  so any metric defined on logits (accuracy, cross-entropy) applies unchanged.
* ``"binary_logits"`` (``[K, N]`` or ``[K, N, 1]``): average the sigmoid
  probabilities; the ensemble logit is ``log(p / (1 - p))`` of the mean, computed
  in log space.
* ``"values"`` (regression): the mean output.

``metric`` is a :class:`twinrun.Metric` (per-example values from torch tensors,
with its direction), the same object an experiment uses. A seed's score is the
metric's mean over examples.

The gain curve: for each ensemble size ``k = 1..K``, the metric of ensembles of
``k`` of the seeds, averaged over all ``C(K, k)`` subsets when there are at most
``n_subsets`` of them (``exact``), else over ``n_subsets`` random subsets drawn
from the seeded generator.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:  # torch is imported where outputs are read: statistics alone need none
    import torch

from twinrun.errors import ConfigError, DataError
from twinrun.spec import Metric, check_metric_output
from twinrun.stats._json import json_safe
from twinrun.stats._random import Seed, base_seed, stream
from twinrun.stats._scores import SeedLabel, describe_seeds
from twinrun.stats._special import logsumexp

__all__ = ["KINDS", "ensemble_outputs", "seed_ensemble"]

#: Output kinds and how their seeds are averaged (see the module docstring).
KINDS = ("logits", "binary_logits", "values")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(
            f"kind={kind!r} is not one of {', '.join(KINDS)}",
            fix="pass kind='logits' for multi-class logits, 'binary_logits' for one logit per "
            "example, 'values' for regression (a TwinResult's output_kind)",
        )


def _prepare(x: np.ndarray, kind: str) -> tuple[np.ndarray, ...]:
    """Per-seed arrays in the space where averaging is a sum: ``[K, N, ...]`` each."""
    if kind == "logits":
        return (x - logsumexp(x, axis=-1, keepdims=True),)
    if kind == "binary_logits":
        return (-np.logaddexp(0.0, -x), -np.logaddexp(0.0, x))  # log p, log (1 - p)
    return (x,)


def _combine(prepared: tuple[np.ndarray, ...], subset: Sequence[int], kind: str) -> np.ndarray:
    """The ensemble of the seeds in ``subset``, as outputs of one seed: ``[N, ...]``."""
    idx = list(subset)
    if kind == "logits":
        return cast("np.ndarray", logsumexp(prepared[0][idx], axis=0) - math.log(len(idx)))
    if kind == "binary_logits":
        return cast("np.ndarray", logsumexp(prepared[0][idx], axis=0) - logsumexp(prepared[1][idx], axis=0))
    return cast("np.ndarray", prepared[0][idx].mean(axis=0))


def _shifted(prepared: tuple[np.ndarray, ...], kind: str) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """For log-space kinds, ``(m, exp(x - m))`` per array, ``m`` the maximum over seeds: averaging in
    probability space is then a plain mean (one ``exp`` per seed, not one per seed and subset)."""
    if kind not in ("logits", "binary_logits"):
        return tuple((np.zeros(()), x) for x in prepared)
    out = []
    for x in prepared:
        m = x.max(axis=0)
        out.append((m, np.exp(x - m)))
    return tuple(out)


def _combine_many(shifted: tuple[tuple[np.ndarray, np.ndarray], ...], subsets: np.ndarray, kind: str) -> np.ndarray:
    """:func:`_combine` for ``S`` subsets of one size at once (``subsets``: ``[S, k]``): ``[S, N, ...]``.

    ``log(mean(exp(x - m))) + m`` is ``logsumexp(x) - log k``: the same ensemble.
    """
    means = [q[subsets].mean(axis=1) for _, q in shifted]
    if kind == "logits":
        with np.errstate(divide="ignore"):
            return cast("np.ndarray", np.log(means[0]) + shifted[0][0])
    if kind == "binary_logits":
        with np.errstate(divide="ignore"):
            return cast("np.ndarray", (np.log(means[0]) + shifted[0][0]) - (np.log(means[1]) + shifted[1][0]))
    return cast("np.ndarray", means[0])


def _to_numpy(value: Any) -> np.ndarray:
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        return cast("np.ndarray", value.numpy())
    return np.asarray(value)


def ensemble_outputs(outputs: Any, kind: str) -> np.ndarray:
    """The ensemble of all ``K`` seeds (``outputs``: ``[K, N, ...]``) as one seed's outputs ``[N, ...]``.

    >>> p = ensemble_outputs([[[0.0, 0.0]], [[0.0, math.log(3.0)]]], "logits")
    >>> np.round(np.exp(p), 3)  # mean of softmax [0.5, 0.5] and [0.25, 0.75]
    array([[0.375, 0.625]])
    """
    _check_kind(kind)
    x = _to_numpy(outputs).astype(np.float64)
    if x.ndim < 2 or x.shape[0] == 0:
        raise DataError(
            f"outputs have shape {x.shape}; an ensemble needs [K, N, ...] with K >= 1",
            fix="stack the seeds' outputs along a first axis",
        )
    return _combine(_prepare(x, kind), range(x.shape[0]), kind)


def _stack(name: str, raw: Any, k: int | None) -> tuple[list[np.ndarray | None], np.dtype | None]:
    """One candidate's per-seed outputs as a list (``None`` for a missing seed) and their dtype."""
    import torch

    if isinstance(raw, (torch.Tensor, np.ndarray)):
        entries: list[Any] = list(raw)
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        entries = list(raw)
    else:
        raise DataError(
            f"candidate {name!r}: outputs {type(raw).__name__} are not [K, N, ...]",
            fix="pass a tensor or array [K, N, ...], or a list of K per-seed outputs",
        )
    if k is not None and len(entries) != k:
        raise DataError(
            f"candidate {name!r} has outputs for {len(entries)} seeds, expected {k}; outputs must "
            "be seed-aligned (position k is the same seed for every candidate)",
            fix="put None at the position of a seed a candidate lacks",
        )
    arrays = [None if e is None else _to_numpy(e) for e in entries]
    dtype = next((a.dtype for a in arrays if a is not None), None)
    return arrays, dtype


def _evaluate(metric: Metric, outputs: np.ndarray, targets: torch.Tensor) -> float:
    """The metric's mean over examples of ``outputs`` (``[N, ...]``)."""
    import torch

    values = metric(torch.from_numpy(np.ascontiguousarray(outputs)), targets)
    values = check_metric_output(metric.name, values, targets.shape[0])
    return float(values.detach().cpu().double().mean())


def seed_ensemble(
    outputs: Mapping[str, Any],
    targets: Any,
    *,
    kind: str,
    metric: Metric,
    seed: Seed = 0,
    n_subsets: int = 50,
    seeds: Sequence[SeedLabel] | None = None,
) -> dict[str, dict[str, Any]]:
    """Ensemble each candidate's seeds on the validation set; report the gain and its curve.

    Args:
        outputs: ``{candidate: [K, N, ...]}`` per-seed validation outputs (see the module
            docstring); seeds that are ``None`` or hold a non-finite output are left out.
        targets: ``[N, ...]`` validation targets, shared by every seed and candidate.
        kind: ``"logits"``, ``"binary_logits"`` or ``"values"``.
        metric: a :class:`twinrun.Metric` (per-example values and a direction).
        seed: ``int`` or ``numpy.random.Generator``; candidate ``c``'s random subsets come
            from the stream ``(seed, "ensemble", c)``.
        n_subsets: subsets per ensemble size for the gain curve when there are more.
        seeds: labels of the ``K`` seeds (default ``0..K-1``).

    Returns:
        ``{candidate: {...}}``: ``metric``, ``kind``, ``higher_is_better``, ``n_seeds``,
        ``seeds_used``, ``seeds_dropped``, ``per_seed`` (``[K]``, None where left out),
        ``mean_single``, ``best_single``, ``worst_single``, ``ensemble`` (the metric of
        the ensemble of all used seeds), ``gain`` (``ensemble - mean_single``, signed so
        that positive means the ensemble is better), ``gain_over_best`` (the same
        against the best single seed), ``curve`` (``[{"k", "mean", "std", "min", "max",
        "gain", "n_subsets", "exact"}]`` for ``k = 1..n_seeds``), ``notes`` and ``reason``.
    """
    import torch

    _check_kind(kind)
    if not isinstance(metric, Metric):
        raise ConfigError(
            f"metric {metric!r} is not a twinrun.Metric",
            fix="wrap it: twinrun.Metric(fn, higher_is_better=...), fn(outputs, targets) -> one value per example",
        )
    if isinstance(n_subsets, bool) or not isinstance(n_subsets, int) or n_subsets < 1:
        raise ConfigError(f"n_subsets={n_subsets!r} must be a positive integer", fix="pass n_subsets=50")
    if not isinstance(outputs, Mapping) or not outputs:
        raise DataError(
            "outputs must be a non-empty mapping {candidate: [K, N, ...]}",
            fix="pass e.g. {'base': torch.stack([out_seed0, out_seed1, ...])}",
        )
    target = torch.as_tensor(_to_numpy(targets))
    k_all: int | None = None if seeds is None else len(seeds)
    stacks = {}
    for name, raw in outputs.items():
        stacks[name] = _stack(name, raw, k_all)
        k_all = len(stacks[name][0])
    labels: list[SeedLabel] = list(range(k_all or 0)) if seeds is None else list(seeds)
    base = base_seed(seed)
    return cast(
        "dict[str, dict[str, Any]]",
        json_safe(
            {
                name: _one_candidate(
                    name, arrays, dtype, target, labels, kind, metric, n_subsets, stream(base, "ensemble", name)
                )
                for name, (arrays, dtype) in stacks.items()
            }
        ),
    )


def _one_candidate(
    name: str,
    arrays: list[np.ndarray | None],
    dtype: np.dtype | None,
    targets: torch.Tensor,
    labels: list[SeedLabel],
    kind: str,
    metric: Metric,
    n_subsets: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    import torch

    n_examples = targets.shape[0]
    notes: list[str] = []
    used: list[int] = []
    missing, broken = [], []
    for i, a in enumerate(arrays):
        if a is None:
            missing.append(labels[i])
        elif a.ndim == 0 or a.shape[0] != n_examples:
            raise DataError(
                f"candidate {name!r}, seed {labels[i]}: outputs have shape {tuple(a.shape)} but "
                f"there are {n_examples} targets",
                fix="pass each seed's outputs on the whole validation set, [N, ...] with N targets",
            )
        elif not np.all(np.isfinite(a)):
            broken.append(labels[i])
        else:
            used.append(i)
    if missing:
        notes.append(f"candidate {name!r}: no outputs for {describe_seeds(missing)}; left out of the ensemble")
    if broken:
        notes.append(
            f"candidate {name!r}: non-finite outputs for {describe_seeds(broken)} (diverged?); left out of the ensemble"
        )
    higher = metric.higher_is_better
    out: dict[str, Any] = {
        "metric": metric.name,
        "kind": kind,
        "higher_is_better": higher,
        "n_seeds": len(used),
        "seeds_used": [labels[i] for i in used],
        "seeds_dropped": missing + broken,
        "per_seed": [None] * len(arrays),
        "mean_single": None,
        "best_single": None,
        "worst_single": None,
        "ensemble": None,
        "gain": None,
        "gain_over_best": None,
        "curve": [],
        "notes": notes,
        "reason": None,
    }
    if not used:
        out["reason"] = "no seed has finite outputs"
        return out
    shapes = {arrays[i].shape for i in used}  # type: ignore[union-attr]
    if len(shapes) > 1:
        raise DataError(
            f"candidate {name!r}: seeds' outputs differ in shape {sorted(shapes)}",
            fix="every seed must produce outputs of one shape",
        )
    single = np.array([_evaluate(metric, arrays[i], targets) for i in used])  # type: ignore[arg-type]
    for i, value in zip(used, single):
        out["per_seed"][i] = float(value)
    sign = 1.0 if higher else -1.0
    out.update(
        mean_single=float(single.mean()),
        best_single=float(single.max() if higher else single.min()),
        worst_single=float(single.min() if higher else single.max()),
    )
    stacked = np.stack([arrays[i] for i in used]).astype(np.float64)  # type: ignore[misc]
    prepared = _prepare(stacked, kind)
    shifted = _shifted(prepared, kind)
    cast = dtype if dtype is not None and np.issubdtype(dtype, np.floating) else np.float64

    def scores(subsets: Sequence[Sequence[int]]) -> np.ndarray:
        """The metric of each subset's ensemble: one batched combine and one metric call for all."""

        combined = _combine_many(shifted, np.asarray(subsets), kind).astype(cast)
        n = targets.shape[0]
        flat = combined.reshape(len(subsets) * n, *combined.shape[2:])
        repeated = targets.repeat(len(subsets), *([1] * (targets.dim() - 1)))
        values = check_metric_output(
            metric.name, metric(torch.from_numpy(np.ascontiguousarray(flat)), repeated), repeated.shape[0]
        )
        return values.detach().cpu().double().reshape(len(subsets), n).mean(dim=1).numpy()

    k_used = len(used)
    curve = [_curve_point(1, single, True, out["mean_single"], sign)]
    for k in range(2, k_used + 1):
        subsets, exact = _subsets(k_used, k, n_subsets, rng)
        curve.append(_curve_point(k, scores(subsets), exact, out["mean_single"], sign))
    out["curve"] = curve
    if k_used < 2:
        out["ensemble"] = out["mean_single"]
        out["reason"] = "an ensemble needs at least 2 seeds; there is 1, so there is no gain to measure"
        return out
    out["ensemble"] = curve[-1]["mean"]
    out["gain"] = sign * (out["ensemble"] - out["mean_single"])
    out["gain_over_best"] = sign * (out["ensemble"] - out["best_single"])
    return out


def _subsets(n: int, k: int, n_subsets: int, rng: np.random.Generator) -> tuple[list[tuple[int, ...]], bool]:
    """All ``k``-subsets of ``range(n)`` when there are few enough, else ``n_subsets`` random ones."""
    if math.comb(n, k) <= n_subsets:
        return list(itertools.combinations(range(n), k)), True
    return [tuple(sorted(rng.choice(n, size=k, replace=False))) for _ in range(n_subsets)], False


def _curve_point(k: int, values: np.ndarray, exact: bool, mean_single: float, sign: float) -> dict[str, Any]:
    mean = float(values.mean())
    return {
        "k": k,
        "mean": mean,
        "std": float(values.std(ddof=1)) if values.size > 1 else None,
        "min": float(values.min()),
        "max": float(values.max()),
        "gain": sign * (mean - mean_single),
        "n_subsets": int(values.size),
        "exact": exact,
    }
