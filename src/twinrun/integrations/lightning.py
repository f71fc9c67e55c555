"""twinrun inside PyTorch Lightning: a callback for any run, and :class:`TwinModule` for twins.

``pip install twinrun[lightning]``. Adoption is one argument::

    from twinrun.integrations.lightning import TwinrunCallback
    trainer = L.Trainer(max_epochs=5, callbacks=[TwinrunCallback(seed=0, loss=F.cross_entropy)])

The run is recorded in the registry (environment, the module's hyperparameters
and the trainer's settings, per-step loss and learning rate, validation
metrics), a ledger of control sums is written, and the checks run on a copy of
the module before the first step.

**What resumes bit for bit.** Lightning restores weights, optimizers and loops
but not the generators (its issue #17543), so a resumed run draws other dropout
masks and, at the next epoch, another data order. With ``seed=`` set, the
callback seeds the global generators (Python, NumPy, torch) at every epoch
start from the stream ``epoch`` and at every batch from the stream ``batch``
(``RngStreams(seed)``): a step's randomness becomes a function of the seed, the
epoch and the batch, and ``trainer.fit(..., ckpt_path=...)`` from a checkpoint
taken **at the end of an epoch** continues bit for bit (tested against an
uninterrupted run; the ledgers agree). From a checkpoint taken **inside an
epoch** it does not: a plain ``DataLoader`` cannot be resumed at a position,
and Lightning replays the epoch's first batches (it warns "not resumable").
Randomness drawn elsewhere than the global generators (a generator the dataset
owns) is not covered. ``seed=None`` leaves the generators alone.

Two LightningModules train as twins through :class:`TwinModule` (one Trainer,
the same batches, shared initial weights, the same dropout masks).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

try:
    import lightning.pytorch as pl
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError("twinrun.integrations.lightning needs Lightning: pip install 'twinrun[lightning]'") from exc

from twinrun.engine import Sink, current_lr
from twinrun.errors import BuildError, CheckpointError
from twinrun.integrations._recorder import (
    ExternalRun,
    first_loss,
    plain_config,
    seed_globals,
)
from twinrun.integrations._twin_module import TwinModule

__all__ = ["TwinModule", "TwinrunCallback"]


class TwinrunCallback(pl.Callback):
    """Records a Lightning run with twinrun, runs the checks first, and makes resume exact.

    Args:
        name: the run's name in the registry.
        seed: seeds the global generators per epoch and per batch (see the module's text);
            ``None``: leave them alone (then resume is only as exact as Lightning makes it).
        registry: the registry's path; ``None``: the default (``$TWINRUN_HOME/registry.sqlite``);
            ``False``: not recorded.
        ledger: where to write the ledger (``None``: no ledger).
        ledger_every: weights and generator records every this many steps.
        checks: run twinrun's checks on a copy of the module before the first step:
            ``True`` (the default suite), check names, or ``False``.
        loss: the loss your ``training_step`` computes, ``fn(model(x), y)`` (the checks train a
            copy with it). Needed when ``checks`` is on.
        check_steps: the updates the checks plan for (their learning-rate and schedule probes).
        sinks: more twinrun sinks (``twinrun.TensorBoardSink(...)``, your own).
        tags: registry tags.
    """

    def __init__(
        self,
        *,
        name: str = "lightning",
        seed: int | None = 0,
        registry: str | Path | None | bool = None,
        ledger: str | Path | None = None,
        ledger_every: int = 20,
        checks: bool | Sequence[str] = True,
        loss: Callable[..., torch.Tensor] | None = None,
        check_steps: int = 100,
        sinks: Sequence[Sink] = (),
        tags: Sequence[str] = (),
    ) -> None:
        if checks and loss is None:
            raise BuildError(
                "TwinrunCallback runs the checks before training, and they need the loss your training_step computes",
                fix="pass loss=torch.nn.functional.cross_entropy (fn(model(x), y)), or checks=False",
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
            raise BuildError(f"seed={seed!r} is not an integer in [0, 2**63)", fix="pass e.g. seed=0, or None")
        self.seed = seed
        self.checks = checks
        self.loss = loss
        self.check_steps = check_steps
        self.run = ExternalRun(
            name=name,
            registry=registry,
            ledger=ledger,
            ledger_every=ledger_every,
            seed=seed or 0,
            sinks=sinks,
            tags=tags,
        )
        self.check_report: Any = None
        self._resume: dict[str, Any] | None = None
        self._epoch_at_resume: int | None = None
        self._seeded_epoch: int | None = None
        self._step = 0
        self._pending: list[Any] = []
        self._losses: list[torch.Tensor] = []

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"version": 1, "run_id": self.run.run_id, "seed": self.seed, "step": self._step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("seed") != self.seed:
            raise CheckpointError(
                f"the checkpoint was trained with TwinrunCallback(seed={state_dict.get('seed')!r}), "
                f"this callback has seed={self.seed!r}: the resumed run would draw other randomness",
                fix=f"build the callback with seed={state_dict.get('seed')!r}",
            )
        self._resume = dict(state_dict)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self.run.save_ledger()  # what the checkpoint holds, the ledger on disk holds too

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # the epoch whose data the resumed run's first iterator serves: Lightning's processed epochs
        progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
        self._epoch_at_resume = int(progress.get("processed", checkpoint.get("epoch", 0)))

    # ------------------------------------------------------------------ the run
    def _twin(self, pl_module: pl.LightningModule) -> TwinModule | None:
        return pl_module if isinstance(pl_module, TwinModule) else None

    def _models(self, pl_module: pl.LightningModule) -> dict[str, torch.nn.Module]:
        twin = self._twin(pl_module)
        return dict(twin.members()) if twin is not None else {"model": pl_module}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        resumed = self._resume is not None
        if self.seed is not None:  # the first iterator (or the resumed epoch's) is made after this point
            self._seeded_epoch = (self._epoch_at_resume or 0) if resumed else 0
            seed_globals(self.run.streams.seed_for("epoch", self._seeded_epoch, *_rank(trainer)))
        self._step = int(self._resume["step"]) if self._resume else 0
        config = {
            "framework": f"lightning {getattr(pl, '__version__', '?')}",
            "module": type(pl_module).__qualname__,
            "hparams": plain_config(dict(pl_module.hparams)),
            "trainer": plain_config(
                {
                    "max_epochs": trainer.max_epochs,
                    "max_steps": trainer.max_steps,
                    "accumulate_grad_batches": trainer.accumulate_grad_batches,
                    "precision": str(trainer.precision),
                    "gradient_clip_val": trainer.gradient_clip_val,
                    "deterministic": torch.are_deterministic_algorithms_enabled(),
                }
            ),
        }
        twin = self._twin(pl_module)
        if twin is not None:
            config["init"] = {"shared": dict(twin.init.shared)}
        optimizers = (
            twin.candidate_optimizers()
            if twin is not None
            else ({"model": trainer.optimizers[0]} if trainer.optimizers else {})
        )
        planned = _planned_steps(trainer)  # on every rank: Lightning sets up the data with collectives here
        if not trainer.is_global_zero:
            return  # Lightning's DDP: every rank seeds, rank 0 alone records and checks
        self.run.start(
            self._models(pl_module),
            config,
            device=str(pl_module.device),
            start_step=self._step,
            optimizers=optimizers,
            run_id=self._resume.get("run_id") if self._resume else None,
            steps=planned,
        )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.checks or self._step > 0 or not self.run.started:
            return
        twin = self._twin(pl_module)
        if twin is None:
            scheduler, every = _scheduler_for_checks(trainer)
            self.check_report = self._run_checks(trainer, pl_module, trainer.optimizers[0], scheduler, every, "")
            return
        optimizers = twin.candidate_optimizers()
        self.check_report = {  # each candidate's own module, optimizer and schedule
            name: self._run_checks(
                trainer, module, optimizers[name], *_candidate_schedule(trainer, twin, name), f"-{name}"
            )
            for name, module in twin.members().items()
        }

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = _processed_epochs(trainer)
        if self.seed is not None and epoch != self._seeded_epoch:  # before this epoch's iterator is made
            seed_globals(self.run.streams.seed_for("epoch", epoch, *_rank(trainer)))
        self._seeded_epoch = None  # the first epoch's iterator was made after on_fit_start's seeding

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.seed is not None:
            seed_globals(self.run.streams.seed_for("batch", trainer.current_epoch, batch_idx, *_rank(trainer)))
        self._pending.append(batch)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self.run.started:
            self._pending, self._losses = [], []
            return
        twin = self._twin(pl_module)
        if twin is not None:  # one update of every candidate per batch
            self._step += 1
            losses = dict(twin.last_losses)
            optimizers = twin.candidate_optimizers()
        else:
            loss = first_loss(outputs)
            if loss is not None:
                self._losses.append(loss.detach())
            if trainer.global_step <= self._step:  # accumulating gradients: no update yet
                return
            self._step = trainer.global_step
            losses = {"model": float(torch.stack(self._losses).float().mean()) if self._losses else float("nan")}
            optimizers = {"model": trainer.optimizers[0]} if trainer.optimizers else {}
        self._losses = []
        batches, self._pending = self._pending, []
        self.run.batch(self._step, list(losses), batches[0] if len(batches) == 1 else batches)
        self.run.step_done(
            self._step,
            losses,
            {n: lr for n, o in optimizers.items() if math.isfinite(lr := current_lr(o))},
            self._models(pl_module),
            optimizers,
        )

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not self.run.started:
            return
        names = list(self._models(pl_module))
        results: dict[str, dict[str, float]] = {}
        for key, value in trainer.callback_metrics.items():
            if not isinstance(value, torch.Tensor) or value.numel() != 1 or "val" not in key:
                continue
            candidate, _, metric = key.partition("/") if "/" in key else ("model", "", key)
            if candidate in names:
                results.setdefault(candidate, {})[metric] = float(value)
        self.run.evaluated(self._step, results)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.run.finish()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.run.fail(exception)

    # ------------------------------------------------------------------ checks
    def _run_checks(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        every: int,
        suffix: str,
    ) -> Any:
        from twinrun.checks import run_checks

        train, val = trainer.train_dataloader, trainer.val_dataloaders
        if isinstance(val, Sequence):
            val = val[0] if val else None
        attached = pl_module._trainer  # the copy the checks train must not carry the Trainer along
        pl_module.trainer = None
        try:
            report = run_checks(
                model=pl_module,
                train=train,
                val=val if val is not None else train,
                loss=self.loss,
                optimizer=optimizer,
                scheduler=scheduler,
                scheduler_every=every,
                settings={"steps": self.check_steps},
                only=None if self.checks is True else list(self.checks or ()),
                registry=self.run.registry if self.run.registry is not None else True,
                name=f"{self.run.name}-checks{suffix}",
                progress=False,
            )
        finally:
            pl_module.trainer = attached
        problems = report.by_status("fail", "warn")
        if problems:
            lines = "\n".join(f"  {r.status} {r.name}: {r.measured}. Fix: {r.fix}" for r in problems)
            warnings.warn(
                f"twinrun checks before training{suffix.replace('-', ' of ')}:\n{lines}", UserWarning, stacklevel=2
            )
        return report


def _processed_epochs(trainer: pl.Trainer) -> int:
    """The epochs Lightning has run through (the index of the epoch about to start)."""
    return int(getattr(trainer.fit_loop.epoch_progress.current, "processed", trainer.current_epoch))


def _planned_steps(trainer: pl.Trainer) -> int | None:
    """The updates Lightning plans (from ``max_steps``, or epochs times batches), when it can tell."""
    try:
        planned = trainer.estimated_stepping_batches
    except Exception:  # noqa: BLE001 - an iterable without a length: unknown
        return None
    return int(planned) if isinstance(planned, (int, float)) and planned != float("inf") else None


def _scheduler_for_checks(trainer: pl.Trainer) -> tuple[Any, int]:
    """The scheduler the checks simulate and every how many updates it steps (Lightning's ``interval``)."""
    if not trainer.lr_scheduler_configs:
        return None, 1
    config = trainer.lr_scheduler_configs[0]
    if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return None, 1  # stepped on a monitored metric: nothing to simulate
    per_epoch = _epoch_updates(trainer) if config.interval == "epoch" else 1
    return config.scheduler, per_epoch * max(1, int(config.frequency or 1))


def _epoch_updates(trainer: pl.Trainer) -> int:
    if trainer.num_training_batches == float("inf"):
        return 1
    return max(1, int(trainer.num_training_batches) // max(1, trainer.accumulate_grad_batches))


def _candidate_schedule(trainer: pl.Trainer, twin: TwinModule, name: str) -> tuple[Any, int]:
    """A TwinModule candidate's scheduler and every how many updates it steps (its own ``interval``)."""
    plan = twin.schedule_of(name)
    if plan is None or not trainer.lr_scheduler_configs:
        return None, 1
    index, interval, frequency = plan
    return trainer.lr_scheduler_configs[index].scheduler, (_epoch_updates(trainer) if interval == "epoch" else 1) * max(
        1, frequency
    )


def _rank(trainer: pl.Trainer) -> tuple[str | int, ...]:
    """Under Lightning's DDP each rank draws its own randomness (its own dropout masks, worker seeds)."""
    return ("rank", trainer.global_rank) if trainer.world_size > 1 else ()
