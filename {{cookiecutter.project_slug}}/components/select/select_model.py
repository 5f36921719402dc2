"""Pick the best of several candidate models by their k-fold cross-validation scores on the train split.

Each candidate's train step scored it on the same folds of the train split (its MLflow model's metadata holds the
scores), then fitted it on the whole train split: the winner's model is copied to this step's output as it is, and
the test split stays untouched until the evaluation of the winner. selection.json names the winner and holds every
candidate's scores (the folds' mean and spread, each fold's RMSE) and hyperparameters.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import mlflow
from mlflow.models import Model

SCORES = ("cv_rmse", "cv_rmse_std", "cv_r2")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidate", type=Path, action="append", default=[], help="A candidate's model folder.")
    parser.add_argument("--selection", type=Path, required=True, help="Output folder for selection.json.")
    parser.add_argument("--model", type=Path, required=True, help="Output folder: the winner's MLflow model.")
    return parser


class SelectionError(ValueError):
    """The candidates cannot be compared; the message names the candidate and why."""


def cross_validation_scores(candidates: list[Path]) -> dict[str, dict[str, Any]]:
    """Each candidate's cross-validation scores and hyperparameters, by the model type it was trained as (train.py's
    metadata), checked to come from the same folds."""
    scores: dict[str, dict[str, Any]] = {}
    for folder in candidates:
        metadata = Model.load(folder).metadata or {}
        name, validated = metadata.get("model_type"), metadata.get("cross_validation")
        if name in scores:  # selection.json names the winner by it
            raise SelectionError(f"--candidate {folder}: a second one trained as {name!r}")
        if not validated:
            raise SelectionError(f"--candidate {folder}: trained without --cv-folds, so it has no scores to compare")
        if scores and validated["folds"] != next(iter(scores.values()))["folds"]:
            raise SelectionError(f"--candidate {folder}: scored on {validated['folds']} folds, not as the others")
        scores[name] = {**validated, "hyperparameters": metadata["hyperparameters"]}
    return scores


def pick(scores: dict[str, dict[str, Any]]) -> str:
    """The candidate with the lowest mean cross-validation RMSE; the first listed wins a tie."""
    return min(scores, key=lambda name: scores[name]["cv_rmse"])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.candidate:
        print("error: no --candidate model to select from", file=sys.stderr)
        return 1
    try:
        scores = cross_validation_scores(args.candidate)
    except SelectionError as error:
        rule = "each candidate must be of another model type, scored on the same folds"
        print(f"error: {error}; {rule}", file=sys.stderr)
        return 1
    winner = pick(scores)
    with mlflow.start_run():
        for name, values in scores.items():
            mlflow.log_metrics({f"{name}_{metric}": values[metric] for metric in SCORES})
        mlflow.set_tag("winner", winner)
        mlflow.log_params({f"winner_{name}": value for name, value in scores[winner]["hyperparameters"].items()})
    shutil.copytree(args.candidate[list(scores).index(winner)], args.model, dirs_exist_ok=True)
    args.selection.mkdir(parents=True, exist_ok=True)
    (args.selection / "selection.json").write_text(json.dumps({"winner": winner, "candidates": scores}, indent=2))
    for name, values in scores.items():
        spread = f"{values['cv_rmse']:.4f} ± {values['cv_rmse_std']:.4f}"
        print(f"{name:<24} cross-validation RMSE {spread}{'  <- winner' if name == winner else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
