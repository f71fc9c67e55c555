"""One seed of a sweep, in its own fresh process: ``python -m twinrun.sweeps._worker TASK.json``.

The process runs a normal twin run (:func:`twinrun.compare`, recorded in the
registry with the sweep's id and the seed), saves what seed ensembles need (the
final validation outputs of every candidate and the validation targets) as
``outputs.pt`` in the run's folder, records that file in the registry, and
writes its outcome as JSON next to its log.

Exit status: 0 finished, 1 the experiment failed, 130 interrupted (SIGINT or
SIGTERM, or the parent process went away). A process that dies without an exit
status (killed, out of memory) is reported by the parent from the status alone.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Generator
from pathlib import Path
from typing import Any

__all__ = ["OUTPUTS_ARTIFACT", "OUTPUTS_FILE", "main", "run_task", "run_task_steps", "save_outputs"]

#: The registry artifact kind, and the file name in the run folder, of a seed's outputs.
OUTPUTS_ARTIFACT = "seed_outputs"
OUTPUTS_FILE = "outputs.pt"


_interrupted = threading.Event()


def _interrupt_on_sigterm() -> None:
    """SIGTERM (and SIGINT) interrupt once; later ones are ignored while the run records its end."""

    def handler(signum: int, frame: Any) -> None:
        if _interrupted.is_set():
            return
        _interrupted.set()
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _watch_parent(parent: int, every: float = 1.0) -> None:
    """Interrupt this process when the process that started it is gone (it cannot stop us then)."""

    def watch() -> None:
        while True:
            time.sleep(every)
            if os.getppid() != parent:
                if not _interrupted.is_set():
                    _interrupted.set()
                    _thread.interrupt_main()
                return

    threading.Thread(target=watch, name="twinrun-parent-watch", daemon=True).start()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from twinrun._atomic import write_json

    write_json(path, data, allow_nan=False)


def save_outputs(result: Any, run_dir: Path, seed: int) -> Path:
    """Save a run's final validation outputs per candidate and its targets as ``outputs.pt``."""
    import torch

    path = run_dir / OUTPUTS_FILE
    torch.save(
        {
            "format": 1,
            "seed": seed,
            "kind": result.output_kind,
            "targets": result.val_targets,
            "outputs": {name: cand.outputs for name, cand in result.candidates.items()},
        },
        path,
    )
    return path


def _registered(registry: str, run_id: str, error: str) -> bool:
    """Whether the run is in the registry; one still ``running`` there is ended as failed with ``error``.

    The engine records a failure itself; this covers an interrupt that came
    before its run had started or while it was recording the end.
    """
    from twinrun.registry import Registry, UnknownRunError

    try:
        with Registry.open(registry, create=False, reap=False) as reg:
            if reg.get_run(run_id).status == "running":
                reg.fail_run(run_id, error, interrupted=error.startswith("interrupted"))
        return True
    except UnknownRunError:
        return False
    except Exception:  # noqa: BLE001 - the registry itself is the problem; its error says so
        return False


def run(task_path: str) -> int:
    """The seed of ``task_path`` in this (fresh) process; its outcome is written next to its log."""
    from twinrun.sweeps._task import SeedTask

    task = SeedTask.from_json(Path(task_path).read_text())
    import torch

    torch.set_num_threads(task.threads)
    return run_task(task, log=sys.stderr)


def run_task(task: Any, *, log: Any) -> int:
    """Run one seed's twin run (``compare``), save its outputs, write its outcome; the exit status.

    (:func:`run_task_steps` driven with the run's own executor.)
    """
    from twinrun.engine.parts import drive

    return drive(run_task_steps(task, log=log))


def run_task_steps(task: Any, *, log: Any, stop: Any = None) -> Generator[Any, Any, int]:
    """:func:`run_task` as a generator of step requests (the in-process backend steps seeds together).

    Used by the seed's own process (:func:`run`) and by the in-process backend, which
    runs seeds one after another in the sweep's process. Errors of the experiment
    are reported in the outcome (their traceback goes to ``log``); an interrupt is
    reported as ``interrupted`` with exit status 130.
    """
    from twinrun._compare import DEFAULT, compare_steps
    from twinrun.engine import new_run_id
    from twinrun.errors import TwinrunError
    from twinrun.registry import Registry
    from twinrun.spec import parse_overrides

    run_id = new_run_id()
    started = time.monotonic()
    outcome: dict[str, Any] = {"seed": task.seed, "run_id": None, "log": str(task.log_path)}
    try:
        result = yield from compare_steps(
            task.experiment,
            stop=stop,
            candidates=list(task.candidates),
            reference=task.reference,
            overrides={**parse_overrides(list(task.overrides)), "seed": task.seed},
            home=task.home,
            logdir=task.tensorboard_dir or (DEFAULT if task.tensorboard else None),
            progress=False,
            run_id=run_id,
            registry=task.registry,
            tags=task.tags,
            sweep_id=task.sweep_id,
            seed_globals=True,  # as `twinrun compare` does: a seed of a sweep is that seed's run
        )
        outcome.update(run_id=result.artifacts.get("registry_run", run_id))
        if task.save_outputs:
            path = save_outputs(result, Path(result.artifacts["run_dir"]), task.seed)
            with Registry.open(task.registry, reap=False) as reg:
                reg.add_artifact(
                    outcome["run_id"],
                    OUTPUTS_ARTIFACT,
                    path=path,
                    payload={
                        "kind": result.output_kind,
                        "seed": task.seed,
                        "examples": None if result.val_targets is None else int(result.val_targets.shape[0]),
                        "candidates": {
                            n: (None if c.outputs is None else list(c.outputs.shape))
                            for n, c in result.candidates.items()
                        },
                    },
                )
            outcome["outputs"] = str(path)
        outcome.update(status="finished", seconds=time.monotonic() - started, result=result.to_dict())
        _write_json(task.outcome_path, outcome)
        return 0
    except KeyboardInterrupt as exc:
        outcome.update(status="interrupted", error=f"interrupted ({exc or 'SIGINT'})")
        code = 130
    except TwinrunError as exc:
        traceback.print_exc(file=log)
        outcome.update(status="failed", error=f"{type(exc).__name__}: {exc.message}", fix=exc.fix)
        code = 1
    except Exception as exc:  # noqa: BLE001 - the experiment's own code raised: report it
        traceback.print_exc(file=log)
        outcome.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        code = 1
    if _registered(task.registry, run_id, outcome["error"]):
        outcome["run_id"] = run_id
    outcome.update(returncode=code, seconds=time.monotonic() - started)
    _write_json(task.outcome_path, outcome)
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m twinrun.sweeps._worker TASK.json (started by twinrun seeds)", file=sys.stderr)
        return 2
    _interrupt_on_sigterm()
    _watch_parent(os.getppid())
    try:
        return run(args[0])
    except KeyboardInterrupt:  # before the task started
        return 130


if __name__ == "__main__":
    sys.exit(main())
