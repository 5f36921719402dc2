"""Tuning's part of a project's graphs: config.yml's tuning settings as the keywords of azure-ai-ml's ``sweep()``, and
a sweep node over a search space built with them. A project's pipeline module wires them in.
"""

import math
from collections.abc import Callable, Sequence
from typing import Any

from azure.ai.ml.sweep import (
    BanditPolicy,
    BayesianSamplingAlgorithm,
    Choice,
    GridSamplingAlgorithm,
    MedianStoppingPolicy,
    RandomSamplingAlgorithm,
    TruncationSelectionPolicy,
)

from .config_files import SettingsError
from .project import Project
from .tuning import tuning_settings


def swept(trial: Callable[..., Any], space: dict[str, Sequence[Any]], sweep: dict[str, Any]) -> Any:
    """A sweep node over ``space`` (each input's values to try) of the node ``trial(**choices)`` makes, with ``sweep``
    settings (``sweep_settings``); its outputs are its best trial's. Random sampling over a space no larger than the
    trials allowed tries each combination once, by grid, instead of repeating some."""
    trial_node = trial(**{name: Choice(list(values)) for name, values in space.items()})
    combinations = math.prod(len(values) for values in space.values())
    if isinstance(sweep["sampling_algorithm"], RandomSamplingAlgorithm) and combinations <= sweep["max_total_trials"]:
        sweep = {**sweep, "sampling_algorithm": GridSamplingAlgorithm(), "max_total_trials": combinations}
    return trial_node.sweep(**sweep)


def sweep_settings(project: Project) -> dict[str, Any]:
    """config.yml's tuning section as the keywords of azure-ai-ml's ``sweep()``."""
    tuning = tuning_settings(project)
    sampling = {"random": RandomSamplingAlgorithm, "grid": GridSamplingAlgorithm, "bayesian": BayesianSamplingAlgorithm}
    # The pipeline's seed makes random sampling repeatable, on Azure ML as in the local runner.
    seed = project.config.get("random_seed")
    seeded = {"seed": seed} if tuning["sampling"] == "random" and seed is not None else {}
    termination = tuning["early_termination"]
    policy = None
    if termination:
        policies = {
            "bandit": BanditPolicy,
            "median_stopping": MedianStoppingPolicy,
            "truncation_selection": TruncationSelectionPolicy,
        }
        options = {key: value for key, value in termination.items() if key != "policy"}
        try:
            policy = policies[termination["policy"]](**options)
        except TypeError as error:
            raise SettingsError(f"{project.root / 'config.yml'}: tuning.early_termination: {error}") from None
    return {
        "primary_metric": tuning["primary_metric"],
        "goal": tuning["goal"],
        "sampling_algorithm": sampling[tuning["sampling"]](**seeded),
        "max_total_trials": tuning["max_total_trials"],
        "max_concurrent_trials": tuning["max_concurrent_trials"],
        "timeout": tuning["timeout_minutes"] * 60,
        "early_termination_policy": policy,
    }
