"""Planted silent bugs, at least one per check, and clean setups that must pass every check.

Every case is a function returning the keyword arguments of ``twinrun.checks.run_checks``:
a real tiny model, real data (generated or scikit-learn's digits) and a real
optimizer. A planted case names the check meant to catch it, the statuses that
count as caught, and the other checks that legitimately see the same bug
(``also``): any other check that warns or fails on it is a false alarm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

# ============================================================================ data


def blobs(n_train: int = 512, n_val: int = 256, features: int = 10, classes: int = 4, seed: int = 0):
    """Standardised Gaussian blobs: an easy tabular classification task."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, features, generator=g) * 2.0

    def sample(n: int):
        y = torch.arange(n) % classes
        y = y[torch.randperm(n, generator=g)]
        return centers[y] + torch.randn(n, features, generator=g), y

    (x, y), (xv, yv) = sample(n_train), sample(n_val)
    mean, std = x.mean(0), x.std(0)
    return ((x - mean) / std, y), ((xv - mean) / std, yv)


def regression(n_train: int = 512, n_val: int = 256, features: int = 6, offset: float = 0.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(features, 1, generator=g)

    def sample(n: int):
        x = torch.randn(n, features, generator=g)
        return x, torch.tanh(x @ w) + offset + 0.05 * torch.randn(n, 1, generator=g)

    return sample(n_train), sample(n_val)


def digits(scale: str = "standard"):
    """scikit-learn's digits as (1, 8, 8) images: standardised once, raw 0-255, or standardised twice."""
    from twinrun.examples.digits import load_digits_split

    (x, y), (xv, yv) = load_digits_split()
    if scale == "raw255":
        from sklearn.datasets import load_digits

        raw = torch.tensor(load_digits().images, dtype=torch.float32).unsqueeze(1) * (255.0 / 16.0)
        mean, std = raw.mean(), raw.std()
        x, xv = x * std + mean, xv * std + mean  # undo the standardisation: pixels in [0, 255]
    elif scale == "twice":
        from sklearn.datasets import load_digits

        raw = torch.tensor(load_digits().images, dtype=torch.float32)
        mean, std = raw.mean(), raw.std()
        x, xv = (x - mean) / std, (xv - mean) / std  # a second normalisation with the raw statistics
    return (x, y), (xv, yv)


def token_sequences(n_train: int = 384, n_val: int = 128, length: int = 12, vocab: int = 16, seed: int = 0):
    """Random token ids; the target at t is the token at t - 1 (0 at t = 0).

    The target depends only on inputs before t, so both a causal model ("up to t") and a
    strictly causal one ("before t") can learn it; with 16**12 possible sequences no two repeat.
    """
    g = torch.Generator().manual_seed(seed)

    def sample(n: int):
        x = torch.randint(0, vocab, (n, length), generator=g)
        return x, F.pad(x[:, :-1], (1, 0))

    return sample(n_train), sample(n_val)


def float_sequences(n_train: int = 384, n_val: int = 128, length: int = 10, features: int = 3, seed: int = 0):
    """Sequences of features; the label says whether feature 0 sums to more than 0."""
    g = torch.Generator().manual_seed(seed)

    def sample(n: int):
        x = torch.randn(n, length, features, generator=g)
        return x, (x[:, :, 0].sum(1) > 0).long()

    return sample(n_train), sample(n_val)


# ============================================================================ models


class MLP(nn.Module):
    def __init__(self, features: int = 10, classes: int = 4, hidden: int = 32, dropout: float = 0.1) -> None:
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, classes)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(torch.relu(self.fc1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(x))


class ScaledHeadMLP(MLP):
    """Bug: the final layer is initialised 30x too large (a custom init gone wrong)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        with torch.no_grad():
            self.head.weight.mul_(30.0)


class SoftmaxMLP(MLP):
    """Bug: the model ends in softmax and the loss is CrossEntropyLoss (softmax applied twice)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).softmax(dim=1)


class SigmoidMLP(MLP):
    """Bug: logits squashed by a sigmoid before CrossEntropyLoss: the loss has a floor far above 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(super().forward(x))


class UnusedLayerMLP(MLP):
    """Bug: a layer is built but forward forgets to use it."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.fc2 = nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(x))  # self.fc2 never called


