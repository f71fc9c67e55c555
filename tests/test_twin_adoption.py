"""Adopting `Twin` in a plain two-model loop: the diff is counted, and what it buys is checked for real."""

from __future__ import annotations

import difflib
import textwrap

import torch
from torch import nn

import twinrun
from twinrun.checkpoint import list_checkpoints
from twinrun.ledger import Ledger
from twinrun.registry import open_registry

BEFORE = textwrap.dedent("""
    model_a, model_b = make(16), make(32)
    opt_a = torch.optim.SGD(model_a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(model_b.parameters(), lr=0.1)
    for epoch in range(2):
        for x, y in loader:
            for model, opt in ((model_a, opt_a), (model_b, opt_b)):
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
""")

AFTER = textwrap.dedent("""
    model_a, model_b = make(16), make(32)
    opt_a = torch.optim.SGD(model_a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(model_b.parameters(), lr=0.1)
    twin = twinrun.Twin({"a": (model_a, opt_a), "b": (model_b, opt_b)}, sinks=twin_sinks(out))
    for epoch in range(2):
        for x, y in loader:
            twin.step(x, y, loss_fn)
    verdict = twin.verdict(val, loss_fn)
    twin.close()
""")


def twin_sinks(out):
    """What a user adds once: the registry, the ledger, checkpoints, TensorBoard."""
    return [twinrun.registry.RegistrySink(out / "registry.sqlite", name="ab"),
            twinrun.ledger.LedgerSink(out / "ledger.jsonl"),
            twinrun.checkpoint.CheckpointSink(out / "checkpoints", every=4),
            twinrun.TensorBoardSink(out / "tb")]


def _namespace(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 6, generator=g)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)

    def make(width):
        return nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Linear(width, 2))

    return {"torch": torch, "twinrun": twinrun, "make": make, "loss_fn": nn.functional.cross_entropy,
            "loader": [(x[i:i + 32], y[i:i + 32]) for i in range(0, 128, 32)], "val": [(x, y)],
            "twin_sinks": twin_sinks, "out": tmp_path}


def test_adopting_twin_changes_at_most_five_lines_and_buys_the_verdict_ledger_checkpoints_and_registry(tmp_path):
    diff = [line for line in difflib.ndiff(BEFORE.splitlines(), AFTER.splitlines()) if line[:1] in "+-"]
    added = [line for line in diff if line.startswith("+")]
    assert len(added) <= 5, added
    exec(compile(BEFORE, "before", "exec"), _namespace(tmp_path / "before"))  # the plain loop runs as written
    ns = _namespace(tmp_path)
    exec(compile(AFTER, "after", "exec"), ns)
    d = ns["verdict"]["b"].val["loss"]
    assert d.n == 128 and d.low <= d.mean <= d.high
    with open_registry(tmp_path / "registry.sqlite") as reg:
        runs = reg.list_runs(name="ab")
        run = reg.get_run(runs[0].id)
        assert len(runs) == 1 and sorted(run.candidates) == ["a", "b"] and run.status == "finished", run.status
    ledger = Ledger.load(tmp_path / "ledger.jsonl")
    assert {r.kind for r in ledger.records} >= {"init", "batch", "loss"}
    assert [s for s, _ in list_checkpoints(tmp_path / "checkpoints")] == [4, 8]
    assert ns["twin"].models["a"] is ns["model_a"]  # the same objects, handed back


def test_the_loops_result_is_recorded_so_show_and_report_read_it_as_a_compare_run(tmp_path):
    import subprocess
    import sys

    from _subprocess import child_env

    ns = _namespace(tmp_path)
    exec(compile(AFTER, "after", "exec"), ns)  # noqa: S102 - the adoption snippet, run as written
    with open_registry(tmp_path / "registry.sqlite") as reg:
        run = reg.get_run(reg.list_runs(name="ab")[0].id)
        result = run.result
        assert result["comparisons"]["b"]["val"]["loss"]["n"] == 128  # the paired verdict, as compare records it
        assert result["steps"] == 8 and set(result["candidates"]) == {"a", "b"}
    shown = subprocess.run([sys.executable, "-m", "twinrun", "show", run.id[:8], "--registry",
                            str(tmp_path / "registry.sqlite")], env=child_env(), capture_output=True, text=True,
                           timeout=120, check=False)
    assert shown.returncode == 0, shown.stderr
    line = next(li for li in shown.stdout.splitlines() if li.startswith("b "))
    assert "[" in line  # the Δ loss interval
