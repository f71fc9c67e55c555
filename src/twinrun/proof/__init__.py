"""Reproducibility with proof: a run's recording (ledger, checkpoints, resume) and ``twinrun repro``.

The command's library function is also the top-level ``twinrun.repro``.
"""

from twinrun.proof._cost import measure_determinism_cost
from twinrun.proof._dump import DumpSink, max_abs_diff, tensor_differences
from twinrun.proof._factors import bitexact_factors
from twinrun.proof._recording import RunRecorder, run_request
from twinrun.proof._report import ReproReport, RunInfo
from twinrun.proof._repro import ReproFailed, repro
from twinrun.proof._times import TimesReport, repeat
from twinrun.proof._vary import FACTORS, Side, Variation, parse_vary

__all__ = [
    "FACTORS",
    "DumpSink",
    "ReproFailed",
    "ReproReport",
    "RunInfo",
    "RunRecorder",
    "Side",
    "TimesReport",
    "Variation",
    "bitexact_factors",
    "max_abs_diff",
    "measure_determinism_cost",
    "parse_vary",
    "repeat",
    "repro",
    "run_request",
    "tensor_differences",
]
