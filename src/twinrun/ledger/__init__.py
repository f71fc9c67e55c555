"""The ledger: control sums of initial weights, batches, losses, weights and RNG states of a run."""

from twinrun.ledger._compare import Divergence, LedgerComparison, compare_ledgers, first_divergence
from twinrun.ledger._hash import float_hash, int_hash, tensor_hash, tree_hash
from twinrun.ledger._ledger import (
    KINDS,
    LEDGER_FILE,
    Ledger,
    Record,
    find_ledger,
    ledger_config_hash,
)
from twinrun.ledger._ranks import compare_runs, rank_ledgers
from twinrun.ledger._sink import DEFAULT_EVERY, LedgerSink

__all__ = [
    "DEFAULT_EVERY",
    "KINDS",
    "LEDGER_FILE",
    "Divergence",
    "Ledger",
    "LedgerComparison",
    "LedgerSink",
    "Record",
    "compare_ledgers",
    "compare_runs",
    "find_ledger",
    "first_divergence",
    "float_hash",
    "int_hash",
    "ledger_config_hash",
    "rank_ledgers",
    "tensor_hash",
    "tree_hash",
]
