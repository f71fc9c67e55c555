"""The environment of a run: captured with every run, diffable, classified by relevance."""

from twinrun.env._capture import NUMERIC_ENV_VARS, capture_environment
from twinrun.env._diff import (
    NUMERIC_PACKAGES,
    EnvDifference,
    diff_environments,
    numerics_fingerprint,
)
from twinrun.env._git import git_state
from twinrun.env._gpu import gpu_snapshot, parse_nvidia_smi

__all__ = [
    "NUMERIC_ENV_VARS",
    "NUMERIC_PACKAGES",
    "EnvDifference",
    "capture_environment",
    "diff_environments",
    "git_state",
    "gpu_snapshot",
    "numerics_fingerprint",
    "parse_nvidia_smi",
]
