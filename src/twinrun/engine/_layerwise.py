"""A stacked forward of batched matrix products, for models that are a chain of plain layers.

``vmap`` runs any model, but every operator goes through its batching rules,
and on a small model those dominate: for eight 64-128-10 MLPs its forward and
backward take about 1.5 times what the same work takes as ``baddbmm`` calls.
So a group whose model is a straight chain of the layers below (an
``nn.Sequential``, or a module whose forward only calls its layers one after
another, as ``torch.fx`` traces it) runs as that chain over the stacked
weights, K members at once:

- ``nn.Linear``: one ``baddbmm`` (``bmm`` without a bias) over ``(K, rows, in)``;
- ``nn.Conv2d`` (one group, zero padding): one convolution, the K members'
  filters side by side over the shared batch, then ``groups=K`` over the
  members' channels, which stay side by side ``(B, K*C, H, W)`` through
  activations and 2-d poolings (modules or ``F.max_pool2d`` and kin) until a
  layer needs them stacked. For the demo's CNN this forward equals ``vmap``'s
  bit for bit on an AVX-512 CPU; on an AVX2 CPU oneDNN's grouped and single
  convolutions may round in their own orders (in a test, ``vmap``'s and this
  forward were both 9e-8 from each model's own); the weight gradients differ in
  rounding (a grouped convolution sums in its own order);
- element-wise activations and ``nn.Identity``: applied once; while the input is
  still the one batch every member shares, they are applied to it once for all;
- ``nn.Flatten``, ``nn.Softmax``, ``nn.LogSoftmax``: their dimensions shifted past
  the member dimension;
- ``nn.Dropout`` in training: the masks ``vmap`` would draw, from the same stream
  (``randomness="same"``: one mask of one member's shape for all;
  ``"different"``: a mask over the whole stack), so both paths give the same masks.

Anything else (another layer, a hook, a branch, a tied or free parameter, a
second input, batch norm) returns ``None`` and the group keeps ``vmap``. The
outputs are each member's own model's, so results agree with the sequential
executor as closely as ``vmap``'s do, and repeat bit for bit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

__all__ = ["NotPlain", "layerwise_forward"]


_ELEMENTWISE = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.Tanh,
    nn.Sigmoid,
    nn.SiLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.Softplus,
    nn.Mish,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
)
_FUNCTIONS = {
    F.relu: torch.relu,
    torch.relu: torch.relu,
    torch.tanh: torch.tanh,
    torch.sigmoid: torch.sigmoid,
    F.gelu: F.gelu,
    F.silu: F.silu,
}
_METHODS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_POOL_FUNCTIONS = (F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d)
_SUPPORTED = (*_ELEMENTWISE, *_POOLS, nn.Linear, nn.Conv2d, nn.Flatten, nn.Dropout, nn.Softmax, nn.LogSoftmax)


class NotPlain(Exception):
    """The inputs are not what the chain's batched form handles (a convolution's input without a batch
    dimension, a structured input): the caller goes back to ``vmap``, which handles anything."""


Params = Mapping[str, torch.Tensor]
Forward = Callable[[Params, Params, Any], torch.Tensor]
# How a value of the chain holds the K members:
#   "shared"  the one batch all members still share, (B, ...), computed once;
#   "stacked" (K, B, ...);
#   "grouped" (B, K*C, H, W): the members' channels side by side, what a grouped convolution reads and writes.
# one step of the chain: (x, its kind, the stacked parameters, K) -> (x, its kind)
Layer = Callable[[torch.Tensor, str, Params, int], tuple[torch.Tensor, str]]


def _stacked(x: torch.Tensor, kind: str, k: int) -> torch.Tensor:
    if kind == "shared":
        return x.unsqueeze(0).expand(k, *x.shape)
    if kind == "grouped":
        return x.view(x.shape[0], k, x.shape[1] // k, *x.shape[2:]).transpose(0, 1)
    return x


class _BatchedLinear(torch.autograd.Function):
    """K linear layers as one ``baddbmm``, whose gradients are computed in ``F.linear``'s own arrangement.

    Autograd's rule for ``baddbmm`` computes the weight gradient as ``rows^T @ grad``, transposed;
    ``F.linear`` computes ``grad^T @ rows``. The two products sum in another order on some CPUs
    (MKL's small-matrix kernels with AVX-512), so this backward makes ``F.linear``'s, member by member.
    The forward takes ``ctx`` itself: with a separate ``setup_context``, every call would bind its
    arguments through ``inspect.signature`` (20 us, as long as a small layer's product).
    """

    @staticmethod
    def forward(ctx: Any, rows: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(rows, w)
        if bias is None:
            return torch.bmm(rows, w.transpose(1, 2))
        return torch.baddbmm(bias.unsqueeze(1), rows, w.transpose(1, 2))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        rows, w = ctx.saved_tensors
        need_rows, need_w, need_bias = ctx.needs_input_grad
        return (
            torch.bmm(grad, w) if need_rows else None,
            torch.bmm(grad.transpose(1, 2), rows) if need_w else None,
            grad.sum(1) if need_bias else None,
        )


def _linear(name: str, has_bias: bool) -> Layer:
    def run(x: torch.Tensor, kind: str, p: Params, k: int) -> tuple[torch.Tensor, str]:
        w = p[f"{name}.weight"]  # (K, out, in)
        if kind == "grouped":
            x, kind = _stacked(x, kind, k), "stacked"
        stacked = kind == "stacked"
        rows = x.reshape(k, -1, x.shape[-1]) if stacked else x.reshape(1, -1, x.shape[-1]).expand(k, -1, -1)
        out: torch.Tensor = _BatchedLinear.apply(rows, w, p[f"{name}.bias"] if has_bias else None)  # type: ignore[no-untyped-call]
        lead = x.shape[1:-1] if stacked else x.shape[:-1]
        return out.reshape(k, *lead, w.shape[1]), "stacked"

    return run


def _conv(name: str, module: nn.Conv2d) -> Layer:
    """A ``Conv2d`` of every member as one convolution: over the shared batch with the K filters side by side,
    or grouped (``groups=K``) over the members' own channels."""

    def run(x: torch.Tensor, kind: str, p: Params, k: int) -> tuple[torch.Tensor, str]:
        w = p[f"{name}.weight"]  # (K, out, in, kh, kw)
        if x.dim() != (5 if kind == "stacked" else 4):
            raise NotPlain(f"{name} takes {x.dim()}-d input; the batched form needs (batch, C, H, W)")
        bias = p[f"{name}.bias"].reshape(-1) if module.bias is not None else None
        if kind == "stacked":  # (K, B, C, H, W) -> (B, K*C, H, W)
            x = x.transpose(0, 1).reshape(x.shape[1], k * x.shape[2], *x.shape[3:])
        groups = 1 if kind == "shared" else k
        out = F.conv2d(
            x,
            w.reshape(-1, *w.shape[2:]),
            bias,
            module.stride,
            module.padding,
            module.dilation,
            groups,
        )
        return out, "grouped"

    return run


def _channelwise(fn: Callable[[torch.Tensor], torch.Tensor]) -> Layer:
    """A pooling: per channel, so the shared and grouped layouts take it as they are."""

    def run(x: torch.Tensor, kind: str, p: Params, k: int) -> tuple[torch.Tensor, str]:
        if kind != "stacked":
            return fn(x), kind
        out = fn(x.reshape(-1, *x.shape[2:]))
        return out.view(k, x.shape[1], *out.shape[1:]), kind

    return run


def _elementwise(fn: Callable[[torch.Tensor], torch.Tensor]) -> Layer:
    return lambda x, kind, p, k: (fn(x), kind)


def _shifted(module: nn.Flatten | nn.Softmax | nn.LogSoftmax) -> Layer:
    def run(x: torch.Tensor, kind: str, p: Params, k: int) -> tuple[torch.Tensor, str]:
        if kind == "shared":
            return module.forward(x), kind
        x = _stacked(x, kind, k)
        if isinstance(module, nn.Flatten):
            end = module.end_dim if module.end_dim < 0 else module.end_dim + 1
            return x.flatten(module.start_dim + 1, end), "stacked"
        dim = module.dim if module.dim is None or module.dim < 0 else module.dim + 1
        fn = torch.softmax if isinstance(module, nn.Softmax) else torch.log_softmax
        return fn(x, dim), "stacked"  # type: ignore[arg-type]

    return run


def _dropout(module: nn.Dropout, randomness: str) -> Layer:
    def run(x: torch.Tensor, kind: str, p: Params, k: int) -> tuple[torch.Tensor, str]:
        if not module.training or module.p == 0:
            return x, kind
        if kind == "shared" and randomness == "same":
            return F.dropout(x, module.p), kind
        x = _stacked(x, kind, k)
        if randomness == "same":  # one member's mask for all, as vmap draws it
            return x * F.dropout(torch.ones_like(x[0]), module.p), "stacked"
        return F.dropout(x, module.p), "stacked"

    return run


def _chain(model: nn.Module) -> list[fx.Node] | None:
    """The traced nodes between input and output, when they form one straight chain of supported steps."""
    if any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or getattr(m, "_backward_pre_hooks", None)
        for m in model.modules()
    ):
        return None
    leaves = [m for m in model.modules() if not list(m.children())]
    if not leaves or not all(isinstance(m, _SUPPORTED) for m in leaves):
        return None
    try:  # traced on a copy: a forward that stores what it sees would otherwise keep a proxy
        nodes = list(fx.symbolic_trace(copy.deepcopy(model)).graph.nodes)
    except Exception:  # noqa: BLE001 - any forward fx cannot trace keeps vmap
        return None
    if len(nodes) < 3 or nodes[0].op != "placeholder" or nodes[-1].op != "output":
        return None
    previous = nodes[0]
    for node in nodes[1:]:
        args = node.args if node.op != "output" else (node.args[0],)
        if not args or args[0] is not previous or len(previous.users) != 1:
            return None
        previous = node
    return nodes[1:-1]


def _layer(node: fx.Node, model: nn.Module, randomness: str) -> Layer | None:
    extra = node.args[1:]
    if node.op == "call_module" and not extra and not node.kwargs:
        module = model.get_submodule(str(node.target))
        if isinstance(module, nn.Linear):
            return _linear(str(node.target), module.bias is not None)
        if isinstance(module, nn.Conv2d):
            plain = module.groups == 1 and module.padding_mode == "zeros" and not isinstance(module.padding, str)
            return _conv(str(node.target), module) if plain else None
        if isinstance(module, _POOLS):
            return None if getattr(module, "return_indices", False) else _channelwise(module.forward)
        if isinstance(module, _ELEMENTWISE):  # its forward itself: no hooks here (see _chain), no call overhead
            return _elementwise(module.forward)
        if isinstance(module, (nn.Softmax, nn.LogSoftmax)) and module.dim is None:
            return None  # the implicit dimension of a legacy softmax depends on the input's rank
        if isinstance(module, (nn.Flatten, nn.Softmax, nn.LogSoftmax)):
            return _shifted(module)
        if isinstance(module, nn.Dropout):
            return _dropout(module, randomness)
        return None
    if (
        node.op == "call_function"
        and node.target in _FUNCTIONS
        and not extra
        and node.kwargs in ({}, {"inplace": False})
    ):  # fx spells F.relu(x) with its default
        return _elementwise(_FUNCTIONS[node.target])
    if node.op == "call_method" and node.target in _METHODS and not extra and not node.kwargs:
        return _elementwise(_METHODS[str(node.target)])
    if node.op == "call_function" and node.target in _POOL_FUNCTIONS and not node.kwargs.get("return_indices"):
        args, kwargs = extra, dict(node.kwargs)
        if any(isinstance(a, fx.Node) for a in (*args, *kwargs.values())):
            return None
        return _channelwise(lambda x: node.target(x, *args, **kwargs))  # type: ignore[operator]
    if (
        node.op in ("call_function", "call_method")
        and node.target in (torch.flatten, "flatten")
        and extra == (1,)
        and not node.kwargs
    ):
        return _shifted(nn.Flatten(1, -1))
    return None


def layerwise_forward(model: nn.Module, shared_input: bool, randomness: str = "same") -> Forward | None:
    """``f(params, buffers, x)`` over the stacked weights of ``model``'s architecture, or ``None``.

    ``params`` maps each parameter's name to its stacked tensor ``(K, ...)``;
    ``x`` is one batch for all members (``shared_input``) or theirs stacked
    ``(K, batch, ...)``; the output is stacked ``(K, batch, ...)``. ``None``:
    the model is not a plain chain (see the module's docstring); use ``vmap``.
    """
    named = list(model.named_parameters(remove_duplicate=False))
    if not named or len({id(t) for _, t in named}) != len(named) or list(model.buffers()):
        return None
    nodes = _chain(model)
    if nodes is None:
        return None
    found = [_layer(node, model, randomness) for node in nodes]
    layers = [layer for layer in found if layer is not None]
    if len(layers) != len(found):
        return None
    names = {name for name, _ in named}
    used = {
        f"{n.target}.{kind}"
        for n in nodes
        if n.op == "call_module"
        for kind in ("weight", "bias")
        if f"{n.target}.{kind}" in names
    }
    if used != names:  # a parameter the chain does not use (or uses outside a layer): vmap knows better
        return None

    def call(p: Params, b: Params, x: Any) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise NotPlain(f"the layer-wise forward takes one tensor input, not {type(x).__name__}")
        k = next(iter(p.values())).shape[0]
        kind = "shared" if shared_input else "stacked"
        for layer in layers:
            x, kind = layer(x, kind, p, k)
        return _stacked(x, kind, k)

    return call
