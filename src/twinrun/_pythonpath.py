"""Child processes import this very twinrun: the folder holding the package first on ``PYTHONPATH``.

Used by ``_launch``, which starts every twinrun child (``twinrun repro``'s runs, the seeds of a
sweep, the ``hash_seed`` check). An installed twinrun is left as it is: the child's
interpreter finds it where this one did, and no ``PYTHONPATH`` entry shadows it, or this
process would have imported that one instead.
"""

from __future__ import annotations

import os
import site
from collections.abc import Mapping
from pathlib import Path

__all__ = ["PACKAGE_ROOT", "this_twinrun_first"]

#: The folder that holds the ``twinrun`` package being run.
PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


def this_twinrun_first(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` whose ``PYTHONPATH`` starts with :data:`PACKAGE_ROOT` (a source checkout)."""
    out = dict(env)
    installed = {str(Path(p).resolve()) for p in [*site.getsitepackages(), site.getusersitepackages()]}
    if PACKAGE_ROOT in installed:
        return out
    path = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p and p != PACKAGE_ROOT]
    out["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT, *path])
    return out
