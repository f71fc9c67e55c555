"""Everything a check needs, built once from an experiment (or from a user's pieces).

The context wraps a :class:`~twinrun.engine.TwinEngine` built for one candidate:
the engine loads the data, builds the model, optimizer, scheduler, loss and
augmentation exactly as a run does, and checks them on two examples. Checks then
work on *copies* (:meth:`CheckContext.fresh`) of that pristine candidate and on
the very batches a run would train on (:meth:`CheckContext.batch`), so what is
checked is what is trained.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from twinrun.checks._clone import clone_state
from twinrun.engine import CandidateState, StepOutput, TwinEngine, train_step
from twinrun.engine.parts import move_to, prediction, recognise_loss
from twinrun.errors import BuildError

__all__ = ["LOSS_KINDS", "CheckContext", "first_tensor", "loss_kind"]

_KEPT_BATCHES = 8

#: Losses whose value at initialisation can be predicted from the label prior.
LOSS_KINDS = ("cross_entropy", "nll", "bce_logits", "bce", "mse")

_LOSS_FUNCTIONS: dict[Any, str] = {
    nn.CrossEntropyLoss: "cross_entropy",
    F.cross_entropy: "cross_entropy",
    nn.NLLLoss: "nll",
    F.nll_loss: "nll",
    nn.BCEWithLogitsLoss: "bce_logits",
    F.binary_cross_entropy_with_logits: "bce_logits",
    nn.BCELoss: "bce",
    F.binary_cross_entropy: "bce",
    nn.MSELoss: "mse",
    F.mse_loss: "mse",
}


def loss_kind(loss_fn: Any) -> str | None:
    """``cross_entropy``, ``nll``, ``bce_logits``, ``bce``, ``mse``, or ``None`` when unknown."""
    fn = loss_fn.func if isinstance(loss_fn, functools.partial) else loss_fn
    for known, kind in _LOSS_FUNCTIONS.items():
        if fn is known or (isinstance(known, type) and isinstance(fn, known)):
            return kind
    return None


class CheckContext:
    """One candidate of an experiment, ready to be checked.

    Args:
        engine: an engine built for (at least) ``candidate``; it is never trained.
        candidate: the candidate to check.
        outdir: where checks write figures (created on first use).
        user_model: the caller's own model object, when the checks were given one
            (only ``loss_at_init`` with ``apply_bias`` ever changes it, on request).
        train_loader: the caller's DataLoader, when given one (its worker settings).
        overrides: the ``--set`` overrides applied (checks that rebuild the experiment elsewhere need them).
    """

    def __init__(
        self,
        engine: TwinEngine,
        candidate: str,
        *,
        outdir: str | Path | None = None,
        user_model: nn.Module | None = None,
        train_loader: Any | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        self.candidate = candidate
        self.state: CandidateState = engine.states[candidate]
        self.settings = engine.settings
        self.device = engine.placement.device_of(candidate)  # the run's first device unless devices= moved it
        self.streams = engine.streams
        self.data = engine.data
        self.output_kind = engine.output_kind
        self.loss_fn = self.state.loss_fn
        self.loss_per_example = engine.eval_losses[candidate]
        self.outdir = Path(outdir) if outdir is not None else None
        self.user_model = user_model
        self.train_loader = train_loader
        self.overrides: dict[str, Any] = dict(overrides or {})  # the --set overrides the run was resolved with
        self.shared_seconds = 0.0
        self._batches: dict[int, tuple[Any, Any]] = {}
        self._cache: dict[Any, Any] = {}

    # ------------------------------------------------------------------ models
    def fresh(self) -> CandidateState:
        """A copy of the candidate as built (model, optimizer, scheduler): safe to train."""
        return clone_state(self.state)

    @property
    def loss_kind(self) -> str | None:
        """The loss's kind: by the function (``F.cross_entropy``, ``nn.MSELoss``...), else by what it
        computes on a probe shaped like this candidate's outputs (a wrapped loss; see ``engine/_losses``)."""
        return loss_kind(self.loss_fn) or self._probed_loss()[0]

    @property
    def loss_class_dim(self) -> int | None:
        """The dimension holding the classes, where the probe found it (a language model's: last)."""
        return None if loss_kind(self.loss_fn) else self._probed_loss()[1]

    @property
    def next_token(self) -> bool:
        """Whether this is next-token prediction: integer ``[B, T]`` inputs whose targets are the inputs shifted
        by one (a language model). A tagger's per-position labels are not: such a model may read both ways,
        and its labels are classes."""
        if "next_token" not in self._cache:
            found = False
            try:
                inputs, targets = self.batch(1)
                if (
                    isinstance(inputs, torch.Tensor)
                    and isinstance(targets, torch.Tensor)
                    and not inputs.is_floating_point()
                    and not targets.is_floating_point()
                    and inputs.ndim == 2
                    and inputs.shape == targets.shape
                    and inputs.shape[1] >= 2
                ):
                    found = bool((targets[:, :-1] == inputs[:, 1:]).double().mean() >= 0.95)
            except Exception:  # noqa: BLE001 - no batch: not detected
                found = False
            self._cache["next_token"] = found
        return bool(self._cache["next_token"])

    def _probed_loss(self) -> tuple[str | None, int | None]:
        if "loss_probe" not in self._cache:
            found = None
            try:
                inputs, targets = self.batch(1)
                model = self.fresh().model  # a copy: even an eval-mode forward may change a buggy model
                with torch.no_grad(), self.mode(model), self.streams.isolated("eval", 0, devices=[self.device]):
                    predicted = prediction(model(inputs), self.state.output_key)
                found = recognise_loss(self.loss_fn, predicted, targets)
            except Exception:  # noqa: BLE001 - unknown: the checks say the loss was not recognised
                found = None
            self._cache["loss_probe"] = found or (None, None)
        return cast("tuple[str | None, int | None]", self._cache["loss_probe"])

    def train(self, state: CandidateState, step: int, batch: tuple[Any, Any] | None = None) -> StepOutput:
        """One update of ``state`` (a copy) as update ``step`` of a run makes it: the run's batch of that step
        (or ``batch``), that step's dropout stream, the run's gradient clipping."""
        x, y = self.batch(step) if batch is None else batch
        with self.streams.isolated("dropout", step, devices=[self.device]):
            return train_step(state, x, y, metrics={}, grad_clip=self.settings.grad_clip)

    # ------------------------------------------------------------------ data
    def batch(self, step: int) -> tuple[Any, Any]:
        """The batch update ``step`` (1-based) trains on: the same examples, augmented the same way.

        The first few batches, which several checks look at, are kept; later ones are recomputed.
        """
        if step in self._batches:
            return self._batches[step]
        raw = move_to(self.data.train_batch(step), self.engine.device)
        # the engine's own augmentation path (same streams), so checks see what a run trains on
        batches, _ = self.engine.augment(step, raw, [self.state])
        batch: tuple[Any, Any] = move_to(batches[self.state.spec.augment_key], self.device)
        if step <= _KEPT_BATCHES:
            self._batches[step] = batch
        return batch

    def gather(self, split: str, indices: Sequence[int] | torch.Tensor) -> tuple[Any, Any]:
        """Raw (un-augmented) examples of ``split`` (``train`` or ``val``) on the device."""
        dataset = self.data.train if split == "train" else self.data.val
        return cast("tuple[Any, Any]", move_to(self.data.gather(dataset, indices), self.device))

    def size(self, split: str) -> int:
        return len(self.data.train if split == "train" else self.data.val)

    def probe(self, split: str, n: int = 256) -> tuple[Any, Any]:
        """The first ``n`` raw examples of ``split``: a fixed set to measure losses on."""
        key = ("probe", split, n)
        if key not in self._cache:
            self._cache[key] = self.gather(split, range(min(n, self.size(split))))
        return cast("tuple[Any, Any]", self._cache[key])

    def targets(self, split: str = "train", limit: int = 2_000) -> torch.Tensor | None:
        """Targets of ``split``: all of a tensor dataset, else ``limit`` examples spread over it.

        ``None`` when targets are not tensors. Reading a general dataset decodes inputs too,
        hence the limit there.
        """
        key = ("targets", split, limit)
        if key not in self._cache:
            dataset = self.data.train if split == "train" else self.data.val
            if hasattr(dataset, "tensors"):
                targets = dataset.tensors[1]
            else:
                n = min(limit, self.size(split))
                index = np.linspace(0, self.size(split) - 1, n).astype(int)
                _, targets = self.data.gather(dataset, index.tolist())
            self._cache[key] = targets if isinstance(targets, torch.Tensor) else None
        return cast("torch.Tensor | None", self._cache[key])

    # ------------------------------------------------------------------ shared work
    def cached(self, key: Any, compute: Any) -> Any:
        """``compute()`` once per key; its time counts as shared, not as the asking check's."""
        if key not in self._cache:
            start = time.perf_counter()
            self._cache[key] = compute()
            self.shared_seconds += time.perf_counter() - start
        return self._cache[key]

    def artifact(self, name: str) -> Path | None:
        """Path for a file the check writes, or ``None`` when no output folder was given."""
        if self.outdir is None:
            return None
        self.outdir.mkdir(parents=True, exist_ok=True)
        return self.outdir / name

    @contextmanager
    def mode(self, model: nn.Module, training: bool = False) -> Iterator[nn.Module]:
        """Put ``model`` in eval (or training) mode inside the block; restore every module's mode after."""
        modes = [(m, m.training) for m in model.modules()]
        model.train(training)
        try:
            yield model
        finally:
            for module, was in modes:
                module.training = was

    def describe(self) -> dict[str, Any]:
        """What is being checked, for the report."""
        resolved = self.engine.resolved
        return {
            "run_id": self.engine.run_id,
            "experiment": resolved.name,
            "candidate": self.candidate,
            "config_hash": resolved.config_hash(),
            "source": resolved.source.path if resolved.source else None,
            "seed": self.settings.seed,
            "steps": self.settings.steps,
            "batch_size": self.settings.batch_size,
            "device": str(self.device),
            "model": type(self.state.model).__name__,
            "parameters": self.state.n_parameters,
            "optimizer": type(self.state.optimizer).__name__,
            "scheduler": type(self.state.scheduler).__name__ if self.state.scheduler is not None else None,
            "loss": self.state.spec.loss.name,
            "augment": self.state.spec.augment.name if self.state.spec.augment else None,
            "train_examples": self.size("train"),
            "val_examples": self.size("val"),
        }


def first_tensor(value: Any) -> torch.Tensor | None:
    """The prediction inside ``value``: a tensor, else a ``logits`` entry, else the first tensor (see
    :mod:`twinrun.engine._outputs`); ``None`` when it holds no tensor."""
    try:
        return prediction(value)
    except BuildError:
        return None
