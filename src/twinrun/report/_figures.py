"""Figures for comparisons, rliable-style: small functions that draw on ``ax`` (made when ``None``) and return it.

They use matplotlib's object API (``matplotlib.figure.Figure``); ``pyplot`` and the
global backend are never touched, so they work the same in a notebook, a script
and the HTML report. Shapes are documented per function; a band is a Student-t
interval across replicas (or seeds) at each step, drawn only where there are at
least two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "new_axes",
    "plot_curves",
    "plot_ensemble_gain",
    "plot_interval_estimates",
    "plot_paired_difference",
    "plot_probability_of_improvement",
    "plot_scores",
    "plot_search",
]


def new_axes(width: float = 6.4, height: float = 3.6, left: float = 0.12) -> Any:
    """A fresh ``Axes`` on its own Agg-backed figure (``ax.figure`` to save it), with fixed margins (a layout
    engine would cost more than the drawing); ``left``: room for the labels of rows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    bottom = min(0.5, 0.55 / height)
    fig.subplots_adjust(left=left, right=0.97, top=1 - min(0.3, 0.35 / height), bottom=bottom)
    return fig.add_subplot(1, 1, 1)


def _band(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and t-interval over axis 0 of ``values [K, T]`` (NaN where fewer than 2 are finite)."""
    from twinrun.stats import stdtrit  # the t quantile: stdtrit(df, p)

    finite = np.isfinite(values)
    n = finite.sum(axis=0)
    safe = np.where(finite, values, 0.0)
    mean = np.where(n > 0, safe.sum(axis=0) / np.maximum(n, 1), np.nan)
    dev = np.where(finite, values - mean, 0.0)
    sd = np.sqrt(np.where(n > 1, (dev**2).sum(axis=0) / np.maximum(n - 1, 1), np.nan))
    half = (
        np.array([float(stdtrit(k - 1, 0.5 + confidence / 2)) if k > 1 else math.nan for k in n])
        * sd
        / np.sqrt(np.maximum(n, 1))
    )
    return mean, mean - half, mean + half


def plot_curves(
    curves: Mapping[str, tuple[Sequence[float] | np.ndarray, np.ndarray]],
    *,
    ax: Any = None,
    ylabel: str = "",
    confidence: float = 0.95,
    logy: bool = False,
) -> Any:
    """One line per name over its steps: ``{name: (steps [T], values [T] or [K, T])}``; with K >= 2 replicas
    the mean, and a t band across them."""
    ax = ax if ax is not None else new_axes()
    for i, (name, (steps, values)) in enumerate(curves.items()):
        v = np.atleast_2d(np.asarray(values, dtype=float))
        mean, low, high = _band(v, confidence)
        color = f"C{i % 10}"
        ax.plot(steps, mean, color=color, lw=1.4, label=name if v.shape[0] == 1 else f"{name} (mean of {v.shape[0]})")
        if v.shape[0] > 1:
            ax.fill_between(steps, low, high, color=color, alpha=0.2, lw=0)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return ax


def plot_paired_difference(
    steps: Sequence[float] | np.ndarray,
    differences: np.ndarray,
    *,
    ax: Any = None,
    label: str = "",
    confidence: float = 0.95,
    color: str = "C0",
) -> Any:
    """A paired difference over steps, ``differences [T]`` or ``[K, T]`` (K replicas or seeds, each the
    candidate minus the reference on the same batches): the mean, a t band across K >= 2, and zero."""
    ax = ax if ax is not None else new_axes()
    v = np.atleast_2d(np.asarray(differences, dtype=float))
    mean, low, high = _band(v, confidence)
    ax.axhline(0.0, color="0.4", lw=0.8, ls="--")
    ax.plot(steps, mean, color=color, lw=1.4, label=label or "difference")
    if v.shape[0] > 1:
        ax.fill_between(steps, low, high, color=color, alpha=0.2, lw=0)
        ax.set_title(f"mean and {confidence:.0%} t band across {v.shape[0]}", fontsize=9)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    return ax


def plot_interval_estimates(
    estimates: Mapping[str, tuple[float, float, float]],
    *,
    ax: Any = None,
    xlabel: str = "",
    zero: bool = False,
) -> Any:
    """rliable's interval-estimate plot: ``{name: (point, low, high)}``, one row each (NaN bounds: a point)."""
    ax = ax if ax is not None else new_axes(6.4, 0.45 * len(estimates) + 1.2, left=0.28)
    names = list(estimates)
    for y, name in enumerate(names):
        point, low, high = estimates[name]
        if math.isfinite(low) and math.isfinite(high):
            ax.plot([low, high], [y, y], color=f"C{y % 10}", lw=6, alpha=0.45, solid_capstyle="butt")
        ax.plot([point], [y], "o", color=f"C{y % 10}")
    if zero:
        ax.axvline(0.0, color="0.4", lw=0.8, ls="--")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.set_xlabel(xlabel)
    return ax


def plot_probability_of_improvement(
    probabilities: Mapping[str, tuple[float, float, float]],
    *,
    ax: Any = None,
    reference: str = "the reference",
) -> Any:
    """P(candidate > reference) with its interval: ``{name: (p, low, high)}``, the line at 0.5 for chance."""
    ax = plot_interval_estimates(probabilities, ax=ax, xlabel=f"P(candidate > {reference})")
    ax.axvline(0.5, color="0.4", lw=0.8, ls="--")
    ax.set_xlim(0.0, 1.0)
    return ax


def plot_ensemble_gain(
    curves: Mapping[str, tuple[Sequence[int], Sequence[float], Sequence[float], Sequence[float]]],
    *,
    ax: Any = None,
    ylabel: str = "",
) -> Any:
    """A seed ensemble's score against how many seeds it averages: ``{name: (k [K], mean [K], min [K], max [K])}``
    over the subsets of k seeds (the band: their range)."""
    ax = ax if ax is not None else new_axes()
    for i, (name, (k, mean, low, high)) in enumerate(curves.items()):
        color = f"C{i % 10}"
        ax.plot(k, mean, "o-", color=color, lw=1.4, ms=3, label=name)
        ax.fill_between(k, low, high, color=color, alpha=0.15, lw=0)
    ax.set_xlabel("seeds in the ensemble")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return ax


def plot_scores(scores: Mapping[str, Sequence[float]], *, ax: Any = None, xlabel: str = "", seed: int = 0) -> Any:
    """Each candidate's per-seed scores as a strip (points jittered vertically with a seeded generator)."""
    ax = ax if ax is not None else new_axes(6.4, 0.45 * len(scores) + 1.2, left=0.28)
    rng = np.random.default_rng(seed)
    for y, (name, values) in enumerate(scores.items()):
        v = np.asarray(values, dtype=float)
        ax.plot(v, y + rng.uniform(-0.15, 0.15, size=v.size), "o", color=f"C{y % 10}", alpha=0.7, ms=5)
        if v.size:
            ax.plot([np.mean(v)] * 2, [y - 0.3, y + 0.3], color="k", lw=1.2)
    ax.set_yticks(range(len(scores)))
    ax.set_yticklabels(list(scores))
    ax.set_ylim(-0.7, len(scores) - 0.3)
    ax.set_xlabel(xlabel)
    return ax


def plot_search(
    values: Sequence[Any],
    diffs: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    *,
    ax: Any = None,
    xlabel: str = "",
    log: bool = False,
    winner: int | None = None,
    ylabel: str = "Δ vs reference",
) -> Any:
    """A search's trials: each trial's paired difference to the reference (with its interval) against one
    hyperparameter's value (``[N]`` each; categories are placed in order of appearance)."""
    ax = ax if ax is not None else new_axes()
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric:
        x = np.asarray(values, dtype=float)
    else:
        labels = list(dict.fromkeys(map(str, values)))
        x = np.asarray([labels.index(str(v)) for v in values], dtype=float)
        ax.set_xticks(range(len(labels)), labels)
    d, lo, hi = (np.asarray(a, dtype=float) for a in (diffs, lows, highs))
    ax.errorbar(x, d, yerr=[d - lo, hi - d], fmt="o", color="#4c72b0", ecolor="#9db4d6", capsize=2, ms=4)
    if winner is not None:
        ax.plot([x[winner]], [d[winner]], "*", color="#dd8452", ms=14, label="confirmed winner")
        ax.legend(loc="best", fontsize=8)
    ax.axhline(0.0, color="#888888", lw=0.8)
    if log and numeric:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax
