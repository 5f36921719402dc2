"""Prepare the training data: validate, clean, split.

Writes ``train.parquet``, ``test.parquet`` and ``features.json`` (which columns are numeric,
which categorical, which were dropped and why) to the output folder. Imports only
pandas: it runs in every pipeline run, locally and on Azure ML.

Column names come from the CSV, so they may hold anything, quotes and leading dashes
included: they arrive base64-encoded JSON (``--target-column``, ``--numeric-columns``,
``--categorical-columns``), never as words of the command line. What is missing, what is
a number and what makes a column numeric follow ``csv_rules``, the rules the template
applied when it wrote the features into config.yml.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import pandas as pd
from argument_types import column_name, column_names, ranged
from csv_rules import MIN_ROWS, NA_VALUES, TARGET_LIMIT, ColumnType, column_type, folds_problem, split_problem, unusable

SEED_RANGE = (0, 2**32 - 1)  # what numpy and scikit-learn take as a random_state


class DataError(ValueError):
    """The data cannot be used; the message names the file, the column and the rule."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-data", type=Path, required=True, help="CSV file to prepare.")
    parser.add_argument("--target-column", type=column_name, required=True, help="Column to predict (encoded).")
    parser.add_argument("--numeric-columns", type=column_names, help="Encoded list; default: inferred.")
    parser.add_argument("--categorical-columns", type=column_names, help="Encoded list; default: inferred.")
    parser.add_argument(
        "--test-size", type=ranged(float, 0.01, 0.99), default=0.2, help="Fraction of rows for the test split."
    )
    parser.add_argument("--random-seed", type=ranged(int, *SEED_RANGE), default=42, help="Seed of the shuffle.")
    parser.add_argument(
        "--cv-folds",
        type=ranged(int, 2),
        help="Folds the train split is cross-validated in (to pick a model): it must leave rows for each.",
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
        with warnings.catch_warnings():
            # index_col=False: rows ending with a delimiter keep their columns (pandas would otherwise shift every
            # column onto an index); filled fields beyond the header are dropped with this warning: refuse them.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, keep_default_na=False, na_values=sorted(NA_VALUES), index_col=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty, a header row is required") from None
    except pd.errors.ParserWarning:
        raise DataError(f"{path}: some rows have more fields than the header") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV file ({str(error).splitlines()[0]})") from None
    if frame.columns.duplicated().any():
        raise DataError(f"{path}: duplicate column names {sorted(set(frame.columns[frame.columns.duplicated()]))}")
    return frame


def is_numeric(values: pd.Series) -> bool:
    """A column pandas read as numbers (True/False columns are not numbers)."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def infinite_values(values: pd.Series) -> int:
    return int(values.isin([math.inf, -math.inf]).sum())


def text_type(values: pd.Series) -> ColumnType:
    """``csv_rules.column_type`` of a column pandas did not read as numbers."""
    return column_type(values.dropna().astype(str).value_counts().to_dict())


def clean_target(frame: pd.DataFrame, target: str, source: str) -> pd.DataFrame:
    if target not in frame.columns:
        raise DataError(f"{source}: target column {target!r} not found; columns are: {', '.join(frame.columns)}")
    if len(frame.columns) < 2:
        raise DataError(f"{source}: target column {target!r} is the only column, no features are left")
    values = frame[target]
    if not is_numeric(values) and values.notna().any():
        found = text_type(values)
        raise DataError(
            f"{source}: target column {target!r} must be numeric, but holds {found.describe()}: {found.remedy()}"
        )
    if infinite := infinite_values(values):
        raise DataError(f"{source}: target column {target!r} holds {infinite} infinite values: numbers must be finite")
    missing = int(values.isna().sum())
    if missing:
        print(f"dropped {missing} of {len(frame)} rows with an empty {target!r}")
    frame = frame.assign(**{target: pd.to_numeric(values)}).dropna(subset=[target])
    if len(frame) < MIN_ROWS:
        raise DataError(f"{source}: only {len(frame)} rows have a target value, at least {MIN_ROWS} are needed")
    check_target_values(frame[target], f"{source}: target column {target!r}")
    return frame


def check_target_values(values: pd.Series, column: str) -> None:
    """Targets a model can be scored on: squared errors that stay finite, and more than one value to predict."""
    largest = values.abs().max()
    if largest > TARGET_LIMIT:
        value = values[values.abs() == largest].iloc[0]
        raise DataError(
            f"{column} must hold numbers within ±{TARGET_LIMIT:g}, beyond which squared errors overflow, "
            f"but holds {value:g}"
        )
    if values.nunique() == 1:
        raise DataError(f"{column} holds {values.iloc[0]:g} on every row that has a value: there is nothing to predict")


def check_numeric(frame: pd.DataFrame, name: str, source: str, listed: bool) -> bool:
    """Whether column ``name`` is numeric; raises on a column of numbers spoilt by text, written with separators
    or holding an infinity (``csv_rules``' rule). ``listed``: config.yml names it as numeric, so any text is a
    mismatch."""
    values = frame[name]
    if is_numeric(values):
        if infinite := infinite_values(values):
            raise DataError(
                f"{source}: feature column {name!r} holds {infinite} infinite values: numbers must be finite; "
                "make them empty (missing) or drop the column"
            )
        return True
    found = text_type(values)
    if found.kind in {"mixed", "formatted"} or (listed and found.text):
        where = "is listed as numeric in config.yml but holds" if listed else "holds"
        raise DataError(
            f"{source}: feature column {name!r} {where} {found.describe()}: {found.remedy()}"
            f"{', or list the column as categorical' if listed else ''}"
        )
    return False


def unusable_columns(frame: pd.DataFrame, target: str, numeric: set[str]) -> dict[str, str]:
    """Columns that would only teach the model noise: constants and row identifiers (``csv_rules.unusable``)."""
    reasons: dict[str, str] = {}
    for column in frame.columns.drop(target):
        values = frame[column]
        ascending_whole = column in numeric and values.is_monotonic_increasing and bool((values % 1 == 0).all())
        reason = unusable(values.nunique(dropna=True), len(frame), column in numeric, ascending_whole)
        if values.isna().all():
            reason = "empty"
        if reason:
            reasons[column] = reason
    return reasons


def infer_features(frame: pd.DataFrame, target: str, source: str) -> dict[str, object]:
    numeric = {name for name in frame.columns.drop(target) if check_numeric(frame, name, source, listed=False)}
    dropped = unusable_columns(frame, target, numeric)
    for column, reason in dropped.items():
        print(f"dropped column {column!r}: {reason}")
    features = frame.columns.drop([target, *dropped])
    return {
        "target": target,
        "numeric": [name for name in features if name in numeric],
        "categorical": [name for name in features if name not in numeric],
        "dropped": dropped,
    }


def listed_features(frame: pd.DataFrame, target: str, numeric: list[str], categorical: list[str], source: str) -> dict:
    """The features config.yml names, checked against the data (which may have changed since rendering)."""
    for name in [*numeric, *categorical]:
        if name not in frame.columns:
            raise DataError(f"{source}: feature column {name!r} not found; columns are: {', '.join(frame.columns)}")
        if name == target:
            raise DataError(f"{source}: the target column {target!r} cannot also be a feature")
    for name in numeric:
        check_numeric(frame, name, source, listed=True)
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
    cv_folds: int | None = None,
) -> dict[str, object]:
    """Validate and clean the CSV, split it, write the splits and the feature description to ``output``."""
    frame = clean_target(read_csv(input_data), target, input_data.name)
    if numeric or categorical:
        features = listed_features(frame, target, numeric or [], categorical or [], input_data.name)
        # Listed categories may look like numbers (codes, zip codes): the encoder must see text.
        for name in features["categorical"]:
            frame[name] = frame[name].map(str, na_action="ignore")
    else:
        features = infer_features(frame, target, input_data.name)
    if not features["numeric"] and not features["categorical"]:
        raise DataError(f"{input_data.name}: no usable feature columns remain besides {target!r}")
    if problem := split_problem(len(frame), test_size):
        raise DataError(f"{input_data.name}: --test-size {test_size} {problem}")
    if cv_folds and (problem := folds_problem(len(frame), test_size, cv_folds)):
        raise DataError(f"{input_data.name}: --test-size {test_size} with --cv-folds {cv_folds} {problem}")
    frame = frame[[*features["numeric"], *features["categorical"], target]]
    # Stored as categories, missing text reads back from Parquet as NaN, which the model's imputer takes for
    # missing (as plain text it would read back as None): every later step reads the splits as they are.
    frame = frame.astype(dict.fromkeys(features["categorical"], "category"))
    train, test = split(frame, test_size, seed)
    output.mkdir(parents=True, exist_ok=True)
    # Parquet keeps the column types for the next steps and writes a million rows in a fraction of a second.
    for name, rows in {"train": train, "test": test}.items():
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
            args.cv_folds,
        )
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
