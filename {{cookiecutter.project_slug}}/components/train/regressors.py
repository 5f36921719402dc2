"""The regressors this project trains and their hyperparameters, declared once.

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
    # Where a hyperparameter search looks (low, high), within the allowed range; None: not searched.
    search: tuple[float, float] | None = None
    help: str = ""


@dataclass(frozen=True)
class Regressor:
    estimator: str  # the scikit-learn class, imported by train.py only
    hyperparameters: tuple[str, ...]  # the keywords of the estimator, each one of HYPERPARAMETERS
    seeded: bool = False  # takes random_state (the pipeline's random_seed)
    fixed: dict[str, object] = field(default_factory=dict)  # keywords always passed as they are


HYPERPARAMETERS = {
    "alpha": Hyperparameter(float, 1.0, 0.0, search=(0.01, 100.0), help="L2 regularisation strength"),
    "n_estimators": Hyperparameter(int, 200, 1, search=(50, 500), help="number of trees"),
    "max_depth": Hyperparameter(int, None, 1, search=(2, 20), help="tree depth; unset means unlimited"),
    "min_samples_leaf": Hyperparameter(
        int, 10, 1, search=(1, 50), help="fewest rows per leaf; higher smooths noisy targets"
    ),
    "max_features": Hyperparameter(
        float, 0.5, 0.01, 1.0, search=(0.1, 1.0), help="fraction of features each split considers"
    ),
    "learning_rate": Hyperparameter(float, 0.05, 0.0001, search=(0.01, 0.3), help="shrinkage per iteration"),
    "max_iter": Hyperparameter(int, 100, 1, search=(50, 500), help="boosting iterations"),
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
