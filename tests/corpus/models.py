# ruff: noqa: C408, RUF059 - written in the style of the repositories it imitates (nanoGPT's dict(...), B, T, C = ...)
"""Model code written the way popular repositories write it (our own code, in their styles).

Seven setups, each clean, and each with one realistic silent bug that the checks must catch:

- ``gpt``: a nanoGPT-style GPT returning ``(logits, loss)``, weight tying, AdamW with warm-up + cosine;
  bug: the causal mask buffer is all ones (every position sees the future).
- ``lstm``: PyTorch's word-language-model shape: a sequence-first LSTM on ``(T, B)`` tokens returning
  flattened log-probabilities and the hidden state (``batch_dim=1``); bug: fed batch-first data (no
  ``batch_first=True``, outputs kept ``(B, T, V)``), so the LSTM recurs across the batch.
- ``transformer``: the PyTorch tutorial's Transformer LM with a square subsequent mask;
  bug: the mask is never passed.
- ``resnet``: a CIFAR-style ResNet-18 (BasicBlocks, BatchNorm) with SGD at lr 0.1; bug: lr 10.
- ``vit``: a ViT with a conv patch embedding, a class token and learned positional embeddings;
  bug: the positional embedding is never added.
- ``vae``: the PyTorch example's VAE returning ``(recon, mu, logvar)`` with summed BCE + KL;
  bug: the optimizer was built before the encoder was replaced, so the encoder never trains.
- ``workers``: a DataLoader with workers whose dataset owns a NumPy generator re-seeded in
  ``worker_init_fn``; bug: no ``worker_init_fn``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

# ============================================================================ data (made here, never downloaded)

_WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "the", "dog", "ran", "to", "the", "red", "ball", "while", "a", "bird", "sang", "in", "the", "old", "tree", "so", "we", "walked", "home", "by", "the", "river", "then", "my", "friend", "said", "that", "every", "small", "boat", "must", "come", "back", "before", "dark", "night", "falls", "over", "our", "quiet", "green", "hills", "where", "children", "play", "with", "big", "yellow", "kites"]


def text(n_chars: int = 12_000, seed: int = 0) -> str:
    """English-like text from a tiny bigram model over a fixed word list."""
    rng = np.random.default_rng(seed)
    follow = {w: rng.choice(len(_WORDS), size=8, replace=False) for w in _WORDS}
    word, out = "the", []
    while sum(len(w) + 1 for w in out) < n_chars:
        out.append(word)
        word = _WORDS[int(rng.choice(follow[word]))]
    return " ".join(out)


def char_windows(block: int = 16, n_train: int = 512, n_val: int = 128, seed: int = 0):
    """Next-character windows ``(x, y)``, y = x shifted by one, training windows from the first 90 % of the
    text and validation windows from the rest; returns the splits and the vocabulary size."""
    corpus = text(seed=seed)
    chars = sorted(set(corpus))
    ids = torch.tensor([chars.index(c) for c in corpus])
    cut = int(0.9 * len(ids))
    g = torch.Generator().manual_seed(seed)

    def windows(data: torch.Tensor, n: int):
        starts = torch.randint(0, len(data) - block - 1, (n,), generator=g)
        return (torch.stack([data[s : s + block] for s in starts]),
                torch.stack([data[s + 1 : s + block + 1] for s in starts]))

    return (windows(ids[:cut], n_train), windows(ids[cut:], n_val)), len(chars)


def digit_images(unit: bool = False):
    """scikit-learn's digits as ``(N, 1, 8, 8)``: standardised, or in [0, 1] for a VAE's BCE."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1)
    x = x / 16.0 if unit else (x - 4.88) / 6.02
    y = torch.tensor(d.target)
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def seeded(cls: type, *args: Any, **kw: Any) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return cls(*args, **kw)


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup: int, total: int, floor: float = 0.1):
    def lr_lambda(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)


# ============================================================================ 1. GPT (nanoGPT style)


