"""Metric logging overhead of the run registry, per training step.

The alternative a user would pick is no registry at all, so this benchmark
trains the same run with and without a :class:`RegistrySink` (interleaved
repeats, medians) and reports the time per step both ways. It also times the
sink's own work directly (every ``on_step_done`` / ``on_eval_done`` / flush
call), which is far less noisy than the difference of two wall-clock times on
a busy machine. The one-off cost of a run's start (environment capture, the
run row) is reported separately: it is paid once per run, not per step.

Cases, both on the bundled digits data:
  mlp    one small MLP, batch 64: the smallest step, the worst case for overhead
  demo   the demo's three candidates (MLP, CNN, CNN+BN) trained side by side

Target: logging overhead <= 2 % of the step.

    python benchmarks/bench_registry.py            # about 2 minutes on 2 cores
    python benchmarks/bench_registry.py --quick    # a smoke test
    python benchmarks/bench_registry.py --threads 1   # steadier on a busy machine
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import twinrun
from twinrun.engine import Sink, TwinEngine
from twinrun.examples import DIGITS
from twinrun.registry import Registry, RegistrySink


class Clock(Sink):
    """Times the training steps: from the end of the step-0 evaluation to the last step.

    It is the last sink, so the registry's work for every step falls inside the window.
    """

    def on_eval_done(self, event: Any) -> None:
        if event.step == 0:
            self.start = time.perf_counter()

    def on_step_done(self, event: Any) -> None:
        self.end = time.perf_counter()


class TimedRegistrySink(RegistrySink):
    """The real sink, with the time spent in its per-step work (flushes included) summed up."""

    spent = 0.0

    def on_step_done(self, event: Any) -> None:
        t0 = time.perf_counter()
        super().on_step_done(event)
        self.spent += time.perf_counter() - t0

    def on_run_started(self, event: Any) -> None:
        t0 = time.perf_counter()
        super().on_run_started(event)
        self.start_cost = time.perf_counter() - t0


def one_run(resolved: Any, registry: Registry | None) -> dict[str, float]:
    clock = Clock()
    sinks: list[Sink] = [clock]
    recorder = None
    if registry is not None:
        recorder = TimedRegistrySink(registry)
        sinks.insert(0, recorder)
    engine = TwinEngine(resolved, sinks=sinks, measure_memory=False)
    result = engine.run()
    steps = result.steps
    out = {"step_s": (clock.end - clock.start) / steps}
    if recorder is not None:
        out["sink_step_s"] = recorder.spent / steps
        out["start_s"] = recorder.start_cost
    return out


def bench(name: str, candidates: list[str], steps: int, repeats: int, folder: Path) -> dict[str, Any]:
    exp = twinrun.load_experiment(DIGITS)
    resolved = twinrun.spec.resolve(
        exp, {"steps": steps, "eval_every": steps, "batch_size": 64, "scheduler.total_steps": steps},
        candidates=candidates,
    )
    registry = Registry.open(folder / f"{name}.sqlite")
    one_run(resolved, None)  # warm-up: allocator, data, first-call costs
    off, on, direct, start = [], [], [], []
    for _ in range(repeats):
        off.append(one_run(resolved, None)["step_s"])
        measured = one_run(resolved, registry)
        on.append(measured["step_s"])
        direct.append(measured["sink_step_s"])
        start.append(measured["start_s"])
    rows_per_step = registry.count_metrics() / (repeats * steps)
    registry.close()
    base = statistics.median(off)
    return {
        "case": name, "candidates": candidates, "steps": steps, "repeats": repeats,
        "step_ms_without": base * 1e3, "step_ms_with": statistics.median(on) * 1e3,
        "overhead_wall_pct": (statistics.median(on) - base) / base * 100,
        "sink_us_per_step": statistics.median(direct) * 1e6,
        "overhead_direct_pct": statistics.median(direct) / base * 100,
        "rows_per_step": rows_per_step,
        "run_start_ms": statistics.median(start) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    scale = 0.2 if args.quick else 1.0
    repeats = 2 if args.quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        results = [
            bench("mlp", ["mlp"], int(2000 * scale), repeats, Path(tmp)),
            bench("demo", ["mlp", "cnn", "cnn_bn"], int(500 * scale), repeats, Path(tmp)),
        ]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'case':6} {'step (no registry)':>19} {'step (registry)':>16} {'wall overhead':>14} "
          f"{'sink time/step':>15} {'direct overhead':>16} {'rows/step':>10} {'run start':>10}")
    for r in results:
        print(f"{r['case']:6} {r['step_ms_without']:16.3f} ms {r['step_ms_with']:13.3f} ms "
              f"{r['overhead_wall_pct']:13.2f}% {r['sink_us_per_step']:12.1f} µs "
              f"{r['overhead_direct_pct']:15.2f}% {r['rows_per_step']:10.1f} {r['run_start_ms']:7.0f} ms")


if __name__ == "__main__":
    main()
