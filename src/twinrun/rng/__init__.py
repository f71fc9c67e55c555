"""Randomness under control: named isolated streams, seeding, worker seeds, deterministic kernels."""

from twinrun.rng._determinism import (
    CUBLAS_DETERMINISTIC,
    CUBLAS_ENV,
    DeterministicMode,
    determinism_settings,
    deterministic_mode,
    ensure_cublas_workspace_config,
)
from twinrun.rng._global import capture_global_rng, global_rng_digest, restore_global_rng
from twinrun.rng._seed import (
    SEED_ENV,
    hash_seed_is_fixed,
    seed_everything,
    seed_globals,
    warn_if_hash_seed_varies,
)
from twinrun.rng._streams import STREAMS, RngStreams, derive_seed, isolated_global_rng
from twinrun.rng._workers import current_rank, dataloader_generator, seed_worker

__all__ = [
    "CUBLAS_DETERMINISTIC",
    "CUBLAS_ENV",
    "SEED_ENV",
    "STREAMS",
    "DeterministicMode",
    "RngStreams",
    "capture_global_rng",
    "current_rank",
    "dataloader_generator",
    "derive_seed",
    "determinism_settings",
    "deterministic_mode",
    "ensure_cublas_workspace_config",
    "global_rng_digest",
    "hash_seed_is_fixed",
    "isolated_global_rng",
    "restore_global_rng",
    "seed_everything",
    "seed_globals",
    "seed_worker",
    "warn_if_hash_seed_varies",
]
