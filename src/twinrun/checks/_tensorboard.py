"""The checks' figures in TensorBoard, next to the run's curves.

``write_check_images(logdir, report)`` writes each PNG a check drew as an image
(``checks/<check>/<figure>``) and each result as text (``checks/<check>``: status,
what was measured, the fix) under ``logdir/<candidate>/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from twinrun.checks._result import CheckReport

__all__ = ["write_check_images"]


def write_check_images(logdir: str | Path, report: CheckReport) -> Path:
    """Write the report's figures and verdicts for TensorBoard; returns the folder written."""
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    folder = Path(logdir) / str(report.subject.get("candidate") or "checks")
    writer = SummaryWriter(log_dir=str(folder))
    try:
        for result in report.results:
            writer.add_text(
                f"checks/{result.name}",
                f"**{result.status}** · {result.measured}\n\n{result.explanation}"
                + (f"\n\nfix: {result.fix}" if result.fix else ""),
                0,
            )
            for name, path in result.artifacts.items():
                if Path(path).is_file():
                    with Image.open(path) as image:
                        pixels = np.asarray(image.convert("RGB"))
                    writer.add_image(f"checks/{result.name}/{name}", pixels, 0, dataformats="HWC")
    finally:
        writer.close()
    return folder
