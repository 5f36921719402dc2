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
import importlib.util
import itertools
import json
import keyword
import math
import operator
import os
import re
import subprocess
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
CHUNK_ROWS = 4096  # rows counted together: one match per column and chunk when its fields are plain numbers
HANDOFF = Path(".render-data.json")  # in the project folder; post_gen_project reads and removes it
ENGINE_FOLDER = "aml-pipeline-kit"  # the engine's distribution, in the template's folder


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


def column_list(name: str) -> list[str]:
    """A comma-separated variable as column names."""
    return [column.strip() for column in VALUES[name].split(",") if column.strip()]


def check_column_lists() -> list[str]:
    """Each column named once: twice in a list, or in both, is a slip whose meaning the render cannot guess."""
    found = []
    for name in ("feature_columns", "drop_columns"):
        columns = column_list(name)
        if twice := next((column for column in columns if columns.count(column) > 1), None):
            found.append(f"{name}={VALUES[name]!r} is invalid: it names {twice!r} twice")
    if both := [column for column in column_list("drop_columns") if column in column_list("feature_columns")]:
        found.append(
            f"drop_columns={VALUES['drop_columns']!r} is invalid: {both[0]!r} is in feature_columns too; "
            "name each column in one list only"
        )
    return found


def value_problems() -> list[str]:
    found = [check_pattern(name) for name in RULES_BY_PATTERN]
    found += [check_text(name) for name in ("project_name", "data_path", "target_column")]
    found += [check_package_free(), check_choice("__compute_tier", COMPUTE_TIERS), check_data_file_name()]
    found += [check_test_size(), check_integer("__random_seed", *SEED_RANGE), check_integer("__cv_folds", 2)]
    found += [
        check_integer("__compute_min_instances", 0),
        check_integer("__compute_max_instances", 1),
        check_integer("__compute_idle_seconds", 0),
        check_instance_range(),
        *check_column_lists(),
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


def invalid_data(path: Path, problem: str) -> DataError:
    return DataError(f"data_path={str(path)!r} is invalid: {problem}")


# A finite number in every reading, pandas' and Python's, or an empty field: most fields of a numeric column, a
# chunk of them matched at once, joined by NULs (a field holding one is refused: pandas cuts the field there).
PLAIN_FIELD = r"(?:-?[0-9]{1,15}(?:\.[0-9]{0,30})?)?"
PLAIN_FIELDS = re.compile(rf"{PLAIN_FIELD}(?:\0{PLAIN_FIELD})*")


class ColumnCount:
    """A column's fields over the whole file, counted a chunk of rows at a time: the counts csv_rules types it by
    (``column_type_from_counts``), the first line of each kind of offending field, and what tells a constant or a
    row number."""

    def __init__(self, path: Path, rules: ModuleType) -> None:
        self.path = path
        self.rules = rules
        self.missing = 0
        self.numbers = 0
        self.distinct: set[float] = set()  # exact up to the rule's MARKER_VALUES + 1, which is all it asks
        self.text: Counter[str] = Counter()
        self.infinite: Counter[str] = Counter()
        self.first: dict[str, tuple[str, int]] = {}  # text, written, infinite, beyond -> (field, line)
        self.row_numbers = True  # strictly ascending whole numbers, none missing, so far
        self.last = -math.inf

    def add(self, values: tuple[str, ...], lines: list[int]) -> None:
        joined = "\0".join(values)
        if joined.count("\0") == len(values) - 1 and PLAIN_FIELDS.fullmatch(joined):
            self.add_plain_numbers(values)
        else:
            self.add_fields(values, lines)

    def add_plain_numbers(self, values: tuple[str, ...]) -> None:
        empty = values.count("")
        self.missing += empty
        self.numbers += len(values) - empty
        if len(self.distinct) <= self.rules.MARKER_VALUES:
            self.distinct.update(map(float, set(values) - {""}))
        if self.row_numbers:
            self.follow_row_numbers([None] if empty else list(map(float, values)))

    def add_fields(self, values: tuple[str, ...], lines: list[int]) -> None:
        """Any fields: each distinct one read by csv_rules once per chunk."""
        parsed: dict[str, float | None] = {}
        kinds: dict[str, tuple[str, ...]] = {}  # the offending fields' kinds, for their first lines
        for value, count in Counter(values).items():
            if self.rules.is_missing(value):
                self.missing += count
                parsed[value] = None
                continue
            parsed[value] = number = self.rules.number(value)
            if number is None:
                if "\0" in value:
                    line = lines[values.index(value)]
                    raise invalid_data(self.path, f"line {line} holds a NUL character, where pandas cuts its field")
                self.text[value] += count
                kinds[value] = ("text", "written") if self.rules.readings(value) else ("text",)
                continue
            self.numbers += count
            if len(self.distinct) <= self.rules.MARKER_VALUES:
                self.distinct.add(number)
            if math.isinf(number):
                self.infinite[value] += count
                kinds[value] = ("infinite",)
            elif abs(number) > self.rules.TARGET_LIMIT:
                kinds[value] = ("beyond",)
        if self.row_numbers:
            self.follow_row_numbers([parsed[value] for value in values])
        if set(itertools.chain(*kinds.values())) - self.first.keys():
            self.note_first_lines(values, lines, kinds)

    def follow_row_numbers(self, numbers: list[float | None]) -> None:
        """Whether the column still counts rows: ``numbers``, the chunk's fields (None: missing or text), are whole
        numbers, each above the one before."""
        self.row_numbers = (
            None not in numbers
            and all(map(float.is_integer, numbers))  # type: ignore[arg-type]
            and all(map(operator.lt, [self.last, *numbers], numbers))
        )
        if self.row_numbers:
            self.last = numbers[-1]  # type: ignore[assignment]

    def note_first_lines(self, values: tuple[str, ...], lines: list[int], kinds: dict[str, tuple[str, ...]]) -> None:
        for value, line in zip(values, lines, strict=True):
            for kind in kinds.get(value, ()):
                self.first.setdefault(kind, (value, line))

    def column_type(self) -> Any:
        return self.rules.column_type_from_counts(self.numbers, len(self.distinct), self.text, self.infinite)

    def offending(self, kind: str, file: str) -> str:
        """``data.csv holds '?' on line 5``: the first field of this kind."""
        value, line = self.first[kind]
        return f"{file} holds {value!r} on line {line}"


@dataclass(frozen=True)
class Table:
    """The CSV as the hook sees it: the header, every column's counts, the row count."""

    path: Path
    header: list[str]
    columns: dict[str, ColumnCount]
    rows: int


@contextmanager
def csv_rows(path: Path, rules: ModuleType) -> Iterator[tuple[Any, Iterator[list[str]]]]:
    """The CSV's reader and its rows as data_prep's pandas reads them: the header first, lines pandas skips
    skipped, each data row as wide as the header (a short one padded with empty fields, as pandas fills it)."""
    last = [""]

    def lines(handle: Any) -> Iterator[str]:
        for line in handle:
            last[0] = line  # the line csv.reader parsed last, for the blank-line rule
            yield line

    def rows(reader: Any) -> Iterator[list[str]]:
        # csv.reader reads a line of spaces as a field, pandas skips it; a quoted field of spaces is no such line.
        rows = (row for row in reader if row and not (len(row) == 1 and rules.skipped_line(last[0])))
        header = next(rows, [])
        yield header
        width = len(header)
        for row in rows:
            if len(row) != width:
                if any(row[width:]):
                    raise invalid_data(path, f"line {reader.line_num} has {len(row)} fields, the header {width}")
                row = row[:width] + [""] * (width - len(row))
            yield row

    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(lines(handle))
            yield reader, rows(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        raise invalid_data(path, f"not a UTF-8 CSV file ({error})") from None


def chunks(rows: Iterator[list[str]], reader: Any) -> Iterator[tuple[list[list[str]], list[int]]]:
    """The rows ``CHUNK_ROWS`` at a time, with the line each ends on."""
    chunk: list[list[str]] = []
    lines: list[int] = []
    for row in rows:
        chunk.append(row)
        lines.append(reader.line_num)
        if len(chunk) == CHUNK_ROWS:
            yield chunk, lines
            chunk, lines = [], []
    if chunk:
        yield chunk, lines


def read_table(path: Path, target: str, rules: ModuleType) -> Table:
    """Every row of the CSV counted, column by column: types are the whole file's, as pandas reads it."""
    if not path.is_file():
        raise invalid_data(path, "no such file")
    if path.suffix.lower() != ".csv":
        raise invalid_data(path, "must be a .csv file")
    with csv_rows(path, rules) as (reader, rows):
        header = next(rows)
        check_header(path, header, target)
        columns = {name: ColumnCount(path, rules) for name in header}
        count = 0
        for chunk, lines in chunks(rows, reader):
            count += len(chunk)
            for column, values in zip(columns.values(), zip(*chunk, strict=True), strict=True):
                column.add(values, lines)
    if not count:
        raise invalid_data(path, "the file has a header but no data rows")
    return Table(path, header, columns, count)


def distinct_on_every_row(table: Table, name: str, rules: ModuleType) -> bool:
    """Whether a column of text and numbers holds a different string on every row: read again, for the one kind
    of column whose counts cannot tell (every text value once, nothing missing; numbers are not kept)."""
    position = table.header.index(name)
    with csv_rows(table.path, rules) as (_, rows):
        next(rows)
        return len({row[position] for row in rows}) == table.rows


def check_header(path: Path, header: list[str], target: str) -> None:
    if not header:
        raise invalid_data(path, "the file is empty, a header row is required")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise invalid_data(path, f"duplicate column names {duplicated}")
    if "" in header:
        raise invalid_data(path, f"column {header.index('') + 1} of the header has no name")
    for position, name in enumerate(header, 1):
        # A NUL ends the name where pandas reads it; the others are invisible wherever the name is shown.
        if controls := [char for char in name if unicodedata.category(char) == "Cc"]:
            raise invalid_data(
                path,
                f"column {position} of the header, {name!r}, holds the control character {controls[0]!r}: "
                "column names must be printable",
            )
    if target not in header:
        raise DataError(f"target_column={target!r} is not a column of {path.name}; columns are: {', '.join(header)}")
    if len(header) < 2:
        raise DataError(
            f"target_column={target!r} is the only column of {path.name}: no features are left to learn from"
        )


def check_target(table: Table, target: str, rules: ModuleType) -> None:
    column, file = table.columns[target], table.path.name
    found = column.column_type()
    rule = f"target_column={target!r} must"
    if found.kind == "formatted":
        raise DataError(f"{rule} be numeric, but {column.offending('written', file)}: {found.remedy()}")
    if found.text:
        raise DataError(f"{rule} be numeric, but {column.offending('text', file)}")
    if found.infinite:
        raise DataError(f"{rule} hold finite numbers, but {column.offending('infinite', file)}")
    if "beyond" in column.first:
        raise DataError(
            f"{rule} hold numbers within ±{rules.TARGET_LIMIT:g}, beyond which squared errors overflow, but "
            f"{column.offending('beyond', file)}"
        )
    if column.numbers < rules.MIN_ROWS:
        raise invalid_data(
            table.path, f"only {column.numbers} rows have a {target!r} value, at least {rules.MIN_ROWS} are needed"
        )
    if len(column.distinct) == 1:
        value = next(iter(column.distinct))
        raise DataError(
            f"target_column={target!r} holds {value:g} on every row of {file} that has a value: "
            "there is nothing to predict"
        )


def check_split(table: Table, target: str, rules: ModuleType) -> None:
    """The split data_prep makes must leave rows in every part, and with auto, whose candidates are scored by
    cross-validation, enough train rows for every fold."""
    with_target, test_size = table.columns[target].numbers, float(VALUES["__test_size"])
    rows = f"the {with_target} rows with a target in {table.path.name}"
    if problem := rules.split_problem(with_target, test_size):
        raise DataError(f"__test_size={VALUES['__test_size']!r} is invalid for {rows}: it {problem}")
    folds = int(VALUES["__cv_folds"])
    if VALUES["model"] == "auto" and (problem := rules.folds_problem(with_target, test_size, folds)):
        sizes = f"__test_size={VALUES['__test_size']!r} with __cv_folds={VALUES['__cv_folds']!r}"
        raise DataError(f"{sizes} is invalid for {rows}: it {problem}")


def checked_columns(name: str, header: list[str]) -> list[str]:
    """A comma-separated variable's column names, each checked against the CSV's header."""
    columns = column_list(name)
    for column in columns:
        if column not in header:
            raise DataError(f"{name}: {column!r} is not a column of the CSV; columns are: {', '.join(header)}")
    return columns


def unusable(table: Table, name: str, found: Any, rules: ModuleType, named: bool) -> str | None:
    """Why a column should not be a feature: empty, or, unless the user ``named`` the features, the rule data_prep
    applies (``csv_rules.unusable``)."""
    if found.kind == "empty":
        return "empty"
    if named:
        return None
    column = table.columns[name]
    if found.kind == "numeric":
        # Row numbers: every row filled with a distinct whole number, each above the last (the count then is exact).
        distinct = table.rows if column.row_numbers else len(column.distinct)
        return rules.unusable(distinct, table.rows, True, column.row_numbers)
    if column.numbers and not column.missing and all(count == 1 for count in column.text.values()):
        distinct = table.rows if distinct_on_every_row(table, name, rules) else 0
        return rules.unusable(distinct, table.rows, False, False)
    # Numbers count as one value at least: never as many as the rows, since something is missing or repeated.
    return rules.unusable(len(column.text) + bool(column.numbers), table.rows, False, False)


def feature_type(table: Table, name: str, rules: ModuleType, named: bool) -> Any:
    """The column's type by csv_rules; numbers spoilt by text or written with separators are refused, unless the
    user ``named`` the column in feature_columns: then it is a category on purpose (codes such as 4, 6, 8, rotary)."""
    column, file = table.columns[name], table.path.name
    found = column.column_type()
    if found.kind in {"mixed", "formatted"} and not named:
        first = column.first["written" if found.kind == "formatted" else "text"][1]
        raise DataError(
            f"column {name!r} of {file} holds {found.describe()} (the first on line {first}): {found.remedy()}, "
            "list the column in drop_columns, or name it in feature_columns to keep it as a category"
        )
    if found.infinite:
        raise DataError(
            f"column {name!r} of {column.offending('infinite', file)}: numbers must be finite; "
            "make those fields empty (or NA), or list the column in drop_columns"
        )
    return found


def infer_features(table: Table, target: str, rules: ModuleType) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Numeric and categorical feature columns, and every other column but the target, left out with why."""
    named = checked_columns("feature_columns", table.header)
    dropped = checked_columns("drop_columns", table.header)
    features: dict[str, list[str]] = {"numeric": [], "categorical": []}
    reasons: dict[str, str] = {}
    for name in table.header:
        if name == target:
            continue
        if name in dropped:
            reasons[name] = "in drop_columns"
            continue
        if named and name not in named:
            reasons[name] = "not in feature_columns"
            continue
        found = feature_type(table, name, rules, name in named)
        if reason := unusable(table, name, found, rules, bool(named)):
            reasons[name] = reason
            continue
        features["numeric" if found.kind == "numeric" else "categorical"].append(name)
    if not features["numeric"] and not features["categorical"]:
        raise DataError(f"no feature columns are left besides target_column={target!r}")
    order = {name: position for position, name in enumerate(named)}
    for kind in features.values():  # in the order the user named them
        kind.sort(key=lambda name: order.get(name, 0))
    return features, reasons


def analyse_data() -> dict[str, object]:
    """Everything post_gen_project needs from the CSV; raises DataError on the first problem."""
    rules = load_rules()
    source = resolve_data_path(VALUES["data_path"])
    target = VALUES["target_column"]
    table = read_table(source, target, rules)
    check_target(table, target, rules)
    check_split(table, target, rules)
    features, dropped = infer_features(table, target, rules)
    return {
        "source": str(source),
        "template": str(template_dir()),  # post_gen_project compares what it removes with the template's files
        "features": features,
        "dropped": dropped,
    }


# --- where the render takes the engine from -------------------------------------------------------------------


def engine_version(engine: Path) -> str:
    """The version of the engine in the template being rendered: the version the render requires."""
    text = (engine / "src" / "aml_pipeline_kit" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    if found is None:
        raise DataError(f"{engine}: aml_pipeline_kit/__init__.py names no __version__")
    return found[1]


def git(repository: Path, *arguments: str) -> str:
    command = ["git", "-C", str(repository), *arguments]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def engine_source(engine: Path, project: Path) -> dict[str, str] | None:
    """Where the render's ``make install`` takes the engine from (its ``[tool.uv.sources]`` entry): the template's
    repository at the commit rendered (cruft, or a git URL cookiecutter cloned), or the template's folder (a local
    checkout, offline: relative to the project when the project lies inside that folder, as the committed example
    does, else absolute); None from an archive, when the version comes from PyPI."""
    from cookiecutter.config import BUILTIN_ABBREVIATIONS
    from cookiecutter.repository import expand_abbreviations, is_repo_url, is_zip_file

    template, commit = str(VALUES.get("_template", "")), VALUES.get("_commit")
    if commit:
        url = Path(template).resolve().as_uri() if Path(template).is_dir() else template
        return {"git": url, "rev": str(commit), "subdirectory": engine.name}
    where = expand_abbreviations(template, BUILTIN_ABBREVIATIONS)
    if is_zip_file(where):
        return None
    if is_repo_url(where):  # cookiecutter cloned it: the clone's origin and commit
        clone = engine.parent
        return {
            "git": git(clone, "remote", "get-url", "origin"),
            "rev": git(clone, "rev-parse", "HEAD"),
            "subdirectory": engine.name,
        }
    inside = project.is_relative_to(engine.parent)
    return {"path": Path(os.path.relpath(engine, project) if inside else engine).as_posix()}


def engine_requirement() -> dict[str, Any]:
    engine = template_dir() / ENGINE_FOLDER
    return {"version": engine_version(engine), "source": engine_source(engine, Path.cwd().resolve())}


def main() -> int:
    found = value_problems()
    if not found:  # the data is read with the values: a bad __test_size or target is reported once, above
        try:
            analysis = {**analyse_data(), "engine": engine_requirement()}
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
