"""Replicas of a :class:`~twinrun.Twin`: every candidate trained K times in your loop, the verdict across them.

One run's verdict holds which validation examples were drawn, not training
noise. To say something about the candidates' recipes, train each K times with
other initial weights and dropout masks and compare the replicas' means::

    twins = twinrun.Twin.replicas({"base": make_base, "wide": make_wide}, 5, seed=0)
    for x, y in loader:
        twins.step(x, y, loss_fn)           # every replica of every candidate, on this batch
    verdict = twins.verdict(val_loader, loss_fn)  # paired across replicas: init and dropout vary

A factory returns ``(model, optimizer)`` or ``(model, optimizer, scheduler)``;
replica ``r`` builds its models with the global generators seeded from the stream
``replica`` at ``r`` (so its initial weights are a function of the seed and ``r``,
and the process's own generators are left as they were), and draws its dropout
masks from its own stream. Within a replica the candidates are twins as always
(shared initial weights, the same masks). Your loader gives every replica the same
batches in the same order, so the interval leaves the data order out: it says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self

from twinrun.engine import Comparison, Difference, Sink
from twinrun.errors import BuildError, CheckpointError
from twinrun.loop._twin import Twin
from twinrun.rng import derive_seed, isolated_global_rng
from twinrun.stats import paired_t_test

__all__ = ["REPLICA_SCOPE", "TwinReplicas"]

REPLICA_SCOPE = (
    "these recipes trained on your batches: the interval holds initial weights and dropout masks "
    "(one replica each), not the order of your batches (every replica saw the same) nor which "
    "validation examples were drawn"
)


class TwinReplicas:
    """``replicas`` copies of a :class:`Twin`, each with its own initial weights and dropout stream.

    Args:
        factories: name -> ``fn() -> (model, optimizer[, scheduler])``, called once per replica.
        replicas: how many (at least 3: a paired interval needs three pairs).
        seed: the run seed; replica ``r``'s seed is derived from it and ``r``.
        sinks: ``fn(r) -> sinks`` for replica ``r`` (a registry sink per replica, a ledger...).
        twin_options: the other :class:`Twin` arguments (``metrics``, ``grad_clip``, ``share_init``...).
    """

    def __init__(
        self,
        factories: Mapping[str, Callable[[], Sequence[Any]]],
        replicas: int,
        *,
        seed: int = 0,
        sinks: Callable[[int], Sequence[Sink]] | None = None,
        **twin_options: Any,
    ) -> None:
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 3:
            raise BuildError(
                f"replicas={replicas!r}: a verdict across replicas needs at least 3",
                fix="pass replicas=5 (or more: the interval narrows with their number)",
            )
        if not factories or not all(callable(f) for f in factories.values()):
            raise BuildError(
                "Twin.replicas takes factories, name -> fn() -> (model, optimizer)",
                fix='Twin.replicas({"a": lambda: (make_a(), ...), ...}, 5): each replica builds its own',
            )
        self.seed = seed
        self.twins: list[Twin] = []
        for r in range(replicas):
            own = derive_seed(seed, "replica", r)
            with isolated_global_rng(own):  # the replica's initial weights; the process's generators stay put
                parts = {name: factory() for name, factory in factories.items()}
            self.twins.append(Twin(parts, seed=own, sinks=sinks(r) if sinks else (), **twin_options))

    @property
    def models(self) -> list[dict[str, Any]]:
        """Each replica's models, by name."""
        return [twin.models for twin in self.twins]

    def step(self, inputs: Any, targets: Any, loss_fn: Any) -> dict[str, list[float]]:
        """One update of every replica of every live candidate on this batch; ``{name: [loss per replica]}``."""
        out: dict[str, list[float]] = {}
        for twin in self.twins:
            for name, loss in twin.step(inputs, targets, loss_fn).items():
                out.setdefault(name, []).append(loss)
        return out

    def verdict(
        self,
        batches: Iterable[tuple[Any, Any]],
        loss_fn: Any,
        *,
        reference: str | None = None,
        confidence: float = 0.95,
    ) -> dict[str, Comparison]:
        """Every candidate against ``reference`` (default: the first): the paired difference of the replicas'
        validation means (loss and every metric), replica by replica, with its interval (Student's t widened
        for skew, as for seeds) and its scope (:data:`REPLICA_SCOPE`)."""
        fixed = [tuple(b) for b in batches]
        per_replica = [twin.verdict(fixed, loss_fn, reference=reference, confidence=confidence) for twin in self.twins]
        means = [{n: out.means() for n, out in twin.history.last_eval.items()} for twin in self.twins]
        ref = reference or next(iter(self.twins[0].states))
        goals = {"loss": False, **{k: m.higher_is_better for k, m in self.twins[0].metrics.items()}}
        out: dict[str, Comparison] = {}
        for name in per_replica[0]:
            val: dict[str, Difference] = {}
            for metric, higher in goals.items():
                ours = [m[name].get(metric, float("nan")) if name in m else float("nan") for m in means]
                theirs = [m[ref].get(metric, float("nan")) for m in means]
                test = paired_t_test(ours, theirs, confidence=confidence)
                val[metric] = Difference(
                    mean=test.estimate if test.estimate is not None else float("nan"),
                    low=test.low,
                    high=test.high,
                    n=test.n,
                    method="paired over replicas (t, widened for skew)",
                    higher_is_better=higher,
                    scope=REPLICA_SCOPE,
                )
            out[name] = Comparison(name, ref, val, None)
        return out

    def state_dict(self, user: Any = None) -> dict[str, Any]:
        """Every replica's :meth:`Twin.state_dict`, and your ``user`` part."""
        return {"version": 1, "seed": self.seed, "user": user, "replicas": [t.state_dict() for t in self.twins]}

    def load_state_dict(self, state: Mapping[str, Any]) -> Any:
        """Continue every replica from :meth:`state_dict`; returns its ``user`` part."""
        saved = state.get("replicas", [])
        if len(saved) != len(self.twins) or state.get("seed") != self.seed:
            raise CheckpointError(
                f"the state holds {len(saved)} replicas of seed {state.get('seed')!r}; these are "
                f"{len(self.twins)} of seed {self.seed!r}",
                fix="build Twin.replicas with the replicas and seed the state was saved from",
            )
        for twin, part in zip(self.twins, saved):
            twin.load_state_dict(part)
        return state.get("user")

    def close(self) -> None:
        for twin in self.twins:
            twin.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        for twin in self.twins:
            twin.__exit__(exc_type, exc, tb)
