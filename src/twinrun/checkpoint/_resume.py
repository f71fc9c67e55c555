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
from twinrun.spec import Experiment, ResolvedExperiment, Settings, resolve

__all__ = ["CHECKPOINT_DIR", "ResumePlan", "config_differences", "find_checkpoint", "plan_resume"]

CHECKPOINT_DIR = "checkpoints"
#: Settings that cannot change a run's numbers: a resume may change them freely.
CADENCE_KEYS = ("settings.checkpoint_every",)


def _force_fix(names: Sequence[str]) -> str:
    flags = " ".join(f"--force {n}" for n in dict.fromkeys(names))
    return f"or accept exactly these changes with {flags} (the result is then not a pure continuation of the run)"


def _short(key: str) -> str:
    """The name a user types for a flattened config or environment key (``optimizer.lr``)."""
    parts = key.replace(".kwargs.", ".").split(".")
    if parts[0] == "candidates" and len(parts) > 2:
        parts = parts[2:]
    elif parts[0] == "settings":
        parts = parts[1:]
    return ".".join(parts)


def _is_override_record(key: str) -> bool:
    parts = key.split(".")
    return parts[0] == "overrides" or (parts[0] == "candidates" and len(parts) > 2 and parts[2] == "overrides")


def is_forced(key: str, kind: str, force: bool | Sequence[str]) -> bool:
    """Whether ``force`` accepts a change of ``key`` (a config or environment key).

    ``True`` or ``"all"`` accepts everything, ``"config"`` / ``"environment"`` every
    change of that kind; any other name accepts the keys it names: ``lr`` or
    ``optimizer.lr`` for ``candidates.*.optimizer.kwargs.lr``, ``steps`` for
    ``settings.steps``, ``threads`` for every thread setting of the environment.
    """
    if force is True:
        return True
    if force is False:
        return False
    names = set(force)
    if names & {"all", kind}:
        return True
    full, short = key.replace(".kwargs.", "."), _short(key)
    return any(
        name in (full, short)
        or short.endswith("." + name)
        or short.startswith(name + ".")
        or full.startswith(name + ".")
        for name in names
    )


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


def _new_default(key: str, saved: Mapping[str, Any], settings: Settings) -> bool:
    """A setting this version added, absent from an older checkpoint's config and left at its default: the
    run it resumes is the run it was (a newer twinrun can resume an older checkpoint)."""
    section, _, name = key.partition(".")
    if section != "settings" or name in saved.get("settings", {}) or not hasattr(settings, name):
        return False
    return bool(getattr(settings, name) == getattr(_DEFAULTS, name))


_DEFAULTS = Settings()


def config_difference_items(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(key, "key: old -> new")`` for every leaf that differs between two resolved configs."""
    a, b = dict(_flatten(old)), dict(_flatten(new))
    missing = object()
    items = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            show_a = "(absent)" if va is missing else json.dumps(va, default=str)
            show_b = "(absent)" if vb is missing else json.dumps(vb, default=str)
            items.append((key, f"{key}: {show_a} -> {show_b}"))
    return items


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``"key: old -> new"`` for every leaf that differs between two resolved configs."""
    return [line for _, line in config_difference_items(old, new)]


def plan_resume(
    target: str | Path,
    experiment: Experiment,
    *,
    overrides: Mapping[str, Any] | None = None,
    candidates: Sequence[str] | None = None,
    reference: str | None = None,
    environment: Mapping[str, Any] | None = None,
    force: bool | Sequence[str] = False,
) -> ResumePlan:
    """Verify a checkpoint against the experiment and environment of this process.

    Args:
        target: a run folder or a checkpoint file.
        experiment: the experiment, loaded again from its file.
        overrides, candidates, reference: changes on top of what the run was
            started with (normally none).
        environment: this process's ``capture_environment()`` (``None``: not checked).
        force: the differences to accept (listed in :attr:`ResumePlan.forced`): ``True``
            every one, or names (see :func:`is_forced`). A change of the checkpoint
            cadence (``checkpoint_every``) is always accepted: it cannot change results.

    Raises:
        CheckpointError: unreadable checkpoint, another experiment, or changes
            without ``force``.
    """
    path = find_checkpoint(target)
    checkpoint = read_checkpoint(path)
    payload = checkpoint.payload
    run_dir = path.parent.parent if path.parent.name == CHECKPOINT_DIR else None
    owner = str(checkpoint.header.get("run_id", ""))
    if run_dir is not None and run_dir.name != owner and len(run_dir.name) == len(owner):
        raise CheckpointError(
            f"checkpoint {str(path)!r} belongs to run {owner[:8]}, not to run {run_dir.name[:8]} whose "
            "folder holds it (was it copied there?); resuming it would write one run's results into "
            "the other's folder and registry row",
            fix=f"resume run {owner[:8]} from its own folder, or remove the copied file from {str(path.parent)!r}",
        )
    if checkpoint.experiment != experiment.name:
        raise CheckpointError(
            f"checkpoint {str(path)!r} belongs to experiment {checkpoint.experiment!r}, not {experiment.name!r}",
            fix=f"resume it with the file of experiment {checkpoint.experiment!r}, or start "
            f"{experiment.name!r} without --resume",
        )
    request = json.loads(payload["request_json"])
    merged = {**request["overrides"], **dict(overrides or {})}
    chosen = list(candidates) if candidates else request["candidates"]
    resolved = resolve(experiment, merged, candidates=chosen, reference=reference or request["reference"])
    forced: list[str] = []
    # the resolved values are compared; the overrides that produced them say the same again
    saved_config = json.loads(payload["config_json"])
    changes = [
        (key, line)
        for key, line in config_difference_items(saved_config, resolved.to_config())
        if key not in CADENCE_KEYS
        and not _is_override_record(key)
        and not _new_default(key, saved_config, resolved.settings)
    ]
    refused = [(k, line) for k, line in changes if not is_forced(k, "config", force)]
    if refused:
        raise CheckpointError(
            f"the configuration changed since checkpoint {path.name} (step {checkpoint.step}) was "
            "written:\n    " + "\n    ".join(line for _, line in refused),
            fix="resume with the experiment file and --set options the run was started with, "
            + _force_fix([_short(k) for k, _ in refused]),
        )
    forced += [f"config {line}" for _, line in changes]
    if environment is not None:
        env_changes = [
            d
            for d in diff_environments(json.loads(payload["environment_json"]), environment)
            if d.numerics and d.key != "env_vars.TWINRUN_SEED"  # the seed is part of the config
        ]
        lines = {
            d.key: f"{d.key}: {json.dumps(d.to_dict()['a'], default=str)} -> "
            f"{json.dumps(d.to_dict()['b'], default=str)} ({d.reason})"
            for d in env_changes
        }
        refused_env = [k for k in lines if not is_forced(k, "environment", force)]
        if refused_env:
            raise CheckpointError(
                f"the environment changed since checkpoint {path.name} was written, in ways that "
                "can change the numbers:\n    " + "\n    ".join(lines[k] for k in refused_env),
                fix="resume on the machine and software the run started on (same thread count, "
                "library versions, PYTHONHASHSEED), " + _force_fix(refused_env),
            )
        forced += [f"environment {line}" for line in lines.values()]
    return ResumePlan(checkpoint, resolved, str(checkpoint.header["run_id"]), run_dir, request, forced)
