"""Control sums, the ledger file, and the first divergence between two runs (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import twinrun
from twinrun.engine import StepDone, TwinEngine
from twinrun.errors import LedgerError
from twinrun.ledger import (
    Ledger,
    LedgerSink,
    compare_ledgers,
    first_divergence,
    float_hash,
    tensor_hash,
)
from twinrun.rng import capture_global_rng, restore_global_rng
from twinrun.spec import resolve


def test_tensor_hash_is_exact_contents_dtype_and_shape():
    x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    assert tensor_hash(x) == tensor_hash(x.clone())
    assert tensor_hash(x.t().contiguous()) == tensor_hash(x.t())  # layout does not matter, values do
    assert tensor_hash(x) != tensor_hash(x.reshape(4, 3))  # shape does
    assert tensor_hash(x) != tensor_hash(x.double())  # dtype does
    y = x.clone()
    y[1, 2] = torch.nextafter(y[1, 2], torch.tensor(100.0))  # one ulp
    assert tensor_hash(x) != tensor_hash(y)
    assert tensor_hash(torch.tensor(0.0)) != tensor_hash(torch.tensor(-0.0))
    b = torch.randn(5, generator=torch.Generator().manual_seed(0)).bfloat16()  # no NumPy dtype
    assert tensor_hash(b) == tensor_hash(b.clone()) and tensor_hash(b) != tensor_hash(b.float())
    assert tensor_hash(torch.zeros(0, 3)) != tensor_hash(torch.zeros(3, 0))
    assert float_hash(0.1 + 0.2) != float_hash(0.3)


def _run(experiment, overrides=None, sinks=()):
    state = capture_global_rng()
    try:
        sink = LedgerSink()
        engine = TwinEngine(resolve(experiment, overrides), sinks=[sink, *sinks])
        engine.run()
    finally:
        restore_global_rng(state)  # every run starts from the same global state
    return sink.ledger, engine


def test_same_seed_identical_ledgers_different_seed_diverges_at_init(toy):
    exp = toy.replace(candidates={"d": {"model.dropout": 0.5}, "w": {"model.width": 32}})
    a, _ = _run(exp)
    b, _ = _run(exp)
    comparison = compare_ledgers(a, b)
    assert comparison.identical and comparison.compared == len(a)
    c, _ = _run(exp, {"seed": 4})
    d = first_divergence(a, c)
    assert (d.step, d.candidate, d.kind, d.name) == (0, "d", "init", "fc1.weight")


def test_what_the_ledger_records(toy):
    exp = toy.replace(candidates={"d": {"model.dropout": 0.5}}, steps=12, ledger_every=5)
    ledger, engine = _run(exp)
    kinds = {(r.step, r.kind) for r in ledger}
    assert {(0, "init"), (0, "rng")} <= kinds
    assert all((s, "batch") in kinds and (s, "loss") in kinds for s in range(1, 13))
    assert {s for s, k in kinds if k == "weights"} == {5, 10, 12}  # the cadence and the last step
    final = {r.name: r.hash for r in ledger if r.step == 12 and r.kind == "weights"}
    assert final == {k: tensor_hash(v) for k, v in engine.states["d"].model.state_dict().items()}
    losses = [r.value for r in ledger if r.kind == "loss"]
    assert losses == engine.history.train_loss["d"].tolist()
    seeds = {r.name: r.value for r in ledger.at(5) if r.kind == "rng"}
    assert seeds["augment"] == engine.streams.seed_for("augment", 5)
    assert seeds["dropout"] == engine.streams.seed_for("dropout", 5)


def test_first_divergence_is_the_first_step_affected(toy):
    """A sink that nudges one weight after step 7 (after the ledger recorded it): the next loss parts."""
    exp = toy.replace(candidates={"a": {}, "b": {"model.width": 32}}, steps=16)
    clean, _ = _run(exp)

    class Nudge(twinrun.Sink):
        def on_step_done(self, event: StepDone) -> None:
            if event.step == 7:
                with torch.no_grad():
                    event.models["b"].fc2.bias[0] += 1e-6

    nudged, _ = _run(exp, sinks=[Nudge()])
    d = first_divergence(clean, nudged)
    assert (d.step, d.candidate, d.kind, d.name) == (8, "b", "loss", "loss")
    assert d.a.value != d.b.value
    assert ("b", "weights", "fc2.bias") not in d.others  # weights only at the cadence (20) and the end
    later = [r for r in compare_ledgers(clean, nudged).divergence.others]
    assert all(c == "b" for c, _, _ in later)  # candidate "a" is untouched: twins are independent


def test_stray_global_draws_show_in_the_rng_records_only(toy):
    exp = toy.replace(candidates={"d": {"model.dropout": 0.5}}, steps=12, ledger_every=5)
    a, _ = _run(exp)

    class Stray(twinrun.Sink):
        def on_step_done(self, event: StepDone) -> None:
            if event.step == 3:
                torch.rand(2)

    b, _ = _run(exp, sinks=[Stray()])
    d = first_divergence(a, b)
    assert (d.step, d.kind, d.name) == (5, "rng", "global")  # training records all agree


def test_ledger_file_round_trip_and_bad_files(tmp_path, toy):
    ledger, _ = _run(toy.replace(candidates={"a": {}}, steps=5))
    path = ledger.save(tmp_path / "run" / "ledger.jsonl")
    again = Ledger.load(tmp_path / "run")  # a run folder works too
    assert again.records == ledger.records and again.header == ledger.header
    lines = path.read_text().splitlines()
    (tmp_path / "cut.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:7])
    with pytest.raises(LedgerError, match=f"line {len(lines)}.*truncated"):
        Ledger.load(tmp_path / "cut.jsonl")
    (tmp_path / "other.jsonl").write_text('{"hello": 1}\n')
    with pytest.raises(LedgerError, match="not a twinrun ledger"):
        Ledger.load(tmp_path / "other.jsonl")
    with pytest.raises(LedgerError, match="no ledger") as info:
        Ledger.load(tmp_path / "nowhere")
    assert "run folder" in info.value.fix


def test_ledgers_of_different_configs_are_refused(toy):
    a, _ = _run(toy.replace(candidates={"a": {}}, steps=4))
    b, _ = _run(toy.replace(candidates={"a": {}}, steps=4), {"optimizer.lr": 0.2})
    with pytest.raises(LedgerError, match="different configurations") as info:
        first_divergence(a, b)
    assert "--set" in info.value.fix
    # cadence, deterministic mode and seed do not make another configuration
    c, _ = _run(toy.replace(candidates={"a": {}}, steps=4), {"ledger_every": 2, "deterministic": True})
    comparison = compare_ledgers(a, c)
    assert comparison.divergence is None and comparison.skipped > 0


def test_compare_writes_the_ledger_into_the_run_folder(toy):
    result = twinrun.compare(toy.replace(candidates={"a": {}}, steps=6), logdir=None, progress=False)
    ledger = Ledger.load(result.artifacts["ledger"])
    assert ledger.header["run_id"] == result.run_id and ledger.last_step == 6
    factors = result.reproducibility["factors"]
    assert factors["threads"] == torch.get_num_threads() and factors["torch"] == torch.__version__
    assert json.loads(json.dumps(result.to_dict()))["reproducibility"]["ledger_records"] == len(ledger)
    off = twinrun.compare(toy.replace(candidates={"a": {}}, steps=2), overrides={"ledger_every": None},
                          logdir=None, progress=False)
    assert "ledger" not in off.artifacts


def test_twin_in_your_own_loop_records_a_ledger():
    from toy import MLP, blobs

    (x, y), _ = blobs()

    def run(lr_b: float, nudge_at: int | None = None) -> Ledger:
        torch.manual_seed(0)
        a, b = MLP(16, dropout=0.5), MLP(16)
        sink = LedgerSink(every=4)
        twin = twinrun.Twin({"a": (a, torch.optim.SGD(a.parameters(), lr=0.1)),
                             "b": (b, torch.optim.SGD(b.parameters(), lr=lr_b))}, seed=0, sinks=[sink])
        for step, i in enumerate(range(0, 128, 16), start=1):
            xb = x[i:i + 16] + (1e-3 if step == nudge_at else 0.0)
            twin.step(xb, y[i:i + 16], torch.nn.CrossEntropyLoss())
        twin.close()
        return sink.ledger

    assert compare_ledgers(run(0.2), run(0.2)).identical
    d = first_divergence(run(0.2), run(0.2, nudge_at=3))
    assert (d.step, d.candidate, d.kind) == (3, "a", "batch")  # the batch of step 3, named before its loss
    with pytest.raises(twinrun.errors.LedgerError, match="different configurations"):
        compare_ledgers(run(0.2), run(0.3))  # the registry entry says what each candidate is: lr differs


def test_ledger_command_reads_and_compares(toy, capsys, monkeypatch):
    from twinrun.cli import main

    monkeypatch.setenv("PYTHONHASHSEED", "0")  # recorded among the factors

    exp = toy.replace(candidates={"a": {}}, steps=3)
    runs = [twinrun.compare(exp, logdir=None, progress=False).artifacts["run_dir"] for _ in range(2)]
    assert main(["ledger", runs[0]]) == 0
    out = capsys.readouterr().out
    assert "toy" in out and "3 recorded of 3" in out and "PYTHONHASHSEED" in out
    assert main(["ledger", runs[0], "--step", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r[1], r[2], r[3]) for r in rows] == [("a", "batch", "inputs"), ("a", "batch", "targets"),
                                                  ("a", "loss", "loss")]
    assert main(["ledger", *runs]) == 0 and "bit-identical" in capsys.readouterr().out
    other = twinrun.compare(exp, overrides={"seed": 9}, logdir=None, progress=False).artifacts["run_dir"]
    assert main(["ledger", runs[0], other]) == 1
    assert "first divergence: step 0 · candidate a · initial weights" in capsys.readouterr().out
    assert main(["ledger", str(Path(runs[0]) / "nothing")]) == 2
    assert "no ledger" in capsys.readouterr().err
    # runs named as everywhere else: an id prefix, latest, latest~N
    assert main(["ledger", Path(runs[0]).name[:6], "latest~1"]) == 0 and "bit-identical" in capsys.readouterr().out
    assert main(["ledger", "latest~2", "latest"]) == 1
    capsys.readouterr()
    assert main(["ledger", "ffffffff"]) == 2 and "no ledger for 'ffffffff'" in capsys.readouterr().err
