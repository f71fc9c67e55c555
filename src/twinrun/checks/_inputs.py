"""Check 9, ``input_stats``: the exact tensors fed to the net, and their labels.

Statistics are taken on the batches of the first updates of a run, after
augmentation, i.e. exactly what the model's forward receives: per channel (or
feature) mean, std, min and max, NaN/Inf counts, inputs left unnormalised or
squashed (normalised twice), the label histogram and class imbalance. For image
batches a PNG grid of the first examples with their labels is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from twinrun.checks._context import CheckContext, first_tensor
from twinrun.checks._plots import image_grid_png, is_image_batch
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult, Status

__all__ = ["CHECK", "channel_stats"]

NAME = "input_stats"


def channel_stats(x: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-channel mean, std, min, max (NaN/Inf left out): dim 1 of images, the last dim otherwise."""
    x = x.detach().double()
    if x.ndim >= 4:
        flat = x.movedim(1, -1).reshape(-1, x.shape[1])
    elif x.ndim == 3 and is_image_batch(x.float()):
        flat = x.reshape(-1, 1)
    elif x.ndim >= 2:
        flat = x.reshape(-1, x.shape[-1])
    else:
        flat = x.reshape(-1, 1)
    values = torch.where(torch.isfinite(flat), flat, torch.nan).numpy()
    with np.errstate(all="ignore"):
        return {
            "mean": np.nanmean(values, axis=0),
            "std": np.nanstd(values, axis=0),
            "min": np.nanmin(values, axis=0),
            "max": np.nanmax(values, axis=0),
        }


def _label_summary(ctx: CheckContext, targets: torch.Tensor, n_classes: int | None) -> dict[str, Any]:
    labels = targets.reshape(-1)
    labels = labels[labels >= 0]  # ignore_index (-100) and friends
    size = max(int(labels.max()) + 1 if labels.numel() else 0, n_classes or 0)
    counts = torch.bincount(labels, minlength=size).tolist()
    present = [c for c in counts if c > 0]
    out: dict[str, Any] = {
        "histogram": counts,
        "classes": size,
        "imbalance": (max(present) / min(present)) if present else math.nan,
        "absent": [i for i, c in enumerate(counts) if c == 0],
    }
    val = ctx.targets("val")
    if isinstance(val, torch.Tensor) and not val.is_floating_point():
        val_labels = set(val.reshape(-1).tolist()) - {v for v in range(size) if counts[v] > 0}
        out["val_only"] = sorted(v for v in val_labels if v >= 0)
    return out


