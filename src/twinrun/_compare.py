"""``compare()``: the file-based flow, with the default sinks wired in.

The engine knows nothing of files on disk; this function is where a run gets
its folder (resolved config, result), its TensorBoard logs and its progress bar.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from twinrun._home import registry_path, runs_dir, tensorboard_dir, twinrun_home
from twinrun.engine import Sink, TwinEngine, TwinResult, new_run_id
from twinrun.registry import Registry, RegistrySink
from twinrun.sinks import ProgressSink, TensorBoardSink
from twinrun.spec import Experiment, load_experiment, resolve

__all__ = ["compare", "DEFAULT"]

DEFAULT: Any = "default"


def compare(
    experiment: Experiment | str | Path,
    *,
    candidates: Sequence[str] | None = None,
    reference: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    sinks: Sequence[Sink] = (),
    home: str | Path | None = None,
    logdir: str | Path | None = DEFAULT,
    progress: bool | None = None,
    run_id: str | None = None,
    registry: Registry | str | Path | bool | None = True,
    tags: Sequence[str] = (),
    sweep_id: str | None = None,
) -> TwinResult:
    """Train an experiment's candidates side by side and compare them.

    Args:
        experiment: an :class:`Experiment`, or the path of a file defining one.
        candidates: the candidates to run (default: all, in declared order).
        reference: the candidate others are compared with (default: the first).
        overrides: ``{"steps": 100, "model.width": 64, "wide:optimizer.lr": 1e-3}``.
        sinks: extra event sinks.
        home: twinrun's folder (default ``$TWINRUN_HOME`` or ``./.twinrun``).
        logdir: TensorBoard folder for this comparison; default
            ``<home>/tb/<experiment>-<run id>``; ``None`` writes no TensorBoard files.
        progress: show a progress bar (``None``: only on a terminal).
        run_id: the run's id (default: a fresh one).
        registry: where the run is recorded: ``True`` (default) ``<home>/registry.sqlite``,
            a path, or an open :class:`Registry`; ``False``/``None``: not recorded.
            ``result.artifacts["registry_run"]`` is the run's id there.
        tags: tags given to the run in the registry.
        sweep_id: the registry sweep this run belongs to (``twinrun seeds`` sets it).

    Returns:
        a :class:`TwinResult`; ``result.to_dict()`` is JSON-ready.
    """
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    resolved = resolve(exp, overrides, candidates=candidates, reference=reference)
    run_id = run_id or new_run_id()
    root = twinrun_home(home)
    recorder = _recorder(registry, root, tags, sweep_id)  # a bad registry fails before anything is written
    run_dir = runs_dir(root) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(resolved.to_config(), indent=2, sort_keys=True))
    all_sinks = list(sinks)
    tb_dir: Path | None = None
    if logdir is not None:
        tb_dir = tensorboard_dir(root) / f"{resolved.name}-{run_id[:8]}" if logdir is DEFAULT else Path(logdir)
        all_sinks.append(TensorBoardSink(tb_dir))
    if progress is not False:
        all_sinks.append(ProgressSink(enabled=progress))
    if recorder is not None:  # first: it records even if another sink fails
        recorder.artifacts.update(run_dir=str(run_dir), **({"tensorboard": str(tb_dir)} if tb_dir else {}))
        all_sinks.insert(0, recorder)
    try:
        engine = TwinEngine(resolved, sinks=all_sinks, run_id=run_id)
    except BaseException:
        if recorder is not None:  # nothing ran: release the registry
            recorder.close()
        raise
    result = engine.run()
    result.artifacts["run_dir"] = str(run_dir)
    if tb_dir is not None:
        result.artifacts["tensorboard"] = str(tb_dir)
    (run_dir / "result.json").write_text(json.dumps(result.to_dict(), indent=2))
    return result


def _recorder(
    registry: Registry | str | Path | bool | None, root: Path, tags: Sequence[str],
    sweep_id: str | None = None,
) -> RegistrySink | None:
    if registry is None or registry is False:
        return None
    return RegistrySink(registry_path(root) if registry is True else registry, tags=tags,
                        sweep_id=sweep_id)
