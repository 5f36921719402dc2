"""The model train.py fits: the regressor regressors.py declares behind the preprocessing, one scikit-learn Pipeline."""

from __future__ import annotations

import argparse
import importlib
import json
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
from sklearn.metrics import r2_score, root_mean_squared_error
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MAX_CATEGORIES = 30
# What an online deployment needs besides the model's own packages: Azure ML's inference server, and the
# package its generated MLflow scoring script imports (azureml-examples, ncd/sklearn-diabetes/model/conda.yaml).
# Equal to the pins of online/conda.yml (a test keeps them so), so the model's requirements alone build a
# working deployment environment.
SERVING_REQUIREMENTS = ("azureml-inference-server-http==1.5.1", "azureml-ai-monitoring==1.0.0")


def tunable(args: argparse.Namespace) -> dict[str, Any]:
    """The chosen regressor's hyperparameters, by name: what select reports and a refit takes over."""
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


Rows = tuple[pd.DataFrame, pd.Series]  # features, target


def training_rows(args: argparse.Namespace) -> tuple[Rows, dict, Rows | None]:
    """The rows to fit on, their features, and the validation rows to score (None when there are none to hold out).

    A refit learns from the whole train split: the validation rows did their job when select chose the winner.
    """
    x, y, features = load_split(args.prepped_data, "train")
    if not (args.prepped_data / "validation.parquet").is_file():
        return (x, y), features, None
    validation_x, validation_y, _ = load_split(args.prepped_data, "validation")
    if args.refit:
        whole = pd.concat([x, validation_x], ignore_index=True), pd.concat([y, validation_y], ignore_index=True)
        return whole, features, None
    return (x, y), features, (validation_x, validation_y)


def validation_scores(model: Pipeline, validation: Rows) -> dict[str, float]:
    """The metrics select compares candidates by and a sweep optimises (config.yml's tuning.primary_metric)."""
    rows, actual = validation
    predicted = model.predict(rows)
    return {"validation_rmse": root_mean_squared_error(actual, predicted), "validation_r2": r2_score(actual, predicted)}


def train(args: argparse.Namespace) -> int:
    """Fit the model train.py's options describe, log it with MLflow and save it as an MLflow model."""
    (x, y), features, validation = training_rows(args)
    model = build_model(args, features["numeric"], features["categorical"])
    with mlflow.start_run():
        mlflow.log_params(
            {"model_type": args.model_type, **hyperparameters(args), "n_train_rows": len(x), "n_features": x.shape[1]}
        )
        mlflow.set_tag("refit", str(args.refit).lower())
        model.fit(x, y)
        predictions = model.predict(x)
        train_rmse = root_mean_squared_error(y, predictions)
        mlflow.log_metric("train_rmse", train_rmse)
        scored = validation_scores(model, validation) if validation is not None else {}
        mlflow.log_metrics(scored)
        mlflow.sklearn.save_model(
            model,
            args.model,
            pip_requirements=runtime_requirements(),
            # skops refuses to load types it was not told to trust: trust exactly those of the model just fitted.
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
            # No input signature: MLflow would reject whole numbers in a column it saw as decimals (a column
            # with gaps), so raw CSV rows would not score. The fitted preprocessing checks the columns instead.
            # select names candidates by their model type and reports their hyperparameters, which a refit takes over.
            metadata={"features": features, "model_type": args.model_type, "hyperparameters": tunable(args)},
        )
    refit = " (refit on the whole train split)" if args.refit else ""
    validated = f"; validation RMSE {scored['validation_rmse']:.3f}" if scored else ""
    shape = f"{len(x)} rows, {x.shape[1]} features"
    print(f"trained {args.model_type}{refit} on {shape}; train RMSE {train_rmse:.3f}{validated}")
    return 0
