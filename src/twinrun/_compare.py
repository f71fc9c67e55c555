"""``compare()``: the file-based flow, with the default sinks wired in.

The engine knows nothing of files on disk; this function is where a run gets
its folder (resolved config, result), its TensorBoard logs and its progress bar.
"""

from __future__ import annotations

import io
from collections.abc import Generator, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from twinrun._atomic import atomic_write, write_json
from twinrun._home import runs_dir, tensorboard_dir, twinrun_home
from twinrun._interrupt import StopRequest, stop_on_signals
from twinrun._names import check_name
from twinrun._runfolder import find_run_folder
from twinrun._runlock import run_lock
from twinrun._workspace import chosen_registry
from twinrun.checkpoint import ResumePlan, list_checkpoints, plan_resume
from twinrun.engine import (
    Sink,
    StepOutput,
    TwinEngine,
    TwinResult,
    World,
    broadcast_text,
    detect_world,
    join_world,
    leave_world,
    new_run_id,
    resolve_device,
)
from twinrun.engine.parts import StepRequest, drive
from twinrun.env import capture_environment, gpu_snapshot
from twinrun.errors import Interrupted
from twinrun.proof import RunRecorder
from twinrun.registry import Registry, RegistrySink
from twinrun.rng import seed_everything, warn_if_hash_seed_varies
from twinrun.sinks import ProgressSink, TensorBoardSink
from twinrun.spec import Experiment, ResolvedExperiment, load_experiment, resolve

__all__ = ["DEFAULT", "compare", "compare_steps"]

DEFAULT: Any = "default"


def compare_steps(
    experiment: Experiment | str | Path,
    *,
    stop: StopRequest | None = None,
    candidates: Sequence[str] | None = None,
    reference: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    sinks: Sequence[Sink] = (),
    home: str | Path | None = None,
    logdir: str | Path | None = DEFAULT,
    progress: bool | None = None,
    run_id: str | None = None,
    resume: str | Path | None = None,
    force: bool | Sequence[str] = False,
    seed_globals: bool = False,
    keep_checkpoints: int = 2,
    determinism_cost: bool = False,
    registry: Registry | str | Path | bool | None = True,
    tags: Sequence[str] = (),
    sweep_id: str | None = None,
) -> Generator[StepRequest, dict[str, StepOutput], TwinResult]:
    """:func:`compare` as a generator of step requests (see ``engine/_drive``): what a driver that
    steps several runs together (the replicas of an in-process sweep) calls. ``stop``: the caller's
    stop request, which also handles the signals (else this installs its own handlers)."""
    warn_if_hash_seed_varies()
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    root = twinrun_home(home)
    world = detect_world()  # launched by torchrun: data-parallel, rank 0 records
    if world is not None and not world.main:
        registry, logdir, progress = False, None, False
        sinks = tuple(s for s in sinks if getattr(s, "every_rank", False))  # the others are rank 0's
    store = chosen_registry(registry, root)  # a bad registry fails before anything is written (``_workspace``)
    joined = False
    try:
        plan = environment = None
        if world is not None:  # every rank joins before anything is decided for the run
            settings = resolve(exp, overrides, candidates=candidates, reference=reference).settings
            joined = join_world(world, resolve_device(settings.device))
        if resume is not None:  # every check before anything is written
            target = find_run_folder(resume, root, store) if world is None or world.main else Path()
            if world is not None:  # rank 0's folder; every other rank's own is inside it
                target = Path(broadcast_text(str(target)))
                target = target / f"rank-{world.rank}" if not world.main else target
            environment = capture_environment(code_path=exp.source.path if exp.source else None)
            plan = plan_resume(
                target,
                exp,
                overrides=overrides,
                candidates=candidates,
                reference=reference,
                environment=environment,
                force=force,
            )
            resolved, run_id = plan.resolved, plan.run_id
        else:
            resolved = resolve(exp, overrides, candidates=candidates, reference=reference)
            run_id = check_name(run_id, "run_id") if run_id is not None else new_run_id()
        if world is not None and plan is None:
            run_id = broadcast_text(run_id)  # one run, rank 0's id
        run_dir = plan.run_dir if plan is not None and plan.run_dir is not None else runs_dir(root) / run_id
        if world is not None and not world.main and plan is None:
            run_dir = run_dir / f"rank-{world.rank}"  # its own ledger and checkpoints, under rank 0's folder
        with run_lock(run_dir, run_id):  # one writer per run: a resume of a live run is refused
            if seed_globals:
                seed_everything(resolved.settings.seed)
            return (
                yield from _run(
                    resolved,
                    run_id,
                    run_dir,
                    plan,
                    environment,
                    root,
                    store,
                    tags,
                    sweep_id,
                    sinks,
                    logdir,
                    progress,
                    keep_checkpoints,
                    determinism_cost,
                    stop,
                    world,
                )
            )
    finally:
        leave_world(joined)
        if store is not None and not isinstance(registry, Registry):
            store.close()


