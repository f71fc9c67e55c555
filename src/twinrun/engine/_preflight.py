"""Before training: every candidate on 2 training examples, so bad input fails named and early.

The augmentation, the model, the loss (and its per-example form), the metrics
and the range of class-index targets are tried for each candidate, in eval mode
and inside a stream of their own (nothing a run draws is shifted); the output
kind (logits, binary logits or values) is inferred on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.utils.data import TensorDataset

from twinrun.engine._build import CandidateState
from twinrun.engine._data import SharedData, move_to
from twinrun.engine._executor import shape_of as _shape
from twinrun.engine._losses import recognise_loss
from twinrun.engine._outputs import loss_input, prediction
from twinrun.engine._placement import Placement
from twinrun.errors import BuildError
from twinrun.rng import RngStreams
from twinrun.spec import Metric, check_metric_output

__all__ = ["output_kind", "preflight"]


def preflight(
    states: Mapping[str, CandidateState],
    data: SharedData,
    streams: RngStreams,
    placement: Placement,
    metrics: Mapping[str, Metric],
    eval_losses: Mapping[str, Callable[[Any, Any], torch.Tensor]],
    output_setting: str,
) -> str:
    """Run every candidate on 2 training examples in eval mode, each on its device; the output kind of the run."""
    first, labels = data.train_batch(1)
    kinds = set()
    for name, state in states.items():
        device = placement.device_of(name)
        inputs, targets = move_to(first[:2], device), move_to(labels[:2], device)
        if state.augment is not None:
            try:
                with streams.isolated("preflight"):
                    out = state.augment(inputs, targets, generator=streams.torch("preflight", device=device))
            except Exception as exc:
                raise BuildError(
                    f"candidate {name!r}: augmentation {state.spec.augment.name} failed on a "  # type: ignore[union-attr]
                    f"batch of 2: {type(exc).__name__}: {exc}",
                    fix="an augmentation is called as fn(inputs, targets, generator=g) and returns (inputs, targets)",
                ) from exc
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise BuildError(
                    f"candidate {name!r}: augmentation {state.spec.augment.name} returned "
                    f"{type(out).__name__}, not (inputs, targets)",
                )
        was_training = state.model.training
        state.model.eval()
        try:
            with torch.no_grad(), streams.isolated("preflight"):
                try:
                    outputs = state.model(inputs)
                except Exception as exc:
                    raise BuildError(
                        f"candidate {name!r}: the model fails on a batch of inputs of shape "
                        f"{_shape(inputs)}: {type(exc).__name__}: {exc}",
                        fix="check the model's input layer against the data",
                    ) from exc
                predicted = prediction(outputs, state.output_key)
                _check_class_range(name, state, predicted, targets, data)
                try:
                    state.loss_takes, loss = loss_input(state.loss_fn, outputs, targets, state.output_key)
                    eval_losses[name](outputs if state.loss_takes == "outputs" else predicted, targets)
                except Exception as exc:
                    raise BuildError(
                        f"candidate {name!r}: outputs {_shape(outputs)} don't fit the loss "
                        f"{state.spec.loss.name} with targets of shape {_shape(targets)}: {exc}",
                        fix=_layout_hint(predicted, inputs)
                        or "make the model's output layer match the targets (number of classes, dtype)",
                    ) from exc
                if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                    raise BuildError(
                        f"candidate {name!r}: loss {state.spec.loss.name} returned {_shape(loss)}, not a scalar",
                        fix="use a loss with reduction='mean' (the default)",
                    )
                for metric_name, metric in metrics.items():
                    check_metric_output(metric_name, metric(predicted, targets), 2)
        finally:
            state.model.train(was_training)
        kind = output_kind(output_setting, state.loss_fn, predicted)
        if kind == "values" and output_setting == "auto":  # a wrapped loss: recognised by what it computes
            found = (
                recognise_loss(state.loss_fn, predicted, targets)
                if state.loss_takes == "prediction" or isinstance(outputs, torch.Tensor)
                else None
            )
            kind = {"cross_entropy": "logits", "nll": "logits", "bce_logits": "binary_logits"}.get(
                found[0] if found else "", "values"
            )
        kinds.add(kind)
    return kinds.pop() if len(kinds) == 1 else "values"


def _layout_hint(predicted: Any, inputs: Any) -> str | None:
    """A fix for outputs flattened over (time, batch) of a batch-first input: a sequence-first model."""
    if not (isinstance(predicted, torch.Tensor) and isinstance(inputs, torch.Tensor)) or inputs.ndim < 2:
        return None
    batch, flat = int(inputs.shape[0]), int(inputs.shape[0] * inputs.shape[1])
    if predicted.ndim >= 1 and predicted.shape[0] == flat and flat != batch:
        return (
            f"the prediction has {flat} rows for {batch} examples of length {int(inputs.shape[1])}: a "
            "sequence-first model (an nn.LSTM/GRU without batch_first) flattening (time, batch) was fed "
            "batch-first data; declare it with --set batch_dim=1 (Experiment(batch_dim=1)), or build it "
            "with batch_first=True"
        )
    return None


def _check_class_range(name: str, state: CandidateState, outputs: Any, targets: Any, data: SharedData) -> None:
    """Class-index targets must be below the number of outputs, in every example of the data.

    A batch of 2 may hold only small classes: the targets of the whole data
    (where they are one tensor) are checked, so that a candidate whose output
    layer is too small fails here, named, and not at some step of training.
    """
    if not (isinstance(outputs, torch.Tensor) and isinstance(targets, torch.Tensor)):
        return
    if outputs.ndim < 2 or targets.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        return
    if output_kind("auto", state.loss_fn, outputs) != "logits":
        return
    classes = int(outputs.shape[1])
    for split, dataset in (("training", data.train), ("validation", data.val)):
        if not isinstance(dataset, TensorDataset):
            continue
        labels = dataset.tensors[-1]
        if labels.numel() and labels.dtype == targets.dtype and int(labels.max()) >= classes:
            raise BuildError(
                f"candidate {name!r}: its outputs have {classes} classes (shape {_shape(outputs)} on 2 "
                f"examples) but the {split} targets go up to {int(labels.max())}",
                fix=f"give the model's output layer {int(labels.max()) + 1} outputs (or more)",
            )


def output_kind(setting: str, loss_fn: Any, outputs: Any) -> str:
    if setting != "auto":
        return setting
    name = (
        type(loss_fn).__name__
        if isinstance(loss_fn, torch.nn.Module)
        else getattr(getattr(loss_fn, "func", loss_fn), "__name__", "")
    )
    lowered = name.lower()
    if "crossentropy" in lowered.replace("_", "") or "nll" in lowered:
        return "logits"
    if "bcewithlogits" in lowered.replace("_", "") or "binary_cross_entropy_with_logits" in lowered:
        return "binary_logits"
    return "values"
