"""Seeds on a real multi-node Ray cluster (``ray.cluster_utils.Cluster``: node processes on this machine), with a
node lost mid-sweep: its seed runs again on another node, and the analysis equals an uninterrupted sweep's.

The registry has one writer, the sweep's process: the lost attempt recorded its run only in its node's own
registry, so the sweep's registry holds exactly one run per seed.
"""

from __future__ import annotations

import threading

import pytest
from _subprocess import wait_for
from conftest import HERE

from twinrun.registry import Registry
from twinrun.sweeps import Execution, run_sweep

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")]

SETTINGS = {"steps": 12, "eval_every": 6}
CANDIDATES = ["small", "wide"]
WAITING = HERE / "experiments" / "waiting.py"  # a seed that waits, mid-run, until the test lets it go on


def test_a_node_lost_mid_sweep_reruns_its_seed_elsewhere_and_the_analysis_is_unchanged(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason='ray is not installed: pip install "twinrun[ray]"')
    from ray.cluster_utils import Cluster

    gate = tmp_path / "gate"
    gate.mkdir()
    monkeypatch.setenv("TWINRUN_TEST_WAIT_DIR", str(gate))  # the nodes' processes inherit it

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        first = cluster.add_node(num_cpus=1)  # the only node with a CPU: the first seed starts there
        cluster.wait_for_nodes()
        out: dict[str, object] = {}

        def sweep() -> None:
            try:
                out["result"] = run_sweep(WAITING, seeds=3, execution=Execution("ray", address=cluster.address),
                                          candidates=CANDIDATES, overrides=SETTINGS, home=tmp_path / "ray",
                                          progress=False)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread below
                out["error"] = exc

        runner = threading.Thread(target=sweep)
        runner.start()
        wait_for(lambda: list(gate.glob("reached-*")), 180, "seed 0 to be mid-run on the first node")
        log = next(iter((tmp_path / "ray").glob("**/seeds/seed-0.log")))
        cluster.add_node(num_cpus=1)  # somewhere to go
        cluster.remove_node(first)  # lost, with seed 0 on it (held mid-run: it cannot have finished)
        (gate / "go").touch()
        runner.join(timeout=600)
        assert not runner.is_alive(), "the sweep did not end"
        if "error" in out:
            raise out["error"]  # type: ignore[misc]
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert log.read_text().count("--- seed 0,") == 2  # its first attempt died with the node: run again
    on_ray = out["result"]
    assert on_ray.status == "finished" and on_ray.finished == [0, 1, 2], on_ray.status
    local = run_sweep(WAITING, seeds=3, execution=Execution(jobs=1), candidates=CANDIDATES, overrides=SETTINGS,
                      home=tmp_path / "local", progress=False)
    for metric in ("loss", "accuracy"):  # the seeds' own results, hence every statistic, as without the loss
        assert on_ray.analysis["metrics"][metric]["candidates"] == local.analysis["metrics"][metric]["candidates"]
    assert on_ray.seeds[1].attempts == on_ray.seeds[2].attempts == 1  # the others ran once
    with Registry.open(on_ray.registry) as reg:  # one run per seed: the one the sweep counts
        runs = reg.list_runs(sweep_id=on_ray.sweep_id)
        assert sorted(r.seed for r in runs) == [0, 1, 2] and {r.status for r in runs} == {"finished"}
        assert {on_ray.seeds[s].run_id for s in (0, 1, 2)} == {r.id for r in runs}
