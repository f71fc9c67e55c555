"""Resuming: find the checkpoint, rebuild the same configuration, refuse what changed.

A checkpoint records how its run was asked for (overrides, candidates,
reference), the fully resolved config and the environment. Resuming re-loads
the experiment file with those overrides (plus any new ones) and compares:

* another experiment: always refused;
* a different resolved config (the file or an override changed): refused with
  the differences, unless ``force``;
* a numerics-relevant environment difference (thread count, library
  versions, device, ``PYTHONHASHSEED`` ...): refused with the differences,
  unless ``force``.

Nothing is written before these checks pass.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twinrun.checkpoint._file import Checkpoint, read_checkpoint, read_checkpoint_header
from twinrun.checkpoint._sink import list_checkpoints
from twinrun.env import diff_environments
from twinrun.errors import CheckpointError, ReproducibilityWarning
from twinrun.spec import Experiment, ResolvedExperiment, resolve

__all__ = ["CHECKPOINT_DIR", "ResumePlan", "config_differences", "find_checkpoint", "plan_resume"]

CHECKPOINT_DIR = "checkpoints"
_FORCE = "or add --force to continue anyway (the result is then not a pure continuation of the run)"


@dataclass(frozen=True)
class ResumePlan:
    """What a resumed run needs: the checkpoint, the resolved experiment and the run's folder."""

    checkpoint: Checkpoint
    resolved: ResolvedExperiment
    run_id: str
    run_dir: Path | None
    request: dict[str, Any]
    forced: list[str] = field(default_factory=list)

    @property
    def step(self) -> int:
        return self.checkpoint.step


def find_checkpoint(target: str | Path) -> Path:
    """The checkpoint to resume from: ``target`` itself if it is a file, else the newest valid one.

    ``target`` may be a run folder (its ``checkpoints/`` is searched) or a
    folder of checkpoints. Newer checkpoints that fail verification are
    skipped with a warning naming them; none valid is an error.
    """
    path = Path(target)
    if path.is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(
            f"nothing to resume at {str(target)!r}",
            fix="pass a run folder (<TWINRUN_HOME>/runs/<run id>) or one of its checkpoint files",
        )
    folder = path / CHECKPOINT_DIR if (path / CHECKPOINT_DIR).is_dir() else path
    found = list_checkpoints(folder)
    if not found:
        raise CheckpointError(
            f"{str(target)!r} holds no checkpoint",
            fix="checkpoints are written by runs started with --checkpoint-every K",
        )
    rejected: list[str] = []
    for _, candidate in reversed(found):
        try:
            read_checkpoint_header(candidate)
        except CheckpointError as exc:
            rejected.append(exc.message)
            continue
        if rejected:
            warnings.warn(
                f"skipped newer checkpoints that failed verification: {'; '.join(rejected)}",
                ReproducibilityWarning,
                stacklevel=2,
            )
        return candidate
    raise CheckpointError(
        f"every checkpoint in {str(folder)!r} failed verification: {'; '.join(rejected)}",
        fix="start the run again",
    )


def _flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(data, Mapping) and data:
        for key, value in data.items():
            yield from _flatten(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), data


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``"key: old -> new"`` for every leaf that differs between two resolved configs."""
    a, b = dict(_flatten(old)), dict(_flatten(new))
    missing = object()
    lines = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            show_a = "(absent)" if va is missing else json.dumps(va, default=str)
            show_b = "(absent)" if vb is missing else json.dumps(vb, default=str)
            lines.append(f"{key}: {show_a} -> {show_b}")
    return lines


def plan_resume(
    target: str | Path,
    experiment: Experiment,
    *,
    overrides: Mapping[str, Any] | None = None,
    candidates: Sequence[str] | None = None,
    reference: str | None = None,
    environment: Mapping[str, Any] | None = None,
    force: bool = False,
) -> ResumePlan:
    """Verify a checkpoint against the experiment and environment of this process.

    Args:
        target: a run folder or a checkpoint file.
        experiment: the experiment, loaded again from its file.
        overrides, candidates, reference: changes on top of what the run was
            started with (normally none).
        environment: this process's ``capture_environment()`` (``None``: not checked).
        force: continue despite config or environment differences (listed in
            :attr:`ResumePlan.forced`).

    Raises:
        CheckpointError: unreadable checkpoint, another experiment, or changes
            without ``force``.
    """
    path = find_checkpoint(target)
    checkpoint = read_checkpoint(path)
    payload = checkpoint.payload
    if checkpoint.experiment != experiment.name:
        raise CheckpointError(
            f"checkpoint {str(path)!r} belongs to experiment {checkpoint.experiment!r}, not "
            f"{experiment.name!r}",
            fix=f"resume it with the file of experiment {checkpoint.experiment!r}, or start "
            f"{experiment.name!r} without --resume",
        )
    request = json.loads(payload["request_json"])
    merged = {**request["overrides"], **dict(overrides or {})}
    chosen = list(candidates) if candidates else request["candidates"]
    resolved = resolve(experiment, merged, candidates=chosen, reference=reference or request["reference"])
    forced: list[str] = []
    changes = config_differences(json.loads(payload["config_json"]), resolved.to_config())
    if changes:
        if not force:
            raise CheckpointError(
                f"the configuration changed since checkpoint {path.name} (step {checkpoint.step}) was "
                "written:\n    " + "\n    ".join(changes),
                fix="resume with the experiment file and --set options the run was started with, " + _FORCE,
            )
        forced += [f"config {line}" for line in changes]
    if environment is not None:
        env_changes = [
            d for d in diff_environments(json.loads(payload["environment_json"]), environment)
            if d.numerics and d.key != "env_vars.TWINRUN_SEED"  # the seed is part of the config
        ]
        if env_changes:
            lines = [f"{d.key}: {json.dumps(d.to_dict()['a'], default=str)} -> "
                     f"{json.dumps(d.to_dict()['b'], default=str)} ({d.reason})" for d in env_changes]
            if not force:
                raise CheckpointError(
                    f"the environment changed since checkpoint {path.name} was written, in ways that "
                    "can change the numbers:\n    " + "\n    ".join(lines),
                    fix="resume on the machine and software the run started on (same thread count, "
                    "library versions, PYTHONHASHSEED), " + _FORCE,
                )
            forced += [f"environment {line}" for line in lines]
    run_dir = path.parent.parent if path.parent.name == CHECKPOINT_DIR else None
    return ResumePlan(checkpoint, resolved, str(checkpoint.header["run_id"]), run_dir, request, forced)
