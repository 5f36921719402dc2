"""The model train.py fits: the regressor regressors.py declares behind the preprocessing, one scikit-learn Pipeline."""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn
import skops
import skops.io
from regressors import REGRESSORS
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import KFold, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MAX_CATEGORIES = 30
# What an online deployment needs besides the model's own packages: Azure ML's inference server, and the
# package its generated MLflow scoring script imports (azureml-examples, ncd/sklearn-diabetes/model/conda.yaml).
# Equal to the pins of online/conda.yml (a test keeps them so), so the model's requirements alone build a
# working deployment environment.
SERVING_REQUIREMENTS = ("azureml-inference-server-http==1.5.1", "azureml-ai-monitoring==1.0.0")


def tunable(args: argparse.Namespace) -> dict[str, Any]:
    """The chosen regressor's hyperparameters, by name: what select reports and ``tune`` writes into config.yml."""
    return {name: getattr(args, name) for name in REGRESSORS[args.model_type].hyperparameters}


def hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    """The values the chosen regressor takes, by hyperparameter name (its random seed included)."""
    seed = {"random_seed": args.random_seed} if REGRESSORS[args.model_type].seeded else {}
    return {**tunable(args), **seed}


def build_regressor(args: argparse.Namespace) -> Any:
    regressor = REGRESSORS[args.model_type]
    module, _, name = regressor.estimator.rpartition(".")
    keywords = {"random_state" if key == "random_seed" else key: value for key, value in hyperparameters(args).items()}
    return getattr(importlib.import_module(module), name)(**keywords, **regressor.fixed)


def build_model(args: argparse.Namespace, numeric: list[str], categorical: list[str]) -> Pipeline:
    numeric_steps = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical_steps = make_pipeline(
        SimpleImputer(strategy="most_frequent"),
        OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES, sparse_output=False),
    )
    preprocess = ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)]
    )
    return Pipeline([("preprocess", preprocess), ("regressor", build_regressor(args))])


def load_split(prepped_data: Path, name: str) -> tuple[pd.DataFrame, pd.Series, dict]:
    features = json.loads((prepped_data / "features.json").read_text())
    frame = pd.read_parquet(prepped_data / f"{name}.parquet")
    return frame[features["numeric"] + features["categorical"]], frame[features["target"]], features


def runtime_requirements() -> list[str]:
    """The packages the model needs to load, as installed here (inferring them would cost seconds), and to be served."""
    loading = [f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}", f"pandas=={pd.__version__}"]
    return [*loading, f"numpy=={np.__version__}", *SERVING_REQUIREMENTS]


def cross_validation(model: Pipeline, x: pd.DataFrame, y: pd.Series, folds: int, seed: int) -> dict[str, Any]:
    """The model's scores on each of ``folds`` folds of the train split (scikit-learn's shuffled KFold, seeded, so
    every candidate is scored on the same folds), and their mean and spread: what select compares candidates by and
    a sweep optimises (config.yml's tuning.primary_metric)."""
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    scoring = {"rmse": "neg_root_mean_squared_error", "r2": "r2"}
    scores = cross_validate(model, x, y, cv=splitter, scoring=scoring)
    rmse, r2 = -scores["test_rmse"], scores["test_r2"]
    return {
        "folds": folds,
        "cv_rmse": float(rmse.mean()),
        "cv_rmse_std": float(rmse.std(ddof=1)),  # the folds' spread: how far one split's verdict could be off
        "cv_r2": float(r2.mean()),
        "fold_rmse": [float(value) for value in rmse],
    }


def log_cross_validation(scores: dict[str, Any]) -> None:
    mlflow.log_metrics({name: scores[name] for name in ("cv_rmse", "cv_rmse_std", "cv_r2")})
    for fold, rmse in enumerate(scores["fold_rmse"], 1):
        mlflow.log_metric("cv_fold_rmse", rmse, step=fold)  # one metric, a step per fold: MLflow charts it


def train(args: argparse.Namespace) -> int:
    """Fit the model train.py's options describe (cross-validated first when asked) on the whole train split, log it
    with MLflow and save it as an MLflow model."""
    x, y, features = load_split(args.prepped_data, "train")
    model = build_model(args, features["numeric"], features["categorical"])
    with mlflow.start_run():
        mlflow.log_params(
            {"model_type": args.model_type, **hyperparameters(args), "n_train_rows": len(x), "n_features": x.shape[1]}
        )
        # Timed: what the folds cost inside this step, beside the fit and the step's own time (step.log).
        started = time.perf_counter()
        scores = cross_validation(model, x, y, args.cv_folds, args.random_seed) if args.cv_folds else None
        scored = time.perf_counter()
        if scores:
            mlflow.log_param("cv_folds", args.cv_folds)
            log_cross_validation(scores)
        model.fit(x, y)
        fitted = time.perf_counter()
        train_rmse = root_mean_squared_error(y, model.predict(x))
        mlflow.log_metric("train_rmse", train_rmse)
        # select names candidates by their model type and compares them by their cross-validation scores.
        described = {"model_type": args.model_type, "hyperparameters": tunable(args)}
        mlflow.sklearn.save_model(
            model,
            args.model,
            pip_requirements=runtime_requirements(),
            # skops refuses to load types it was not told to trust: trust exactly those of the model just fitted.
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
            # No input signature: MLflow would reject whole numbers in a column it saw as decimals (a column
            # with gaps), so raw CSV rows would not score. The fitted preprocessing checks the columns instead.
            metadata={"features": features, **described, **({"cross_validation": scores} if scores else {})},
        )
    shape = f"{len(x)} rows, {x.shape[1]} features"
    print(f"trained {args.model_type} on {shape} in {fitted - scored:.2f}s; train RMSE {train_rmse:.3f}")
    if scores:
        spread = f"{scores['cv_rmse']:.3f} ± {scores['cv_rmse_std']:.3f} (mean ± standard deviation of the folds)"
        print(f"{args.cv_folds}-fold cross-validation RMSE {spread} in {scored - started:.2f}s")
    return 0
