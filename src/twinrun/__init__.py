"""twinrun: trustworthy deep-learning comparisons.

Candidates train side by side on the same batches from the same initial
weights, so curves show the difference between models, not between runs.

The flat public API::

    import twinrun
    experiment = twinrun.Experiment(...)        # factories + candidates
    result = twinrun.compare(experiment)        # or the path of a file
    report = twinrun.check(experiment, "cnn")   # the training recipe as checks
    twin = twinrun.Twin({...})                  # inside your own loop
    report = twinrun.analyze_seeds({"base": [...], "wide": [...]}, higher_is_better=True)
    sweep = twinrun.run_sweep("exp.py", seeds=10, jobs=2)   # 10 seeds, analysed
    runs = twinrun.open_registry().list_runs()  # every run so far
    report = twinrun.repro("exp.py")            # bit-identical, or where two runs part

Importing ``twinrun`` is light: each name is imported from its subpackage on
first use (``twinrun.compare`` imports the engine, ``twinrun.analyze_seeds`` the
statistics), so a command pays only for what it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "BatchPrepared": "twinrun.engine",
    "BuildError": "twinrun.errors",
    "CandidateDiverged": "twinrun.engine",
    "CheckReport": "twinrun.checks",
    "CheckResult": "twinrun.checks",
    "CheckpointError": "twinrun.errors",
    "CheckpointSink": "twinrun.checkpoint",
    "ConfigError": "twinrun.errors",
    "DataError": "twinrun.errors",
    "Divergence": "twinrun.ledger",
    "EvalDone": "twinrun.engine",
    "Event": "twinrun.engine",
    "Executor": "twinrun.engine",
    "Experiment": "twinrun.spec",
    "Factory": "twinrun.spec",
    "InitReport": "twinrun.engine",
    "Ledger": "twinrun.ledger",
    "LedgerError": "twinrun.errors",
    "LedgerSink": "twinrun.ledger",
    "Metric": "twinrun.spec",
    "ProgressSink": "twinrun.sinks",
    "Registry": "twinrun.registry",
    "RegistryError": "twinrun.errors",
    "RegistrySink": "twinrun.registry",
    "ReproReport": "twinrun.proof",
    "ReproducibilityWarning": "twinrun.errors",
    "RngStreams": "twinrun.rng",
    "RunFailed": "twinrun.engine",
    "RunFinished": "twinrun.engine",
    "RunStarted": "twinrun.engine",
    "SequentialExecutor": "twinrun.engine",
    "Settings": "twinrun.spec",
    "Sink": "twinrun.engine",
    "StepDone": "twinrun.engine",
    "SweepInterrupted": "twinrun.sweeps",
    "SweepResult": "twinrun.sweeps",
    "TensorBoardSink": "twinrun.sinks",
    "Twin": "twinrun.engine",
    "TwinEngine": "twinrun.engine",
    "TwinResult": "twinrun.engine",
    "TwinrunError": "twinrun.errors",
    "TwinrunWarning": "twinrun.errors",
    "__version__": "twinrun._version",
    "accuracy": "twinrun.spec",
    "analyze_seeds": "twinrun.stats",
    "bootstrap_ci": "twinrun.stats",
    "capture_environment": "twinrun.env",
    "check": "twinrun.checks",
    "compare": "twinrun._compare",
    "compare_ledgers": "twinrun.ledger",
    "dataloader_generator": "twinrun.rng",
    "derive_seed": "twinrun.rng",
    "deterministic_mode": "twinrun.rng",
    "diff_environments": "twinrun.env",
    "factory": "twinrun.spec",
    "first_divergence": "twinrun.ledger",
    "isolated_global_rng": "twinrun.rng",
    "load_experiment": "twinrun.spec",
    "mae": "twinrun.spec",
    "mse": "twinrun.spec",
    "open_registry": "twinrun.registry",
    "parse_overrides": "twinrun.spec",
    "probability_of_improvement": "twinrun.stats",
    "read_checkpoint": "twinrun.checkpoint",
    "repro": "twinrun.proof",
    "resolve": "twinrun.spec",
    "run_checks": "twinrun.checks",
    "run_sweep": "twinrun.sweeps",
    "run_twin": "twinrun.engine",
    "seed_ensemble": "twinrun.stats",
    "seed_everything": "twinrun.rng",
    "seed_worker": "twinrun.rng",
    "seeds": "twinrun.sweeps",
    "seeds_needed": "twinrun.stats",
    "summarize": "twinrun.stats",
}

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from twinrun._compare import compare
    from twinrun._version import __version__
    from twinrun.checkpoint import CheckpointSink, read_checkpoint
    from twinrun.checks import CheckReport, CheckResult, check, run_checks
    from twinrun.engine import (
        BatchPrepared,
        CandidateDiverged,
        EvalDone,
        Event,
        Executor,
        InitReport,
        RunFailed,
        RunFinished,
        RunStarted,
        SequentialExecutor,
        Sink,
        StepDone,
        Twin,
        TwinEngine,
        TwinResult,
        run_twin,
    )
    from twinrun.env import capture_environment, diff_environments
    from twinrun.errors import (
        BuildError,
        CheckpointError,
        ConfigError,
        DataError,
        LedgerError,
        RegistryError,
        ReproducibilityWarning,
        TwinrunError,
        TwinrunWarning,
    )
    from twinrun.ledger import Divergence, Ledger, LedgerSink, compare_ledgers, first_divergence
    from twinrun.proof import ReproReport, repro
    from twinrun.registry import Registry, RegistrySink, open_registry
    from twinrun.rng import (
        RngStreams,
        dataloader_generator,
        derive_seed,
        deterministic_mode,
        isolated_global_rng,
        seed_everything,
        seed_worker,
    )
    from twinrun.sinks import ProgressSink, TensorBoardSink
    from twinrun.spec import (
        Experiment,
        Factory,
        Metric,
        Settings,
        accuracy,
        factory,
        load_experiment,
        mae,
        mse,
        parse_overrides,
        resolve,
    )
    from twinrun.stats import (
        analyze_seeds,
        bootstrap_ci,
        probability_of_improvement,
        seed_ensemble,
        seeds_needed,
        summarize,
    )
    from twinrun.sweeps import SweepInterrupted, SweepResult, run_sweep, seeds


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'twinrun' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "BatchPrepared",
    "BuildError",
    "CandidateDiverged",
    "CheckReport",
    "CheckResult",
    "CheckpointError",
    "CheckpointSink",
    "ConfigError",
    "DataError",
    "Divergence",
    "EvalDone",
    "Event",
    "Executor",
    "Experiment",
    "Factory",
    "InitReport",
    "Ledger",
    "LedgerError",
    "LedgerSink",
    "Metric",
    "ProgressSink",
    "Registry",
    "RegistryError",
    "RegistrySink",
    "ReproReport",
    "ReproducibilityWarning",
    "RngStreams",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "SequentialExecutor",
    "Settings",
    "Sink",
    "StepDone",
    "SweepInterrupted",
    "SweepResult",
    "TensorBoardSink",
    "Twin",
    "TwinEngine",
    "TwinResult",
    "TwinrunError",
    "TwinrunWarning",
    "__version__",
    "accuracy",
    "analyze_seeds",
    "bootstrap_ci",
    "capture_environment",
    "check",
    "compare",
    "compare_ledgers",
    "dataloader_generator",
    "derive_seed",
    "deterministic_mode",
    "diff_environments",
    "factory",
    "first_divergence",
    "isolated_global_rng",
    "load_experiment",
    "mae",
    "mse",
    "open_registry",
    "parse_overrides",
    "probability_of_improvement",
    "read_checkpoint",
    "repro",
    "resolve",
    "run_checks",
    "run_sweep",
    "run_twin",
    "seed_ensemble",
    "seed_everything",
    "seed_worker",
    "seeds",
    "seeds_needed",
    "summarize",
]
