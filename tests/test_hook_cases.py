"""The hooks against hostile and careless input.

Every value is either refused in one line naming it and the rule, before a single file is written
(an existing project under ``cookiecutter -f`` included), or rendered so that the project reads the
data the way pandas reads it: the hooks decide column types with ``csv_rules.py``, the module
data_prep uses at run time, and the first test here holds that module to pandas itself.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import jinja2
import pandas as pd
import pytest
import yaml
from aml_pipeline_kit.testing.hostile import HOSTILE_COLUMN_NAMES
from conftest import bake as bake_into
from cookiecutter.exceptions import FailedHookException
from pandas._libs.parsers import STR_NA_VALUES
from pytest_cookies.plugin import Cookies
from test_hooks import assert_hook_failed, assert_rendered, bake, error_lines, load_yaml, write_input

TEMPLATE = Path(__file__).resolve().parents[1]
RULES_PATH = TEMPLATE / "{{cookiecutter.project_slug}}" / "components" / "data_prep" / "csv_rules.py"

pytestmark = pytest.mark.filterwarnings("ignore:project is deprecated:DeprecationWarning")


def load_rules() -> ModuleType:
    spec = importlib.util.spec_from_file_location("template_csv_rules", RULES_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rules = load_rules()


# --- one rule: csv_rules reads a field as pandas does ----------------------------------------------------------

FIELDS = [
    *sorted(STR_NA_VALUES),
    *("1", " 1", "1 ", "\t1", "1.", ".5", "+1", "-1", "-0", "0001", "1e5", "1E+05", "1.e5", "+.5", "1e-400"),
    *("inf", "-inf", "Inf", "INF", "infinity", "-Infinity", "+inf", "iNfInItY", "1e308"),
    *("1_000", "1,000", "0x10", "1.5.2", "1d5", "1e", "e5", ".", "+", "-", "--1", "1e400", "1.8e308"),
    *("NAN", "na", " NA", "NA ", "none", "+nan", "nan(1)", " ", "TRUE", "yes"),
    *("\u0661", "\u0661\u0662", "\uff11", "1\u00a0"),  # Arabic-Indic and full-width digits, a no-break space
    *("99999999999999999999", "18446744073709551616", "9223372036854775807", "infinit"),
    *("1,038.9", "7,202", "1.038,9", "1 038", "1\u00a0038,5", "1'038.5", "-0,5", "1,234,567"),  # written numbers
]


@pytest.mark.parametrize("field", FIELDS, ids=repr)
def test_csv_rules_read_a_field_as_pandas_does(field: str) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([["x", "y"], [field, 1], ["2", 1]])
    column = pd.read_csv(io.StringIO(buffer.getvalue()))["x"]
    pandas_missing = bool(column.isna().iloc[0])
    pandas_number = pd.api.types.is_numeric_dtype(column) and not pandas_missing
    assert rules.is_missing(field) == pandas_missing
    assert rules.is_number(field) == pandas_number
    if pandas_number:
        assert rules.number(field) == float(column.iloc[0])


def test_csv_rules_know_every_missing_value_marker_of_pandas() -> None:
    assert frozenset(STR_NA_VALUES) == rules.NA_VALUES


# pandas' options for numbers written with separators; it reads a written number as text without them.
NUMBER_OPTIONS = [
    {"thousands": ","},
    {"decimal": ","},
    {"thousands": ".", "decimal": ","},
    {"thousands": " "},
    {"thousands": " ", "decimal": ","},
    {"thousands": "'"},
]
WRITTEN = {
    "1,038.9": ["1038.9"],
    "7,202": ["7202", "7.202"],
    "1.038,9": ["1038.9"],
    "-1 038": ["-1038"],
    "1\u00a0038,5": ["1038.5"],
    "1\u202f038": ["1038"],
    "1'038.5": ["1038.5"],
    "0,5": ["0.5"],
    "1,234,567": ["1234567"],
    "1,2,3": [],
    "12,34.5": [],
    "1,038.9.1": [],
}


@pytest.mark.parametrize(("field", "readings"), WRITTEN.items(), ids=repr)
def test_csv_rules_read_a_written_number_as_one_of_pandas_options_does(field: str, readings: list[str]) -> None:
    """What the refusal of a column of written numbers suggests writing is what pandas reads with the matching
    option, and nothing else counts as a written number."""
    read = set()
    # pandas' C parser takes one-byte separators only: a no-break space is read as the space it stands for.
    spaced = field.replace("\u00a0", " ").replace("\u202f", " ")
    for options in NUMBER_OPTIONS:
        column = pd.read_csv(io.StringIO(f'x,y\n"{spaced}",1\n2,1\n'), **options)["x"]
        if pd.api.types.is_numeric_dtype(column):
            read.add(float(column.iloc[0]))
    assert rules.number(field) is None  # pandas' defaults read it as text
    assert rules.readings(field) == readings
    assert {float(reading) for reading in readings} <= read


# A line pandas skips (spaces and tabs only), or reads as a row of fields: the hook must do the same.
LINES = ["", " ", "   ", "\t", " \t ", "\x0c", "\x0b", "\xa0", "\u2003", ",", " ,", ",,", '""', '" "', "  #", "\r"]


@pytest.mark.parametrize("line", LINES, ids=repr)
def test_csv_rules_skip_a_line_as_pandas_does(line: str) -> None:
    text = f"a,b,c\n1,2,3\n{line}\n4,5,6\n"
    frame = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=sorted(rules.NA_VALUES), index_col=False)
    assert rules.skipped_line(f"{line}\n") == (len(frame) == 2)


def column(*groups: tuple[object, int]) -> dict[str, int]:
    """A column's fields with their counts, from (value or values, times each) groups."""
    counts: dict[str, int] = {}
    for values, times in groups:
        for value in values if isinstance(values, (list, range)) else [values]:
            counts[str(value)] = counts.get(str(value), 0) + times
    return counts


