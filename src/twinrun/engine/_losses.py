"""Recognise a loss by what it computes, not by its name.

Losses are usually wrapped: ``def loss(logits, y): return F.cross_entropy(logits.flatten(0, 1), y.flatten())``,
a lambda, a ``partial``. :func:`recognise_loss` calls the loss on a probe (random
outputs shaped like the model's, the real targets) and compares it with the
losses twinrun knows (cross-entropy and NLL, with classes in dimension 1 or
last; binary cross-entropy on logits or on probabilities; mean squared error).
A loss that matches none (label smoothing, a weighted or a summed loss, a VAE's)
is unknown, and says so; nothing is guessed from its name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["recognise_loss"]


def _candidates(out: torch.Tensor, targets: torch.Tensor) -> list[tuple[str, int | None, torch.Tensor, Any]]:
    """(kind, class dimension, the input to give the loss, the reference value)."""
    found: list[tuple[str, int | None, torch.Tensor, Any]] = []
    if not targets.is_floating_point():
        layouts = [(1, lambda f, x: f(x, targets))]
        if out.ndim >= 3:  # classes last: a language model's [B, T, V] against [B, T]
            layouts.append((-1, lambda f, x: f(x.reshape(-1, x.shape[-1]), targets.reshape(-1))))
        for dim, call in layouts:
            found.append(("cross_entropy", dim, out, lambda call=call: call(F.cross_entropy, out)))
            logp = torch.log_softmax(out, dim=dim)
            found.append(("nll", dim, logp, lambda call=call, logp=logp: call(F.nll_loss, logp)))
        return found
    if targets.shape != out.shape:
        return found
    if bool(((targets >= 0) & (targets <= 1)).all()):
        found.append(("bce_logits", None, out, lambda: F.binary_cross_entropy_with_logits(out, targets)))
        p = torch.sigmoid(out)
        found.append(("bce", None, p, lambda p=p: F.binary_cross_entropy(p, targets)))
    found.append(("mse", None, out, lambda: F.mse_loss(out, targets)))
    return found


def recognise_loss(
    loss_fn: Callable[[Any, Any], torch.Tensor],
    prediction: torch.Tensor,
    targets: Any,
) -> tuple[str, int | None] | None:
    """``(kind, class_dim)`` of the loss ``loss_fn`` computes, probed on outputs shaped like ``prediction``.

    ``kind`` is ``cross_entropy``, ``nll``, ``bce_logits``, ``bce`` or ``mse``; ``class_dim`` the
    dimension holding the classes (``None`` for the others). ``None``: none of them.
    """
    if not isinstance(prediction, torch.Tensor) or not isinstance(targets, torch.Tensor):
        return None
    generator = torch.Generator(device="cpu").manual_seed(20261201)
    out = torch.randn(prediction.shape, generator=generator).to(prediction.device, torch.float32)
    targets = targets.to(prediction.device)
    with torch.no_grad():
        for kind, dim, given, reference in _candidates(out, targets):
            try:
                expected = reference()
                value = loss_fn(given, targets)
            except Exception:  # noqa: BLE001, S112 - this layout does not fit the loss: try the next
                continue
            if (
                isinstance(value, torch.Tensor)
                and value.numel() == 1
                and torch.allclose(value.detach().float().reshape(()), expected.float(), rtol=1e-4, atol=1e-6)
            ):
                return kind, dim
    return None
