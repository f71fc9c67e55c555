"""What a run's data was: split fingerprints, the first epoch's order, epoch coverage, the test split."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

import twinrun
from twinrun.cli import main
from twinrun.engine._data_facts import (
    HASH_LIMIT,
    coverage_warning,
    dataset_fingerprint,
    epoch_coverage,
)
from twinrun.errors import DataError

# the library warns once per process when PYTHONHASHSEED is not fixed; these tests do not depend on it
pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")

COMMON = {"progress": False, "logdir": None}


@pytest.fixture
def on_disk(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x=rng.normal(size=(220, 8)).astype(np.float32), y=rng.integers(0, 3, 220))
    monkeypatch.setenv("TWINRUN_TEST_DATA", str(path))
    import on_disk as module

    module.TEST_FORWARDS[0] = 0
    return path, module


def test_fingerprint_follows_content_not_identity():
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    a = dataset_fingerprint(TensorDataset(x, y))
    assert a == dataset_fingerprint(TensorDataset(x.clone(), y.clone()))
    assert a["examples"] == 50 and a["complete"] is True
    y2 = y.clone()
    y2[17] = (y2[17] + 1) % 3
    assert dataset_fingerprint(TensorDataset(x, y2))["sha256"] != a["sha256"]  # one label
    assert dataset_fingerprint(TensorDataset(x[:49], y[:49]))["sha256"] != a["sha256"]  # one example fewer
    assert dataset_fingerprint(TensorDataset(x.double(), y))["sha256"] != a["sha256"]  # same values, other dtype


class Augmented(Dataset):
    """A dataset of its own whose __getitem__ draws from the global generator (a random transform)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return torch.full((3,), float(i)) + 0.01 * torch.randn(3), i % 2


def test_fingerprint_of_a_random_transform_is_stable_and_leaves_globals_alone():
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    a = dataset_fingerprint(Augmented(30))
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(6)  # whatever the process drew before
    assert dataset_fingerprint(Augmented(30)) == a and a["complete"] is True
    big = dataset_fingerprint(Augmented(HASH_LIMIT + 10))
    assert big["complete"] is False and big["hashed"] == HASH_LIMIT and big["examples"] == HASH_LIMIT + 10


def test_epoch_coverage_and_its_warning():
    assert epoch_coverage(100, 64) == {"examples": 100, "used_per_epoch": 64, "share": 0.64, "batch_size": 64}
    warning = coverage_warning(epoch_coverage(100, 64))
    assert "each epoch trains on 64 of the 100 training examples (36% left out)" in warning
    assert "--set batch_size=50 uses every example" in warning
    assert coverage_warning(epoch_coverage(100, 50)) is None
    assert coverage_warning(epoch_coverage(1000, 64)) is None  # 40 of 1000 left out: 4 %


def test_a_run_records_its_data_and_warns_about_a_short_epoch(on_disk):
    _, module = on_disk
    r = twinrun.compare(module.experiment, registry=False, overrides={"batch_size": 64}, **COMMON)
    data = r.to_dict()["data"]
    assert set(data) == {"train", "val", "order_sha256", "epoch"}
    assert data["train"]["examples"] == 100 and data["val"]["examples"] == 60
    assert data["epoch"]["used_per_epoch"] == 64
    assert any("each epoch trains on 64 of the 100" in w for w in r.warnings)
    same = twinrun.compare(module.experiment, registry=False, overrides={"batch_size": 64}, **COMMON)
    assert same.data == r.data
    other_seed = twinrun.compare(module.experiment, registry=False, overrides={"batch_size": 64, "seed": 1},
                                 **COMMON)
    assert other_seed.data["train"] == r.data["train"] and other_seed.data["order_sha256"] != r.data["order_sha256"]
    full = twinrun.compare(module.experiment, registry=False, **COMMON)  # batch_size 20 divides 100
    assert not any("each epoch" in w for w in full.warnings)


def test_diff_check_fails_when_the_data_file_changed_under_the_same_config(on_disk, capsys):
    path, module = on_disk
    a = twinrun.compare(module.experiment, **COMMON).run_id
    arrays = dict(np.load(path))
    arrays["y"][3] = (arrays["y"][3] + 1) % 3  # one training label, edited in place
    np.savez(path, **arrays)
    b = twinrun.compare(module.experiment, **COMMON).run_id
    assert main(["diff", a, b, "--check"]) == 1
    out = capsys.readouterr().out
    assert "NOT COMPARABLE" in out and "data: the train split's content differs (100 examples, sha256" in out
    assert main(["diff", a, b, "--json"]) == 0
    reasons = json.loads(capsys.readouterr().out)["verdict"]["reasons"]
    assert [r for r in reasons if r.startswith("data:")] == [next(r for r in reasons if "train split" in r)]
    c = twinrun.compare(module.experiment, **COMMON).run_id  # the same file again: comparable
    assert main(["diff", b, c, "--check"]) == 0
    capsys.readouterr()


