"""``repro()``: run an experiment twice in fresh processes; prove it bit-identical or find the break.

::

    run A and run B (fresh processes, one factor varied on purpose)
    compare their ledgers record by record
    identical?  -> "bit-identical (N records compared)"
    otherwise   -> the first divergence at the ledger's cadence, then narrowed:
        weights are only recorded every ledger_every steps, so a divergence seen
        at step s may have started after the last equal weights (step c): both
        sides rerun to step s with ledger_every=1, dumping the tensors of steps
        c+1..s (initial weights, batches, weights after each update); the first
        divergence of those ledgers is exact, and its step's tensors give the
        parameter and max |a - b|.

A divergence that the reruns do not reproduce (an intermittent one, e.g.
GPU atomics) is reported as seen, with a note.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from twinrun._atomic import write_json
from twinrun._home import twinrun_home
from twinrun._launch import child_environment, launch
from twinrun.errors import ConfigError, TwinrunError
from twinrun.ledger import Divergence, Ledger, LedgerComparison, compare_runs
from twinrun.proof._dump import tensor_differences
from twinrun.proof._report import ReproReport, RunInfo
from twinrun.proof._vary import Side, inherited_hashseed, parse_vary
from twinrun.spec import Experiment, load_experiment, resolve

__all__ = ["ReproFailed", "repro"]

Progress = Callable[[str], None]


class ReproFailed(TwinrunError):
    """One of the runs of ``twinrun repro`` failed (its error is included)."""


@dataclass
class _Job:
    name: str
    side: Side
    folder: Path
    overrides: dict[str, Any]
    dump_steps: list[int] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    seconds: float = 0.0
    outcome: dict[str, Any] = field(default_factory=dict)


class _Runner:
    """Starts workers, waits for them, turns their failures into errors."""

    def __init__(
        self,
        experiment: str,
        candidates: Sequence[str] | None,
        workdir: Path,
        parallel: bool,
        progress: Progress,
        timeout: float | None,
        nproc: int | None = None,
    ) -> None:
        self.nproc = nproc
        self.experiment = experiment
        self.candidates = list(candidates) if candidates else None
        self.workdir = workdir
        self.parallel = parallel
        self.progress = progress
        self.timeout = timeout

    def _start(self, job: _Job) -> None:
        job.folder.mkdir(parents=True, exist_ok=True)
        request = {
            "experiment": self.experiment,
            "overrides": job.overrides,
            "candidates": self.candidates,
            "threads": job.side.threads,
            "dump_steps": job.dump_steps,
            "out": str(job.folder),
        }
        path = job.folder / "request.json"
        write_json(path, request)
        # both runs import this very twinrun, and are no training child of a `twinrun` command
        env = child_environment({**os.environ, **job.side.env}, drop=("TWINRUN_CHILD",))
        job.started = time.perf_counter()
        module, args = "twinrun._repro_worker", [str(path)]
        if self.nproc:  # every rank runs the worker; torchrun gives each its rank and the rendezvous
            args = ["--standalone", "--nproc_per_node", str(self.nproc), "-m", module, *args]
            module = "torch.distributed.run"
        with open(job.folder / "worker.log", "wb") as log:  # the child keeps its own copy of the handle
            job.process = launch(module, args, env=env, stdout=log, stderr=subprocess.STDOUT)

    def _finish(self, job: _Job) -> None:
        assert job.process is not None
        try:
            code = job.process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            job.process.kill()
            job.process.wait()
            raise ReproFailed(
                f"{job.name} ({job.side.label}) did not finish within {self.timeout:g} s",
                fix="raise the time limit (--timeout) or run fewer steps (--steps N)",
            ) from None
        job.seconds = time.perf_counter() - job.started
        errors = [job.folder / "error.json", *sorted(job.folder.glob("error-rank-*.json"))]
        error = next((e for e in errors if e.is_file()), errors[0])  # rank 0's, else the first rank's that failed
        if code != 0:
            if error.is_file():
                info = json.loads(error.read_text())
                raise ReproFailed(
                    f"{job.name} ({job.side.label}) failed: {info['message']}",
                    fix=info.get("fix") or f"see {job.folder / 'worker.log'} for the traceback",
                )
            tail = (job.folder / "worker.log").read_text(errors="replace").strip().splitlines()[-5:]
            raise ReproFailed(
                f"{job.name} ({job.side.label}) crashed with exit status {code}: " + " | ".join(tail),
                fix=f"see {job.folder / 'worker.log'}",
            )
        job.outcome = json.loads((job.folder / "outcome.json").read_text())

    def run(self, jobs: Sequence[_Job], what: str) -> None:
        names = " and ".join(f"{j.name} ({j.side.label})" for j in jobs)
        self.progress(f"{what}: {names}{' in parallel' if self.parallel else ''} ...")
        started = time.perf_counter()
        try:
            if self.parallel:
                for job in jobs:
                    self._start(job)
                for job in jobs:
                    self._finish(job)
            else:
                for job in jobs:
                    self._start(job)
                    self._finish(job)
        finally:
            for job in jobs:
                if job.process is not None and job.process.poll() is None:
                    job.process.kill()
                    job.process.wait()
        self.progress(f"{what}: done in {time.perf_counter() - started:.1f} s")


def _compare(jobs: Sequence[_Job]) -> LedgerComparison:
    """The two runs' ledgers compared (rank by rank, for runs under torchrun)."""
    a, b = (j.outcome["run_dir"] for j in jobs)
    return compare_runs(a, b)


