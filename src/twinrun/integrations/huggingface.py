"""twinrun inside the Hugging Face ``Trainer``: a ``TrainerCallback``.

``pip install twinrun[hf]``. Adoption is one argument::

    from twinrun.integrations.huggingface import TwinrunTrainerCallback
    trainer = Trainer(model=model, args=args, train_dataset=train, callbacks=[TwinrunTrainerCallback()])

The run is recorded in the registry (environment, the model's config and the
``TrainingArguments``, every step's loss and learning rate, evaluation
metrics), a ledger of control sums is written (initial weights, every batch the
model trains on, every loss, weights every ``ledger_every`` steps), and the
checks can run on a copy of the model before the first step.

The loss and the batches are read where the model sees them (a forward hook
while it trains): the loss of a step is the mean of its micro-batches' losses
as the model returned them.

**What resumes bit for bit.** The Trainer's own resume
(``trainer.train(resume_from_checkpoint=...)``) restores the generators it
saved with the checkpoint and skips the batches of the epoch already done, so
a resume continues bit for bit, inside an epoch too (tested on CPU with
dropout; the ledgers of the whole and the resumed run agree). The callback adds
nothing to the randomness; it writes ``twinrun.json`` into each checkpoint
folder so that the resumed run goes on as the same registry run and ledger.
Randomness drawn outside the Trainer's generators (a dataset's own generator)
is not covered. The Trainer has no hook for an exception: a crashed run stays
``running`` until the registry's next open marks it ``crashed``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

try:
    import transformers
    from transformers import TrainerCallback
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError("twinrun.integrations.huggingface needs transformers: pip install 'twinrun[hf]'") from exc

from twinrun._atomic import write_json
from twinrun.engine import Sink, current_lr
from twinrun.integrations._recorder import ExternalRun, first_loss, plain_config

__all__ = ["TwinrunTrainerCallback"]

_STATE_FILE = "twinrun.json"
_CANDIDATE = "model"


class TwinrunTrainerCallback(TrainerCallback):
    """Records a Hugging Face Trainer run with twinrun, and runs the checks first.

    Args:
        name: the run's name in the registry.
        registry: the registry's path; ``None``: the default (``$TWINRUN_HOME/registry.sqlite``);
            ``False``: not recorded.
        ledger: where to write the ledger (``None``: no ledger).
        ledger_every: weights and generator records every this many steps.
        checks: run twinrun's checks on a copy of the model before the first step: ``True``
            (the default suite), check names, or ``False`` (the default).
        loss: for the checks, ``fn(logits, labels)``; default: cross-entropy over the logits'
            last dimension, shifted by one position for a causal language model.
        check_steps: the updates the checks plan for.
        sinks: more twinrun sinks (``twinrun.TensorBoardSink(...)``, your own).
        tags: registry tags.
    """

    def __init__(
        self,
        *,
        name: str = "hf",
        registry: str | Path | None | bool = None,
        ledger: str | Path | None = None,
        ledger_every: int = 20,
        checks: bool | Sequence[str] = False,
        loss: Callable[..., torch.Tensor] | None = None,
        check_steps: int = 100,
        sinks: Sequence[Sink] = (),
        tags: Sequence[str] = (),
    ) -> None:
        self.run = ExternalRun(
            name=name, registry=registry, ledger=ledger, ledger_every=ledger_every, seed=0, sinks=sinks, tags=tags
        )
        self.checks = checks
        self.loss = loss
        self.check_steps = check_steps
        self.check_report: Any = None
        self._hooks: list[Any] = []
        self._batches: list[Any] = []
        self._losses: list[torch.Tensor] = []
        self._model: nn.Module | None = None
        self._lr: float | None = None

    # ------------------------------------------------------------------ the Trainer's events
    def on_train_begin(
        self,
        args: Any,
        state: Any,
        control: Any,
        model: nn.Module | None = None,
        train_dataloader: Any = None,
        optimizer: Any = None,
        eval_dataloader: Any = None,
        **kwargs: Any,
    ) -> None:
        if model is None or not state.is_world_process_zero:
            return  # several processes (torchrun, accelerate): the first alone records
        self._model = model
        start = int(state.global_step)
        previous = _read_state(args.output_dir, start) if start > 0 else {}
        self.run.seed = int(args.seed)
        config = {
            "framework": f"transformers {transformers.__version__}",
            "model_class": type(model).__qualname__,
            "model": plain_config(_model_config(model)),
            "args": plain_config(args.to_dict()),
        }
        torch_optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps it
        self.run.start(
            {_CANDIDATE: model},
            config,
            device=str(next(model.parameters()).device),
            start_step=start,
            optimizers={_CANDIDATE: torch_optimizer} if torch_optimizer is not None else None,
            run_id=previous.get("run_id"),
            steps=int(state.max_steps) if state.max_steps else None,
        )
        if self.checks and start == 0 and train_dataloader is not None:  # on a copy, made before the hooks
            try:
                self.check_report = self._run_checks(model, train_dataloader, eval_dataloader, optimizer)
            except BaseException as exc:
                self.run.fail(exc)  # the Trainer tells callbacks of no exception: recorded here
                raise
        self._hooks = [
            model.register_forward_pre_hook(self._saw_batch, with_kwargs=True),
            model.register_forward_hook(self._saw_output),
        ]

    def on_step_begin(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        self._lr = (
            current_lr(optimizer) if optimizer is not None else None
        )  # the rate this update uses (the scheduler steps after it)

    def on_step_end(
        self, args: Any, state: Any, control: Any, model: nn.Module | None = None, optimizer: Any = None, **kwargs: Any
    ) -> None:
        if not self.run.started or self._model is None:
            return
        step = int(state.global_step)
        batches, self._batches = self._batches, []
        losses, self._losses = self._losses, []
        loss = float(torch.stack(losses).float().mean()) if losses else float("nan")
        self.run.batch(step, [_CANDIDATE], batches[0] if len(batches) == 1 else batches)
        lr = self._lr
        self.run.step_done(
            step,
            {_CANDIDATE: loss},
            {_CANDIDATE: lr} if lr is not None else {},
            {_CANDIDATE: self._model},
            {_CANDIDATE: optimizer} if optimizer is not None else {},
        )

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not self.run.started or not metrics:
            return
        values = {
            k.removeprefix("eval_"): float(v)
            for k, v in metrics.items()
            if isinstance(v, (int, float))
            and not isinstance(v, bool)
            and k not in ("epoch", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second")
        }
        self.run.evaluated(int(state.global_step), {_CANDIDATE: values})

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self.run.started:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():  # the Trainer wrote its checkpoint there; ours goes beside it
            write_json(folder / _STATE_FILE, {"version": 1, "run_id": self.run.run_id, "step": state.global_step})
        self.run.save_ledger()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        self.run.finish()

    # ------------------------------------------------------------------ what the model sees
    def _saw_batch(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if module.training:
            self._batches.append({k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)} or args)

    def _saw_output(self, module: nn.Module, args: Any, output: Any) -> None:
        if module.training:
            loss = first_loss(output)
            if loss is not None:
                self._losses.append(loss.detach())

    # ------------------------------------------------------------------ checks
    def _run_checks(self, model: nn.Module, loader: Any, eval_loader: Any, optimizer: Any) -> Any:
        from twinrun.checks import run_checks
        from twinrun.integrations._hf_checks import LabelledPairs, LogitsOf, default_loss

        wrapped = LogitsOf(model)
        dataset = LabelledPairs(loader.dataset, wrapped.input_name)
        val = LabelledPairs(eval_loader.dataset, wrapped.input_name) if eval_loader is not None else None
        optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimizer
        report = run_checks(
            model=wrapped,
            train=dataset,
            val=val if val is not None else dataset,
            skip=["data_leakage"] if val is None else None,  # no eval set: val is the train set
            loss=self.loss or default_loss(model),
            optimizer=type(optimizer or torch.optim.AdamW),
            settings={"steps": self.check_steps, "batch_size": int(loader.batch_size or 8)},
            only=None if self.checks is True else list(self.checks or ()),
            registry=self.run.registry if self.run.registry is not None else True,
            name=f"{self.run.name}-checks",
            progress=False,
        )
        return report


def _read_state(output_dir: str, step: int) -> dict[str, Any]:
    """What :meth:`TwinrunTrainerCallback.on_save` wrote beside the checkpoint the Trainer resumes from."""
    path = os.path.join(output_dir, f"checkpoint-{step}", _STATE_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            return dict(json.load(f))
    except (OSError, ValueError):
        return {}


def _model_config(model: nn.Module) -> dict[str, Any]:
    config: Any = getattr(model, "config", None)
    return dict(config.to_dict()) if config is not None and hasattr(config, "to_dict") else {}