@dataclass
class GPTConfig:
    block_size: int = 16
    vocab_size: int = 32
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    dropout: float = 0.0
    bias: bool = True


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, see_future: bool = False) -> None:
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.n_embd = config.n_head, config.n_embd
        ones = torch.ones(config.block_size, config.block_size)
        mask = ones if see_future else torch.tril(ones)
        self.register_buffer("bias", mask.view(1, 1, config.block_size, config.block_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = self.attn_dropout(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class GPTMLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig, see_future: bool = False) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config, see_future)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = GPTMLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, see_future: bool = False) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, see_future) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss


def gpt_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def gpt(bug: bool = False, steps: int = 300) -> dict[str, Any]:
    (train, val), vocab = char_windows()
    model = seeded(GPT, GPTConfig(vocab_size=vocab), see_future=bug)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    return dict(model=model, train=train, val=val, loss=gpt_loss, optimizer=optimizer,
                scheduler=warmup_cosine(optimizer, 30, steps), settings={"steps": steps, "batch_size": 32})


# ============================================================================ 2. sequence-first LSTM LM


class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder; input (T, B)."""

    def __init__(self, ntoken: int, ninp: int = 32, nhid: int = 32, nlayers: int = 2, dropout: float = 0.2,
                 tie_weights: bool = True, flatten: bool = True) -> None:
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.init_weights()
        self.nhid, self.nlayers, self.flatten = nhid, nlayers, flatten

    def init_weights(self) -> None:
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input: torch.Tensor, hidden: Any = None):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        if self.flatten:
            decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=-1), hidden


def lstm_loss(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), targets.reshape(-1))


def lstm(bug: bool = False, steps: int = 300) -> dict[str, Any]:
    (train, val), vocab = char_windows()
    # the bug: batch-first data into the same LSTM (no batch_first=True), its outputs kept (B, T, V)
    model = seeded(RNNModel, vocab, flatten=not bug)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return dict(model=model, train=train, val=val, loss=lstm_loss, optimizer=optimizer, settings={"steps": steps, "batch_size": 32, "grad_clip": 0.25 * 10, "batch_dim": 0 if bug else 1})


# ============================================================================ 3. Transformer LM (tutorial style)


class PositionalEncoding(nn.Module):
    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 64) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(1, max_len, d_model)
        pe[0, :, 0::2] = torch.sin(position * div_term)
        pe[0, :, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.pe[:, : x.size(1)])


class TransformerModel(nn.Module):
    def __init__(self, ntoken: int, d_model: int = 32, nhead: int = 2, d_hid: int = 64, nlayers: int = 2,
                 dropout: float = 0.1, use_mask: bool = True) -> None:
        super().__init__()
        self.pos_encoder = PositionalEncoding(d_model, dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, d_hid, dropout, batch_first=True)
        self.transformer_encoder = nn.TransformerEncoder(layer, nlayers, enable_nested_tensor=False)
        self.embedding = nn.Embedding(ntoken, d_model)
        self.d_model = d_model
        self.linear = nn.Linear(d_model, ntoken)
        self.use_mask = use_mask
        self.init_weights()

    def init_weights(self) -> None:
        initrange = 0.1
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.linear.bias.data.zero_()
        self.linear.weight.data.uniform_(-initrange, initrange)

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        src = self.pos_encoder(self.embedding(src) * math.sqrt(self.d_model))
        if src_mask is None and self.use_mask:
            src_mask = nn.Transformer.generate_square_subsequent_mask(src.size(1), device=src.device)
        return self.linear(self.transformer_encoder(src, src_mask))


def transformer(bug: bool = False, steps: int = 300) -> dict[str, Any]:
    (train, val), vocab = char_windows()
    model = seeded(TransformerModel, vocab, use_mask=not bug)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return dict(model=model, train=train, val=val, loss=gpt_loss, optimizer=optimizer,
                scheduler=warmup_cosine(optimizer, 20, steps), settings={"steps": steps, "batch_size": 32})


# ============================================================================ 4. ResNet-18 (CIFAR style)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, num_blocks: tuple[int, ...] = (2, 2, 2, 2), num_classes: int = 10, width: int = 8) -> None:
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(1, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(width, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(2 * width, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(4 * width, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(8 * width, num_blocks[3], stride=2)
        self.linear = nn.Linear(8 * width, num_classes)

    def _make_layer(self, planes: int, num_blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def resnet(bug: bool = False, steps: int = 300) -> dict[str, Any]:
    train, val = digit_images()
    model = seeded(ResNet)
    optimizer = torch.optim.SGD(model.parameters(), lr=10.0 if bug else 0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    return dict(model=model, train=train, val=val, loss=nn.CrossEntropyLoss(), optimizer=optimizer,
                scheduler=scheduler, settings={"steps": steps, "batch_size": 64})


# ============================================================================ 5. ViT


class PatchEmbed(nn.Module):
    def __init__(self, img_size: int = 8, patch_size: int = 2, in_chans: int = 1, embed_dim: int = 32) -> None:
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # B, N, C


class ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, num_classes: int = 10, embed_dim: int = 32, depth: int = 2, heads: int = 2,
                 add_pos: bool = True) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(embed_dim=embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.blocks = nn.Sequential(*[ViTBlock(embed_dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        self.add_pos = add_pos
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        if self.add_pos:
            x = x + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def vit(bug: bool = False, steps: int = 300) -> dict[str, Any]:
    train, val = digit_images()
    model = seeded(VisionTransformer, add_pos=not bug)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    return dict(model=model, train=train, val=val, loss=nn.CrossEntropyLoss(label_smoothing=0.1),
                optimizer=optimizer, scheduler=warmup_cosine(optimizer, 20, steps), settings={"steps": steps, "batch_size": 64})


# ============================================================================ 6. VAE (pytorch/examples style)


class VAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 48)
        self.fc21 = nn.Linear(48, 8)
        self.fc22 = nn.Linear(48, 8)
        self.fc3 = nn.Linear(8, 48)
        self.fc4 = nn.Linear(48, 64)

    def encode(self, x: torch.Tensor):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x.view(-1, 64))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def vae_loss(output: Any, x: torch.Tensor) -> torch.Tensor:
    recon_x, mu, logvar = output
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 64), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def vae(bug: bool = False, steps: int = 300) -> dict[str, Any]:
    (x, _), (xv, _) = digit_images(unit=True)
    x, xv = x.flatten(1), xv.flatten(1)
    model = seeded(VAE)
    params = list(model.fc3.parameters()) + list(model.fc4.parameters()) if bug else model.parameters()
    optimizer = torch.optim.Adam(params, lr=3e-3)
    return dict(model=model, train=(x, x), val=(xv, xv), loss=vae_loss, optimizer=optimizer, settings={"steps": steps, "batch_size": 64}, options={"eval_determinism": {"stochastic": True}})


# ============================================================================ 7. workers re-seeding the dataset's own generator


class NoisyDigits(Dataset):
    """Digits with per-example noise from a generator the dataset owns (re-seeded per worker)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> None:
        self.x, self.y = x.flatten(1), y
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        noise = torch.from_numpy(self.rng.normal(0.0, 0.1, size=self.x.shape[1]).astype(np.float32))
        return self.x[i] + noise, self.y[i]


def reseed_worker(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng(info.seed % 2**32)


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def workers(bug: bool = False, steps: int = 300) -> dict[str, Any]:
    (x, y), (xv, yv) = digit_images()
    loader = DataLoader(NoisyDigits(x, y), batch_size=64, shuffle=True, num_workers=2,
                        worker_init_fn=None if bug else reseed_worker, persistent_workers=False)
    model = seeded(MLP)
    return dict(model=model, train=loader, val=(xv.flatten(1), yv), loss=nn.CrossEntropyLoss(),
                optimizer=torch.optim.Adam(model.parameters(), lr=1e-3), settings={"steps": steps})


CORPUS = {"gpt": gpt, "lstm": lstm, "transformer": transformer, "resnet": resnet, "vit": vit, "vae": vae,
          "workers": workers}

#: the check that must catch each planted bug, and a word its message must use
CAUGHT_BY = {
    "gpt": ("causality", "future"),
    "lstm": ("batch_independence", "batch_dim"),
    "transformer": ("causality", "mask"),
    "resnet": ("lr_range", "learning rate"),
    "vit": ("position_sensitivity", "position"),
    "vae": ("param_updates", "optimizer"),
    "workers": ("worker_streams", "worker_init_fn"),
}
