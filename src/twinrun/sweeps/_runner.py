"""``run_sweep``: run an experiment's configuration once per seed, then say what the seeds support.

Read top to bottom, a sweep is::

    plan     load and resolve the experiment once (bad input fails here), choose the seeds
    sweep    create it in the registry, or resume one (same configuration: same sweep hash)
    skip     seeds that already have a finished run (with saved outputs) in this sweep
    run      the other seeds, each a normal twin run in a fresh process, `jobs` at a time,
             recorded in the registry with the sweep id and its seed
    analyse  per metric: seed statistics, paired comparisons, seed ensembles, recommendation
    store    the analysis in the registry (with the sweep) and in <home>/sweeps/<id>/analysis.json

A seed that fails is reported and the others go on; the analysis uses the seeds
that finished and names those that did not. Ctrl-C (or SIGTERM) stops every
seed's process, marks the sweep ``interrupted`` and raises :class:`SweepInterrupted`;
``resume=`` the sweep's id (or ``True``: the newest unfinished sweep of the same
configuration) reruns only the seeds that did not finish.

Sweep statuses: ``running``, ``finished`` (every seed finished), ``partial`` (it
ended with some seeds failed), ``interrupted``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twinrun._home import twinrun_home
from twinrun._workspace import RegistryChoice, chosen_registry_path
from twinrun.registry import Registry
from twinrun.spec import Experiment
from twinrun.sweeps._inprocess import InProcessBackend
from twinrun.sweeps._local import LocalBackend
from twinrun.sweeps._options import BACKENDS, Analysis, Execution, split_legacy
from twinrun.sweeps._plan import SweepPlan
from twinrun.sweeps._process import HASH_SEED
from twinrun.sweeps._progress import SweepProgress
from twinrun.sweeps._ray import RayBackend
from twinrun.sweeps._records import SeedRecord, collect_seeds, sweep_folder, write_analysis_file
from twinrun.sweeps._resume import plan_or_resume, refuse_if_running
from twinrun.sweeps._stored import analysis_of, analyze_sweep, load_sweep
from twinrun.sweeps._task import SeedOutcome, SeedTask
from twinrun.sweeps._tensorboard import sweep_tensorboard_dir, write_mean_curves

__all__ = [
    "BACKENDS",
    "SWEEP_STATUSES",
    "SweepInterrupted",
    "SweepResult",
    "analyze_sweep",
    "load_sweep",
    "run_sweep",
    "seeds",
]

SWEEP_STATUSES = ("running", "finished", "partial", "interrupted")


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was stopped (Ctrl-C or SIGTERM); ``sweep_id`` resumes it."""

    def __init__(self, sweep_id: str, finished: int, total: int) -> None:
        super().__init__(f"sweep {sweep_id[:8]} interrupted with {finished}/{total} seeds finished")
        self.sweep_id = sweep_id
        self.finished = finished
        self.total = total


@dataclass
class SweepResult:
    """A sweep after this session: every seed's state, this session's outcomes, the analysis."""

    sweep_id: str
    status: str
    plan: SweepPlan
    seeds: dict[int, SeedRecord]
    ran: list[SeedOutcome]
    skipped: list[int]
    analysis: dict[str, Any] = field(repr=False)
    folder: Path
    registry: Path
    execution: dict[str, Any]
    seconds: float
    resumed: bool = False

    @property
    def finished(self) -> list[int]:
        return [s for s, r in self.seeds.items() if r.done]

    @property
    def failed(self) -> list[SeedRecord]:
        return [r for r in self.seeds.values() if not r.done]

    @property
    def ok(self) -> bool:
        return self.status == "finished"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the stored analysis plus this session's outcomes."""
        return {
            **self.analysis,
            "session": {
                "ran": [o.to_dict(result=False) for o in self.ran],
                "skipped": list(self.skipped),
                "seconds": self.seconds,
                "execution": self.execution,
                "resumed": self.resumed,
            },
        }