def compare(
    experiment: Experiment | str | Path,
    *,
    candidates: Sequence[str] | None = None,
    reference: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    sinks: Sequence[Sink] = (),
    home: str | Path | None = None,
    logdir: str | Path | None = DEFAULT,
    progress: bool | None = None,
    run_id: str | None = None,
    resume: str | Path | None = None,
    force: bool | Sequence[str] = False,
    seed_globals: bool = False,
    keep_checkpoints: int = 2,
    determinism_cost: bool = False,
    registry: Registry | str | Path | bool | None = True,
    tags: Sequence[str] = (),
    sweep_id: str | None = None,
) -> TwinResult:
    """Train an experiment's candidates side by side and compare them.

    Args:
        experiment: an :class:`Experiment`, or the path of a file defining one.
        candidates: the candidates to run (default: all, in declared order).
        reference: the candidate others are compared with (default: the first).
        overrides: ``{"steps": 100, "model.width": 64, "wide:optimizer.lr": 1e-3}``.
        sinks: extra event sinks.
        home: twinrun's folder (default ``$TWINRUN_HOME`` or ``./.twinrun``).
        logdir: TensorBoard folder for this comparison; default
            ``<home>/tb/<experiment>-<run id>``; ``None`` writes no TensorBoard files.
        progress: show a progress bar (``None``: only on a terminal).
        run_id: the run's id (default: a fresh one).
        registry: where the run is recorded: ``True`` or ``None`` (default) ``<home>/registry.sqlite``,
            a path, or an open :class:`Registry`; ``False``: not recorded (the same rule everywhere:
            ``twinrun._workspace``). ``result.artifacts["registry_run"]`` is the run's id there.
        tags: tags given to the run in the registry.
        resume: the run to continue bit-identically: its folder, a checkpoint file, or
            its id in the registry (a prefix, ``latest``); the run keeps its id and folder.
            Refused (``CheckpointError``, nothing written) when another process is writing
            the run, or when the config or the numerics-relevant environment changed,
            unless ``force`` accepts those changes (models, optimizers and schedulers then
            continue from their saved states, hyperparameters such as the learning rate
            included).
        force: with ``resume``, the changes to accept: ``True`` every one, or names
            (``["steps"]``, ``["optimizer.lr", "threads"]``, ``["environment"]``).

    A first SIGINT or SIGTERM (Ctrl-C) during training stops the run at the end
    of its step, writes a checkpoint of that step and raises
    :class:`~twinrun.errors.Interrupted` (a ``KeyboardInterrupt``) naming the run
    and the checkpoint; the run is recorded as ``interrupted``. A second signal
    stops at once. SIGINT's and SIGTERM's handlers are twinrun's during the call.
        seed_globals: seed Python's, NumPy's and torch's global generators with the
            run's seed (:func:`~twinrun.rng.seed_everything`); the CLI does. twinrun's
            own randomness never comes from them.
        keep_checkpoints: how many checkpoints to keep (``checkpoint_every`` setting).
        determinism_cost: before training, time a few steps of copies of the candidates
            with deterministic mode off and on; reported in ``result.reproducibility``.

    The run folder also gets ``ledger.jsonl`` (control sums, ``ledger_every``
    setting) and ``checkpoints/`` (``checkpoint_every`` setting).
        sweep_id: the registry sweep this run belongs to (``twinrun seeds`` sets it).

    Returns:
        a :class:`TwinResult`; ``result.to_dict()`` is JSON-ready.
    """
    return drive(
        compare_steps(
            experiment,
            candidates=candidates,
            reference=reference,
            overrides=overrides,
            sinks=sinks,
            home=home,
            logdir=logdir,
            progress=progress,
            run_id=run_id,
            resume=resume,
            force=force,
            seed_globals=seed_globals,
            keep_checkpoints=keep_checkpoints,
            determinism_cost=determinism_cost,
            registry=registry,
            tags=tags,
            sweep_id=sweep_id,
        )
    )


