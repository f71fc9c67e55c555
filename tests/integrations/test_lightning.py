"""twinrun inside real Lightning (CPU, a tiny model, a few steps): registry, ledger, checks, exact resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

L = pytest.importorskip("lightning.pytorch")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from twinrun.errors import BuildError, CheckpointError  # noqa: E402
from twinrun.integrations.lightning import TwinModule, TwinrunCallback  # noqa: E402
from twinrun.ledger import Ledger, compare_ledgers  # noqa: E402
from twinrun.registry import open_registry  # noqa: E402

from ._lightning_models import Net, loaders, trainer  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]


def _callback(tmp_path, tag: str, **kwargs) -> TwinrunCallback:
    kwargs.setdefault("checks", False)
    return TwinrunCallback(registry=tmp_path / "registry.sqlite", ledger=tmp_path / f"{tag}.jsonl", **kwargs)


def _weights(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_a_lightning_run_is_recorded_with_its_config_ledger_metrics_and_checks(tmp_path):
    torch.manual_seed(0)
    model = Net()
    cb = _callback(tmp_path, "run", checks=["loss_at_init", "param_updates"], loss=F.cross_entropy, name="net")
    trainer(max_epochs=2, callbacks=[cb]).fit(model, *loaders())
    assert cb.check_report is not None and not cb.check_report.failed
    assert set(cb.check_report.statuses()) == {"loss_at_init", "param_updates"}
    with open_registry(tmp_path / "registry.sqlite") as reg:
        runs = {r.name: r for r in reg.list_runs()}
        assert set(runs) == {"net", "net-checks"}
        run = reg.get_run(runs["net"].id)
        assert run.status == "finished" and sorted(run.candidates) == ["model"]
        assert run.config["hparams"] == {"width": 16, "lr": 0.05, "interval": "step", "step_size": 4}
        assert run.config["trainer"]["max_epochs"] == 2 and run.env  # the environment is recorded
        metrics = reg.metrics(run.id)["model"]
        assert [s for s, _ in metrics["train"]["loss"]] == list(range(1, 13))  # 6 batches x 2 epochs
        lrs = [v for _, v in metrics["train"]["lr"]]
        assert lrs[0] == pytest.approx(0.05) and lrs[-1] == pytest.approx(0.05 * 0.7**3)  # StepLR per step
        assert [s for s, _ in metrics["val"]["val_loss"]] == [6, 12]
        assert len(reg.checks(runs["net-checks"].id)) == 2
    ledger = Ledger.load(tmp_path / "run.jsonl")
    kinds = {r.kind for r in ledger.records}
    assert {"init", "batch", "loss", "weights"} <= kinds
    assert len([r for r in ledger.records if r.kind == "loss"]) == 12


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_the_schedule_check_simulates_lightnings_interval(tmp_path, interval):
    # StepLR(step_size=2) meant per epoch is fine; the same stepped per batch collapses (a true alarm)
    torch.manual_seed(0)
    model = Net(interval=interval, step_size=2)
    cb = _callback(tmp_path, interval, checks=["lr_schedule"], loss=F.cross_entropy)
    trainer(max_epochs=1, callbacks=[cb]).fit(model, *loaders())
    status = cb.check_report["lr_schedule"].status
    assert status == ("pass" if interval == "epoch" else "fail"), cb.check_report["lr_schedule"].measured


def test_the_checks_need_the_loss_and_say_so():
    with pytest.raises(BuildError, match="loss=torch.nn.functional.cross_entropy"):
        TwinrunCallback()


def _resume_pair(tmp_path, seed, every):
    """An uninterrupted 3-epoch run saving checkpoints, and a run resumed from one of them."""
    ckpt = L.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, **every)
    L.seed_everything(0, verbose=False)
    whole = Net()
    cb = _callback(tmp_path, "whole", seed=seed)
    trainer(max_epochs=3, callbacks=[cb, ckpt], enable_checkpointing=True).fit(whole, *loaders())
    first = sorted((tmp_path / "ckpt").glob("*.ckpt"), key=lambda p: p.stat().st_mtime_ns)[0]
    shutil.copy(tmp_path / "whole.jsonl", tmp_path / "resumed.jsonl")  # the ledger goes on from the checkpoint
    L.seed_everything(123, verbose=False)  # the resumed process's generators are whatever they are
    resumed = Net()
    cb2 = _callback(tmp_path, "resumed", seed=seed)
    trainer(max_epochs=3, callbacks=[cb2]).fit(resumed, *loaders(), ckpt_path=first)
    return whole, resumed, cb, cb2


@pytest.mark.slow
def test_resume_from_an_epoch_end_checkpoint_is_bit_exact_with_the_callbacks_seed(tmp_path):
    whole, resumed, cb, cb2 = _resume_pair(tmp_path, 0, {"every_n_epochs": 1})
    a, b = _weights(whole), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
    assert cb2.run.run_id == cb.run.run_id  # the resumed run goes on as the same registry run
    with open_registry(tmp_path / "registry.sqlite") as reg:
        (run,) = reg.list_runs()
        assert reg.get_run(run.id).status == "finished"
        assert [s for s, _ in reg.metrics(run.id)["model"]["train"]["loss"]] == list(range(1, 19))
    comparison = compare_ledgers(Ledger.load(tmp_path / "whole.jsonl"), Ledger.load(tmp_path / "resumed.jsonl"))
    assert comparison.divergence is None and comparison.last_step_b == 18


@pytest.mark.slow
def test_without_the_seed_lightnings_own_resume_is_not_exact(tmp_path):
    # Lightning restores weights, optimizers and loops but not the generators (its #17543): other
    # dropout masks and another data order after the resume
    whole, resumed, _, _ = _resume_pair(tmp_path, None, {"every_n_epochs": 1})
    a, b = _weights(whole), _weights(resumed)
    assert not all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_a_checkpoint_inside_an_epoch_does_not_resume_exactly_as_documented(tmp_path):
    # a plain DataLoader cannot resume at a position: Lightning replays the epoch's first batches
    whole, resumed, _, _ = _resume_pair(tmp_path, 0, {"every_n_train_steps": 3})
    a, b = _weights(whole), _weights(resumed)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_twin_module_trains_two_lightning_modules_on_the_same_batches_from_shared_weights(tmp_path):
    torch.manual_seed(0)
    a, b = Net(16, lr=0.05), Net(16, lr=0.2)
    assert not torch.equal(a.net[0].weight, b.net[0].weight)
    twin = TwinModule({"a": a, "b": b}, seed=3)
    assert torch.equal(a.net[0].weight, b.net[0].weight)  # shared initial weights
    start = _weights(a)
    cb = _callback(tmp_path, "twin", name="ab")
    t = trainer(max_epochs=2, callbacks=[cb])
    t.fit(twin, *loaders())
    assert twin.twin_steps == 12 and t.global_step == 24  # Lightning counts each candidate's step
    assert twin.members()["a"] is a  # the same objects, trained in place
    assert not torch.equal(start["net.0.weight"], a.net[0].weight)
    ledger = Ledger.load(tmp_path / "twin.jsonl")
    batches = {(r.step, r.candidate): r.hash for r in ledger.records if r.kind == "batch" and r.name == "inputs"}
    assert all(batches[s, "a"] == batches[s, "b"] for s in range(1, 13))  # the same batches
    with open_registry(tmp_path / "registry.sqlite") as reg:
        run = reg.get_run(reg.list_runs(name="ab")[0].id)
        metrics = reg.metrics(run.id)
        assert sorted(run.candidates) == ["a", "b"] and run.status == "finished"
        assert [s for s, _ in metrics["b"]["val"]["val_loss"]] == [6, 12]  # their own self.log, prefixed
        assert len(metrics["a"]["train"]["loss"]) == 12
    verdict = twin.verdict(loaders()[1], F.cross_entropy)
    d = verdict["b"].val["loss"]
    assert d.n == 96 and d.low <= d.mean <= d.high


def test_twin_module_candidates_draw_the_same_dropout_masks():
    torch.manual_seed(0)
    a, b = Net(16), Net(16)
    twin = TwinModule({"a": a, "b": b})
    masks = {}
    def keep(name):
        def hook(module, inputs, output):
            masks.setdefault(name, output == 0)  # the first training step's dropped units
        return hook

    for name, module in twin.members().items():
        module.net[2].register_forward_hook(keep(name))
    t = trainer(max_steps=2, limit_val_batches=0)
    t.fit(twin, loaders()[0])
    assert torch.equal(masks["a"], masks["b"]) and masks["a"].any()


@pytest.mark.slow
def test_twin_module_resumes_bit_exactly_from_an_epoch_end_checkpoint(tmp_path):
    ckpt = L.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    torch.manual_seed(0)
    whole = TwinModule({"a": Net(16, lr=0.05), "b": Net(16, lr=0.2)})
    trainer(max_epochs=3, callbacks=[_callback(tmp_path, "w"), ckpt], enable_checkpointing=True).fit(
        whole, *loaders())
    first = sorted((tmp_path / "ckpt").glob("*.ckpt"), key=lambda p: p.stat().st_mtime_ns)[0]
    torch.manual_seed(1)
    resumed = TwinModule({"a": Net(16, lr=0.05), "b": Net(16, lr=0.2)})
    trainer(max_epochs=3, callbacks=[_callback(tmp_path, "r")]).fit(resumed, *loaders(), ckpt_path=first)
    a, b = _weights(whole), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.twin_steps == 18


def test_bad_twin_modules_are_refused_with_the_fix():
    torch.manual_seed(0)
    net = Net()
    with pytest.raises(BuildError, match="same object"):
        TwinModule({"a": net, "b": net})
    with pytest.raises(BuildError, match="at least two"):
        TwinModule({"a": net})
    manual = Net()
    manual.automatic_optimization = False
    with pytest.raises(BuildError, match="automatic_optimization=True"):
        TwinModule({"a": Net(), "b": manual})


def test_a_resume_with_another_seed_is_refused(tmp_path):
    cb = TwinrunCallback(seed=1, checks=False, registry=False)
    with pytest.raises(CheckpointError, match="seed=0"):
        cb.load_state_dict({"version": 1, "run_id": "x", "seed": 0, "step": 6})


def test_import_twinrun_imports_neither_framework():
    import subprocess
    import sys

    code = ("import sys, twinrun, twinrun.integrations; twinrun.Experiment; "
            "print(sorted(m for m in ('lightning', 'pytorch_lightning', 'transformers', 'accelerate') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_callback_checks_every_twin_module_candidate_with_its_own_optimizer(tmp_path):
    torch.manual_seed(0)
    twin = TwinModule({"a": Net(16, lr=0.05), "b": Net(16, lr=0.2, interval="epoch", step_size=2)})
    cb = _callback(tmp_path, "checks", name="ab", checks=["param_updates", "lr_schedule"], loss=F.cross_entropy)
    trainer(max_epochs=1, callbacks=[cb]).fit(twin, *loaders())
    assert set(cb.check_report) == {"a", "b"}
    a, b = cb.check_report["a"], cb.check_report["b"]  # each simulated with its own schedule:
    assert a.statuses() == {"param_updates": "pass", "lr_schedule": "warn"}, str(a)  # 0.7 every 4 updates
    assert b.statuses() == {"param_updates": "pass", "lr_schedule": "pass"}, str(b)  # 0.7 every 2 epochs
    with open_registry(tmp_path / "registry.sqlite") as reg:
        assert {r.name for r in reg.list_runs()} == {"ab", "ab-checks-a", "ab-checks-b"}


@pytest.mark.slow
def test_under_lightnings_ddp_rank_zero_alone_records_the_run(tmp_path):
    import shutil
    import subprocess
    import sys

    from _subprocess import child_env

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    script = Path(__file__).parent / "_lightning_ddp.py"
    done = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path)],
                          env=child_env(PYTHONHASHSEED="0"), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    with open_registry(tmp_path / "registry.sqlite") as reg:
        (run,) = reg.list_runs()  # one run, not one per rank
        assert run.status == "finished"
        steps = [s for s, _ in reg.metrics(run.id)["model"]["train"]["loss"]]
        assert steps == list(range(1, 7))  # 96 examples, 2 ranks of 16 per batch: 3 batches an epoch
    assert Ledger.load(tmp_path / "ledger.jsonl").records
