"""Child process of the ``hash_seed`` check: fingerprints of an experiment's data and initial model.

``python -m twinrun.checks._hash_worker PATH CANDIDATE OVERRIDES_JSON`` builds the
experiment as a run would (data, then the candidate's model from the run's seed)
and prints one JSON object: a fingerprint of the training and validation inputs
and targets (up to 2,000 examples each, spread over the split) and of each
initial parameter and buffer. The parent runs it under another
``PYTHONHASHSEED`` than its own and compares with its own build.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import torch
import xxhash

__all__ = ["fingerprints", "fingerprints_of"]


def _digest(value: Any) -> str:
    h = xxhash.xxh64()

    def feed(v: Any) -> None:
        if isinstance(v, torch.Tensor):
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(v, (tuple, list)):
            for item in v:
                feed(item)
        elif isinstance(v, dict):
            for k in sorted(v, key=str):
                h.update(str(k).encode())
                feed(v[k])
        else:
            h.update(repr(v).encode())

    feed(value)
    return h.hexdigest()


def fingerprints(path: str, candidate: str, overrides: dict[str, Any]) -> dict[str, str]:
    """Build the experiment at ``path`` (with ``overrides``) and fingerprint it: see :func:`fingerprints_of`."""
    from twinrun.engine import TwinEngine
    from twinrun.spec import load_experiment, resolve

    exp = load_experiment(path)
    engine = TwinEngine(resolve(exp, overrides or None, candidates=[candidate]), measure_memory=False)
    return fingerprints_of(engine.data, engine.states[candidate].model)


def fingerprints_of(data: Any, model: torch.nn.Module) -> dict[str, str]:
    """Digests of the inputs and targets of up to 2,000 examples per split and of each parameter and buffer."""
    out: dict[str, str] = {}
    for split, dataset in (("train", data.train), ("val", data.val)):
        n = len(dataset)
        index = np.linspace(0, n - 1, min(n, 2_000)).astype(int).tolist()
        inputs, targets = data.gather(dataset, index)
        out[f"{split} inputs"] = _digest(inputs)
        out[f"{split} targets"] = _digest(targets)
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        out[f"initial {name}"] = _digest(tensor)
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps(fingerprints(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))))
