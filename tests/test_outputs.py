"""Models that return structures: a GPT's (logits, loss), an RNN's (logits, hidden), a VAE's (recon, mu, logvar),
dicts and dataclasses. The loss gets what the model returns when it accepts it, metrics and ensembles the prediction."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import twinrun
from twinrun.engine import TwinEngine
from twinrun.engine._outputs import loss_input, prediction
from twinrun.spec import resolve

VOCAB, T = 12, 8

# attention has no vmap batching rule on the CPU yet: torch says so (and falls back to a loop)
pytestmark = pytest.mark.filterwarnings("ignore:There is a performance drop because we have not yet implemented")


def tokens(n_train: int = 256, n_val: int = 64):
    g = torch.Generator().manual_seed(0)
    start = torch.randint(0, VOCAB, (n_train + n_val, 1), generator=g)
    seq = (start + torch.arange(T + 1)) % VOCAB  # a counting language: next token = this + 1
    x, y = seq[:, :-1], seq[:, 1:]
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


class TinyGPT(nn.Module):
    """The usual shape: token + position embeddings, a causal block, an LM head tied to the embedding,
    ``forward(idx, targets=None) -> (logits, loss)``."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.tok = nn.Embedding(VOCAB, dim)
        self.pos = nn.Parameter(torch.zeros(1, T, dim))
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.head = nn.Linear(dim, VOCAB, bias=False)
        self.head.weight = self.tok.weight  # weight tying
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1), persistent=False)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.tok(idx) + self.pos[:, : idx.shape[1]]
        x = x + self.attn(x, x, x, attn_mask=self.mask, need_weights=False)[0]
        x = x + self.mlp(x)
        logits = self.head(x)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def lm_loss(logits, targets):
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def token_accuracy(logits, targets):
    return (logits.argmax(-1) == targets).float().mean(dim=1)


def warmup_cosine(optimizer, warmup: int = 5, total: int = 40):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))


def gpt_experiment(**settings) -> twinrun.Experiment:
    return twinrun.Experiment(
        name="gpt", data=tokens, model=TinyGPT, optimizer=twinrun.factory(torch.optim.AdamW, lr=3e-3),
        scheduler=warmup_cosine, loss=lm_loss,
        metrics={"token_accuracy": twinrun.Metric(token_accuracy, higher_is_better=True, bounds=(0.0, 1.0))},
        candidates={"a": {}, "b": {"optimizer.lr": 5e-3}, "c": {"optimizer.lr": 2e-3}, "d": {"optimizer.lr": 1e-3}},
        steps=40, batch_size=32, eval_every=20, **settings,
    )


@pytest.mark.parametrize("executor", ["sequential", "vectorised"])
def test_a_gpt_returning_logits_and_loss_trains_evaluates_and_keeps_its_logits(executor):
    result = TwinEngine(resolve(gpt_experiment(executor=executor)), measure_memory=False).run()
    a = result.candidates["a"]
    assert a.status == "finished"
    assert a.train_loss[-5:].mean() < a.train_loss[:5].mean()
    assert a.outputs.shape == (64, T, VOCAB)  # the prediction (logits) is what is kept for ensembles
    assert 0.0 <= a.final["token_accuracy"] <= 1.0
    assert result.execution["a"].startswith("vectorised" if executor == "vectorised" else "sequential")


def test_gpt_vectorised_agrees_with_sequential():
    seq = TwinEngine(resolve(gpt_experiment(executor="sequential")), measure_memory=False).run()
    vec = TwinEngine(resolve(gpt_experiment(executor="vectorised")), measure_memory=False).run()
    for name in "abcd":
        a, b = seq.candidates[name].train_loss, vec.candidates[name].train_loss
        assert np.max(np.abs(a - b) / a) < 1e-4, name


class VAE(nn.Module):
    def __init__(self, features: int = 16, z: int = 4) -> None:
        super().__init__()
        self.enc = nn.Linear(features, 2 * z)
        self.dec = nn.Linear(z, features)

    def forward(self, x):
        mu, logvar = self.enc(x).chunk(2, dim=-1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return torch.sigmoid(self.dec(z)), mu, logvar


def vae_loss(out, x):
    recon, mu, logvar = out
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + kl) / x.shape[0]


