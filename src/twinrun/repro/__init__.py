"""Reproducibility with proof: run recording (ledger, checkpoints, resume) and ``twinrun repro``."""

from twinrun.repro._dump import DumpSink, max_abs_diff, tensor_differences
from twinrun.repro._factors import bitexact_factors
from twinrun.repro._recording import RunRecorder, run_request
from twinrun.repro._report import ReproReport, RunInfo
from twinrun.repro._repro import ReproFailed, repro
from twinrun.repro._vary import FACTORS, Side, Variation, parse_vary

__all__ = [
    "FACTORS",
    "DumpSink",
    "ReproFailed",
    "ReproReport",
    "RunInfo",
    "RunRecorder",
    "Side",
    "Variation",
    "bitexact_factors",
    "max_abs_diff",
    "parse_vary",
    "repro",
    "run_request",
    "tensor_differences",
]