class FrozenMLP(MLP):
    """Bug: the first layer left frozen (requires_grad=False) from a fine-tuning experiment."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.fc1.requires_grad_(False)


class DeadReluMLP(MLP):
    """Bug: hidden biases initialised to -10: every ReLU is dead, the net outputs a constant."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        nn.init.constant_(self.fc1.bias, -10.0)


class SaturatedTanhMLP(MLP):
    """Bug: a tanh hidden layer initialised 50x too large: its units sit at +-1 for every example."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        with torch.no_grad():
            self.fc1.weight.mul_(50.0)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(torch.tanh(self.fc1(x)))


class AlwaysDropoutMLP(MLP):
    """Bug: F.dropout(..., training=True) stays on in eval mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.dropout(torch.relu(self.fc1(x)), p=0.3, training=True)
        return self.head(h)


class ForcedBatchNormMLP(MLP):
    """Bug: functional batch norm called with training=True: batch statistics in eval mode."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.register_buffer("running_mean", torch.zeros(32))
        self.register_buffer("running_var", torch.ones(32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.batch_norm(self.fc1(x), self.running_mean, self.running_var, training=True)
        return self.head(torch.relu(h))


class BatchMeanMLP(MLP):
    """Bug: centring features with the mean over dim 0 (the batch) instead of dim 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        return self.head(h - h.mean(dim=0, keepdim=True))


class ReZeroMLP(MLP):
    """Residual blocks whose branch is scaled by a gate initialised to 0 (ReZero, zero-init residual).

    At the first step the branch's weights get exactly zero gradients; that is by design.
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.block = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32))
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        return self.head(h + self.gate * self.block(h))


class SmallCNN(nn.Module):
    def __init__(self, channels: int = 8, classes: int = 10, batchnorm: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels) if batchnorm else nn.Identity()
        self.head = nn.Linear(channels * 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(torch.relu(self.bn(self.conv1(x))), 2)
        return self.head(h.flatten(1))


class TimeMajorGRU(nn.Module):
    """A GRU that wants (time, batch, features); ``view=True`` is the bug: view instead of permute."""

    def __init__(self, features: int = 3, hidden: int = 16, classes: int = 2, view: bool = False) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden)
        self.head = nn.Linear(hidden, classes)
        self.view = view

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, f = x.shape
        seq = x.view(t, b, f) if self.view else x.permute(1, 0, 2)
        out, _ = self.gru(seq)
        return self.head(out[-1])


class CausalConvLM(nn.Module):
    """Token ids (B, T) -> logits (B, vocab, T) from left-padded convolutions.

    ``shift=True`` moves everything one step right: the output at t sees only inputs before t.
    """

    def __init__(self, vocab: int = 16, dim: int = 32, kernel: int = 3, shift: bool = False) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.conv1 = nn.Conv1d(dim, dim, kernel)
        self.conv2 = nn.Conv1d(dim, dim, kernel)
        self.head = nn.Conv1d(dim, vocab, 1)
        self.kernel, self.shift = kernel, shift

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens).transpose(1, 2)  # (B, dim, T)
        if self.shift:
            h = F.pad(h, (1, 0))[:, :, :-1]
        for conv in (self.conv1, self.conv2):
            h = torch.relu(conv(F.pad(h, (self.kernel - 1, 0))))
        return self.head(h)


class MaskedAttentionLM(nn.Module):
    """One causal self-attention layer over token ids; ``diagonal=2`` is the off-by-one bug."""

    def __init__(self, vocab: int = 16, dim: int = 32, length: int = 12, diagonal: int = 1) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(length, dim))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.head = nn.Linear(dim, vocab)
        self.register_buffer("mask", torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=diagonal))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.pos[: tokens.shape[1]]
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])
        t = tokens.shape[1]
        attn = scores.masked_fill(self.mask[:t, :t], float("-inf")).softmax(-1)
        return self.head(h + attn @ v).transpose(1, 2)  # (B, vocab, T) for CrossEntropyLoss


class Regressor(nn.Module):
    def __init__(self, features: int = 6, hidden: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


# ============================================================================ datasets with randomness


class JitteredBlobs(Dataset):
    """Blobs with per-example noise drawn in __getitem__ from one of several generators.

    ``torch``: torch's global generator (seeded per worker by PyTorch) -- fine;
    ``numpy``: NumPy's global generator (seeded per worker since PyTorch 1.9) -- fine;
    ``own``: a generator created in __init__, copied into every worker -- the bug.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, source: str = "torch") -> None:
        self.x, self.y, self.source = x, y, source
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        if self.source == "torch":
            noise = 0.05 * torch.randn(self.x.shape[1])
        elif self.source == "numpy":
            noise = torch.as_tensor(0.05 * np.random.randn(self.x.shape[1]), dtype=torch.float32)
        else:
            noise = torch.as_tensor(0.05 * self.rng.standard_normal(self.x.shape[1]), dtype=torch.float32)
        return self.x[i] + noise, self.y[i]


