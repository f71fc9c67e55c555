"""How many of twinrun's functions one ``twinrun.compare`` call visits, and in how many files.

    PYTHONPATH=src python tools/visited.py            # the toy experiment of the tests, 24 steps

The issue on architecture records it before and after a change: fewer functions
for the same work is a simpler path to read and to change.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "experiments"))


def main() -> None:
    import twinrun

    package = str(Path(twinrun.__file__).parent)
    seen: set[tuple[str, str]] = set()

    def tracer(frame, event, arg):  # sys.setprofile calls it so
        code = frame.f_code
        if event == "call" and code.co_filename.startswith(package) and "<" not in code.co_qualname:
            seen.add((code.co_filename, code.co_qualname))  # functions and methods, not comprehensions

    experiment = twinrun.load_experiment(ROOT / "tests" / "experiments" / "toy.py")
    with tempfile.TemporaryDirectory() as home:
        sys.setprofile(tracer)
        try:
            twinrun.compare(experiment, home=home, logdir=None, progress=False)
        finally:
            sys.setprofile(None)
    files = {f for f, _ in seen}
    print(f"one compare visits {len(seen)} twinrun functions in {len(files)} files")


if __name__ == "__main__":
    main()
