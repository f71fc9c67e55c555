"""Where batching pays: the per-step time of K same-architecture candidates, batched or one at a time.

For K = 2, 3, 4, 8 candidates (Adam, a learning rate each, digits, batch 64,
1 thread) this measures the marginal time of a training step (the difference
between runs of 250 and 50 steps, so building and evaluating cancel out) of

* ``vectorised``: ``executor="vectorised"`` (one ``vmap`` step for the group),
* ``sequential``: ``executor="sequential"`` (one at a time, fused updates),
* ``separate``: K bare PyTorch runs,

interleaved, median of 3. It is how ``auto``'s smallest batched group on the
CPU (4) was chosen.

    PYTHONPATH=src python benchmarks/bench_group_size.py mlp     # ~1 minute
    PYTHONPATH=src python benchmarks/bench_group_size.py cnn     # the demo's CNN, ~6 minutes
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
import bench_vectorised as B

import twinrun
from twinrun.engine import TwinEngine
from twinrun.spec import resolve


def twin(model_fn, n: int, steps: int, executor: str) -> None:
    exp = twinrun.Experiment(
        name="bench", data=lambda: B.DATA, model=model_fn, optimizer=twinrun.factory(torch.optim.Adam, lr=1e-3),
        loss=nn.CrossEntropyLoss, candidates={f"c{k}": {"optimizer.lr": B.LRS[k]} for k in range(n)},
        steps=steps, batch_size=64, eval_every=steps, ledger_every=None, executor=executor,
    )
    TwinEngine(resolve(exp), measure_memory=False).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=("mlp", "cnn"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = B.MLP if args.model == "mlp" else (lambda: B.SmallCNN(channels=16))
    print(f"{args.model}; load {os.getloadavg()[0]:.2f}; ms per step (marginal), ratio to separate runs")
    for n in (2, 3, 4, 8):
        times: dict[str, dict[int, list[float]]] = {}
        for _ in range(3):
            for steps in (50, 250):
                for name in ("vectorised", "sequential"):
                    start = time.perf_counter()
                    twin(model, n, steps, name)
                    times.setdefault(name, {}).setdefault(steps, []).append(time.perf_counter() - start)
                start = time.perf_counter()
                B.separate(model, n, steps, 0)
                times.setdefault("separate", {}).setdefault(steps, []).append(time.perf_counter() - start)
        per = {k: (statistics.median(v[250]) - statistics.median(v[50])) / 200 * 1e3 for k, v in times.items()}
        print(f"K={n}: " + "  ".join(f"{k} {v:.3f} ms" for k, v in per.items())
              + f"  vectorised/separate {per['vectorised'] / per['separate']:.2f}"
              + f"  sequential/separate {per['sequential'] / per['separate']:.2f}")


if __name__ == "__main__":
    main()
