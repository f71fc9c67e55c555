"""Twin of N candidates against N separate runs, with an augmentation as costly as a step.

The alternative a user would pick without twinrun is to train each candidate in
its own run, augmenting every batch once per run. A twin run augments each
batch once for all candidates, so with an augmentation cost ``a`` and a
per-candidate step cost ``s`` the best possible time ratio is

    limit(N) = (a + N*s) / (N * (a + s))

This benchmark measures ``a`` and ``s`` from the separate runs themselves,
calibrates the augmentation so that ``a ≈ s``, and reports the measured ratio
twin / separate next to the limit. Target: within 5 % of the limit.

    python benchmarks/bench_twin.py            # N = 2, 4, 8; about 2 minutes on 2 cores
    python benchmarks/bench_twin.py --quick    # fewer steps, a smoke test
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

import twinrun
from twinrun.engine import TwinEngine
from twinrun.spec import resolve

FEATURES, CLASSES = 256, 10


def data(n_train: int = 4096, n_val: int = 256):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(FEATURES, CLASSES, generator=g)

    def sample(n: int):
        x = torch.randn(n, FEATURES, generator=g)
        return x, (x @ w).argmax(1)

    return sample(n_train), sample(n_val)


class Net(nn.Module):
    def __init__(self, hidden: int = 512) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def costly_augment(inputs, targets, *, generator, rounds: int = 4):
    """Random feature mixing, ``rounds`` times: cost grows linearly with ``rounds``."""
    x = inputs
    for _ in range(rounds):
        mix = torch.randn(FEATURES, FEATURES, generator=generator) / FEATURES**0.5
        x = torch.tanh(x @ mix) + inputs
    return x, targets


def experiment(n: int, rounds: int, steps: int) -> twinrun.Experiment:
    return twinrun.Experiment(
        name="bench",
        data=data,
        model=Net,
        optimizer=twinrun.factory(torch.optim.SGD, lr=0.01, momentum=0.9),
        loss=nn.CrossEntropyLoss,
        augment=twinrun.factory(costly_augment, rounds=rounds),
        candidates={f"c{i}": {"optimizer.lr": 0.01 * (1 + i / 10)} for i in range(n)},
        steps=steps, batch_size=128, eval_every=steps, seed=0, baselines=False,  # the engine alone
    )


def run(exp: twinrun.Experiment, candidates: list[str]) -> TwinEngine:
    engine = TwinEngine(resolve(exp, candidates=candidates), measure_memory=False)
    engine.run()
    return engine


def calibrate(steps: int) -> int:
    """The number of mixing rounds that makes one augmentation cost about one step."""
    probe = run(experiment(1, 4, steps), ["c0"])
    step = probe.step_seconds["c0"] / steps
    per_round = probe.timing["augment"] / steps / 4
    return max(1, round(step / per_round))


def measure(n: int, rounds: int, steps: int, repeats: int) -> dict[str, float]:
    exp = experiment(n, rounds, steps)
    names = list(exp.candidates)
    twin_times, separate_times, aug, step = [], [], [], []
    for _ in range(repeats):  # interleaved, so drifts of the machine hit both sides
        t0 = time.perf_counter()
        run(exp, names)
        twin_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for name in names:
            solo = run(exp, [name])
            aug.append((solo.timing["augment"] + solo.timing["data"]) / steps)
            step.append(solo.step_seconds[name] / steps)
        separate_times.append(time.perf_counter() - t0)
    a, s = statistics.median(aug), statistics.median(step)
    ratio = statistics.median(twin_times) / statistics.median(separate_times)
    limit = (a + n * s) / (n * (a + s))
    return {
        "candidates": n, "augment_ms": a * 1e3, "step_ms": s * 1e3,
        "twin_s": statistics.median(twin_times), "separate_s": statistics.median(separate_times),
        "ratio": ratio, "limit": limit, "excess_over_limit": ratio / limit - 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    steps, repeats = (40, 1) if args.quick else (120, 5)
    torch.set_num_threads(torch.get_num_threads())
    rounds = calibrate(steps)
    rows = [measure(n, rounds, steps, repeats) for n in (2, 4, 8)]
    if args.json:
        print(json.dumps({"rounds": rounds, "steps": steps, "repeats": repeats, "rows": rows}, indent=2))
        return
    print(f"augmentation rounds: {rounds}; {steps} steps; median of {repeats} interleaved repeats")
    print(f"{'N':>2}  {'aug ms':>7}  {'step ms':>7}  {'twin s':>7}  {'separate s':>10}  "
          f"{'ratio':>6}  {'limit':>6}  {'vs limit':>8}")
    for r in rows:
        print(f"{r['candidates']:>2}  {r['augment_ms']:7.2f}  {r['step_ms']:7.2f}  {r['twin_s']:7.2f}  "
              f"{r['separate_s']:10.2f}  {r['ratio']:6.3f}  {r['limit']:6.3f}  {r['excess_over_limit']:+8.1%}")


if __name__ == "__main__":
    main()
