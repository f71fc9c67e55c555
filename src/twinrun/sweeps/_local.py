"""The local backend: ``jobs`` seeds at a time on this machine, each in a fresh process.

A pool of ``jobs`` threads; each thread starts one seed's process and waits for
it (:func:`~twinrun.sweeps._process.run_seed`). The main thread collects
outcomes as they come. On Ctrl-C (or SIGTERM) every running child is stopped
(it records its run as interrupted), seeds not yet started are not started, and
the interruption propagates.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from twinrun.errors import ConfigError
from twinrun.sweeps._process import run_seed
from twinrun.sweeps._task import SeedOutcome, SeedTask

__all__ = ["LocalBackend", "local_cores", "threads_per_job"]


def local_cores() -> int:
    """The cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """Threads per seed so that ``jobs`` seeds fill the cores without oversubscribing them."""
    return max(1, (cores or local_cores()) // max(1, jobs))


def check_positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(
            f"{name}={value!r} must be a positive integer",
            fix=f"pass e.g. --{name} 2" if name != "threads" else "pass e.g. --threads 1",
        )


class LocalBackend:
    """Runs seeds as fresh processes on this machine, ``jobs`` at a time.

    Args:
        jobs: seeds at once (default: the number of cores).
        threads: threads per seed (default: cores // jobs, at least 1).
    """

    name = "local"

    def __init__(self, jobs: int | None = None, threads: int | None = None) -> None:
        check_positive("jobs", jobs)
        check_positive("threads", threads)
        self.jobs = jobs or local_cores()
        self.threads = threads or threads_per_job(self.jobs)

    def describe(self) -> dict[str, object]:
        return {"backend": self.name, "jobs": self.jobs, "threads": self.threads, "cores": local_cores()}

    def start(self) -> None:
        """Nothing to start locally."""

    def close(self) -> None:
        """Nothing to release locally."""

    def run(self, tasks: Sequence[SeedTask], on_outcome: Callable[[SeedOutcome], None]) -> None:
        """Run every task; ``on_outcome`` is called in this thread as each seed ends."""
        if not tasks:
            return
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=min(self.jobs, len(tasks)), thread_name_prefix="twinrun-seed")
        futures: dict[Future[SeedOutcome], SeedTask] = {pool.submit(run_seed, t, stop): t for t in tasks}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: futures[f].seed):
                    on_outcome(_result(future, futures[future]))
        except BaseException:
            stop.set()
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)  # running children are stopped by their threads
            raise
        pool.shutdown(wait=True)


def _result(future: Future[SeedOutcome], task: SeedTask) -> SeedOutcome:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - starting the process failed (no python, no disk...)
        return SeedOutcome(task.seed, "crashed", error=f"could not run the seed: {type(exc).__name__}: {exc}")
