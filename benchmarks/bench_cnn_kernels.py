"""How much of a CNN twin's time is kernels that batching cannot shrink.

torch.profiler over a twin run of N CNNs (the demo's, 16 channels) and N
separate bare runs, 1 thread, interleaved for ``--rounds`` rounds: the self time
of the convolution, max-pooling and ReLU kernels against each whole. The twin's
kernels alone, divided by the separate runs' whole time, bound what any
vectorised engine can reach on this CPU with these kernels. Medians of the
per-round ratios, with min..max.

    python benchmarks/bench_cnn_kernels.py            # N = 8, 100 steps, 5 rounds
    python benchmarks/bench_cnn_kernels.py --steps 300 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics

import bench_vectorised as bench
import torch
from torch.profiler import profile

KERNELS = (
    "aten::convolution_backward",
    "aten::mkldnn_convolution",
    "aten::max_pool2d_with_indices",
    "aten::max_pool2d_with_indices_backward",
    "aten::threshold_backward",
    "aten::clamp_min",
)


def kernel_time(fn, n: int, steps: int) -> tuple[float, float]:
    """(whole self time, the kernels' self time) in ms of ``fn``'s run of ``n`` CNNs."""
    with profile() as p:
        fn(_cnn, n, steps, 0)
    events = p.key_averages()
    whole = sum(e.self_cpu_time_total for e in events) / 1e3
    kernels = sum(e.self_cpu_time_total for e in events if e.key in KERNELS) / 1e3
    return whole, kernels


def _cnn() -> torch.nn.Module:
    return bench.SmallCNN(channels=16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8, help="candidates (default 8)")
    parser.add_argument("--steps", type=int, default=100, help="steps of each run (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench.twin(_cnn, args.n, 10, 0)  # warm-up
    bench.separate(_cnn, args.n, 10, 0)
    load = os.getloadavg()[0]
    ratios: dict[str, list[float]] = {"kernels": [], "whole": [], "twin share": [], "separate share": []}
    for r in range(args.rounds):
        order = [bench.twin, bench.separate] if r % 2 == 0 else [bench.separate, bench.twin]
        times = {fn.__name__: kernel_time(fn, args.n, args.steps) for fn in order}
        (twin_whole, twin_kernels), (separate_whole, separate_kernels) = times["twin"], times["separate"]
        ratios["kernels"].append(twin_kernels / separate_whole)
        ratios["whole"].append(twin_whole / separate_whole)
        ratios["twin share"].append(twin_kernels / twin_whole)
        ratios["separate share"].append(separate_kernels / separate_whole)
    print(f"{args.n} CNNs, {args.steps} steps, {args.rounds} interleaved rounds, 1 thread; load {load:.2f} -> "
          f"{os.getloadavg()[0]:.2f}")
    labels = {
        "kernels": "twin's conv/pool/relu kernels alone / separate's whole",
        "whole": "twin's whole / separate's whole (under the profiler)",
        "twin share": "the kernels' share of the twin",
        "separate share": "the kernels' share of separate runs",
    }
    for key, values in ratios.items():
        print(f"{labels[key]:56s} {statistics.median(values):.3f} ({min(values):.3f}..{max(values):.3f})")


if __name__ == "__main__":
    main()
