"""Refuse bad template values and unusable data before cookiecutter writes a single file.

Everything is checked here, the training CSV included, so that a refused render leaves an
existing project exactly as it was, even under ``cookiecutter -f``. The values arrive as JSON
data (rendered through ``tojson``), so nothing a user types is ever executed. Every problem gets
one line naming the value and the rule. What the CSV's analysis finds (the features) is handed
to post_gen_project, which writes it into the rendered project.

Column types are decided by the rules data_prep follows at run time (``csv_rules.py``), imported
from the template's own copy: pandas decides the same way when data_prep reads the CSV.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import itertools
import json
import keyword
import math
import os
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

# The values as JSON data: a raw string, because JSON's escapes must reach json.loads untouched.
VALUES: dict[str, str] = json.loads(r"""{{ cookiecutter | tojson }}""")

SEED_RANGE = (0, 2**32 - 1)  # what numpy and scikit-learn take as a random_state
TEST_SIZE_RANGE = (0.01, 0.99)  # the min and max of data_prep's test_size input (components/data_prep/component.py)
# Top-level modules the rendered project imports (its machinery, src/aml_pipeline_kit, too): a package of the
# same name would shadow them. A model outside cookiecutter.json's list cookiecutter refuses itself.
COMPUTE_TIERS = ("dedicated", "low_priority")  # a private variable, so not a choice cookiecutter checks
PROJECT_IMPORTS = frozenset(
    {
        "aml_pipeline_kit",
        "azure",
        "matplotlib",
        "mlflow",
        "numpy",
        "pandas",
        "pyarrow",
        "pytest",
        "sklearn",
        "skops",
        "yaml",
    }
)
BINDING = "{% raw %}${{{% endraw %}"  # what azure-ai-ml reads as a binding to an input or output, in any value
AML_ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
AML_ASSET_RULE = "1-255 letters, digits, underscores or hyphens, starting with a letter or digit"
RULES_BY_PATTERN: dict[str, tuple[re.Pattern[str], str]] = {
    "project_slug": (
        re.compile(r"^(?=.{1,40}$)[a-z][a-z0-9]*(-[a-z0-9]+)*$"),
        "at most 40 lowercase letters and digits separated by single hyphens, starting with a letter",
    ),
    "__package_name": (
        re.compile(r"^[a-z][a-z0-9_]{0,39}$"),
        "a Python identifier of at most 40 lowercase letters, digits and underscores, starting with a letter",
    ),
    "__compute_name": (
        re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,14}[A-Za-z0-9]$"),
        "2-16 letters, digits or hyphens, starting with a letter and not ending with a hyphen",
    ),
    "__compute_size": (
        re.compile(r"^[A-Za-z][A-Za-z0-9_]+$"),
        "an Azure VM size such as Standard_DS3_v2",
    ),
    "__experiment_name": (AML_ASSET_NAME, AML_ASSET_RULE),
    "__registered_model_name": (AML_ASSET_NAME, AML_ASSET_RULE),
    "__data_asset_name": (AML_ASSET_NAME, AML_ASSET_RULE),
    "__environment_name": (AML_ASSET_NAME, AML_ASSET_RULE),
    "__azure_subscription_id": (
        re.compile(r"^$|^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"),
        "empty or a subscription GUID",
    ),
    "__azure_resource_group": (
        re.compile(r"^$|^[-\w.()]{0,89}[-\w()]$"),
        "empty or 1-90 letters, digits, underscores, hyphens, periods or parentheses, not ending with a period",
    ),
    "__azure_workspace": (
        re.compile(r"^$|^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$"),
        "empty or 3-33 letters, digits, underscores or hyphens, starting with a letter or digit",
    ),
}

# The rules shared with data_prep, in the template (cookiecutter copies the file into the project unrendered).
RULES_FILE = Path("{% raw %}{{cookiecutter.project_slug}}{% endraw %}", "components", "data_prep", "csv_rules.py")
SHIPPED_SAMPLE = Path("data/diabetes.csv")
SAMPLE_ROWS = 2000  # rows whose fields decide the column types; every row is counted and checked against them
HANDOFF = Path(".render-data.json")  # in the project folder; post_gen_project reads and removes it
REQUEST_ROWS = 2  # rows of the CSV handed on for docs/sample-request.json


# --- the typed values ------------------------------------------------------------------------------------------


def check_pattern(name: str) -> str | None:
    pattern, rule = RULES_BY_PATTERN[name]
    if pattern.fullmatch(VALUES[name]):
        return None
    return f"{name}={VALUES[name]!r} is invalid: must be {rule}"


def check_choice(name: str, allowed: tuple[str, ...]) -> str | None:
    if VALUES[name] in allowed:
        return None
    return f"{name}={VALUES[name]!r} is invalid: must be one of {', '.join(allowed)}"


def parse_number(name: str, kind: Callable[[str], float]) -> float | None:
    try:
        return kind(VALUES[name].strip())
    except ValueError:
        return None


def check_integer(name: str, minimum: int, maximum: int | None = None) -> str | None:
    value = parse_number(name, int)
    if value is not None and minimum <= value and (maximum is None or value <= maximum):
        return None
    rule = f"a whole number >= {minimum}" if maximum is None else f"a whole number from {minimum} to {maximum}"
    return f"{name}={VALUES[name]!r} is invalid: must be {rule}"


def check_test_size() -> str | None:
    low, high = TEST_SIZE_RANGE
    value = parse_number("__test_size", float)
    if value is None or not low <= value <= high:
        return f"__test_size={VALUES['__test_size']!r} is invalid: must be a number from {low} to {high}"
    return None


def check_instance_range() -> str | None:
    low = parse_number("__compute_min_instances", int)
    high = parse_number("__compute_max_instances", int)
    if low is None or high is None or low <= high:
        return None
    return (
        f"__compute_min_instances={VALUES['__compute_min_instances']!r} is invalid: "
        f"must not exceed __compute_max_instances={VALUES['__compute_max_instances']!r}"
    )


def check_text(name: str) -> str | None:
    if VALUES[name].strip():
        return None
    return f"{name}={VALUES[name]!r} is invalid: must not be empty"


def check_data_file_name() -> str | None:
    """The CSV's name ends the path Azure ML fills, single-quoted, into data_prep's command, and names its blob when
    azure-ai-ml uploads it: the local runner and `--data` hold every data file to the same rule."""
    name = VALUES["__data_file"]
    if "'" in name:
        problem = f"its file name {name!r} holds a single quote, which no quoting on a command line carries safely"
    elif BINDING in name:
        problem = (
            f"its file name {name!r} holds {BINDING}...}}}}, which Azure ML reads as a binding to an input or output"
        )
    elif any(unicodedata.category(char) == "Cc" for char in name):
        problem = f"its file name {name!r} holds a control character, which Azure Storage refuses in a blob name"
    else:
        return None
    return f"data_path={VALUES['data_path']!r} is invalid: {problem}; rename the file"


def check_package_free() -> str | None:
    """A package named like a keyword cannot be imported; one named like a module it needs hides that module."""
    name = VALUES["__package_name"]
    if not RULES_BY_PATTERN["__package_name"][0].fullmatch(name):
        return None  # check_pattern reports it
    if keyword.iskeyword(name):
        reason = "a Python keyword"
    elif name in sys.stdlib_module_names:
        reason = "the name of a standard library module, which it would hide"
    elif name in PROJECT_IMPORTS:
        reason = "the name of a package the project imports, which it would hide"
    else:
        return None
    return f"__package_name={name!r} is invalid: it is {reason}; choose another name"


def value_problems() -> list[str]:
    found = [check_pattern(name) for name in RULES_BY_PATTERN]
    found += [check_text(name) for name in ("project_name", "data_path", "target_column")]
    found += [check_package_free(), check_choice("__compute_tier", COMPUTE_TIERS), check_data_file_name()]
    found += [check_test_size(), check_integer("__random_seed", *SEED_RANGE)]
    found += [
        check_integer("__compute_min_instances", 0),
        check_integer("__compute_max_instances", 1),
        check_integer("__compute_idle_seconds", 0),
        check_instance_range(),
    ]
    return [problem for problem in found if problem]


# --- the training CSV ------------------------------------------------------------------------------------------


class DataError(ValueError):
    """The training CSV cannot be used; the message says why in one line."""


def template_dir() -> Path:
    """The template's own folder, which holds the rules shared with data_prep.

    cookiecutter names it in ``_repo_dir``, relative to where it was started (the shell keeps that in
    PWD). cruft names none, but runs the hooks, as cookiecutter does, from inside the template's folder.
    """
    candidates = []
    if repo := VALUES.get("_repo_dir"):
        candidates.append(Path(os.environ.get("PWD", os.getcwd()), repo))  # an absolute repo wins the join
    candidates.append(Path(f"/proc/{os.getppid()}/cwd"))
    for candidate in candidates:
        if (candidate / RULES_FILE).is_file():
            return candidate.resolve()
    tried = ", ".join(str(candidate) for candidate in candidates)
    raise DataError(f"cannot find the template's folder (tried {tried}): run cookiecutter with the template's path")


def load_rules() -> ModuleType:
    path = template_dir() / RULES_FILE
    spec = importlib.util.spec_from_file_location("csv_rules", path)
    if spec is None or spec.loader is None:
        raise DataError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def resolve_data_path(raw: str) -> Path:
    """Find the CSV the user named: the shipped sample, an absolute path, or one relative to their shell."""
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    if path == SHIPPED_SAMPLE:
        return template_dir() / RULES_FILE.parts[0] / SHIPPED_SAMPLE
    return Path(os.environ.get("PWD", os.getcwd())) / path


def cell(row: list[str], index: int) -> str:
    """A row's field; a short row (pandas fills it) has missing ones at its end."""
    return row[index] if index < len(row) else ""


