"""JSON-safe numbers: every result of this subpackage goes through :func:`json_safe`.

JSON has no NaN or infinity, and NumPy scalars are not JSON types; a result that
cannot be computed is ``None`` (with its reason stored next to it), never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, overload

import numpy as np

__all__ = ["json_safe", "num"]


def num(value: Any) -> float | None:
    """A finite Python float, or ``None`` for NaN, infinity and ``None``."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@overload
def json_safe(obj: Mapping[str, Any]) -> dict[str, Any]: ...
@overload
def json_safe(obj: Any) -> Any: ...
def json_safe(obj: Any) -> Any:
    """``obj`` with NumPy types made Python types and non-finite floats made ``None``.

    Dicts, lists, tuples and arrays are converted recursively; keys are kept.
    ``json.dumps(json_safe(x), allow_nan=False)`` never fails on numbers.
    """
    if isinstance(obj, Mapping):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return [json_safe(value) for value in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return num(obj)
    return obj
