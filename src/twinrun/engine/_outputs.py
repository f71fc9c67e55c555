"""What a model returns, and which part of it is the prediction.

Models return a tensor, or a structure: a GPT ``(logits, loss)``, an RNN
``(logits, hidden)``, a VAE ``(recon, mu, logvar)``, a dict or a dataclass (a
``transformers``-style ``ModelOutput``) with a ``logits`` entry. twinrun keeps
what the model returns for the candidate's **loss** when the loss accepts it
(a VAE's loss needs all three), and uses the **prediction** everywhere else
(metrics, saved outputs and seed ensembles, the checks):

* the ``output_key`` setting names it (an entry or attribute name, or a
  position in a tuple);
* by default (``"auto"``) it is the tensor itself, else the ``logits`` entry or
  attribute, else the first tensor found.

Which of the two the loss takes is decided once per candidate and loss, on the
first outputs it sees (the preflight, or :class:`~twinrun.Twin`'s first step):
what the model returns if the loss accepts it, else the prediction (a
``CrossEntropyLoss`` handed a GPT's ``(logits, loss)`` gets the logits).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch

from twinrun.errors import BuildError

__all__ = ["loss_input", "prediction", "replace_prediction"]


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, Mapping):
        items: Any = value.values()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = (getattr(value, f.name) for f in dataclasses.fields(value))
    elif isinstance(value, (tuple, list)):
        items = value
    else:
        return None
    for item in items:
        found = _first_tensor(item)
        if found is not None:
            return found
    return None


def _entry(outputs: Any, key: str | int) -> Any:
    if isinstance(key, int) and isinstance(outputs, (tuple, list)) and -len(outputs) <= key < len(outputs):
        return outputs[key]
    if isinstance(key, str):
        if isinstance(outputs, Mapping) and key in outputs:
            return outputs[key]
        if not isinstance(outputs, (tuple, list, Mapping)) and hasattr(outputs, key):
            return getattr(outputs, key)
        if isinstance(outputs, tuple) and hasattr(outputs, "_fields") and key in outputs._fields:
            return getattr(outputs, key)
    return None


def prediction(outputs: Any, key: str | int = "auto") -> torch.Tensor:
    """The prediction tensor of ``outputs`` (see the module docstring).

    Raises:
        BuildError: nothing in ``outputs`` is a tensor, or ``key`` names nothing.
    """
    if isinstance(outputs, torch.Tensor) and key == "auto":
        return outputs
    if key != "auto":
        found = _entry(outputs, key)
        if not isinstance(found, torch.Tensor):
            raise BuildError(
                f"output_key={key!r} names no tensor in the model's outputs ({_describe(outputs)})",
                fix="use output_key='auto', a name of an entry or attribute, or a position in the tuple",
            )
        return found
    found = _entry(outputs, "logits")
    if not isinstance(found, torch.Tensor):
        found = _first_tensor(outputs)
    if found is None:
        raise BuildError(
            f"the model's outputs hold no tensor ({_describe(outputs)})",
            fix="return a tensor, or a tuple, dict or dataclass holding the prediction",
        )
    return cast("torch.Tensor", found)


def replace_prediction(outputs: Any, new: torch.Tensor, key: str | int = "auto") -> Any:
    """``outputs`` with its prediction tensor (see :func:`prediction`) replaced by ``new``; the rest as is."""
    old = prediction(outputs, key)

    def swap(value: Any) -> Any:
        if value is old:
            return new
        if isinstance(value, Mapping):
            return type(value)({k: swap(v) for k, v in value.items()})  # type: ignore[call-arg]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.replace(
                value, **{f.name: swap(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
            )
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*(swap(v) for v in value))
        if isinstance(value, (tuple, list)):
            return type(value)(swap(v) for v in value)
        return value

    return swap(outputs)


def _describe(outputs: Any) -> str:
    if isinstance(outputs, torch.Tensor):
        return f"a tensor of shape {tuple(outputs.shape)}"
    if isinstance(outputs, Mapping):
        return f"a {type(outputs).__name__} with keys {list(outputs)[:6]}"
    if isinstance(outputs, (tuple, list)):
        return f"a {type(outputs).__name__} of {len(outputs)}"
    return f"a {type(outputs).__name__}"


def loss_input(
    loss_fn: Callable[[Any, Any], torch.Tensor],
    outputs: Any,
    targets: Any,
    key: str | int = "auto",
) -> tuple[str, torch.Tensor]:
    """Which part of ``outputs`` ``loss_fn`` takes (``"outputs"`` or ``"prediction"``), and the loss.

    What the model returns is tried first; if the loss raises on it (and the
    outputs are a structure), the prediction. If both raise, the first error.
    """
    if isinstance(outputs, torch.Tensor) and key == "auto":
        return "outputs", loss_fn(outputs, targets)
    try:
        return "outputs", loss_fn(outputs, targets)
    except Exception as first:  # noqa: BLE001 - a loss written for a tensor: give it the prediction
        try:
            return "prediction", loss_fn(prediction(outputs, key), targets)
        except Exception:  # noqa: BLE001 - neither fits: the error on what the model returns says most
            raise first from None
