"""Vectorised twins against what a user would do otherwise: N separate runs, or a hand-written vmap loop.

Every figure is a ratio measured in one process with the contenders interleaved
(A, B, C, A, B, C, ...), repeated, reported as the median of per-round ratios
with the spread (min..max), next to the machine's load average. Digits
(scikit-learn's 8x8 images, 1437 training examples), batch 64, Adam with a
different learning rate per candidate, 1 thread, CPU.

* ``separate``: N bare PyTorch runs one after another (the loop a user writes:
  ``zero_grad``, forward, ``cross_entropy``, ``backward``, ``step``, ``loss.item()``).
* ``vmap``: a hand-written ``torch.func`` loop (``stack_module_state``,
  ``vmap(functional_call)``, Adam written over the stacked tensors with the
  learning rates broadcast), the anchor of the speed issue.
* ``vmap_autograd``: the other usual hand-written loop (``vmap`` forward,
  ``backward()`` on the summed losses, the same Adam by hand).
* ``lean`` (MLPs only): the twin's arithmetic and nothing else: the stacked
  weights in one flat tensor, each layer one ``baddbmm``, one cross-entropy
  over the stacked rows, Adam over the flat tensors by hand; no evaluation,
  streams, histories or divergence check. What the engine's bookkeeping costs.
* ``twinrun``: ``TwinEngine`` with the default ``executor="auto"`` (its whole
  run: building the candidates, preflight, evaluation at step 0 and at the end).

    python benchmarks/bench_vectorised.py            # every case, 5 rounds (~6 min on 2 cores)
    python benchmarks/bench_vectorised.py --quick    # 1 round, fewer steps: a smoke test
    python benchmarks/bench_vectorised.py --json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

import twinrun
from twinrun.engine import TwinEngine
from twinrun.examples.digits import SmallCNN, load_digits_split
from twinrun.spec import resolve


class MLP(nn.Module):
    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def costly_augment(inputs, targets, *, generator, rounds: int = 1):
    """Random pixel mixing, ``rounds`` times (its cost grows with ``rounds``)."""
    x = inputs.flatten(1)
    for _ in range(rounds):
        mix = torch.randn(64, 64, generator=generator) / 8
        x = torch.tanh(x @ mix) + inputs.flatten(1)
    return x.view_as(inputs), targets


DATA = load_digits_split()
LRS = [1e-3 * (1 + i / 8) for i in range(16)]


def _batches(steps: int, batch: int = 64, seed: int = 0) -> list[torch.Tensor]:
    n = DATA[0][0].shape[0]
    g = torch.Generator().manual_seed(seed)
    out: list[torch.Tensor] = []
    while len(out) < steps:
        order = torch.randperm(n, generator=g)
        out += [order[i * batch : (i + 1) * batch] for i in range(n // batch)]
    return out[:steps]


def separate(model_fn, n: int, steps: int, rounds: int) -> None:
    x_all, y_all = DATA[0]
    for k in range(n):
        torch.manual_seed(k)
        model = model_fn()
        opt = torch.optim.Adam(model.parameters(), lr=LRS[k])
        g = torch.Generator().manual_seed(k)
        for idx in _batches(steps):
            x, y = x_all[idx], y_all[idx]
            if rounds:
                x, y = costly_augment(x, y, generator=g, rounds=rounds)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            loss.item()


class _AdamByHand:
    """Adam over stacked ``[N, ...]`` tensors, each candidate's learning rate broadcast (as one writes it)."""

    def __init__(self, params: dict, n: int) -> None:
        self.params = params
        self.lr = {k: torch.tensor(LRS[:n]).view(n, *([1] * (v.dim() - 1))) for k, v in params.items()}
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.s = {k: torch.zeros_like(v) for k, v in params.items()}

    @torch.no_grad()
    def step(self, grads: dict, t: int) -> None:
        for k, p in self.params.items():
            self.m[k].mul_(0.9).add_(grads[k], alpha=0.1)
            self.s[k].mul_(0.999).addcmul_(grads[k], grads[k], value=0.001)
            p.sub_(self.lr[k] / (1 - 0.9**t) * self.m[k] / ((self.s[k] / (1 - 0.999**t)).sqrt() + 1e-8))


