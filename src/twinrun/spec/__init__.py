"""Experiment specification: factories, candidates, settings, overrides and loading."""

from twinrun.spec._experiment import Experiment, ExperimentSource, FactoryLike
from twinrun.spec._factory import ROLES, Factory, factory, import_object, jsonable
from twinrun.spec._ladder import changed_keys, ladder
from twinrun.spec._loader import load_experiment, split_target
from twinrun.spec._metrics import Metric, accuracy, check_metric_output, mae, mse
from twinrun.spec._resolve import (
    CANDIDATE_ROLES,
    CandidateSpec,
    ResolvedExperiment,
    parse_overrides,
    resolve,
)
from twinrun.spec._settings import EXECUTION_SETTINGS, SETTING_HELP, Settings, parse_bytes

__all__ = [
    "CANDIDATE_ROLES",
    "EXECUTION_SETTINGS",
    "ROLES",
    "SETTING_HELP",
    "CandidateSpec",
    "Experiment",
    "ExperimentSource",
    "Factory",
    "FactoryLike",
    "Metric",
    "ResolvedExperiment",
    "Settings",
    "accuracy",
    "changed_keys",
    "check_metric_output",
    "factory",
    "import_object",
    "jsonable",
    "ladder",
    "load_experiment",
    "mae",
    "mse",
    "parse_bytes",
    "parse_overrides",
    "resolve",
    "split_target",
]
