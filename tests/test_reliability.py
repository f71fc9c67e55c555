"""In-process fixes of the fault campaign: a broken candidate, hostile names, a Twin loop that
raises, deliberate initial weights, memory after a resume, unsafe checkpoints, a damaged registry."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import twinrun
from twinrun.cli import main as cli_main
from twinrun.engine import Sink, StepDone
from twinrun.errors import BuildError, CheckpointError, ConfigError
from twinrun.registry import Registry

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")


def _compare(exp, **kw):
    return twinrun.compare(exp, logdir=None, progress=False, **kw)


# ------------------------------------------------------------------ 4: one broken candidate
class FailsAt(nn.Module):
    """An MLP whose forward raises from its 3rd training call on (a bug that shows only later)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, width), nn.Linear(width, 3)
        self.calls = 0

    def forward(self, x):
        if self.training and torch.is_grad_enabled():
            self.calls += 1
            if self.calls >= 3:
                x = x[:, :5]  # the shape bug
        return self.fc2(torch.relu(self.fc1(x)))


def test_a_candidate_that_raises_is_failed_by_name_and_the_others_finish(toy, tmp_path):
    exp = toy.replace(candidates={"small": {}, "broken": {"model": twinrun.factory(FailsAt)}}, steps=8)
    result = _compare(exp)
    broken, small = result.candidates["broken"], result.candidates["small"]
    assert broken.status == "failed" and broken.diverged_at == 3
    assert "candidate 'broken' failed on a batch of inputs (16, 8) and targets (16,)" in broken.error
    assert "mat1 and mat2" in broken.error  # torch's own one line, no traceback
    assert small.status == "finished" and result.steps == 8 and math.isfinite(small.final["loss"])
    with Registry.open() as reg:
        run = reg.get_run(result.run_id)
        assert run.status == "finished" and run.candidates["broken"].status == "failed"
    from twinrun.cli._tables import format_verdict
    assert "failed: candidate 'broken' failed" in format_verdict(result)


def test_when_every_candidate_fails_the_run_fails_with_the_error_naming_them(toy):
    exp = toy.replace(candidates={"a": {"model": twinrun.factory(FailsAt)},
                                  "b": {"model": twinrun.factory(FailsAt, width=8)}}, steps=8)
    with pytest.raises(RuntimeError, match="mat1 and mat2") as info:  # the user's own error
        _compare(exp)
    assert any("candidate 'a' failed" in n for n in info.value.__notes__)
    assert any("candidate 'b' failed" in n for n in info.value.__notes__)


def test_an_output_layer_too_small_for_the_labels_is_refused_before_training(toy):
    exp = toy.replace(candidates={"small": {}, "narrow": {"model.classes": 2}})
    with pytest.raises(BuildError) as info:
        _compare(exp)
    assert "candidate 'narrow': its outputs have 2 classes" in info.value.message
    assert "targets go up to 2" in info.value.message and "3 outputs" in info.value.fix


# ------------------------------------------------------------------ 7: names never escape
@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden", "", "x" * 201])
def test_hostile_names_are_refused_wherever_a_name_becomes_a_path(name, toy, tmp_path):
    model = nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="not a valid name"):
        twinrun.Twin({name: (model, torch.optim.SGD(model.parameters(), lr=0.1))})
    with pytest.raises(ConfigError, match="not a valid name"):
        toy.replace(candidates={name: {}})
    with pytest.raises(ConfigError, match="not a valid name"):
        toy.replace(name=name)
    sink = twinrun.TensorBoardSink(tmp_path / "tb")
    with pytest.raises(ConfigError, match="not a valid name"):
        sink._writer(name)
    with pytest.raises(ConfigError, match="not a valid name"):
        _compare(toy, run_id=name)
    assert not any(p.name == "x" for p in tmp_path.parent.rglob("x"))


# ------------------------------------------------------------------ 8: Twin loop that raises
def test_a_twin_loop_that_raises_is_recorded_as_failed(tmp_path):
    models = {n: nn.Linear(4, 2) for n in ("a", "b")}
    parts = {n: (m, torch.optim.SGD(m.parameters(), lr=0.1)) for n, m in models.items()}
    with Registry.open(tmp_path / "r.sqlite") as reg:
        with pytest.raises(ValueError, match="user bug"):
            with twinrun.Twin(parts, sinks=[twinrun.registry.RegistrySink(reg)]) as twin:
                twin.step(torch.randn(8, 4), torch.randint(0, 2, (8,)), nn.functional.cross_entropy)
                raise ValueError("user bug")
        run = reg.get_run(twin.run_id)
        assert run.status == "failed" and "ValueError: user bug (after step 1)" in run.error
        with twinrun.Twin(parts, sinks=[twinrun.registry.RegistrySink(reg)]) as ok:  # and a clean loop finishes
            ok.step(torch.randn(8, 4), torch.randint(0, 2, (8,)), nn.functional.cross_entropy)
        assert reg.get_run(ok.run_id).status == "finished"


