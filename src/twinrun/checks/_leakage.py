"""Check 10, ``data_leakage``: duplicates inside the training set and train/validation overlap.

Exact duplicates are found by hashing each example's input bytes. Near
duplicates are pairs whose inputs, standardised per feature with training
statistics, differ by a root-mean-square of at most ``near_rms`` standard
deviations (the same image re-encoded, a row copied with rounding). High
dimensional inputs are first projected to 128 dimensions to find candidate
pairs, which are then verified on the full inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import xxhash

from twinrun.checks._context import CheckContext, first_tensor
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult

__all__ = ["CHECK", "near_pairs"]

NAME = "data_leakage"
_PROJECT = 128
_BLOCK = 1024


def _inputs(ctx: CheckContext, split: str, index: np.ndarray) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    dataset = ctx.data.train if split == "train" else ctx.data.val
    if hasattr(dataset, "tensors"):
        x, y = dataset.tensors[0][torch.as_tensor(index)], dataset.tensors[1][torch.as_tensor(index)]
        return x, y
    xs, ys = [], []
    for start in range(0, len(index), _BLOCK):
        xb, yb = ctx.data._gather(dataset, index[start:start + _BLOCK])
        xs.append(first_tensor(xb))
        ys.append(yb if isinstance(yb, torch.Tensor) else None)
    if any(v is None for v in xs):
        return None, None
    y = torch.cat(ys) if all(v is not None for v in ys) else None  # type: ignore[arg-type]
    return torch.cat(xs), y  # type: ignore[arg-type]


def _hashes(x: torch.Tensor) -> list[int]:
    rows = x.detach().cpu().contiguous().reshape(x.shape[0], -1).numpy()
    return [xxhash.xxh64_intdigest(row.tobytes()) for row in rows]


def near_pairs(a: torch.Tensor, b: torch.Tensor | None, threshold: float, generator: torch.Generator) -> list[tuple[int, int, float]]:
    """Pairs (i in a, j in b) with RMS difference <= ``threshold`` and > 0; ``b=None``: pairs i < j within a."""
    dims = a.shape[1]
    project = dims > _PROJECT
    if project:
        matrix = torch.randn(dims, _PROJECT, generator=generator, dtype=torch.float32) / math.sqrt(_PROJECT)
        pa = a @ matrix
        pb = pa if b is None else b @ matrix
    else:
        pa, pb = a, (a if b is None else b)
    limit = (threshold * math.sqrt(dims)) ** 2
    margin = 4.0 if project else 1.0  # projections keep distances within a factor ~1.5 here
    found: list[tuple[int, int, float]] = []
    norms_b = (pb**2).sum(1)
    other = a if b is None else b
    for start in range(0, pa.shape[0], _BLOCK):
        block = pa[start:start + _BLOCK]
        d2 = (block**2).sum(1, keepdim=True) + norms_b[None, :] - 2 * block @ pb.T
        tolerance = 1e-5 * ((block**2).sum(1, keepdim=True) + norms_b[None, :])
        rows, cols = torch.nonzero(d2 <= margin * limit + tolerance, as_tuple=True)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i = start + r
            if b is None and c <= i:
                continue
            diff = (a[i].double() - other[c].double()).pow(2).mean().sqrt().item()
            if 0 < diff <= threshold:
                found.append((i, c, diff))
    return found


def check_data_leakage(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    rng = ctx.streams.numpy("checks", NAME)
    index = {}
    for split in ("train", "val"):
        n = ctx.size(split)
        cap = opts["max_examples"]
        index[split] = np.sort(rng.choice(n, cap, replace=False)) if n > cap else np.arange(n)
    xt, yt = _inputs(ctx, "train", index["train"])
    xv, yv = _inputs(ctx, "val", index["val"])
    if xt is None or xv is None:
        return CheckResult(NAME, "skip", "inputs hold no tensor", "-",
                           "The inputs are not tensors, so examples could not be compared.", "")
    nt, nv = int(xt.shape[0]), int(xv.shape[0])
    ht, hv = _hashes(xt), _hashes(xv)
    first_of: dict[int, int] = {}
    exact_train: list[tuple[int, int]] = []
    for i, h in enumerate(ht):
        if h in first_of:
            exact_train.append((first_of[h], i))
        else:
            first_of[h] = i
    exact_val = [(j, first_of[h]) for j, h in enumerate(hv) if h in first_of]
    near_train: list[tuple[int, int, float]] = []
    near_val: list[tuple[int, int, float]] = []
    if xt.is_floating_point():
        ft = xt.reshape(nt, -1).float()
        fv = xv.reshape(nv, -1).float()
        mean, std = ft.mean(0), ft.std(0)
        std = torch.where(std > 0, std, torch.ones_like(std))
        ft, fv = (ft - mean) / std, (fv - mean) / std
        generator = ctx.streams.torch("checks", NAME)
        near_train = near_pairs(ft, None, opts["near_rms"], generator)
        near_val = near_pairs(fv, ft, opts["near_rms"], generator)
    dup_train = len({j for _, j in exact_train} | {j for _, j, _ in near_train})
    leaked = len({j for j, _ in exact_val} | {j for j, _, _ in near_val})
    conflicts = 0
    if isinstance(yt, torch.Tensor) and isinstance(yv, torch.Tensor):
        conflicts = sum(not torch.equal(yv[j], yt[i]) for j, i in exact_val) + sum(
            not torch.equal(yt[i], yt[j]) for i, j in exact_train)
    details = {
        "train_examples": nt, "val_examples": nv, "sampled": nt < ctx.size("train") or nv < ctx.size("val"),
        "train_exact_duplicates": len(exact_train), "train_near_duplicates": len(near_train),
        "val_in_train_exact": len(exact_val), "val_in_train_near": len(near_val),
        "val_leaked": leaked, "train_duplicated": dup_train, "conflicting_labels": conflicts,
        "examples_val_train": [(j, i) for j, i in exact_val[:10]] + [(j, i) for j, i, _ in near_val[:10]],
        "examples_train": [(i, j) for i, j in exact_train[:10]] + [(i, j) for i, j, _ in near_train[:10]],
        "near_rms": opts["near_rms"],
    }
    measured = (f"val in train {leaked}/{nv} ({leaked / nv:.1%}: {len(exact_val)} exact, {len(near_val)} near); "
                f"train duplicates {dup_train}/{nt}")
    expected = "no validation example in train; no duplicates in train"
    sampled = " (a random sample of each split)" if details["sampled"] else ""
    explanation = (
        f"The inputs of {nt} training and {nv} validation examples{sampled} were compared: exact copies by hash, "
        f"near copies as a root-mean-square difference of at most {opts['near_rms']} feature standard deviations."
    )
    problems: list[tuple[str, str, str]] = []
    if leaked:
        problems.append(("fail" if leaked / nv >= opts["max_overlap"] else "warn", (
            f" {leaked} validation example(s) ({leaked / nv:.1%}) also appear in the training set: validation "
            "scores reward memorisation and overstate how the model does on new data. A split made after "
            "augmenting/duplicating, overlapping index ranges, or the same source file in both splits do this."),
            "split by a unique key (file, patient, user) before any augmentation, and drop validation examples "
            "whose input occurs in train (details lists pairs as (val, train) indices)"))
    if dup_train:
        frac = dup_train / nt
        problems.append(("warn" if frac >= opts["max_duplicates"] else "pass", (
            f" {dup_train} training example(s) ({frac:.1%}) duplicate others: they weigh double in the loss."),
            "deduplicate the training set (details lists pairs of indices)"))
    if conflicts:
        problems.append(("warn", f" {conflicts} duplicate pair(s) carry different labels (label noise).",
                         "check the labels of duplicated inputs"))
    statuses = [p[0] for p in problems]
    status = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
    if not problems:
        explanation += " No example occurs twice."
    return CheckResult(NAME, status, measured, expected, explanation + "".join(p[1] for p in problems),  # type: ignore[arg-type]
                       "; ".join(p[2] for p in problems if p[0] != "pass"), details=details)


CHECK = Check(
    name=NAME,
    title="duplicates in train and train/validation overlap",
    fn=check_data_leakage,
    options={
        "max_examples": Option(20_000, "compare at most this many examples per split (a random sample beyond)"),
        "near_rms": Option(0.01, "near duplicate: RMS difference at most this many feature standard deviations"),
        "max_overlap": Option(0.01, "fail when at least this fraction of validation examples is in train"),
        "max_duplicates": Option(0.01, "warn when at least this fraction of training examples is a duplicate"),
    },
)