@dataclass(frozen=True)
class LateField:
    line: int
    value: str


@dataclass(frozen=True)
class Table:
    """The CSV as the hook sees it: the header, the first rows, and how many rows have a target value."""

    path: Path
    header: list[str]
    sample: list[list[str]]
    rows_with_target: int
    # A column of numbers in the sample that holds text or an infinite number further down, where pandas sees it.
    late: dict[str, LateField]

    def late_problem(self, name: str) -> str:
        found = self.late[name]
        return f"{self.path.name} holds {found.value!r} on line {found.line}, after {len(self.sample)} rows of numbers"

    def column(self, name: str) -> list[str]:
        index = self.header.index(name)
        return [cell(row, index) for row in self.sample]


def data_rows(path: Path, reader: Any, width: int) -> Iterator[list[str]]:
    """The data rows of a ``csv.reader`` as data_prep's pandas reads them: blank lines skipped, empty fields past
    the header's width dropped (a delimiter ending each line), filled ones refused."""
    for row in reader:
        if not row:
            continue
        if any(row[width:]):
            raise DataError(
                f"data_path={str(path)!r} is invalid: line {reader.line_num} has {len(row)} fields, the header {width}"
            )
        yield row[:width]


def read_table(path: Path, target: str, rules: ModuleType) -> Table:
    if not path.is_file():
        raise DataError(f"data_path={str(path)!r} is invalid: no such file")
    if path.suffix.lower() != ".csv":
        raise DataError(f"data_path={str(path)!r} is invalid: must be a .csv file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            check_header(path, header, target)
            index = header.index(target)
            rows = data_rows(path, reader, len(header))
            sample = list(itertools.islice(rows, SAMPLE_ROWS))
            with_target, late = scan_rows(
                itertools.chain(sample, rows), index, numeric_columns(header, sample, rules), rules, reader
            )
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"data_path={str(path)!r} is invalid: not a UTF-8 CSV file ({error})") from None
    if not sample:
        raise DataError(f"data_path={str(path)!r} is invalid: the file has a header but no data rows")
    return Table(path, header, sample, with_target, late)


