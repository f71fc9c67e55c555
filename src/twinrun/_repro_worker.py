"""One side of ``twinrun repro``: a fresh process that runs the experiment as ``twinrun compare`` does.

It lives at the top level, next to ``_compare``, because it composes the compare verb with
``proof``'s tensor dump: ``proof`` launches it by name and imports neither.

Started as ``python -m twinrun._repro_worker REQUEST.json`` with the
environment the parent chose (``PYTHONHASHSEED``, thread variables). The
request names the experiment file, overrides, candidates, a thread count and
optionally the steps to dump tensors at. The worker writes into the request's
``out`` folder:

* ``home/runs/<id>/``: the run folder (``ledger.jsonl``, ``result.json`` ...);
* ``dump.pt``: the tensors of the dump steps, if any were asked for;
* ``outcome.json``: the ledger path, timings and factors; or
  ``error.json`` (exit status 2 for bad input, 1 for any other failure).

Under ``torchrun`` (``twinrun repro --nproc N``) every rank runs this: rank 0
writes the files above, rank R its own dump (``dump-rank-R.pt``) and error
(``error-rank-R.json``); its ledger is in the run folder's ``rank-R/``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from twinrun._atomic import write_json

__all__ = ["main"]


def _rank() -> int:
    """This process's rank under torchrun (0 outside it)."""
    raw = os.environ.get("RANK", "0")
    return int(raw) if raw.isdigit() else 0


def _own(name: str, rank: int) -> str:
    """``dump.pt`` for rank 0, ``dump-rank-R.pt`` for rank R."""
    stem, dot, ext = name.partition(".")
    return name if rank == 0 else f"{stem}-rank-{rank}{dot}{ext}"


def _run(request: dict[str, Any]) -> dict[str, Any]:
    import torch

    from twinrun._compare import compare
    from twinrun.proof import DumpSink

    out = Path(request["out"])
    if request.get("threads"):
        torch.set_num_threads(int(request["threads"]))
    sinks = []
    if request.get("dump_steps"):
        sinks.append(DumpSink(out / _own("dump.pt", _rank()), [int(s) for s in request["dump_steps"]]))
    result = compare(
        request["experiment"],
        candidates=request.get("candidates"),
        overrides=request.get("overrides") or {},
        sinks=sinks,
        home=out / "home",
        logdir=None,
        progress=False,
        seed_globals=True,
        registry=False,  # a repro run is a probe: the report is what counts
    )
    return {
        "ledger": result.artifacts.get("ledger"),
        "run_dir": result.artifacts.get("run_dir"),
        "steps": result.steps,
        "n_parameters": sum(c.n_parameters for c in result.candidates.values()),
        "timing": result.timing,
        "reproducibility": result.reproducibility,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    request = json.loads(Path(args[0]).read_text())
    out = Path(request["out"])
    out.mkdir(parents=True, exist_ok=True)
    rank = _rank()
    try:
        outcome = _run(request)
    except Exception as exc:  # noqa: BLE001 - every failure is reported to the parent
        from twinrun.errors import TwinrunError

        bad_input = isinstance(exc, TwinrunError)
        write_json(
            out / _own("error.json", rank),
            {
                "type": type(exc).__name__,
                "message": exc.message if isinstance(exc, TwinrunError) else f"{type(exc).__name__}: {exc}",
                "fix": exc.fix if isinstance(exc, TwinrunError) else None,
                "bad_input": bad_input,
                "traceback": traceback.format_exc(),
            },
        )
        return 2 if bad_input else 1
    if rank == 0:
        write_json(out / "outcome.json", outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
