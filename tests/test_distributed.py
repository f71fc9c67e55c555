"""Data-parallel twins launched by real `torchrun --nproc_per_node 2` on the CPU (gloo)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _subprocess import HERE, child_env

import twinrun
from twinrun.cli import main as cli_main
from twinrun.engine import TwinEngine, detect_world
from twinrun.engine._distributed import World, shard
from twinrun.errors import ConfigError
from twinrun.ledger import Ledger, compare_runs, rank_ledgers
from twinrun.ledger._hash import tree_hash
from twinrun.registry import open_registry
from twinrun.spec import resolve

PARALLEL = HERE / "experiments" / "parallel.py"
TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent))
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")]


def _compare(home: Path, *extra: str, ranks: int | None = 2) -> subprocess.CompletedProcess[str]:
    launcher = [TORCHRUN, "--standalone", "--nproc_per_node", str(ranks)] if ranks else [sys.executable]
    args = [*launcher, "-m", "twinrun", "compare", str(PARALLEL), "--home", str(home), "-q", "--no-tensorboard",
            "--json", *extra]
    return subprocess.run(args, env=child_env(PYTHONHASHSEED="0", TWINRUN_DIST_TIMEOUT_S="60"),
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if TORCHRUN is None:
        pytest.skip("torchrun is not installed next to this Python")
    root = tmp_path_factory.mktemp("parallel")
    two, one = _compare(root / "two"), _compare(root / "one", ranks=None)
    assert two.returncode == 0, two.stderr[-3000:]
    assert one.returncode == 0, one.stderr[-3000:]
    return root, json.loads(two.stdout), json.loads(one.stdout)


def test_a_two_rank_twin_trains_as_one_process_on_the_whole_batch(runs):
    root, two, one = runs
    for name in ("small", "wide"):
        assert two["execution"][name] == "sequential, data-parallel over 2 ranks (DistributedDataParallel)"
        for metric in ("loss", "accuracy"):  # the stated tolerance: 1e-5 relative after 30 steps
            a, b = two["candidates"][name]["final"][metric], one["candidates"][name]["final"][metric]
            assert abs(a - b) <= 1e-5 * abs(b), (name, metric, a, b)
    with open_registry(root / "two" / "registry.sqlite") as reg, open_registry(root / "one" / "registry.sqlite") as ref:
        (run,) = reg.list_runs()  # rank 0 alone records
        (single,) = ref.list_runs()
        a = reg.metrics(run.id, split="train", name="loss")["wide"]["train"]["loss"]
        b = ref.metrics(single.id, split="train", name="loss")["wide"]["train"]["loss"]
        assert [s for s, _ in a] == list(range(1, 31))
        assert all(abs(x - y) <= 1e-5 * abs(y) for (_, x), (_, y) in zip(a, b))  # the mean over both shards


def test_a_two_rank_fsdp_twin_trains_as_one_process_and_resumes_its_shards_bit_for_bit(runs, tmp_path):
    _, _, one = runs
    fsdp = ("--set", "data_parallel=fsdp", "--set", "checkpoint_every=5")
    sharded = _compare(tmp_path / "fsdp", *fsdp)
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    out = json.loads(sharded.stdout)
    for name in ("small", "wide"):
        assert out["execution"][name] == (
            "sequential, data-parallel over 2 ranks (FullyShardedDataParallel, fully_shard)"
        )
        for metric in ("loss", "accuracy"):  # as DDP: the full batch's update, to 1e-5 relative after 30 steps
            a, b = out["candidates"][name]["final"][metric], one["candidates"][name]["final"][metric]
            assert abs(a - b) <= 1e-5 * abs(b), (name, metric, a, b)
    folder = Path(out["artifacts"]["run_dir"])
    shards = [Ledger.load(path) for path in rank_ledgers(folder).values()]
    weights = [{(r.step, r.candidate, r.name): r.hash for r in ledger.records if r.kind == "weights"} for ledger in shards]
    assert weights[0].keys() == weights[1].keys() and weights[0] != weights[1]  # each rank records its own shard
    args = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "twinrun", "compare", str(PARALLEL),
            "--home", str(tmp_path / "cut"), "-q", "--no-tensorboard", *fsdp]
    killed = subprocess.run(args, env=child_env(PYTHONHASHSEED="0", TWINRUN_DIST_TIMEOUT_S="60",
                                                TWINRUN_TEST_KILL_AT="13", TWINRUN_TEST_KILL_RANK="1"),
                            capture_output=True, text=True, timeout=240, check=False)
    assert killed.returncode != 0
    resumed = _compare(tmp_path / "cut", "--resume", "latest", *fsdp)  # each rank loads its shards of step 10
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = json.loads(resumed.stdout)
    for name in ("small", "wide"):
        assert again["candidates"][name]["final"] == out["candidates"][name]["final"], name  # bit for bit
    assert compare_runs(folder, again["artifacts"]["run_dir"]).identical


def test_replicas_under_torchrun_are_data_parallel_runs_recorded_as_one_sweep(tmp_path):
    if TORCHRUN is None:
        pytest.skip("torchrun is not installed next to this Python")
    two = _compare(tmp_path / "two", "--replicas", "2")
    assert two.returncode == 0, two.stderr[-3000:]
    one = _compare(tmp_path / "one", "--replicas", "2", ranks=None)
    assert one.returncode == 0, one.stderr[-3000:]
    finals = {}
    for name, home in (("two", tmp_path / "two"), ("one", tmp_path / "one")):
        with open_registry(home / "registry.sqlite") as reg:
            (sweep,) = reg.list_sweeps()
            runs = {r.seed: reg.get_run(r.id) for r in reg.list_runs(sweep_id=sweep.id)}
        assert len(runs) == 2 and {r.status for r in runs.values()} == {"finished"}  # rank 0 alone records
        finals[name] = {seed: run.result["candidates"] for seed, run in runs.items()}
        if name == "two":
            for run in runs.values():  # each replica is a data-parallel run: a ledger per rank
                assert list(rank_ledgers(home / "runs" / run.id)) == [0, 1]
    seeds = json.loads(two.stdout)["plan"]["seeds"]
    assert sorted(finals["two"]) == sorted(finals["one"]) == seeds and len(seeds) == 2
    for seed in seeds:  # each replica is the full batch's training, to the stated tolerance
        for candidate in ("small", "wide"):
            a = finals["two"][seed][candidate]["final"]["loss"]
            b = finals["one"][seed][candidate]["final"]["loss"]
            assert abs(a - b) <= 1e-5 * abs(b), (seed, candidate, a, b)


def test_every_rank_trains_on_its_shard_of_the_same_batches(runs):
    root, two, _ = runs
    folder = Path(two["artifacts"]["run_dir"])
    engine = TwinEngine(resolve(twinrun.load_experiment(PARALLEL)), measure_memory=False)
    for rank, ledger_path in ((0, folder / "ledger.jsonl"), (1, folder / "rank-1" / "ledger.jsonl")):
        ledger = Ledger.load(ledger_path)
        seen = {(r.step, r.candidate): r.hash for r in ledger.records if r.kind == "batch" and r.name == "inputs"}
        for step in (1, 2, 17, 30):
            batches, assignment = engine.prepared_batches(step)
            mine = shard(batches[assignment["small"]], World(rank, 2, rank))
            assert mine[0].shape[0] == 8
            assert seen[step, "small"] == seen[step, "wide"] == tree_hash(mine[0]), (rank, step)


def test_the_ranks_ledgers_are_compared_as_one_and_a_divergence_names_its_rank(runs, tmp_path, capsys):
    _, two, one = runs
    folder = Path(two["artifacts"]["run_dir"])
    assert list(rank_ledgers(folder)) == [0, 1]
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert cli_main(["ledger", str(folder), str(copy)]) == 0
    assert "bit-identical" in capsys.readouterr().out and compare_runs(folder, copy).ranks == 2
    # as if rank 1 alone had read another shard at step 7 (a sampler seeded from the wrong rank)
    path = copy / "rank-1" / "ledger.jsonl"
    lines = path.read_text().splitlines()
    rows = [json.loads(line) for line in lines[1:]]
    at = next(i for i, r in enumerate(rows) if r[:4] == [7, "small", "batch", "inputs"])
    rows[at][4] = "0" * len(rows[at][4])
    path.write_text("\n".join([lines[0], *(json.dumps(r) for r in rows)]) + "\n")
    comparison = compare_runs(folder, copy)
    assert comparison.divergence is not None and comparison.divergence.rank == 1
    assert comparison.divergence.key_tuple() == (7, "small", "batch", "inputs")
    assert cli_main(["ledger", str(folder), str(copy), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["divergence"]["rank"] == 1
    assert cli_main(["ledger", str(folder), str(copy)]) == 1
    assert "first divergence: rank 1 · step 7 · candidate small · batch · inputs" in capsys.readouterr().out
    assert cli_main(["ledger", str(folder), one["artifacts"]["run_dir"]]) == 2  # 2 ranks against 1
    assert "the same torchrun --nproc_per_node" in capsys.readouterr().err


def test_a_batch_that_does_not_split_over_the_ranks_is_refused_before_training(tmp_path):
    if TORCHRUN is None:
        pytest.skip("torchrun is not installed next to this Python")
    done = _compare(tmp_path / "odd", "--set", "batch_size=15")
    assert done.returncode != 0
    assert "batch_size=15 does not split over 2 ranks" in done.stderr
    assert "--set batch_size=14 or 16" in done.stderr
    with open_registry(tmp_path / "odd" / "registry.sqlite") as reg:
        assert reg.list_runs() == []  # refused before the run started


def test_fsdp_with_select_by_is_refused_before_any_model_is_wrapped():
    from twinrun.engine._distributed import spread_over_ranks

    settings = resolve(twinrun.load_experiment(PARALLEL), {"data_parallel": "fsdp", "select_by": "accuracy"}).settings
    with pytest.raises(ConfigError, match="best weights, which data_parallel=fsdp holds in shards") as info:
        spread_over_ranks([], settings, torch.device("cpu"), World(rank=0, size=2, local_rank=0))
    assert "data_parallel=ddp" in info.value.fix
    with pytest.raises(ConfigError, match="data_parallel='zero3' must be one of ddp, fsdp"):
        resolve(twinrun.load_experiment(PARALLEL), {"data_parallel": "zero3"})


@pytest.mark.parametrize(("environ", "match"), [
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not an integer"),
    ({"WORLD_SIZE": "2"}, "RANK=None"),
    ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK='2'"),
])
def test_a_malformed_launch_environment_is_named(environ, match):
    with pytest.raises(ConfigError, match=match):
        detect_world(environ)


def test_one_process_is_no_world():
    assert detect_world({}) is None and detect_world({"WORLD_SIZE": "1", "RANK": "0"}) is None
    assert detect_world({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}) == World(1, 2, 1)


def test_a_rank_killed_mid_step_ends_the_run_on_every_rank_without_a_hang(tmp_path):
    if TORCHRUN is None:
        pytest.skip("torchrun is not installed next to this Python")
    args = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "twinrun", "compare", str(PARALLEL),
            "--home", str(tmp_path), "-q", "--no-tensorboard"]
    env = child_env(PYTHONHASHSEED="0", TWINRUN_DIST_TIMEOUT_S="60", TWINRUN_TEST_KILL_AT="5",
                    TWINRUN_TEST_KILL_RANK="1")
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode != 0
    assert "rank      : 1" in done.stderr and "SIGKILL" in done.stderr  # torchrun names the rank that died
    with open_registry(tmp_path / "registry.sqlite") as reg:  # rank 0's run: not left "running"
        (run,) = reg.list_runs()
        assert run.status in ("crashed", "failed", "interrupted"), run.status  # as far as rank 0 got to say


def test_a_two_rank_twin_killed_on_one_rank_resumes_bit_for_bit(runs, tmp_path):
    if TORCHRUN is None:
        pytest.skip("torchrun is not installed next to this Python")
    whole = _compare(tmp_path / "whole", "--set", "checkpoint_every=5")
    assert whole.returncode == 0, whole.stderr[-3000:]
    args = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "twinrun", "compare", str(PARALLEL),
            "--home", str(tmp_path / "cut"), "-q", "--no-tensorboard", "--set", "checkpoint_every=5"]
    killed = subprocess.run(args, env=child_env(PYTHONHASHSEED="0", TWINRUN_DIST_TIMEOUT_S="60",
                                                TWINRUN_TEST_KILL_AT="13", TWINRUN_TEST_KILL_RANK="1"),
                            capture_output=True, text=True, timeout=240, check=False)
    assert killed.returncode != 0
    resumed = _compare(tmp_path / "cut", "--resume", "latest")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = json.loads(whole.stdout), json.loads(resumed.stdout)
    for name in ("small", "wide"):
        assert a["candidates"][name]["final"] == b["candidates"][name]["final"], name  # bit for bit
    merged = compare_runs(a["artifacts"]["run_dir"], b["artifacts"]["run_dir"])  # rank by rank
    assert merged.identical and merged.ranks == 2
    single = subprocess.run([sys.executable, "-m", "twinrun", "compare", str(PARALLEL), "--home",
                             str(tmp_path / "cut"), "-q", "--no-tensorboard", "--resume", "latest"],
                            env=child_env(PYTHONHASHSEED="0", OMP_NUM_THREADS="1"),  # torchrun's threads
                            capture_output=True, text=True, timeout=240, check=False)
    assert single.returncode != 0 and "resume with the same launch: torchrun --nproc_per_node 2" in single.stderr
