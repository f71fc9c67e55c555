"""The in-process backend: seeds in this process, with no start-up per seed, stepped together.

A fresh process per seed costs an interpreter, ``import torch`` and an
environment capture, seconds that can dwarf a short seed. Here every seed runs
in the sweep's own process, through the very function a seed's process runs
(:func:`~twinrun.sweeps._worker.run_task`), so a seed gives the same run either
way: the same twin run of that seed (tested against the process backend).

What a process would isolate is handled here: the global generators are put
back after every seed (each seed seeds them itself, as ``twinrun compare``
does), the thread count is set for the seeds and restored, and an experiment's
error is reported in its seed's outcome (the traceback goes to the seed's log).
What it cannot isolate: ``PYTHONHASHSEED`` is this process's (the ``twinrun``
command fixes it; the library warns when it is not fixed), and a seed that
crashes the interpreter takes the sweep with it (use the process backend).
Ctrl-C stops the running seed at its next step (it records itself as
interrupted, with a final checkpoint), and the sweep stops.

The seeds run together, step by step, when the experiment allows
(``_lockstep``: the replicas of each architecture in one batched step); with
``deterministic`` or ``executor='sequential'`` they run one after another.
Either way each seed's run is the one its own process would make.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

from twinrun.rng import isolated_global_rng
from twinrun.sweeps._local import check_positive, local_cores
from twinrun.sweeps._task import SeedOutcome, SeedTask

__all__ = ["InProcessBackend"]


class InProcessBackend:
    """Runs seeds in this process, one after another, each with ``threads`` threads (default: all cores)."""

    name = "inprocess"

    def __init__(self, jobs: int | None = None, threads: int | None = None) -> None:
        check_positive("jobs", jobs)
        check_positive("threads", threads)
        if jobs not in (None, 1):
            from twinrun.errors import ConfigError

            raise ConfigError(
                f"jobs={jobs}: the in-process backend runs one seed at a time",
                fix="drop --jobs, or use --backend local to run seeds in parallel processes",
            )
        self.jobs = 1
        self.threads = threads or local_cores()

    def describe(self) -> dict[str, object]:
        return {"backend": self.name, "jobs": 1, "threads": self.threads, "cores": local_cores()}

    def start(self) -> None:
        """Nothing to start."""

    def close(self) -> None:
        """Nothing to release."""

    def run(self, tasks: Sequence[SeedTask], on_outcome: Callable[[SeedOutcome], None]) -> None:
        from twinrun.sweeps._lockstep import lockstep_allowed, run_lockstep
        from twinrun.sweeps._process import _outcome
        from twinrun.sweeps._worker import run_task

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            if len(tasks) > 1 and lockstep_allowed(tasks[0]):
                run_lockstep(tasks, on_outcome)
                return
            for task in tasks:
                task.seed_dir.mkdir(parents=True, exist_ok=True)
                task.outcome_path.unlink(missing_ok=True)
                started = time.monotonic()
                with open(task.log_path, "a") as log, isolated_global_rng(task.seed):
                    code = run_task(task, log=log)
                on_outcome(_outcome(task, code, time.monotonic() - started))
                if code == 130:  # the seed was interrupted: so is the sweep
                    raise KeyboardInterrupt("the sweep was interrupted")
        finally:
            torch.set_num_threads(before)