def seed_numpy_from_torch(worker_id: int) -> None:
    """A correct worker_init_fn: NumPy seeded from the worker's torch seed (differs per worker and epoch)."""
    np.random.seed(torch.initial_seed() % 2**32)


def seed_numpy_constant(worker_id: int) -> None:
    """The bug: every worker, every epoch, re-seeds NumPy with the same constant."""
    np.random.seed(1234)


# ============================================================================ optimizers and schedulers


def adam(lr: float = 3e-3) -> Callable[[nn.Module], torch.optim.Optimizer]:
    return lambda model: torch.optim.Adam(model.parameters(), lr=lr)


def head_left_out(model: nn.Module) -> torch.optim.Optimizer:
    """Bug: the optimizer is built from the body only; the head never trains."""
    return torch.optim.Adam(model.fc1.parameters(), lr=3e-3)


def warmup_cosine(warmup: int, total: int) -> Callable[[torch.optim.Optimizer], Any]:
    def build(optimizer: torch.optim.Optimizer) -> Any:
        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    return build


def epoch_step_lr(optimizer: torch.optim.Optimizer) -> Any:
    """Bug: StepLR(step_size=30) written for epochs, stepped once per batch."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)


def warmup_that_never_warms(optimizer: torch.optim.Optimizer, warmup_steps: int = 50) -> Any:
    """Bug: the warm-up branch compares with the wrong variable and never runs."""
    total = 400

    def factor(step: int) -> float:
        if step > total:  # meant: step < warmup_steps
            return (step + 1) / warmup_steps
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ============================================================================ cases


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], dict[str, Any]]
    check: str | None = None  # the check meant to catch it (planted cases)
    caught: tuple[str, ...] = ("fail",)
    also: tuple[str, ...] = ()  # other checks that legitimately see the same bug
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)


FAST = {"overfit_batch": {"steps": 200}}


def _set(pieces: dict[str, Any], **settings: Any) -> dict[str, Any]:
    """``pieces`` with some of its settings changed."""
    return {**pieces, "settings": {**pieces.get("settings", {}), **settings}}


def _tabular(model: nn.Module, data=None, **extra: Any) -> dict[str, Any]:
    (x, y), (xv, yv) = data or blobs()
    opt = extra.pop("optimizer", None) or torch.optim.Adam(model.parameters(), lr=3e-3)
    return dict(model=model, train=(x, y), val=(xv, yv), loss=nn.CrossEntropyLoss(), optimizer=opt,
                settings={"steps": 200, "batch_size": 32}, **extra)


def _seeded(cls: type, *args: Any, **kw: Any) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return cls(*args, **kw)


def clean_mlp() -> dict[str, Any]:
    return _tabular(_seeded(MLP))


def clean_cnn() -> dict[str, Any]:
    return {"model": _seeded(SmallCNN), "train": digits()[0], "val": digits()[1], "loss": nn.CrossEntropyLoss(),
                "optimizer": adam(3e-3), "scheduler": warmup_cosine(10, 200), "settings": {"steps": 200, "batch_size": 32}}


def clean_cnn_bn() -> dict[str, Any]:
    return {"model": _seeded(SmallCNN, batchnorm=True), "train": digits()[0], "val": digits()[1],
                "loss": nn.CrossEntropyLoss(), "optimizer": adam(3e-3), "settings": {"steps": 200, "batch_size": 32}}


def clean_causal_conv() -> dict[str, Any]:
    train, val = token_sequences()
    return {"model": _seeded(CausalConvLM), "train": train, "val": val, "loss": nn.CrossEntropyLoss(),
                "optimizer": adam(1e-2), "settings": {"steps": 200, "batch_size": 32},
                "options": {"causality": {"input_time_dim": 1, "output_time_dim": 2}}}


def clean_causal_conv_strict() -> dict[str, Any]:
    train, val = token_sequences()
    return {"model": _seeded(CausalConvLM, shift=True), "train": train, "val": val, "loss": nn.CrossEntropyLoss(),
                "optimizer": adam(1e-2), "settings": {"steps": 200, "batch_size": 32},
                "options": {"causality": {"input_time_dim": 1, "output_time_dim": 2, "strict": True}}}


def clean_attention() -> dict[str, Any]:
    train, val = token_sequences()
    return {"model": _seeded(MaskedAttentionLM), "train": train, "val": val, "loss": nn.CrossEntropyLoss(),
                "optimizer": adam(1e-2), "settings": {"steps": 200, "batch_size": 32},
                "options": {"causality": {"input_time_dim": 1, "output_time_dim": 2}}}


def clean_gru() -> dict[str, Any]:
    train, val = float_sequences()
    return {"model": _seeded(TimeMajorGRU), "train": train, "val": val, "loss": nn.CrossEntropyLoss(),
                "optimizer": adam(1e-2), "settings": {"steps": 200, "batch_size": 32}}


def clean_regression() -> dict[str, Any]:
    train, val = regression()
    return {"model": _seeded(Regressor), "train": train, "val": val, "loss": nn.MSELoss(), "optimizer": adam(1e-2),
                "settings": {"steps": 200, "batch_size": 32}}


def clean_workers_torch() -> dict[str, Any]:
    (x, y), val = blobs()
    return {"model": _seeded(MLP), "train": DataLoader(JitteredBlobs(x, y, "torch"), batch_size=32), "val": val,
                "loss": nn.CrossEntropyLoss(), "optimizer": adam(), "settings": {"steps": 200}}


def clean_workers_seeded_numpy() -> dict[str, Any]:
    (x, y), val = blobs()
    loader = DataLoader(JitteredBlobs(x, y, "numpy"), batch_size=32, num_workers=2,
                        worker_init_fn=seed_numpy_from_torch)
    return {"model": _seeded(MLP), "train": loader, "val": val, "loss": nn.CrossEntropyLoss(), "optimizer": adam(), "settings": {"steps": 200}}


def clean_sgd_step_schedule() -> dict[str, Any]:
    model = _seeded(MLP)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=120, gamma=0.1)
    return _tabular(model, optimizer=opt, scheduler=sched)


def clean_rezero() -> dict[str, Any]:
    return _tabular(_seeded(ReZeroMLP))


def clean_cyclic_lr() -> dict[str, Any]:
    model = _seeded(MLP)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=1e-4, max_lr=0.1, step_size_up=20)
    return _tabular(model, optimizer=opt, scheduler=sched)


def one_cycle(total: int) -> Callable[[torch.optim.Optimizer], Any]:
    return lambda optimizer: torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=total)


CLEAN: dict[str, Case] = {c.name: c for c in (
    Case("mlp_tabular", clean_mlp, description="MLP with dropout on standardised blobs, Adam"),
    Case("cnn_digits", clean_cnn, description="small CNN on digits, warm-up + cosine"),
    Case("cnn_bn_digits", clean_cnn_bn, description="small CNN with batch norm on digits"),
    Case("causal_conv_lm", clean_causal_conv, description="causal 1-D conv LM on token ids"),
    Case("causal_conv_lm_strict", clean_causal_conv_strict, description="shifted causal conv, strict causality"),
    Case("masked_attention_lm", clean_attention, description="masked self-attention LM (diagonal=1)"),
    Case("time_major_gru", clean_gru, description="GRU fed with permute (time-major)"),
    Case("regression_mse", clean_regression, description="MLP regression with MSE"),
    Case("workers_torch_rng", clean_workers_torch, description="dataset noise from torch's RNG"),
    Case("workers_numpy_seeded", clean_workers_seeded_numpy, description="NumPy noise, worker_init_fn from torch seed"),
    Case("sgd_steplr_sized_right", clean_sgd_step_schedule, description="SGD + StepLR sized in updates"),
    Case("rezero_gates", clean_rezero, description="residual branch behind a zero-initialised gate"),
    Case("cyclic_lr", clean_cyclic_lr, description="CyclicLR with troughs at 0.1% of the peak"),
    Case("one_cycle", lambda: _tabular(_seeded(MLP), scheduler=one_cycle(200)), description="OneCycleLR over 200 steps"),
)}


def _with_optimizer(build: Callable[[nn.Module], torch.optim.Optimizer]) -> dict[str, Any]:
    model = _seeded(MLP)
    return _tabular(model, optimizer=build(model))


def _shuffled_labels() -> dict[str, Any]:
    (x, y), val = blobs()
    g = torch.Generator().manual_seed(7)
    return _tabular(_seeded(MLP), data=((x, y[torch.randperm(len(y), generator=g)]), val))


def _leaky_split() -> dict[str, Any]:
    (x, y), (xv, yv) = blobs()
    xv, yv = torch.cat([x[:64], xv[64:]]), torch.cat([y[:64], yv[64:]])  # val built from overlapping ranges
    return _tabular(_seeded(MLP), data=((x, y), (xv, yv)))


def _near_copies_in_val() -> dict[str, Any]:
    (x, y), (xv, yv) = blobs()
    g = torch.Generator().manual_seed(3)
    xv, yv = xv.clone(), yv.clone()
    xv[:40] = x[200:240] + 1e-3 * torch.randn(40, x.shape[1], generator=g)  # re-exported with rounding noise
    yv[:40] = y[200:240]
    return _tabular(_seeded(MLP), data=((x, y), (xv, yv)))


def _imbalanced() -> dict[str, Any]:
    g = torch.Generator().manual_seed(4)
    centers = torch.randn(2, 10, generator=g) * 2.0

    def sample(n: int):
        y = (torch.rand(n, generator=g) < 0.05).long()  # 5% positives
        return centers[y] + torch.randn(n, 10, generator=g), y

    return _tabular(_seeded(MLP, classes=2), data=(sample(800), sample(400)))


def _duplicated_train() -> dict[str, Any]:
    (x, y), val = blobs()
    return _tabular(_seeded(MLP), data=((torch.cat([x, x[:100]]), torch.cat([y, y[:100]])), val))


def _nan_inputs() -> dict[str, Any]:
    (x, y), val = blobs()
    x = x.clone()
    x[::7, 3] = float("nan")  # missing values never imputed
    return _tabular(_seeded(MLP), data=((x, y), val))


def _adam_at_sgd_lr() -> dict[str, Any]:
    (x, y), (xv, yv) = digits()
    model = _seeded(MLP, features=64, classes=10)
    return dict(model=model, train=(x.flatten(1), y), val=(xv.flatten(1), yv), loss=nn.CrossEntropyLoss(),
                optimizer=torch.optim.Adam(model.parameters(), lr=0.1), settings={"steps": 300, "batch_size": 32})


def _vit_without_positions() -> dict[str, Any]:
    import sys
    from pathlib import Path

    sys.path.append(str(Path(__file__).parents[1] / "corpus"))
    from models import vit

    return vit(bug=True)


def _digits_case(model: nn.Module, scale: str, **extra: Any) -> dict[str, Any]:
    train, val = digits(scale)
    return dict(model=model, train=train, val=val, loss=nn.CrossEntropyLoss(), optimizer=adam(3e-3),
                settings={"steps": 200, "batch_size": 32}, **extra)


def _own_generator_workers() -> dict[str, Any]:
    (x, y), val = blobs()
    return {"model": _seeded(MLP), "train": DataLoader(JitteredBlobs(x, y, "own"), batch_size=32, num_workers=2),
                "val": val, "loss": nn.CrossEntropyLoss(), "optimizer": adam(), "settings": {"steps": 200}}


def _constant_seed_workers() -> dict[str, Any]:
    (x, y), val = blobs()
    loader = DataLoader(JitteredBlobs(x, y, "numpy"), batch_size=32, num_workers=2, worker_init_fn=seed_numpy_constant)
    return {"model": _seeded(MLP), "train": loader, "val": val, "loss": nn.CrossEntropyLoss(), "optimizer": adam(), "settings": {"steps": 200}}


def _attention_off_by_one() -> dict[str, Any]:
    out = clean_attention()
    out["model"] = _seeded(MaskedAttentionLM, diagonal=2)
    return out


def _strict_declared_but_sees_t() -> dict[str, Any]:
    out = clean_causal_conv_strict()
    out["model"] = _seeded(CausalConvLM, shift=False)
    return out


def _gru_view() -> dict[str, Any]:
    out = clean_gru()
    out["model"] = _seeded(TimeMajorGRU, view=True)
    return out


def _regression_mean_offset() -> dict[str, Any]:
    train, val = regression(offset=20.0)
    return {"model": _seeded(Regressor), "train": train, "val": val, "loss": nn.MSELoss(), "optimizer": adam(1e-2),
                "settings": {"steps": 200, "batch_size": 32}}


def _mse_broadcast() -> dict[str, Any]:
    (x, y), (xv, yv) = regression()
    return {"model": _seeded(Regressor), "train": (x, y[:, 0]), "val": (xv, yv[:, 0]), "loss": nn.MSELoss(),
                "optimizer": adam(1e-2), "settings": {"steps": 200, "batch_size": 32}}


PLANTED: dict[str, Case] = {c.name: c for c in (
    Case("head_init_x30", lambda: _tabular(_seeded(ScaledHeadMLP)), "loss_at_init",
         description="final layer initialised 30x too large"),
    Case("softmax_then_cross_entropy", lambda: _tabular(_seeded(SoftmaxMLP)), "loss_at_init",
         also=("overfit_batch",), description="model ends in softmax, loss is CrossEntropyLoss"),
    Case("mse_target_mean_20", _regression_mean_offset, "loss_at_init", caught=("warn", "fail"),
         also=("zero_input_baseline",), description="regression targets around 20, bias left at 0"),
    Case("mse_broadcast", _mse_broadcast, "loss_at_init",
         also=("overfit_batch", "loss_decreases", "zero_input_baseline"),
         description="outputs (B, 1) against targets (B,): MSE broadcasts to (B, B)"),
    Case("labels_shuffled_apart", _shuffled_labels, "zero_input_baseline",
         also=("loss_decreases",), description="train inputs and labels shuffled separately"),
    Case("sigmoid_before_cross_entropy", lambda: _tabular(_seeded(SigmoidMLP)), "overfit_batch",
         description="sigmoid on the logits before CrossEntropyLoss"),
    Case("lr_typo_3e-6", lambda: _with_optimizer(lambda m: torch.optim.Adam(m.parameters(), lr=3e-6)),
         "loss_decreases", also=("overfit_batch", "zero_input_baseline"),
         description="learning rate 3e-6 typed for 3e-3"),
    Case("view_instead_of_permute", _gru_view, "batch_independence",
         also=("zero_input_baseline", "loss_decreases", "eval_determinism"),
         description="x.view(T, B, F) instead of x.permute(1, 0, 2) before a time-major GRU"),
    Case("batch_mean_centering", lambda: _tabular(_seeded(BatchMeanMLP)), "batch_independence",
         also=("eval_determinism",), description="features centred over dim 0 (the batch)"),
    Case("causal_mask_off_by_one", _attention_off_by_one, "causality",
         description="attention mask triu(diagonal=2): position t sees t+1"),
    Case("strict_model_sees_current", _strict_declared_but_sees_t, "causality",
         description="declared 'before t' but the output at t uses input t"),
    Case("head_left_out_of_optimizer", lambda: _with_optimizer(head_left_out),
         "param_updates", also=("overfit_batch",), description="optimizer built on fc1 only"),
    Case("layer_not_used", lambda: _tabular(_seeded(UnusedLayerMLP)), "param_updates",
         description="fc2 built but never called in forward"),
    Case("first_layer_frozen", lambda: _tabular(_seeded(FrozenMLP)), "param_updates", caught=("warn",),
         also=("overfit_batch",),
         description="fc1.requires_grad_(False) left from fine-tuning"),
    Case("steplr_epochs_per_batch", lambda: _tabular(_seeded(MLP), scheduler=epoch_step_lr), "lr_schedule",
         description="StepLR(step_size=30) meant per epoch, stepped per batch over 200 updates"),
    Case("cosine_total_too_short", lambda: _tabular(_seeded(MLP), scheduler=warmup_cosine(10, 60)),
         "lr_schedule", description="cosine schedule ends at update 60 of 200"),
    Case("one_cycle_too_short", lambda: _tabular(_seeded(MLP), scheduler=one_cycle(120)), "lr_schedule",
         description="OneCycleLR(total_steps=120) in a run of 200 updates: it raises at update 121"),
    Case("warmup_never_happens", lambda: _tabular(_seeded(MLP), scheduler=warmup_that_never_warms),
         "lr_schedule", description="warm-up of 50 configured, its branch never runs"),
    Case("raw_pixels_0_255", lambda: _digits_case(_seeded(SmallCNN), "raw255"), "input_stats",
         caught=("warn",), also=("loss_at_init",), description="digits fed as raw 0-255 pixels"),
    Case("normalised_twice", lambda: _digits_case(_seeded(SmallCNN), "twice"), "input_stats", caught=("warn",),
         also=("zero_input_baseline", "prediction_dynamics"),
         description="digits standardised twice"),
    Case("nan_inputs", _nan_inputs, "input_stats",
         also=("loss_at_init", "zero_input_baseline", "loss_decreases", "param_updates", "prediction_dynamics",
               "activations"),
         description="missing values left as NaN"),
    Case("adam_at_sgd_lr", _adam_at_sgd_lr, "lr_range", also=("activations",),  # the large rate kills ReLUs
         description="Adam left at SGD's learning rate 0.1"),
    Case("vit_positions_never_added", _vit_without_positions, "position_sensitivity", also=("param_updates",),
         description="a ViT whose positional embedding is never added"),
    Case("saturated_tanh", lambda: _tabular(_seeded(SaturatedTanhMLP)), "activations", caught=("warn",),
         description="tanh units initialised 50x too large"),
    Case("imbalanced_labels", _imbalanced, "input_stats", caught=("warn",), also=("loss_at_init",),
         description="binary labels with 5% positives, nothing done about it"),
    Case("val_overlaps_train", _leaky_split, "data_leakage", description="a quarter of val copied from train"),
    Case("val_near_copies_of_train", _near_copies_in_val, "data_leakage",
         description="40 validation rows are training rows plus rounding noise"),
    Case("train_duplicated", _duplicated_train, "data_leakage", caught=("warn",),
         description="100 training examples appended twice"),
    Case("dropout_on_in_eval", lambda: _tabular(_seeded(AlwaysDropoutMLP)), "eval_determinism",
         description="F.dropout(training=True)"),
    Case("batchnorm_training_in_eval", lambda: _tabular(_seeded(ForcedBatchNormMLP)), "eval_determinism",
         also=("batch_independence",), description="F.batch_norm(training=True)"),
    Case("worker_generator_in_init", _own_generator_workers, "worker_streams",
         description="np.random.default_rng(0) created in __init__, used in __getitem__"),
    Case("worker_init_constant_seed", _constant_seed_workers, "worker_streams",
         description="worker_init_fn re-seeds NumPy with a constant"),
    Case("batch_30_on_4_devices", lambda: _set(_tabular(_seeded(MLP)), batch_size=30), "batch_divisibility",
         options={"batch_divisibility": {"devices": 4}}, description="batch 30 shared by 4 devices"),
    Case("dead_relus", lambda: _tabular(_seeded(DeadReluMLP)), "prediction_dynamics",
         also=("param_updates", "zero_input_baseline", "loss_decreases", "overfit_batch", "batch_independence",
               "activations"),
         description="hidden biases initialised to -10: all ReLUs dead"),
)}


def kwargs_for(case: Case) -> dict[str, Any]:
    """``run_checks`` keyword arguments of a case, with its options and the test budgets."""
    kwargs = case.build()
    options = {**FAST}
    for name, values in {**kwargs.pop("options", {}), **case.options}.items():
        options[name] = {**options.get(name, {}), **values}
    kwargs["options"] = options
    return kwargs