# What a column of both numbers and text is: numbers spoilt by a marker pandas does not know (mixed: refused by
# name), or a category (numbers among words, codes).
COLUMN_KINDS = {
    "'?' in 5% of a measure": (column((range(95), 1), ("?", 5)), "mixed"),
    "'?' in 25% of a measure": (column((range(75), 1), ("?", 25)), "mixed"),
    "'?' in 60% of a measure": (column((range(40), 1), ("?", 60)), "mixed"),
    "two markers in 30% of a count": (column((range(1, 6), 14), ("?", 20), ("unknown", 10)), "mixed"),
    "free text in 8% of a measure": (column((range(92), 1), ([f"about {i}" for i in range(8)], 1)), "mixed"),
    "codes with a rotary engine": (column(([4, 6, 8], 30), ("rotary", 1)), "mixed"),
    "letters": (column((list("ABCDE"), 20)), "categorical"),
    "letter codes among number codes": (
        column((range(100, 170), 1), ([f"V{i}" for i in range(30)], 1)),
        "categorical",
    ),
    "answers with a number or two": (column((["yes", "no", "maybe", "later"], 20), ([1, 2], 10)), "categorical"),
    "a flag with an unknown": (column(([0, 1], 40), ("unknown", 20)), "mixed"),
    "two words and two numbers": (column((["none", "many"], 20), ([1, 2], 30)), "categorical"),
    "numbers written with separators": (column((range(50), 1), (["1,038.9", "2,001.5"], 25)), "formatted"),
    "written numbers and a marker": (column((["1,038.9", "2,001.5", "3,500"], 25), ("?", 25)), "formatted"),
    "a list in each field": (column((["1,2", "3,4", "a,b", "c,d", "e,f"], 20)), "categorical"),
}


@pytest.mark.parametrize(("counts", "kind"), COLUMN_KINDS.values(), ids=COLUMN_KINDS.keys())
def test_csv_rules_type_a_column_of_numbers_and_text(counts: dict[str, int], kind: str) -> None:
    assert rules.column_type(counts).kind == kind


# --- refused at the door -----------------------------------------------------------------------------------------


