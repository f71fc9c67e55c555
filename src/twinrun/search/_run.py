"""``search()``: random (or Optuna) search whose trials are twins of the reference, confirmed by replicas.

::

    sample N configurations (a seeded generator, or an Optuna sampler)
    for each batch of K:  one twin run of the reference and the K trials
                          (same initial weights where shapes match, same batches, same augmentation)
                          each trial's paired difference to the reference -> the sampler
    rank the trials by that difference
    confirm the top M:    R replicas (seeds shared by every candidate, none of them the seed the trials
                          were ranked on: a trial chosen for its luck on that seed gets no second helping)
    winner:               the best of those resolved better than the reference across the replicas

Every batch is a registry run (tagged ``search:<id>``) holding every trial as a candidate with its
resolved config; the search's own state (``<home>/searches/<id>/search.json``, written atomically
after every batch and replica) lets ``--resume`` continue after a crash without re-running
anything that finished. A batch interrupted in the middle is run again, with the same trials.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from twinrun._atomic import write_json
from twinrun._home import twinrun_home
from twinrun.errors import ConfigError
from twinrun.search._result import SearchResult, Trial
from twinrun.search._samplers import make_sampler
from twinrun.search._space import Distribution, check_space, parse_space
from twinrun.spec import Experiment, load_experiment, resolve

__all__ = ["find_search", "load_search", "search"]

Say = Callable[[str], None]


def _positive(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"--{name} {value!r} must be a whole number >= {minimum}", fix=f"e.g. --{name} {max(minimum, 4)}"
        )
    return value


def find_search(root: Path, query: str) -> Path:
    found = sorted(p for p in (root / "searches").glob(f"{query}*") if (p / "search.json").is_file())
    if len(found) != 1:
        raise ConfigError(
            f"search {query!r} names {len(found)} searches in {root / 'searches'}",
            fix="give the id twinrun search printed (a prefix is enough)",
        )
    return found[0]


def _save(folder: Path, state: Mapping[str, Any]) -> None:
    write_json(folder / "search.json", state, allow_nan=False)


def search(
    experiment: Experiment | str | Path,
    *,
    trials: int,
    batch: int = 4,
    sampler: str = "random",
    seed: int = 0,
    confirm: int = 3,
    replicas: int = 4,
    metric: str | None = None,
    space: Mapping[str, Distribution] | None = None,
    overrides: Mapping[str, Any] | None = None,
    home: str | Path | None = None,
    resume: str | None = None,
    progress: bool | None = False,
    say: Say | None = None,
) -> SearchResult:
    """Search ``experiment``'s space (its ``search`` field, or ``space``) with twins; see the module.

    Bad input (an unknown key, an empty range, ``trials=0``, an unknown metric or sampler) is refused
    before anything trains.
    """
    from twinrun._compare import compare

    say = say or (lambda _line: None)
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    root = twinrun_home(home)
    base = dict(overrides or {})
    if resume is not None:
        folder = find_search(root, resume)
        state = json.loads((folder / "search.json").read_text())
        if state["experiment"] != exp.name:
            raise ConfigError(
                f"search {state['id'][:8]} belongs to experiment {state['experiment']!r}, not {exp.name!r}",
                fix="resume it with the file it was started with",
            )
        trials, batch, sampler, seed = state["trials"], state["batch"], state["sampler"], state["seed"]
        confirm, replicas, metric, base = state["confirm"], state["replicas"], state["metric"], state["overrides"]
    _positive("trials", trials)
    _positive("batch", batch)
    _positive("confirm", confirm, 0)
    _positive("replicas", replicas, 2)
    if space is None and resume is not None:  # the space it was started with (--space is not given again)
        space = parse_space([f"{k}={v}" for k, v in state["space"].items()])
    checked = check_space(space if space is not None else exp.search, exp)
    scoped = [k for k in checked if ":" in k]
    if scoped:
        raise ConfigError(
            f"search space keys {scoped} name one candidate; a trial is a candidate of its own",
            fix="search keys as --set takes them for every candidate: optimizer.lr, model.width",
        )
    resolved = resolve(exp, base)
    reference = resolved.reference
    goals = {"loss": False, **{k: m.higher_is_better for k, m in resolved.metrics.items()}}
    metric = metric or next((m for m in resolved.metrics), "loss")
    if metric not in goals:
        raise ConfigError(
            f"metric {metric!r} is not measured by experiment {exp.name!r}", fix=f"use one of: {', '.join(goals)}"
        )
    higher = goals[metric]
    if resume is None:
        sid = uuid.uuid4().hex
        folder = root / "searches" / sid
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "id": sid,
            "experiment": exp.name,
            "space": {k: d.describe() for k, d in sorted(checked.items())},
            "trials": trials,
            "batch": batch,
            "sampler": sampler,
            "seed": seed,
            "confirm": confirm,
            "replicas": replicas,
            "metric": metric,
            "higher_is_better": higher,
            "reference": reference,
            "run_seed": resolved.settings.seed,
            "overrides": base,
            "batches": [],
            "confirmation": {"runs": {}},
        }
    elif state["space"] != {k: d.describe() for k, d in sorted(checked.items())}:
        raise ConfigError(
            f"search {state['id'][:8]} searched {state['space']}, not this space",
            fix="resume with the experiment file and --space it was started with",
        )
    sid = state["id"]
    proposer = make_sampler(sampler, checked, seed=seed, folder=folder, name=sid, maximize=higher)
    proposer.skip(sum(len(b["trials"]) for b in state["batches"]))
    tags = [f"search:{sid[:8]}"]

    def run(candidates: dict[str, Mapping[str, Any]], extra: Mapping[str, Any], what: list[str]) -> Any:
        return compare(
            exp.replace(candidates=candidates),
            candidates=list(candidates),
            reference=reference,
            overrides={**base, **extra},
            home=home,
            tags=[*tags, *what],
            progress=progress,
        )

    for index in range((trials + batch - 1) // batch):
        if index >= len(state["batches"]):  # proposed and saved before training: a crash re-runs these
            asked = proposer.ask(min(batch, trials - index * batch))
            state["batches"].append(
                {
                    "index": index,
                    "status": "pending",
                    "run_id": None,
                    "trials": {f"t{n:03d}": {"number": n, "overrides": c} for n, c in asked},
                }
            )
            _save(folder, state)
        entry = state["batches"][index]
        if entry["status"] == "finished":
            continue
        say(f"batch {index + 1}: {reference} and {', '.join(entry['trials'])} as twins")
        own = dict(exp.candidates[reference])
        result = run(
            {reference: own, **{n: {**own, **t["overrides"]} for n, t in entry["trials"].items()}},
            {},
            [f"batch:{index}"],
        )
        entry.update(status="finished", run_id=result.run_id)
        for name, t in entry["trials"].items():
            comparison = result.comparisons.get(name)
            d = comparison.val.get(metric) if comparison is not None else None
            t.update(
                status=result.candidates[name].status,
                diff=None if d is None or not math.isfinite(d.mean) else d.mean,
                low=None if d is None else d.low,
                high=None if d is None else d.high,
            )
            proposer.tell(t["number"], t["diff"])
        _save(folder, state)
    result = load_search(folder)
    if confirm and result.ranked():
        _confirm(state, folder, result, run, say, dict(exp.candidates[reference]))
    return load_search(folder)


def _confirm(
    state: dict[str, Any], folder: Path, found: SearchResult, run: Callable[..., Any], say: Say, own: Mapping[str, Any]
) -> None:
    """The top trials and the reference over replicas: seeds shared by every candidate, analysed as seeds."""
    from twinrun.stats import analyze_seeds

    top = found.ranked()[: state["confirm"]]
    conf = state["confirmation"]
    conf["candidates"] = [t.name for t in top]
    seed0 = int(state["run_seed"]) + 1  # the batches trained with run_seed: the replicas use others
    reference = state["reference"]
    candidates = {reference: dict(own), **{t.name: {**own, **t.overrides} for t in top}}
    for r in range(state["replicas"]):
        key = str(seed0 + r)
        if key in conf["runs"]:
            continue
        say(f"confirming {', '.join(conf['candidates'])} against {reference}: replica {r + 1} of {state['replicas']}")
        result = run(candidates, {"seed": seed0 + r}, ["confirm", f"replica:{r}"])
        conf["runs"][key] = {
            "run_id": result.run_id,
            "final": {n: c.final.get(state["metric"]) for n, c in result.candidates.items()},
        }
        _save(folder, state)
    seeds = sorted(conf["runs"], key=int)
    names = [reference, *conf["candidates"]]
    scores = {n: [conf["runs"][s]["final"].get(n) for s in seeds] for n in names}
    scores = {n: [math.nan if v is None else v for v in values] for n, values in scores.items()}
    analysis = analyze_seeds(
        scores,
        higher_is_better=bool(state["higher_is_better"]),
        reference=reference,
        seeds=[int(s) for s in seeds],
        metric=state["metric"],
        n_resamples=2000,
    )
    conf["analysis"] = {
        "comparisons": {
            n: {
                "difference": {k: c["difference"][k] for k in ("diff", "low", "high", "p_value", "reason")},
                "decision": c["decision"],
            }
            for n, c in analysis["comparisons"].items()
        },
        "recommendation": analysis["recommendation"]["line"],
        "replicas": len(seeds),
    }
    _save(folder, state)


def load_search(folder: str | Path) -> SearchResult:
    """A search's result from its folder (``twinrun search --show``)."""
    folder = Path(folder)
    state = json.loads((folder / "search.json").read_text())
    trials = [
        Trial(
            name,
            t["number"],
            t["overrides"],
            b["index"],
            b["run_id"],
            t.get("diff"),
            t.get("low"),
            t.get("high"),
            t.get("status", "pending"),
        )
        for b in state["batches"]
        for name, t in b["trials"].items()
    ]
    goals_higher = bool(state["higher_is_better"])
    conf = (state.get("confirmation") or {}).get("analysis")
    winner = None
    if conf:
        better = [(c["difference"]["diff"], n) for n, c in conf["comparisons"].items() if c["decision"] == "better"]
        if better:
            winner = max(better)[1] if goals_higher else min(better)[1]
    return SearchResult(
        state["id"],
        state["experiment"],
        state["reference"],
        state["metric"],
        goals_higher,
        state["sampler"],
        tuple(trials),
        conf,
        winner,
        str(folder),
    )
