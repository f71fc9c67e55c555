"""The training recipe as checks: measure, explain, say how to fix.

Neural-net training fails silently: a misconfigured net trains and works a bit
worse. Each check here runs one step of the recipe careful practitioners follow
by hand (verify the loss at init, overfit one batch, chart dependencies with
backprop, look at exactly what enters the net, ...) and returns a
:class:`CheckResult`: pass / warn / fail / skip, the measured value, what was
expected, a one-paragraph explanation and the fix.

    report = twinrun.check("experiment.py", candidate="cnn")       # a file
    report = twinrun.checks.run_checks(model=net, train=..., val=..., loss=..., optimizer=opt)
    report.failed, report["overfit_batch"].measured, report.to_dict()

Checks work on copies: the caller's model, optimizer and global random state
are left exactly as found.
"""

from twinrun.checks._api import check, merge_options, run_checks
from twinrun.checks._context import LOSS_KINDS, CheckContext, loss_kind
from twinrun.checks._registry import (
    Check,
    Option,
    check_names,
    get_check,
    parse_check_options,
    select_checks,
    validate_options,
)
from twinrun.checks._result import STATUSES, CheckReport, CheckResult, Status, json_safe
from twinrun.checks._runner import run_suite

__all__ = [
    "LOSS_KINDS",
    "STATUSES",
    "Check",
    "CheckContext",
    "CheckReport",
    "CheckResult",
    "Option",
    "Status",
    "check",
    "check_names",
    "get_check",
    "json_safe",
    "loss_kind",
    "merge_options",
    "parse_check_options",
    "run_checks",
    "run_suite",
    "select_checks",
    "validate_options",
]
