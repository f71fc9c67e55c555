"""Two or more LightningModules trained as twins by one Trainer."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import lightning.pytorch as pl
import torch
from torch import nn

from twinrun._names import check_name
from twinrun.engine import Comparison, init_report, share_initial_weights
from twinrun.errors import BuildError
from twinrun.integrations._recorder import first_loss
from twinrun.loop import Twin
from twinrun.rng import RngStreams

__all__ = ["TwinModule"]


class TwinModule(pl.LightningModule):
    """Your LightningModules as twins: one Trainer steps each on the same batch, in turn.

    Each module keeps its own ``training_step``, ``validation_step``,
    ``configure_optimizers`` (one optimizer, optionally a scheduler with its
    ``interval`` and ``frequency``) and its own ``self.log`` calls, which are
    recorded under ``"<name>/<key>"``. The later modules start from the first
    one's initial weights wherever names and shapes match and the values were
    drawn alike (as :class:`twinrun.Twin` shares them; ``share_init=False`` keeps
    each module's own), and every module draws the same dropout masks at a step
    (the stream ``dropout`` of ``seed``, the global generators restored after).

    What Lightning's design imposes, said plainly:

    * it trains one LightningModule per Trainer, so the twins run under manual
      optimization: Lightning's ``gradient_clip_val`` is refused there (pass
      ``grad_clip=`` here), and ``trainer.global_step`` counts every candidate's
      optimizer step (``2 * batches`` for two): set ``max_epochs`` or
      ``limit_train_batches``, or ``max_steps = K * updates`` for K candidates;
    * each module must use automatic optimization, one optimizer, and a
      scheduler that needs no monitored metric (ReduceLROnPlateau is refused).

    Args:
        modules: name -> LightningModule (distinct objects; names name registry rows and log keys).
        share_init: share initial weights between the modules (see above).
        seed: the dropout stream's seed.
        grad_clip: clip each module's gradient norm to this value after its backward.
    """

    def __init__(
        self,
        modules: Mapping[str, pl.LightningModule],
        *,
        share_init: bool = True,
        seed: int = 0,
        grad_clip: float | None = None,
    ) -> None:
        super().__init__()
        if len(modules) < 2:
            raise BuildError(
                f"TwinModule needs at least two modules, got {len(modules)}",
                fix='TwinModule({"a": ModuleA(), "b": ModuleB()})',
            )
        seen: dict[int, str] = {}
        for name, module in modules.items():
            check_name(name, "TwinModule candidate name")
            if not isinstance(module, pl.LightningModule):
                raise BuildError(
                    f"TwinModule candidate {name!r} is a {type(module).__name__}, not a LightningModule",
                    fix="wrap plain nn.Modules with twinrun.Twin in your own loop instead",
                )
            if id(module) in seen:
                raise BuildError(
                    f"TwinModule candidates {seen[id(module)]!r} and {name!r} are the same object",
                    fix="give each candidate a module of its own (copy.deepcopy)",
                )
            seen[id(module)] = name
            if not module.automatic_optimization:
                raise BuildError(
                    f"TwinModule candidate {name!r} uses manual optimization",
                    fix="TwinModule steps each module itself: give it automatic_optimization=True",
                )
        self.candidates = nn.ModuleDict(dict(modules))
        models = list(modules.values())
        kept = (
            share_initial_weights(models)
            if share_init
            else [dict.fromkeys((n for n, _ in m.named_parameters()), "share_init=False") for m in models]
        )
        self.init = init_report(dict(modules), dict(zip(modules, kept)))
        self.automatic_optimization = False
        self.streams = RngStreams(seed)
        self.grad_clip = grad_clip
        self.twin_steps = 0  # updates made (each candidate once per batch)
        self.last_losses: dict[str, float] = {}
        self._schedules: dict[str, tuple[int, str, int]] = {}  # name -> (scheduler index, interval, frequency)

    def members(self) -> dict[str, pl.LightningModule]:
        """The candidates' modules (the objects you passed), by name."""
        return {name: cast(pl.LightningModule, module) for name, module in self.candidates.items()}

    # ------------------------------------------------------------------ Lightning's hooks
    def setup(self, stage: str) -> None:
        for module in self.members().values():  # self.current_epoch and the like work inside their steps
            module.trainer = self.trainer

    def teardown(self, stage: str) -> None:
        for module in self.members().values():
            module.trainer = None

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {name: module(*args, **kwargs) for name, module in self.members().items()}

    def configure_optimizers(self) -> Any:
        optimizers: list[torch.optim.Optimizer] = []
        schedulers: list[Any] = []
        for name, module in self.members().items():
            optimizer, scheduler = _one_optimizer(name, module.configure_optimizers())
            optimizers.append(optimizer)
            if scheduler is not None:
                config = scheduler if isinstance(scheduler, Mapping) else {"scheduler": scheduler}
                if isinstance(config["scheduler"], torch.optim.lr_scheduler.ReduceLROnPlateau):
                    raise BuildError(
                        f"TwinModule candidate {name!r}: ReduceLROnPlateau needs a monitored metric, "
                        "which manual optimization does not hand it",
                        fix="use a schedule of the step or epoch count, or train it alone",
                    )
                self._schedules[name] = (
                    len(schedulers),
                    str(config.get("interval", "epoch")),
                    int(config.get("frequency", 1)),
                )
                schedulers.append(config["scheduler"])
        return (optimizers, schedulers) if schedulers else optimizers

    def training_step(self, batch: Any, batch_idx: int) -> None:
        step = self.twin_steps + 1
        optimizers = self._optimizers()
        losses: dict[str, torch.Tensor] = {}
        for (name, module), optimizer in zip(self.members().items(), optimizers):
            with (
                self.streams.isolated("dropout", step, devices=[self.device] if self.device.type != "cpu" else []),
                self._logging_as(name, module),
            ):
                out = module.training_step(batch, batch_idx)
            loss = first_loss(out)
            if loss is None:
                raise BuildError(
                    f"TwinModule candidate {name!r}: training_step returned {type(out).__name__}, not a loss",
                    fix="return the loss tensor (or {'loss': loss}) from training_step",
                )
            optimizer.zero_grad()
            self.manual_backward(loss)
            if self.grad_clip is not None:
                self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")
            optimizer.step()
            losses[name] = loss.detach()
            self._step_schedule(name, "step", step)
        self.twin_steps = step
        values = torch.stack([v.float().reshape(()) for v in losses.values()]).tolist()  # one synchronisation
        self.last_losses = dict(zip(losses, values))

    def on_train_epoch_end(self) -> None:
        for name in self.candidates:
            self._step_schedule(name, "epoch", self.current_epoch + 1)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        for name, module in self.members().items():
            with self._logging_as(name, module):
                module.validation_step(batch, batch_idx)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        for name, module in self.members().items():
            with self._logging_as(name, module):
                module.test_step(batch, batch_idx)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["twinrun_twin"] = {"twin_steps": self.twin_steps}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.twin_steps = int(checkpoint.get("twinrun_twin", {}).get("twin_steps", 0))

    # ------------------------------------------------------------------ what twinrun adds
    def verdict(
        self, batches: Any, loss_fn: Any, *, reference: str | None = None, confidence: float = 0.95
    ) -> dict[str, Comparison]:
        """Every candidate against ``reference`` (default: the first) on the same ``batches``: the paired
        per-example difference of the loss, with its interval, as :meth:`twinrun.Twin.verdict` gives it."""
        twin = Twin(
            {
                name: (module, torch.optim.SGD(module.parameters(), lr=0.0))  # evaluation only
                for name, module in self.members().items()
            },
            share_init=False,
            seed=self.streams.seed,
        )
        with torch.no_grad():
            return twin.verdict(batches, loss_fn, reference=reference, confidence=confidence)

    def schedule_of(self, name: str) -> tuple[int, str, int] | None:
        """Candidate ``name``'s scheduler: its index among the Trainer's, its ``interval`` and ``frequency``."""
        return self._schedules.get(name)

    def candidate_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Each candidate's optimizer (the plain ``torch.optim`` object), by name."""
        return {name: getattr(o, "optimizer", o) for name, o in zip(self.candidates, self._optimizers())}

    # ------------------------------------------------------------------ helpers
    def _optimizers(self) -> list[Any]:
        optimizers = self.optimizers()
        return list(optimizers) if isinstance(optimizers, (list, tuple)) else [optimizers]

    def _step_schedule(self, name: str, interval: str, count: int) -> None:
        plan = self._schedules.get(name)
        if plan is None or plan[1] != interval or count % plan[2]:
            return
        schedulers = self.lr_schedulers()
        listed: list[Any] = list(schedulers) if isinstance(schedulers, (list, tuple)) else [schedulers]
        listed[plan[0]].step()

    @contextmanager
    def _logging_as(self, name: str, module: pl.LightningModule) -> Iterator[None]:
        """The module's ``self.log`` / ``self.log_dict`` record under ``"<name>/<key>"`` through this module."""

        def log(key: str, value: Any, *args: Any, **kwargs: Any) -> None:
            self.log(f"{name}/{key}", value, *args, **kwargs)

        def log_dict(values: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
            self.log_dict({f"{name}/{k}": v for k, v in values.items()}, *args, **kwargs)

        module.__dict__["log"], module.__dict__["log_dict"] = log, log_dict
        try:
            yield
        finally:
            del module.__dict__["log"], module.__dict__["log_dict"]


def _one_optimizer(name: str, configured: Any) -> tuple[torch.optim.Optimizer, Any]:
    """The one optimizer and the optional scheduler (config) a module's ``configure_optimizers`` returned."""
    optimizer, scheduler = configured, None
    if isinstance(configured, Mapping):
        optimizer, scheduler = configured.get("optimizer"), configured.get("lr_scheduler")
    elif isinstance(configured, (list, tuple)):
        if len(configured) == 2 and all(isinstance(p, (list, tuple)) for p in configured):
            optimizers, schedulers = configured
            if len(optimizers) != 1 or len(schedulers) > 1:
                raise BuildError(
                    f"TwinModule candidate {name!r} configures {len(optimizers)} optimizers",
                    fix="each candidate needs exactly one optimizer (and at most one scheduler)",
                )
            optimizer, scheduler = optimizers[0], (schedulers[0] if schedulers else None)
        elif len(configured) == 1:
            optimizer = configured[0]
        else:
            raise BuildError(
                f"TwinModule candidate {name!r} configures {len(configured)} optimizers",
                fix="each candidate needs exactly one optimizer (and at most one scheduler)",
            )
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise BuildError(
            f"TwinModule candidate {name!r}: configure_optimizers gave {type(optimizer).__name__}, not an optimizer",
            fix="return an optimizer, or {'optimizer': ..., 'lr_scheduler': ...}",
        )
    return optimizer, scheduler
