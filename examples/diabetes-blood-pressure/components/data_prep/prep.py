"""Prepare the training data: validate, clean, split.

Writes ``train.parquet``, ``test.parquet`` and ``features.json`` (which columns are numeric,
which categorical, which were dropped and why) to the output folder. Imports only
pandas: it runs in every pipeline run, locally and on Azure ML.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

MIN_ROWS = 10


class DataError(ValueError):
    """The data cannot be used; the message names the file, the column and the rule."""


def column_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input-data", type=Path, required=True, help="CSV file to prepare.")
    parser.add_argument("--target-column", required=True, help="Numeric column to predict.")
    parser.add_argument("--numeric-columns", type=column_list, help="Comma-separated; default: inferred.")
    parser.add_argument("--categorical-columns", type=column_list, help="Comma-separated; default: inferred.")
    parser.add_argument("--test-size", type=float, default=0.2, help="Fraction of rows for the test split.")
    parser.add_argument("--random-seed", type=int, default=42, help="Seed of the shuffle.")
    parser.add_argument(
        "--validation-size", type=float, default=0.0, help="Fraction of the train split set aside to pick a model."
    )
    parser.add_argument("--prepped-data", type=Path, required=True, help="Output folder.")
    return parser


def read_csv(path: Path) -> pd.DataFrame:
    if path.is_dir():
        csv_files = sorted(path.glob("*.csv"))
        if len(csv_files) != 1:
            raise DataError(f"{path}: expected one .csv file in the folder, found {len(csv_files)}")
        path = csv_files[0]
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty, a header row is required") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV file ({str(error).splitlines()[0]})") from None
    if frame.columns.duplicated().any():
        raise DataError(f"{path}: duplicate column names {sorted(set(frame.columns[frame.columns.duplicated()]))}")
    return frame


def clean_target(frame: pd.DataFrame, target: str, source: str) -> pd.DataFrame:
    if target not in frame.columns:
        raise DataError(f"{source}: target column {target!r} not found; columns are: {', '.join(frame.columns)}")
    if len(frame.columns) < 2:
        raise DataError(f"{source}: target column {target!r} is the only column, no features are left")
    values = pd.to_numeric(frame[target], errors="coerce")
    not_numeric = frame[target][values.isna() & frame[target].notna()]
    if len(not_numeric):
        raise DataError(
            f"{source}: target column {target!r} must be numeric, but holds {not_numeric.iloc[0]!r} "
            f"({len(not_numeric)} non-numeric rows)"
        )
    missing = int(values.isna().sum())
    if missing:
        print(f"dropped {missing} of {len(frame)} rows with an empty {target!r}")
    frame = frame.assign(**{target: values}).dropna(subset=[target])
    if len(frame) < MIN_ROWS:
        raise DataError(f"{source}: only {len(frame)} rows have a target value, at least {MIN_ROWS} are needed")
    return frame


def looks_like_identifier(values: pd.Series) -> bool:
    """Distinct text on every row, or a row counter: distinct whole numbers rising row by row."""
    if pd.api.types.is_integer_dtype(values):
        return values.is_monotonic_increasing
    return not pd.api.types.is_numeric_dtype(values)


def unusable_columns(frame: pd.DataFrame, target: str) -> dict[str, str]:
    """Columns that would only teach the model noise: constants and row identifiers."""
    reasons: dict[str, str] = {}
    for column in frame.columns.drop(target):
        values = frame[column]
        distinct = values.nunique(dropna=True)
        if distinct <= 1:
            reasons[column] = "constant"
        elif distinct == len(frame) and looks_like_identifier(values):
            reasons[column] = "identifier (a distinct value on every row)"
    return reasons


def infer_features(frame: pd.DataFrame, target: str) -> dict[str, object]:
    dropped = unusable_columns(frame, target)
    for column, reason in dropped.items():
        print(f"dropped column {column!r}: {reason}")
    features = frame.columns.drop([target, *dropped])
    numeric = [name for name in features if pd.api.types.is_numeric_dtype(frame[name])]
    categorical = [name for name in features if name not in numeric]
    return {"target": target, "numeric": numeric, "categorical": categorical, "dropped": dropped}


def listed_features(frame: pd.DataFrame, target: str, numeric: list[str], categorical: list[str], source: str) -> dict:
    """The features config.yml names, checked against the data (which may have changed since rendering)."""
    for name in [*numeric, *categorical]:
        if name not in frame.columns:
            raise DataError(f"{source}: feature column {name!r} not found; columns are: {', '.join(frame.columns)}")
        if name == target:
            raise DataError(f"{source}: the target column {target!r} cannot also be a feature")
    for name in numeric:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            text = frame[name][pd.to_numeric(frame[name], errors="coerce").isna() & frame[name].notna()].iloc[0]
            raise DataError(f"{source}: feature column {name!r} is listed as numeric but holds {text!r}")
    return {"target": target, "numeric": numeric, "categorical": categorical, "dropped": {}}


def split(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows left, and a random ``fraction`` of them set aside."""
    aside = frame.sample(frac=fraction, random_state=seed)
    return frame.drop(index=aside.index), aside


def prepare(
    input_data: Path,
    target: str,
    test_size: float,
    seed: int,
    output: Path,
    numeric: list[str] | None = None,
    categorical: list[str] | None = None,
    validation_size: float = 0.0,
) -> dict[str, object]:
    """Validate and clean the CSV, split it, write the splits and the feature description to ``output``."""
    if not 0 < test_size < 1:
        raise DataError(f"--test-size {test_size} is invalid: must be strictly between 0 and 1")
    if not 0 <= validation_size < 1:
        raise DataError(f"--validation-size {validation_size} is invalid: must be at least 0 and below 1")
    frame = clean_target(read_csv(input_data), target, input_data.name)
    if numeric or categorical:
        features = listed_features(frame, target, numeric or [], categorical or [], input_data.name)
        # Listed categories may look like numbers (codes, zip codes): the encoder must see text.
        for name in features["categorical"]:
            frame[name] = frame[name].map(str, na_action="ignore")
    else:
        features = infer_features(frame, target)
    if not features["numeric"] and not features["categorical"]:
        raise DataError(f"{input_data.name}: no usable feature columns remain besides {target!r}")
    train, test = split(frame[[*features["numeric"], *features["categorical"], target]], test_size, seed)
    # Candidate models are compared on rows carved from the train split, never on the test split.
    splits = dict(zip(("train", "validation"), split(train, validation_size, seed), strict=True))
    output.mkdir(parents=True, exist_ok=True)
    # Parquet keeps the column types for the next steps and writes a million rows in a fraction of a second.
    for name, rows in {**(splits if validation_size else {"train": train}), "test": test}.items():
        rows.to_parquet(output / f"{name}.parquet", index=False)
        print(f"{name} rows: {len(rows)}")
    (output / "features.json").write_text(json.dumps(features, indent=2))
    return features


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        prepare(
            args.input_data,
            args.target_column,
            args.test_size,
            args.random_seed,
            args.prepped_data,
            args.numeric_columns,
            args.categorical_columns,
            args.validation_size,
        )
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
