"""``twinrun repro --times N``: how much of a result nondeterminism alone moves.

The same experiment, the same seed, the same environment, N fresh processes. On a
CPU every run is bit-identical and the spread is zero; on a GPU, atomics and
non-deterministic kernels make the final metrics scatter. That spread, set
against the spread across seeds of a sweep of the same experiment (the newest in
the registry, if there is one), says whether deterministic mode is worth its
cost: a nondeterminism spread that is a small fraction of the seed spread changes
no conclusion that the seeds support.
"""

from __future__ import annotations

import json
import math
import statistics
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twinrun._home import twinrun_home
from twinrun._workspace import RegistryChoice, chosen_registry, chosen_registry_path
from twinrun.errors import ConfigError
from twinrun.ledger import Ledger, compare_ledgers
from twinrun.spec import load_experiment, resolve

__all__ = ["TimesReport", "repeat"]


@dataclass(frozen=True)
class Spread:
    """One candidate's final metric over the repeats (and, where a sweep exists, over its seeds)."""

    candidate: str
    metric: str
    values: tuple[float, ...]
    seed_sd: float | None = None
    seeds: int = 0

    @property
    def sd(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan

    @property
    def fraction_of_seed_sd(self) -> float | None:
        if self.seed_sd is None or not self.seed_sd > 0:
            return None
        return self.sd / self.seed_sd

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "metric": self.metric,
            "values": list(self.values),
            "sd": self.sd,
            "range": max(self.values) - min(self.values),
            "seed_sd": self.seed_sd,
            "seeds": self.seeds,
            "fraction_of_seed_sd": self.fraction_of_seed_sd,
        }


@dataclass(frozen=True)
class TimesReport:
    experiment: str
    times: int
    identical_ledgers: int
    spreads: tuple[Spread, ...]
    sweep: str | None
    workdir: Path
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def identical(self) -> bool:
        return self.identical_ledgers == self.times - 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "times": self.times,
            "identical": self.identical,
            "identical_ledgers": self.identical_ledgers,
            "sweep": self.sweep,
            "spreads": [s.to_dict() for s in self.spreads],
            "notes": list(self.notes),
            "workdir": str(self.workdir),
        }

    def format(self) -> str:
        lines = [
            f"twinrun repro --times {self.times} · {self.experiment}: "
            + (
                "every run bit-identical to the first"
                if self.identical
                else f"{self.identical_ledgers} of {self.times - 1} runs bit-identical to the first"
            )
        ]
        for s in self.spreads:
            part = (
                f"  {s.candidate} · {s.metric}: sd {s.sd:.3g} over {len(s.values)} runs "
                f"(range {max(s.values) - min(s.values):.3g})"
            )
            frac = s.fraction_of_seed_sd
            if frac is not None:
                part += f", {frac:.1%} of the seed sd {s.seed_sd:.3g} ({s.seeds} seeds, sweep {self.sweep})"
            lines.append(part)
        fracs = [s.fraction_of_seed_sd for s in self.spreads if s.fraction_of_seed_sd is not None]
        if self.identical:
            lines.append("nondeterminism moves nothing here: deterministic mode would buy nothing")
        elif fracs:
            worst = max(fracs)
            lines.append(
                f"nondeterminism is at most {worst:.0%} of the seed spread: "
                + (
                    "deterministic mode is worth its cost only for bit-exact reruns"
                    if worst < 0.1
                    else "it is a real part of the noise; consider --set deterministic=true"
                )
            )
        else:
            lines.append("no sweep of this experiment in the registry to set it against (twinrun seeds FILE)")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _finals(outcome: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    result = json.loads((Path(outcome["run_dir"]) / "result.json").read_text())
    return {c: {m: v for m, v in d.get("final", {}).items() if v is not None} for c, d in result["candidates"].items()}


def _seed_spread(
    registry: RegistryChoice, home: Path, experiment: str
) -> tuple[str | None, dict[tuple[str, str], tuple[float, int]]]:
    """The newest sweep's seed spread in the registry ``registry`` names, if it exists (it is never created)."""
    if registry is False:
        return None, {}
    given = hasattr(registry, "seed_spread")  # an open Registry, used and left open
    if not given and not chosen_registry_path(registry, home, needed_by="repro --times").is_file():
        return None, {}
    store = chosen_registry(registry, home)
    if store is None:
        return None, {}
    try:
        return store.seed_spread(experiment)
    finally:
        if not given:
            store.close()


def repeat(
    experiment: str | Path,
    times: int,
    *,
    overrides: Mapping[str, Any] | None = None,
    candidates: Sequence[str] | None = None,
    home: str | Path | None = None,
    parallel: bool = False,
    progress: Any = None,
    timeout: float | None = None,
    registry: RegistryChoice = True,
) -> TimesReport:
    """Run ``experiment`` ``times`` times in fresh processes, alike; the spread of their final metrics.

    ``registry`` (as everywhere, ``twinrun._workspace``; default ``<home>/registry.sqlite``): where to
    look for a sweep of the same experiment, whose seed spread each metric's spread is set against
    (:meth:`~twinrun.registry.Registry.seed_spread`); ``False``, or a registry that does not exist yet:
    no comparison.
    """
    from twinrun.proof._repro import _Job, _Runner
    from twinrun.proof._vary import Side, inherited_hashseed

    if isinstance(times, bool) or not isinstance(times, int) or times < 2:
        raise ConfigError(f"--times {times!r}: a spread needs at least 2 runs", fix="--times 3")
    path = str(experiment)
    exp = load_experiment(path)
    base = dict(overrides or {})
    resolved = resolve(exp, base, candidates=candidates)
    root = twinrun_home(home)
    workdir = root / "repro" / uuid.uuid4().hex[:12]
    side = Side("as run", env={"PYTHONHASHSEED": inherited_hashseed()})
    jobs = [_Job(f"run {i + 1}", side, workdir / f"times-{i + 1}", dict(base)) for i in range(times)]
    _Runner(path, candidates, workdir, parallel, progress or (lambda _line: None), timeout).run(
        jobs, f"running the experiment {times} times"
    )
    ledgers = [Ledger.load(j.outcome["ledger"]) for j in jobs]
    identical = sum(compare_ledgers(ledgers[0], other).divergence is None for other in ledgers[1:])
    finals = [_finals(j.outcome) for j in jobs]
    sweep, seeds = _seed_spread(registry, root, resolved.name)
    spreads = []
    for cand in resolved.candidates:
        for metric in finals[0].get(cand, {}):
            values = tuple(f[cand][metric] for f in finals if metric in f.get(cand, {}))
            seed_sd, n = seeds.get((cand, metric), (None, 0))
            spreads.append(Spread(cand, metric, values, seed_sd, n))
    return TimesReport(resolved.name, times, identical, tuple(spreads), sweep, workdir)
