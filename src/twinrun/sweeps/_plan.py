"""The plan of a seed sweep: which experiment, which configuration, which seeds.

A sweep runs one configuration (experiment file, ``--set`` overrides, chosen
candidates and reference) once per seed. Everything that defines *what* is
compared is in the plan and its :attr:`SweepPlan.sweep_hash`; how the seeds are
executed (backend, jobs, threads) is not, so a sweep started on a laptop can be
resumed on a cluster.

Seeds: ``K`` gives seeds ``0..K-1``; ``K`` with a base seed ``B`` gives
``derive_seed(B, "sweep", i)`` for ``i = 0..K-1`` (large, unrelated seeds, the
same on every machine); an explicit list is used as given. Seeds are recorded
with the sweep.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinrun.errors import ConfigError
from twinrun.rng import derive_seed
from twinrun.spec import Experiment, ResolvedExperiment, load_experiment, parse_overrides, resolve, split_target

__all__ = ["SweepPlan", "choose_seeds", "make_plan", "override_args"]

_MAX_SEED = 2**63


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep runs. ``to_config()`` is stored with the sweep in the registry."""

    experiment: str  # an absolute file path, or an importable module target
    name: str  # the experiment's name
    seeds: tuple[int, ...]
    overrides: tuple[str, ...]  # "key=value" as --set takes them (seed excluded)
    candidates: tuple[str, ...]
    reference: str
    metric: str  # the metric the recommendation leads with
    metrics: Mapping[str, bool]  # every metric (loss first) -> higher is better
    experiment_sha256: str | None
    sweep_hash: str
    save_outputs: bool = True

    @property
    def k(self) -> int:
        return len(self.seeds)

    def to_config(self) -> dict[str, Any]:
        return {
            "kind": "seeds",
            "experiment": self.experiment,
            "name": self.name,
            "seeds": list(self.seeds),
            "overrides": list(self.overrides),
            "candidates": list(self.candidates),
            "reference": self.reference,
            "metric": self.metric,
            "metrics": dict(self.metrics),
            "experiment_sha256": self.experiment_sha256,
            "sweep_hash": self.sweep_hash,
            "save_outputs": self.save_outputs,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SweepPlan:
        return cls(
            experiment=config["experiment"],
            name=config["name"],
            seeds=tuple(int(s) for s in config["seeds"]),
            overrides=tuple(config["overrides"]),
            candidates=tuple(config["candidates"]),
            reference=config["reference"],
            metric=config["metric"],
            metrics=dict(config["metrics"]),
            experiment_sha256=config.get("experiment_sha256"),
            sweep_hash=config["sweep_hash"],
            save_outputs=bool(config.get("save_outputs", True)),
        )

    def resolved(self, seed: int | None = None) -> ResolvedExperiment:
        """The resolved experiment of this plan (for ``seed``, default the first)."""
        exp = load_experiment(self.experiment)
        overrides = {**parse_overrides(list(self.overrides)), "seed": self.seeds[0] if seed is None else seed}
        return resolve(exp, overrides, candidates=list(self.candidates), reference=self.reference)


def choose_seeds(seeds: int | Sequence[int] | None, *, base_seed: int | None = None) -> tuple[int, ...]:
    """The seeds of a sweep: ``K`` -> ``0..K-1`` (or derived from ``base_seed``), or a list.

    Raises:
        ConfigError: no seeds, ``K < 1``, a seed outside ``[0, 2**63)``, a repeated seed,
            or a base seed with an explicit list.
    """
    if seeds is None:
        raise ConfigError("no seeds given", fix="pass --seeds K (seeds 0..K-1) or --seed-list 3,7,11")
    if isinstance(seeds, bool):
        raise ConfigError(
            f"seeds={seeds!r} is not a number of seeds or a list of seeds", fix="pass --seeds 5, or --seed-list 3,7,11"
        )
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(
                f"--seeds {seeds}: a sweep needs at least 1 seed (2 for a spread, 5-10 to compare candidates)",
                fix="pass --seeds 5",
            )
        if base_seed is None:
            return tuple(range(seeds))
        _check_seed(base_seed, "base seed")
        return tuple(derive_seed(base_seed, "sweep", i) for i in range(seeds))
    if base_seed is not None:
        raise ConfigError(
            "a base seed derives K seeds; it cannot be combined with a seed list",
            fix="pass either --seeds K --base-seed B, or --seed-list 3,7,11",
        )
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int):
            raise ConfigError(f"seed {s!r} is not an integer", fix="seeds are integers, e.g. --seed-list 3,7,11")
        _check_seed(s, "seed")
        if s in out:
            raise ConfigError(f"seed {s} is listed twice", fix="list each seed once")
        out.append(s)
    if not out:
        raise ConfigError("the seed list is empty", fix="pass --seed-list 3,7,11")
    return tuple(out)


