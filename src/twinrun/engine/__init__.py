"""The twin engine: candidates trained side by side on the same batches, emitting events."""

from twinrun.engine._build import CandidateState, InitReport, init_report, share_initial_weights
from twinrun.engine._describe import candidate_config, plain_config
from twinrun.engine._events import (
    BatchPrepared,
    CandidateDiverged,
    EvalDone,
    Event,
    EventBus,
    RunFailed,
    RunFinished,
    RunStarted,
    Sink,
    StepDone,
)
from twinrun.engine._executor import Executor, SequentialExecutor, StepContext
from twinrun.engine._loop import TwinEngine, new_run_id, resolve_device, run_twin
from twinrun.engine._memory import ActivationMeter
from twinrun.engine._result import CandidateResult, Comparison, Difference, TwinResult
from twinrun.engine._step import StepOutput, train_step
from twinrun.engine._twin import Twin
from twinrun.engine._twin_replicas import REPLICA_SCOPE, TwinReplicas

__all__ = [
    "REPLICA_SCOPE",
    "ActivationMeter",
    "BatchPrepared",
    "CandidateDiverged",
    "CandidateResult",
    "CandidateState",
    "Comparison",
    "Difference",
    "EvalDone",
    "Event",
    "EventBus",
    "Executor",
    "InitReport",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "SequentialExecutor",
    "Sink",
    "StepContext",
    "StepDone",
    "StepOutput",
    "Twin",
    "TwinEngine",
    "TwinReplicas",
    "TwinResult",
    "candidate_config",
    "init_report",
    "new_run_id",
    "plain_config",
    "resolve_device",
    "run_twin",
    "share_initial_weights",
    "train_step",
]