def test_the_test_split_is_evaluated_once_at_the_end(on_disk):
    _, module = on_disk
    r = twinrun.compare(module.experiment, registry=False, overrides={"data.test": True}, **COMMON)
    # 2 candidates x 2 test batches (60 examples, eval_batch_size 32), once: not at steps 0, 3 or 6
    assert module.TEST_FORWARDS[0] == 4
    for cand in r.candidates.values():
        assert set(cand.test) == {"loss", "accuracy"} and 0 <= cand.test["accuracy"] <= 1
        assert cand.to_dict()["test"] == pytest.approx(cand.test)
    assert r.data["test"]["examples"] == 60
    assert "test" not in r.comparisons["wide"].to_dict()["val"]  # no verdict is drawn on it
    without = twinrun.compare(module.experiment, registry=False, **COMMON)
    assert all(not c.test and "test" not in c.to_dict() for c in without.candidates.values())
    assert [c.final for c in without.candidates.values()] == [c.final for c in r.candidates.values()]


def test_bad_splits_are_refused_before_training(on_disk):
    _, module = on_disk
    with pytest.raises(DataError, match=r"a test input has shape \(5,\), a training input \(8,\)") as err:
        twinrun.compare(module.experiment, registry=False, overrides={"data.test": True, "data.test_features": 5},
                        **COMMON)
    assert "same preprocessing" in err.value.fix
    assert module.TEST_FORWARDS[0] == 0


def test_test_split_analysis_closed_form():
    from scipy.stats import spearmanr

    from twinrun.sweeps._analysis import test_split_analysis

    val = {"a": [0.90, 0.92, 0.91, None], "b": [0.80, 0.83, 0.81, 0.82]}
    test = {"a": [0.89, 0.93, 0.90, 0.95], "b": [0.70, 0.72, 0.71, 0.73]}
    r = test_split_analysis(val, test)
    assert r["candidates"]["a"]["seeds"] == 3 and r["candidates"]["a"]["inside"] is True  # 0.9067 in [0.90, 0.92]
    assert r["candidates"]["b"]["inside"] is False and r["candidates"]["b"]["val_range"] == [0.80, 0.83]
    pairs = [(0.90, 0.89), (0.92, 0.93), (0.91, 0.90), (0.80, 0.70), (0.83, 0.72), (0.81, 0.71), (0.82, 0.73)]
    ref = spearmanr(*zip(*pairs))
    assert r["rank_correlation"]["rho"] == pytest.approx(ref.statistic) and r["rank_correlation"]["n"] == 7
    assert r["candidates"]["b"]["rank_over_seeds"]["rho"] == pytest.approx(spearmanr(val["b"], test["b"]).statistic)
    assert test_split_analysis(val, {"a": [None] * 4, "b": [None] * 4}) is None


@pytest.mark.slow
def test_a_sweep_says_whether_validation_predicts_test(on_disk, tmp_path):
    from twinrun.report import format_sweep
    from twinrun.sweeps import run_sweep

    _, module = on_disk
    sweep = run_sweep(module.__file__, seeds=3, execution="inprocess", home=tmp_path / "h", progress=False,
                      overrides={"data.test": True})
    test = sweep.analysis["test"]
    assert test["metric"] == sweep.analysis["metric"] and set(test["candidates"]) == {"small", "wide"}
    assert test["rank_correlation"]["n"] == 6
    text = format_sweep(sweep.analysis)
    assert "test split (" in text and "validation seed range" in text and "rank correlation" in text


class OwnsGenerator(Dataset):
    """Data in attributes and a generator of its own that __getitem__ draws from (the loader idiom)."""

    def __init__(self, y: list[int]) -> None:
        self.x = torch.arange(len(y) * 2, dtype=torch.float32).reshape(len(y), 2)
        self.y = y
        self.rng = np.random.default_rng(0)
        self.transform = lambda v: v

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i] + float(self.rng.normal()), self.y[i]


def test_fingerprint_never_advances_a_generator_the_dataset_owns():
    data = OwnsGenerator([0, 1, 2, 1])
    before = data.rng.bit_generator.state
    a = dataset_fingerprint(data)
    assert data.rng.bit_generator.state == before and a["from"] == "attributes"
    assert dataset_fingerprint(OwnsGenerator([0, 1, 2, 1])) == a
    assert dataset_fingerprint(OwnsGenerator([0, 1, 2, 2]))["sha256"] != a["sha256"]  # one label
    subset = torch.utils.data.Subset(OwnsGenerator([0, 1, 2, 1]), [0, 2])
    assert dataset_fingerprint(subset)["sha256"] != dataset_fingerprint(
        torch.utils.data.Subset(OwnsGenerator([0, 1, 2, 1]), [0, 3]))["sha256"]  # other members
