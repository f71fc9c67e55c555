"""Your own training loop, twinned: :class:`Twin` and its replicas (:class:`TwinReplicas`).

For people who keep their loop: the candidates share initial weights, step on
the batch you hand them with the same dropout masks, and give a paired verdict,
a ledger, checkpoints and a registry entry through the usual sinks. This package
sits above the engine (whose step, evaluation and recording it reuses) and the
checks (``twin.check``).
"""

from twinrun.loop._twin import Twin
from twinrun.loop._twin_replicas import REPLICA_SCOPE, TwinReplicas

__all__ = ["REPLICA_SCOPE", "Twin", "TwinReplicas"]
