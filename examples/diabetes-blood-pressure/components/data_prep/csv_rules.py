"""How the training CSV reads: which lines are rows, which fields are missing, which are numbers, what each
column is.

pandas decides this when data_prep reads the CSV; the template's hooks must decide it the same way
when the project is rendered, where pandas may not be installed. So both follow the rules written
here, in the standard library only: the hooks import the template's copy of this file, data_prep
its own (it is copied into the project unrendered, byte for byte).

The one rule for a column's type (``column_type``), applied to every filled field of the column, the whole
file's: a column whose fields are all numbers pandas reads is numeric; one without any is categorical. A
column of both is never silently turned into a category when it is a column of numbers gone wrong:

- numbers written with thousands separators or a decimal comma (``1,038.9``, ``7,202``, ``1.038,9``), which
  pandas reads as text, make the column *formatted* when, read as numbers, they leave it numeric or mixed;
- a column is *mixed*, numbers spoilt by text, when at least ``MOSTLY_NUMBERS`` (90%) of its fields are
  numbers, whatever the rest, or when its text is at most ``MARKER_VALUES`` (3) distinct values, fewer than
  its distinct numbers, at any share: a marker pandas does not know, such as the UCI convention ``?`` for a
  gap, in 5%, 30% or 60% of the rows;
- anything else is categorical: the numbers are codes among words (``A``, ``B``, ``12``; ICD codes
  ``250``, ``V45``, ``E11``), or the text is as varied as the numbers (``yes``, ``no``, ``1``, ``2``).

Formatted and mixed columns are refused by name, with their most frequent offending values, unless the user
names them as features (then they are categories on purpose: cylinders 4, 6, 8 and once ``rotary``).
Written numbers are not re-read with pandas' ``thousands``/``decimal`` options: an option holds for every
column of the file, where ``7,202`` may mean 7202 or 7.202 and ``thousands=","`` reads ``1,2`` as 12, and it
would have to travel to every other reader of the project's rows (score, monitor, the endpoint's callers),
each one a chance to read the numbers as text again. The refusal says how to write them instead.

Lines: pandas skips an empty line or one of spaces and tabs only (``skipped_line``); a line of delimiters
only is a row of gaps.
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
MIN_SPLIT_ROWS = 2  # rows in the test split and held out by each cross-validation fold: R² needs two
MOSTLY_NUMBERS = 0.9  # a column with at least this share of numbers and some text is a data problem
MARKER_VALUES = 3  # at most this many distinct text values, fewer than the numbers': markers for gaps
# Targets beyond ±1e100 are refused: squared errors of up to (2e100)² = 4e200, summed over any number of rows a
# file can hold, stay below float64's 1.8e308, so RMSE and R² stay finite (1e200's squares overflow to inf).
TARGET_LIMIT = 1e100

_SPACE = " \t\n\r\x0b\x0c"  # what pandas' number parser skips around a number
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INFINITY = re.compile(r"[+-]?inf(?:inity)?", re.IGNORECASE)
_INTEGER_RANGE = (-(2**63), 2**64 - 1)  # int64 to uint64: a longer whole number makes the column text
_PANDAS_BLANK = " \t"  # what pandas' tokenizer skips as a blank line (a form feed or a no-break space is a field)
# Numbers written for people, as (pattern, decimal mark): digits grouped by threes with one separator throughout
# and a decimal point (1,038.9  1 038  1'038.5), or a decimal comma, perhaps after grouped digits (7,202  1.038,9).
_GROUPED = r"[0-9]{1,3}(?:(?P<group>[%s])[0-9]{3})(?:(?P=group)[0-9]{3})*"
_SEPARATORS = "' \u00a0\u202f"  # and either the comma or the point, whichever is not the decimal mark
_WRITTEN = (
    (re.compile(r"[+-]?" + _GROUPED % ("," + _SEPARATORS) + r"(?:\.[0-9]*)?"), "."),
    (re.compile(r"[+-]?(?:" + _GROUPED % ("." + _SEPARATORS) + r"|[0-9]*),[0-9]+"), ","),
)


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


def skipped_line(line: str) -> bool:
    """Whether pandas skips this line of the file (its line break included): empty, or spaces and tabs only."""
    return not line.rstrip("\r\n").strip(_PANDAS_BLANK)


def readings(text: str) -> list[str]:
    """The numbers a field pandas reads as text was written to mean, in pandas' own notation: ``1,038.9`` is
    1038.9, ``7,202`` is 7202 or 7.202; none for text that is no number with separators (``1,2,3``)."""
    stripped = text.strip(_SPACE)
    found = []
    for pattern, decimal in _WRITTEN:
        if match := pattern.fullmatch(stripped):
            group = match["group"]
            reading = (stripped.replace(group, "") if group else stripped).replace(decimal, ".")
            if is_number(reading) and reading not in found:
                found.append(reading)
    return found


@dataclass(frozen=True)
class ColumnType:
    """What a column's filled fields make of it, by the rule of this module's docstring.

    ``kind`` is numeric, categorical, mixed (numbers spoilt by text), formatted (numbers written with
    separators) or empty (nothing filled). ``text`` holds the fields pandas reads as text, ``written`` those of
    them that are written numbers, ``infinite`` the infinite numbers: each value with its count, most frequent
    first.
    """

    kind: str
    filled: int
    numbers: int
    text: list[tuple[str, int]] = field(default_factory=list)
    written: list[tuple[str, int]] = field(default_factory=list)
    infinite: list[tuple[str, int]] = field(default_factory=list)

    def describe(self) -> str:
        """What is wrong with the column, for a message: ``numbers but also '?' (3 rows) in 3 of 40 filled rows``."""
        if self.kind == "formatted":
            written = sum(count for _, count in self.written)
            return (
                "numbers written with separators, which pandas reads as text: "
                f"{most_frequent(self.written)} in {written} of {self.filled} filled rows"
            )
        text = sum(count for _, count in self.text)
        what = "numbers but also" if self.numbers else "text:"
        return f"{what} {most_frequent(self.text)} in {text} of {self.filled} filled rows"

    def remedy(self) -> str:
        """How to change the fields ``describe`` names so that pandas reads the column as numbers."""
        if self.kind != "formatted":
            return "make those fields empty (or NA) if they mean missing"
        example = self.written[0][0]
        return (
            "write them with a decimal point and no thousands separator "
            f"({example!r} as {' or '.join(readings(example))})"
        )


def most_frequent(counted: list[tuple[str, int]], limit: int = 3) -> str:
    """``'?' (2 rows), 'unknown' (1 row)``, and `` …`` when there are more than ``limit``."""
    shown = ", ".join(f"{value!r} ({count} row{'s' if count > 1 else ''})" for value, count in counted[:limit])
    return shown + (" …" if len(counted) > limit else "")


def column_type(counts: Mapping[str, int]) -> ColumnType:
    """The type of a column from its filled (non-missing) fields, each with how often it occurs."""
    numbers = 0
    distinct: set[float] = set()
    text: dict[str, int] = {}
    infinite: dict[str, int] = {}
    for value, count in counts.items():
        parsed = number(value)
        if parsed is None:
            text[value] = count
            continue
        numbers += count
        distinct.add(parsed)
        if math.isinf(parsed):
            infinite[value] = count
    return column_type_from_counts(numbers, len(distinct), text, infinite)


def column_type_from_counts(
    numbers: int, distinct_numbers: int, text: Mapping[str, int], infinite: Mapping[str, int]
) -> ColumnType:
    """The type of a column with ``numbers`` fields pandas reads as numbers, of ``distinct_numbers`` values
    (counted exactly up to ``MARKER_VALUES + 1``: the rule asks no more), the ``text`` fields and, among the
    numbers, the ``infinite`` ones, each with its count."""
    texts = sum(text.values())
    filled = numbers + texts
    written = {value: count for value, count in text.items() if readings(value)}
    # Read as the numbers they were written to be: if that makes a column of numbers, pandas' reading is the problem.
    as_written = numbers + sum(written.values())
    distinct_as_written = distinct_numbers + len(written)
    unwritten = {value: count for value, count in text.items() if value not in written}
    if not filled:
        kind = "empty"
    elif not texts:
        kind = "numeric"
    elif written and (not unwritten or spoilt_numbers(as_written, distinct_as_written, unwritten)):
        kind = "formatted"
    elif spoilt_numbers(numbers, distinct_numbers, text):
        kind = "mixed"
    else:
        kind = "categorical"
    return ColumnType(kind, filled, numbers, by_frequency(text), by_frequency(written), by_frequency(infinite))


def spoilt_numbers(numbers: int, distinct_numbers: int, text: Mapping[str, int]) -> bool:
    """Whether a column of ``numbers`` and ``text`` fields is numbers spoilt by text (the module's rule)."""
    if not numbers:
        return False
    if numbers >= MOSTLY_NUMBERS * (numbers + sum(text.values())):
        return True
    return len(text) <= MARKER_VALUES and len(text) < distinct_numbers


def by_frequency(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Most frequent first; a tie in the order of the values, so that every reader lists the same."""
    return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))


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


def split_problem(rows: int, test_size: float) -> str | None:
    """Why ``test_size`` leaves a split too small to train or score on, or None."""
    train, test = split_rows(rows, test_size)
    if test < MIN_SPLIT_ROWS:
        return f"leaves {test} of {rows} rows for the test split, at least {MIN_SPLIT_ROWS} are needed"
    return None if train >= 1 else f"leaves no train rows of {rows}"


def folds_problem(rows: int, test_size: float, cv_folds: int) -> str | None:
    """Why the train split ``test_size`` leaves is too small for ``cv_folds``-fold cross-validation (scikit-learn's
    KFold holds out at least rows // folds rows in each fold), or None."""
    train, _ = split_rows(rows, test_size)
    if train >= MIN_SPLIT_ROWS * cv_folds:
        return None
    return (
        f"leaves {train} of {rows} rows for the train split, too few for {cv_folds}-fold cross-validation: "
        f"at least {MIN_SPLIT_ROWS * cv_folds} are needed, {MIN_SPLIT_ROWS} held out by each fold"
    )
