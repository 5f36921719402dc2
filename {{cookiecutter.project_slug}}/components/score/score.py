"""Batch scoring, the entry script of an Azure ML parallel job (``run_function``): ``init()`` loads the MLflow model
once per worker, ``run(mini_batch)`` scores one mini-batch and writes its predictions to a file of their own in the
predictions folder.

A mini-batch is a list of files (CSV or Parquet) when the job reads a folder, or a pandas DataFrame when it reads an
MLTable. The rows are checked against the feature columns the train step recorded in the model's MLmodel metadata
before the model sees them, so rows the model cannot score fail with one line naming the file and the columns, not
with a traceback from deep inside scikit-learn. Azure ML and the local runner pass ``program_arguments`` and their own
options on the command line; ``init()`` reads the former and leaves the rest.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pyarrow.csv
from mlflow.exceptions import MlflowException
from mlflow.models import Model

ROW_COLUMN = "row"  # a row's position in its file when the data has no identifier column
FILE_COLUMN = "file"  # the file it came from
SUFFIXES = (".csv", ".parquet")


class ScoringError(ValueError):
    """The rows or the model cannot be used; the message names the file and the columns."""


def id_column_name(text: str) -> str | None:
    """An argparse type: a column name or none, base64-encoded JSON (column names may hold anything). Not
    common/argument_types.py's: Azure ML uploads a parallel component's folder alone (no additional_includes)."""
    try:
        value = json.loads(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        value = False
    if value is not None and not (isinstance(value, str) and value):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a column name or null as base64-encoded JSON")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="Folder of the MLflow model.")
    parser.add_argument(
        "--id-column", type=id_column_name, required=True, help="Column carried into the predictions, or null."
    )
    parser.add_argument("--predictions", type=Path, required=True, help="Output folder: one CSV per mini-batch.")
    return parser


def model_features(model_dir: Path) -> dict:
    """The features the train step recorded in the model's MLmodel file: target, numeric and categorical columns."""
    try:
        metadata = Model.load(str(model_dir)).metadata or {}
    except (MlflowException, OSError) as error:
        raise ScoringError(f"{model_dir}: not an MLflow model folder ({str(error).splitlines()[0]})") from None
    features = metadata.get("features")
    if not features:
        raise ScoringError(f"{model_dir}: the MLmodel file lists no features; score a model saved by the train step")
    return features


def batch_files(path: Path) -> list[Path]:
    """The files of rows at ``path``: the file itself, or every CSV and Parquet file under the folder, in order."""
    if path.is_file():
        return [path]
    files = sorted(found for found in path.rglob("*") if found.is_file() and found.suffix.lower() in SUFFIXES)
    if not files:
        raise ScoringError(f"{path}: no CSV or Parquet file to read")
    return files


def read_rows(path: Path) -> pd.DataFrame:
    """The rows of a CSV or Parquet file; at least one."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ScoringError(f"{path.name}: not a CSV or Parquet file (the suffix must be one of {', '.join(SUFFIXES)})")
    try:
        # index_col=False: rows ending with a delimiter keep their columns
        rows = pd.read_csv(path, index_col=False) if suffix == ".csv" else pd.read_parquet(path)
    except FileNotFoundError:
        raise ScoringError(f"{path}: no such file") from None
    except pd.errors.EmptyDataError:
        raise ScoringError(f"{path.name}: the file is empty, a header row is required") from None
    except (ValueError, OSError) as error:  # pandas' ParserError, UnicodeDecodeError and Arrow's errors among them
        kind = "CSV" if suffix == ".csv" else "Parquet"
        raise ScoringError(f"{path.name}: not a readable {kind} file ({str(error).splitlines()[0]})") from None
    if rows.empty:
        raise ScoringError(f"{path.name}: the file has a header but no rows to score")
    return rows


def problems(rows: pd.DataFrame, features: dict) -> list[str]:
    """Why the model cannot score ``rows``: feature columns that are missing, and text in numeric ones."""
    found = []
    missing = [name for name in [*features["numeric"], *features["categorical"]] if name not in rows.columns]
    if missing:
        found.append(f"missing feature column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
    for name in features["numeric"]:
        if name in rows.columns and not pd.api.types.is_numeric_dtype(rows[name]):
            text = rows[name][pd.to_numeric(rows[name], errors="coerce").isna() & rows[name].notna()]
            if len(text):
                found.append(f"column {name!r} must be numeric but holds {text.iloc[0]!r} in {len(text)} row(s)")
        elif name in rows.columns and (infinite := int(np.isinf(rows[name]).sum())):
            found.append(f"column {name!r} holds {infinite} infinite value(s): numbers must be finite")
    return found


def model_input(rows: pd.DataFrame, features: dict) -> pd.DataFrame:
    """The feature columns, typed as the model was trained on them."""
    typed = rows[[*features["numeric"], *features["categorical"]]].copy()
    for name in features["numeric"]:
        if not pd.api.types.is_numeric_dtype(typed[name]):  # text that passed the check: numbers only
            typed[name] = pd.to_numeric(typed[name])
    for name in features["categorical"]:
        # The encoder learned text categories: codes that read as numbers here must reach it as text too.
        if not pd.api.types.is_object_dtype(typed[name]):
            typed[name] = typed[name].map(str, na_action="ignore")
    return typed


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as CSV, every float in its shortest exact form: Arrow writes a million rows in a tenth of the time
    pandas takes. The header is written separately, because Arrow quotes every name in it. Written under a temporary
    name, then renamed: a retried mini-batch never leaves half a file."""
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(frame.columns)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with partial.open("wb") as handle:
        handle.write(header.getvalue().encode())
        options = pyarrow.csv.WriteOptions(include_header=False, quoting_style="needed")
        pyarrow.csv.write_csv(pyarrow.Table.from_pandas(frame, preserve_index=False), handle, options)
    partial.replace(path)


