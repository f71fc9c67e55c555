"""What can break bit-exactness even in deterministic mode, as recorded with every run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twinrun.env import numerics_fingerprint

__all__ = ["bitexact_factors"]

_ENV_VARS = (
    "PYTHONHASHSEED",
    "CUBLAS_WORKSPACE_CONFIG",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NVIDIA_TF32_OVERRIDE",
    "CUDA_VISIBLE_DEVICES",
)


def bitexact_factors(environment: Mapping[str, Any], *, device: str, deterministic: bool) -> dict[str, Any]:
    """The facts that decide whether two runs can be bit-identical, from ``capture_environment()``.

    Thread counts change how reductions are split; library versions change
    kernels; devices and drivers change everything; ``PYTHONHASHSEED`` changes
    set iteration order; ``CUBLAS_WORKSPACE_CONFIG`` and the deterministic
    switches change which GPU kernels may run. ``numerics_fingerprint`` hashes
    every numerics-relevant fact of the environment, so two runs with equal
    fingerprints ran in comparable environments.
    """
    torch_facts = environment.get("torch", {})
    packages = environment.get("packages", {})
    env_vars = environment.get("env_vars", {})
    devices = environment.get("devices", {})
    return {
        "deterministic_mode": deterministic,
        "threads": torch_facts.get("num_threads"),
        "interop_threads": torch_facts.get("num_interop_threads"),
        "device": device,
        "cpu": devices.get("cpu_model"),
        "gpus": [g.get("name") for g in devices.get("gpus", [])],
        "python": environment.get("python", {}).get("version"),
        "torch": torch_facts.get("version"),
        "cuda": torch_facts.get("cuda"),
        "cudnn": torch_facts.get("cudnn"),
        "numpy": packages.get("numpy"),
        "tf32_matmul": torch_facts.get("matmul_allow_tf32"),
        "env": {name: env_vars.get(name) for name in _ENV_VARS},
        "numerics_fingerprint": numerics_fingerprint(environment),
    }