def _run(
    resolved: ResolvedExperiment,
    run_id: str,
    run_dir: Path,
    plan: ResumePlan | None,
    environment: Mapping[str, Any] | None,
    root: Path,
    store: Registry | None,
    tags: Sequence[str],
    sweep_id: str | None,
    sinks: Sequence[Sink],
    logdir: str | Path | None,
    progress: bool | None,
    keep_checkpoints: int,
    determinism_cost: bool,
    stop: StopRequest | None = None,
    world: World | None = None,
) -> Generator[StepRequest, dict[str, StepOutput], TwinResult]:
    if plan is None or not (run_dir / "config.json").exists():
        write_json(run_dir / "config.json", resolved.to_config(), sort_keys=True)
    recorder = RunRecorder(
        run_dir,
        resolved,
        resume=plan,
        keep_checkpoints=keep_checkpoints,
        environment=environment,
        determinism_cost=determinism_cost,
    )
    all_sinks: list[Sink] = []
    tb_dir: Path | None = None
    if logdir is not None:
        tb_dir = tensorboard_dir(root) / f"{resolved.name}-{run_id[:8]}" if logdir is DEFAULT else Path(logdir)
    if store is not None:
        # first: it records the run even when another sink fails; the environment is captured once;
        # it writes its rows at every checkpoint step, so a checkpoint never holds a step it lacks
        all_sinks.append(
            RegistrySink(
                store,
                tags=tags,
                env=recorder.environment,
                sweep_id=sweep_id,
                sync_every=resolved.settings.checkpoint_every,
                artifacts={"run_dir": str(run_dir), **({"tensorboard": str(tb_dir)} if tb_dir else {})},
                finish=False,  # the result is recorded once, at the end, with every artifact
            )
        )
    all_sinks += [*recorder.sinks, *sinks]
    if tb_dir is not None:
        all_sinks.append(TensorBoardSink(tb_dir))
    if progress is not False:
        all_sinks.append(ProgressSink(enabled=progress))
    own = stop is None
    stop = StopRequest() if stop is None else stop
    with stop_on_signals(stop) if own else nullcontext():
        engine = TwinEngine(resolved, sinks=all_sinks, run_id=run_id, stop=stop, world=world)
        recorder.attach(engine)
        gpu_start = gpu_snapshot(str(engine.device))
        try:
            result = yield from engine.steps()
        except KeyboardInterrupt as exc:
            raise _interrupted(exc, run_id, recorder, store) from exc
    if "devices" in gpu_start:  # who else was on the GPU, at the start and at the end
        result.memory["gpu_other_processes"] = {"start": gpu_start, "end": gpu_snapshot(str(engine.device))}
    recorder.finish(result)
    result.artifacts["run_dir"] = str(run_dir)
    best = {n: c.best_state for n, c in result.candidates.items() if c.best_state is not None}
    if best:  # select_by: each candidate's weights at its best step
        for name, state in best.items():
            buffer = io.BytesIO()
            torch.save(state, buffer)
            atomic_write(run_dir / "best" / f"{name}.pt", buffer.getvalue())
        result.artifacts["best"] = str(run_dir / "best")
    if tb_dir is not None:
        result.artifacts["tensorboard"] = str(tb_dir)
    if store is not None:  # recorded once: the ledger, checkpoints and best weights are known only now
        store.finish_run(run_id, result.to_dict())
        for kind in ("ledger", "checkpoints"):
            if kind in result.artifacts:
                store.add_artifact(run_id, kind, path=result.artifacts[kind])
    write_json(run_dir / "result.json", result.to_dict())
    return result


def _interrupted(exc: KeyboardInterrupt, run_id: str, recorder: RunRecorder, store: Registry | None) -> Interrupted:
    """The interrupt, with the run and the checkpoint a resume continues from."""
    sink = recorder.checkpoint_sink
    found = list_checkpoints(sink.folder)
    step, path = found[-1] if found else (None, None)
    if store is not None and path is not None:
        store.add_artifact(run_id, "checkpoints", path=str(sink.folder))
    if isinstance(exc, Interrupted):  # stopped at a step boundary by the engine
        reason, stopped, boundary = exc.reason, exc.step, exc.at_step_boundary
    else:  # a second signal, inside a step
        reason, stopped, boundary = str(exc) or "SIGINT", recorder.last_step(), False
    return Interrupted(
        reason,
        step=stopped,
        at_step_boundary=boundary,
        run_id=run_id,
        checkpoint=None if path is None else str(path),
        checkpoint_step=step,
    )
