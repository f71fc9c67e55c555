"""The checks added for real code: lr_range, activations, hash_seed, and the chance rate of data_leakage."""

from __future__ import annotations

import pytest
import torch
from planted import MLP, DeadReluMLP, _seeded, _set, _tabular, digits
from scipy.stats import binom
from torch import nn

import twinrun
from twinrun.checks._leakage import _binomial_tail


def test_adam_left_at_sgds_learning_rate_is_named_with_a_working_range(tmp_path):
    """The issue's case: Adam at 0.1 drops the loss at first, then thrashes; the range test says where it works."""
    model = _seeded(MLP, features=64, classes=10)
    (x, y), (xv, yv) = digits()
    report = twinrun.checks.run_checks(model=model, train=(x.flatten(1), y), val=(xv.flatten(1), yv),
                                loss=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters(), lr=0.1),
                                settings={"steps": 300}, outdir=tmp_path, registry=False, only=["lr_range"])
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
    report = twinrun.checks.run_checks(model=model, train=(x.flatten(1), y), val=(xv.flatten(1), yv),
                                loss=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                                settings={"steps": 300}, registry=False, only=["lr_range"])
    assert report["lr_range"].status == "pass", report["lr_range"].measured


def test_the_range_test_is_seeded_by_the_run():
    def run(seed):
        model = _seeded(MLP)
        pieces = _set(_tabular(model), seed=seed)
        return twinrun.checks.run_checks(**pieces, registry=False, only=["lr_range"])["lr_range"]

    a, b, c = run(0), run(0), run(1)
    assert a.details["losses"] == b.details["losses"]
    assert a.details["losses"] != c.details["losses"]


def test_dead_relus_are_named_by_layer(tmp_path):
    report = twinrun.checks.run_checks(**_tabular(_seeded(DeadReluMLP)), outdir=tmp_path, registry=False,
                                only=["activations"])
    result = report["activations"]
    assert result.status == "fail", result.measured
    assert "dead" in result.explanation and "relu" in result.explanation.lower()
    assert (tmp_path / "activations.png").exists()


def test_a_clean_mlp_has_live_activations():
    report = twinrun.checks.run_checks(**_tabular(_seeded(MLP)), registry=False, only=["activations"])
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
    result = twinrun.checks.run_checks(**_tabular(_seeded(MLP)), registry=False, only=["hash_seed"])["hash_seed"]
    assert result.status == "skip" and "twinrun check FILE" in result.fix


@pytest.mark.parametrize(("k", "n", "p"), [(5, 128, 0.031), (0, 10, 0.2), (30, 128, 0.03), (128, 128, 0.5), (3, 40, 0.0)])
def test_binomial_tail_against_scipy(k, n, p):
    assert _binomial_tail(k, n, p) == pytest.approx(float(binom.sf(k - 1, n, p)), rel=1e-9, abs=1e-300)


class HugeInitMLP(MLP):
    """Every initial weight 100x too large."""

    def __init__(self, **kw):
        super().__init__(**kw)
        with torch.no_grad():
            for p in self.parameters():
                p.mul_(100.0)


def test_huge_initial_weights_are_named_as_the_cause_not_the_labels():
    report = twinrun.checks.run_checks(**_tabular(_seeded(HugeInitMLP)), registry=False,
                                only=["zero_input_baseline", "activations"])
    zero = report["zero_input_baseline"]
    assert zero.status == "fail"
    assert "initial weights are far too large" in zero.explanation
    assert "shuffled separately" not in zero.explanation
    assert report["activations"].status == "warn" and "explode" in report["activations"].explanation


def clamped_loss(out, y):
    return torch.clamp(nn.functional.cross_entropy(out, y), max=0.5)


def test_a_clamped_loss_is_named_no_gradient_reaches_the_parameters():
    pieces = _tabular(_seeded(MLP))
    pieces["loss"] = clamped_loss
    result = twinrun.checks.run_checks(**pieces, registry=False, only=["loss_decreases"])["loss_decreases"]
    assert result.status == "fail"
    assert "No gradient reaches the parameters" in result.explanation
    assert result.details["gradient_norm_at_step_1"] == 0.0