def run_sweep(
    experiment: Experiment | str | Path | None = None,
    *,
    seeds: int | Sequence[int] | None = None,
    base_seed: int | None = None,
    execution: Execution | str | None = None,
    analysis: Analysis | None = None,
    resume: bool | str = False,
    candidates: Sequence[str] | None = None,
    reference: str | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    ensemble: bool = True,
    tensorboard: bool = False,
    home: str | Path | None = None,
    registry: RegistryChoice = True,
    tags: Sequence[str] = (),
    progress: bool | None = None,
    **legacy: Any,
) -> SweepResult:
    """Run ``experiment`` once per seed and analyse the seeds (see the module docstring).

    Args:
        experiment: the experiment file (or module target, or an :class:`Experiment`
            loaded from a file). With ``resume=ID`` it may be left out.
        seeds: ``K`` (seeds ``0..K-1``, or derived from ``base_seed``) or a list of seeds.
            On resume, seeds not in the sweep yet are added to it.
        execution: where the seeds run: an :class:`Execution` (``backend``, ``jobs``,
            ``threads``, ``address``) or just a backend's name (``"inprocess"``); default: a
            fresh process per seed on this machine, as many at once as it has cores.
        analysis: how the seeds are read: an :class:`Analysis` (``metric``, ``deploy``,
            ``confidence``, ``n_resamples``); default: the experiment's first metric, 95 %.
        resume: ``False``: a new sweep; a sweep id (or prefix): resume that sweep; ``True``: the
            newest unfinished sweep of the same configuration, else a new one.
        candidates, reference, overrides: as for :func:`twinrun.compare` (no ``seed`` override).
        ensemble: keep each seed's validation outputs for seed ensembles.
        tensorboard: write TensorBoard logs: ``<home>/tb/<experiment>-<sweep>/seed-<s>/<candidate>``
            for each seed, and ``mean/<candidate>``, the curves averaged over the finished seeds.
        home, registry: twinrun's folder and the registry (defaults as for ``compare``).
        tags: tags given to every seed's run.
        progress: a bar on stderr (``None``: only on a terminal); ``False`` also silences the
            lines that report failed seeds.
        legacy: the flat keywords of the old signature (``jobs=2``, ``backend="ray"``,
            ``metric="accuracy"``...), folded into ``execution``/``analysis`` with a
            ``DeprecationWarning``.

    Returns:
        a :class:`SweepResult` (``.analysis`` is stored with the sweep).

    Raises:
        ConfigError: bad input, found before any seed runs.
        SweepInterrupted: Ctrl-C or SIGTERM; the sweep is marked ``interrupted``.
    """
    run, read = split_legacy(execution, analysis, legacy, function="run_sweep")
    backend, metric = run.backend, read.metric
    root = twinrun_home(home).absolute()
    reg_path = chosen_registry_path(registry, root, needed_by="a sweep")
    runner: Any
    if backend == "local":
        runner = LocalBackend(run.jobs, run.threads)
    elif backend == "inprocess":
        runner = InProcessBackend(run.jobs, run.threads)
    else:
        runner = RayBackend(run.jobs, run.threads, run.address)
    with Registry.open(reg_path) as reg:
        sweep, plan, resolved, notes = plan_or_resume(
            reg,
            experiment,
            seeds=seeds,
            base_seed=base_seed,
            resume=resume,
            candidates=candidates,
            reference=reference,
            overrides=overrides,
            metric=metric,
            ensemble=ensemble,
        )
        refuse_if_running(reg, sweep)
        sweep_id = sweep.id if sweep is not None else _new_id()
        folder = sweep_folder(root, sweep_id)
        sessions = list(sweep.config.get("sessions", [])) if sweep else []
        if sweep is None:
            reg.create_sweep(
                plan.name, experiment=plan.name, sweep_id=sweep_id, config={**plan.to_config(), "sessions": sessions}
            )
        records = collect_seeds(reg, sweep_id, plan, folder)
        to_run = [s for s in plan.seeds if not records[s].done]
        skipped = [s for s in plan.seeds if records[s].done]
        started = time.monotonic()
        bar = SweepProgress(len(to_run), enabled=progress)
        for note in notes:
            bar.line(note)
        ran: list[SeedOutcome] = []
        described: dict[str, Any] = {}
        try:
            with _sigterm_as_interrupt():
                runner.start()
                described = {
                    **runner.describe(),
                    "pythonhashseed": HASH_SEED if backend != "inprocess" else os.environ.get("PYTHONHASHSEED"),
                }
                sessions.append({"started_at": time.time(), **described, "seeds": to_run})
                reg.update_sweep(sweep_id, status="running", config={**plan.to_config(), "sessions": sessions})
                bar.line(_start_line(sweep_id, plan, to_run, skipped, described, resumed=sweep is not None))
                tasks = [
                    _task(sweep_id, s, plan, root, reg_path, folder, runner.threads, tensorboard, tags) for s in to_run
                ]

                def done(outcome: SeedOutcome) -> None:
                    ran.append(outcome)
                    bar.seed_done(outcome)

                runner.run(tasks, done)
        except KeyboardInterrupt:
            bar.close()
            runner.close()
            reg.update_sweep(sweep_id, status="interrupted")
            reg.reap_crashed()
            finished = sum(r.done for r in collect_seeds(reg, sweep_id, plan, folder).values())
            raise SweepInterrupted(sweep_id, finished, plan.k) from None
        finally:
            bar.close()
            runner.close()
        reg.reap_crashed()  # a seed's process killed mid-run left its run "running"
        records = collect_seeds(reg, sweep_id, plan, folder)
        status = "finished" if all(r.done for r in records.values()) else "partial"
        result = analysis_of(reg, sweep_id, plan, records, resolved, status=status, options=read, sessions=sessions)
        reg.update_sweep(sweep_id, status=status, analysis=result)
        write_analysis_file(folder, result)
        if tensorboard:
            write_mean_curves(
                reg,
                sweep_tensorboard_dir(root, plan.name, sweep_id),
                {s: records[s].run_id for s in plan.seeds if records[s].done},
                reference=plan.reference,
            )
        return SweepResult(
            sweep_id=sweep_id,
            status=status,
            plan=plan,
            seeds=records,
            ran=sorted(ran, key=lambda o: o.seed),
            skipped=skipped,
            analysis=result,
            folder=folder,
            registry=reg_path,
            execution=described,
            seconds=time.monotonic() - started,
            resumed=sweep is not None,
        )


