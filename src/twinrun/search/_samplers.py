"""Who proposes the trials: seeded random search, or any Optuna sampler (``--sampler tpe``).

Both answer ``ask(n)`` with ``n`` trials' overrides and take ``tell(trial, value)``: the trial's
paired difference to the reference on its batch. Random search needs nothing but NumPy; its
``k``-th trial is the ``k``-th draw of a generator seeded with the search's seed, so a resumed
search proposes exactly the trials it would have. Optuna keeps its study in the search's folder
(SQLite), so its samplers, storage and dashboard (``optuna-dashboard sqlite:///...``) all work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from twinrun.errors import ConfigError
from twinrun.search._space import Choice, Distribution, IntUniform, LogUniform, Uniform, sample

__all__ = ["SAMPLERS", "OptunaSampler", "RandomSampler", "make_sampler"]

#: ``random`` (no dependency) or an Optuna sampler by its short name.
SAMPLERS = ("random", "tpe", "cmaes", "qmc", "gp")


class RandomSampler:
    def __init__(self, space: Mapping[str, Distribution], seed: int) -> None:
        self.space, self.rng, self.asked = space, np.random.default_rng(seed), 0

    def skip(self, n: int) -> None:
        """Draw (and forget) ``n`` trials: a resumed search continues the same sequence."""
        for _ in range(n):
            sample(self.space, self.rng)
        self.asked += n

    def ask(self, n: int) -> list[tuple[int, dict[str, Any]]]:
        out = [(self.asked + i, sample(self.space, self.rng)) for i in range(n)]
        self.asked += n
        return out

    def tell(self, number: int, value: float | None) -> None:
        """Random search learns nothing."""


def _optuna_distribution(dist: Distribution) -> Any:
    import optuna

    if isinstance(dist, LogUniform):
        return optuna.distributions.FloatDistribution(dist.low, dist.high, log=True)
    if isinstance(dist, Uniform):
        return optuna.distributions.FloatDistribution(dist.low, dist.high)
    if isinstance(dist, IntUniform):
        return optuna.distributions.IntDistribution(dist.low, dist.high)
    assert isinstance(dist, Choice)
    return optuna.distributions.CategoricalDistribution(list(dist.values))


class OptunaSampler:
    def __init__(
        self, space: Mapping[str, Distribution], seed: int, kind: str, folder: Path, name: str, maximize: bool
    ) -> None:
        try:
            import optuna
        except ImportError:
            raise ConfigError(
                f"--sampler {kind} needs Optuna, which is not installed",
                fix="pip install 'twinrun[optuna]' (or use --sampler random)",
            ) from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        samplers: dict[str, Callable[[], Any]] = {
            "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
            "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
            "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
            "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        }
        folder.mkdir(parents=True, exist_ok=True)
        self.storage = f"sqlite:///{folder / 'optuna.db'}"
        self.study = optuna.create_study(
            study_name=name,
            storage=self.storage,
            sampler=samplers[kind](),
            direction="maximize" if maximize else "minimize",
            load_if_exists=True,
        )
        self.distributions = {k: _optuna_distribution(d) for k, d in sorted(space.items())}
        self.trials: dict[int, Any] = {}

    def skip(self, n: int) -> None:
        """A resumed study already holds its told trials."""

    def ask(self, n: int) -> list[tuple[int, dict[str, Any]]]:
        out = []
        for _ in range(n):
            trial = self.study.ask(self.distributions)
            self.trials[trial.number] = trial
            out.append((trial.number, dict(trial.params)))
        return out

    def tell(self, number: int, value: float | None) -> None:
        import optuna

        trial = self.trials.get(number, number)
        if value is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, value)


def make_sampler(
    kind: str, space: Mapping[str, Distribution], *, seed: int, folder: Path, name: str, maximize: bool
) -> RandomSampler | OptunaSampler:
    if kind not in SAMPLERS:
        raise ConfigError(
            f"--sampler {kind!r} is not one of {', '.join(SAMPLERS)}",
            fix="--sampler random (no dependency) or --sampler tpe (Optuna)",
        )
    if kind == "random":
        return RandomSampler(space, seed)
    return OptunaSampler(space, seed, kind, folder, name, maximize)
