"""The demo's digits are kept on disk between processes, exactly, keyed by scikit-learn's version."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from _subprocess import child_env

CODE = ("import sys; from twinrun.examples.digits import load_digits_split; import torch; "
        "(x, y), (xv, yv) = load_digits_split(); "
        "torch.save((x, y, xv, yv), sys.argv[1]); print('sklearn' in sys.modules)")


def test_the_second_process_reads_the_digits_from_the_cache_without_importing_sklearn(tmp_path):
    import torch

    env = child_env(TWINRUN_CACHE_DIR=str(tmp_path / "cache"))
    first = subprocess.run([sys.executable, "-c", CODE, str(tmp_path / "a.pt")], env=env, capture_output=True,
                           text=True, timeout=300, check=True)
    second = subprocess.run([sys.executable, "-c", CODE, str(tmp_path / "b.pt")], env=env, capture_output=True,
                            text=True, timeout=300, check=True)
    assert first.stdout.strip() == "True" and second.stdout.strip() == "False"  # computed once, then read
    assert len(list((tmp_path / "cache").glob("digits-sklearn*.npz"))) == 1
    a, b = torch.load(tmp_path / "a.pt"), torch.load(tmp_path / "b.pt")
    assert all(torch.equal(u, v) for u, v in zip(a, b))  # the very same values


def test_an_unwritable_cache_is_no_error(tmp_path, monkeypatch):
    from twinrun.examples import _cache

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("TWINRUN_CACHE_DIR", str(blocked / "cache"))
    out = _cache.cached_arrays("k", lambda: {"a": np.arange(3)})
    assert out["a"].tolist() == [0, 1, 2]
