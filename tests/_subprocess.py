"""Helpers for tests that start fresh Python processes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import twinrun

HERE = Path(__file__).parent
#: The folder holding the twinrun package under test (children must import this one, not another install).
SRC = str(Path(twinrun.__file__).resolve().parents[1])


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment with the tested twinrun first on PYTHONPATH, plus ``extra``."""
    env = {**os.environ}
    paths = [SRC, str(HERE / "experiments")]
    if env.get("PYTHONPATH"):
        paths += [str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
