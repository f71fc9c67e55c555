"""Seeds as data: run a configuration once per seed, in parallel, and analyse the seeds.

``twinrun seeds FILE --seeds K`` (or :func:`run_sweep`) runs ``K`` twin runs of one
configuration; within each, every candidate shares that seed's initial weights,
batches and augmentation, so the comparison across seeds is paired. Each seed is
a fresh process (``PYTHONHASHSEED`` and thread counts fixed), recorded in the
registry under one sweep id; an interrupted sweep resumes without rerunning
finished seeds; a failed seed is reported and the others go on. The seeds are
then analysed with :func:`twinrun.stats.analyze_seeds` per metric, with seed
ensembles from each seed's saved validation outputs.

Modules: ``_plan`` (what runs: experiment, overrides, seeds), ``_task`` (what a
seed's process gets and returns), ``_worker`` (the seed's process), ``_process``
(the seed function: start the process, wait, report), ``_local`` / ``_ray``
(backends), ``_records`` (seeds as the registry remembers them), ``_analysis``
(runs to statistics), ``_progress`` (the bar), ``_runner`` (:func:`run_sweep`).
"""

from twinrun.sweeps._analysis import ANALYSIS_SEED, analyze_records, load_outputs, metric_functions
from twinrun.sweeps._local import LocalBackend, local_cores, threads_per_job
from twinrun.sweeps._options import Analysis, Execution
from twinrun.sweeps._plan import SweepPlan, choose_seeds, make_plan
from twinrun.sweeps._process import HASH_SEED, child_env, run_seed
from twinrun.sweeps._ray import RayBackend, import_ray
from twinrun.sweeps._records import SeedRecord, collect_seeds, sweep_folder
from twinrun.sweeps._runner import (
    BACKENDS,
    SWEEP_STATUSES,
    SweepInterrupted,
    SweepResult,
    analyze_sweep,
    load_sweep,
    run_sweep,
    seeds,
)
from twinrun.sweeps._task import OUTCOME_STATUSES, SeedOutcome, SeedTask
from twinrun.sweeps._tensorboard import sweep_tensorboard_dir
from twinrun.sweeps._worker import OUTPUTS_ARTIFACT, OUTPUTS_FILE

__all__ = [
    "ANALYSIS_SEED",
    "BACKENDS",
    "HASH_SEED",
    "OUTCOME_STATUSES",
    "OUTPUTS_ARTIFACT",
    "OUTPUTS_FILE",
    "SWEEP_STATUSES",
    "Analysis",
    "Execution",
    "LocalBackend",
    "RayBackend",
    "SeedOutcome",
    "SeedRecord",
    "SeedTask",
    "SweepInterrupted",
    "SweepPlan",
    "SweepResult",
    "analyze_records",
    "analyze_sweep",
    "child_env",
    "choose_seeds",
    "collect_seeds",
    "import_ray",
    "load_outputs",
    "load_sweep",
    "local_cores",
    "make_plan",
    "metric_functions",
    "run_seed",
    "run_sweep",
    "seeds",
    "sweep_folder",
    "sweep_tensorboard_dir",
    "threads_per_job",
]