# ------------------------------------------------------------------ 9: deliberate inits are kept
class Block(nn.Module):
    def __init__(self, scaled: bool = False, bias_prior: bool = False) -> None:
        super().__init__()
        self.embed = nn.Linear(16, 64)
        self.proj = nn.Linear(64, 64)
        self.head = nn.Linear(64, 3)
        if scaled:  # a GPT-style depth-scaled projection init
            nn.init.normal_(self.proj.weight, std=0.02 / math.sqrt(2 * 4))
            nn.init.normal_(self.embed.weight, std=0.02 / math.sqrt(2 * 4))
        if bias_prior:
            nn.init.constant_(self.head.bias, -1.1)

    def forward(self, x):
        return self.head(torch.relu(self.proj(torch.relu(self.embed(x)))))


def test_sharing_keeps_a_deliberate_init_and_says_why():
    torch.manual_seed(0)
    ref, scaled, prior, loaded = Block(), Block(scaled=True), Block(bias_prior=True), Block()
    loaded.load_state_dict({k: v * 3 + 0.5 for k, v in Block().state_dict().items()})  # "pretrained"
    own = {n: p.detach().clone() for n, p in scaled.named_parameters()}
    twin = twinrun.Twin({n: (m, torch.optim.SGD(m.parameters(), lr=0.1))
                         for n, m in {"ref": ref, "scaled": scaled, "prior": prior, "loaded": loaded}.items()})
    report = twin.init.not_shared
    assert set(report["scaled"]) == {"embed.weight", "proj.weight"}
    assert "std 0.007" in report["scaled"]["proj.weight"] and "set on purpose" in report["scaled"]["proj.weight"]
    assert torch.equal(scaled.proj.weight, own["proj.weight"])  # kept
    assert torch.equal(scaled.head.weight, ref.head.weight)  # drawn alike: shared
    assert set(report["prior"]) == {"head.bias"} and "constant -1.1" in report["prior"]["head.bias"]
    # every loaded tensor big enough to tell is kept (3 values cannot show a changed scale)
    assert set(report["loaded"]) == {n for n, p in loaded.named_parameters() if p.numel() >= 16}
    assert twin.init.shared["scaled"] and "proj.weight" in twin.init.own["scaled"]


def test_share_init_per_candidate():
    a, b, c = Block(), Block(), Block()
    twinrun.Twin({"a": (a, torch.optim.SGD(a.parameters(), lr=0.1)),
                  "b": (b, torch.optim.SGD(b.parameters(), lr=0.1)),
                  "c": (c, torch.optim.SGD(c.parameters(), lr=0.1))},
                 share_init={"b": False, "c": ["head.weight"]})
    assert not torch.equal(a.head.weight, b.head.weight)
    assert torch.equal(a.head.weight, c.head.weight) and not torch.equal(a.proj.weight, c.proj.weight)
    with pytest.raises(BuildError, match="share_init names candidates \\['z'\\]"):
        twinrun.Twin({"a": (a, torch.optim.SGD(a.parameters(), lr=0.1))}, share_init={"z": False})


def test_same_factory_candidates_still_share_everything(toy):
    result = _compare(toy.replace(candidates={"small": {}, "dropout": {"model.dropout": 0.5}}, steps=2),
                      registry=False)
    assert result.init.not_shared["dropout"] == {} and len(result.init.shared["dropout"]) == 4


# ------------------------------------------------------------------ 10: memory after a resume
class _Crash(Sink):
    def on_step_done(self, event: StepDone) -> None:
        if event.step == 5:
            raise RuntimeError("crash")


def test_a_resumed_run_reports_its_activation_peak(toy, tmp_path):
    exp = toy.replace(candidates={"small": {}}, steps=8, checkpoint_every=4)
    full = _compare(exp, home=tmp_path / "full")
    with pytest.raises(RuntimeError):
        _compare(exp, sinks=[_Crash()])
    resumed = _compare(exp, resume="latest")
    assert resumed.memory["activation_peak_bytes"] == full.memory["activation_peak_bytes"] > 0


# ------------------------------------------------------------------ 12: never suggest an unsafe load
def test_a_checkpoint_holding_code_is_refused_without_unsafe_advice(toy, tmp_path):
    from twinrun.checkpoint import read_checkpoint, write_checkpoint

    path = write_checkpoint(tmp_path / "bad.ckpt", {"engine": io.BytesIO(b"x")}, {"experiment": "toy", "step": 1})
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)  # checksums recomputed on write: they pass, the content does not
    text = info.value.message + info.value.fix
    assert "weights_only" not in text and "will likely succeed" not in text
    assert "_io.BytesIO" in text and "add_safe_globals" in text


# ------------------------------------------------------------------ 13: a damaged registry
def test_registry_check_of_a_damaged_file_exits_1(tmp_path, capsys):
    path = tmp_path / "r.sqlite"
    with Registry.open(path) as reg:
        _compare(twinrun.load_experiment(Path(__file__).parent / "experiments" / "toy.py"),
                 registry=reg, overrides={"steps": 2}, candidates=["small"])
    assert not list(tmp_path.glob("r.sqlite-wal")) or (tmp_path / "r.sqlite-wal").stat().st_size == 0
    data = bytearray(path.read_bytes())
    data[4096 * 2:] = bytes((i * 37) % 251 for i in range(len(data) - 4096 * 2))  # pages 3.. scrambled
    path.write_bytes(bytes(data))
    assert cli_main(["registry", "check", "--registry", str(path)]) == 1
    assert "DAMAGED" in capsys.readouterr().out
    assert cli_main(["registry", "check", "--registry", str(tmp_path / "none.sqlite")]) == 2
