"""How the training CSV reads: which fields are missing, which are numbers, what each column is.

pandas decides this when data_prep reads the CSV; the template's hooks must decide it the same way
when the project is rendered, where pandas may not be installed. So both follow the rules written
here, in the standard library only: the hooks import the template's copy of this file, data_prep
its own (it is copied into the project unrendered, byte for byte).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# pandas' default missing-value markers (pandas._libs.parsers.STR_NA_VALUES), matched against the whole
# field as it stands in the file: " NA" is text. data_prep passes exactly these to pandas.read_csv.
NA_VALUES = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)
MIN_ROWS = 10  # rows with a target value needed to train and test at all
MIN_SPLIT_ROWS = 2  # rows in the test split and in a validation split: R² needs two
MOSTLY_NUMBERS = 0.9  # a column with at least this share of numbers and some text is a data problem

_SPACE = " \t\n\r\x0b\x0c"  # what pandas' number parser skips around a number
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INFINITY = re.compile(r"[+-]?inf(?:inity)?", re.IGNORECASE)
_INTEGER_RANGE = (-(2**63), 2**64 - 1)  # int64 to uint64: a longer whole number makes the column text


def is_missing(text: str) -> bool:
    return text in NA_VALUES


def number(text: str) -> float | None:
    """The number pandas reads from a CSV field (infinities included), or None if pandas reads it as text.

    Python's ``float()`` is more lenient than pandas: it takes ``1_000``, non-ASCII digits and ``nan``.
    """
    stripped = text.strip(_SPACE)
    if _INFINITY.fullmatch(stripped):
        return float(stripped)
    if not _DECIMAL.fullmatch(stripped):
        return None
    if _INTEGER.fullmatch(stripped):
        whole = int(stripped)
        return float(whole) if _INTEGER_RANGE[0] <= whole <= _INTEGER_RANGE[1] else None
    value = float(stripped)
    return value if math.isfinite(value) else None  # 1e999 overflows: pandas keeps it as text


def is_number(text: str) -> bool:
    return number(text) is not None


@dataclass(frozen=True)
class ColumnType:
    """What a column's filled fields make of it.

    ``kind`` is numeric (every field a number), categorical (text), mixed (mostly numbers, some text:
    a data problem to fix, not a category), or empty (nothing filled). ``text`` and ``infinite`` hold
    examples, most frequent first.
    """

    kind: str
    filled: int
    numbers: int
    text: list[str] = field(default_factory=list)
    infinite: list[str] = field(default_factory=list)

    def describe_text(self, limit: int = 3) -> str:
        """The text fields of a mixed column, for a message: ``'?' (2 rows), 'unknown' (1 row) of 250``."""
        return f"{', '.join(map(repr, self.text[:limit]))}{' …' if len(self.text) > limit else ''}"


def column_type(counts: Mapping[str, int]) -> ColumnType:
    """The type of a column from its filled (non-missing) fields, each with how often it occurs."""
    filled = numbers = 0
    text: list[tuple[int, str]] = []
    infinite: list[tuple[int, str]] = []
    for value, count in counts.items():
        filled += count
        parsed = number(value)
        if parsed is None:
            text.append((count, value))
            continue
        numbers += count
        if math.isinf(parsed):
            infinite.append((count, value))
    if not filled:
        kind = "empty"
    elif numbers == filled:
        kind = "numeric"
    elif numbers >= MOSTLY_NUMBERS * filled:
        kind = "mixed"
    else:
        kind = "categorical"
    return ColumnType(kind, filled, numbers, by_frequency(text), by_frequency(infinite))


def by_frequency(counted: list[tuple[int, str]]) -> list[str]:
    return [value for _, value in sorted(counted, key=lambda pair: -pair[0])]


def unusable(distinct: int, rows: int, numeric: bool, ascending_whole_numbers: bool) -> str | None:
    """Why a feature would only teach the model noise: one value throughout, or a row identifier
    (distinct text on every row, or distinct whole numbers rising row by row)."""
    if distinct <= 1:
        return "constant"
    if distinct == rows and (not numeric or ascending_whole_numbers):
        return "identifier (a distinct value on every row)"
    return None


def split_rows(rows: int, fraction: float) -> tuple[int, int]:
    """The rows left and the rows set aside when ``fraction`` of ``rows`` is sampled, as pandas'
    ``DataFrame.sample(frac=...)`` counts them (Python's round: half to even)."""
    aside = round(fraction * rows)
    return rows - aside, aside


def split_problem(rows: int, test_size: float, validation_size: float) -> str | None:
    """Why these fractions leave a split too small to train or score on, or None."""
    train, test = split_rows(rows, test_size)
    if test < MIN_SPLIT_ROWS:
        return f"leaves {test} of {rows} rows for the test split, at least {MIN_SPLIT_ROWS} are needed"
    if not validation_size:
        return None if train >= 1 else f"leaves no train rows of {rows}"
    train, validation = split_rows(train, validation_size)
    if validation < MIN_SPLIT_ROWS:
        return f"leaves {validation} of {rows} rows for the validation split, at least {MIN_SPLIT_ROWS} are needed"
    return None if train >= 1 else f"leaves no train rows of {rows} once validation rows are set aside"
