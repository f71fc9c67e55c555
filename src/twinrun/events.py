"""The engine's events, which sinks consume: ``twinrun.events.StepDone`` and the rest.

The engine knows nothing of storage or UI; it emits these, in this order, to every
sink: ``RunStarted``, then per step ``BatchPrepared`` (only to sinks that want
batches) and ``StepDone``, ``EvalDone`` after evaluations, ``CandidateDiverged``
when a candidate stops, and ``RunFinished`` or ``RunFailed``. Subclass :class:`Sink`
and override the ``on_*`` methods you need.
"""

from twinrun.engine import (
    BatchPrepared,
    CandidateDiverged,
    EvalDone,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
    Sink,
    StepDone,
)

__all__ = [
    "BatchPrepared",
    "CandidateDiverged",
    "EvalDone",
    "Event",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "Sink",
    "StepDone",
]
