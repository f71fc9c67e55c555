"""A data-parallel twin on 2 ranks (``torchrun --standalone --nproc_per_node 2``, gloo, CPU) against one process.

Both train the same experiment (tests/experiments/parallel.py: two MLPs on the
toy blobs) with the same global batch; the figure is the ratio of the engine's
own time (``timing.total`` of the result: building excluded, process start-up
excluded) and of the wall time, interleaved (one, two, one, two...), medians of
the rounds with min..max, and the machine's load.

    python benchmarks/bench_distributed.py --rounds 3 --set steps=300 --set batch_size=64
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "tests" / "experiments" / "parallel.py"


def run(ranks: int, sets: list[str], home: Path) -> tuple[float, float]:
    launcher = ([shutil.which("torchrun", path=str(Path(sys.executable).parent)), "--standalone",
                 "--nproc_per_node", str(ranks)] if ranks > 1 else [sys.executable])
    env = {**os.environ, "PYTHONHASHSEED": "0",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests" / "experiments")])}
    args = [*launcher, "-m", "twinrun", "compare", str(EXPERIMENT), "--home", str(home), "-q",
            "--no-tensorboard", "--json", *[x for s in sets for x in ("--set", s)]]
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    return json.loads(done.stdout)["timing"]["total"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    load = os.getloadavg()
    engine, wall = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            one = run(1, args.set, Path(tmp) / f"one{r}")
            two = run(2, args.set, Path(tmp) / f"two{r}")
            engine.append(two[0] / one[0])
            wall.append(two[1] / one[1])
            print(f"round {r}: engine {one[0]:.2f} s vs {two[0]:.2f} s, wall {one[1]:.2f} s vs {two[1]:.2f} s",
                  flush=True)
    print(json.dumps({"engine_ratio": [statistics.median(engine), min(engine), max(engine)],
                      "wall_ratio": [statistics.median(wall), min(wall), max(wall)],
                      "load_before": load, "load_after": os.getloadavg(), "sets": args.set}))


if __name__ == "__main__":
    main()
