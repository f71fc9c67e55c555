"""`twinrun compare --replicas K`: K twin runs with seeds SEED..SEED+K-1, paired across replicas."""

from __future__ import annotations

import json

import pytest
from conftest import TOY

import twinrun
from twinrun.cli import main
from twinrun.registry import Registry

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")
ARGS = ["compare", str(TOY), "--candidates", "small,dropout", "--steps", "10", "--no-tensorboard", "-q"]


def test_replica_r_is_the_run_with_seed_plus_r_and_the_verdict_is_paired_across_them(monkeypatch, capsys):
    monkeypatch.setenv("PYTHONHASHSEED", "0")  # no re-execution: the CLI runs in this process
    assert main([*ARGS, "--replicas", "3", "--seed", "5", "--json"]) == 0
    sweep = json.loads(capsys.readouterr().out)
    assert sweep["plan"]["seeds"] == [5, 6, 7] and sweep["session"]["execution"]["backend"] == "inprocess"
    # what each replica alone claimed, and the training-loss difference across replicas
    extra = sweep["replicas"]["dropout"]
    assert len(extra["per_example_better"]["accuracy"]) == 3 and extra["train_loss"]["n"] == 3
    with Registry.open() as reg:
        runs = {r.seed: reg.get_run(r.id) for r in reg.list_runs(sweep_id=sweep["sweep"]["id"])}
    assert sorted(runs) == [5, 6, 7]
    for seed, run in runs.items():  # replica = solo, bit for bit
        solo = twinrun.compare(TOY, candidates=["small", "dropout"], overrides={"steps": 10, "seed": seed},
                               progress=False, logdir=None, registry=False, seed_globals=True)
        for name in ("small", "dropout"):
            assert run.result["candidates"][name]["final"] == solo.candidates[name].to_dict()["final"]
    assert main([*ARGS, "--replicas", "2"]) == 0
    text = capsys.readouterr().out
    seed = twinrun.load_experiment(TOY).seed
    assert text.startswith(f"scope: 2 replicas (seeds {seed}..{seed + 1})") and "paired across seeds" in text


@pytest.mark.parametrize("extra,message", [
    (["--replicas", "0"], "--replicas 0: the number of replicas must be a whole number >= 1"),
    (["--replicas", "2", "--resume", "latest"], "--resume continues one run, not a set of replicas"),
    (["--replicas", "2", "--no-registry"], "records its replicas as a sweep"),
])
def test_bad_replica_requests_exit_2_before_training(extra, message, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    assert main([*ARGS, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "fix:" in err


def test_an_experiment_sets_its_default_replicas(toy):
    assert toy.replace(replicas=4).replicas == 4
    with pytest.raises(twinrun.ConfigError, match="replicas=0 must be a whole number"):
        toy.replace(replicas=0)


def test_replicas_write_a_tensorboard_folder_per_replica_and_their_mean(monkeypatch, capsys, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("PYTHONHASHSEED", "0")
    args = [a for a in ARGS if a != "--no-tensorboard"]
    assert main([*args, "--replicas", "2", "--seed", "0"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("curves: tensorboard"))
    folder = tmp_path / "home" / "tb" / line.split("--logdir ")[1].split()[0].rsplit("/", 1)[1]
    assert sorted(p.name for p in folder.iterdir()) == ["mean", "seed-0", "seed-1"]

    def scalars(path):
        acc = EventAccumulator(str(path))
        acc.Reload()
        return dict((e.step, e.value) for e in acc.Scalars("train/loss"))

    for cand in ("small", "dropout"):
        a, b, mean = (scalars(folder / part / cand) for part in ("seed-0", "seed-1", "mean"))
        assert sorted(mean) == list(range(1, 11))
        assert all(abs(mean[s] - (a[s] + b[s]) / 2) < 1e-6 for s in mean)


def test_replicas_give_tensorboard_the_paired_difference_with_its_band(monkeypatch, capsys, tmp_path):
    from scipy import stats
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("PYTHONHASHSEED", "0")
    args = [a for a in ARGS if a != "--no-tensorboard"]
    assert main([*args, "--replicas", "3", "--seed", "0"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("curves: tensorboard"))
    folder = tmp_path / "home" / "tb" / line.split("--logdir ")[1].split()[0].rsplit("/", 1)[1]

    def scalars(path, tag):
        acc = EventAccumulator(str(path))
        acc.Reload()
        return dict((e.step, e.value) for e in acc.Scalars(tag)), acc

    seeds = [scalars(folder / f"seed-{s}" / c, "train/loss")[0] for s in range(3) for c in ("small", "dropout")]
    mean, acc = scalars(folder / "mean" / "dropout", "diff/train_loss")
    low, _ = scalars(folder / "mean" / "dropout", "diff/train_loss_low")
    step = 5
    diffs = [seeds[2 * s + 1][step] - seeds[2 * s][step] for s in range(3)]
    assert mean[step] == pytest.approx(sum(diffs) / 3, abs=1e-5)
    expected = stats.t.interval(0.95, 2, loc=sum(diffs) / 3, scale=stats.sem(diffs))[0]
    assert low[step] == pytest.approx(expected, abs=1e-5)
    layout = EventAccumulator(str(folder / "mean" / "small"), size_guidance={"tensors": 0})
    layout.Reload()
    assert "custom_scalars__config__" in layout.Tags()["tensors"]  # the margin chart: mean and band
