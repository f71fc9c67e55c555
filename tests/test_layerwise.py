"""The layer-wise stacked forward: which models take it, and that it is vmap's forward bit for bit."""

from __future__ import annotations

import pytest
import torch
import vectorised as V  # tests/experiments is on the path (conftest.py)
from torch import nn

from twinrun.engine._layerwise import NotPlain, layerwise_forward
from twinrun.engine._vector_step import _batched_forward
from twinrun.examples.digits import SmallCNN

pytestmark = pytest.mark.filterwarnings("ignore::twinrun.ReproducibilityWarning")


class Functional(nn.Module):
    """A chain written with functional activations and ``torch.flatten``, as many repositories write it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(12, 16), nn.Linear(16, 16, bias=False), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        x = nn.functional.relu(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        return self.out(x)


class Chain(nn.Module):
    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(12, 16),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(16, 16),
            nn.SiLU(),
            nn.Linear(16, 3),
            nn.LogSoftmax(dim=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)
        self.b.weight = self.a.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


class Curious(nn.Module):
    """A forward that keeps what it saw: tracing must not leave a proxy on the user's model."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x
        return self.fc(x)


def _stacked(models: list[nn.Module]) -> dict[str, torch.Tensor]:
    names = [n for n, _ in models[0].named_parameters()]
    return {n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]).requires_grad_() for n in names}


def test_plain_chains_take_the_layerwise_forward_and_the_rest_keep_vmap():
    hooked = nn.Sequential(nn.Linear(8, 2))
    hooked.register_forward_hook(lambda *a: None)
    for model in (V.MLP(), Chain(), nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)), V.CNN(), SmallCNN()):
        assert layerwise_forward(model, shared_input=True) is not None, type(model).__name__
    strided = nn.Sequential(nn.Conv2d(1, 2, 3, padding="same"), nn.Flatten(), nn.Linear(128, 2))
    for model in (
        V.CNN(batchnorm=True),
        SmallCNN(batchnorm=True),
        V.Branchy(),
        Tied(),
        hooked,
        strided,
        nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)),
        nn.Sequential(nn.MaxPool2d(2, return_indices=True)),
        nn.Sequential(nn.Linear(4, 4), nn.Softmax()),
    ):  # a legacy softmax: its dim depends on the rank
        assert layerwise_forward(model, shared_input=True) is None, type(model).__name__


def test_tracing_leaves_the_users_model_as_it_was():
    model = Curious()
    before = dict(vars(model))
    assert layerwise_forward(model, shared_input=True) is not None
    assert vars(model) == before and not hasattr(model, "seen")


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("randomness", ["same", "different"])
@pytest.mark.parametrize("make", [Chain, Functional, lambda: V.MLP(features=12, classes=3)])
def test_outputs_gradients_and_dropout_masks_are_vmaps_bit_for_bit(shared, randomness, make):
    torch.manual_seed(0)
    models = [make() for _ in range(5)]
    x = torch.randn(7, 12) if shared else torch.randn(5, 7, 12)
    y = torch.randint(0, 3, (7,))
    results = []
    for fn in (layerwise_forward(models[0], shared, randomness), _batched_forward(models[0], shared, randomness)):
        assert fn is not None
        params = _stacked(models)
        torch.manual_seed(7)  # the step's dropout stream, as the engine isolates it
        out = fn(params, {}, x)
        nn.functional.cross_entropy(out.reshape(-1, 3), y.repeat(5)).backward()
        results.append((out.detach(), {n: p.grad for n, p in params.items()}))
    (a, grads_a), (b, grads_b) = results
    assert a.shape == b.shape == (5, 7, 3)
    assert torch.equal(a, b)
    assert grads_a.keys() == grads_b.keys() and all(torch.equal(grads_a[n], grads_b[n]) for n in grads_a)


@pytest.mark.parametrize("randomness", ["same", "different"])
def test_candidates_share_dropout_masks_and_replicas_draw_their_own(randomness):
    torch.manual_seed(0)
    model = Chain(dropout=0.5)
    out = layerwise_forward(model, True, randomness)(_stacked([model] * 3), {}, torch.randn(6, 12))
    assert torch.equal(out[0], out[1]) == (randomness == "same")


def test_each_member_is_its_own_model_alone_bit_for_bit(one_thread):
    # one thread: with two, MKL (AVX-512) splits a 9-row product between its threads, so even one model's
    # F.linear rounds otherwise than with one thread; the batched product is the same with either
    torch.manual_seed(1)
    models = [V.MLP(dropout=0.0) for _ in range(4)]
    x = torch.randn(9, 16)
    fn = layerwise_forward(models[0], shared_input=True)
    assert fn is not None
    out = fn(_stacked(models), {}, x)
    for k, model in enumerate(models):
        assert torch.equal(out[k], model(x))


@pytest.mark.parametrize("shared", [True, False])
def test_convolutions_run_grouped_with_vmaps_outputs_and_gradients_within_rounding(shared):
    torch.manual_seed(0)
    models = [SmallCNN(channels=4) for _ in range(3)]
    x = torch.randn(5, 1, 8, 8) if shared else torch.randn(3, 5, 1, 8, 8)
    results = []
    for fn in (layerwise_forward(models[0], shared), _batched_forward(models[0], shared, "same")):
        assert fn is not None
        params = _stacked(models)
        out = fn(params, {}, x)
        out.square().sum().backward()
        results.append((out.detach(), {n: p.grad for n, p in params.items()}))
    (a, grads_a), (b, grads_b) = results
    # each member's filters are its own model's; exact on AVX-512, but on an AVX2 CPU oneDNN's grouped and
    # single convolutions round in their own orders here (6e-8..9e-8 apart, vmap's as far from each model's)
    exact = torch.backends.cpu.get_cpu_capability() == "AVX512"
    tol = {"rtol": 0.0, "atol": 0.0} if exact else {"rtol": 1e-6, "atol": 1e-7}
    torch.testing.assert_close(a, b, **tol)
    for k, m in enumerate(models):
        torch.testing.assert_close(a[k], m(x if shared else x[k]), **tol)
    for name in grads_a:  # a grouped convolution's weight gradient sums in its own order
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-6)


def test_inputs_the_batched_form_cannot_take_are_said_so_for_vmap_to_take_over():
    models = [SmallCNN(channels=2) for _ in range(2)]
    fn = layerwise_forward(models[0], shared_input=True)
    with pytest.raises(NotPlain, match="conv1 takes 3-d input"):
        fn(_stacked(models), {}, torch.randn(1, 8, 8))  # one image without its batch dimension
    with pytest.raises(NotPlain, match="one tensor input"):
        fn(_stacked(models), {}, {"image": torch.randn(3, 1, 8, 8)})
