"""Evaluate the model on the test split against a mean-predictor baseline.

The baseline predicts the mean target of the train split (what the model was fitted on)
for every row: a model that does not beat it has learned nothing from the features.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import matplotlib
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # the backend is chosen first

PLOTTED_POINTS = 5000


class EvaluationError(ValueError):
    """The metrics would not be numbers; the message says why in one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="Folder of the MLflow model.")
    parser.add_argument("--prepped-data", type=Path, required=True, help="Output of data_prep.")
    parser.add_argument("--report", type=Path, required=True, help="Output folder for metrics.json and the plot.")
    return parser


def scores(actual: pd.Series, predicted: np.ndarray, prefix: str) -> dict[str, float]:
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, in one line
        return {
            f"{prefix}rmse": float(root_mean_squared_error(actual, predicted)),
            f"{prefix}mae": float(mean_absolute_error(actual, predicted)),
            f"{prefix}r2": float(r2_score(actual, predicted)),
        }


def finite_metrics(test: pd.Series, predicted: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """The model's and the baseline's metrics, all finite numbers: JSON has none other, and register compares them."""
    if not_finite := int((~np.isfinite(predicted)).sum()):
        raise EvaluationError(
            f"metrics.json not written: the model predicts {not_finite} values that are not finite numbers "
            "on the test split"
        )
    metrics = {**scores(test, predicted, ""), **scores(test, baseline, "baseline_")}
    if overflown := {name: value for name, value in metrics.items() if not math.isfinite(value)}:
        raise EvaluationError(
            f"metrics.json not written: {', '.join(overflown)} are not finite "
            f"({', '.join(f'{value:g}' for value in overflown.values())}): the test split's targets or the "
            "model's predictions are too large for their squared errors to stay finite"
        )
    return metrics


def plot(actual: pd.Series, predicted: np.ndarray, target: str, path: Path) -> None:
    # A few thousand points show the shape; a million only cost seconds to draw.
    shown = np.random.default_rng(0).permutation(len(actual))[:PLOTTED_POINTS]
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.scatter(actual.iloc[shown], predicted[shown], s=10, alpha=0.6)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    axes.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect prediction")
    axes.set(xlabel=f"actual {target}", ylabel=f"predicted {target}", title="Test split: predicted vs. actual")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def evaluate(model_dir: Path, prepped_data: Path, report: Path) -> dict[str, float]:
    features = json.loads((prepped_data / "features.json").read_text())
    target = features["target"]
    train_target = pd.read_parquet(prepped_data / "train.parquet", columns=[target])[target]
    test = pd.read_parquet(prepped_data / "test.parquet")
    model = mlflow.pyfunc.load_model(str(model_dir))
    predicted = np.asarray(model.predict(test.drop(columns=[target])), dtype=float)
    baseline = np.full(len(test), train_target.mean())
    metrics = {
        **finite_metrics(test[target], predicted, baseline),
        "n_train_rows": len(train_target),
        "n_test_rows": len(test),
    }
    report.mkdir(parents=True, exist_ok=True)
    (report / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot(test[target], predicted, target, report / "predicted_vs_actual.png")
    return metrics


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with mlflow.start_run():
            metrics = evaluate(args.model, args.prepped_data, args.report)
            mlflow.log_metrics(metrics)
            mlflow.log_artifact(str(args.report / "predicted_vs_actual.png"))
    except EvaluationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
