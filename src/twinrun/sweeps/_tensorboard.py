"""TensorBoard for a sweep (or replicas): a folder per seed, and the curves averaged over seeds.

``<home>/tb/<experiment>-<sweep>/seed-<s>/<candidate>/`` holds each seed's run
(written by its :class:`~twinrun.sinks.TensorBoardSink`), and
``mean/<candidate>/`` the same tags averaged, step by step, over the seeds that
finished (a step counts where every one of them logged it), so ``tensorboard
--logdir <that folder>`` overlays every seed of every candidate and their means.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from twinrun._home import tensorboard_dir
from twinrun.registry import Registry

__all__ = ["sweep_tensorboard_dir", "write_mean_curves"]


def sweep_tensorboard_dir(root: Path, name: str, sweep_id: str) -> Path:
    return tensorboard_dir(root) / f"{name}-{sweep_id[:8]}"


def write_mean_curves(registry: Registry, folder: Path, runs: Mapping[int, str | None]) -> None:
    """Write ``folder/mean/<candidate>``: every tag's mean over the finished runs, per step."""
    from torch.utils.tensorboard import SummaryWriter

    per_run = [registry.metrics(run_id) for run_id in runs.values() if run_id]
    if not per_run:
        return
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
            writer.add_text("events", f"mean over {len(per_run)} seeds", 0)
        finally:
            writer.close()
