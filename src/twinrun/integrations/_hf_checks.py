"""Hugging Face models and datasets in the shape twinrun's checks train: ``model(x) -> logits``, ``(x, y)``.

The checks feed the model its main input alone (``model.main_input_name``:
``input_ids`` for text, ``pixel_values`` for images); other features of a
batch (an attention mask, token type ids) are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LabelledPairs", "LogitsOf", "default_loss"]


class LogitsOf(nn.Module):
    """``model(**{main_input_name: x}).logits`` as a module of one tensor (the checks' ``model(x)``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.input_name = str(getattr(model, "main_input_name", "input_ids"))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return cast("torch.Tensor", self.model(**{self.input_name: inputs}).logits)


class LabelledPairs(torch.utils.data.Dataset[Any]):
    """A dataset of feature dicts with ``labels`` as ``(main input, labels)`` pairs."""

    def __init__(self, dataset: Any, input_name: str) -> None:
        self.dataset = dataset
        self.input_name = input_name

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item: Mapping[str, Any] = self.dataset[index]
        labels = item.get("labels", item.get("label"))
        if labels is None or self.input_name not in item:
            raise KeyError(
                f"item {index} has no {self.input_name!r} and 'labels': the checks need labelled "
                f"examples of the model's main input"
            )
        return torch.as_tensor(item[self.input_name]), torch.as_tensor(labels)


def default_loss(model: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy over the last dimension; for a causal language model, of the next position's label."""
    causal = type(model).__name__.endswith("ForCausalLM")

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if causal:
            logits, labels = logits[:, :-1], labels[:, 1:]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)

    return loss
