"""Finish the render: bring in the training CSV, check it, and print the next steps.

Runs inside the freshly rendered project. A failure exits non-zero, and
cookiecutter then removes the half-rendered project.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path

# The values as JSON data: a raw string, because JSON's escapes must reach json.loads untouched.
VALUES: dict[str, str] = json.loads(r"""{{ cookiecutter | tojson }}""")

SHIPPED_SAMPLE = Path("data/diabetes.csv")
SAMPLE_ROWS = 2000


class DataError(ValueError):
    """The training CSV cannot be used; the message says why in one line."""


def resolve_data_path(raw: str) -> Path:
    """Find the CSV the user named: the shipped sample, an absolute path, or one relative to their shell."""
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    if path == SHIPPED_SAMPLE:
        return SHIPPED_SAMPLE.resolve()
    return Path(os.environ.get("PWD", os.getcwd())) / path


def read_sample(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise DataError(f"data_path={str(path)!r} is invalid: no such file")
    if path.suffix.lower() != ".csv":
        raise DataError(f"data_path={str(path)!r} is invalid: must be a .csv file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = csv.reader(handle)
            header = next(rows, [])
            sample = list(itertools.islice(rows, SAMPLE_ROWS))
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"data_path={str(path)!r} is invalid: not a UTF-8 CSV file ({error})") from None
    if not header:
        raise DataError(f"data_path={str(path)!r} is invalid: the file is empty, a header row is required")
    if not sample:
        raise DataError(f"data_path={str(path)!r} is invalid: the file has a header but no data rows")
    return header, sample


NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE)


def is_number(text: str) -> bool:
    """A number as pandas reads one from a CSV (``float()`` also takes ``1_000`` and non-ASCII digits)."""
    return NUMBER.fullmatch(text) is not None


def check_target(path: Path, header: list[str], sample: list[list[str]], target: str) -> None:
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise DataError(f"data_path={str(path)!r} is invalid: duplicate column names {duplicated}")
    if target not in header:
        raise DataError(f"target_column={target!r} is not a column of {path.name}; columns are: {', '.join(header)}")
    if len(header) < 2:
        raise DataError(
            f"target_column={target!r} is the only column of {path.name}: no features are left to learn from"
        )
    index = header.index(target)
    values = [row[index].strip() for row in sample if len(row) > index and row[index].strip()]
    if not values:
        raise DataError(f"target_column={target!r} is empty in the first {len(sample)} rows of {path.name}")
    bad = next((value for value in values if not is_number(value)), None)
    if bad is not None:
        raise DataError(f"target_column={target!r} must be numeric, but {path.name} holds {bad!r} in it")


def column_list(name: str, header: list[str]) -> list[str]:
    """A comma-separated variable as column names, each checked against the CSV's header."""
    columns = [column.strip() for column in VALUES[name].split(",") if column.strip()]
    for column in columns:
        if column not in header:
            raise DataError(f"{name}: {column!r} is not a column of the CSV; columns are: {', '.join(header)}")
    return columns


def unusable(values: list[str]) -> str | None:
    """Why a sampled column should not be a feature: constant, or an identifier."""
    filled = [value for value in values if value]
    if len(set(filled)) <= 1:
        return "constant"
    if len(set(filled)) == len(values) >= 10:
        numbers = [float(value) for value in filled] if all(is_number(value) for value in filled) else None
        if numbers is None or (all(n.is_integer() for n in numbers) and numbers == sorted(numbers)):
            return "identifier (a distinct value on every row)"
    return None


def infer_features(header: list[str], sample: list[list[str]], target: str) -> tuple[dict[str, list[str]], dict]:
    """Numeric and categorical feature columns from the sample, and the columns left out with why."""
    chosen = column_list("feature_columns", header) or header
    dropped = {column: "drop_columns" for column in column_list("drop_columns", header)}
    columns = {
        name: [row[index].strip() if index < len(row) else "" for row in sample] for index, name in enumerate(header)
    }
    features: dict[str, list[str]] = {"numeric": [], "categorical": []}
    for name in chosen:
        if name == target or name in dropped:
            continue
        reason = None if VALUES["feature_columns"].strip() else unusable(columns[name])
        if reason:
            dropped[name] = reason
            continue
        if "," in name:
            raise DataError(f"column {name!r} has a comma in its name: rename it, or list it in drop_columns")
        kind = "numeric" if all(is_number(value) for value in columns[name] if value) else "categorical"
        features[kind].append(name)
    if not features["numeric"] and not features["categorical"]:
        raise DataError(f"no feature columns are left besides target_column={target!r}")
    return features, dropped


