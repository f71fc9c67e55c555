"""Autograd's advice on gradient layouts, used up once per process where a batched group chooses its layout.

A vectorised group's gradients are views of one flat tensor per parameter
group (for the stacked, foreach update), so autograd's accumulator advises
that "grad and param do not obey the gradient layout contract". The advice
does not apply. Torch gives it at most once per process (``TORCH_WARN_ONCE``),
so :func:`use_up_layout_advice` provokes it once, on a 2x2 tensor, inside a
warnings filter; no step needs a filter after that.

Side effects: the first call runs that tiny backward; the advice is then not
given again in this process (as it was not after a first batched step before).
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["use_up_layout_advice"]

_given: list[bool] = []  # the advice was provoked (and swallowed) in this process


def use_up_layout_advice() -> None:
    """Provoke autograd's gradient-layout advice once, unseen (a no-op after the first call)."""
    if _given:
        return
    with warnings.catch_warnings(), torch.enable_grad():
        warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")
        param = torch.zeros(2, 2, requires_grad=True)
        param.grad = torch.zeros(2, 4)[:, :2]  # a gradient whose strides are not the parameter's
        param.sum().backward()
    _given.append(True)