# A finite number in every reading, pandas' and Python's: most fields of a numeric column, matched fast.
PLAIN_NUMBER = r"-?[0-9]{1,15}(?:\.[0-9]{0,30})?"


def scan_rows(
    rows: Iterator[list[str]], target: int, numeric: list[tuple[str, int]], rules: ModuleType, reader: Any
) -> tuple[int, dict[str, LateField]]:
    """How many rows have a target value, and the first field of each ``numeric`` column that is not a finite
    number (the sample's rows pass; a row whose numeric fields are all plain numbers is checked in one match)."""
    with_target = 0
    late: dict[str, LateField] = {}
    # The separator cannot be in a plain number: the match holds only if every field is one.
    all_plain = re.compile("\0".join([PLAIN_NUMBER] * len(numeric)))
    for row in rows:
        with_target += not rules.is_missing(cell(row, target))
        fields = [cell(row, position) for _, position in numeric]
        if not numeric or all_plain.fullmatch("\0".join(fields)):
            continue
        for (name, _), value in zip(numeric, fields, strict=True):
            if name not in late and not (rules.is_missing(value) or finite(value, rules)):
                late[name] = LateField(reader.line_num, value)
    return with_target, late


def numeric_columns(header: list[str], sample: list[list[str]], rules: ModuleType) -> list[tuple[str, int]]:
    """The columns, with their positions, whose sampled fields are filled in places and finite numbers in all."""
    found = []
    for position, name in enumerate(header):
        filled = [value for value in (cell(row, position) for row in sample) if not rules.is_missing(value)]
        if filled and all(finite(value, rules) for value in filled):
            found.append((name, position))
    return found


