"""Differences between two captured environments, and whether each can change the numbers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["NUMERIC_PACKAGES", "EnvDifference", "diff_environments", "numerics_fingerprint"]

#: Packages whose version can change the numbers of a PyTorch training run.
NUMERIC_PACKAGES = frozenset(
    {
        "torch",
        "numpy",
        "scipy",
        "scikit-learn",
        "torchvision",
        "torchaudio",
        "triton",
        "intel-openmp",
        "mkl",
        "llvmlite",
        "numba",
        "jax",
        "jaxlib",
        "pillow",
        "opencv-python",
        "albumentations",
        "timm",
        "transformers",
        "accelerate",
        "twinrun",
    }
)

_BENIGN_PATHS = ("os.hostname", "python.executable", "os.version", "git.untracked_files")
_NUMERIC_PREFIXES = (
    "python.version",
    "python.implementation",
    "os.system",
    "os.release",
    "os.machine",
    "os.libc",
    "devices.",
    "torch.",
    "env_vars.",
    "git.commit",
    "git.dirty",
    "git.diff",
    "git.modified_files",
)
_REASONS = {
    "python.": "Python version",
    "os.": "operating system",
    "devices.": "hardware",
    "torch.num": "thread count",
    "torch.deterministic": "deterministic mode",
    "torch.cudnn": "cuDNN settings",
    "torch.matmul": "TF32 matmul",
    "torch.float32": "matmul precision",
    "torch.": "torch build",
    "env_vars.PYTHONHASHSEED": "hash seed (set iteration order)",
    "env_vars.": "environment variable",
    "git.": "code",
    "packages.": "library version",
}


@dataclass(frozen=True)
class EnvDifference:
    """One differing fact: its dotted key, both values, and whether it can change numbers."""

    key: str
    a: Any
    b: Any
    numerics: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        a, b = self.a, self.b
        if self.key == "git.diff":
            a, b = _digest(a), _digest(b)
        return {"key": self.key, "a": a, "b": b, "numerics": self.numerics, "reason": self.reason}


def _digest(text: Any) -> str | None:
    if not text:
        return None
    return f"{len(str(text).splitlines())} lines, sha256 {hashlib.sha256(str(text).encode()).hexdigest()[:12]}"


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and key not in ("gpus",):
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def _classify(key: str) -> tuple[bool, str]:
    reason = next((r for p, r in _REASONS.items() if key.startswith(p)), "other")
    if key in _BENIGN_PATHS:
        return False, reason
    if key.startswith("packages."):
        return key.removeprefix("packages.") in NUMERIC_PACKAGES, reason
    return key.startswith(_NUMERIC_PREFIXES), reason


def diff_environments(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[EnvDifference]:
    """Every fact that differs between ``a`` and ``b``, numerics-relevant ones first."""
    flat_a, flat_b = dict(_flatten(a)), dict(_flatten(b))
    diffs = []
    for key in sorted(set(flat_a) | set(flat_b)):
        va, vb = flat_a.get(key), flat_b.get(key)
        if va != vb:
            numerics, reason = _classify(key)
            diffs.append(EnvDifference(key, va, vb, numerics, reason))
    return sorted(diffs, key=lambda d: (not d.numerics, d.key))


def numerics_fingerprint(env: Mapping[str, Any]) -> str:
    """A hash of every numerics-relevant fact: equal fingerprints, comparable environments."""
    relevant = {k: v for k, v in _flatten(env) if _classify(k)[0]}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]
