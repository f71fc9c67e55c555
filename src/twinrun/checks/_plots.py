"""PNG figures written by checks: input grids, prediction dynamics, first-layer filters.

Figures are drawn with matplotlib's object API on the Agg canvas; ``pyplot`` and
the global backend are never touched, so a user's notebook plotting is unaffected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["filters_png", "image_grid_png", "is_image_batch", "layer_bars_png", "line_plot", "prediction_dynamics_png"]


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def is_image_batch(inputs: Any) -> bool:
    """Floating-point ``[B, C, H, W]`` with 1 or 3 channels, or square ``[B, H, W]``; at least 4x4."""
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        return False
    if inputs.ndim == 4:
        return inputs.shape[1] in (1, 3) and min(inputs.shape[2:]) >= 4
    return inputs.ndim == 3 and inputs.shape[1] == inputs.shape[2] >= 8


def _as_hwc(image: torch.Tensor) -> np.ndarray:
    array = image.detach().float().cpu().numpy()
    if array.ndim == 3:
        array = np.transpose(array, (1, 2, 0))
        if array.shape[2] == 1:
            array = array[:, :, 0]
    return array


def image_grid_png(path: Path, inputs: torch.Tensor, labels: Sequence[str], *, title: str, columns: int = 8) -> Path:
    """The images exactly as they enter the net, each scaled to the batch's range, with its label."""
    n = int(inputs.shape[0])
    rows = math.ceil(n / columns)
    fig = _figure(1.3 * columns, 1.45 * rows + 0.6)
    lo, hi = float(inputs.min()), float(inputs.max())
    span = hi - lo if math.isfinite(hi - lo) and hi > lo else 1.0
    for i in range(n):
        ax = fig.add_subplot(rows, columns, i + 1)
        image = np.clip((_as_hwc(inputs[i]) - lo) / span, 0.0, 1.0)
        ax.imshow(np.nan_to_num(image), cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(labels[i], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title}\nshown on the batch's range [{lo:.3g}, {hi:.3g}]", fontsize=9)
    fig.savefig(path, format="png")
    return path


def prediction_dynamics_png(
    path: Path,
    steps: Sequence[int],
    values: np.ndarray,
    losses: np.ndarray,
    *,
    value_label: str,
    title: str,
) -> Path:
    """Left: ``values[example, snapshot]`` as a heat map; right: the training loss per step."""
    fig = _figure(11, 4.2)
    ax = fig.add_subplot(1, 2, 1)
    image = ax.imshow(values, aspect="auto", interpolation="nearest", cmap="viridis")
    ax.set_xticks(range(len(steps)))
    ax.set_xticklabels([str(s) for s in steps], fontsize=7)
    ax.set_xlabel("training step")
    ax.set_ylabel("fixed validation example")
    ax.set_title(value_label, fontsize=9)
    fig.colorbar(image, ax=ax)
    ax2 = fig.add_subplot(1, 2, 2)
    ax2.plot(np.arange(1, len(losses) + 1), losses, lw=1)
    ax2.set_xlabel("training step")
    ax2.set_ylabel("training loss")
    ax2.set_title("training loss on each batch", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, format="png")
    return path


def filters_png(path: Path, before: torch.Tensor, after: torch.Tensor, *, title: str, limit: int = 32) -> Path:
    """First-layer convolution filters at initialisation (top) and after the short training (bottom)."""
    n = min(limit, int(before.shape[0]))
    fig = _figure(max(6.0, 0.7 * n), 2.2)

    def show(weights: torch.Tensor, row: int) -> None:
        w = weights[:n].float()
        if w.shape[1] != 3:
            w = w.mean(dim=1, keepdim=True)  # one image per filter: the mean over input channels
        for i in range(n):
            ax = fig.add_subplot(2, n, row * n + i + 1)
            image = _as_hwc(w[i])
            lo, hi = float(image.min()), float(image.max())
            ax.imshow(
                (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image),
                cmap="gray" if image.ndim == 2 else None,
                vmin=0,
                vmax=1,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel("init" if row == 0 else "trained", fontsize=7)

    show(before, 0)
    show(after, 1)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, format="png")
    return path


def line_plot(
    path: Path,
    x: np.ndarray,
    lines: dict[str, np.ndarray],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = False,
    vlines: dict[str, float] | None = None,
) -> Path:
    """One panel of lines over ``x`` (log-scaled on request), with labelled vertical markers."""
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    for label, y in lines.items():
        ax.plot(x, y, lw=1.2, label=label)
    for label, at in (vlines or {}).items():
        ax.axvline(at, color="tab:red", ls="--", lw=1, label=label)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.savefig(path, format="png")
    return path


def layer_bars_png(path: Path, layers: Sequence[str], series: Mapping[str, Sequence[float]], *, title: str) -> Path:
    """One row of bars per statistic, one bar per layer (in forward order)."""
    fig = _figure(max(6.0, 0.35 * len(layers) + 2), 2.2 * len(series) + 1)
    for row, (label, values) in enumerate(series.items(), start=1):
        ax = fig.add_subplot(len(series), 1, row)
        ax.bar(range(len(layers)), values, color="tab:blue")
        ax.set_ylabel(label, fontsize=8)
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels(layers if row == len(series) else [""] * len(layers), rotation=70, fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
