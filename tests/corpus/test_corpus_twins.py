"""Twin training on model code written as popular repositories write it (tests/corpus/models.py).

Four candidates of each corpus model (learning rates apart), trained as twins by the vectorised executor and by
the sequential one: none crashes, each model is batched or says why not (the LSTM's recurrent layers; the
Transformer, whose attention hands dropout a transposed tensor, so that vmap would draw other masks), and the two
executors agree to rounding on the first steps (later, at a high learning rate, training amplifies rounding: the ResNet at lr 0.1 parts by
2e-3 at step 4, which is why the comparison stops early). Spread over two names of this CPU, a batched run is
the run on one device, bit for bit.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import twinrun

sys.path.insert(0, str(Path(__file__).parent))
from models import CORPUS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:There is a performance drop because we have not yet implemented"),
    pytest.mark.filterwarnings("ignore:enable_nested_tensor is True"),
    pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning"),
]

TWINNED = ["gpt", "lstm", "transformer", "resnet", "vit", "vae"]  # the workers setup is a data loader, not a model
NOT_BATCHED = {"lstm": "recurrent layers", "transformer": "dropout masks"}  # attention hands dropout a transposed tensor


def _optimizer(model: torch.nn.Module, kind: type, lr: float, **kw: Any) -> torch.optim.Optimizer:
    return kind(model.parameters(), lr=lr, **kw)


def _experiment(name: str, **settings: Any) -> twinrun.Experiment:
    pieces = CORPUS[name](steps=3)
    model, given = pieces["model"], pieces["optimizer"]
    lr = given.defaults["lr"]
    kw = {k: v for k, v in given.defaults.items() if k in ("betas", "weight_decay", "momentum", "nesterov")}
    train, val = pieces["train"], pieces["val"]
    return twinrun.Experiment(
        name=name, data=lambda: (train, val), model=lambda: copy.deepcopy(model),
        optimizer=twinrun.factory(_optimizer, kind=type(given), lr=lr, **kw), loss=pieces["loss"],
        candidates={f"lr{k}": {"optimizer.lr": lr / k} for k in (1, 2, 3, 4)},
        steps=3, eval_every=3, ledger_every=None, baselines=False,
        **{k: v for k, v in pieces["settings"].items() if k != "steps"}, **settings,
    )


def _run(exp: twinrun.Experiment) -> twinrun.TwinResult:
    return twinrun.compare(exp, registry=False, progress=False, logdir=None)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", TWINNED)
def test_a_corpus_model_twins_batched_or_says_why_and_agrees_with_the_sequential_run(name):
    batched = _run(_experiment(name, executor="vectorised"))
    sequential = _run(_experiment(name, executor="sequential"))
    for candidate, result in batched.candidates.items():
        assert result.status == "finished", (name, candidate, result.error)
        how = batched.execution[candidate]
        if name in NOT_BATCHED:
            assert how.startswith("sequential: ") and NOT_BATCHED[name] in how, (name, how)
        else:
            assert how == "vectorised with 4 candidates: lr1+lr2+lr3+lr4", (name, how)
        a, b = result.train_loss[:2], sequential.candidates[candidate].train_loss[:2]
        np.testing.assert_allclose(a, b, rtol=1e-5, err_msg=f"{name} {candidate}")


@pytest.mark.parametrize("name", ["resnet", "vae"])
def test_a_batched_corpus_model_over_two_device_names_is_the_run_on_one(name):
    one = _run(_experiment(name, executor="vectorised"))
    spread = _run(_experiment(name, executor="vectorised", devices="cpu,cpu:0"))
    for candidate, result in one.candidates.items():
        assert np.array_equal(result.train_loss, spread.candidates[candidate].train_loss), (name, candidate)
        assert np.array_equal(result.per_example["loss"], spread.candidates[candidate].per_example["loss"])
