"""Check ``hash_seed``: does the data or the model depend on ``PYTHONHASHSEED``?

Python randomises the hash of strings per process, so iterating a ``set`` of
strings (a vocabulary built from ``set(text.split())``), or a dict keyed by
hashes, gives another order in another process: token ids change, and so do
the data and every result. ``twinrun compare`` pins the hash seed, which hides
the dependence from twinrun's own runs; a user's script, a notebook or another
tool does not pin it. The check builds the experiment's data and the
candidate's initial model in a fresh process with another hash seed than this
process's (started with the suite, so it builds while the other checks run)
and compares fingerprints of the training and validation inputs and targets
and of each initial parameter, naming what differs.

It needs the experiment file (``twinrun check FILE``, ``twinrun.check(path)``);
pieces handed to ``run_checks`` cannot be rebuilt in another process.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twinrun.checks._context import CheckContext
from twinrun.checks._registry import Check, Option
from twinrun.checks._result import CheckResult

__all__ = ["CHECK"]

NAME = "hash_seed"


def _launch(path: str, candidate: str, overrides: Mapping[str, Any], hashseed: int) -> subprocess.Popen[str]:
    from twinrun._launch import child_environment, launch

    return launch(
        "twinrun.checks._hash_worker",
        [path, candidate, json.dumps(dict(overrides))],
        env=child_environment(hashseed=str(hashseed)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(Path(path).resolve().parent),
    )


def other_hash_seed() -> int:
    """A hash seed other than this process's: its own plus one where it is pinned, else 1 (a random hash
    seed of this process is 1 with probability 2**-32)."""
    own = os.environ.get("PYTHONHASHSEED", "")
    return (int(own) + 1) % 4_294_967_296 if own.isdigit() else 1


def start_child(ctx: CheckContext) -> subprocess.Popen[str] | None:
    """Launch the child process (once per context): it builds while the other checks run."""
    source = ctx.engine.resolved.source
    if source is None or not Path(source.path).is_file():
        return None
    try:
        json.dumps(dict(ctx.overrides))
    except (TypeError, ValueError):
        return None
    return _launch(source.path, ctx.candidate, ctx.overrides, other_hash_seed())


def _start(ctx: CheckContext, opts: Mapping[str, Any]) -> None:
    ctx.cached((NAME, "child"), lambda: start_child(ctx))


def check_hash_seed(ctx: CheckContext, opts: Mapping[str, Any]) -> CheckResult:
    from twinrun.checks._hash_worker import fingerprints_of

    source = ctx.engine.resolved.source
    if source is None or not Path(source.path).is_file():
        return CheckResult(
            NAME,
            "skip",
            "no experiment file",
            "-",
            "The data and the model were handed over as objects, so they cannot be rebuilt in another process "
            "under another PYTHONHASHSEED.",
            "run the checks on an experiment file (twinrun check FILE) to test the hash-seed dependence",
        )
    child = ctx.cached((NAME, "child"), lambda: start_child(ctx))
    if child is None:
        return CheckResult(
            NAME,
            "skip",
            "the overrides cannot be handed to another process",
            "-",
            "The --set overrides are not JSON values, so a fresh process cannot rebuild the run.",
            "",
        )
    own = os.environ.get("PYTHONHASHSEED") or "random"
    other = other_hash_seed()
    try:
        out, err = child.communicate(timeout=opts["timeout"])
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return CheckResult(
            NAME,
            "skip",
            f"no answer within {opts['timeout']} s",
            "-",
            "Building the experiment in a fresh process took longer than the check allows.",
            f"raise --check-option {NAME}.timeout",
        )
    if child.returncode != 0:
        last = (err.strip().splitlines() or ["(no output)"])[-1]
        return CheckResult(
            NAME,
            "skip",
            f"the experiment failed to build under PYTHONHASHSEED={other}",
            "-",
            f"A fresh process could not build the experiment: {last}",
            "",
        )
    b = json.loads(out.strip().splitlines()[-1])
    a = fingerprints_of(ctx.data, ctx.state.model)
    differ = [k for k in a if a.get(k) != b.get(k)] + [k for k in b if k not in a]
    details = {"hash_seeds": [own, other], "compared": len(a), "differ": differ}
    measured = (
        f"{len(differ)} of {len(a)} fingerprints differ: {', '.join(differ[:4])}"
        if differ
        else f"{len(a)} fingerprints identical"
    )
    expected = "identical data and initial weights under any PYTHONHASHSEED"
    explanation = (
        f"The experiment built in this process (PYTHONHASHSEED={own}) was compared with the same "
        f"experiment built in a fresh process with PYTHONHASHSEED={other}: fingerprints of the training "
        "and validation inputs and targets and of each of the candidate's initial parameters and "
        "buffers."
    )
    if not differ:
        return CheckResult(
            NAME,
            "pass",
            measured,
            expected,
            explanation + " Nothing depends on Python's string hashing.",
            details=details,
        )
    data = [k for k in differ if not k.startswith("initial ")]
    where = ("the data (" + ", ".join(data) + ")") if data else "the initial model (" + ", ".join(differ[:3]) + ")"
    return CheckResult(
        NAME,
        "fail",
        measured,
        expected,
        explanation
        + (
            f" {where[0].upper() + where[1:]} changes with the hash seed: something iterates a set or dict of "
            "strings whose order Python randomises per process. A vocabulary or label map built from set(...) "
            "is the usual cause: each process numbers the tokens differently, so a script or notebook that does "
            "not pin PYTHONHASHSEED trains on other data than twinrun does."
        ),
        "sort before numbering: vocab = sorted(set(tokens)) (and sorted(dict) where order matters); or pin "
        "PYTHONHASHSEED in every process that builds the data",
        details=details,
    )


CHECK = Check(
    name=NAME,
    title="the data and initial weights do not depend on PYTHONHASHSEED",
    fn=check_hash_seed,
    start=_start,
    options={
        "timeout": Option(300.0, "seconds each process may take to build the experiment"),
    },
)
