"""TensorBoard for a sweep (or replicas): a folder per seed, and the curves averaged over seeds.

``<home>/tb/<experiment>-<sweep>/seed-<s>/<candidate>/`` holds each seed's run
(written by its :class:`~twinrun.sinks.TensorBoardSink`), and
``mean/<candidate>/`` the same tags averaged, step by step, over the seeds that
finished (a step counts where every one of them logged it), so ``tensorboard
--logdir <that folder>`` overlays every seed of every candidate and their means.
Every candidate but the reference also gets its paired difference to the
reference, seed by seed and then averaged, with the 95 % t interval across seeds
as ``diff/<tag>``, ``diff/<tag>_low`` and ``diff/<tag>_high``, drawn together as
a margin chart (mean and band) in TensorBoard's Custom Scalars tab.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from twinrun._home import tensorboard_dir
from twinrun.registry import Registry

__all__ = ["sweep_tensorboard_dir", "write_mean_curves"]


def sweep_tensorboard_dir(root: Path, name: str, sweep_id: str) -> Path:
    return tensorboard_dir(root) / f"{name}-{sweep_id[:8]}"


def write_mean_curves(
    registry: Registry, folder: Path, runs: Mapping[int, str | None], reference: str | None = None
) -> None:
    """Write ``folder/mean/<candidate>``: every tag's mean over the finished runs, per step, and (with a
    ``reference``) each other candidate's paired difference to it with its band across seeds."""
    from torch.utils.tensorboard import SummaryWriter

    per_run = [registry.metrics(run_id) for run_id in runs.values() if run_id]
    if not per_run:
        return
    charts: dict[str, list[Any]] = {}
    for candidate in per_run[0]:
        writer = SummaryWriter(log_dir=str(folder / "mean" / candidate))
        try:
            for split, names in per_run[0][candidate].items():
                for name in names:
                    curves = [dict(m.get(candidate, {}).get(split, {}).get(name, [])) for m in per_run]
                    steps = sorted(set.intersection(*(set(c) for c in curves)))
                    for step in steps:
                        values = np.array([c[step] for c in curves], dtype=np.float64)
                        if np.isfinite(values).all():
                            writer.add_scalar(f"{split}/{name}", float(values.mean()), step)
                    if reference is not None and candidate != reference and len(per_run) >= 2 and name != "lr":
                        tag = _write_band(writer, per_run, candidate, reference, split, name)
                        if tag:
                            charts.setdefault(f"{candidate} - {reference}", []).append(
                                (tag, [tag, f"{tag}_low", f"{tag}_high"])
                            )
            writer.add_text("events", f"mean over {len(per_run)} seeds", 0)
        finally:
            writer.close()
    if charts:
        layout = SummaryWriter(log_dir=str(folder / "mean" / str(reference)))  # the layout: once per logdir
        try:
            layout.add_custom_scalars(
                {title: {tag: ["Margin", tags] for tag, tags in items} for title, items in charts.items()}
            )
        finally:
            layout.close()


def _write_band(writer: Any, per_run: list[Any], candidate: str, reference: str, split: str, name: str) -> str | None:
    """``diff/<split>_<name>`` with its t band across seeds; the tag, or ``None`` where nothing pairs."""
    from twinrun.stats import paired_t_interval

    def curve(m: Any, who: str) -> dict[int, float]:
        return dict(m.get(who, {}).get(split, {}).get(name, []))

    pairs = [(curve(m, candidate), curve(m, reference)) for m in per_run]
    steps = sorted(set.intersection(*(set(a) & set(b) for a, b in pairs)))
    tag = f"diff/{split}_{name}"
    wrote = False
    for step in steps:
        diffs = np.array([a[step] - b[step] for a, b in pairs], dtype=np.float64)
        if not np.isfinite(diffs).all():
            continue
        band = paired_t_interval(diffs)
        writer.add_scalar(tag, float(diffs.mean()), step)
        if band.low is not None and band.high is not None:
            writer.add_scalar(f"{tag}_low", band.low, step)
            writer.add_scalar(f"{tag}_high", band.high, step)
        wrote = True
    return tag if wrote else None
