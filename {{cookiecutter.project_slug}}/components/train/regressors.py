"""The regressors this project trains and their hyperparameters, declared once.

The search space of ``tune`` is declared here too, next to each hyperparameter (``search``).

To add a regressor: add it to REGRESSORS (and any new hyperparameter to HYPERPARAMETERS) here, then its name to
``model_type``'s enum in train.yml (and a new hyperparameter as an input and a flag of its command there). Everything
else follows from this file: train.py's options, the pipeline's inputs (pipeline.py reads train.yml's), what ``auto``
trains (every regressor unless config.yml's model.candidates says otherwise), select's candidates, the values
config.yml may leave out; tests/test_regressors.py fails, naming what to add, if train.yml disagrees with it.

Plain data and the standard library only: the project's own package reads it too, without scikit-learn's seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hyperparameter:
    kind: type[int] | type[float]
    default: int | float | None  # None: unset, the estimator's own default (the input is optional)
    low: float
    high: float = math.inf
    # The values `tune` tries (a sweep's choice, so grid, random and bayesian sampling all take it, and whole
    # numbers stay whole), each within low..high; empty: not tuned.
    search: tuple[int | float, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class Regressor:
    estimator: str  # the scikit-learn class, imported by train.py only
    hyperparameters: tuple[str, ...]  # the keywords of the estimator, each one of HYPERPARAMETERS
    seeded: bool = False  # takes random_state (the pipeline's random_seed)
    fixed: dict[str, object] = field(default_factory=dict)  # keywords always passed as they are


HYPERPARAMETERS = {
    "alpha": Hyperparameter(
        float, 1.0, 0.0, search=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0), help="L2 regularisation strength"
    ),
    "n_estimators": Hyperparameter(int, 200, 1, search=(50, 100, 200, 400), help="number of trees"),
    "max_depth": Hyperparameter(int, None, 1, search=(2, 3, 4, 6, 8, 12, 16), help="tree depth; unset means unlimited"),
    "min_samples_leaf": Hyperparameter(
        int, 10, 1, search=(1, 2, 5, 10, 20, 50), help="fewest rows per leaf; higher smooths noisy targets"
    ),
    "max_features": Hyperparameter(
        float, 0.5, 0.01, 1.0, search=(0.2, 0.35, 0.5, 0.7, 1.0), help="fraction of features each split considers"
    ),
    "learning_rate": Hyperparameter(
        float, 0.05, 0.0001, search=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3), help="shrinkage per iteration"
    ),
    "max_iter": Hyperparameter(int, 100, 1, search=(50, 100, 200, 400), help="boosting iterations"),
}

REGRESSORS = {
    "ridge": Regressor("sklearn.linear_model.Ridge", ("alpha",)),
    "random_forest": Regressor(
        "sklearn.ensemble.RandomForestRegressor",
        ("n_estimators", "max_depth", "min_samples_leaf", "max_features"),
        seeded=True,
        fixed={"n_jobs": -1},
    ),
    "hist_gradient_boosting": Regressor(
        "sklearn.ensemble.HistGradientBoostingRegressor",
        ("learning_rate", "max_iter", "max_depth", "min_samples_leaf"),
        seeded=True,
    ),
}


def search_space(model_type: str) -> dict[str, tuple[int | float, ...]]:
    """The values ``tune`` tries for each of ``model_type``'s hyperparameters that has a search declared."""
    names = REGRESSORS[model_type].hyperparameters
    return {name: HYPERPARAMETERS[name].search for name in names if HYPERPARAMETERS[name].search}
