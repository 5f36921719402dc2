"""Pick the best of several candidate models on the validation split.

The validation rows were carved from the training data by data_prep; the test
split stays untouched until the evaluation of the winner. selection.json names the
winner and its hyperparameters, which the train step refits on the whole train split.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.metrics import r2_score, root_mean_squared_error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepped-data", type=Path, required=True, help="Output of data_prep.")
    parser.add_argument("--candidate", type=Path, action="append", default=[], help="A candidate's model folder.")
    parser.add_argument("--selection", type=Path, required=True, help="Output folder for selection.json.")
    return parser


def validation_scores(prepped_data: Path, candidates: list[Path]) -> dict[str, dict[str, Any]]:
    """Each candidate's validation scores and hyperparameters, by the model type it was trained as (train.py's
    metadata)."""
    features = json.loads((prepped_data / "features.json").read_text())
    rows = pd.read_parquet(prepped_data / "validation.parquet")
    actual = rows.pop(features["target"])
    scores = {}
    for folder in candidates:
        model = mlflow.pyfunc.load_model(str(folder))
        metadata = model.metadata.metadata
        if metadata["model_type"] in scores:  # selection.json names the winner by it, for the refit
            raise ValueError(f"--candidate {folder}: a second one trained as {metadata['model_type']!r}")
        predicted = np.asarray(model.predict(rows), dtype=float)
        scores[metadata["model_type"]] = {
            "validation_rmse": float(root_mean_squared_error(actual, predicted)),
            "validation_r2": float(r2_score(actual, predicted)),
            "hyperparameters": metadata["hyperparameters"],
        }
    return scores


def pick(scores: dict[str, dict[str, Any]]) -> str:
    """The candidate with the lowest validation RMSE; the first listed wins a tie."""
    return min(scores, key=lambda name: scores[name]["validation_rmse"])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.candidate:
        print("error: no --candidate model to select from", file=sys.stderr)
        return 1
    if not (args.prepped_data / "validation.parquet").is_file():
        print("error: data_prep wrote no validation split: set validation_size above 0", file=sys.stderr)
        return 1
    with mlflow.start_run():
        try:
            scores = validation_scores(args.prepped_data, args.candidate)
        except ValueError as error:
            print(f"error: {error}; each candidate must be of another model type", file=sys.stderr)
            return 1
        winner = pick(scores)
        for name, values in scores.items():
            mlflow.log_metrics({f"{name}_{metric}": values[metric] for metric in ("validation_rmse", "validation_r2")})
        mlflow.set_tag("winner", winner)
        mlflow.log_params({f"winner_{name}": value for name, value in scores[winner]["hyperparameters"].items()})
    args.selection.mkdir(parents=True, exist_ok=True)
    (args.selection / "selection.json").write_text(json.dumps({"winner": winner, "candidates": scores}, indent=2))
    for name, values in scores.items():
        print(f"{name:<24} validation RMSE {values['validation_rmse']:.4f}{'  <- winner' if name == winner else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
