"""Statistics as small pure functions over documented array shapes.

Seeds as data (a sweep of ``K`` seeds; every function takes seed-aligned
``{candidate: [K]}`` scores, position ``k`` the same seed for every candidate):

* :func:`summarize`, :func:`iqm`: mean, std, median, IQM, min, max, range.
* :func:`mean_interval`: the t interval of a mean, widened where the seeds are skewed.
* :func:`bootstrap_ci`, :func:`bootstrap_intervals`: percentile, expanded percentile
  and BCa intervals, vectorised, seeded.
* :func:`paired_t_test`, :func:`paired_difference`, :func:`pairing_gain`,
  :func:`holm`, :func:`compare_to_reference`: candidates against a reference.
* :func:`probability_of_improvement`: P(A > B) over seeds, paired or unpaired.
* :func:`seed_ensemble`, :func:`ensemble_outputs`: the ensemble of the seeds.
* :func:`seeds_needed`, :func:`paired_t_power`: how many seeds a difference needs.
* :func:`recommend`: the plain-words recommendation.
* :func:`sequential_decision`: add seeds until resolved, valid under optional stopping.
* :func:`analyze_seeds`: all of it for one metric of a sweep, as a JSON-safe dict.

Results are typed: :class:`Interval` (and :class:`SkewInterval`, :class:`BlockInterval`)
and :class:`PairedDifference`, frozen, with ``None`` plus a ``reason`` where something
is not estimable and ``to_dict()`` for the stored JSON. :func:`analyze_seeds` composes
them into one JSON-safe record.

Twin-run verdicts (used by the engine): :func:`paired_t_interval`,
:func:`block_bootstrap_interval`, :func:`auto_block_length`.
"""

from twinrun.stats._analyze import HEADLINE_INTERVALS, analyze_seeds
from twinrun.stats._bootstrap import METHODS, bootstrap_ci, bootstrap_intervals
from twinrun.stats._ensemble import KINDS, ensemble_outputs, seed_ensemble
from twinrun.stats._improvement import PAIRINGS, probability_of_improvement
from twinrun.stats._intervals import (
    auto_block_length,
    block_bootstrap_interval,
    mean_interval,
    paired_t_interval,
)
from twinrun.stats._json import json_safe
from twinrun.stats._paired import (
    holm,
    paired_difference,
    paired_t_test,
    pairing_gain,
)
from twinrun.stats._power import paired_t_power, seeds_needed
from twinrun.stats._recommend import DEPLOY, recommend
from twinrun.stats._reference import compare_to_reference
from twinrun.stats._scores import AlignedScores, align_scores
from twinrun.stats._sequential import sequential_decision
from twinrun.stats._special import stdtrit
from twinrun.stats._summary import iqm, summarize
from twinrun.stats._types import (
    BlockInterval,
    BootstrapInterval,
    HolmTest,
    Improvement,
    Interval,
    PairedDifference,
    PairingGain,
    SeedComparison,
    SeedsNeeded,
    SequentialDecision,
    SkewInterval,
    Summary,
    finite_or_none,
)

__all__ = [
    "DEPLOY",
    "HEADLINE_INTERVALS",
    "KINDS",
    "METHODS",
    "PAIRINGS",
    "AlignedScores",
    "BlockInterval",
    "BootstrapInterval",
    "HolmTest",
    "Improvement",
    "Interval",
    "PairedDifference",
    "PairingGain",
    "SeedComparison",
    "SeedsNeeded",
    "SequentialDecision",
    "SkewInterval",
    "Summary",
    "align_scores",
    "analyze_seeds",
    "auto_block_length",
    "block_bootstrap_interval",
    "bootstrap_ci",
    "bootstrap_intervals",
    "compare_to_reference",
    "ensemble_outputs",
    "finite_or_none",
    "holm",
    "iqm",
    "json_safe",
    "mean_interval",
    "paired_difference",
    "paired_t_interval",
    "paired_t_power",
    "paired_t_test",
    "pairing_gain",
    "probability_of_improvement",
    "recommend",
    "seed_ensemble",
    "seeds_needed",
    "sequential_decision",
    "stdtrit",
    "summarize",
]
