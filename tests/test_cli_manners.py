"""What a new user meets at the command line: start-up without torch, pipes, printing, tables, diffs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _subprocess import child_env

import twinrun

pytestmark = pytest.mark.slow  # fresh interpreters


def _imports_torch(*argv: str) -> bool:
    code = (f"import sys\nfrom twinrun.cli import main\ntry:\n    main({list(argv)!r})\nexcept SystemExit:\n    pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=120,
                         check=False)
    line = [x for x in out.stdout.splitlines() if x.startswith("TORCH")]
    assert line, out.stderr
    return line[-1].endswith("True")


@pytest.mark.parametrize("argv", [["--help"], ["runs"], ["seeds", "--help"], ["check", "--help"],
                                  ["compare", "--help"], ["repro", "--help"], ["ledger", "--help"]])
def test_help_and_runs_start_without_torch(argv):
    assert not _imports_torch(*argv)


def test_a_training_command_does_import_torch():
    assert _imports_torch("check", "--list")  # the checks' options come from the library


def test_cli_choices_are_the_librarys():
    from twinrun.cli import _repro, _seeds
    from twinrun.proof import FACTORS
    from twinrun.stats import DEPLOY
    from twinrun.sweeps import BACKENDS

    assert _repro.FACTORS == FACTORS
    assert _seeds.BACKENDS == BACKENDS
    assert _seeds.DEPLOY == DEPLOY


def test_a_closed_pipe_ends_the_command_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "twinrun", "check", "--list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=child_env())
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the command writes (as `| head` after its lines)
    _, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err, err.decode()
    assert proc.returncode in (0, 141)




def test_printing_a_check_report_is_short():
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 4, generator=g), torch.randint(0, 2, (64,), generator=g)
    model = nn.Linear(4, 2)
    report = twinrun.checks.run_checks(model=model, train=(x, y), val=(x, y), loss=nn.CrossEntropyLoss(),
                                optimizer=torch.optim.SGD(model.parameters(), lr=0.1), registry=False,
                                only=["loss_at_init", "param_updates"], settings={"steps": 10})
    assert repr(report).startswith("CheckReport(2 checks: ") and len(repr(report)) < 80
    text = str(report)
    assert text.count("\n") == 2 and "loss_at_init" in text


def test_the_check_table_wraps_instead_of_cutting():
    from twinrun.cli._tables import format_wrapped_table

    long = "a measurement " * 10
    table = format_wrapped_table(["status", "measured"], [["pass", long.strip()]], [None, 30])
    assert "…" not in table
    assert " ".join(table.split()).count("measurement") == 10
    assert max(len(line) for line in table.splitlines()) <= 6 + 2 + 30


def test_diff_ignores_the_module_an_experiment_file_was_imported_under():
    from twinrun.registry._diff import _without_file_module

    a = "twinrun_experiment_0123456789ab:Net"
    b = "twinrun_experiment_ba9876543210:Net"
    assert _without_file_module(a) == _without_file_module(b) == "<experiment>:Net"
    assert _without_file_module("torch.optim.adam:Adam") == "torch.optim.adam:Adam"
    assert twinrun  # the package under test


def test_statistics_and_the_report_need_no_torch():
    code = ("import sys\nimport twinrun.stats, twinrun.report, twinrun.registry\n"
            "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=120,
                         check=False)
    assert out.stdout.strip().endswith("False"), out.stdout + out.stderr
