"""Check 10, ``data_leakage``: duplicates inside the training set and train/validation overlap.

Exact duplicates are found by hashing each example's input bytes. Near
duplicates are pairs whose standardised inputs differ by a root-mean-square of
at most ``near_rms`` standard deviations (the same image re-encoded, a row
copied with rounding). Inputs of up to 128 features are standardised per
feature; larger ones (images) per feature mean and one overall standard
deviation, and are projected to 128 dimensions to find candidate pairs, which
are then verified on the full inputs. The data is read once, in chunks, so
memory stays at ``examples x 128`` numbers whatever the input size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xxhash

from twinrun.checks._context import CheckContext, first_tensor
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult, Status

__all__ = ["CHECK", "near_pairs"]

NAME = "data_leakage"
_PROJECT = 128
_CHUNK = 1024


@dataclass
class _Split:
    """One split, read once: hashes, labels, and low-dimensional features (raw or projected)."""

    index: np.ndarray
    hashes: list[int]
    labels: torch.Tensor | None
    features: torch.Tensor  # [n, min(dims, 128)] float64, not yet centred/scaled
    dims: int
    sums: torch.Tensor  # per-feature sum and sum of squares of the full inputs
    squares: torch.Tensor
    floating: bool


def _read(ctx: CheckContext, split: str, index: np.ndarray, projection: Any) -> _Split | None:
    dataset = ctx.data.train if split == "train" else ctx.data.val
    hashes: list[int] = []
    labels: list[Any] = []
    features: list[torch.Tensor] = []
    sums = squares = None
    floating = True
    dims = 0
    for start in range(0, len(index), _CHUNK):
        chunk = index[start : start + _CHUNK]
        if hasattr(dataset, "tensors"):
            xb, yb = dataset.tensors[0][torch.as_tensor(chunk)], dataset.tensors[1][torch.as_tensor(chunk)]
        else:
            xb, yb = ctx.data.gather(dataset, chunk.tolist())
            xb = first_tensor(xb)
            if xb is None:
                return None
        rows = xb.detach().cpu().contiguous().reshape(len(chunk), -1)
        hashes += [xxhash.xxh64_intdigest(r.tobytes()) for r in rows.numpy()]
        labels.append(yb if isinstance(yb, torch.Tensor) else None)
        floating = floating and rows.is_floating_point()
        values = rows.double()
        dims = values.shape[1]
        sums = values.sum(0) if sums is None else sums + values.sum(0)
        squares = (values**2).sum(0) if squares is None else squares + (values**2).sum(0)
        features.append(values if dims <= _PROJECT else values @ projection(dims))
    y = torch.cat(labels) if labels and all(v is not None for v in labels) else None
    assert sums is not None and squares is not None
    return _Split(index, hashes, y, torch.cat(features), dims, sums, squares, floating)


def near_pairs(
    a: torch.Tensor,
    b: torch.Tensor | None,
    limit: float,
    *,
    margin: float = 1.0,
) -> list[tuple[int, int]]:
    """Candidate pairs (i in a, j in b) whose distance is at most ``sqrt(margin) * limit``; ``b=None``: i < j in a."""
    other = a if b is None else b
    norms = (other**2).sum(1)
    found: list[tuple[int, int]] = []
    for start in range(0, a.shape[0], _CHUNK):
        block = a[start : start + _CHUNK]
        own = (block**2).sum(1, keepdim=True)
        d2 = own + norms[None, :] - 2 * block @ other.T
        tolerance = 1e-9 * (own + norms[None, :])
        rows, cols = torch.nonzero(d2 <= margin * limit**2 + tolerance, as_tuple=True)
        found += [(start + r, c) for r, c in zip(rows.tolist(), cols.tolist()) if b is not None or c > start + r]
    return found


def check_data_leakage(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    rng = ctx.streams.numpy("checks", NAME)
    generator = ctx.streams.torch("checks", NAME)
    matrices: dict[int, torch.Tensor] = {}

    def projection(dims: int) -> torch.Tensor:
        if dims not in matrices:
            matrices[dims] = torch.randn(dims, _PROJECT, generator=generator, dtype=torch.float64) / math.sqrt(_PROJECT)
        return matrices[dims]

    splits: dict[str, _Split] = {}
    for split in ("train", "val"):
        n, cap = ctx.size(split), opts["max_examples"]
        index = np.sort(rng.choice(n, cap, replace=False)) if n > cap else np.arange(n)
        read = _read(ctx, split, index, projection)
        if read is None:
            return CheckResult(
                NAME,
                "skip",
                "inputs hold no tensor",
                "-",
                "The inputs are not tensors, so examples could not be compared.",
                "",
            )
        splits[split] = read
    tr, va = splits["train"], splits["val"]
    nt, nv = len(tr.index), len(va.index)
    first_of: dict[int, int] = {}
    exact_train: list[tuple[int, int]] = []
    for i, h in enumerate(tr.hashes):
        if h in first_of:
            exact_train.append((first_of[h], i))
        else:
            first_of[h] = i
    exact_val = [(j, first_of[h]) for j, h in enumerate(va.hashes) if h in first_of]
    near_train: list[tuple[int, int]] = []
    near_val: list[tuple[int, int]] = []
    if tr.floating and va.floating and tr.dims == va.dims:
        mean = tr.sums / nt
        var = (tr.squares / nt - mean**2).clamp_min(0)
        projected = tr.dims > _PROJECT
        if projected:  # per-feature centring, one overall scale: both commute with the projection
            scale = torch.full_like(mean, float(var.mean().sqrt().clamp_min(1e-12)))
            shift = mean @ projection(tr.dims)
        else:
            scale = torch.where(var > 0, var.sqrt(), torch.ones_like(var))
            shift = mean
        ft = (tr.features - shift) / (scale[0] if projected else scale)
        fv = (va.features - shift) / (scale[0] if projected else scale)
        limit = opts["near_rms"] * math.sqrt(tr.dims)
        margin = 4.0 if projected else 1.0  # projected distances stay within a factor ~1.5 of the true ones

        def rms(split_a: _Split, i: int, split_b: _Split, j: int) -> float:
            if not projected:
                za = (split_a.features[i] - shift) / scale
                zb = (split_b.features[j] - shift) / scale
            else:
                za = _full(ctx, split_a is va, int(split_a.index[i])) / scale[0]
                zb = _full(ctx, split_b is va, int(split_b.index[j])) / scale[0]
            return float((za - zb).pow(2).mean().sqrt())

        exact_pairs = set(exact_train)
        near_train = [
            (i, j)
            for i, j in near_pairs(ft, None, limit, margin=margin)
            if (i, j) not in exact_pairs and tr.hashes[i] != tr.hashes[j] and rms(tr, i, tr, j) <= opts["near_rms"]
        ]
        near_val = [
            (j, i)
            for j, i in near_pairs(fv, ft, limit, margin=margin)
            if va.hashes[j] != tr.hashes[i] and rms(va, j, tr, i) <= opts["near_rms"]
        ]
    dup_train = len({j for _, j in exact_train} | {j for _, j in near_train})
    leaked = len({j for j, _ in exact_val} | {j for j, _ in near_val})
    conflicts = 0
    if tr.labels is not None and va.labels is not None:
        conflicts = sum(not torch.equal(va.labels[j], tr.labels[i]) for j, i in exact_val) + sum(
            not torch.equal(tr.labels[i], tr.labels[j]) for i, j in exact_train
        )

    def as_index(split: _Split, k: int) -> int:  # dataset indices, not positions in the sample
        return int(split.index[k])

    details = {
        "train_examples": nt,
        "val_examples": nv,
        "sampled": nt < ctx.size("train") or nv < ctx.size("val"),
        "train_exact_duplicates": len(exact_train),
        "train_near_duplicates": len(near_train),
        "val_in_train_exact": len(exact_val),
        "val_in_train_near": len(near_val),
        "val_leaked": leaked,
        "train_duplicated": dup_train,
        "conflicting_labels": conflicts,
        "pairs_val_train": [(as_index(va, j), as_index(tr, i)) for j, i in (exact_val + near_val)[:20]],
        "pairs_train": [(as_index(tr, i), as_index(tr, j)) for i, j in (exact_train + near_train)[:20]],
        "near_rms": opts["near_rms"],
    }
    measured = (
        f"val in train {leaked}/{nv} ({leaked / nv:.1%}: {len(exact_val)} exact, {len(near_val)} near); "
        f"train duplicates {dup_train}/{nt}"
    )
    expected = "no validation example in train; no duplicates in train"
    sampled = " (a random sample of each split)" if details["sampled"] else ""
    explanation = (
        f"The inputs of {nt} training and {nv} validation examples{sampled} were compared: exact copies by hash, "
        f"near copies as a root-mean-square difference of at most {opts['near_rms']} standard deviations."
    )
    problems: list[tuple[str, str, str]] = []
    chance = dup_train / nt if ctx.next_token else 0.0
    details["chance_rate"] = chance if ctx.next_token else None
    by_chance = bool(ctx.next_token and leaked and _binomial_tail(leaked, nv, chance) > 1e-3)
    if by_chance:
        explanation += (
            f" In next-token data short contexts recur by chance: {chance:.1%} of the training windows recur "
            f"inside the training set itself, and the {leaked / nv:.1%} of validation windows found in it are in "
            "line with that (a binomial test against that rate), not a sign of a shared source."
        )
    elif leaked:
        problems.append(
            (
                "fail" if leaked / nv >= opts["max_overlap"] else "warn",
                (
                    f" {leaked} validation example(s) ({leaked / nv:.1%}) also appear in the training set: validation "
                    "scores reward memorisation and overstate how the model does on new data. A split made after "
                    "augmenting/duplicating, overlapping index ranges, or the same source file in both splits do this."
                ),
                (
                    "split by a unique key (file, patient, user) before any augmentation, and drop validation examples "
                    "whose input occurs in train (details lists (val, train) index pairs)"
                ),
            )
        )
    if dup_train and ctx.next_token:
        explanation += (
            f" {dup_train} training window(s) ({dup_train / nt:.1%}) repeat others: windows cut at "
            "random from a text repeat where phrases do, or where two cuts fall at one place."
        )
    elif dup_train:
        frac = dup_train / nt
        problems.append(
            (
                "warn" if frac >= opts["max_duplicates"] else "pass",
                (f" {dup_train} training example(s) ({frac:.1%}) duplicate others: they weigh double in the loss."),
                "deduplicate the training set (details lists pairs of indices)",
            )
        )
    if conflicts and ctx.next_token:
        explanation += (
            f" {conflicts} duplicate context(s) are followed by different next tokens: normal for a "
            "language model (the same context continues in several ways), not label noise."
        )
    elif conflicts:
        problems.append(
            (
                "warn",
                f" {conflicts} duplicate pair(s) carry different labels (label noise).",
                "check the labels of duplicated inputs",
            )
        )
    statuses = [p[0] for p in problems]
    status: Status = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
    if not problems:
        explanation += " No example occurs twice."
    return CheckResult(
        NAME,
        status,
        measured,
        expected,
        explanation + "".join(p[1] for p in problems),
        "; ".join(p[2] for p in problems if p[0] != "pass"),
        details=details,
    )


def _binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space."""
    if p <= 0.0:
        return 0.0 if k > 0 else 1.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        for i in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def _full(ctx: CheckContext, val: bool, index: int) -> torch.Tensor:
    """One example's full input, flattened (the centring cancels in the differences taken)."""
    dataset = ctx.data.val if val else ctx.data.train
    x = first_tensor(ctx.data.gather(dataset, [index])[0])
    assert x is not None
    return x.detach().cpu().reshape(-1).double()


CHECK = Check(
    name=NAME,
    title="duplicates in train and train/validation overlap",
    fn=check_data_leakage,
    options={
        "max_examples": Option(10_000, "compare at most this many examples per split (a random sample beyond)"),
        "near_rms": Option(0.01, "near duplicate: RMS difference at most this many feature standard deviations"),
        "max_overlap": Option(0.01, "fail when at least this fraction of validation examples is in train"),
        "max_duplicates": Option(0.01, "warn when at least this fraction of training examples is a duplicate"),
    },
)
