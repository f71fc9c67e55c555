"""The dropout stream of a step seeds Python's and NumPy's generators only for a model seen drawing from them."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch

from twinrun.engine._executor import DrawTracker, StepContext
from twinrun.rng import RngStreams

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")


@pytest.fixture
def global_generators():
    """The test moves NumPy's and Python's global generators: they are given back afterwards."""
    saved = np.random.get_state(), random.getstate(), torch.get_rng_state()
    yield
    np.random.set_state(saved[0])
    random.setstate(saved[1])
    torch.set_rng_state(saved[2])


def test_torch_draws_come_from_the_steps_stream_and_leave_the_global_generator_as_it_was(global_generators):
    tracker, context = DrawTracker(), StepContext(RngStreams(3), (), {}, None)
    torch.manual_seed(11)
    before = torch.get_rng_state()
    draws = []
    for _ in range(2):  # the probed first step, then the known key's plain stream
        for step in (1, 2):
            with tracker.isolated("model", step, context):
                draws.append(torch.rand(3))
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(draws[0], draws[2]) and torch.equal(draws[1], draws[3])
    assert not torch.equal(draws[0], draws[1])


def test_a_key_caught_drawing_from_numpy_at_a_later_probe_is_seeded_from_then_on_with_a_warning(global_generators):
    tracker, context = DrawTracker(every=2), StepContext(RngStreams(3), (), {}, None)
    with tracker.isolated("model", 1, context):  # probed: draws nothing from NumPy
        torch.rand(1)
    np.random.seed(5)
    with tracker.isolated("model", 2, context):  # not probed again yet: NumPy's generator is the user's
        unseeded = np.random.rand()
    np.random.seed(5)
    assert unseeded == np.random.rand()
    with pytest.warns(RuntimeWarning, match=r"drew from Python's or NumPy's global generator at step 3 but not at step 1"):
        with tracker.isolated("model", 3, context):
            np.random.rand()
    state = np.random.get_state()[1].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        seeded = []
        for _ in range(2):
            with tracker.isolated("model", 4, context):
                seeded.append(np.random.rand())
    assert seeded[0] == seeded[1] != unseeded  # the step's stream, every time
    assert np.array_equal(np.random.get_state()[1], state)  # and the user's generator as it was
