"""Sample requests for the latest local model, written from the model they are meant for: its feature columns (the
``features`` its train step records in the MLmodel file's metadata: target, numeric, categorical) and the first rows
of the project's CSV it can take, in the two bodies that reach a served model:

- ``sample-request.json``, an Azure ML online endpoint's ``{"input_data": {"columns": [...], "data": [...]}}``, which
  ``az ml online-endpoint invoke --request-file`` sends (``deploy`` prints that line);
- ``sample-request-mlflow.json``, MLflow's ``{"dataframe_split": {...}}``, for ``serve``'s scoring server.

They live in the local runs' folder, beside the runs whose models they fit, and are rewritten after every local run
that left another model than the one they were written from (a changed target or feature list trains one);
``show sample-request`` and ``deploy`` write them when they are missing or out of date. Nothing in ``docs/`` to go
stale. A model is known by its MLmodel file's digest (MLflow writes a new ``model_uuid`` into each): a reused step's
model is the earlier one, linked into the new run's folder. The standard library only (the MLmodel file is YAML): a
run that trained nothing reads two small files.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import itertools
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config_files import SettingsError, read_yaml
from .project import Project
from .records import read_record, write_atomically, write_record

SAMPLE_ROWS = 2
# pandas.read_csv's default missing-value markers (pandas._libs.parsers.STR_NA_VALUES), the ones the project's rows
# are read with; a field that is one of them, as a whole, is a gap. The CLI does not import pandas (a second).
PANDAS_MISSING = frozenset(
    {
        *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A"),
        *("NA", "NULL", "NaN", "None", "n/a", "nan", "null"),
    }
)


class NotTakenByModel(ValueError):
    """A field of a numeric feature the model cannot take: text, or an infinite number."""


@dataclass(frozen=True)
class SampleRequests:
    """Where a project's sample requests are, and the record of the model they were written from."""

    endpoint: Path
    mlflow: Path
    record: Path

    @classmethod
    def of(cls, runs_dir: Path) -> SampleRequests:
        return cls(
            runs_dir / "sample-request.json",
            runs_dir / "sample-request-mlflow.json",
            runs_dir / ".sample-requests.json",
        )

    def written_from(self) -> str | None:
        """The digest of the MLmodel file the requests were written from, if both are there."""
        if not (self.endpoint.is_file() and self.mlflow.is_file()):
            return None
        return read_record(self.record, "sample requests' record", lambda record: str(record["mlmodel_sha256"]))

    def write(self, table: dict[str, list[Any]], mlmodel_sha256: str) -> None:
        self.record.unlink(missing_ok=True)  # interrupted below: the requests are written again next time
        write_atomically(self.endpoint, json.dumps({"input_data": table}) + "\n")
        write_atomically(self.mlflow, json.dumps({"dataframe_split": table}) + "\n")
        write_record(self.record, {"mlmodel_sha256": mlmodel_sha256})

    def remove(self) -> None:
        for path in (self.record, self.endpoint, self.mlflow):
            path.unlink(missing_ok=True)


def sample_requests(project: Project, model: Path) -> SampleRequests:
    """The requests for ``model`` from the project's CSV, written unless they were written from it already."""
    requests = SampleRequests.of(project.local_runs_dir)
    try:
        digest = hashlib.sha256((model / "MLmodel").read_bytes()).hexdigest()
    except FileNotFoundError:
        raise SettingsError(f"{model}: not an MLflow model folder (it has no MLmodel file)") from None
    if requests.written_from() != digest:
        table = request_table(project.local_data_path, model_features(model))
        project.local_runs_dir.mkdir(parents=True, exist_ok=True)
        requests.write(table, digest)
    return requests


def after_run(project: Project, model: Path) -> None:
    """After a run: the requests for the model it trained (or reused). A model they cannot be written for leaves none,
    rather than ones for another model, and says why in one line: the run itself completed."""
    try:
        sample_requests(project, model)
    except SettingsError as error:
        SampleRequests.of(project.local_runs_dir).remove()
        print(f"warning: no sample requests: {error}", file=sys.stderr)


def model_features(model: Path) -> dict[str, list[str]]:
    """The numeric and categorical feature columns the train step recorded in ``model``'s MLmodel file."""
    mlmodel = model / "MLmodel"
    features = (read_yaml(mlmodel).get("metadata") or {}).get("features")
    kinds = ("numeric", "categorical")
    if not (isinstance(features, dict) and all(isinstance(features.get(kind), list) for kind in kinds)):
        raise SettingsError(f"{mlmodel}: its metadata records no features (numeric and categorical columns)")
    return {kind: [str(name) for name in features[kind]] for kind in kinds}


def request_table(data: Path, features: dict[str, list[str]]) -> dict[str, list[Any]]:
    """The feature columns, in the CSV's order, and its first ``SAMPLE_ROWS`` rows the model can take."""
    taken = {*features["numeric"], *features["categorical"]}
    try:
        with data.open(newline="", encoding="utf-8-sig") as handle:
            records = csv.reader(handle)
            header = next(records, [])
            if missing := [name for name in taken if name not in header]:
                raise SettingsError(f"{data}: no column {', '.join(map(repr, sorted(missing)))}, which the model takes")
            kinds = [(index, name in features["numeric"]) for index, name in enumerate(header) if name in taken]
            rows = list(itertools.islice(typed_rows(records, kinds), SAMPLE_ROWS))
    except FileNotFoundError:
        raise SettingsError(f"{data}: no such file (aml/data.yml names it): restore it, then run again") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise SettingsError(f"{data}: not a UTF-8 CSV file ({error})") from None
    return {"columns": [header[index] for index, _ in kinds], "data": rows}


def typed_rows(records: Iterator[list[str]], kinds: list[tuple[int, bool]]) -> Iterator[list[object]]:
    """The rows the model can take, each as its fields at ``kinds``' positions (numeric or not), typed; without the
    lines pandas skips (empty, or spaces and tabs only)."""
    for row in records:
        if len(row) > 1 or (row and row[0].strip(" \t")):
            with contextlib.suppress(NotTakenByModel):
                yield [typed(row[index] if index < len(row) else "", numeric) for index, numeric in kinds]


def typed(field: str, numeric: bool) -> object:
    """A field as the model takes it: a gap as null (the model fills it in, as it does a gap of the CSV), a number of a
    numeric column as a JSON number (whole when written whole), anything else as the text it is."""
    if field in PANDAS_MISSING:
        return None
    if not numeric:
        return field
    number = field.strip()
    try:
        value = int(number) if number.lstrip("+-").isdigit() else float(number)
    except ValueError:
        raise NotTakenByModel(field) from None
    if not math.isfinite(value):
        raise NotTakenByModel(field)
    return value
