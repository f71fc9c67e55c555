"""``twinrun compare --extend N``: continue a finished run for N more steps, as if planned that long.

A finished run with checkpoints on keeps a checkpoint of its last step. Resuming
it with ``steps`` raised by N continues every candidate from its saved state, on
the batches a longer run would have drawn (the batch of a step is a function of
the seed and the step alone), so the result is bit-identical to a run planned for
the longer length from the start, when nothing else in the plan depends on the
length. What can: a scheduler whose horizon (``T_max``, ``total_steps``...) is the
old length. A run planned longer would have a longer horizon; no continuation of
this one can equal it, so the extension is refused and says why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twinrun.checkpoint._sink import list_checkpoints
from twinrun.errors import CheckpointError

__all__ = ["HORIZON_KEYS", "plan_extension"]

#: Scheduler keywords that hold the length of the schedule.
HORIZON_KEYS = ("T_max", "total_steps", "total_iters", "num_training_steps", "max_steps", "max_iters")


def _horizons(config: dict[str, Any], steps: int) -> list[str]:
    found = []
    for name, cand in (config.get("candidates") or {}).items():
        scheduler = (cand or {}).get("scheduler") or {}
        for key, value in (scheduler.get("kwargs") or {}).items():
            if key in HORIZON_KEYS and value == steps:
                found.append(f"candidate {name!r}: {scheduler.get('factory')} {key}={value}")
    return found


def plan_extension(run_dir: str | Path, more: Any, *, status: str | None = None) -> int:
    """The new length of the run in ``run_dir`` extended by ``more`` steps, after every check.

    ``status``: the run's status in the registry, when there is one.

    Raises:
        CheckpointError: the run is not finished, every candidate stopped, it has no checkpoint of
            its last step, or a scheduler's horizon is its length.
    """
    folder = Path(run_dir)
    if isinstance(more, bool) or not isinstance(more, int) or more < 1:
        raise CheckpointError(
            f"--extend {more!r}: the number of steps to add must be a whole number >= 1", fix="--extend 200"
        )
    result_path = folder / "result.json"
    if status not in (None, "finished") or not result_path.is_file():
        raise CheckpointError(
            f"run {folder.name[:8]} is {status or 'not finished'}: --extend continues a finished run",
            fix=f"finish it first: twinrun compare FILE --resume {folder.name[:8]}",
        )
    result = json.loads(result_path.read_text())
    steps = int(result["steps"])
    alive = [n for n, c in result.get("candidates", {}).items() if c.get("status") == "finished"]
    if not alive:
        raise CheckpointError(
            f"run {folder.name[:8]}: every candidate diverged or failed; there is nothing to extend",
            fix="fix the candidates (twinrun check FILE) and start a new run",
        )
    found = list_checkpoints(folder / "checkpoints")
    if not found or found[-1][0] != steps:
        newest = f"its newest checkpoint is of step {found[-1][0]}" if found else "it has no checkpoint"
        raise CheckpointError(
            f"run {folder.name[:8]} finished at step {steps} but {newest}: it ran without checkpoints at "
            "its end, so its state there is gone",
            fix=f"run it again with --checkpoint-every K (its last step is then kept), or run the longer plan "
            f"from the start: --set steps={steps + more}",
        )
    horizons = _horizons(json.loads((folder / "config.json").read_text()), steps)
    if horizons:
        raise CheckpointError(
            f"run {folder.name[:8]} cannot be extended to equal a run planned for {steps + more} steps: "
            + "; ".join(horizons)
            + " is its old length, and a run planned longer would have a longer "
            "schedule (its learning rate would differ from the first step on)",
            fix=f"run the longer plan from the start: --set steps={steps + more} and the horizon set to {steps + more}",
        )
    return steps + more