def rows(count: int, make: Callable[[int], list[object]]) -> list[list[object]]:
    return [make(index) for index in range(count)]


def table(header: list[str], body: list[list[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *body])
    return buffer.getvalue()


def houses(count: int = 40, **columns: Callable[[int], object]) -> str:
    """A small, valid CSV of ``count`` houses; ``columns`` replace or add columns by the row's index."""
    makers: dict[str, Callable[[int], object]] = {
        "rooms": lambda i: 1 + i % 5,
        "area": lambda i: 30 + (i * 7) % 90,
        "city": lambda i: ("Paris", "Lyon", "Nice")[i % 3],
        "price": lambda i: 1000 + 13 * i,
        **columns,
    }
    return table(list(makers), rows(count, lambda i: [make(i) for make in makers.values()]))


SEED_RULE = "__random_seed={value!r} is invalid: must be a whole number from 0 to 4294967295"
TEST_SIZE_RULE = "__test_size={value!r} is invalid: must be a number from 0.01 to 0.99"
PACKAGE_RULE = "__package_name={value!r} is invalid: it is {reason}; choose another name"
KEYWORD, STDLIB, IMPORTED = (
    "a Python keyword",
    "the name of a standard library module, which it would hide",
    "the name of a package the project imports, which it would hide",
)

SPOILT_REMEDY = (
    "make those fields empty (or NA) if they mean missing, list the column in drop_columns, or name it in "
    "feature_columns to keep it as a category"
)

# (extra context, CSV text or None for the shipped sample) -> the one ERROR line
REFUSED = {
    "a seed numpy cannot take": ({"__random_seed": str(2**32)}, None, SEED_RULE.format(value=str(2**32))),
    "a negative seed": ({"__random_seed": "-1"}, None, SEED_RULE.format(value="-1")),
    "a single fold": ({"__cv_folds": "1"}, None, "__cv_folds='1' is invalid: must be a whole number >= 2"),
    "a test size the component spec refuses (low)": (
        {"__test_size": "0.001"},
        None,
        TEST_SIZE_RULE.format(value="0.001"),
    ),
    "a test size the component spec refuses (high)": (
        {"__test_size": "0.999"},
        None,
        TEST_SIZE_RULE.format(value="0.999"),
    ),
    "a test size that is not finite": ({"__test_size": "nan"}, None, TEST_SIZE_RULE.format(value="nan")),
    "a keyword as package name": (
        {"__package_name": "import"},
        None,
        PACKAGE_RULE.format(value="import", reason=KEYWORD),
    ),
    "a standard library module as package name": (
        {"__package_name": "email"},
        None,
        PACKAGE_RULE.format(value="email", reason=STDLIB),
    ),
    "a dependency as package name": (
        {"__package_name": "pandas"},
        None,
        PACKAGE_RULE.format(value="pandas", reason=IMPORTED),
    ),
    "a slug that derives a keyword package": (
        {"project_slug": "import"},
        None,
        PACKAGE_RULE.format(value="import", reason=KEYWORD),
    ),
    "a test split left with one row": (
        {"__test_size": "0.05"},
        houses(12),
        "__test_size='0.05' is invalid for the 12 rows with a target in data.csv: "
        "it leaves 1 of 12 rows for the test split, at least 2 are needed",
    ),
    "a train split left with no row": (
        {"__test_size": "0.99", "model": "ridge"},  # not cross-validated, so not refused for its folds first
        houses(12),
        "__test_size='0.99' is invalid for the 12 rows with a target in data.csv: it leaves no train rows of 12",
    ),
    "auto with a train split too small for its folds": (
        {"__test_size": "0.6", "model": "auto"},
        houses(12),
        "__test_size='0.6' with __cv_folds='5' is invalid for the 12 rows with a target in data.csv: it leaves 5 of "
        "12 rows for the train split, too few for 5-fold cross-validation: at least 10 are needed, 2 held out by each "
        "fold",
    ),
    "too few rows with a target": (
        {},
        houses(12, price=lambda i: "NA" if i % 4 else 1000 + i),
        "data_path='{path}' is invalid: only 3 rows have a 'price' value, at least 10 are needed",
    ),
    "an infinite target": (
        {},
        houses(price=lambda i: "inf" if i == 5 else 1000 + i),
        "target_column='price' must hold finite numbers, but data.csv holds 'inf' on line 7",
    ),
    "an infinite feature": (
        {},
        houses(area=lambda i: "-Infinity" if i == 5 else 30 + i % 7),
        "column 'area' of data.csv holds '-Infinity' on line 7: numbers must be finite; "
        "make those fields empty (or NA), or list the column in drop_columns",
    ),
    "a numeric feature with a few stray strings": (
        {},
        houses(area=lambda i: ("?", "unknown")[i % 2] if i in (3, 8, 11) else 30 + i % 7),
        "column 'area' of data.csv holds numbers but also 'unknown' (2 rows), '?' (1 row) in 3 of 40 filled rows "
        "(the first on line 5): " + SPOILT_REMEDY,
    ),
    # --- column types: the whole file decides, by csv_rules' one rule; never a silent change of type ---
    "a marker pandas does not know in a quarter of a numeric column": (
        {},
        houses(area=lambda i: "?" if i % 4 == 0 else 30 + (i * 7) % 90),
        "column 'area' of data.csv holds numbers but also '?' (10 rows) in 10 of 40 filled rows (the first on "
        "line 2): " + SPOILT_REMEDY,
    ),
    "a marker pandas does not know in most of a numeric column": (
        {},
        houses(area=lambda i: "?" if i % 5 < 3 else 30 + i),
        "column 'area' of data.csv holds numbers but also '?' (24 rows) in 24 of 40 filled rows (the first on "
        "line 2): " + SPOILT_REMEDY,
    ),
    "thousands separators": (
        {},
        houses(area=lambda i: f"{1000 + 250 * (i % 4):,}.5" if i % 2 else 30 + i),
        "column 'area' of data.csv holds numbers written with separators, which pandas reads as text: '1,250.5' "
        "(10 rows), '1,750.5' (10 rows) in 20 of 40 filled rows (the first on line 3): write them with a decimal "
        "point and no thousands separator ('1,250.5' as 1250.5), list the column in drop_columns, or name it in "
        "feature_columns to keep it as a category",
    ),
    "decimal commas in half the rows": (
        {},
        houses(area=lambda i: f"{i},{(i * 37) % 1000:03d}" if i % 2 else 30 + i),
        "column 'area' of data.csv holds numbers written with separators, which pandas reads as text: '1,037' "
        "(1 row), '11,407' (1 row), '13,481' (1 row) … in 20 of 40 filled rows (the first on line 3): write them "
        "with a decimal point and no thousands separator ('1,037' as 1037 or 1.037), list the column in "
        "drop_columns, or name it in feature_columns to keep it as a category",
    ),
    "a target with text past the first 2,000 rows": (
        {},
        houses(2100, price=lambda i: "high" if i == 2050 else 1000 + i),
        "target_column='price' must be numeric, but data.csv holds 'high' on line 2052",
    ),
    "a target written with thousands separators": (
        {},
        houses(price=lambda i: f"{1000 + 13 * i:,}"),
        "target_column='price' must be numeric, but data.csv holds '1,000' on line 2: write them with a decimal "
        "point and no thousands separator ('1,000' as 1000 or 1.000)",
    ),
    "a numeric feature with an infinity past the first 2,000 rows": (
        {},
        houses(2100, area=lambda i: "inf" if i == 2050 else 30 + i % 7),
        "column 'area' of data.csv holds 'inf' on line 2052: numbers must be finite; make those fields empty (or "
        "NA), or list the column in drop_columns",
    ),
    "a numeric feature with a marker only past the first 2,000 rows": (
        {},
        houses(2100, area=lambda i: "?" if i >= 2050 else 30 + i % 7),
        "column 'area' of data.csv holds numbers but also '?' (50 rows) in 50 of 2100 filled rows (the first on "
        "line 2052): " + SPOILT_REMEDY,
    ),
    # --- accepted at the door, failing later: refused there instead ---
    "a constant target": (
        {},
        houses(price=lambda i: "NA" if i == 3 else 1000),
        "target_column='price' holds 1000 on every row of data.csv that has a value: there is nothing to predict",
    ),
    "a target whose squared errors overflow": (
        {},
        houses(price=lambda i: f"{1 + i % 7}e200"),
        "target_column='price' must hold numbers within ±1e+100, beyond which squared errors overflow, but "
        "data.csv holds '1e200' on line 2",
    ),
    "a NUL in a header name": (
        {},
        houses().replace("area", "ar\x00ea", 1),
        "data_path='{path}' is invalid: column 2 of the header, 'ar\\x00ea', holds the control character "
        "'\\x00': column names must be printable",
    ),
    "an escape sequence in a header name": (
        {},
        houses().replace("area", "area\x1b[2J", 1),
        "data_path='{path}' is invalid: column 2 of the header, 'area\\x1b[2J', holds the control character "
        "'\\x1b': column names must be printable",
    ),
    "a NUL in a field": (
        {},
        houses(area=lambda i: "4\x002" if i == 5 else 30 + i),
        "data_path='{path}' is invalid: line 7 holds a NUL character, where pandas cuts its field",
    ),
    "a feature column named twice": (
        {"feature_columns": "rooms, rooms"},
        houses(),
        "feature_columns='rooms, rooms' is invalid: it names 'rooms' twice",
    ),
    "a dropped column named twice": (
        {"drop_columns": "city,city"},
        houses(),
        "drop_columns='city,city' is invalid: it names 'city' twice",
    ),
    "a column both a feature and dropped": (
        {"feature_columns": "rooms, city", "drop_columns": "city"},
        houses(),
        "drop_columns='city' is invalid: 'city' is in feature_columns too; name each column in one list only",
    ),
    "a data file named with a single quote": (
        {"data_path": "/srv/data/it's.csv"},
        None,
        'data_path="/srv/data/it\'s.csv" is invalid: its file name "it\'s.csv" holds a single quote, which no '
        "quoting on a command line carries safely; rename the file",
    ),
    "a data file named with a newline": (
        {"data_path": "/srv/data/a\nb.csv"},
        None,
        "data_path='/srv/data/a\\nb.csv' is invalid: its file name 'a\\nb.csv' holds a control character, which "
        "Azure Storage refuses in a blob name; rename the file",
    ),
    "a header column without a name": (
        {},
        houses().replace("rooms,area", "rooms,", 1),
        "data_path='{path}' is invalid: column 2 of the header has no name",
    ),
    "a row longer than the header": (
        {},
        houses() + "1,2,Paris,3,4\n",
        "data_path='{path}' is invalid: line 42 has 5 fields, the header 4",
    ),
}


@pytest.mark.parametrize(("context", "content", "expected"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_in_one_line_before_anything_is_written(
    cookies: Cookies,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    context: dict[str, str],
    content: str | None,
    expected: str,
) -> None:
    data = {} if content is None else {"data_path": str(write_input(tmp_path, "data.csv", content))}
    result = bake(cookies, **{"target_column": "price"} if content else {}, **data, **context)
    assert_hook_failed(result, tmp_path)
    assert error_lines(capfd) == [expected.format(path=data.get("data_path"))]


# --- accepted, and typed as pandas types it ----------------------------------------------------------------------

MARKERS = ("NA", "N/A", "NULL", "nan", "", "#N/A", "None", "<NA>", "n/a", "null")


def test_missing_value_markers_leave_a_numeric_column_numeric(cookies: Cookies, tmp_path: Path) -> None:
    """R² fell from 0.986 to 0.034 when the hook one-hot encoded a numeric column that marked gaps with NA."""
    content = houses(
        200,
        area=lambda i: MARKERS[i % len(MARKERS)] if i % 9 == 0 else 30 + (i * 7) % 90,
        price=lambda i: "NA" if i % 50 == 7 else 1000 + 13 * i,
    )
    source = write_input(tmp_path, "data.csv", content)
    project = assert_rendered(bake(cookies, data_path=str(source), target_column="price"))
    features = load_yaml(project / "config.yml")["features"]
    frame = pd.read_csv(source)
    assert features == {"numeric": ["rooms", "area"], "categorical": ["city"]}
    assert [pd.api.types.is_numeric_dtype(frame[name]) for name in ("rooms", "area", "city")] == [True, True, False]


def test_a_column_of_codes_named_in_feature_columns_is_a_category(cookies: Cookies, tmp_path: Path) -> None:
    """Cars93's Cylinders: 3, 4, 5, 6, 8 and once "rotary"; refused when inferred, a category when named."""
    content = houses(cylinders=lambda i: "rotary" if i == 7 else (4, 6, 8)[i % 3])
    source = write_input(tmp_path, "data.csv", content)
    project = assert_rendered(
        bake(cookies, data_path=str(source), target_column="price", feature_columns="rooms, cylinders")
    )
    assert load_yaml(project / "config.yml")["features"] == {"numeric": ["rooms"], "categorical": ["cylinders"]}


def test_a_named_column_with_text_past_the_first_rows_is_a_category(cookies: Cookies, tmp_path: Path) -> None:
    """Numbers with one text field on line 2052, named in feature_columns: data_prep's pandas reads the whole file as
    text, and so does the hook."""
    content = houses(2100, area=lambda i: "unknown" if i == 2050 else 30 + i % 7)
    source = write_input(tmp_path, "data.csv", content)
    project = assert_rendered(bake(cookies, data_path=str(source), target_column="price", feature_columns="area, city"))
    assert load_yaml(project / "config.yml")["features"] == {"numeric": [], "categorical": ["area", "city"]}
    assert pd.read_csv(source)["area"].dtype == object


def test_a_column_empty_in_the_first_rows_is_typed_by_the_whole_file(cookies: Cookies, tmp_path: Path) -> None:
    """Typed from the first 2,000 rows, it was left out as empty: pandas reads numbers there."""
    source = write_input(tmp_path, "data.csv", houses(2100, area=lambda i: "" if i < 2050 else 30 + i % 7))
    project = assert_rendered(bake(cookies, data_path=str(source), target_column="price"))
    assert load_yaml(project / "config.yml")["features"] == {"numeric": ["rooms", "area"], "categorical": ["city"]}
    assert pd.api.types.is_float_dtype(pd.read_csv(source)["area"])


def test_lines_of_spaces_are_skipped_as_pandas_skips_them(cookies: Cookies, tmp_path: Path) -> None:
    """The hook read a line of spaces as a row with text in its first column, which pandas skips."""
    lines = houses(12).splitlines(keepends=True)
    blank = ["   \n", "\t\n", " \t \r\n", "\r\n", ",,,\n"]  # the last, delimiters only, is a row of gaps to both
    source = write_input(tmp_path, "data.csv", "".join(lines[:4] + blank + lines[4:]))
    project = assert_rendered(bake(cookies, data_path=str(source), target_column="price"))
    frame = pd.read_csv(source, keep_default_na=False, na_values=sorted(rules.NA_VALUES), index_col=False)
    assert len(frame) == 13
    assert load_yaml(project / "config.yml")["features"] == {"numeric": ["rooms", "area"], "categorical": ["city"]}
    assert [pd.api.types.is_numeric_dtype(frame[name]) for name in ("rooms", "area", "city")] == [True, True, False]


def test_every_column_the_render_leaves_out_is_named_with_why(
    cookies: Cookies, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Left out silently before, or only in a config.yml comment."""
    content = houses(**{"house id": lambda i: i + 1, "clinic": lambda i: "north", "notes": lambda i: ""})
    source = write_input(tmp_path, "data.csv", content)
    assert_rendered(bake(cookies, data_path=str(source), target_column="price", drop_columns="city"))
    out = capfd.readouterr().out
    assert out[out.index("Left out") :].splitlines()[:5] == [
        "Left out of the features (config.yml lists them too):",
        '  "city": in drop_columns',
        '  "house id": identifier (a distinct value on every row)',
        '  "clinic": constant',
        '  "notes": empty',
    ]


def test_column_names_from_the_header_render_as_data(cookies: Cookies, tmp_path: Path) -> None:
    """Whatever a header holds lands in config.yml as JSON strings; the run-time tests pass them to the steps."""
    names = HOSTILE_COLUMN_NAMES
    content = table([*names, "price"], rows(30, lambda i: [i % (2 + j) for j in range(len(names))] + [i]))
    source = write_input(tmp_path, "data.csv", content)
    project = assert_rendered(bake(cookies, data_path=str(source), target_column="price"))
    assert load_yaml(project / "config.yml")["features"] == {"numeric": list(HOSTILE_COLUMN_NAMES), "categorical": []}
    assert "\"x'; touch pwned; echo '\"" in (project / "config.yml").read_text()  # as typed, not \u0027
    assert '"ünï cödé ✓"' in (project / "config.yml").read_text()


# Typed free text (description, author) and what a TOML writer must escape: quotes, backslashes, controls.
FREE_TEXTS = [
    'Patients\' pressure: "diastolic" # mmHg',
    "C:\\data\\new.csv and a literal \\u0027",
    "ünïcödé — ✓ 血压",
    "tab\there, new\nline, bell\a, delete\x7f",
]


def template_filter(name: str) -> jinja2.Template:
    """``value: {{ value | <name> }}``, rendered with the template's own filter."""
    spec = importlib.util.spec_from_file_location("template_local_extensions", TEMPLATE / "local_extensions.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return jinja2.Environment(extensions=[getattr(module, name)]).from_string(f"value = {{{{ value | {name} }}}}")


@pytest.mark.parametrize("text", [*FREE_TEXTS, "line\x85breaks\u2028of\u2029yaml"], ids=repr)
@pytest.mark.parametrize(
    ("name", "load"),
    [("toml_string", tomllib.loads), ("yaml_string", lambda line: yaml.safe_load(line.replace(" =", ":", 1)))],
)
def test_the_filters_write_what_toml_and_yaml_read_back(name: str, load: Callable, text: str) -> None:
    line = template_filter(name).render(value=text)
    assert load(line) == {"value": text}
    assert len(line.splitlines()) == 1
    assert all(char in line for char in text if char.isprintable())  # apostrophes and letters stay as typed


def test_free_text_lands_in_pyproject_as_typed(cookies: Cookies) -> None:
    description, author = FREE_TEXTS[0] + " " + FREE_TEXTS[2], 'O\'Brien: "ML" #2 \\ Ünïcödé'
    project = assert_rendered(bake(cookies, description=description, author_name=author))
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert tomllib.loads(text)["project"]["description"] == description
    assert tomllib.loads(text)["project"]["authors"] == [{"name": author}]
    assert 'description = "Patients\' pressure: \\"diastolic\\" # mmHg ünïcödé — ✓ 血压"' in text.splitlines()
    assert 'authors = [{ name = "O\'Brien: \\"ML\\" #2 \\\\ Ünïcödé" }]' in text.splitlines()


# --- never destroy what exists -----------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by relative path, with the sha256 of its bytes."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# What the second render is given, from the paths of a good CSV and of one with a spoilt numeric column.
OVERWRITE_REFUSALS: dict[str, Callable[[Path, Path], dict[str, str]]] = {
    "a typed value": lambda good, mixed: {"__compute_name": "a"},
    "a text target": lambda good, mixed: {"target_column": "city"},
    "a numeric feature with strays": lambda good, mixed: {"data_path": str(mixed)},
}


@pytest.mark.parametrize("refusal", OVERWRITE_REFUSALS.values(), ids=OVERWRITE_REFUSALS.keys())
def test_a_refused_render_over_an_existing_project_changes_nothing(
    tmp_path: Path, refusal: Callable[[Path, Path], dict[str, str]]
) -> None:
    good = write_input(tmp_path, "houses.csv", houses())
    mixed = write_input(tmp_path, "mixed.csv", houses(area=lambda i: "?" if i == 3 else i))
    values = {"data_path": str(good), "target_column": "price"}
    output = tmp_path / "out"
    project = bake_into(values, output)
    # The owner's work since the render: an edit, a deletion, a new file.
    (project / "config.yml").write_text((project / "config.yml").read_text() + "# tuned by hand\n")
    (project / "README.md").unlink()
    (project / "notes.txt").write_text("mine\n")
    before = snapshot(project)

    refused = {**values, **refusal(good, mixed)}
    with pytest.raises(FailedHookException):
        bake_into(refused, output, overwrite_if_exists=True)

    assert snapshot(project) == before


OWNERS_FILES = {".github/CODEOWNERS": "* @data-science\n", ".github/workflows/nightly.yml": "on: schedule\n"}
DEPENDABOT = ".github/dependabot.yml"

# ci of the first render, ci of the render over it (-f), more options of that one, whether the owner edited
# dependabot.yml in between -> the CI files left besides the owner's own, and what the hook says about them
CI_SWITCHES: dict[str, tuple[str, str, dict[str, bool], bool, list[str], list[str]]] = {
    "github to none": ("github", "none", {}, False, [], []),
    "github to azure-devops": ("github", "azure-devops", {}, False, ["azure-pipelines.yml"], []),
    "github to none, an edited dependabot.yml kept by -s": (
        "github",
        "none",
        {"skip_if_file_exists": True},
        True,
        [DEPENDABOT],
        [
            f"kept {DEPENDABOT}: ci=none does not use it, but it is not what the template renders (edited?); "
            "delete it if you no longer need it"
        ],
    ),
}


@pytest.mark.parametrize(
    ("first", "second", "options", "edited", "left", "said"), CI_SWITCHES.values(), ids=CI_SWITCHES.keys()
)
def test_a_ci_switch_over_a_project_removes_only_what_the_template_wrote(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    first: str,
    second: str,
    options: dict[str, bool],
    edited: bool,
    left: list[str],
    said: list[str],
) -> None:
    """The owner's own workflow and CODEOWNERS once went with the whole .github/ folder."""
    values = {"data_path": str(write_input(tmp_path, "houses.csv", houses())), "target_column": "price"}
    output = tmp_path / "out"
    project = bake_into({**values, "ci": first}, output)
    for relative, text in OWNERS_FILES.items():
        (project / relative).write_text(text)
    if edited:
        (project / DEPENDABOT).write_text((project / DEPENDABOT).read_text() + "# weekly is too often for us\n")
    before = snapshot(project)
    capfd.readouterr()

    bake_into({**values, "ci": second}, output, overwrite_if_exists=True, **options)

    after = snapshot(project)
    ci_files = {path for path in after if path.startswith(".github/") or path == "azure-pipelines.yml"}
    assert ci_files == {*OWNERS_FILES, *left}
    untouched = [path for path in [*OWNERS_FILES, *left] if path in before]  # the owner's, and the edited one
    assert {path: after[path] for path in untouched} == {path: before[path] for path in untouched}
    assert [line for line in capfd.readouterr().out.splitlines() if line.startswith("kept ")] == said


# --- the hooks find the rules wherever cookiecutter is started ---------------------------------------------------


def test_a_render_from_a_relative_template_path_finds_the_shared_rules(tmp_path: Path) -> None:
    """``cookiecutter .`` in the template: _repo_dir is relative, the hooks run in the new project's folder."""
    config = tmp_path / "cookiecutterrc"  # cookiecutter's replay file goes here, not into ~/.cookiecutter_replay
    config.write_text(f"replay_dir: {tmp_path / 'replay'}\n")
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", ".", "--output-dir", str(tmp_path / "out")],
        cwd=TEMPLATE,
        env={**os.environ, "PWD": str(TEMPLATE), "COOKIECUTTER_CONFIG": str(config)},  # PWD: as a shell sets it
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((tmp_path / "out" / "diabetes-blood-pressure" / "config.yml").read_text())
    assert config["features"]["categorical"] == ["Diabetic"]
