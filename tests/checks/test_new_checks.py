"""The checks added for real code: lr_range, activations, hash_seed, and the chance rate of data_leakage."""

from __future__ import annotations

import pytest
import torch
from planted import MLP, DeadReluMLP, _seeded, _tabular, digits
from scipy.stats import binom
from torch import nn

import twinrun
from twinrun.checks._leakage import _binomial_tail


def test_adam_left_at_sgds_learning_rate_is_named_with_a_working_range(tmp_path):
    """The issue's case: Adam at 0.1 drops the loss at first, then thrashes; the range test says where it works."""
    model = _seeded(MLP, features=64, classes=10)
    (x, y), (xv, yv) = digits()
    report = twinrun.run_checks(model=model, train=(x.flatten(1), y), val=(xv.flatten(1), yv),
                                loss=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters(), lr=0.1),
                                steps=300, outdir=tmp_path, registry=False, only=["lr_range"])
    result = report["lr_range"]
    assert result.status == "fail", result.measured
    _, high = result.details["range"]
    assert high < 1  # the working range lies below the configured rate
    assert result.details["gap_of_start"] >= 0.1  # rate/10 ends lower by at least a tenth of the initial loss
    assert "use a learning rate from" in result.fix
    assert (tmp_path / "lr_range.png").stat().st_size > 0


def test_a_sane_learning_rate_passes_the_range_test(tmp_path):
    model = _seeded(MLP, features=64, classes=10)
    (x, y), (xv, yv) = digits()
    report = twinrun.run_checks(model=model, train=(x.flatten(1), y), val=(xv.flatten(1), yv),
                                loss=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                                steps=300, registry=False, only=["lr_range"])
    assert report["lr_range"].status == "pass", report["lr_range"].measured


def test_the_range_test_is_seeded_by_the_run():
    def run(seed):
        model = _seeded(MLP)
        return twinrun.run_checks(**_tabular(model), seed=seed, registry=False, only=["lr_range"])["lr_range"]

    a, b, c = run(0), run(0), run(1)
    assert a.details["losses"] == b.details["losses"]
    assert a.details["losses"] != c.details["losses"]


def test_dead_relus_are_named_by_layer(tmp_path):
    report = twinrun.run_checks(**_tabular(_seeded(DeadReluMLP)), outdir=tmp_path, registry=False,
                                only=["activations"])
    result = report["activations"]
    assert result.status == "fail", result.measured
    assert "dead" in result.explanation and "relu" in result.explanation.lower()
    assert (tmp_path / "activations.png").exists()


def test_a_clean_mlp_has_live_activations():
    report = twinrun.run_checks(**_tabular(_seeded(MLP)), registry=False, only=["activations"])
    assert report["activations"].status == "pass", report["activations"].explanation


@pytest.mark.slow
@pytest.mark.parametrize("sorted_vocab", [False, True])
def test_a_vocabulary_built_from_a_set_depends_on_the_hash_seed(sorted_vocab, monkeypatch):
    from _subprocess import HERE

    monkeypatch.setenv("SORTED", "1" if sorted_vocab else "0")
    result = twinrun.check(HERE / "experiments" / "set_vocab.py", only=["hash_seed"], registry=False)["hash_seed"]
    if sorted_vocab:
        assert result.status == "pass", result.measured
    else:
        assert result.status == "fail"
        assert "train inputs" in result.details["differ"]
        assert "sorted(set(" in result.fix


def test_hash_seed_needs_an_experiment_file():
    result = twinrun.run_checks(**_tabular(_seeded(MLP)), registry=False, only=["hash_seed"])["hash_seed"]
    assert result.status == "skip" and "twinrun check FILE" in result.fix


@pytest.mark.parametrize(("k", "n", "p"), [(5, 128, 0.031), (0, 10, 0.2), (30, 128, 0.03), (128, 128, 0.5), (3, 40, 0.0)])
def test_binomial_tail_against_scipy(k, n, p):
    assert _binomial_tail(k, n, p) == pytest.approx(float(binom.sf(k - 1, n, p)), rel=1e-9, abs=1e-300)
