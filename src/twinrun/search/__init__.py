"""Twin search: random (or Optuna) hyperparameter search whose trials are twins, confirmed by replicas.

::

    import twinrun
    from twinrun.search import choice, loguniform

    experiment = twinrun.Experiment(..., search={"optimizer.lr": loguniform(1e-4, 1e-1),
                                                 "model.width": choice([32, 64, 128])})
    found = twinrun.search.search(experiment, trials=16, batch=4)   # or: twinrun search exp.py --trials 16
    print(found.format())

Trials trained side by side with the reference share its initial weights (where shapes match)
and its batches, so their ranking is paired and far less noisy than across separate runs; the
top few are then confirmed over replicas, and the winner is what the replicas support.
"""

from twinrun.search._result import SearchResult, Trial
from twinrun.search._run import find_search, load_search, search
from twinrun.search._samplers import SAMPLERS
from twinrun.search._space import (
    Choice,
    Distribution,
    IntUniform,
    LogUniform,
    Uniform,
    choice,
    integer,
    loguniform,
    parse_space,
    uniform,
)

__all__ = [
    "SAMPLERS",
    "Choice",
    "Distribution",
    "IntUniform",
    "LogUniform",
    "SearchResult",
    "Trial",
    "Uniform",
    "choice",
    "find_search",
    "integer",
    "load_search",
    "loguniform",
    "parse_space",
    "search",
    "uniform",
]
