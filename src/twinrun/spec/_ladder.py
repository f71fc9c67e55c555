"""One change at a time: what a candidate changes against the reference, and the ladder between them.

The recipe's advice is to complexify one change at a time: a candidate that differs
from the reference in a wider model *and* a higher learning rate can be better or
worse, and its verdict cannot say which change did it. :func:`changed_keys` lists
the keys a candidate changes, as a user writes them (``model.width``; ``model``
when the factory itself differs, which is one step with all its arguments), and
:func:`ladder` builds the candidates in between, ``A -> A+x -> A+x+y``, so that one
twin run shows what each change adds, on the same init and the same batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twinrun.errors import ConfigError
from twinrun.spec._experiment import Experiment
from twinrun.spec._resolve import CANDIDATE_ROLES, CandidateSpec, resolve

__all__ = ["changed_keys", "ladder", "one_change_warnings"]

_MISSING = object()


def changed_keys(spec: CandidateSpec, reference: CandidateSpec) -> list[str]:
    """The keys in which ``spec`` differs from ``reference``, in role order."""
    keys = []
    for role in CANDIDATE_ROLES:
        a, b = getattr(spec, role), getattr(reference, role)
        ca, cb = (None if a is None else a.to_config()), (None if b is None else b.to_config())
        if ca == cb:
            continue
        if ca is None or cb is None or ca["factory"] != cb["factory"]:
            keys.append(role)
            continue
        for kw in sorted(set(ca["kwargs"]) | set(cb["kwargs"])):
            if ca["kwargs"].get(kw, _MISSING) != cb["kwargs"].get(kw, _MISSING):
                keys.append(f"{role}.{kw}")
    return keys


def one_change_warnings(candidates: Mapping[str, CandidateSpec], reference: str) -> list[str]:
    """A warning for each candidate that differs from the reference in more than one key."""
    out = []
    for name, spec in candidates.items():
        if name == reference:
            continue
        keys = changed_keys(spec, candidates[reference])
        if len(keys) > 1 and f"{reference}+{keys[0]}" not in candidates:  # not already a ladder
            out.append(
                f"candidate {name!r} differs from the reference {reference!r} in {len(keys)} keys "
                f"({', '.join(keys)}): its verdict cannot say which change made the difference; "
                f"compare one change at a time (twinrun compare --ladder {name} trains the steps "
                "in between as twins)"
            )
    return out


def ladder(
    experiment: Experiment,
    candidate: str,
    *,
    reference: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[Experiment, list[str]]:
    """The experiment with the candidates between ``reference`` and ``candidate``, and their names in order.

    Step ``i`` is the reference with the first ``i`` of :func:`changed_keys` set to the candidate's
    values (resolved, ``--set`` included), named ``<reference>+<key>+...``; the last step is
    ``candidate`` itself.
    """
    resolved = resolve(experiment, overrides)
    declared = resolved.declared
    if candidate not in declared:
        raise ConfigError(
            f"--ladder {candidate!r}: experiment {experiment.name!r} has no such candidate",
            fix=f"choose one of: {', '.join(declared)}",
        )
    ref = reference or next(iter(declared))
    if ref not in declared:
        raise ConfigError(
            f"reference {ref!r} is not a candidate of experiment {experiment.name!r}",
            fix=f"choose one of: {', '.join(declared)}",
        )
    if ref == candidate:
        raise ConfigError(
            f"--ladder {candidate!r} is the reference itself: there is nothing between them",
            fix="name another candidate, or set --reference",
        )
    spec, base = declared[candidate], declared[ref]
    keys = changed_keys(spec, base)
    if len(keys) < 2:
        raise ConfigError(
            f"--ladder {candidate!r}: it differs from {ref!r} in {len(keys)} key{'s' if len(keys) != 1 else ''}"
            f"{' (' + keys[0] + ')' if keys else ''}: there is no step in between",
            fix=f"twinrun compare FILE --candidates {ref},{candidate}",
        )
    own = dict(experiment.candidates[ref])
    steps: dict[str, Mapping[str, Any]] = {}
    names = [ref]
    for i, key in enumerate(keys[:-1], start=1):
        role, _, kw = key.partition(".")
        factory = getattr(spec, role)
        if kw and kw not in factory.kwargs:
            raise ConfigError(
                f"--ladder {candidate!r}: {ref!r} sets {key} and {candidate!r} does not, so no "
                "override can step from one to the other",
                fix=f"give {candidate!r} its own value of {key}",
            )
        own[key] = factory if not kw else factory.kwargs[kw]
        name = f"{ref}+{'+'.join(keys[:i])}"
        if name in declared:
            raise ConfigError(
                f"--ladder {candidate!r}: a step would be named {name!r}, which is already a "
                "candidate of the experiment",
                fix="rename that candidate",
            )
        steps[name] = dict(own)
        names.append(name)
    names.append(candidate)
    candidates = {n: c for n, c in experiment.candidates.items() if n in (ref, candidate)}
    ordered = {ref: candidates[ref], **steps, candidate: candidates[candidate]}
    return experiment.replace(candidates=ordered), names
