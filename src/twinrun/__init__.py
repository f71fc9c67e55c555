"""twinrun: trustworthy deep-learning comparisons.

Candidates train side by side on the same batches from the same initial
weights, so curves show the difference between models, not between runs.

The flat public API::

    import twinrun
    experiment = twinrun.Experiment(...)        # factories + candidates
    result = twinrun.compare(experiment)        # or the path of a file
    twin = twinrun.Twin({...})                  # inside your own loop
    report = twinrun.repro("exp.py")            # bit-identical, or where two runs part
"""

from twinrun._compare import compare
from twinrun._version import __version__
from twinrun.checkpoint import CheckpointSink, read_checkpoint
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

__all__ = [
    "BatchPrepared",
    "BuildError",
    "CandidateDiverged",
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
    "RegistryError",
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
    "TensorBoardSink",
    "Twin",
    "TwinEngine",
    "TwinResult",
    "TwinrunError",
    "TwinrunWarning",
    "__version__",
    "accuracy",
    "capture_environment",
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
    "parse_overrides",
    "read_checkpoint",
    "repro",
    "resolve",
    "run_twin",
    "seed_everything",
    "seed_worker",
]
