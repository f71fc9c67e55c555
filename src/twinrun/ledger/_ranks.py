"""The ledgers of a data-parallel run, one per rank, read and compared as one.

A run launched by ``torchrun`` keeps rank 0's ledger in its folder and every
other rank's in ``rank-R/`` inside it. Comparing two such runs compares rank R
with rank R, and the first divergence is the earliest record at which any rank
parted (by step, then by the order a step's records are written in, then the
lowest rank), named with its rank: a shard that reached
one rank in another order shows as that rank's batch, a rank whose gradients
were reduced differently as its weights.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from twinrun.errors import LedgerError
from twinrun.ledger._compare import LedgerComparison, compare_ledgers
from twinrun.ledger._ledger import LEDGER_FILE, Ledger, find_ledger

__all__ = ["compare_runs", "rank_ledgers"]

#: the order in which a step's records are written (``_sink``)
_WRITTEN = {"init": 0, "batch": 1, "loss": 2, "weights": 3, "rng": 4}


def rank_ledgers(path: str | Path) -> dict[int, Path]:
    """Each rank's ledger file of the run at ``path`` (a run folder, or one ledger file: rank 0 alone)."""
    folder = Path(path)
    found = {0: find_ledger(folder)}
    if folder.is_dir():
        for sub in folder.glob("rank-*"):
            suffix = sub.name.removeprefix("rank-")
            if suffix.isdigit() and (sub / LEDGER_FILE).is_file():
                found[int(suffix)] = sub / LEDGER_FILE
    return dict(sorted(found.items()))


def compare_runs(a: str | Path, b: str | Path) -> LedgerComparison:
    """Compare two runs rank by rank; a single-process run is one rank.

    Raises:
        LedgerError: the runs had different numbers of ranks, or different configurations.
    """
    ranks_a, ranks_b = rank_ledgers(a), rank_ledgers(b)
    if list(ranks_a) != list(ranks_b):
        raise LedgerError(
            f"run A has the ledgers of {len(ranks_a)} rank(s) and run B of {len(ranks_b)}: a run on another "
            "number of processes draws other shards, so its records cannot be compared",
            fix="compare runs launched with the same torchrun --nproc_per_node (or `twinrun ledger` on "
            "one rank's ledger file of each, e.g. RUN_DIR/ledger.jsonl)",
        )
    results = {rank: compare_ledgers(Ledger.load(ranks_a[rank]), Ledger.load(ranks_b[rank])) for rank in ranks_a}
    if len(results) == 1:
        return results[0]
    # the earliest record that parted: by step, then by where in a step it is written (a rank's batch comes
    # before the losses that every rank averages), then by rank
    parted = [
        (c.divergence.step, _WRITTEN.get(c.divergence.kind, len(_WRITTEN)), rank, c.divergence)
        for rank, c in results.items()
        if c.divergence is not None
    ]
    first = None
    if parted:
        *_, rank, divergence = min(parted, key=lambda p: p[:3])
        first = replace(divergence, rank=rank)
    return LedgerComparison(
        compared=sum(c.compared for c in results.values()),
        divergence=first,
        last_step_a=min(c.last_step_a for c in results.values()),
        last_step_b=min(c.last_step_b for c in results.values()),
        skipped=sum(c.skipped for c in results.values()),
        ranks=len(results),
    )