def _check_seed(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_SEED:
        raise ConfigError(f"{what} {value!r} must be an integer in [0, 2**63)", fix="use e.g. 0, 1, 42")


def override_args(overrides: Mapping[str, Any] | Sequence[str] | None) -> tuple[str, ...]:
    """Overrides as ``key=value`` strings that a seed's process parses back to the same values.

    Raises:
        ConfigError: ``seed`` among them (the sweep sets each run's seed), or a value the
            command line cannot express (e.g. a class object).
    """
    if overrides is None:
        return ()
    if isinstance(overrides, Mapping):
        items = dict(overrides)
    else:
        items = parse_overrides(list(overrides))
    if "seed" in items:
        raise ConfigError(
            f"seed={items['seed']!r} is set as an override, but a sweep gives every run its own seed",
            fix="choose the seeds with --seeds K, --base-seed B or --seed-list 3,7,11",
        )
    out = []
    for key, value in items.items():
        text = f"{key}={value}" if isinstance(value, str) else f"{key}={value!r}"
        if not _reads_back(text, key, value):
            text = f"{key}={value!r}"  # a string that reads as a literal, e.g. "3"
        if not _reads_back(text, key, value):
            raise ConfigError(
                f"override {key}={value!r} cannot be passed to a seed's process: seeds run in "
                "separate processes, which read overrides as text",
                fix="use a value the command line can express: a number, a string, a list, or "
                "'package.module:Name' for a factory",
            )
        out.append(text)
    return tuple(out)


def _reads_back(text: str, key: str, value: Any) -> bool:
    back = parse_overrides([text])[key]
    return type(back) is type(value) and back == value


def _target(experiment: Experiment | str | Path) -> tuple[str, Experiment]:
    """The experiment as a target a fresh process can load, and the experiment loaded from it."""
    if isinstance(experiment, Experiment):
        source = experiment.source
        if source is None or not source.path or not Path(source.path).is_file():
            raise ConfigError(
                f"experiment {experiment.name!r} was not loaded from a file; a sweep runs each seed "
                "in a fresh process, which loads the experiment from its file",
                fix="save it in a file with `experiment = twinrun.Experiment(...)` and pass the path",
            )
        target = source.path
    else:
        path_part, attr = split_target(str(experiment))
        path = Path(path_part)
        if path.exists() or path.suffix == ".py":
            path_part = str(path.resolve())
        target = path_part + (f":{attr}" if attr else "")
    loaded = load_experiment(target)
    return target, loaded


def _sweep_hash(resolved: ResolvedExperiment, sha256: str | None) -> str:
    """What a sweep compares, without the seed: the resolved config and the file's hash."""
    config = resolved.to_config()
    config["settings"] = {k: v for k, v in config["settings"].items() if k != "seed"}
    config["overrides"] = {k: v for k, v in config["overrides"].items() if k != "seed"}
    text = json.dumps({"config": config, "experiment_sha256": sha256}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_plan(
    experiment: Experiment | str | Path,
    seeds: tuple[int, ...],
    *,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    candidates: Sequence[str] | None = None,
    reference: str | None = None,
    metric: str | None = None,
    save_outputs: bool = True,
) -> tuple[SweepPlan, ResolvedExperiment]:
    """Load and resolve the experiment once (bad input fails here, before any process starts).

    Returns the plan and the experiment resolved for the first seed.
    """
    args = override_args(overrides)
    target, loaded = _target(experiment)
    if isinstance(experiment, Experiment):
        given = resolve(experiment, parse_overrides(list(args)), candidates=candidates, reference=reference)
        fresh = resolve(loaded, parse_overrides(list(args)), candidates=candidates, reference=reference)
        if given.config_hash() != fresh.config_hash():
            raise ConfigError(
                f"experiment {experiment.name!r} differs from the one its file {target!r} defines "
                "now; each seed's process would load the file's version",
                fix="pass the file's path (and changes as overrides), or save your changes in the file",
            )
    resolved = resolve(
        loaded, {**parse_overrides(list(args)), "seed": seeds[0]}, candidates=candidates, reference=reference
    )
    goals = {"loss": False, **{name: m.higher_is_better for name, m in resolved.metrics.items()}}
    if metric is None:
        metric = next((m for m in goals if m != "loss"), "loss")
    elif metric not in goals:
        raise ConfigError(
            f"metric {metric!r} is not measured by experiment {resolved.name!r}",
            fix=f"choose one of: {', '.join(goals)}",
        )
    sha = loaded.source.sha256 if loaded.source is not None else None
    plan = SweepPlan(
        experiment=target,
        name=resolved.name,
        seeds=seeds,
        overrides=args,
        candidates=tuple(resolved.candidates),
        reference=resolved.reference,
        metric=metric,
        metrics=goals,
        experiment_sha256=sha,
        sweep_hash=_sweep_hash(resolved, sha),
        save_outputs=save_outputs,
    )
    return plan, resolved
