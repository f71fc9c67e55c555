from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import twinrun

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "experiments"))

TOY = HERE / "experiments" / "toy.py"


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory):
    """One cache folder for the session's tests (the demo's digits), never the user's ~/.cache."""
    previous = os.environ.get("TWINRUN_CACHE_DIR")
    os.environ["TWINRUN_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("TWINRUN_CACHE_DIR", None)
    else:
        os.environ["TWINRUN_CACHE_DIR"] = previous


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own TWINRUN_HOME and working directory; no env leaks between tests."""
    monkeypatch.setenv("TWINRUN_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    # subprocesses (`python -m twinrun ...`) import the very twinrun under test
    src = str(Path(twinrun.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])))


@pytest.fixture
def toy():
    import twinrun

    return twinrun.load_experiment(TOY)


@pytest.fixture
def one_thread():
    """torch at one thread for the test: where a claim is bit for bit against products that MKL splits between
    threads in its own way (see tests/test_layerwise.py)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
