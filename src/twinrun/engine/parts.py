"""The engine's building blocks that the packages built on it (checks, sweeps, proof, the verbs) use.

The engine's modules are private; this module is the interface its siblings are held to. A check
that needs the model's prediction out of a tuple, or a sweep that drives replicas in lockstep,
imports it from here, so that the engine can rearrange its modules without breaking them.
"""

from twinrun.engine._build import build_callable, build_optimizer, build_scheduler, per_example_loss
from twinrun.engine._data import move_to
from twinrun.engine._drive import StepRequest, drive
from twinrun.engine._evaluate import evaluate
from twinrun.engine._layout import model_batch_dim
from twinrun.engine._losses import recognise_loss
from twinrun.engine._outputs import loss_input, prediction, replace_prediction
from twinrun.engine._placement import batch_for
from twinrun.engine._step import candidate_loss
from twinrun.engine._vectorised import Member, VectorisedExecutor

__all__ = [
    "Member",
    "StepRequest",
    "VectorisedExecutor",
    "batch_for",
    "build_callable",
    "build_optimizer",
    "build_scheduler",
    "candidate_loss",
    "drive",
    "evaluate",
    "loss_input",
    "model_batch_dim",
    "move_to",
    "per_example_loss",
    "prediction",
    "recognise_loss",
    "replace_prediction",
]