def finite(value: str, rules: ModuleType) -> bool:
    number = rules.number(value)
    return number is not None and math.isfinite(number)


def check_header(path: Path, header: list[str], target: str) -> None:
    if not header:
        raise DataError(f"data_path={str(path)!r} is invalid: the file is empty, a header row is required")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise DataError(f"data_path={str(path)!r} is invalid: duplicate column names {duplicated}")
    if "" in header:
        position = header.index("") + 1
        raise DataError(f"data_path={str(path)!r} is invalid: column {position} of the header has no name")
    if target not in header:
        raise DataError(f"target_column={target!r} is not a column of {path.name}; columns are: {', '.join(header)}")
    if len(header) < 2:
        raise DataError(
            f"target_column={target!r} is the only column of {path.name}: no features are left to learn from"
        )


def filled_counts(values: list[str], rules: ModuleType) -> Counter[str]:
    return Counter(value for value in values if not rules.is_missing(value))


def check_target(table: Table, target: str, rules: ModuleType) -> None:
    found = rules.column_type(filled_counts(table.column(target), rules))
    if found.kind == "empty":
        raise DataError(f"target_column={target!r} is empty in the first {len(table.sample)} rows of {table.path.name}")
    if found.text:
        holds = f"{table.path.name} holds {found.text[0]!r} in it"
        raise DataError(f"target_column={target!r} must be numeric, but {holds}")
    if found.infinite:
        raise DataError(
            f"target_column={target!r} must hold finite numbers, but {table.path.name} holds {found.infinite[0]!r}"
        )
    if target in table.late:
        raise DataError(
            f"target_column={target!r} must hold finite numbers on every row, but {table.late_problem(target)}"
        )
    if table.rows_with_target < rules.MIN_ROWS:
        raise DataError(
            f"data_path={str(table.path)!r} is invalid: only {table.rows_with_target} rows have a "
            f"{target!r} value, at least {rules.MIN_ROWS} are needed"
        )


def check_split(table: Table, rules: ModuleType) -> None:
    """The split data_prep makes must leave rows in every part (``validation_size`` only matters for auto)."""
    validation = float(VALUES["__validation_size"]) if VALUES["model"] == "auto" else 0.0
    problem = rules.split_problem(table.rows_with_target, float(VALUES["__test_size"]), validation)
    if problem:
        rows = f"the {table.rows_with_target} rows with a target in {table.path.name}"
        raise DataError(f"__test_size={VALUES['__test_size']!r} is invalid for {rows}: it {problem}")