def write_features(config: Path, features: dict[str, list[str]], dropped: dict[str, str]) -> None:
    """Append the features to config.yml, as JSON lists (valid YAML for any column name)."""
    left_out = "".join(f"\n#   {json.dumps(name)}: {reason}" for name, reason in dropped.items())
    config.write_text(
        config.read_text()
        + "\n# The feature columns, inferred from the CSV's header and first rows when the project was\n"
        + "# rendered. data_prep uses exactly these and fails on a missing one; edit them freely.\n"
        + "# Empty lists make data_prep infer them on every run."
        + (f"\n# Left out:{left_out}" if left_out else "")
        + f"\nfeatures:\n  numeric: {json.dumps(features['numeric'])}\n"
        + f"  categorical: {json.dumps(features['categorical'])}\n"
    )


def write_sample_request(path: Path, header: list[str], sample: list[list[str]], target: str, text: list[str]) -> None:
    """Two rows of the CSV without the target, as requests: ``path`` in the body Azure ML online endpoints take
    (``{"input_data": {"columns": [...], "data": [...]}}``; `az ml online-endpoint invoke --request-file` sends it),
    and beside it ``sample-request-mlflow.json`` in MLflow's ``dataframe_split`` body, for `make serve`.

    Numbers go as JSON numbers (the model scales them), the ``text`` columns and any other text as strings.
    """

    def value(row: list[str], index: int) -> object:
        field = row[index] if index < len(row) else ""
        number = field.strip()
        if not number or (is_number(number) and not math.isfinite(float(number))):
            return None  # missing: the model fills it in, as it does for a gap in the CSV
        if header[index] in text or not is_number(number):
            return field
        return int(number) if number.lstrip("+-").isdigit() else float(number)

    kept = [index for index, name in enumerate(header) if name != target]
    rows = {"columns": [header[i] for i in kept], "data": [[value(row, i) for i in kept] for row in sample[:2]]}
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"input_data": rows}) + "\n")
    path.with_name("sample-request-mlflow.json").write_text(json.dumps({"dataframe_split": rows}) + "\n")


def bring_in_data(source: Path, destination: Path) -> None:
    if source.resolve() == destination.resolve():
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    if SHIPPED_SAMPLE.resolve() != destination.resolve():
        SHIPPED_SAMPLE.unlink()


def next_steps() -> str:
    return f"""
Rendered {VALUES["project_slug"]}/ ({VALUES["model"]} on {VALUES["__data_file"]}, target {VALUES["target_column"]!r}).

Next steps:
  cd {VALUES["project_slug"]}
  make install     # create .venv and install the project
  make run         # run the pipeline on this machine, tracked with MLflow
  make test        # the project's own tests, offline
  make score       # batch predictions with the last local model
  make serve       # the last local model behind MLflow's HTTP server
  make submit      # submit to Azure ML (after `az login`; see README.md)
"""


def remove_github_workflows() -> None:
    shutil.rmtree(".github")


def remove_azure_pipelines() -> None:
    Path("azure-pipelines.yml").unlink()


def remove_unselected_ci(ci: str) -> None:
    """Keep only the CI files of the chosen ``ci`` option."""
    if ci != "github":
        remove_github_workflows()
    if ci != "azure-devops":
        remove_azure_pipelines()


def main() -> int:
    source = resolve_data_path(VALUES["data_path"])
    try:
        header, sample = read_sample(source)
        check_target(source, header, sample, VALUES["target_column"])
        features, dropped = infer_features(header, sample, VALUES["target_column"])
    except DataError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    bring_in_data(source, Path("data") / VALUES["__data_file"])
    write_features(Path("config.yml"), features, dropped)
    write_sample_request(
        Path("docs/sample-request.json"), header, sample, VALUES["target_column"], features["categorical"]
    )
    remove_unselected_ci(VALUES["ci"])
    print(next_steps())
    return 0


if __name__ == "__main__":
    sys.exit(main())