def hand_vmap(model_fn, n: int, steps: int, rounds: int) -> None:
    """The loop one writes from the torch.func tutorial, with Adam by hand (per-candidate lr)."""
    x_all, y_all = DATA[0]
    torch.manual_seed(0)
    models = [model_fn() for _ in range(n)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def loss_of(p, b, x, y):
        return nn.functional.cross_entropy(functional_call(base, (p, b), (x,)), y)

    grad_fn = vmap(torch.func.grad_and_value(loss_of), in_dims=(0, 0, None, None))
    adam = _AdamByHand(params, n)
    g = torch.Generator().manual_seed(0)
    for t, idx in enumerate(_batches(steps), start=1):
        x, y = x_all[idx], y_all[idx]
        if rounds:
            x, y = costly_augment(x, y, generator=g, rounds=rounds)
        grads, losses = grad_fn(params, buffers, x, y)
        adam.step(grads, t)
        losses.tolist()


def hand_vmap_autograd(model_fn, n: int, steps: int, rounds: int) -> None:
    """The other common hand-written loop: ``vmap`` for the forward only, ``backward()`` on the summed losses."""
    x_all, y_all = DATA[0]
    torch.manual_seed(0)
    models = [model_fn() for _ in range(n)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    forward = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))
    adam = _AdamByHand(params, n)
    g = torch.Generator().manual_seed(0)
    for t, idx in enumerate(_batches(steps), start=1):
        x, y = x_all[idx], y_all[idx]
        if rounds:
            x, y = costly_augment(x, y, generator=g, rounds=rounds)
        out = forward(params, buffers, x)
        losses = nn.functional.cross_entropy(out.flatten(0, 1), y.repeat(n), reduction="none").view(n, -1).mean(1)
        for p in params.values():
            p.grad = None
        losses.sum().backward()
        adam.step({k: p.grad for k, p in params.items()}, t)
        losses.tolist()


def lean(model_fn, n: int, steps: int, rounds: int) -> None:
    """The twin's arithmetic alone, for the MLP: flat stacked weights, ``baddbmm`` layers, Adam by hand."""
    x_all, y_all = DATA[0]
    torch.manual_seed(0)
    models = [model_fn() for _ in range(n)]
    flat = torch.stack([torch.cat([p.detach().reshape(-1) for p in m.parameters()]) for m in models])
    grad = torch.zeros_like(flat)
    leaves, start = [], 0
    for p in models[0].parameters():
        view = flat[:, start : start + p.numel()].view(n, *p.shape).requires_grad_()
        view.grad = grad[:, start : start + p.numel()].view(n, *p.shape)
        leaves.append(view)
        start += p.numel()
    w1, b1, w2, b2 = leaves
    m, v = torch.zeros_like(flat), torch.zeros_like(flat)
    lrs = torch.tensor(LRS[:n]).view(n, 1)
    g = torch.Generator().manual_seed(0)
    for t, idx in enumerate(_batches(steps), start=1):
        x, y = x_all[idx], y_all[idx]
        if rounds:
            x, y = costly_augment(x, y, generator=g, rounds=rounds)
        grad.zero_()
        h = torch.baddbmm(b1.unsqueeze(1), x.flatten(1).expand(n, -1, -1), w1.transpose(1, 2)).relu()
        out = torch.baddbmm(b2.unsqueeze(1), h, w2.transpose(1, 2))
        losses = nn.functional.cross_entropy(out.reshape(-1, 10), y.repeat(n), reduction="none").view(n, -1).mean(1)
        losses.sum().backward()
        with torch.no_grad():
            m.lerp_(grad, 0.1)
            v.mul_(0.999).addcmul_(grad, grad, value=0.001)
            flat.add_(m.mul(-lrs / (1 - 0.9**t)).div_((v / (1 - 0.999**t)).sqrt_().add_(1e-8)))
        losses.tolist()


