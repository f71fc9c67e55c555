"""twinrun inside the real Hugging Face Trainer (CPU, a tiny BERT built from a config: nothing downloaded)."""

from __future__ import annotations

import shutil

import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

import torch

from twinrun.integrations.huggingface import TwinrunTrainerCallback
from twinrun.ledger import Ledger, compare_ledgers
from twinrun.registry import open_registry

pytestmark = [pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

_g = torch.Generator().manual_seed(0)
IDS = torch.randint(1, 50, (96, 12), generator=_g)
LABELS = (IDS[:, 0] > 25).long()
TRAIN = [{"input_ids": IDS[i], "labels": LABELS[i]} for i in range(64)]
EVAL = [{"input_ids": IDS[i], "labels": LABELS[i]} for i in range(64, 96)]


def _model():
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    return transformers.BertForSequenceClassification(config)  # dropout 0.1 in every layer


def _trainer(model, out, callback, **kwargs):
    args = transformers.TrainingArguments(
        output_dir=str(out), max_steps=12, per_device_train_batch_size=8, learning_rate=1e-3, seed=0,
        logging_steps=1, save_steps=4, eval_strategy="steps", eval_steps=6, report_to=[], use_cpu=True,
        dataloader_num_workers=0, disable_tqdm=True, **kwargs)
    return transformers.Trainer(model=model, args=args, train_dataset=TRAIN, eval_dataset=EVAL, callbacks=[callback])


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_a_trainer_run_is_recorded_with_its_config_ledger_metrics_and_checks(tmp_path):
    cb = TwinrunTrainerCallback(registry=tmp_path / "registry.sqlite", ledger=tmp_path / "ledger.jsonl",
                                checks=["loss_at_init", "param_updates", "data_leakage"], name="bert")
    _trainer(_model(), tmp_path / "out", cb).train()
    assert cb.check_report is not None and not cb.check_report.failed, str(cb.check_report)
    with open_registry(tmp_path / "registry.sqlite") as reg:
        runs = {r.name: r for r in reg.list_runs()}
        assert set(runs) == {"bert", "bert-checks"}
        run = reg.get_run(runs["bert"].id)
        assert run.status == "finished" and run.env
        assert run.config["model"]["hidden_size"] == 16 and run.config["args"]["max_steps"] == 12
        metrics = reg.metrics(run.id)["model"]
        assert [s for s, _ in metrics["train"]["loss"]] == list(range(1, 13))
        lrs = [v for _, v in metrics["train"]["lr"]]  # the rate each update used: linear decay to 0
        assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-3 / 12)
        assert [s for s, _ in metrics["val"]["loss"]] == [6, 12]
    ledger = Ledger.load(tmp_path / "ledger.jsonl")
    assert len([r for r in ledger.records if r.kind == "loss"]) == 12
    assert len([r for r in ledger.records if r.kind == "batch" and r.name == "inputs"]) == 12
    assert {r.step for r in ledger.records if r.kind == "weights"} == {12}  # ledger_every 20: the last step
    for name in ("checkpoint-4", "checkpoint-8", "checkpoint-12"):
        assert (tmp_path / "out" / name / "twinrun.json").exists()


def _whole_and_resumed(tmp_path, **kwargs):
    whole = _model()
    cb = TwinrunTrainerCallback(registry=tmp_path / "registry.sqlite", ledger=tmp_path / "whole.jsonl")
    _trainer(whole, tmp_path / "out", cb, **kwargs).train()
    shutil.copy(tmp_path / "whole.jsonl", tmp_path / "resumed.jsonl")  # the ledger goes on from the checkpoint
    torch.manual_seed(7)  # the resumed process's generators are whatever they are
    resumed = _model()
    cb2 = TwinrunTrainerCallback(registry=tmp_path / "registry.sqlite", ledger=tmp_path / "resumed.jsonl")
    _trainer(resumed, tmp_path / "out", cb2, **kwargs).train(
        resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-4"))  # inside the first epoch (8 batches)
    comparison = compare_ledgers(Ledger.load(tmp_path / "whole.jsonl"), Ledger.load(tmp_path / "resumed.jsonl"))
    return whole, resumed, cb, cb2, comparison


@pytest.mark.slow
def test_the_trainers_resume_inside_an_epoch_is_bit_exact_and_the_ledgers_prove_it(tmp_path):
    whole, resumed, cb, cb2, comparison = _whole_and_resumed(tmp_path)
    a, b = _weights(whole), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert comparison.identical and comparison.last_step_b == 12
    assert cb2.run.run_id == cb.run.run_id  # read from the checkpoint's twinrun.json
    with open_registry(tmp_path / "registry.sqlite") as reg:
        (run,) = reg.list_runs()
        assert [s for s, _ in reg.metrics(run.id)["model"]["train"]["loss"]] == list(range(1, 13))


@pytest.mark.slow
def test_ignore_data_skip_breaks_exactness_and_the_ledger_names_the_first_step_after_the_resume(tmp_path):
    # documented Trainer option: the resumed run starts the epoch's data again instead of skipping what was done
    whole, resumed, _, _, comparison = _whole_and_resumed(tmp_path, ignore_data_skip=True)
    a, b = _weights(whole), _weights(resumed)
    assert not all(torch.equal(a[k], b[k]) for k in a)
    assert comparison.divergence is not None
    assert (comparison.divergence.step, comparison.divergence.kind) == (5, "batch")