def _experiment_path(experiment: str | Path | Experiment) -> str:
    if isinstance(experiment, Experiment):
        if experiment.source is None or not experiment.source.path:
            raise ConfigError(
                f"experiment {experiment.name!r} was not loaded from a file; repro runs it in fresh processes",
                fix="pass the path of the experiment file",
            )
        return experiment.source.path
    return str(experiment)


def repro(
    experiment: str | Path | Experiment,
    *,
    overrides: Mapping[str, Any] | None = None,
    candidates: Sequence[str] | None = None,
    vary: str | None = None,
    narrow: bool = True,
    home: str | Path | None = None,
    parallel: bool = False,
    progress: Progress | None = None,
    timeout: float | None = None,
    nproc: int | None = None,
) -> ReproReport:
    """Run ``experiment`` twice in fresh processes and compare their ledgers.

    Args:
        experiment: an experiment file (or an :class:`Experiment` loaded from one).
        overrides: ``--set`` overrides for both runs.
        candidates: the candidates to run (default: all).
        vary: one factor to vary on purpose: ``"threads=1,2"``, ``"hashseed"``
            (``=0,1``), ``"deterministic"`` (off vs on), ``"seed=0,1"``; ``None``:
            two identical runs.
        narrow: narrow a divergence down to its exact step and tensor (reruns).
        home: twinrun's folder; the runs go to ``<home>/repro/<id>/``.
        parallel: run the two sides at the same time (faster; timings less clean).
        progress: called with one line per phase (the CLI prints them).
        timeout: seconds each run may take.
        nproc: run each side under ``torchrun --nproc_per_node nproc`` (data-parallel, gloo on the CPU):
            the ledgers are compared rank by rank, and a divergence names its rank.

    Returns:
        a :class:`ReproReport`: ``identical``, or the first ``divergence``.

    Raises:
        ConfigError: bad experiment, overrides or ``vary``; ReproFailed: a run failed.
    """
    if nproc is not None and (isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1):
        raise ConfigError(f"nproc={nproc!r} must be a positive number of processes", fix="e.g. --nproc 2")
    say = progress or (lambda _line: None)
    path = _experiment_path(experiment)
    exp = load_experiment(path)  # bad input fails here, before any process starts
    base = dict(overrides or {})
    resolved = resolve(exp, base, candidates=candidates)
    variation = parse_vary(
        vary, hashseed=inherited_hashseed(), seed=resolved.settings.seed, cpu_threads=torch.get_num_threads()
    )
    for side in (variation.a, variation.b):
        resolve(exp, {**base, **side.overrides}, candidates=candidates)
    workdir = twinrun_home(home) / "repro" / uuid.uuid4().hex[:12]
    runner = _Runner(path, candidates, workdir, parallel, say, timeout, nproc)

    def jobs(phase: str, extra: Mapping[str, Any], dump_steps: Sequence[int] = ()) -> list[_Job]:
        return [
            _Job(
                f"run {tag}",
                side,
                workdir / f"{phase}-{tag.lower()}",
                {**base, **side.overrides, **extra},
                list(dump_steps),
            )
            for tag, side in (("A", variation.a), ("B", variation.b))
        ]

    main = jobs("main", {})
    runner.run(main, "running the experiment twice")
    a = Ledger.load(main[0].outcome["ledger"])
    coarse = _compare(main)
    runs = {tag: RunInfo.from_outcome(job.side.label, job.seconds, job.outcome) for tag, job in zip("ab", main)}
    notes: list[str] = []
    divergence = coarse.divergence
    narrowed_from: Divergence | None = None
    if divergence is not None and narrow:
        size = int(main[0].outcome.get("n_parameters", 0))
        divergence, narrowed_from = _narrow(divergence, a, size, jobs, runner, notes)
    return ReproReport(
        experiment=resolved.name,
        steps=resolved.settings.steps,
        variation=variation,
        comparison=coarse,
        divergence=divergence,
        narrowed_from=narrowed_from,
        runs=runs,
        notes=notes,
        workdir=workdir,
    )


