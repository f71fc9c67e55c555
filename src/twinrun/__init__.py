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
"""

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