def twin(model_fn, n: int, steps: int, rounds: int) -> None:
    exp = twinrun.Experiment(
        name="bench", data=lambda: DATA, model=model_fn, optimizer=twinrun.factory(torch.optim.Adam, lr=1e-3),
        loss=nn.CrossEntropyLoss,
        augment=twinrun.factory(costly_augment, rounds=rounds) if rounds else None,
        candidates={f"c{k}": {"optimizer.lr": LRS[k]} for k in range(n)},
        steps=steps, batch_size=64, eval_every=steps, ledger_every=None, baselines=False,  # the engine alone
    )
    TwinEngine(resolve(exp), measure_memory=False).run()


CASES = {  # name: (model, N, augmentation rounds)
    "mlp_n8": (MLP, 8, 0),
    "mlp_n2": (MLP, 2, 0),
    "mlp_n8_augment": (MLP, 8, 6),
    "cnn_n8": (lambda: SmallCNN(channels=16), 8, 0),
    "mlp_n1": (MLP, 1, 0),
}


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def measure(case: str, steps: int, repeats: int) -> dict:
    model_fn, n, rounds = CASES[case]
    contenders = {"separate": separate, "vmap": hand_vmap, "vmap_autograd": hand_vmap_autograd, "twinrun": twin}
    if model_fn is MLP:
        contenders["lean"] = lean
    if n == 1:
        contenders = {"separate": separate, "twinrun": twin}
    times: dict[str, list[float]] = {k: [] for k in contenders}
    _timed(twin, model_fn, n, min(steps, 20), rounds)  # warm-up (imports, allocator)
    for r in range(repeats):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in order:
            times[name].append(_timed(contenders[name], model_fn, n, steps, rounds))
    ratios = {
        f"{k}/separate": [a / b for a, b in zip(times[k], times["separate"])] for k in contenders if k != "separate"
    }
    for anchor in ("vmap", "vmap_autograd", "lean"):
        if anchor in times:
            ratios[f"twinrun/{anchor}"] = [a / b for a, b in zip(times["twinrun"], times[anchor])]
    row: dict = {"case": case, "candidates": n, "augment_rounds": rounds, "steps": steps,
                 "seconds": {k: statistics.median(v) for k, v in times.items()}}
    for k, v in ratios.items():
        row[k] = {"median": statistics.median(v), "min": min(v), "max": max(v)}
    if rounds:  # the sequential design's limit: the augmentation once, then N steps
        aug = _timed(lambda: [costly_augment(DATA[0][0][:64], DATA[0][1][:64], generator=torch.Generator(),
                                             rounds=rounds) for _ in range(200)]) / 200
        per_step = times["separate"][-1] / (n * steps) - aug
        row["augment_ms"], row["step_ms"] = aug * 1e3, per_step * 1e3
        row["sequential_limit"] = (aug + n * per_step) / (n * (aug + per_step))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5; more on a noisy machine)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps, repeats = (60, 1) if args.quick else (300, args.rounds)
    load_before = os.getloadavg()
    rows = [measure(c, steps, repeats) for c in args.cases.split(",")]
    report = {"steps": steps, "repeats": repeats, "threads": 1, "torch": torch.__version__,
              "load_before": load_before, "load_after": os.getloadavg(), "rows": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{steps} steps, {repeats} interleaved rounds, 1 thread; load {load_before[0]:.2f} -> "
          f"{report['load_after'][0]:.2f}")
    for r in rows:
        parts = [f"{k} {v['median']:.3f} ({v['min']:.3f}..{v['max']:.3f})" for k, v in r.items() if "/" in k]
        extra = f"  sequential limit {r['sequential_limit']:.3f}" if "sequential_limit" in r else ""
        print(f"{r['case']:>15}: " + "  ".join(parts) + extra)


if __name__ == "__main__":
    main()
