"""The GPU truths of the speed and distributed issues, as one short script for a machine that has a GPU.

    python benchmarks/gpu_truths.py                  # on cuda, about 4 minutes; prints JSON
    python benchmarks/gpu_truths.py --device cpu     # a dry run of the same script here

What it measures, on the demo's digits experiment (the MLP and the CNN):

1. twin = solo: both candidates trained as twins (``executor=sequential``,
   ``deterministic=True``) against each trained alone: final metrics equal?
2. determinism: two ``deterministic=True`` runs compared by their ledgers
   (identical?), and two runs without it (which record, if any, parts first).
3. the vectorised executor against the sequential one on the device (8 MLPs,
   time ratio, and the final losses' largest relative difference).
4. the cost of deterministic mode on the CNN: interleaved rounds, median ratio.
5. candidates spread over devices in one process (``devices``): two MLPs on
   ``cuda:0,cuda:1`` (or ``cuda:0,cpu`` with one GPU; ``cpu,cpu:0`` in a dry
   run), each against itself trained alone on its device (final metrics
   equal?), and the time against both on the first device, interleaved.
6. a step queued whole (``deferred``, the default on a GPU) against one that
   reads each loss before its update: 8 MLPs one at a time, final losses
   equal?, the host synchronisations counted in one step of each
   (``torch.cuda.set_sync_debug_mode``), and the time, interleaved.
7. the CUDA-only tests of the suite (twin = solo on CUDA, CUDA generator
   states, the GPU snapshot), run with pytest.

Every run is in a temporary home with no registry; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import twinrun
from twinrun.examples.digits import experiment as DIGITS
from twinrun.ledger import compare_runs

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = ["mlp", "cnn"]


def _run(home: Path, candidates: list[str], **settings: Any) -> twinrun.TwinResult:
    return twinrun.compare(DIGITS, candidates=candidates, overrides=settings, home=home, registry=False,
                           logdir=None, progress=False)


def _finals(result: Any) -> dict[str, dict[str, float]]:
    return {name: dict(c.final) for name, c in result.candidates.items()}


def twin_equals_solo(home: Path, device: str, steps: int) -> dict[str, Any]:
    settings = {"device": device, "steps": steps, "executor": "sequential", "deterministic": True,
                "baselines": False}
    twin = _finals(_run(home / "twin", CANDIDATES, **settings))
    solo = {name: _finals(_run(home / f"solo-{name}", [name], **settings))[name] for name in CANDIDATES}
    return {"equal": twin == solo, "twin": twin, "solo": solo}


def determinism(home: Path, device: str, steps: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in (True, False):
        runs = [_run(home / f"det-{mode}-{i}", CANDIDATES, device=device, steps=steps, deterministic=mode,
                     ledger_every=10, baselines=False) for i in range(2)]
        comparison = compare_runs(*(r.artifacts["run_dir"] for r in runs))
        divergence = comparison.divergence
        out["deterministic" if mode else "default"] = {
            "identical": comparison.identical,
            "first_divergence": None if divergence is None else divergence.describe(),
        }
    return out


def vectorised(home: Path, device: str, steps: int) -> dict[str, Any]:
    candidates = {f"m{k}": {"optimizer.lr": 1e-3 * (1 + k)} for k in range(8)}
    exp = DIGITS.replace(candidates=candidates)
    times: dict[str, list[float]] = {"vectorised": [], "sequential": []}
    losses: dict[str, dict[str, float]] = {}
    for r in range(3):
        for kind in ("vectorised", "sequential") if r % 2 == 0 else ("sequential", "vectorised"):
            start = time.perf_counter()
            result = twinrun.compare(exp, overrides={"device": device, "steps": steps, "executor": kind,
                                                     "baselines": False, "ledger_every": None},
                                     home=home / f"vec-{kind}-{r}", registry=False, logdir=None, progress=False)
            times[kind].append(time.perf_counter() - start)
            losses[kind] = {n: c.final["loss"] for n, c in result.candidates.items()}
    worst = max(abs(losses["vectorised"][n] - losses["sequential"][n]) / abs(losses["sequential"][n])
                for n in candidates)
    ratios = [v / s for v, s in zip(times["vectorised"], times["sequential"])]
    return {"vectorised/sequential": statistics.median(ratios), "ratios": ratios,
            "largest_relative_loss_difference": worst}


def deterministic_cost(home: Path, device: str, steps: int, rounds: int) -> dict[str, Any]:
    times: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds):
        for mode in (True, False) if r % 2 == 0 else (False, True):
            start = time.perf_counter()
            _run(home / f"cost-{mode}-{r}", ["cnn"], device=device, steps=steps, deterministic=mode, baselines=False)
            times[mode].append(time.perf_counter() - start)
    ratios = [a / b for a, b in zip(times[True], times[False])]
    return {"deterministic/default": statistics.median(ratios), "ratios": ratios}


def spread(home: Path, device: str, steps: int, rounds: int) -> dict[str, Any]:
    if device.startswith("cuda"):
        devices = ["cuda:0", "cuda:1"] if torch.cuda.device_count() > 1 else ["cuda:0", "cpu"]
    else:
        devices = ["cpu", "cpu:0"]
    exp = DIGITS.replace(augment=None, candidates={"a": {"model.dropout": 0.0},
                                                   "b": {"model.dropout": 0.0, "optimizer.lr": 3e-3}})
    settings = {"steps": steps, "executor": "sequential", "deterministic": True, "baselines": False,
                "ledger_every": None}

    def run(name: str, candidates: list[str] | None = None, **more: Any) -> twinrun.TwinResult:
        return twinrun.compare(exp, candidates=candidates, overrides={**settings, **more}, home=home / name,
                               registry=False, logdir=None, progress=False)

    together = run("spread", devices=",".join(devices))
    alone = {n: _finals(run(f"alone-{n}", [n], device=d))[n] for n, d in zip("ab", devices)}
    times: dict[str, list[float]] = {"spread": [], "one device": []}
    for r in range(rounds):
        for kind in ("spread", "one device") if r % 2 == 0 else ("one device", "spread"):
            start = time.perf_counter()
            run(f"time-{kind}-{r}", **({"devices": ",".join(devices)} if kind == "spread" else {"device": devices[0]}))
            times[kind].append(time.perf_counter() - start)
    ratios = [a / b for a, b in zip(times["spread"], times["one device"])]
    return {"devices": devices, "equal_to_alone": _finals(together) == alone, "execution": together.execution,
            "spread/one device": statistics.median(ratios), "ratios": ratios}


def queued(device: str, steps: int, rounds: int) -> dict[str, Any]:
    import warnings

    from twinrun.engine import SequentialExecutor, TwinEngine
    from twinrun.engine._drive import drive
    from twinrun.spec import resolve

    exp = DIGITS.replace(candidates={f"m{k}": {"optimizer.lr": 1e-3 * (1 + k)} for k in range(8)}, device=device,
                         steps=steps, executor="sequential", baselines=False, ledger_every=None)

    def train(deferred: bool) -> tuple[float, dict[str, float]]:
        engine = TwinEngine(resolve(exp), measure_memory=False, executor=SequentialExecutor(deferred=deferred))
        start = time.perf_counter()
        result = engine.run()
        return time.perf_counter() - start, {n: c.final["loss"] for n, c in result.candidates.items()}

    def syncs(deferred: bool) -> int | None:
        if not device.startswith("cuda"):
            return None
        engine = TwinEngine(resolve(exp.replace(steps=3)), measure_memory=False,
                            executor=SequentialExecutor(deferred=deferred))
        drive(engine._train_one_step())  # the first step binds the flat updates: not counted
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                drive(engine._train_one_step())
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)

    times: dict[bool, list[float]] = {True: [], False: []}
    finals: dict[bool, dict[str, float]] = {}
    for r in range(rounds):
        for deferred in (True, False) if r % 2 == 0 else (False, True):
            seconds, finals[deferred] = train(deferred)
            times[deferred].append(seconds)
    ratios = [a / b for a, b in zip(times[True], times[False])]
    return {"equal": finals[True] == finals[False], "queued/read first": statistics.median(ratios),
            "ratios": ratios, "syncs_in_one_step": {"queued": syncs(True), "read first": syncs(False)}}


def cuda_tests() -> dict[str, Any]:
    tests = ["tests/test_twin_engine.py::test_twin_equals_solo_on_cuda", "tests/test_seeding.py",
             "tests/test_gpu_snapshot.py"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", *tests], cwd=ROOT, capture_output=True,
                          text=True, check=False, env=None)
    return {"returncode": done.returncode, "summary": done.stdout.strip().splitlines()[-1:]}


def missing_device() -> dict[str, Any]:
    """A device index past the last visible one is refused before training, naming the ones there are."""
    from twinrun.engine import resolve_device
    from twinrun.errors import ConfigError

    try:
        resolve_device(f"cuda:{torch.cuda.device_count()}")
    except ConfigError as err:
        return {"refused": True, "message": err.message, "fix": err.fix}
    return {"refused": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-tests", action="store_true", help="leave out the CUDA-only tests of the suite")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: pass --device cpu for a dry run")
    report: dict[str, Any] = {"device": args.device, "torch": torch.__version__,
                              "name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"}
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        report["twin_equals_solo"] = twin_equals_solo(home, args.device, args.steps)
        report["determinism"] = determinism(home, args.device, args.steps)
        report["vectorised"] = vectorised(home, args.device, args.steps)
        report["deterministic_cost"] = deterministic_cost(home, args.device, args.steps, args.rounds)
        report["spread"] = spread(home, args.device, args.steps, 3)
        report["queued"] = queued(args.device, args.steps, 3)
    if args.device.startswith("cuda"):
        report["missing_device"] = missing_device()
    if not args.skip_tests:
        report["cuda_tests"] = cuda_tests()
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
