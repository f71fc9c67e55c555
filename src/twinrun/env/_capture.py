"""Capture everything about the machine and software that can change a run's numbers.

``capture_environment()`` returns a JSON-ready dict. It never initialises CUDA
(that would break deterministic cuBLAS settings made later): GPU facts come from
``torch.cuda.device_count()`` and ``nvidia-smi`` when present.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from twinrun.env._git import git_state

__all__ = ["NUMERIC_ENV_VARS", "capture_environment"]

#: Environment variables that can change numerics, randomness or device choice.
NUMERIC_ENV_VARS = (
    "PYTHONHASHSEED",
    "CUBLAS_WORKSPACE_CONFIG",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "MKL_CBWR",
    "KMP_AFFINITY",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_LAUNCH_BLOCKING",
    "NVIDIA_TF32_OVERRIDE",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
    "PYTORCH_CUDA_ALLOC_CONF",
    "TORCH_CUDNN_V8_API_DISABLED",
    "TWINRUN_SEED",
    "TWINRUN_DETERMINISTIC",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[dict[str, Any]]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    gpus = []
    for line in proc.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            gpus.append(
                {
                    "name": parts[0],
                    "driver": parts[1],
                    "memory": parts[2],
                    "compute_capability": parts[3] if len(parts) > 3 else None,
                }
            )
    return gpus


def _torch_facts() -> dict[str, Any]:
    import torch

    cudnn = torch.backends.cudnn
    facts: dict[str, Any] = {
        "version": torch.__version__,
        "git_version": getattr(torch.version, "git_version", None),
        "cuda": torch.version.cuda,
        "cudnn": cudnn.version() if cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "cuda_device_count": torch.cuda.device_count(),
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": bool(cudnn.deterministic),
        "cudnn_benchmark": bool(cudnn.benchmark),
        "cudnn_allow_tf32": bool(cudnn.allow_tf32),
        "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "openmp": torch.backends.openmp.is_available(),
    }
    return facts


def _packages() -> dict[str, str]:
    """Installed distributions and versions (read once per process: ~85 ms, and what this process
    imported cannot change after it started; a sweep's in-process seeds share the reading)."""
    return dict(_installed())


@functools.lru_cache(maxsize=1)
def _installed() -> tuple[tuple[str, str], ...]:
    packages: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.name  # None for a broken install
        if name:
            packages[name.lower().replace("_", "-")] = dist.version
    return tuple(sorted(packages.items()))


def capture_environment(
    *, code_path: str | Path | None = None, packages: bool = True, git: bool = True
) -> dict[str, Any]:
    """Python, packages, torch/CUDA/cuDNN, devices, OS, threads, numerics env vars, git.

    Args:
        code_path: a file or folder of the code that runs (its git state is recorded);
            default: the working directory.
        packages: include every installed distribution and its version.
        git: include the git commit, branch, dirty flag and diff.
    """
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    env: dict[str, Any] = {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "os": {
            "system": platform.system(),
            "release": platform.release(),
            "version": platform.version(),
            "machine": platform.machine(),
            "libc": " ".join(platform.libc_ver()).strip() or None,
            "hostname": socket.gethostname(),
        },
        "devices": {
            "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "cpu_affinity": affinity,
            "gpus": _gpus(),
        },
        "torch": _torch_facts(),
        "env_vars": {name: os.environ.get(name) for name in NUMERIC_ENV_VARS},
    }
    if packages:
        env["packages"] = _packages()
    if git:
        env["git"] = git_state(code_path)
    return env
