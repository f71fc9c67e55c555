"""The twin engine: candidates trained side by side on the same batches, emitting events."""

from twinrun.engine._build import (
    CandidateState,
    InitReport,
    init_report,
    per_example_loss,
    share_initial_weights,
    share_policy,
)
from twinrun.engine._data import move_to
from twinrun.engine._describe import candidate_config, plain_config
from twinrun.engine._distributed import World, broadcast_text, detect_world, join_world, leave_world
from twinrun.engine._evaluate import evaluate
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
from twinrun.engine._history import RunHistory
from twinrun.engine._loop import TwinEngine, new_run_id, resolve_device, run_twin
from twinrun.engine._memory import ActivationMeter
from twinrun.engine._result import CandidateResult, Comparison, Difference, TwinResult
from twinrun.engine._state import load_parts, parts_state
from twinrun.engine._step import StepOutput, current_lr, train_step
from twinrun.engine._verdict import compare_candidates

__all__ = [
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
    "RunHistory",
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
    "World",
    "broadcast_text",
    "candidate_config",
    "compare_candidates",
    "current_lr",
    "detect_world",
    "evaluate",
    "init_report",
    "join_world",
    "leave_world",
    "load_parts",
    "move_to",
    "new_run_id",
    "parts_state",
    "per_example_loss",
    "plain_config",
    "resolve_device",
    "run_twin",
    "share_initial_weights",
    "share_policy",
    "train_step",
]
