"""Dumb baselines beside every verdict, trained on the same batches as the candidates.

A candidate can beat the reference and still be worse than a model that learns
nothing of its inputs. So every run (``baselines`` setting, on by default) also
scores, on the shared validation set:

* ``prior``: the best constant prediction, fitted to the targets of the training
  batches the candidates trained on: log class frequencies for logits (its loss is
  the targets' entropy, its accuracy the majority class's share), the mean target's
  logit for binary logits, the mean target for values;
* ``linear``: a linear layer from the flattened inputs to the prediction, trained
  on the reference's batches (augmentation included), with the reference's loss and
  optimizer, initialised from the run's ``baseline`` stream.

Neither draws from the global generators. A baseline that does not apply (integer
inputs, per-position outputs, a loss of the whole structured output) is left out
with its reason. The prior's counts and the linear layer with its optimizer are
part of the engine's state, so a resumed run gets the very same baselines.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import nn

from twinrun.engine._build import CandidateState, build_optimizer
from twinrun.engine._evaluate import EvalOutput, EvalSet, evaluate
from twinrun.engine._outputs import prediction
from twinrun.rng import RngStreams

__all__ = ["Baselines"]


class _Constant(nn.Module):
    """Predicts the same ``value`` for every example."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("value", value)

    def forward(self, x: Any) -> torch.Tensor:
        n = x.shape[0] if isinstance(x, torch.Tensor) else len(x)
        value: torch.Tensor = self.value  # type: ignore[assignment]
        return value.expand(n, *value.shape)


class _Linear(nn.Module):
    def __init__(self, features: int, out_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.out_shape = out_shape
        self.layer = nn.Linear(features, max(1, math.prod(out_shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast("torch.Tensor", self.layer(x.flatten(1).float()).reshape(x.shape[0], *self.out_shape))


class Baselines:
    """The prior and linear baselines of a run (see the module)."""

    def __init__(
        self,
        reference: CandidateState,
        sample: tuple[Any, Any],
        *,
        kind: str,
        eval_loss: Callable[[Any, Any], torch.Tensor],
        streams: RngStreams,
        device: torch.device,
    ) -> None:
        self.kind, self.device, self.eval_loss, self.reference = kind, device, eval_loss, reference
        self.skipped: dict[str, str] = {}
        inputs, _ = sample
        with torch.no_grad(), streams.isolated("baseline", 1, devices=[device]):
            was = reference.model.training
            reference.model.eval()
            try:
                raw = reference.model(inputs)
            finally:
                reference.model.train(was)
        predicted = prediction(raw, reference.output_key)
        self.out_shape = tuple(predicted.shape[1:])
        self.sum: torch.Tensor | None = None
        self.n = 0
        self.linear: _Linear | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        if kind == "logits" and len(self.out_shape) != 1 or kind != "logits" and math.prod(self.out_shape) > 1:
            why = f"the prediction is shaped {tuple(predicted.shape)}: per-position outputs have no one constant"
            self.skipped = {"prior": why, "linear": why}
            return
        if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
            self.skipped["linear"] = (
                "the inputs are not a float tensor (tokens, a structure): there is no linear model of them to train"
            )
        elif reference.loss_takes == "outputs" and not isinstance(raw, torch.Tensor):
            self.skipped["linear"] = "the reference's loss takes the model's whole structured output"
        else:
            with streams.isolated("baseline", 0, devices=[device]):
                self.linear = _Linear(int(inputs[0].numel()), self.out_shape).to(device)
            try:
                self.optimizer = build_optimizer(reference.spec, self.linear)
            except Exception as exc:  # noqa: BLE001 - an optimizer built for the model's own groups
                self.linear = None
                self.skipped["linear"] = f"the reference's optimizer cannot be built for it ({exc})"

    def train(self, batch: tuple[Any, Any]) -> None:
        """One step on the reference's batch: the prior's target sums, the linear layer's update."""
        inputs, targets = batch
        with torch.no_grad():
            if self.kind == "logits" and not targets.is_floating_point():
                counts = torch.bincount(targets.reshape(-1).long(), minlength=self.out_shape[0])
            else:
                counts = targets.detach().float().reshape(targets.shape[0], -1).sum(0)
            counts = counts[: max(1, math.prod(self.out_shape))].double().cpu()
            self.sum = counts if self.sum is None else self.sum + counts
            self.n += int(targets.shape[0])
        if self.linear is not None and self.optimizer is not None:
            loss = self.reference.loss_fn(self.linear(inputs), targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()

    def _prior(self) -> _Constant:
        assert self.sum is not None
        if self.kind == "logits":
            share = (self.sum + 0.5) / (self.sum.sum() + 0.5 * self.sum.numel())
            value = share.log()
        elif self.kind == "binary_logits":
            p = float(((self.sum + 0.5) / (self.n + 1)).reshape(-1)[0])
            value = torch.tensor(math.log(p / (1 - p))).reshape(self.out_shape)
        else:
            value = (self.sum / max(1, self.n)).reshape(self.out_shape)
        return _Constant(value.float().to(self.device))

    def evaluate(self, val: EvalSet, metrics: Mapping[str, Any], step: int) -> dict[str, EvalOutput]:
        """Each applicable baseline on the validation batches (without test-time augmentation)."""
        models: dict[str, nn.Module] = {}
        if "prior" not in self.skipped and self.sum is not None:
            models["prior"] = self._prior()
        if self.linear is not None:
            models["linear"] = self.linear
        out = {}
        for name, model in models.items():
            state = CandidateState(
                name=name,
                spec=self.reference.spec,
                model=model,
                optimizer=None,  # type: ignore[arg-type]
                loss_fn=self.reference.loss_fn,
                scheduler=None,
                augment=None,
                loss_takes="prediction",
            )
            out[name] = evaluate(
                state,
                val.batches,
                loss_per_example=self.eval_loss,
                metrics=metrics,
                device=self.device,
                streams=val.streams,
                step=step,
                stream="baseline_eval",
            )
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "sum": None if self.sum is None else self.sum.clone(),
            "n": self.n,
            "linear": None if self.linear is None else {k: v.clone() for k, v in self.linear.state_dict().items()},
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sum, self.n = state["sum"], int(state["n"])
        if self.linear is not None and state.get("linear") is not None:
            self.linear.load_state_dict(state["linear"])
        if self.optimizer is not None and state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