def bits(n: int = 128):
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(n, 16, generator=g) > 0.5).float()
    return (x[: n // 2], x[: n // 2]), (x[n // 2 :], x[n // 2 :])


def test_a_vae_loss_gets_all_three_outputs_and_evaluates_per_example():
    exp = twinrun.Experiment(name="vae", data=bits, model=VAE, optimizer=twinrun.factory(torch.optim.Adam, lr=1e-2),
                             loss=vae_loss, steps=30, batch_size=16, eval_every=30)
    engine = TwinEngine(resolve(exp), measure_memory=False)
    result = engine.run()
    state = engine.states["base"]
    assert state.loss_takes == "outputs"
    assert result.candidates["base"].status == "finished"
    assert result.candidates["base"].outputs.shape == (64, 16)  # the reconstruction: the first tensor
    assert np.isfinite(result.candidates["base"].final["loss"])


class RNN(nn.Module):
    """Returns (logits, hidden) with hidden (layers, batch, H): batch second, as torch's RNNs give it."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 16)
        self.rnn = nn.GRU(16, 16, batch_first=True)
        self.out = nn.Linear(16, VOCAB)

    def forward(self, x):
        h, hidden = self.rnn(self.emb(x))
        return self.out(h[:, -1]), hidden


def last_token(n: int = 128):
    (x, y), (xv, yv) = tokens(n, n // 2)
    return (x, y[:, -1]), (xv, yv[:, -1])


def test_an_rnn_returning_hidden_state_gets_cross_entropy_on_its_logits():
    exp = twinrun.Experiment(name="rnn", data=last_token, model=RNN, optimizer=twinrun.factory(torch.optim.Adam, lr=1e-2),
                             loss=nn.CrossEntropyLoss, metrics={"accuracy": twinrun.accuracy},
                             steps=30, batch_size=16, eval_every=30)
    engine = TwinEngine(resolve(exp), measure_memory=False)
    result = engine.run()
    assert engine.states["base"].loss_takes == "prediction"
    assert result.output_kind == "logits"
    assert result.candidates["base"].outputs.shape == (64, VOCAB)
    assert "recurrent layers" in result.execution["base"] or result.execution["base"].startswith("sequential")


@dataclass
class Output:
    hidden: torch.Tensor
    logits: torch.Tensor


def test_prediction_of_structures():
    t = torch.zeros(2, 3)
    assert prediction(t) is t
    assert prediction((t, None)) is t
    assert prediction({"loss": torch.zeros(()), "logits": t}) is t
    assert prediction(Output(torch.ones(2), t)) is t
    assert prediction([None, {"x": t}]) is t
    assert prediction((torch.ones(1), t), 1) is t
    with pytest.raises(twinrun.errors.BuildError, match="output_key='nope' names no tensor") as info:
        prediction({"logits": t}, "nope")
    assert "output_key='auto'" in (info.value.fix or "")
    with pytest.raises(twinrun.errors.BuildError, match="hold no tensor"):
        prediction((None, 3))


def test_loss_input_prefers_what_the_model_returns_and_reports_the_first_error():
    t, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    assert loss_input(F.cross_entropy, (t, None), y)[0] == "prediction"
    assert loss_input(lambda out, y: F.cross_entropy(out[0], y), (t, None), y)[0] == "outputs"
    with pytest.raises(AttributeError, match="'tuple' object has no attribute 'nope'"):
        loss_input(lambda out, y: out.nope, (t, None), y)  # neither works: the error on what the model returns


def test_twin_with_a_model_returning_a_tuple():
    torch.manual_seed(0)
    models = {"a": TinyGPT(), "b": TinyGPT()}
    twin = twinrun.Twin({n: (m, torch.optim.AdamW(m.parameters(), lr=3e-3)) for n, m in models.items()},
                        metrics={"token_accuracy": twinrun.Metric(token_accuracy, higher_is_better=True, bounds=(0.0, 1.0))})
    (x, y), (xv, yv) = tokens(64, 32)
    first = twin.step(x[:16], y[:16], lm_loss)
    for _ in range(10):
        twin.step(x[:16], y[:16], lm_loss)
    assert all(np.isfinite(v) for v in first.values())
    results = twin.evaluate([(xv, yv)], lm_loss)
    assert set(results["a"]) == {"loss", "token_accuracy"}
    assert twin.models["a"] is models["a"]


def test_output_key_is_validated():
    with pytest.raises(twinrun.ConfigError, match="output_key=True"):
        gpt_experiment(output_key=True)
    assert gpt_experiment(output_key=0).settings.output_key == 0


def test_the_checks_run_on_a_model_returning_a_tuple():
    """Every check that trains or reads outputs used to crash on (logits, loss): none may raise now."""
    report = twinrun.check(gpt_experiment(executor="sequential"), "a")
    errors = [(r.name, r.measured) for r in report.results if r.measured.startswith("error")]
    assert errors == []
    assert report["loss_decreases"].status == "pass"
    # the wrapped cross-entropy is recognised (classes last), so its value at init is checked: this GPT's
    # embedding, tied to its head, starts at torch's N(0, 1), and its logits are confidently wrong
    init = report["loss_at_init"]
    assert init.status == "fail" and init.details["loss_kind"] == "cross_entropy" and init.details["units"] == VOCAB


def test_a_wrapped_cross_entropy_makes_the_outputs_logits():
    result = TwinEngine(resolve(gpt_experiment(executor="sequential").replace(steps=2)), measure_memory=False).run()
    assert result.output_kind == "logits"


class UnmaskedGPT(TinyGPT):
    """The bug: attention without the causal mask."""

    def forward(self, idx, targets=None):
        x = self.tok(idx) + self.pos[:, : idx.shape[1]]
        x = x + self.attn(x, x, x, need_weights=False)[0]
        return self.head(x + self.mlp(x)), None


def test_causality_applies_to_a_next_token_model_without_a_declaration():
    clean = twinrun.check(gpt_experiment(executor="sequential"), "a", only=["causality"])
    assert clean["causality"].status == "pass"
    assert clean["causality"].details["detected"] == "next-token targets"
    buggy = twinrun.check(gpt_experiment(executor="sequential").replace(model=UnmaskedGPT), "a", only=["causality"])
    assert buggy["causality"].status == "fail"
    assert "reads the future" in buggy["causality"].explanation


def test_a_tagger_with_per_position_labels_is_not_assumed_causal():
    """Per-position labels that are not the next inputs (a tagger may read both ways): no verdict without a declaration."""
    (x, y), (xv, yv) = tokens(64, 32)
    exp = gpt_experiment(executor="sequential").replace(data=lambda: ((x, (x * 3) % VOCAB), (xv, (xv * 3) % VOCAB)))
    report = twinrun.check(exp, "a", only=["causality"])
    assert report["causality"].status == "skip"


def zipf_text(n_train: int = 256, n_val: int = 64):
    """Windows of a Zipfian 'text' (token r with probability ~ 1/r): next-token targets, a few contexts twice
    with different continuations, as any corpus has."""
    g = torch.Generator().manual_seed(3)
    p = 1.0 / torch.arange(1, VOCAB + 1, dtype=torch.float64)
    text = torch.multinomial(p / p.sum(), (n_train + n_val) * (T + 1), replacement=True, generator=g)
    seq = text.view(-1, T + 1)
    seq[1, :T] = seq[0, :T]  # the same context ...
    seq[1, T] = (seq[0, T] + 1) % VOCAB  # ... continued differently
    x, y = seq[:, :-1], seq[:, 1:]
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def test_next_token_statistics_are_not_class_labels():
    report = twinrun.check(gpt_experiment(executor="sequential").replace(data=zipf_text), "a",
                           only=["input_stats", "data_leakage"])
    stats, leakage = report["input_stats"], report["data_leakage"]
    assert stats.details["labels"]["imbalance"] > 10 and stats.details.get("next_token")
    assert "imbalanced" not in stats.explanation and stats.status == "pass"
    assert leakage.details["conflicting_labels"] >= 1
    assert "carry different labels" not in leakage.explanation and "normal for a language model" in leakage.explanation


def test_short_trainings_of_the_checks_start_counting_after_the_warm_up():
    """A 300-step warm-up: the checks' 60 steps come after it, so they judge the model, not the schedule
    (inside it, at 10 % of the peak rate, they saw only that it was warming up)."""
    exp = gpt_experiment(executor="sequential").replace(
        scheduler=twinrun.factory(warmup_cosine, warmup=300, total=600), steps=600,
        optimizer=twinrun.factory(torch.optim.AdamW, lr=1e-3))
    report = twinrun.check(exp, "a", only=["zero_input_baseline", "loss_decreases"])
    for name in ("zero_input_baseline", "loss_decreases"):
        assert report[name].status == "pass", (name, report[name].measured, report[name].explanation)
        assert "warming up" not in report[name].explanation


def test_overfit_batch_goes_on_while_the_loss_still_falls():
    """At a small learning rate this GPT memorises 8 examples in ~340 steps: past the 300-step budget, but
    still falling there, so the check waits instead of failing it."""
    exp = gpt_experiment(executor="sequential").replace(optimizer=twinrun.factory(torch.optim.AdamW, lr=2e-4),
                                                        steps=2000)
    result = twinrun.check(exp, "a", only=["overfit_batch"])["overfit_batch"]
    assert result.status == "pass"
    assert result.details["reached_at"] > result.details["budget"] == 300


def test_a_vae_sampling_in_eval_is_named_as_sampling_and_can_be_declared():
    exp = twinrun.Experiment(name="vae", data=bits, model=VAE, optimizer=twinrun.factory(torch.optim.Adam, lr=1e-2),
                             loss=vae_loss, steps=30, batch_size=16, eval_every=30)
    plain = twinrun.check(exp, "base", only=["eval_determinism"])["eval_determinism"]
    assert plain.status == "fail"
    assert "no dropout module" in plain.explanation and "batch norm" not in plain.explanation
    assert "stochastic=True" in plain.fix
    declared = twinrun.check(exp.replace(check_options={"eval_determinism": {"stochastic": True}}), "base",
                             only=["eval_determinism"])["eval_determinism"]
    assert declared.status == "pass" and "declared stochastic" in declared.expected


def test_lr_schedule_warns_when_the_run_stops_before_the_schedule_ends():
    """The demo's cosine is built for 300 steps; --set steps=100 stops it near its peak."""
    from twinrun.examples.digits import experiment as demo

    short = twinrun.check(demo.replace(steps=100, replicas=1), "mlp", only=["lr_schedule"])["lr_schedule"]
    assert short.status == "warn"
    assert "built for 300 updates (total_steps=300) but the run makes 100" in short.explanation
    assert "--set scheduler.total_steps=100" in short.fix
    full = twinrun.check(demo.replace(replicas=1), "mlp", only=["lr_schedule"])["lr_schedule"]
    assert full.status == "pass"


class SmallInitGPT(TinyGPT):
    def __init__(self) -> None:
        super().__init__()
        with torch.no_grad():
            self.tok.weight.mul_(0.02)  # GPT-2's init scale: no confidently wrong start


def test_a_language_model_predicting_the_most_frequent_token_is_not_collapsed():
    """On text of independent Zipfian tokens the right next-token answer is always the most frequent one."""
    exp = gpt_experiment(executor="sequential").replace(data=zipf_text, model=SmallInitGPT, steps=200)
    result = twinrun.check(exp, "a", only=["prediction_dynamics"])["prediction_dynamics"]
    assert result.details["distinct_predictions"] == 1
    assert result.status == "pass" and result.details["one_predicted_token"]
