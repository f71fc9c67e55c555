"""Run settings shared by every candidate of an experiment.

Settings are plain values (steps, batch size, seed, ...) that every candidate
shares: they define the comparison, so a candidate cannot override them. They
can be changed from the command line with ``--set key=value``; each value is
checked here, with an error that names the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twinrun.errors import ConfigError

__all__ = ["EXECUTION_SETTINGS", "SETTING_HELP", "Settings", "parse_bytes", "validate_setting"]

OUTPUT_KINDS = ("auto", "logits", "binary_logits", "values")
EXECUTOR_KINDS = ("auto", "vectorised", "sequential")
DATA_PARALLEL_KINDS = ("ddp", "fsdp")

#: Settings that say how a run is executed and recorded, not what is trained. Ledgers of
#: runs that differ only in these are comparable (``deterministic`` is a factor to vary,
#: like the thread count).
EXECUTION_SETTINGS = ("deterministic", "ledger_every", "checkpoint_every", "executor", "memory_budget", "data_parallel")


@dataclass(frozen=True)
class Settings:
    """Values shared by all candidates. Every field is also a keyword of ``Experiment``."""

    steps: int = 200
    batch_size: int = 32
    eval_every: int = 50
    eval_batch_size: int = 256
    eval_batches: int | None = None
    eval_passes: int = 1
    monitor: bool = False
    baselines: bool = True
    select_by: str | None = None
    patience: int | None = None
    seed: int = 0
    device: str = "cpu"
    devices: str | Sequence[str] | Mapping[str, str] | None = None
    grad_clip: float | None = None
    output: str = "auto"
    output_key: str | int = "auto"
    batch_dim: int = 0
    share_init: bool | Mapping[str, bool | Sequence[str]] = True
    deterministic: bool = False
    ledger_every: int | None = 20
    checkpoint_every: int | None = None
    executor: str = "auto"
    memory_budget: int | str = "auto"
    data_parallel: str = "ddp"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            validate_setting(f.name, getattr(self, f.name))

    def to_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SETTING_HELP: dict[str, str] = {
    "steps": "training steps (optimizer updates) per candidate",
    "batch_size": "training batch size, shared by all candidates",
    "eval_every": "evaluate on the validation set every this many steps (and at the end)",
    "eval_batch_size": "batch size for evaluation",
    "eval_batches": "evaluate on only the first this many validation batches every eval_every steps (a quick, "
    "fixed subset, the same for every candidate); the last evaluation, which the verdict uses, is always "
    "the whole validation set (None: always the whole set)",
    "eval_passes": "with eval_augment: how many test-time augmented passes of each validation batch every "
    "candidate is evaluated on (the same passes for all of them; the prediction is their mean)",
    "baselines": "train the dumb baselines beside the candidates on the same batches (the best constant "
    "prediction and a linear model of the inputs) and say how far above them each candidate is",
    "select_by": "a validation metric (or loss) that picks each candidate's best step; the best step is chosen "
    "on one half of the validation set and its verdict is given on the other half, so that picking it "
    "does not bias the comparison; the best weights are saved with the run",
    "patience": "with select_by: stop a candidate whose best has not improved for this many evaluations "
    "(early stopping; the others go on)",
    "monitor": "smooth monitoring: after every training step, evaluate every candidate on one validation "
    "batch, the same for all of them, rotating through the validation batches (logged as monitor/...)",
    "seed": "the run's seed; every RNG stream (init, data order, augmentation, dropout) derives from it",
    "device": "torch device: cpu, cuda, cuda:1, mps ...",
    "devices": "spread the candidates over several devices in one process: a list (cuda:0,cuda:1), auto "
    "(every visible GPU; none: device), or {candidate: device}; same-architecture candidates are kept "
    "together, and each batch is made once, on the first device, and copied to the others (None: all on device)",
    "grad_clip": "clip the gradient norm to this value (None: no clipping)",
    "output": "what the model outputs: auto, logits, binary_logits or values (used for seed ensembles)",
    "output_key": "which part of a structured model output (tuple, dict, dataclass) is the prediction "
    "used by metrics, ensembles and checks: auto (the tensor itself, else its 'logits' entry, else the "
    "first tensor), a name, or a position; the loss gets the whole output when it accepts it",
    "batch_dim": "the dimension of the batch in what the model takes: 0 (batch-first, the default) or 1 for "
    "a sequence-first model taking (time, batch, ...) tensors (an nn.LSTM without batch_first); data, "
    "losses and metrics stay batch-first, the model's inputs and outputs are moved for it",
    "share_init": "copy initial weights across candidates wherever parameter names and shapes match "
    "and the candidate's own value was drawn alike (True, False, or {candidate: False | [names]})",
    "deterministic": "deterministic kernels (torch.use_deterministic_algorithms, cuDNN flags, "
    "CUBLAS_WORKSPACE_CONFIG) during training; see twinrun.deterministic_mode",
    "ledger_every": "record control sums of every parameter every this many steps (batches and "
    "losses: every step) in the run's ledger (compare() and the twinrun command); None: no ledger",
    "executor": "how candidates are stepped: auto (same-architecture candidates batched with "
    "torch.func.vmap, the rest one at a time), vectorised, or sequential (one at a time: the exact "
    "reference, twin = solo bit for bit)",
    "memory_budget": "bytes of activations a vectorised group may keep alive at once (e.g. 2GiB, 500MB, "
    "or a number of bytes); larger groups are split. auto: a quarter of the machine's memory on the CPU, "
    "half of the GPU's free memory on CUDA",
    "data_parallel": "under torchrun, how each candidate is spread over the ranks: ddp "
    "(DistributedDataParallel: every rank holds the whole model) or fsdp (torch's fully_shard: "
    "parameters, gradients and optimizer state sharded over the ranks)",
    "checkpoint_every": "write a checkpoint every this many steps for exact resume (None: none); "
    "written by compare() and the twinrun command into the run folder",
}


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"setting {name}={value!r} must be a positive integer")


def _seed(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ConfigError(f"setting seed={value!r} must be an integer in [0, 2**63)")


def _device(name: str, value: Any) -> None:
    import torch

    try:
        torch.device(value)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"setting {name}={value!r} is not a torch device", fix="use cpu, cuda, cuda:0, mps ..."
        ) from exc


def _devices(name: str, value: Any) -> None:
    if value is None or value == "auto":
        return
    if isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        names = [p.strip() for p in value.split(",")] if isinstance(value, str) else value
        if not isinstance(names, (list, tuple)) or not names or "" in names:
            names = None
        pairs = [("", n) for n in names] if names is not None else []
        if not pairs:
            raise ConfigError(
                f"setting devices={value!r} must be a list of devices, auto, or a mapping candidate -> device",
                fix="e.g. --set devices=cuda:0,cuda:1 or --set devices=auto",
            )
    for candidate, device in pairs:
        if not isinstance(candidate, str) or not isinstance(device, str):
            raise ConfigError(
                f"setting devices={value!r}: {device!r} is not a device name",
                fix='e.g. devices=["cuda:0", "cuda:1"] or devices={"wide": "cuda:1"}',
            )
        _device("devices", device)


def _grad_clip(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise ConfigError(f"setting grad_clip={value!r} must be a positive number or None")


def _output_key(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise ConfigError(
            f"setting output_key={value!r} must be auto, a name or a position",
            fix="e.g. output_key='logits' or output_key=0",
        )


def _batch_dim(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1):
        raise ConfigError(
            f"setting batch_dim={value!r} must be 0 (batch-first) or 1 (sequence-first)",
            fix="batch_dim=1 for a model taking (time, batch, ...) inputs",
        )


def _select_by(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(
            f"setting select_by={value!r} must be the name of a validation metric, or loss",
            fix="e.g. --set select_by=accuracy",
        )


def _output(name: str, value: Any) -> None:
    if value not in OUTPUT_KINDS:
        raise ConfigError(f"setting output={value!r} must be one of {', '.join(OUTPUT_KINDS)}")


def _share_init(name: str, value: Any) -> None:
    if isinstance(value, bool):
        return
    if not isinstance(value, Mapping) or not all(
        isinstance(v, bool) or (isinstance(v, (list, tuple)) and all(isinstance(n, str) for n in v))
        for v in value.values()
    ):
        raise ConfigError(
            f"setting share_init={value!r} must be True, False, or a mapping candidate -> True, "
            "False or a list of parameter names",
            fix='e.g. share_init={"pretrained": False, "wide": ["embed.weight"]}',
        )


def _executor(name: str, value: Any) -> None:
    if value not in EXECUTOR_KINDS:
        raise ConfigError(
            f"setting executor={value!r} must be one of {', '.join(EXECUTOR_KINDS)}",
            fix="--set executor=sequential for the exact reference, auto to batch",
        )


def _data_parallel(name: str, value: Any) -> None:
    if value not in DATA_PARALLEL_KINDS:
        raise ConfigError(
            f"setting data_parallel={value!r} must be one of {', '.join(DATA_PARALLEL_KINDS)}",
            fix="--set data_parallel=fsdp to shard each candidate over the ranks, ddp to replicate it",
        )


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"setting {name}={value!r} must be True or False")


def _optional_positive_int(name: str, value: Any) -> None:
    if value is not None:
        _positive_int(name, value)


def _ignore(value: Any) -> None:  # the parse is the check
    return None


_VALIDATORS: dict[str, Callable[[str, Any], None]] = {
    **dict.fromkeys(("steps", "batch_size", "eval_every", "eval_batch_size", "eval_passes"), _positive_int),
    **dict.fromkeys(("ledger_every", "checkpoint_every", "eval_batches", "patience"), _optional_positive_int),
    **dict.fromkeys(("deterministic", "monitor", "baselines"), _flag),
    "seed": _seed,
    "device": _device,
    "devices": _devices,
    "grad_clip": _grad_clip,
    "output_key": _output_key,
    "batch_dim": _batch_dim,
    "select_by": _select_by,
    "output": _output,
    "share_init": _share_init,
    "executor": _executor,
    "data_parallel": _data_parallel,
    "memory_budget": lambda name, value: _ignore(parse_bytes(value)),
}


def validate_setting(name: str, value: Any) -> None:
    """Raise :class:`ConfigError` if ``value`` is not allowed for setting ``name``."""
    check = _VALIDATORS.get(name)
    if check is not None:
        check(name, value)


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_bytes(value: Any) -> int | None:
    """A memory size in bytes from ``1073741824``, ``"1GiB"``, ``"500 MB"``; ``"auto"`` gives ``None``."""
    if value == "auto":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        number = text.rstrip("kmgtib")
        unit = text[len(number) :]
        try:
            amount = float(number)
        except ValueError:
            amount = -1.0
        if unit in _UNITS and amount > 0:
            return int(amount * _UNITS[unit])
    raise ConfigError(
        f"setting memory_budget={value!r} is not a memory size",
        fix="use auto, a number of bytes, or a size such as 2GiB or 500MB",
    )


def coerce_setting(name: str, value: Any) -> Any:
    """Coerce a value parsed from the command line to the setting's type, then validate it."""
    if name == "grad_clip" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    validate_setting(name, value)
    return value