@dataclass(frozen=True)
class Scorer:
    """What a worker keeps from ``init()`` to every ``run()``: the model, its features, where predictions go."""

    model: Any
    features: dict
    id_column: str | None
    output: Path

    def checked(self, rows: pd.DataFrame, source: str) -> pd.DataFrame:
        found = problems(rows, self.features)
        if found:
            raise ScoringError(f"{source}: the model cannot score these rows: {'; '.join(found)}")
        return rows

    def identifiers(self, rows: pd.DataFrame, source: str | None) -> pd.DataFrame:
        """The columns that say which row is which: ``id_column`` when the rows have it, else the file they came from
        (for a file) and their position in it; the target too when the rows have it, for monitoring."""
        if self.id_column and self.id_column in rows.columns:
            ids = rows[[self.id_column]]
        else:
            ids = pd.DataFrame({ROW_COLUMN: np.arange(len(rows)) if source else rows.index.to_numpy()})
            if source:
                ids.insert(0, FILE_COLUMN, source)
        target = self.features["target"]
        if target in rows.columns and target not in ids.columns:
            ids = ids.assign(**{target: rows[target].to_numpy()})
        return ids.reset_index(drop=True)

    def predictions(self, parts: list[tuple[pd.DataFrame, str | None]]) -> pd.DataFrame:
        """The rows of every part, scored in one call: their identifiers and the predicted target."""
        rows = pd.concat([rows for rows, _ in parts], ignore_index=True)
        ids = pd.concat([self.identifiers(rows, source) for rows, source in parts], ignore_index=True)
        predicted = np.asarray(self.model.predict(model_input(rows, self.features)))
        return ids.assign(**{f"predicted_{self.features['target']}": predicted})

    def write(self, predictions: pd.DataFrame, key: str) -> None:
        """One CSV per mini-batch, named by its content: a retry overwrites its own file and no other."""
        self.output.mkdir(parents=True, exist_ok=True)
        write_csv(predictions, self.output / f"predictions-{hashlib.sha256(key.encode()).hexdigest()[:16]}.csv")


SCORER: Scorer | None = None  # set by init(), once per worker process


def init(argv: list[str] | None = None) -> None:
    """Load the model once per worker, from the ``program_arguments`` among the options the runner passes."""
    global SCORER
    args, _ = build_parser().parse_known_args(argv)
    features = model_features(args.model)
    SCORER = Scorer(mlflow.pyfunc.load_model(str(args.model)), features, args.id_column, args.predictions)


def run(mini_batch: list[str] | pd.DataFrame) -> list[str] | pd.DataFrame:
    """Score one mini-batch; what it returns counts the items scored (a line per file, the rows of a table)."""
    if SCORER is None:
        raise ScoringError("run() before init(): the runner calls init() once per worker first")
    if isinstance(mini_batch, pd.DataFrame):
        predictions = SCORER.predictions([(SCORER.checked(mini_batch, "a mini-batch of the table"), None)])
        SCORER.write(predictions, pd.util.hash_pandas_object(mini_batch).to_numpy().tobytes().hex())
        return predictions
    files = [Path(path) for path in mini_batch]
    parts = [(SCORER.checked(read_rows(path), path.name), path.name) for path in files]
    predictions = SCORER.predictions(parts)
    SCORER.write(predictions, "\n".join(map(str, files)))
    return [f"{source}: {len(rows)} rows scored" for rows, source in parts]
