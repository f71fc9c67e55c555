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
    sweep = twinrun.run_sweep("exp.py", seeds=10)   # 10 seeds, analysed
    runs = twinrun.open_registry().list_runs()  # every run so far
    report = twinrun.repro("exp.py")            # bit-identical, or where two runs part

The top level holds the verbs and the core types; everything else lives in
its namespace, imported on first use: ``twinrun.events`` (what sinks receive),
``twinrun.sinks``, ``twinrun.stats``, ``twinrun.rng``, ``twinrun.errors``,
``twinrun.registry``, ``twinrun.ledger``, ``twinrun.checks``...

Importing ``twinrun`` is light: each name is imported from its subpackage on
first use (``twinrun.compare`` imports the engine, ``twinrun.analyze_seeds`` the
statistics), so a command pays only for what it uses.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

#: The public API: the verbs and the core types, each imported from its subpackage on first use.
_EXPORTS: dict[str, str] = {
    "ConfigError": "twinrun.errors",
    "Experiment": "twinrun.spec",
    "Metric": "twinrun.spec",
    "ReproducibilityWarning": "twinrun.errors",
    "Sink": "twinrun.engine",
    "TensorBoardSink": "twinrun.sinks",
    "Twin": "twinrun.loop",
    "TwinEngine": "twinrun.engine",
    "TwinResult": "twinrun.engine",
    "TwinrunError": "twinrun.errors",
    "__version__": "twinrun._version",
    "accuracy": "twinrun.spec",
    "analyze_seeds": "twinrun.stats",
    "check": "twinrun.checks",
    "compare": "twinrun._compare",
    "dataloader_generator": "twinrun.rng",
    "deterministic_mode": "twinrun.rng",
    "factory": "twinrun.spec",
    "load_experiment": "twinrun.spec",
    "mae": "twinrun.spec",
    "mse": "twinrun.spec",
    "open_registry": "twinrun.registry",
    "repro": "twinrun.proof",
    "run_sweep": "twinrun.sweeps",
    "seed_everything": "twinrun.rng",
    "seed_worker": "twinrun.rng",
}

#: Namespaces for everything else, imported on first use (``twinrun.stats.summarize``).
NAMESPACES = (
    "checkpoint",
    "checks",
    "engine",
    "env",
    "errors",
    "events",
    "integrations",
    "ledger",
    "loop",
    "proof",
    "registry",
    "report",
    "rng",
    "search",
    "sinks",
    "spec",
    "stats",
    "sweeps",
)

#: Names that were top-level before the API was made lean: still found, with a DeprecationWarning
#: naming their namespace.
_MOVED: dict[str, str] = {
    "BatchPrepared": "twinrun.engine",
    "BuildError": "twinrun.errors",
    "CandidateDiverged": "twinrun.engine",
    "CheckReport": "twinrun.checks",
    "CheckResult": "twinrun.checks",
    "CheckpointError": "twinrun.errors",
    "CheckpointSink": "twinrun.checkpoint",
    "DataError": "twinrun.errors",
    "Divergence": "twinrun.ledger",
    "EvalDone": "twinrun.engine",
    "Event": "twinrun.engine",
    "Executor": "twinrun.engine",
    "Factory": "twinrun.spec",
    "InitReport": "twinrun.engine",
    "Ledger": "twinrun.ledger",
    "LedgerError": "twinrun.errors",
    "LedgerSink": "twinrun.ledger",
    "ProgressSink": "twinrun.sinks",
    "Registry": "twinrun.registry",
    "RegistryError": "twinrun.errors",
    "RegistrySink": "twinrun.registry",
    "ReproReport": "twinrun.proof",
    "RngStreams": "twinrun.rng",
    "RunFailed": "twinrun.engine",
    "RunFinished": "twinrun.engine",
    "RunStarted": "twinrun.engine",
    "SequentialExecutor": "twinrun.engine",
    "Settings": "twinrun.spec",
    "StepDone": "twinrun.engine",
    "SweepInterrupted": "twinrun.sweeps",
    "SweepResult": "twinrun.sweeps",
    "TwinrunWarning": "twinrun.errors",
    "bootstrap_ci": "twinrun.stats",
    "capture_environment": "twinrun.env",
    "compare_ledgers": "twinrun.ledger",
    "derive_seed": "twinrun.rng",
    "diff_environments": "twinrun.env",
    "first_divergence": "twinrun.ledger",
    "isolated_global_rng": "twinrun.rng",
    "parse_overrides": "twinrun.spec",
    "probability_of_improvement": "twinrun.stats",
    "read_checkpoint": "twinrun.checkpoint",
    "resolve": "twinrun.spec",
    "run_checks": "twinrun.checks",
    "run_twin": "twinrun.engine",
    "seed_ensemble": "twinrun.stats",
    "seeds": "twinrun.sweeps",
    "seeds_needed": "twinrun.stats",
    "summarize": "twinrun.stats",
}

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from twinrun._compare import compare
    from twinrun._version import __version__
    from twinrun.checks import check
    from twinrun.engine import Sink, TwinEngine, TwinResult
    from twinrun.errors import ConfigError, ReproducibilityWarning, TwinrunError
    from twinrun.loop import Twin
    from twinrun.proof import repro
    from twinrun.registry import open_registry
    from twinrun.rng import dataloader_generator, deterministic_mode, seed_everything, seed_worker
    from twinrun.sinks import TensorBoardSink
    from twinrun.spec import Experiment, Metric, accuracy, factory, load_experiment, mae, mse
    from twinrun.stats import analyze_seeds
    from twinrun.sweeps import run_sweep


def __getattr__(name: str) -> Any:
    if name in NAMESPACES:
        return importlib.import_module(f"twinrun.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        module = _MOVED.get(name)
        if module is None:
            raise AttributeError(f"module 'twinrun' has no attribute {name!r}")
        namespace = "events" if module == "twinrun.engine" and name in _EVENTS else module.removeprefix("twinrun.")
        warnings.warn(
            f"twinrun.{name} is twinrun.{namespace}.{name} now (the top level holds the verbs and the core types)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(module), name)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


_EVENTS = (
    "BatchPrepared",
    "CandidateDiverged",
    "EvalDone",
    "Event",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "StepDone",
)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(NAMESPACES))


__all__ = [
    "ConfigError",
    "Experiment",
    "Metric",
    "ReproducibilityWarning",
    "Sink",
    "TensorBoardSink",
    "Twin",
    "TwinEngine",
    "TwinResult",
    "TwinrunError",
    "__version__",
    "accuracy",
    "analyze_seeds",
    "check",
    "compare",
    "dataloader_generator",
    "deterministic_mode",
    "factory",
    "load_experiment",
    "mae",
    "mse",
    "open_registry",
    "repro",
    "run_sweep",
    "seed_everything",
    "seed_worker",
]
