"""Tuning's part of the graphs: a candidate's model node (a train node, or a sweep node over the search space
regressors.py declares) and config.yml's tuning settings as the keywords of azure-ai-ml's ``sweep()``. pipeline.py
wires them in.
"""

import math
from types import ModuleType
from typing import Any

from azure.ai.ml.entities import CommandComponent
from azure.ai.ml.sweep import (
    BanditPolicy,
    BayesianSamplingAlgorithm,
    Choice,
    GridSamplingAlgorithm,
    MedianStoppingPolicy,
    RandomSamplingAlgorithm,
    TruncationSelectionPolicy,
)

from .settings import Settings, SettingsError
from .tuning import tuning_settings


def candidate_model(
    train: CommandComponent,
    model_type: str,
    prepped_data: Any,
    training: dict[str, Any],
    sweep: dict[str, Any] | None,
    regressors: ModuleType,
) -> Any:
    """A candidate's model: a train node of ``model_type`` (``train_<type>``), or with ``sweep`` settings a sweep
    node over the values regressors.py declares for ``tune`` (``tune_<type>``), whose output is its best trial's."""
    if sweep is None:
        node = train(prepped_data=prepped_data, model_type=model_type, **training)
        node.name = f"train_{model_type}"
        return node.outputs.model
    values = regressors.search_space(model_type)
    space = {name: Choice(list(choices)) for name, choices in values.items()}
    trial = train(prepped_data=prepped_data, model_type=model_type, **{**training, **space})
    combinations = math.prod(len(choices) for choices in values.values())
    if isinstance(sweep["sampling_algorithm"], RandomSamplingAlgorithm) and combinations <= sweep["max_total_trials"]:
        # The trials would cover the whole space anyway, with repeats: try each combination once instead.
        sweep = {**sweep, "sampling_algorithm": GridSamplingAlgorithm(), "max_total_trials": combinations}
    node = trial.sweep(**sweep)
    node.name = f"tune_{model_type}"
    return node.outputs.model


def sweep_settings(settings: Settings) -> dict[str, Any]:
    """config.yml's tuning section as the keywords of azure-ai-ml's ``sweep()``."""
    tuning = tuning_settings(settings)
    sampling = {"random": RandomSamplingAlgorithm, "grid": GridSamplingAlgorithm, "bayesian": BayesianSamplingAlgorithm}
    # The pipeline's seed makes random sampling repeatable, on Azure ML as in the local runner.
    seeded = {"seed": settings.setting("random_seed")} if tuning["sampling"] == "random" else {}
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
            raise SettingsError(f"{settings.root / 'config.yml'}: tuning.early_termination: {error}") from None
    return {
        "primary_metric": tuning["primary_metric"],
        "goal": tuning["goal"],
        "sampling_algorithm": sampling[tuning["sampling"]](**seeded),
        "max_total_trials": tuning["max_total_trials"],
        "max_concurrent_trials": tuning["max_concurrent_trials"],
        "timeout": tuning["timeout_minutes"] * 60,
        "early_termination_policy": policy,
    }
