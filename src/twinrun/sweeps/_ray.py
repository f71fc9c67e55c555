"""The Ray backend: the same seed function as a Ray task, on a cluster or a local Ray instance.

Each seed is one Ray task running :func:`~twinrun.sweeps._process.run_seed`,
which starts the seed's fresh process on the node Ray picked (so the hash seed,
thread count and crash isolation are exactly those of the local backend). The
task asks Ray for ``threads`` CPUs; at most ``jobs`` tasks are in flight. A seed
whose node is lost (or whose Ray worker dies) is run again on another node, up to
``retries`` times: Ray retries a task on a system failure, and the seed's process
on the lost node stops with its parent (the worker watches it), so no two attempts
write at once. A seed that fails on its own (the experiment raised) is not retried.

``address``: an existing cluster (``"auto"``, ``"ray://head:10001"``, ``"head:6379"``);
``None``: the Ray instance this process is already connected to, else a new
local one (stopped again at the end). Every node must see the experiment file
and twinrun's home folder (the run folders) at the same paths, and have the same
twinrun installed.

The registry has one writer, this process: a seed records its run in a registry
file of its own, in a temporary folder of its node, and the task returns the
run's rows with its outcome (:class:`~twinrun.registry.PortableRun`), which are
written here. No SQLite file is shared between nodes (SQLite's locks do not hold
over a network file system); a retried seed replaces its earlier rows.

Ray is imported only here, and only when this backend starts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from twinrun.errors import ConfigError
from twinrun.registry import PortableRun, Registry, UnknownRunError
from twinrun.sweeps._local import check_positive, local_cores
from twinrun.sweeps._process import run_seed
from twinrun.sweeps._task import SeedOutcome, SeedTask

__all__ = ["RayBackend", "import_ray"]

_CANCEL_WAIT_S = 30.0


def import_ray() -> Any:
    """``import ray``, or a :class:`ConfigError` that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            f"--backend ray needs the ray package, which is not installed here ({exc})",
            fix='pip install "twinrun[ray]"   (or run the seeds on this machine: --backend local)',
        ) from exc
    return ray


def run_seed_on_node(
    task: SeedTask, sweep_row: tuple[tuple[str, ...], tuple[Any, ...]]
) -> tuple[SeedOutcome, PortableRun | None]:
    """One seed on a Ray node: recorded in a registry of the node's own, its run's rows returned with it."""
    with tempfile.TemporaryDirectory(prefix="twinrun-seed-") as folder:
        own = replace(task, registry=str(Path(folder) / "registry.sqlite"))
        with Registry.open(own.registry, reap=False) as registry:
            registry.import_sweep_row(*sweep_row)  # the run names its sweep
        outcome = run_seed(own)
        record = None
        if outcome.run_id is not None:
            try:
                with Registry.open(own.registry, create=False, reap=False) as registry:
                    record = registry.export_run(outcome.run_id)
            except UnknownRunError:  # the seed died before its run was recorded
                record = None
    return outcome, record


class RayBackend:
    """Runs seeds as Ray tasks.

    Args:
        jobs: seeds at once (default: the cluster's CPUs divided by ``threads``).
        threads: CPUs (threads) per seed (default: 1 on a cluster; cores // jobs on a
            local instance).
        address: the cluster to connect to (see the module docstring).
        retries: how many times a seed lost with its node (or Ray worker) is run again elsewhere.
    """

    name = "ray"

    def __init__(
        self, jobs: int | None = None, threads: int | None = None, address: str | None = None, retries: int = 3
    ) -> None:
        check_positive("jobs", jobs)
        check_positive("threads", threads)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries={retries!r} is not a number of retries", fix="pass 0 or more, e.g. 3")
        self.retries = retries
        self.address = address
        self._jobs, self._threads = jobs, threads
        self.jobs = jobs or 0
        self.threads = threads or 0
        self._started_here = False
        self.ray = import_ray()  # fails before anything is recorded when ray is missing

    def start(self) -> None:
        ray = self.ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None:
                kwargs["num_cpus"] = local_cores()
            try:
                ray.init(address=self.address, **kwargs)
            except Exception as exc:
                where = f"the Ray cluster at {self.address!r}" if self.address else "a local Ray instance"
                raise ConfigError(
                    f"could not start or reach {where}: {type(exc).__name__}: {exc}",
                    fix="start the cluster first (ray start --head), check --address, or use --backend local",
                ) from exc
            self._started_here = True
        cpus = int(ray.cluster_resources().get("CPU", 0)) or 1
        local = self.address is None
        self.threads = self._threads or (max(1, cpus // self._jobs) if (local and self._jobs) else 1)
        if self.threads > cpus:
            raise ConfigError(
                f"--threads {self.threads} asks for more CPUs per seed than the Ray cluster has ({cpus})",
                fix=f"pass --threads {cpus} or fewer",
            )
        self.jobs = self._jobs or max(1, cpus // self.threads)

    def describe(self) -> dict[str, object]:
        return {
            "backend": self.name,
            "jobs": self.jobs,
            "threads": self.threads,
            "address": self.address,
            "ray": getattr(self.ray, "__version__", None),
        }

    def close(self) -> None:
        if self._started_here and self.ray.is_initialized():
            self.ray.shutdown()
        self._started_here = False

    def run(self, tasks: Sequence[SeedTask], on_outcome: Callable[[SeedOutcome], None]) -> None:
        """Run every task, ``jobs`` in flight; ``on_outcome`` is called here as each seed ends."""
        ray = self.ray
        remote = ray.remote(run_seed_on_node).options(
            num_cpus=self.threads, max_retries=self.retries, name="twinrun-seed"
        )
        queue = list(tasks)
        pending: dict[Any, SeedTask] = {}
        rows: dict[str, tuple[tuple[str, ...], tuple[Any, ...]]] = {}  # each sweep's row, read once
        try:
            while queue or pending:
                while queue and len(pending) < self.jobs:
                    task = queue.pop(0)
                    if task.sweep_id not in rows:
                        with Registry.open(task.registry, reap=False) as registry:
                            rows[task.sweep_id] = registry.export_sweep_row(task.sweep_id)
                    pending[remote.remote(task, rows[task.sweep_id])] = task
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in done:
                    task = pending.pop(ref)
                    on_outcome(self._get(ref, task))
        except BaseException:
            for ref in pending:  # the task gets a KeyboardInterrupt and stops its child process
                ray.cancel(ref)
            if pending:
                ray.wait(list(pending), num_returns=len(pending), timeout=_CANCEL_WAIT_S)
            raise

    def _get(self, ref: Any, task: SeedTask) -> SeedOutcome:
        try:
            outcome, record = self.ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - the task died (node lost, worker killed)
            return SeedOutcome(task.seed, "crashed", error=f"the Ray task failed: {type(exc).__name__}: {exc}")
        if not isinstance(outcome, SeedOutcome):
            return SeedOutcome(task.seed, "crashed", error=f"the Ray task returned {type(outcome).__name__}")
        if record is not None:  # the one writer: the seed's run goes into the sweep's registry here
            with Registry.open(task.registry, reap=False) as registry:
                registry.import_run(record)
        return outcome
