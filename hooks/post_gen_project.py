"""Finish the render: bring in the training CSV, check it, and print the next steps.

Runs inside the freshly rendered project. A failure exits non-zero, and
cookiecutter then removes the half-rendered project.
"""

from __future__ import annotations

import csv
import itertools
import json
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
  make submit      # submit to Azure ML (after `az login`; see README.md)
"""


def main() -> int:
    source = resolve_data_path(VALUES["data_path"])
    try:
        header, sample = read_sample(source)
        check_target(source, header, sample, VALUES["target_column"])
    except DataError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    bring_in_data(source, Path("data") / VALUES["__data_file"])
    print(next_steps())
    return 0


if __name__ == "__main__":
    sys.exit(main())
