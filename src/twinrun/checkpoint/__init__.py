"""Checkpoints for exact resume: verified files, a sink that writes them, and resume planning."""

from twinrun.checkpoint._extend import HORIZON_KEYS, plan_extension
from twinrun.checkpoint._file import (
    MAGIC,
    Checkpoint,
    read_checkpoint,
    read_checkpoint_header,
    write_checkpoint,
)
from twinrun.checkpoint._resume import (
    CHECKPOINT_DIR,
    ResumePlan,
    config_differences,
    find_checkpoint,
    plan_resume,
)
from twinrun.checkpoint._sink import CheckpointSink, checkpoint_name, list_checkpoints

__all__ = [
    "CHECKPOINT_DIR",
    "HORIZON_KEYS",
    "MAGIC",
    "Checkpoint",
    "CheckpointSink",
    "ResumePlan",
    "checkpoint_name",
    "config_differences",
    "find_checkpoint",
    "list_checkpoints",
    "plan_extension",
    "plan_resume",
    "read_checkpoint",
    "read_checkpoint_header",
    "write_checkpoint",
]
