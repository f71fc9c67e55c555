"""Evaluation on the shared validation batches, example by example."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from twinrun.engine._build import CandidateState
from twinrun.engine._data import move_to
from twinrun.engine._outputs import loss_input, prediction
from twinrun.rng import RngStreams
from twinrun.spec import Metric
from twinrun.spec._metrics import check_metric_output

__all__ = ["EvalOutput", "evaluate"]


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
) -> EvalOutput:
    """Evaluate one candidate in eval mode on ``batches``; restores train mode afterwards."""
    model = state.model
    values: dict[str, list[torch.Tensor]] = {"loss": [], **{name: [] for name in metrics}}
    kept: list[torch.Tensor] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), streams.isolated(stream, step, devices=[device]):
            for inputs, targets in batches:
                inputs, targets = move_to(inputs, device), move_to(targets, device)
                outputs = model(inputs)
                predicted = prediction(outputs, state.output_key)
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
