"""Train the regressor: preprocessing and model fitted as one scikit-learn Pipeline (training.py).

The fitted imputers, scaler and one-hot encoder travel inside the saved MLflow
model, so it scores raw rows of the original CSV. The options come from regressors.py; this file
imports only what parsing them needs, so that ``check`` reads them in an instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from argument_types import ranged
from regressors import HYPERPARAMETERS, REGRESSORS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepped-data", type=Path, required=True, help="Output of data_prep.")
    parser.add_argument("--model-type", choices=list(REGRESSORS), required=True)
    for name, hyperparameter in HYPERPARAMETERS.items():  # regressors.py: the one declaration of them
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=ranged(hyperparameter.kind, hyperparameter.low, hyperparameter.high),
            default=hyperparameter.default,
            help=hyperparameter.help,
        )
    parser.add_argument("--random-seed", type=ranged(int, 0, 2**32 - 1), default=42)
    parser.add_argument("--model", type=Path, required=True, help="Output folder of the MLflow model.")
    parser.add_argument(
        "--cv-folds",
        type=ranged(int, 2),
        help="Score the model by k-fold cross-validation on the train split first (what select and a sweep compare); "
        "unset: fit it only.",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from training import train  # scikit-learn, pandas, MLflow: seconds

    return train(args)


if __name__ == "__main__":
    sys.exit(main())
