"""A separate process writing to a registry, for the concurrency and crash tests.

    python registry_worker.py writer REGISTRY GO_FILE WORKER RUNS BATCHES BATCH
        waits for GO_FILE, then records RUNS runs of BATCHES x BATCH metric rows each,
        with a tag and a note; prints the run ids.
    python registry_worker.py flood REGISTRY READY_FILE BATCH
        one run, then metric batches of BATCH rows back to back until killed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from twinrun.registry import Registry


def writer(path: str, go: str, worker: int, runs: int, batches: int, batch: int) -> None:
    Path(f"{go}.ready{worker}").write_text("ready")  # imports done
    while not Path(go).exists():
        time.sleep(0.001)
    registry = Registry.open(path)  # every worker races to create the file
    ids = []
    for r in range(runs):
        run_id = registry.create_run(name=f"worker{worker}", config={"worker": worker, "run": r},
                                     candidates={"a": {}, "b": {}}, seed=r)
        step = 0
        for _ in range(batches):
            rows = []
            for _ in range(batch // 2):
                step += 1
                rows += [("a", "train", step, "loss", 1.0 / step), ("b", "train", step, "loss", float(worker))]
            registry.log_metrics(run_id, rows, step=step)
        registry.add_tags(run_id, f"w{worker}")
        registry.add_note(run_id, f"worker {worker} run {r}")
        registry.finish_run(run_id, {"steps": step})
        ids.append(run_id)
    registry.close()
    print(" ".join(ids))


def flood(path: str, ready: str, batch: int) -> None:
    registry = Registry.open(path)
    run_id = registry.create_run(name="flood", config={}, candidates=["a"])
    step = 0
    while True:
        rows = []
        for _ in range(batch):
            step += 1
            rows.append(("a", "train", step, "loss", float(step)))
        registry.log_metrics(run_id, rows, step=step)
        if step == batch * 5:
            Path(ready).write_text(run_id)


if __name__ == "__main__":
    kind, *rest = sys.argv[1:]
    if kind == "writer":
        writer(rest[0], rest[1], *map(int, rest[2:]))
    else:
        flood(rest[0], rest[1], int(rest[2]))
