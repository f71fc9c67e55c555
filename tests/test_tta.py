"""Test-time augmentation: the same augmented validation passes for every candidate, evaluation and run."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import twinrun
from twinrun.engine import TwinEngine
from twinrun.errors import DataError
from twinrun.spec import resolve


def noise(inputs, targets, *, generator, scale: float = 0.5):
    return inputs + scale * torch.randn(inputs.shape, generator=generator), targets


def crop(inputs, targets, *, generator):
    return inputs[:, :4], targets


def relabel(inputs, targets, *, generator):
    return inputs, (targets + 1) % 3


@pytest.fixture
def tta(on_disk):
    _, module = on_disk
    return module.experiment.replace(eval_augment=twinrun.factory(noise), eval_passes=3)


@pytest.fixture
def on_disk(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x=rng.normal(size=(220, 8)).astype(np.float32), y=rng.integers(0, 3, 220))
    monkeypatch.setenv("TWINRUN_TEST_DATA", str(path))
    import on_disk as module

    return path, module


def _seen_in_eval(engine):
    """Every candidate's eval-mode inputs, hashed, in the order it saw them."""
    seen = {name: [] for name in engine.states}
    for name, state in engine.states.items():
        def hook(module, args, name=name):
            if not module.training:
                seen[name].append(hashlib.sha256(args[0].detach().numpy().tobytes()).hexdigest())
        state.model.register_forward_pre_hook(hook)
    return seen


def test_every_candidate_and_evaluation_sees_the_same_augmented_passes(tta):
    engine = TwinEngine(resolve(tta))
    seen = _seen_in_eval(engine)
    result = engine.run()
    per_eval = 2 * 3  # 60 validation examples in batches of 32, 3 passes each
    assert len(seen["small"]) == 3 * per_eval  # evaluations at steps 0, 3 and 6
    evaluations = [seen["small"][i:i + per_eval] for i in range(0, len(seen["small"]), per_eval)]
    assert all(e == evaluations[0] for e in evaluations) and seen["wide"] == seen["small"]
    assert len(set(evaluations[0])) == per_eval  # every pass is its own draw
    # the prediction is the mean over the passes; the loss is computed on it
    model = engine.states["small"].model.eval()
    with torch.no_grad():
        mean = torch.stack([model(x) for x, _ in engine.val.views[0]]).mean(0)
    targets = engine.val.batches[0][1]
    expected = torch.nn.functional.cross_entropy(mean, targets, reduction="none").numpy()
    assert np.allclose(result.candidates["small"].per_example["loss"][:32], expected, atol=1e-6)
    assert result.to_dict()["candidates"]["small"]["final"]["loss"] == pytest.approx(
        float(result.candidates["small"].per_example["loss"].mean()), rel=1e-9)


def test_the_passes_are_a_function_of_the_seed(tta):
    def views(exp):
        return [[x for x, _ in row] for row in TwinEngine(resolve(exp)).val.views]

    a, b, other = views(tta), views(tta), views(tta.replace(seed=7))
    assert all(torch.equal(x, y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
    assert not torch.equal(a[0][0], other[0][0])
    plain = TwinEngine(resolve(tta.replace(eval_augment=None)))
    assert plain.val.views is None


@pytest.mark.parametrize("fn,match", [(crop, r"changed the shape of val batch 0 from \(32, 8\) to \(32, 4\)"),
                                      (relabel, "changed the targets of val batch 0")])
def test_an_eval_augment_that_changes_shapes_or_targets_is_refused(on_disk, fn, match):
    _, module = on_disk
    with pytest.raises(DataError, match=match):
        TwinEngine(resolve(module.experiment.replace(eval_augment=twinrun.factory(fn))))


def test_eval_augment_is_shared_and_overridable(tta):
    r = resolve(tta, {"eval_augment.scale": 0.1, "eval_passes": 2})
    assert r.eval_augment.kwargs == {"scale": 0.1} and r.settings.eval_passes == 2
    assert r.to_config()["eval_augment"]["kwargs"] == {"scale": 0.1}
    with pytest.raises(twinrun.ConfigError, match="cannot be overridden per candidate"):
        resolve(tta, {"wide:eval_augment.scale": 0.1})
