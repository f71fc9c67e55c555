"""Load an experiment from a Python file or an importable module.

A target is ``path/to/file.py``, ``package.module`` or either followed by
``:attribute``. Without an attribute, the module's ``experiment`` is used, or
its only :class:`Experiment` instance.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from twinrun.errors import ConfigError
from twinrun.spec._experiment import Experiment, ExperimentSource

__all__ = ["load_experiment", "split_target"]


def load_experiment(target: str | Path) -> Experiment:
    """Load the experiment named by ``target`` and record its source (path, hash, text)."""
    text_target = str(target)
    path_part, attr = split_target(text_target)
    path = Path(path_part)
    if path.suffix == ".py" or path.exists():
        module = _import_file(path)
        source_path = path.resolve()
    else:
        try:
            module = importlib.import_module(path_part)
        except ImportError as exc:
            raise ConfigError(
                f"experiment {text_target!r} is neither a file nor an importable module ({exc})",
                fix="pass the path of a .py file that defines `experiment = twinrun.Experiment(...)`",
            ) from exc
        source_path = Path(module.__file__ or path_part).resolve()
    experiment = _find(module, attr, text_target)
    text = source_path.read_text() if source_path.is_file() else ""
    source = ExperimentSource(path=str(source_path), sha256=hashlib.sha256(text.encode()).hexdigest(), text=text)
    return experiment.replace(source=source)


def split_target(target: str) -> tuple[str, str | None]:
    head, colon, tail = target.rpartition(":")
    if colon and tail.isidentifier() and head and not (len(head) == 1 and head.isalpha()):
        return head, tail
    return target, None


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ConfigError(
            f"experiment file {str(path)!r} does not exist",
            fix="check the path (run `twinrun demo --show-file` to see a complete example)",
        )
    resolved = path.resolve()
    name = "twinrun_experiment_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import experiment file {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # functions defined in the file must be picklable by reference
    try:
        spec.loader.exec_module(module)
    except ConfigError:
        del sys.modules[name]
        raise
    except Exception as exc:
        del sys.modules[name]
        raise ConfigError(
            f"experiment file {str(path)!r} failed to import: {type(exc).__name__}: {exc}",
            fix="run `python " + str(path) + "` to see the full traceback",
        ) from exc
    return module


def _find(module: ModuleType, attr: str | None, target: str) -> Experiment:
    if attr is not None:
        value = getattr(module, attr, None)
        if not isinstance(value, Experiment):
            raise ConfigError(f"{target!r}: {attr!r} is {type(value).__name__}, not a twinrun.Experiment")
        return value
    value = getattr(module, "experiment", None)
    if isinstance(value, Experiment):
        return value
    found = {k: v for k, v in vars(module).items() if isinstance(v, Experiment)}
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        raise ConfigError(
            f"{target!r} defines no twinrun.Experiment",
            fix="add `experiment = twinrun.Experiment(...)` at module level",
        )
    raise ConfigError(
        f"{target!r} defines several experiments: {', '.join(found)}",
        fix=f"pick one with {target}:NAME, e.g. {target}:{next(iter(found))}",
    )
