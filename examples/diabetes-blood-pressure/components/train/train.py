"""Train the regressor: preprocessing and model fitted as one scikit-learn Pipeline.

The fitted imputers, scaler and one-hot encoder travel inside the saved MLflow
model, so it scores raw rows of the original CSV.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn
import skops
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MODEL_TYPES = ("ridge", "random_forest", "hist_gradient_boosting")
MAX_CATEGORIES = 30
# What an online deployment needs besides the model's own packages: Azure ML's inference server, and the
# package its generated MLflow scoring script imports (azureml-examples, ncd/sklearn-diabetes/model/conda.yaml).
# Equal to the pins of online/conda.yml (a test keeps them so), so the model's requirements alone build a
# working deployment environment.
SERVING_REQUIREMENTS = ("azureml-inference-server-http==1.5.1", "azureml-ai-monitoring==1.0.0")


def ranged(kind: Callable[[str], float], low: float, high: float = math.inf) -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` to ``high``, the min and max of the input in train.yml."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{text} is outside the allowed {low} to {high}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepped-data", type=Path, required=True, help="Output of data_prep.")
    parser.add_argument("--model-type", choices=MODEL_TYPES, required=True)
    parser.add_argument("--alpha", type=ranged(float, 0.0), default=1.0)
    parser.add_argument("--n-estimators", type=ranged(int, 1), default=200)
    parser.add_argument("--max-depth", type=ranged(int, 1), default=None)
    parser.add_argument("--min-samples-leaf", type=ranged(int, 1), default=10)
    parser.add_argument("--max-features", type=ranged(float, 0.01, 1.0), default=0.5)
    parser.add_argument("--learning-rate", type=ranged(float, 0.0001), default=0.05)
    parser.add_argument("--max-iter", type=ranged(int, 1), default=100)
    parser.add_argument("--random-seed", type=ranged(int, 0, 2**32 - 1), default=42)
    parser.add_argument("--model", type=Path, required=True, help="Output folder of the MLflow model.")
    return parser


def build_regressor(args: argparse.Namespace) -> Ridge | RandomForestRegressor | HistGradientBoostingRegressor:
    if args.model_type == "ridge":
        return Ridge(alpha=args.alpha)
    if args.model_type == "random_forest":
        return RandomForestRegressor(
            n_estimators=args.n_estimators,
            max_depth=args.max_depth,
            min_samples_leaf=args.min_samples_leaf,
            max_features=args.max_features,
            random_state=args.random_seed,
            n_jobs=-1,
        )
    return HistGradientBoostingRegressor(
        learning_rate=args.learning_rate,
        max_iter=args.max_iter,
        max_depth=args.max_depth,
        min_samples_leaf=args.min_samples_leaf,
        random_state=args.random_seed,
    )


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
    # Parquet gives missing text back as None, which scikit-learn's imputer does not take for missing.
    categorical = features["categorical"]
    frame[categorical] = frame[categorical].astype(object).where(frame[categorical].notna(), np.nan)
    return frame[features["numeric"] + categorical], frame[features["target"]], features


def runtime_requirements() -> list[str]:
    """The packages the model needs to load, as installed here (inferring them would cost seconds), and to be served."""
    loading = [f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}", f"pandas=={pd.__version__}"]
    return [*loading, f"numpy=={np.__version__}", *SERVING_REQUIREMENTS]


def hyperparameters(args: argparse.Namespace) -> dict[str, object]:
    used = {
        "ridge": ("alpha",),
        "random_forest": ("n_estimators", "max_depth", "min_samples_leaf", "max_features", "random_seed"),
        "hist_gradient_boosting": ("learning_rate", "max_iter", "max_depth", "min_samples_leaf", "random_seed"),
    }[args.model_type]
    return {"model_type": args.model_type, **{name: getattr(args, name) for name in used}}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    x, y, features = load_split(args.prepped_data, "train")
    model = build_model(args, features["numeric"], features["categorical"])
    with mlflow.start_run():
        mlflow.log_params({**hyperparameters(args), "n_train_rows": len(x), "n_features": x.shape[1]})
        model.fit(x, y)
        predictions = model.predict(x)
        train_rmse = mean_squared_error(y, predictions) ** 0.5
        mlflow.log_metric("train_rmse", train_rmse)
        mlflow.sklearn.save_model(
            model,
            args.model,
            pip_requirements=runtime_requirements(),
            # skops refuses to load types it was not told to trust: trust exactly those of the model just fitted.
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
            # No input signature: MLflow would reject whole numbers in a column it saw as decimals (a column
            # with gaps), so raw CSV rows would not score. The fitted preprocessing checks the columns instead.
            metadata={"features": features},
        )
    print(f"trained {args.model_type} on {len(x)} rows, {x.shape[1]} features; train RMSE {train_rmse:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
