"""Reproducibility with proof: run recording (ledger, checkpoints, resume) and ``twinrun repro``."""

from twinrun.repro._factors import bitexact_factors
from twinrun.repro._recording import RunRecorder, run_request

__all__ = ["RunRecorder", "bitexact_factors", "run_request"]
