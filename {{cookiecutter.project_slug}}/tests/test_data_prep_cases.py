"""data_prep against hostile and careless data: each case is refused in one line naming the column, the value and
the rule, or prepared with the types pandas reads, which are the types the template wrote into config.yml."""

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from conftest import load_script

from aml_pipeline_kit.project import Project

from {{ cookiecutter.__package_name }}.parameters import encoded
{%- raw %}

prep = load_script("data_prep", "prep")


def table(header: list[str], rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    return buffer.getvalue()


def houses(count: int = 40, **columns: Callable[[int], object]) -> str:
    """A small CSV of ``count`` houses; ``columns`` replace or add columns, by the row's index."""
    makers: dict[str, Callable[[int], object]] = {
        "rooms": lambda i: 1 + i % 5,
        "area": lambda i: 30 + (i * 7) % 90,
        "city": lambda i: ("Paris", "Lyon", "Nice")[i % 3],
        "price": lambda i: 1000 + 13 * i,
        **columns,
    }
    return table(list(makers), [[make(i) for make in makers.values()] for i in range(count)])


MARKERS = ("NA", "N/A", "NULL", "nan", "", "#N/A", "None", "<NA>", "n/a", "null")
SPOILT_AREA = houses(area=lambda i: ("?", "unknown")[i % 2] if i in (3, 8, 11) else 30 + i % 7)
SPOILT_MESSAGE = (
    "numbers but also 'unknown' (2 rows), '?' (1 row) in 3 of 40 filled rows: make those fields empty (or NA) if "
    "they mean missing"
)
THOUSANDS = houses(area=lambda i: f"{1000 + 250 * (i % 4):,}.5" if i % 2 else 30 + i)
THOUSANDS_MESSAGE = (
    "numbers written with separators, which pandas reads as text: '1,250.5' (10 rows), '1,750.5' (10 rows) in 20 "
    "of 40 filled rows: write them with a decimal point and no thousands separator ('1,250.5' as 1250.5)"
)

# (CSV text, prepare() keyword arguments) -> the DataError message (a fragment of its one line)
REFUSED = {
    "a numeric column spoilt by a few strings": (
        SPOILT_AREA,
        {},
        "feature column 'area' holds " + SPOILT_MESSAGE,
    ),
    "config.yml's numeric column, now spoilt": (
        SPOILT_AREA,
        {"numeric": ["rooms", "area"], "categorical": ["city"]},
        "feature column 'area' is listed as numeric in config.yml but holds " + SPOILT_MESSAGE,
    ),
    "config.yml's numeric column, now text": (
        houses(area=lambda i: "big"),
        {"numeric": ["area"]},
        "feature column 'area' is listed as numeric in config.yml but holds text: 'big' (40 rows) in 40 of 40 "
        "filled rows",
    ),
    # --- one rule for column types, never a silent change of type ---
    "a marker pandas does not know in a quarter of a numeric column": (
        houses(area=lambda i: "?" if i % 4 == 0 else 30 + (i * 7) % 90),
        {},
        "feature column 'area' holds numbers but also '?' (10 rows) in 10 of 40 filled rows: make those fields "
        "empty (or NA) if they mean missing",
    ),
    "thousands separators": (THOUSANDS, {}, "feature column 'area' holds " + THOUSANDS_MESSAGE),
    "config.yml's numeric column, now with thousands separators": (
        THOUSANDS,
        {"numeric": ["rooms", "area"], "categorical": ["city"]},
        "feature column 'area' is listed as numeric in config.yml but holds " + THOUSANDS_MESSAGE,
    ),
    "decimal commas in half the rows": (
        houses(area=lambda i: f"{i},{(i * 37) % 1000:03d}" if i % 2 else 30 + i),
        {},
        "feature column 'area' holds numbers written with separators, which pandas reads as text: '1,037' (1 row), "
        "'11,407' (1 row), '13,481' (1 row) … in 20 of 40 filled rows: write them with a decimal point and no "
        "thousands separator ('1,037' as 1037 or 1.037)",
    ),
    # --- targets a model cannot be scored on ---
    "a constant target": (
        houses(price=lambda i: "NA" if i == 3 else 1000),
        {"numeric": ["rooms", "area"]},
        "target column 'price' holds 1000 on every row that has a value: there is nothing to predict",
    ),
    "a target whose squared errors overflow": (
        houses(price=lambda i: f"{1 + i % 7}e200"),
        {"numeric": ["rooms", "area"]},
        "target column 'price' must hold numbers within ±1e+100, beyond which squared errors overflow, but holds "
        "7e+200",
    ),
    "an infinite target": (
        houses(price=lambda i: "inf" if i == 4 else 1000 + i),
        {},
        "target column 'price' holds 1 infinite values: numbers must be finite",
    ),
    "an infinite feature": (
        houses(area=lambda i: "-Infinity" if i in (1, 2) else 30 + i),
        {"numeric": ["area"]},
        "feature column 'area' holds 2 infinite values: numbers must be finite",
    ),
    "a target with stray text": (
        houses(price=lambda i: "n.a." if i == 3 else 1000 + i),
        {},
        "target column 'price' must be numeric, but holds numbers but also 'n.a.' (1 row) in 1 of 40 filled rows: "
        "make those fields empty (or NA) if they mean missing",
    ),
    "a test split of one row": (houses(12), {"test_size": 0.05}, "--test-size 0.05 leaves 1 of 12 rows for the test"),
    "a train split of no row": (houses(12), {"test_size": 0.99}, "--test-size 0.99 leaves no train rows of 12"),
    "a train split too small for its folds": (
        houses(12),
        {"test_size": 0.6, "cv_folds": 3},
        "--test-size 0.6 with --cv-folds 3 leaves 5 of 12 rows for the train split, too few for 3-fold "
        "cross-validation: at least 6 are needed, 2 held out by each fold",
    ),
    "a row longer than the header": (houses() + "1,2,Paris,3,4\n", {}, "Expected 4 fields in line 42, saw 5"),
    "every row longer than the header": (
        "rooms,area,price\n" + "".join(f"{i},{i % 3},{i * 2},7\n" for i in range(20)),
        {},
        "some rows have more fields than the header",
    ),
}


@pytest.mark.parametrize(("content", "options", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_in_one_line(tmp_path: Path, content: str, options: dict, message: str) -> None:
    source = tmp_path / "data.csv"
    source.write_text(content)
    options = {"test_size": 0.2, **options}
    with pytest.raises(prep.DataError) as refused:
        prep.prepare(source, "price", options.pop("test_size"), 1, tmp_path / "out", **options)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "out").exists()


def test_missing_value_markers_are_missing_and_numbers_stay_numbers(tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    source.write_text(
        houses(
            200,
            area=lambda i: MARKERS[i % len(MARKERS)] if i % 9 == 0 else 30 + (i * 7) % 90,
            price=lambda i: MARKERS[i % len(MARKERS)] if i % 50 == 7 else 1000 + 13 * i,
        )
    )
    features = prep.prepare(source, "price", 0.2, 1, tmp_path / "out")
    assert (features["numeric"], features["categorical"]) == (["rooms", "area"], ["city"])
    train = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert pd.api.types.is_float_dtype(train["area"])
    assert train["area"].isna().sum() > 0
    assert len(train) + len(pd.read_parquet(tmp_path / "out" / "test.parquet")) == 196  # 4 rows had no price


def test_rows_ending_with_a_delimiter_keep_their_columns(tmp_path: Path) -> None:
    """pandas' default reads such a file with the first column as the index, every other column shifted left."""
    source = tmp_path / "data.csv"
    source.write_text("rooms,city,price\n" + "".join(f"{1 + i % 4},{'ab'[i % 2]},{100 + i},\n" for i in range(20)))
    features = prep.prepare(source, "price", 0.2, 1, tmp_path / "out")
    assert (features["numeric"], features["categorical"]) == (["rooms"], ["city"])
    test = pd.read_parquet(tmp_path / "out" / "test.parquet")
    assert set(test["price"]) <= set(range(100, 120))


HOSTILE_NAMES = [
    "x'; touch pwned; echo '",
    "${{outputs.prepped_data}}",
    "--help",
    "--input-data",
    "-x",
    "a,b",
    "ünï cödé",
]


def test_columns_named_like_anything_travel_encoded(tmp_path: Path) -> None:
    """Names from a CSV header reach the script whole, through its command line, whatever they hold."""
    source = tmp_path / "data.csv"
    source.write_text(table([*HOSTILE_NAMES, "price"], [[i % (2 + j) for j in range(7)] + [i] for i in range(30)]))
    argv = [
        *("--input-data", str(source), "--target-column", encoded("price")),
        *("--numeric-columns", encoded(HOSTILE_NAMES), "--categorical-columns", encoded([])),
        *("--prepped-data", str(tmp_path / "out")),
    ]
    assert prep.main(argv) == 0
    assert json.loads((tmp_path / "out" / "features.json").read_text())["numeric"] == HOSTILE_NAMES
    assert list(pd.read_parquet(tmp_path / "out" / "train.parquet").columns) == [*HOSTILE_NAMES, "price"]


# argv after --input-data/--prepped-data -> the one line argparse prints after its usage line
BAD_ARGUMENTS = {
    "a seed numpy cannot take": (
        ["--random-seed", str(2**32)],
        "argument --random-seed: 4294967296 is outside the allowed 0 to 4294967295",
    ),
    "a negative seed": (["--random-seed", "-1"], "argument --random-seed: -1 is outside the allowed 0 to 4294967295"),
    "a test size outside the spec": (["--test-size", "0.999"], "argument --test-size: 0.999 is outside the allowed"),
    "a test size that is not a number": (["--test-size", "nan"], "argument --test-size: nan is outside the allowed"),
    "a single fold": (["--cv-folds", "1"], "argument --cv-folds: 1 is outside the allowed 2 or more"),
    "a column name sent as plain text": (
        ["--target-column", "price;id"],
        "argument --target-column: 'price;id' is not a column name as base64-encoded JSON",
    ),
    "a column list that is not a list": (
        ["--numeric-columns", encoded("area")],
        "argument --numeric-columns: 'ImFyZWEi' is not a list of column names as base64-encoded JSON",
    ),
}


@pytest.mark.parametrize(("arguments", "message"), BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_the_argument_parser_refuses_values_outside_the_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    argv = ["--input-data", "x.csv", "--prepped-data", str(tmp_path), "--target-column", encoded("price")]
    with pytest.raises(SystemExit) as exited:
        prep.main([*argv, *arguments])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


def test_config_yml_types_the_columns_as_pandas_reads_them(project: Project) -> None:
    """One rule: the template typed the columns with csv_rules; data_prep reads them with pandas and csv_rules'
    missing-value markers. Every numeric feature pandas reads as numbers, every categorical one as anything else."""
    frame = prep.read_csv(project.local_data_path)
    assert [name for name in project.setting("features", "numeric") if not prep.is_numeric(frame[name])] == []
    assert [name for name in project.setting("features", "categorical") if prep.is_numeric(frame[name])] == []


{%- endraw %}