#: Tensor dumps of a narrowing window larger than this are avoided (one more rerun instead).
DUMP_BUDGET_BYTES = 512 * 2**20


def _narrow(
    seen: Divergence,
    ledger: Ledger,
    n_parameters: int,
    jobs: Callable[..., list[_Job]],
    runner: _Runner,
    notes: list[str],
) -> tuple[Divergence, Divergence | None]:
    """The exact step and tensors of a divergence seen at the ledger's cadence.

    Weights are compared every ``ledger_every`` steps, so a divergence seen at
    step ``s`` started somewhere after the last equal weights, at step ``c``.
    Both sides rerun to ``s`` with ``ledger_every=1``, dumping the tensors of
    steps ``c+1 .. s`` (or, for big models, rerun once more to dump only the
    step found).
    """
    if seen.kind == "rng" and seen.name != "global":
        return seen, None  # a stream seed: the seeds themselves are the whole story
    if seen.kind == "rng":
        notes.append(
            "the training records agree up to here; only the global generators' states differ "
            "(code outside twinrun's streams drew differently)"
        )
        return seen, None
    every = int(ledger.header.get("ledger_every") or 1)
    s = seen.step
    last_equal = 0 if s <= 1 or every == 1 else ((s - 1) // every) * every
    window = [s] if every == 1 or s <= 1 else list(range(last_equal + 1, s + 1))
    too_big = len(window) > 1 and 4 * n_parameters * 2 * len(window) > DUMP_BUDGET_BYTES
    what = f"steps {window[0]}-{window[-1]}" if len(window) > 1 else f"step {window[0]}"
    rerun = jobs("narrow", {"steps": max(1, s), "ledger_every": 1}, [] if too_big else window)
    runner.run(
        rerun,
        f"narrowing: rerunning to step {max(1, s)} with ledger_every=1"
        + ("" if too_big else f", dumping the tensors of {what}"),
    )
    found = _compare(rerun).divergence
    if found is None:
        notes.append(
            f"the reruns to step {s} did not diverge: the nondeterminism is intermittent; "
            "reported as first seen, without tensor differences"
        )
        return seen, None
    narrowed_from = seen if found.key_tuple() != seen.key_tuple() else None
    if too_big:
        rerun = jobs("dump", {"steps": max(1, found.step), "ledger_every": 1}, [found.step])
        runner.run(rerun, f"comparing the tensors of step {found.step}")
    dump = "dump.pt" if not found.rank else f"dump-rank-{found.rank}.pt"  # the rank that parted
    dumps = [torch.load(j.folder / dump, weights_only=True) for j in rerun]
    if found.step not in dumps[0] or found.step not in dumps[1]:
        notes.append(
            f"the reruns diverged at step {found.step}, outside the dumped steps (intermittent "
            "nondeterminism); no tensor differences"
        )
        return found, narrowed_from
    return found.with_tensors(tensor_differences(dumps[0][found.step], dumps[1][found.step])), narrowed_from