def test_batch_norm_statistics_are_recomputed_before_eval_measurements():
    from planted import clean_cnn_bn

    report = twinrun.checks.run_checks(**clean_cnn_bn(), registry=False, only=["loss_decreases", "zero_input_baseline"])
    assert "batch-norm layer(s) were recomputed" in report["loss_decreases"].explanation
    assert "batch-norm layer(s) were" in report["zero_input_baseline"].explanation
    assert report.statuses() == {"loss_decreases": "pass", "zero_input_baseline": "pass"}


def one_cycle(optimizer, total_steps):
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=total_steps)


@pytest.mark.parametrize("scheduler", [twinrun.factory(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.01),
                                       one_cycle])
def test_a_scheduler_factory_takes_the_runs_steps(scheduler):
    """OneCycleLR without total_steps (or a factory with a total_steps/run_steps parameter) gets the run's steps,
    so --set steps=N moves the schedule's end with the run: lr_schedule has nothing to warn about."""
    from planted import blobs

    exp = twinrun.Experiment(name="cycle", data=blobs, model=lambda: _seeded(MLP),
                             optimizer=twinrun.factory(torch.optim.SGD, lr=0.01, momentum=0.9),
                             scheduler=scheduler, loss=nn.CrossEntropyLoss(), steps=300, batch_size=32)
    for steps in (300, 80):
        result = twinrun.check(exp, overrides={"steps": steps}, registry=False, only=["lr_schedule"])["lr_schedule"]
        assert result.status == "pass", (steps, result.measured, result.explanation)
        assert f"at update {steps}" in result.measured


def test_an_unrecognised_summed_losss_floor_is_per_example():
    """The VAE's summed BCE + KL: the estimated floor is the BCE of a perfect reconstruction of the memorised
    examples (the targets' own entropy) per example, plus the small KL at initialisation; summed over the batch
    it would be 8x larger than the per-example losses measured, and the check would pass at once."""
    import sys
    from pathlib import Path

    sys.path.append(str(Path(__file__).parents[1] / "corpus"))
    from models import vae

    pieces = vae()
    result = twinrun.checks.run_checks(**pieces, registry=False, only=["overfit_batch"])["overfit_batch"]
    x = pieces["train"][0]
    floor = result.details["floor"]
    assert result.details["floor_estimated"]
    assert floor < result.details["loss_start"] / 2
    assert result.details["ran"] > 100  # it had to train: the floor was not reached at once
    entropy = -(x * x.clamp_min(1e-12).log() + (1 - x) * (1 - x).clamp_min(1e-12).log()).sum(1)
    assert entropy.min() - 1e-3 <= floor <= entropy.max() + 1.0


def test_an_autoencoder_that_ignores_its_inputs_is_told_why():
    """The VAE whose optimizer leaves out the encoder: reconstructions no better from inputs than from zeros, and
    the message speaks of autoencoders (an average output, posterior collapse), not of shuffled labels."""
    import sys
    from pathlib import Path

    sys.path.append(str(Path(__file__).parents[1] / "corpus"))
    from models import vae

    result = twinrun.checks.run_checks(**vae(bug=True), registry=False, only=["zero_input_baseline"])["zero_input_baseline"]
    assert result.status in ("warn", "fail"), result.measured
    assert "autoencoder" in result.explanation and "shuffled separately" not in result.explanation


def test_the_zero_input_explanation_reads_a_difference_that_could_not_be_estimated():
    """After a divergence every validation loss is NaN: the explanation says so instead of crashing."""
    from twinrun.checks._learning import _span
    from twinrun.stats import paired_t_interval

    assert _span(paired_t_interval([float("nan")] * 4)) == "no paired difference: no finite value"
    assert _span(paired_t_interval([0.5])).startswith("paired difference 0.5, no interval: an interval needs")
    assert _span(paired_t_interval([0.5, 0.7, 0.6])).startswith("paired difference 0.6, 95% interval [")
