"""Twin training inside your own loop.

For people who keep their training loop: give :class:`Twin` the models and
optimizers, and it shares their initial weights, then steps each one on the
batch you hand it, with the same dropout stream, one model's activations alive
at a time. Adopting it costs a handful of lines::

    twin = twinrun.Twin({"small": (small, opt_s), "wide": (wide, opt_w)}, seed=0,
                        sinks=[twinrun.TensorBoardSink("runs/small-vs-wide")])
    for x, y in loader:                      # your loader, your augmentation
        losses = twin.step(x, y, loss_fn)    # {"small": 0.41, "wide": 0.38}
    twin.evaluate(val_loader, loss_fn)
    twin.close()
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from twinrun._names import check_name
from twinrun.engine import (
    BatchPrepared,
    CandidateResult,
    CandidateState,
    Comparison,
    EvalDone,
    EventBus,
    RunFailed,
    RunFinished,
    RunHistory,
    RunStarted,
    SequentialExecutor,
    Sink,
    StepContext,
    TwinResult,
    candidate_config,
    compare_candidates,
    evaluate,
    init_report,
    load_parts,
    move_to,
    new_run_id,
    parts_state,
    per_example_loss,
    plain_config,
    share_initial_weights,
    share_policy,
)
from twinrun.errors import BuildError, CheckpointError
from twinrun.loop._result import twin_result
from twinrun.rng import RngStreams, capture_global_rng, restore_global_rng
from twinrun.spec import CandidateSpec, Factory, Metric

__all__ = ["Twin"]


class Twin:
    """Several models trained side by side by your own loop.

    Args:
        candidates: name -> ``(model, optimizer)`` or ``(model, optimizer, scheduler)``.
            Models are modified in place (shared initial weights) and handed back
            unchanged in identity through :attr:`models`.
        seed: seeds the dropout stream of each step.
        share_init: copy the first model's parameter values into every later model
            wherever names and shapes match and the later model's own value was drawn
            alike (a deliberate init or loaded weights are kept; ``twin.init.not_shared``
            says why); ``{name: False | [parameter names]}`` per candidate.
        metrics: per-example metrics computed on every training batch.
        grad_clip: clip each model's gradient norm to this value.
        sinks: event sinks (TensorBoard, ...), as for the file-based engine.
        output_key: for models returning a tuple, dict or dataclass: which entry is the
            prediction (metrics, evaluation); ``"auto"``: a ``logits`` entry, else the first
            tensor. The loss gets what the model returns when it accepts it, else the prediction.
    """

    def __init__(
        self,
        candidates: Mapping[str, Sequence[Any]],
        *,
        seed: int = 0,
        share_init: bool | Mapping[str, bool | Sequence[str]] = True,
        metrics: Mapping[str, Metric] | None = None,
        grad_clip: float | None = None,
        sinks: Sequence[Sink] = (),
        run_id: str | None = None,
        output_key: str | int = "auto",
    ) -> None:
        if not candidates:
            raise BuildError("Twin needs at least one candidate", fix='Twin({"a": (model, optimizer)})')
        self.streams = RngStreams(seed)
        self.metrics = dict(metrics or {})
        self.grad_clip = grad_clip
        self.run_id = run_id or new_run_id()
        self.bus = EventBus(sinks)
        self._sinks = list(sinks)
        self.states: dict[str, CandidateState] = {}
        for name, parts in candidates.items():
            check_name(name, "Twin candidate name")  # it names folders (TensorBoard, checks)
            if not isinstance(parts, (tuple, list)) or len(parts) not in (2, 3):
                raise BuildError(f"Twin candidate {name!r} must be (model, optimizer) or (model, optimizer, scheduler)")
            model, optimizer = parts[0], parts[1]
            if not isinstance(model, nn.Module) or not isinstance(optimizer, torch.optim.Optimizer):
                raise BuildError(
                    f"Twin candidate {name!r}: expected (nn.Module, Optimizer), got "
                    f"({type(model).__name__}, {type(optimizer).__name__})"
                )
            _check_ownership(name, model, optimizer, self.states)
            spec = CandidateSpec(name, Factory(type(model)), Factory(type(optimizer)), Factory(nn.Identity), None, None)
            self.states[name] = CandidateState(
                name,
                spec,
                model,
                optimizer,
                parts[2] if len(parts) == 3 else None,
                loss_fn=_unset_loss,
                augment=None,
                output_key=output_key,
            )
        policy = share_policy(share_init, list(self.states))
        kept = share_initial_weights([s.model for s in self.states.values()], policies=list(policy.values()))
        self.init = init_report({n: s.model for n, s in self.states.items()}, dict(zip(self.states, kept)))
        self.executor = SequentialExecutor()
        #: what changes as the loop trains: the step, each candidate's curves and evaluations
        self.history = RunHistory(self.states, self.metrics, None)
        self._verdict: dict[str, Comparison] | None = None
        self._closed = False
        for sink in sinks:  # a CheckpointSink among the sinks writes this Twin's state_dict
            if hasattr(sink, "bind") and getattr(sink, "snapshot", True) is None:
                sink.bind(self._snapshot)
        self.devices = sorted({p.device for s in self.states.values() for p in s.model.parameters()}, key=str)
        config = {
            "seed": seed,
            "grad_clip": grad_clip,
            "metrics": sorted(self.metrics),
            "output_key": output_key,
            "share_init": plain_config(share_init),
            "candidates": {n: candidate_config(s.model, s.optimizer, s.scheduler) for n, s in self.states.items()},
        }
        self.config = config
        self._started = False  # the run starts at the first step (after a load_state_dict: where it left off)

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self.bus.emit(
                RunStarted(
                    self.run_id,
                    None,
                    self.config,
                    self.init,
                    ",".join(map(str, self.devices)) or "cpu",
                    self.step_count,
                    self.models,
                )
            )

    @staticmethod
    def replicas(factories: Mapping[str, Any], replicas: int, *, seed: int = 0, **options: Any) -> Any:
        """Every candidate trained ``replicas`` times in your loop, each replica with its own initial weights and
        dropout masks, and the verdict across them: see :class:`~twinrun.loop.TwinReplicas`."""
        from twinrun.loop._twin_replicas import TwinReplicas

        return TwinReplicas(factories, replicas, seed=seed, **options)

    @property
    def models(self) -> dict[str, nn.Module]:
        """The same model objects you passed in, by name."""
        return {n: s.model for n, s in self.states.items()}

    @property
    def step_count(self) -> int:
        """The updates made so far."""
        return self.history.step

    @property
    def diverged(self) -> dict[str, int]:
        """Candidates whose loss became NaN/Inf, and the step it happened."""
        return {n: s.diverged_at for n, s in self.states.items() if s.diverged_at is not None}

    def step(self, inputs: Any, targets: Any, loss_fn: Any) -> dict[str, float]:
        """One update of every live candidate on this batch; returns the losses (before the update)."""
        self._start()
        step = self.history.step + 1
        live = [s for s in self.states.values() if s.alive]
        for state in live:
            if state.loss_fn is not loss_fn:
                state.loss_fn, state.loss_takes = loss_fn, None  # decided again on this loss's first outputs
        context = StepContext(self.streams, self.devices, self.metrics, self.grad_clip)
        if self.bus.wants_batches:  # a LedgerSink records every batch's control sums
            self.bus.emit(BatchPrepared(self.run_id, step, {"none": (inputs, targets)}, {s.name: "none" for s in live}))
        outputs = self.executor.run_step(step, live, {"none": (inputs, targets)}, context)
        diverged = self.history.record_step(step, outputs, self.states)  # the engine's own recording path
        for event in self.history.step_events(self.run_id, step, outputs, self.states, diverged):
            self.bus.emit(event)
        return {n: o.loss for n, o in outputs.items()}

    def evaluate(self, batches: Iterable[tuple[Any, Any]], loss_fn: Any) -> dict[str, dict[str, float]]:
        """Evaluate every live candidate on the same ``batches`` (materialised once)."""
        self._start()
        fixed = [tuple(b) for b in batches]
        results: dict[str, dict[str, float]] = {}
        per_example = per_example_loss(loss_fn)
        for state in self.states.values():
            if not state.alive:
                continue
            device = next(state.model.parameters()).device
            out = evaluate(
                state,
                [move_to(b, device) for b in fixed],
                loss_per_example=per_example,
                metrics=self.metrics,
                device=device,
                streams=self.streams,
                step=self.step_count,
            )
            results[state.name] = out.means()
            self.history.record_eval(state.name, self.step_count, out, results[state.name])
        self.bus.emit(EvalDone(self.run_id, self.step_count, results))
        return results

    def verdict(
        self,
        batches: Iterable[tuple[Any, Any]],
        loss_fn: Any,
        *,
        reference: str | None = None,
        confidence: float = 0.95,
    ) -> dict[str, Comparison]:
        """Every candidate against ``reference`` (default: the first) on the same ``batches``: the paired
        per-example difference of the loss and every metric, with its t interval, as ``twinrun compare``
        gives it for one run (its scope: these trained weights on this validation set). Emits ``EvalDone``."""
        self._start()
        fixed = [tuple(b) for b in batches]
        ref = reference or next(iter(self.states))
        if ref not in self.states:
            raise BuildError(f"reference {ref!r} is not a Twin candidate", fix=f"one of: {', '.join(self.states)}")
        per_example = per_example_loss(loss_fn)
        results: dict[str, CandidateResult] = {}
        means: dict[str, dict[str, float]] = {}
        for state in self.states.values():
            device = next(state.model.parameters()).device
            out = evaluate(
                state,
                [move_to(b, device) for b in fixed],
                loss_per_example=per_example,
                metrics=self.metrics,
                device=device,
                streams=self.streams,
                step=self.step_count,
            )
            means[state.name] = out.means()
            self.history.record_eval(state.name, self.step_count, out, means[state.name])
            results[state.name] = CandidateResult(
                state.name,
                "finished" if state.alive else "diverged",
                out.means(),
                out.per_example,
                np.full(1, np.nan),
                {},
                [],
                diverged_at=state.diverged_at,
            )
        self.bus.emit(EvalDone(self.run_id, self.step_count, means))
        goals = {"loss": False, **{k: m.higher_is_better for k, m in self.metrics.items()}}
        self._verdict = compare_candidates(results, ref, goals, seed=0, confidence=confidence)
        return self._verdict

    def check(self, name: str, train: Any, val: Any, loss_fn: Any, **options: Any) -> Any:
        """The training-recipe checks on candidate ``name`` (copies of its model, optimizer and scheduler:
        nothing of yours changes) with your data and loss; ``options`` are
        :func:`twinrun.checks.run_checks`'s (``only``, ``settings``...; ``steps=``, ``batch_size=``: settings).
        The report goes to the registry of a ``RegistrySink`` among the sinks (else the default one)."""
        from twinrun.checks import run_checks
        from twinrun.spec import SETTING_HELP

        if name not in self.states:
            raise BuildError(f"{name!r} is not a Twin candidate", fix=f"one of: {', '.join(self.states)}")
        state = self.states[name]
        named = {key: options.pop(key) for key in list(options) if key in SETTING_HELP}
        options["settings"] = {"grad_clip": self.grad_clip, **(options.pop("settings", None) or {}), **named}
        options.setdefault("name", f"{name}-checks")
        options.setdefault("registry", next((s.registry for s in self._sinks if hasattr(s, "registry")), True))
        return run_checks(
            model=state.model,
            train=train,
            val=val,
            loss=loss_fn,
            optimizer=state.optimizer,
            scheduler=state.scheduler,
            **options,
        )

    def state_dict(self, user: Any = None) -> dict[str, Any]:
        """Everything needed to continue this loop bit for bit: models, optimizers, schedulers, the step, the
        diverged candidates and the global generators (the dropout stream is a function of seed and step).
        ``user``: your own loop's state (epoch, a sampler's position...), handed back by :meth:`load_state_dict`."""
        return {
            "version": 1,
            "run_id": self.run_id,
            "step": self.step_count,
            "global_rng": capture_global_rng(),
            "user": user,
            "candidates": {
                n: {**parts_state(s), "diverged_at": s.diverged_at, "diverged_value": s.diverged_value}
                for n, s in self.states.items()
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> Any:
        """Continue from :meth:`state_dict` (the global generators too); returns its ``user`` part."""
        if not self._started:  # before the first step: the run goes on under its own id
            self.run_id = str(state.get("run_id") or self.run_id)
        saved, built = sorted(state["candidates"]), sorted(self.states)
        if saved != built:
            raise CheckpointError(
                f"the state holds candidates {saved}, this Twin has {built}",
                fix="build the Twin with the candidates the state was saved from",
            )
        for name, saved_state in state["candidates"].items():
            target = self.states[name]
            try:
                load_parts(target, saved_state)
            except (RuntimeError, ValueError, KeyError) as exc:
                raise CheckpointError(
                    f"Twin candidate {name!r}: the saved state does not fit its model or optimizer: {exc}",
                    fix="load it into the models it was saved from",
                ) from exc
            target.diverged_at, target.diverged_value = saved_state["diverged_at"], saved_state["diverged_value"]
        self.history.step = int(state["step"])
        restore_global_rng(state["global_rng"])
        return state.get("user")

    def _snapshot(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """A checkpoint's payload and header (a ``CheckpointSink`` among the sinks calls it); the other sinks
        first make what they recorded durable (the ledger file, the registry's rows)."""
        self.bus.persist()
        return self.state_dict(), {"experiment": "twin", "run_id": self.run_id}

    def result(self) -> TwinResult | None:
        """The loop's :class:`~twinrun.TwinResult` from its last evaluation (``None`` before one): what
        ``close`` records, so that ``twinrun show``, ``diff`` and ``report`` read your loop as a ``compare`` run."""
        return twin_result(self, self._verdict)

    def close(self) -> None:
        """Record the result (after an evaluation), then flush and close the sinks."""
        self._start()
        if not self._closed:
            self._closed = True
            result = self.result()
            if result is not None:
                self.bus.emit(RunFinished(self.run_id, result))
        self.bus.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        """Close the sinks; a loop that raised inside ``with`` is recorded as failed (or interrupted)."""
        if exc is not None:
            self._start()
            self._closed = True  # a failed loop records its failure, not a result
            failed = RunFailed(self.run_id, self.step_count, exc, isinstance(exc, KeyboardInterrupt))
            for error in self.bus.emit_to_all(failed):
                exc.add_note(f"twinrun: a sink also failed while recording this: {type(error).__name__}: {error}")
        self.close()


def _check_ownership(
    name: str, model: nn.Module, optimizer: torch.optim.Optimizer, others: Mapping[str, CandidateState]
) -> None:
    """A model given twice, or an optimizer that updates another model's parameters, is refused."""
    for other, state in others.items():
        if state.model is model:
            raise BuildError(
                f"Twin candidates {other!r} and {name!r} are the same model object: each would be "
                "stepped twice per batch",
                fix="give each candidate a model of its own (copy.deepcopy)",
            )
        if state.optimizer is optimizer:
            raise BuildError(
                f"Twin candidates {other!r} and {name!r} share one optimizer",
                fix="give each candidate its own optimizer over its own model's parameters",
            )
    own = {id(p) for p in model.parameters()}
    updated = [p for group in optimizer.param_groups for p in group["params"]]
    if not updated or not all(id(p) in own for p in updated):
        raise BuildError(
            f"Twin candidate {name!r}: its optimizer does not update (only) this model's parameters",
            fix=f"build it as torch.optim.X({name}_model.parameters(), ...)",
        )


def _unset_loss(outputs: Any, targets: Any) -> torch.Tensor:  # replaced by Twin.step's loss_fn
    raise BuildError("Twin.step was not given a loss function")
