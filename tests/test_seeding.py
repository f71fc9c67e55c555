"""seed_everything, named streams and deterministic mode."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from _subprocess import child_env

import twinrun
from twinrun.errors import ConfigError, ReproducibilityWarning
from twinrun.rng import (
    CUBLAS_ENV,
    RngStreams,
    capture_global_rng,
    determinism_settings,
    global_rng_digest,
    hash_seed_is_fixed,
    restore_global_rng,
)


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


@pytest.fixture(autouse=True)
def _keep_globals(monkeypatch):
    """These tests seed the global generators on purpose: put them back afterwards."""
    monkeypatch.delenv("TWINRUN_SEED", raising=False)
    state = capture_global_rng()
    yield
    restore_global_rng(state)


def test_same_seed_same_draws_different_seed_different_draws(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    assert twinrun.seed_everything(7) == 7
    first = _draws()
    twinrun.seed_everything(7)
    assert _draws() == first
    twinrun.seed_everything(8)
    other = _draws()
    assert all(a != b for a, b in zip(first, other))
    assert os.environ["TWINRUN_SEED"] == "8"


def test_large_seeds_do_not_collide_in_numpy(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    twinrun.seed_everything(5)
    low = np.random.rand()
    twinrun.seed_everything(5 + 2**32)  # same low 32 bits: a naive `seed % 2**32` would collide
    assert np.random.rand() != low


def test_seed_reaches_child_processes(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    twinrun.seed_everything(123)
    expected = _draws()
    code = "import json, random, numpy, torch, twinrun; s = twinrun.seed_everything(); " \
           "print(json.dumps([s, random.random(), float(numpy.random.rand()), float(torch.rand(1))]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=child_env(), timeout=120).stdout
    seed, *draws = json.loads(out)
    assert seed == 123 and tuple(draws) == expected


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "", str(2**63)])
def test_invalid_seed_in_environment_names_the_value(monkeypatch, bad):
    monkeypatch.setenv("TWINRUN_SEED", bad)
    with pytest.raises(ConfigError) as info:
        twinrun.seed_everything()
    assert repr(bad) in info.value.message and "TWINRUN_SEED" in info.value.fix


def test_fresh_seed_is_returned_and_announced(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    with pytest.warns(ReproducibilityWarning, match="drew a fresh seed") as record:
        seed = twinrun.seed_everything()
    assert str(seed) in str(record[0].message)
    first = _draws()
    twinrun.seed_everything(seed)
    assert _draws() == first


def test_warns_when_hash_seed_is_not_fixed(monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    monkeypatch.setattr("twinrun.rng._seed._warned_hash_seed", False)  # it warns once per process
    with pytest.warns(ReproducibilityWarning, match="PYTHONHASHSEED"):
        twinrun.seed_everything(0)
    monkeypatch.setenv("PYTHONHASHSEED", "random")
    assert not hash_seed_is_fixed()
    monkeypatch.setenv("PYTHONHASHSEED", "17")
    assert hash_seed_is_fixed()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twinrun.seed_everything(0)


def test_adding_a_user_stream_never_shifts_another():
    streams = RngStreams(11)
    before = torch.rand(5, generator=streams.torch("augment", 3))
    np_before = streams.numpy("data_order", 0).random(3)
    for name in ("my_mixup", "my_sampler", "another"):  # users name streams of their own
        torch.rand(100, generator=streams.torch(name, 3))
        streams.numpy(name, 0).random(50)
    assert torch.equal(torch.rand(5, generator=streams.torch("augment", 3)), before)
    assert np.array_equal(streams.numpy("data_order", 0).random(3), np_before)
    # and a user stream is as isolated as twinrun's own: distinct from every other
    mine = torch.rand(5, generator=streams.torch("my_mixup", 3))
    assert not torch.equal(mine, before)
    assert torch.equal(mine, torch.rand(5, generator=RngStreams(11).torch("my_mixup", 3)))


def test_global_rng_capture_restore_and_digest():
    state = capture_global_rng()
    digest = global_rng_digest()
    first = _draws()
    assert global_rng_digest() != digest  # drawing moves every generator
    restore_global_rng(state)
    assert global_rng_digest() == digest
    assert _draws() == first


def test_deterministic_mode_as_context_restores_everything(monkeypatch):
    monkeypatch.delenv(CUBLAS_ENV, raising=False)
    before = determinism_settings()
    with twinrun.deterministic_mode() as mode:
        inside = determinism_settings()
        assert inside["deterministic_algorithms"] and inside["cudnn_deterministic"]
        assert inside["cudnn_benchmark"] is False
        assert os.environ[CUBLAS_ENV] == ":4096:8"  # CUDA is not initialised here
        assert mode.cublas_ready
    assert determinism_settings() == before
    assert CUBLAS_ENV not in os.environ


def test_deterministic_mode_as_function_stays_until_restored(monkeypatch):
    monkeypatch.delenv(CUBLAS_ENV, raising=False)
    mode = twinrun.deterministic_mode()
    try:
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        mode.restore()
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cublas_too_late_warns_with_the_fix(monkeypatch):  # pragma: no cover - GPU only
    monkeypatch.delenv(CUBLAS_ENV, raising=False)
    torch.zeros(1, device="cuda")  # initialises CUDA
    with pytest.warns(ReproducibilityWarning, match=r"CUBLAS_WORKSPACE_CONFIG=:4096:8"), \
            twinrun.deterministic_mode():
        pass


def test_engine_runs_deterministic_mode_and_restores(toy):
    from twinrun.engine import TwinEngine
    from twinrun.ledger import LedgerSink, compare_ledgers
    from twinrun.spec import resolve

    before = determinism_settings()
    sinks = {flag: LedgerSink() for flag in (False, True)}
    results = {}
    for flag, sink in sinks.items():
        exp = toy.replace(candidates={"d": {"model.dropout": 0.5}}, steps=10, deterministic=flag)
        results[flag] = TwinEngine(resolve(exp), sinks=[sink]).run()
    assert results[True].reproducibility["switches"]["deterministic_algorithms"] is True
    assert results[False].reproducibility["switches"]["deterministic_algorithms"] is False
    assert determinism_settings()["deterministic_algorithms"] == before["deterministic_algorithms"]
    # on the CPU the deterministic kernels are the usual ones: the ledgers agree bit for bit
    assert compare_ledgers(sinks[False].ledger, sinks[True].ledger).identical


def test_determinism_cost_is_measured_on_copies(toy):
    from twinrun.ledger import Ledger, compare_ledgers

    exp = toy.replace(candidates={"d": {"model.dropout": 0.5}, "m": {}}, steps=8)
    plain = twinrun.compare(exp, logdir=None, progress=False)
    measured = twinrun.compare(exp, logdir=None, progress=False, determinism_cost=True)
    cost = measured.reproducibility["determinism_cost"]
    assert cost["steps"] == 5 and cost["repeats"] == 3
    assert cost["seconds_off"] > 0 and cost["seconds_on"] > 0
    assert cost["relative"] == pytest.approx(cost["seconds_on"] / cost["seconds_off"] - 1)
    a, b = Ledger.load(plain.artifacts["ledger"]), Ledger.load(measured.artifacts["ledger"])
    assert compare_ledgers(a, b).identical  # the run itself is untouched
