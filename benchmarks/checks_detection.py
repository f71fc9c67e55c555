"""Detection matrix: every planted bug and every clean setup of tests/checks, through every check.

Prints, per case, the statuses that are not ``pass``/``skip``, whether the intended check caught the
planted bug, and the totals: planted bugs caught / planted, and false alarms (warn or fail) on
clean setups and on the demo's three candidates.

    PYTHONPATH=src python benchmarks/checks_detection.py
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import torch

import twinrun
from twinrun.examples import DIGITS

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "checks"))
from planted import CLEAN, PLANTED, kwargs_for


def main() -> None:
    torch.set_num_threads(1)  # as in the tests: tiny models, robust to a loaded machine
    warnings.filterwarnings("ignore", message="Using a target size")  # torch's, for the planted MSE broadcast
    caught = cross = 0
    false_alarms: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        print("planted bug                      intended check        status  other checks that alarmed")
        for name, case in PLANTED.items():
            report = twinrun.checks.run_checks(**kwargs_for(case), outdir=Path(tmp) / name)
            status = report[case.check].status
            hit = status in case.caught
            caught += hit
            others = {r.name: r.status for r in report.results if r.status in ("warn", "fail") and r.name != case.check}
            cross += sum(1 for k in others if k not in case.also)
            print(f"{name:32} {case.check:21} {status:6}{'' if hit else ' MISSED'}  "
                  + (", ".join(f"{k}={v}" for k, v in others.items()) or "-"))
        print()
        runs = [(f"clean:{n}", lambda c=c, n=n: twinrun.checks.run_checks(**kwargs_for(c), outdir=Path(tmp) / n))
                for n, c in CLEAN.items()]
        runs += [(f"demo:{c}", lambda c=c: twinrun.check(DIGITS, c, outdir=Path(tmp) / c)) for c in ("mlp", "cnn", "cnn_bn")]
        applicable = 0
        for label, run in runs:
            report = run()
            applicable += sum(r.status != "skip" for r in report.results)
            alarms = [f"{r.name}={r.status}" for r in report.results if r.status in ("warn", "fail")]
            false_alarms += [f"{label} {a}" for a in alarms]
            print(f"{label:34} {len(report.results) - report.counts['skip']:2} checks applied, "
                  f"alarms: {', '.join(alarms) or 'none'}")
    print()
    print(f"planted bugs caught by their check: {caught}/{len(PLANTED)} "
          f"(covering {len({c.check for c in PLANTED.values()})} of {len(twinrun.checks.check_names())} checks)")
    print(f"unexpected alarms on planted cases (outside the intended check and its declared co-detections): {cross}")
    print(f"false alarms on clean setups: {len(false_alarms)} of {applicable} applicable check runs "
          f"({len(runs)} setups)" + (": " + "; ".join(false_alarms) if false_alarms else ""))


if __name__ == "__main__":
    main()
