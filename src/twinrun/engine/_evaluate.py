"""Evaluation on the shared validation batches, example by example."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from twinrun.engine._build import CandidateState
from twinrun.engine._data import move_to
from twinrun.engine._outputs import loss_input, prediction
from twinrun.engine._placement import Placement
from twinrun.engine._tta import augment_views
from twinrun.errors import ConfigError
from twinrun.rng import RngStreams
from twinrun.spec import Metric, check_metric_output

__all__ = ["EvalOutput", "EvalSet", "eval_set", "evaluate"]


@dataclass
class EvalOutput:
    """Per-example values (``"loss"`` and every metric) and, if kept, the raw outputs."""

    step: int
    per_example: dict[str, np.ndarray]
    outputs: torch.Tensor | None = None

    def means(self) -> dict[str, float]:
        return {k: float(np.mean(v)) for k, v in self.per_example.items()}


def evaluate(
    state: CandidateState,
    batches: Sequence[tuple[Any, Any]],
    *,
    loss_per_example: Callable[[Any, Any], torch.Tensor],
    metrics: Mapping[str, Metric],
    device: torch.device,
    streams: RngStreams,
    step: int,
    keep_outputs: bool = False,
    stream: str = "eval",
    views: Sequence[Sequence[tuple[Any, Any]]] | None = None,
) -> EvalOutput:
    """Evaluate one candidate in eval mode on ``batches``; restores train mode afterwards.

    ``views``: per batch, its test-time augmented passes (``_tta``); the prediction is their mean.
    """
    model = state.model
    values: dict[str, list[torch.Tensor]] = {"loss": [], **{name: [] for name in metrics}}
    kept: list[torch.Tensor] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), streams.isolated(stream, step, devices=[device]):
            for index, (inputs, targets) in enumerate(batches):
                inputs, targets = move_to(inputs, device), move_to(targets, device)
                if views is None:
                    outputs = model(inputs)
                    predicted = prediction(outputs, state.output_key)
                else:  # test-time augmentation: the loss and metrics see the mean prediction
                    raw = [model(move_to(x, device)) for x, _ in views[index]]
                    outputs = predicted = torch.stack([prediction(r, state.output_key) for r in raw]).mean(dim=0)
                    if state.loss_takes == "outputs" and not isinstance(raw[0], torch.Tensor):
                        raise ConfigError(
                            f"candidate {state.name!r}: eval_augment averages predictions, but its loss takes "
                            "the model's whole structured output",
                            fix="drop eval_augment, or give the candidate a loss of the prediction",
                        )
                n = int(targets.shape[0])
                if state.loss_takes is None:  # evaluated before any step (Twin): decide on these outputs
                    state.loss_takes, batch_loss = loss_input(loss_per_example, outputs, targets, state.output_key)
                else:
                    batch_loss = loss_per_example(predicted if state.loss_takes == "prediction" else outputs, targets)
                values["loss"].append(check_metric_output("loss", batch_loss, n).float().cpu())
                for name, metric in metrics.items():
                    values[name].append(check_metric_output(name, metric(predicted, targets), n).float().cpu())
                if keep_outputs:
                    kept.append(predicted.detach().float().cpu())
    finally:
        model.train(was_training)
    per_example = {k: torch.cat(v).numpy().astype(np.float64) for k, v in values.items()}
    return EvalOutput(step=step, per_example=per_example, outputs=torch.cat(kept) if kept else None)


@dataclass
class EvalSet:
    """A split's batches (and their test-time augmented passes), evaluated alike for every candidate."""

    batches: list[tuple[Any, Any]]
    views: list[list[tuple[Any, Any]]] | None
    losses: Mapping[str, Callable[[Any, Any], torch.Tensor]]
    metrics: Mapping[str, Metric]
    placement: Placement  # each candidate is evaluated on its own device
    streams: RngStreams

    def __len__(self) -> int:
        return len(self.batches)

    def evaluate(
        self,
        state: CandidateState,
        step: int,
        *,
        index: Sequence[int] | None = None,
        keep_outputs: bool = False,
        stream: str = "eval",
    ) -> EvalOutput:
        """:func:`evaluate` on the batches ``index`` (default: all)."""
        chosen = range(len(self.batches)) if index is None else index
        return evaluate(
            state,
            [self.batches[i] for i in chosen],
            views=None if self.views is None else [self.views[i] for i in chosen],
            loss_per_example=self.losses[state.name],
            metrics=self.metrics,
            device=self.placement.device_of(state.name),
            streams=self.streams,
            step=step,
            keep_outputs=keep_outputs,
            stream=stream,
        )


def eval_set(
    batches: Iterable[tuple[Any, Any]],
    augment: Callable[..., Any] | None,
    passes: int,
    split: str,
    experiment: str,
    losses: Mapping[str, Callable[[Any, Any], torch.Tensor]],
    metrics: Mapping[str, Metric],
    placement: Placement,
    streams: RngStreams,
) -> EvalSet:
    """A split's batches and, with an ``eval_augment``, their test-time augmented passes (made once)."""
    kept = list(batches)
    views = None
    if augment is not None:
        views = augment_views(augment, kept, passes=passes, streams=streams, split=split, experiment=experiment)
    return EvalSet(kept, views, losses, metrics, placement, streams)
