"""Train the regressor: preprocessing and model fitted as one scikit-learn Pipeline (training.py).

The fitted imputers, scaler and one-hot encoder travel inside the saved MLflow
model, so it scores raw rows of the original CSV. The options come from regressors.py; this file
imports only what parsing them needs, so that ``check`` reads them in an instant.
"""

from __future__ import annotations

import argparse
import json
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
        "--selection",
        type=Path,
        help="Output of select: refit its winner (model type and hyperparameters from selection.json, in place of "
        "the options above) on the whole train split, the validation rows included.",
    )
    return parser


def refit_arguments(args: argparse.Namespace) -> argparse.Namespace:
    """The options that trained select's winner, parsed (and so checked) as if given on the command line."""
    selection = json.loads((args.selection / "selection.json").read_text())
    winner = selection["winner"]
    argv = ["--prepped-data", str(args.prepped_data), "--model-type", winner, "--model", str(args.model)]
    argv += ["--random-seed", str(args.random_seed)]
    for name, value in selection["candidates"][winner]["hyperparameters"].items():
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return argparse.Namespace(**vars(build_parser().parse_args(argv)), refit=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args = refit_arguments(args) if args.selection else argparse.Namespace(**vars(args), refit=False)
    from training import train  # scikit-learn, pandas, MLflow: seconds

    return train(args)


if __name__ == "__main__":
    sys.exit(main())