def check_input_stats(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    steps = max(1, min(opts["batches"], ctx.settings.steps))
    batches = [ctx.batch(s) for s in range(1, steps + 1)]
    xs = [first_tensor(b[0]) for b in batches]
    if any(x is None for x in xs):
        return CheckResult(
            NAME,
            "skip",
            "inputs hold no tensor",
            "-",
            "The inputs are not tensors, so no statistics could be taken.",
            "",
        )
    x = torch.cat([t.detach().cpu() for t in xs if t is not None])
    n = int(x.shape[0])
    details: dict[str, Any] = {"examples": n, "batches": steps, "shape": list(x.shape[1:]), "dtype": str(x.dtype)}
    problems: list[tuple[str, str, str]] = []
    summary = ""
    if x.is_floating_point():
        nan, inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        stats = channel_stats(x)
        scale_std, scale_mean = float(np.nanmedian(stats["std"])), float(np.nanmedian(np.abs(stats["mean"])))
        details.update(
            nan=nan,
            inf=inf,
            channels=len(stats["mean"]),
            **{f"channel_{k}": v for k, v in stats.items()},
            median_std=scale_std,
            median_abs_mean=scale_mean,
            min=float(np.nanmin(stats["min"])),
            max=float(np.nanmax(stats["max"])),
        )
        summary = (
            f"mean {float(np.nanmean(stats['mean'])):.3g}, std {scale_std:.3g}, range "
            f"[{details['min']:.3g}, {details['max']:.3g}] over {len(stats['mean'])} channel(s)"
        )
        if nan or inf:
            problems.append(
                (
                    "fail",
                    (f" The inputs contain {nan} NaN and {inf} Inf values: every loss and gradient they touch is NaN."),
                    (
                        "find where they come from (missing values, log(0), division by a zero std) and impute or "
                        "drop them before training"
                    ),
                )
            )
        if scale_std > opts["max_std"] or scale_mean > opts["max_abs_mean"]:
            problems.append(
                (
                    "warn",
                    (
                        f" The inputs are not normalised: the typical channel has std {scale_std:.3g} and |mean| "
                        f"{scale_mean:.3g} (raw pixel values 0-255, or unscaled features). Large inputs make the first "
                        "layer's pre-activations large, so the loss starts high and learning rates tuned for "
                        "standardised data diverge."
                    ),
                    "standardise the inputs with training-set statistics: (x - mean) / std per channel/feature",
                )
            )
        elif 0 < scale_std < opts["min_std"]:
            problems.append(
                (
                    "warn",
                    (
                        f" The inputs are squashed: the typical channel has std {scale_std:.3g}. Normalising twice "
                        "(e.g. a Normalize in the dataset and again in the model or collate) does this; so does data "
                        "that is naturally small (audio, rare binary features), which trains better scaled too."
                    ),
                    "normalise once, to about unit std: look for a second (x - mean) / std on the way to the model",
                )
            )
    else:
        details.update(min=int(x.min()), max=int(x.max()))
        summary = f"integer inputs in [{int(x.min())}, {int(x.max())}]"
    label_info: dict[str, Any] = {}
    all_targets = ctx.targets("train")
    if isinstance(all_targets, torch.Tensor) and not all_targets.is_floating_point():
        n_classes = None
        if ctx.loss_kind in ("cross_entropy", "nll"):
            model = ctx.fresh().model  # a copy: even an eval-mode forward may change a buggy model
            with torch.no_grad(), ctx.mode(model):
                out = first_tensor(model(batches[0][0]))
            n_classes = int(out.shape[1]) if out is not None and out.ndim >= 2 else None
        label_info = _label_summary(ctx, all_targets.cpu(), n_classes)
        details["labels"] = label_info
        summary += f"; {label_info['classes']} classes, imbalance {label_info['imbalance']:.3g}x"
        if ctx.next_token:
            summary += " (next tokens)"
            details["next_token"] = True
        if label_info["imbalance"] > opts["max_imbalance"] and not ctx.next_token:
            problems.append(
                (
                    "warn",
                    (
                        f" The classes are imbalanced {label_info['imbalance']:.3g} to 1 in the training set: accuracy "
                        "will look good while rare classes are ignored."
                    ),
                    (
                        "weight the loss (CrossEntropyLoss(weight=...)), resample, and report per-class metrics; set "
                        "the final bias to log p (loss_at_init says how)"
                    ),
                )
            )
        if label_info["absent"]:
            problems.append(
                (
                    "warn",
                    (f" Classes {label_info['absent'][:10]} have no training examples though the model predicts them."),
                    "check the label encoding and the split (stratify it)",
                )
            )
        if label_info.get("val_only"):
            problems.append(
                (
                    "warn",
                    (f" Validation labels {label_info['val_only'][:10]} never occur in training."),
                    "check the label encoding and the split (stratify it)",
                )
            )
    elif isinstance(all_targets, torch.Tensor):
        t = all_targets.double()
        details["targets"] = {
            "mean": float(t.mean()),
            "std": float(t.std()) if t.numel() > 1 else 0.0,
            "min": float(t.min()),
            "max": float(t.max()),
        }
    artifacts: dict[str, str] = {}
    grid_note = " No image grid: the inputs are not images."
    if is_image_batch(batches[0][0]) and opts["grid"] > 0:
        path = ctx.artifact("input_grid.png")
        if path is not None:
            first_x, first_y = batches[0]
            k = min(opts["grid"], int(first_x.shape[0]))
            labels = [(_label(first_y[i]) if isinstance(first_y, torch.Tensor) else "?") for i in range(k)]
            image_grid_png(
                path,
                first_x[:k].detach().cpu(),
                labels,
                title=f"{ctx.candidate}: the first {k} inputs of update 1, exactly as fed to the model",
            )
            artifacts["input_grid"] = str(path)
            grid_note = f" The first {k} inputs of update 1 with their labels are drawn in {path.name}."
    measured = summary
    expected = "finite; per-channel std about 1 and |mean| well below it; classes roughly balanced"
    explanation = (
        f"Statistics of the exact tensors fed to the model in the first {steps} updates of a run ({n} "
        f"examples, after augmentation): {summary}." + grid_note
    )
    if not problems:
        return CheckResult(
            NAME, "pass", measured, expected, explanation + " Nothing unusual.", artifacts=artifacts, details=details
        )
    status: Status = "fail" if any(p[0] == "fail" for p in problems) else "warn"
    return CheckResult(
        NAME,
        status,
        measured,
        expected,
        explanation + "".join(p[1] for p in problems),
        "; ".join(dict.fromkeys(p[2] for p in problems)),
        artifacts=artifacts,
        details=details,
    )


def _label(value: torch.Tensor) -> str:
    if value.numel() == 1:
        v = value.item()
        return str(v) if isinstance(v, int) else f"{v:.3g}"
    return "x".join(map(str, value.shape))


CHECK = Check(
    name=NAME,
    title="statistics of the exact tensors fed to the net, and the labels",
    fn=check_input_stats,
    options={
        "batches": Option(8, "how many of the run's first batches to take statistics on"),
        "max_std": Option(5.0, "a typical channel std above this counts as unnormalised"),
        "max_abs_mean": Option(3.0, "a typical channel |mean| above this counts as unnormalised"),
        "min_std": Option(0.2, "a typical channel std below this counts as squashed (normalised twice?)"),
        "max_imbalance": Option(10.0, "largest ratio of the most to the least frequent class before a warning"),
        "grid": Option(32, "images in the PNG grid (0: none)"),
    },
)
