"""Autograd's advice on gradient layouts is not shown by a vectorised group, and no step pays for a filter.

The advice comes at most once per process (``TORCH_WARN_ONCE``), so each case runs in a fresh interpreter.
The control case marks the advice used up without provoking it: it then shows, so the test can fail.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from _subprocess import child_env

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")

CHILD = textwrap.dedent(
    """
    import sys, warnings
    import torch
    from torch import nn
    import twinrun
    from twinrun.engine import TwinEngine
    from twinrun.engine import _layout_advice
    from twinrun.examples.digits import load_digits_split
    from twinrun.spec import resolve

    torch.set_num_threads(1)
    if sys.argv[1] == "unprovoked":
        _layout_advice._given.append(True)
    data = load_digits_split()
    exp = twinrun.Experiment(
        name="advice", data=lambda: data,
        model=lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)),
        optimizer=twinrun.factory(torch.optim.Adam, lr=1e-3), loss=nn.CrossEntropyLoss,
        candidates={f"c{k}": {"optimizer.lr": 1e-3 * (k + 1)} for k in range(4)},
        steps=4, batch_size=32, eval_every=4, ledger_every=None, baselines=False, executor="vectorised",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TwinEngine(resolve(exp), measure_memory=False).run()
    advised = sum("gradient layout contract" in str(w.message) for w in caught)
    print(advised, bool(_layout_advice._given))  # used up only if a batched group ran: the run was vectorised
    """
)


def _run(mode: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode], check=False, env=child_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_a_vectorised_run_shows_no_layout_advice() -> None:
    advised, used_up = _run("provoked")
    assert advised == "0"
    assert used_up == "True"


def test_without_provoking_it_first_the_advice_shows() -> None:
    advised, *_ = _run("unprovoked")
    assert advised == "1"