def column_list(name: str, header: list[str]) -> list[str]:
    """A comma-separated variable as column names, each checked against the CSV's header."""
    columns = [column.strip() for column in VALUES[name].split(",") if column.strip()]
    for column in columns:
        if column not in header:
            raise DataError(f"{name}: {column!r} is not a column of the CSV; columns are: {', '.join(header)}")
    return columns


def unusable(values: list[str], found: Any, rules: ModuleType) -> str | None:
    """Why a sampled column should not be a feature (the rule data_prep applies to the whole column)."""
    filled = [value for value in values if not rules.is_missing(value)]
    numbers = [rules.number(value) for value in filled] if found.kind == "numeric" else []
    ascending = all(number.is_integer() for number in numbers) and numbers == sorted(numbers)
    distinct = len(set(numbers) if numbers else set(filled))
    return rules.unusable(distinct, len(values), found.kind == "numeric", ascending)


def feature_type(table: Table, name: str, rules: ModuleType, named: bool) -> Any:
    """The column's type by csv_rules; a column of numbers with a few text fields is refused, unless the user
    ``named`` it in feature_columns: then it is a category on purpose (codes such as 4, 6, 8, rotary)."""
    found = rules.column_type(filled_counts(table.column(name), rules))
    if found.kind == "mixed" and not named:
        raise DataError(
            f"column {name!r} of {table.path.name} holds numbers except for {found.describe_text()} "
            f"({found.filled - found.numbers} of {found.filled} filled rows): make those fields empty (or NA) "
            "if they mean missing, list the column in drop_columns, or name it in feature_columns to keep it "
            "as a category"
        )
    if found.infinite:
        raise DataError(
            f"column {name!r} of {table.path.name} holds {found.infinite[0]!r}: numbers must be finite; "
            "make those fields empty (or NA), or list the column in drop_columns"
        )
    if name in table.late and not named:
        raise DataError(
            f"column {name!r}: {table.late_problem(name)}: make such fields empty (or NA) if they mean missing, "
            "list the column in drop_columns, or name it in feature_columns to keep it as a category"
        )
    if name in table.late:
        return dataclasses.replace(found, kind="mixed", text=[table.late[name].value])
    return found


def infer_features(table: Table, target: str, rules: ModuleType) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Numeric and categorical feature columns from the sample, and the columns left out with why."""
    named = column_list("feature_columns", table.header)
    dropped = {column: "drop_columns" for column in column_list("drop_columns", table.header)}
    features: dict[str, list[str]] = {"numeric": [], "categorical": []}
    for name in named or table.header:
        if name == target or name in dropped:
            continue
        found = feature_type(table, name, rules, name in named)
        reason = None if named else unusable(table.column(name), found, rules)
        if found.kind == "empty":
            reason = "empty"
        if reason:
            dropped[name] = reason
            continue
        features["numeric" if found.kind == "numeric" else "categorical"].append(name)
    if not features["numeric"] and not features["categorical"]:
        raise DataError(f"no feature columns are left besides target_column={target!r}")
    return features, dropped


def analyse_data() -> dict[str, object]:
    """Everything post_gen_project needs from the CSV; raises DataError on the first problem."""
    rules = load_rules()
    source = resolve_data_path(VALUES["data_path"])
    target = VALUES["target_column"]
    table = read_table(source, target, rules)
    check_target(table, target, rules)
    check_split(table, rules)
    features, dropped = infer_features(table, target, rules)
    return {
        "source": str(source),
        "template": str(template_dir()),  # post_gen_project compares what it removes with the template's files
        "features": features,
        "dropped": dropped,
        "header": table.header,
        # Missing fields as empty ones: the sample request sends them as JSON null.
        "rows": [["" if rules.is_missing(field) else field for field in row] for row in table.sample[:REQUEST_ROWS]],
    }


def main() -> int:
    found = value_problems()
    if not found:  # the data is read with the values: a bad __test_size or target is reported once, above
        try:
            analysis = analyse_data()
        except DataError as error:
            found.append(str(error))
    for problem in found:
        print(f"ERROR: {problem}", file=sys.stderr)
    if found:
        return 1
    HANDOFF.write_text(json.dumps(analysis), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