def seeds(experiment: Experiment | str | Path, k: int | Sequence[int], **kwargs: Any) -> SweepResult:
    """``twinrun.sweeps.seeds("exp.py", 10)``: :func:`run_sweep` with ``seeds=k`` (same keywords)."""
    return run_sweep(experiment, seeds=k, **kwargs)


# ---------------------------------------------------------------------------- helpers
def _new_id() -> str:
    import uuid

    return uuid.uuid4().hex


def _task(
    sweep_id: str,
    seed: int,
    plan: SweepPlan,
    root: Path,
    reg_path: Path,
    folder: Path,
    threads: int,
    tensorboard: bool,
    tags: Sequence[str],
) -> SeedTask:
    return SeedTask(
        sweep_id=sweep_id,
        seed=seed,
        experiment=plan.experiment,
        overrides=plan.overrides,
        candidates=plan.candidates,
        reference=plan.reference,
        home=str(root),
        registry=str(reg_path),
        folder=str(folder),
        threads=threads,
        save_outputs=plan.save_outputs,
        tensorboard=tensorboard,
        tags=tuple(tags),
        tensorboard_dir=str(sweep_tensorboard_dir(root, plan.name, sweep_id) / f"seed-{seed}") if tensorboard else None,
    )


def _start_line(
    sweep_id: str,
    plan: SweepPlan,
    to_run: list[int],
    skipped: list[int],
    execution: Mapping[str, Any],
    *,
    resumed: bool,
) -> str:
    head = f"sweep {sweep_id[:8]} ({plan.name}): "
    if not to_run:
        return head + f"all {plan.k} seeds already finished; analysing"
    text = head + f"{len(to_run)} seed{'s' if len(to_run) != 1 else ''} to run ({_seed_list(to_run)})"
    if skipped:
        text += f", {len(skipped)} already finished ({_seed_list(skipped)})"
    text += f"; {execution['backend']}, {execution['jobs']} job(s) x {execution['threads']} thread(s)" + (
        f"; resume with --resume {sweep_id[:8]}" if not resumed else ""
    )
    return text


def _seed_list(values: Sequence[int], show: int = 8) -> str:
    text = ", ".join(str(v) for v in values[:show])
    return text + (f", ... ({len(values)} in all)" if len(values) > show else "")


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """In the main thread, SIGTERM stops the sweep as Ctrl-C does (children stopped, status kept)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous: Callable[..., Any] | int | None = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
