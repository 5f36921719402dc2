"""Tests of the template's hooks, by baking the template with pytest-cookies.

pre_gen_project rejects bad values before a file is written; post_gen_project checks
the training CSV and brings it into the project. A failed hook prints one
``ERROR: <variable>=<value> ... <rule>`` line per problem to stderr, and cookiecutter
removes the half-rendered project.
"""

from __future__ import annotations

import csv
import tomllib
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import assert_known
from cookiecutter.exceptions import FailedHookException
from pytest_cookies.plugin import Cookies, Result

TEMPLATE = Path(__file__).resolve().parents[1]

# A failing test's traceback repr()s its Result arguments, and Result.__repr__ uses the deprecated .project.
pytestmark = pytest.mark.filterwarnings("ignore:project is deprecated:DeprecationWarning")

SLUG_RULE = "at most 40 lowercase letters and digits separated by single hyphens, starting with a letter"
PACKAGE_RULE = "a Python identifier of at most 40 lowercase letters, digits and underscores, starting with a letter"
COMPUTE_RULE = "2-16 letters, digits or hyphens, starting with a letter and not ending with a hyphen"
ASSET_RULE = "1-255 letters, digits, underscores or hyphens, starting with a letter or digit"
GUID_RULE = "empty or a subscription GUID"
FRACTION_RULE = "a number from 0.01 to 0.99"
GUID = "12345678-9abc-def0-1234-56789abcdef0"

# Names derived from project_slug, pinned so that a bad slug reports only itself.
PINNED_NAMES = {
    "__package_name": "my_pkg",
    "__experiment_name": "exp",
    "__registered_model_name": "exp-model",
    "__data_asset_name": "exp-data",
    "__environment_name": "exp-env",
}

GOOD_CSV = (
    "house id,rooms,area,city,price\n1,3,,Paris,250000\n2,,54.5,,180000\n3,4,90,Lyon,\n4,2,41,Nice,99000.5\n"
    + "".join(f"{5 + i},{1 + i % 4},{40 + 9 * i},{('Paris', 'Lyon')[i % 2]},{150000 + 1000 * i}\n" for i in range(10))
)


def invalid(name: str, value: str, rule: str) -> str:
    return f"{name}={value!r} is invalid: must be {rule}"


def whole_number(name: str, value: str, minimum: int) -> str:
    return invalid(name, value, f"a whole number >= {minimum}")


def seed(value: str) -> str:
    return invalid("__random_seed", value, "a whole number from 0 to 4294967295")


def bake(cookies: Cookies, **context: str) -> Result:
    assert_known(context)
    return cookies.bake(extra_context=context, template=str(TEMPLATE))


def error_lines(capfd: pytest.CaptureFixture[str]) -> list[str]:
    """The hook's ERROR lines on stderr, without the prefix."""
    return [line.removeprefix("ERROR: ") for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR: ")]


def rendered_leftovers(tmp_path: Path) -> list[Path]:
    """Whatever is left in pytest-cookies' output dirs (tmpdir/cookies/bakeNN/), i.e. any rendered project."""
    return sorted((tmp_path / "cookies").glob("*/*"))


def assert_hook_failed(result: Result, tmp_path: Path) -> None:
    assert result.exit_code != 0
    assert isinstance(result.exception, FailedHookException), repr(result.exception)
    assert rendered_leftovers(tmp_path) == []


def assert_rendered(result: Result) -> Path:
    assert result.exit_code == 0, repr(result.exception)
    assert result.exception is None
    assert result.project_path.is_dir()
    return result.project_path


def write_input(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / "input" / name
    path.parent.mkdir(exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def lookup(data: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        data = data[key]
    return data


# --- pre_gen_project -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        pytest.param(
            {"project_slug": "Bad Slug!", **PINNED_NAMES}, invalid("project_slug", "Bad Slug!", SLUG_RULE), id="slug"
        ),
        pytest.param({"__package_name": "9pkg"}, invalid("__package_name", "9pkg", PACKAGE_RULE), id="package-digit"),
        pytest.param(
            {"__package_name": "my-pkg"}, invalid("__package_name", "my-pkg", PACKAGE_RULE), id="package-hyphen"
        ),
        pytest.param({"__compute_name": "a"}, invalid("__compute_name", "a", COMPUTE_RULE), id="compute-short"),
        pytest.param(
            {"__compute_name": "c" * 17}, invalid("__compute_name", "c" * 17, COMPUTE_RULE), id="compute-long"
        ),
        pytest.param({"__compute_name": "1cpu"}, invalid("__compute_name", "1cpu", COMPUTE_RULE), id="compute-digit"),
        pytest.param(
            {"__compute_name": "cpu_cluster"},
            invalid("__compute_name", "cpu_cluster", COMPUTE_RULE),
            id="compute-underscore",
        ),
        pytest.param(
            {"__compute_name": "cpu-"}, invalid("__compute_name", "cpu-", COMPUTE_RULE), id="compute-hyphen-end"
        ),
        pytest.param(
            {"__compute_min_instances": "5", "__compute_max_instances": "2"},
            "__compute_min_instances='5' is invalid: must not exceed __compute_max_instances='2'",
            id="min-above-max",
        ),
        pytest.param(
            {"__compute_idle_seconds": "-1"}, whole_number("__compute_idle_seconds", "-1", 0), id="idle-negative"
        ),
        pytest.param(
            {"__compute_idle_seconds": "soon"}, whole_number("__compute_idle_seconds", "soon", 0), id="idle-text"
        ),
        *(
            pytest.param({"__test_size": value}, invalid("__test_size", value, FRACTION_RULE), id=f"test-size-{value}")
            for value in ("0", "1", "1.5", "abc")
        ),
        pytest.param({"__random_seed": "x"}, seed("x"), id="seed-text"),
        pytest.param(
            {"__compute_tier": "spot"},
            "__compute_tier='spot' is invalid: must be one of dedicated, low_priority",
            id="compute-tier-private",
        ),
        pytest.param(
            {"__azure_subscription_id": "not-a-guid"},
            invalid("__azure_subscription_id", "not-a-guid", GUID_RULE),
            id="subscription",
        ),
        pytest.param(
            {"__data_asset_name": "my data"}, invalid("__data_asset_name", "my data", ASSET_RULE), id="asset-space"
        ),
        # a trailing newline (from a replay or a config file) must not slip past an anchored pattern
        pytest.param(
            {"__compute_name": "cpu-cluster\n"}, invalid("__compute_name", "cpu-cluster\n", COMPUTE_RULE), id="compute"
        ),
        pytest.param(
            {"project_slug": "my-proj\n", **PINNED_NAMES},
            invalid("project_slug", "my-proj\n", SLUG_RULE),
            id="slug",
        ),
        pytest.param(
            {"__azure_subscription_id": GUID + "\n"},
            invalid("__azure_subscription_id", GUID + "\n", GUID_RULE),
            id="subscription",
        ),
    ],
)
def test_pre_gen_rejects_bad_value(
    cookies: Cookies, capfd: pytest.CaptureFixture[str], tmp_path: Path, context: dict[str, str], expected: str
) -> None:
    result = bake(cookies, **context)

    assert_hook_failed(result, tmp_path)
    assert error_lines(capfd) == [expected]


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        pytest.param(
            {"model": "svm"},
            "svm provided for choice variable model, but the choices are "
            "['auto', 'ridge', 'random_forest', 'hist_gradient_boosting'].",
            id="model",
        ),
    ],
)
def test_bad_choice_is_rejected_before_the_hook(
    cookies: Cookies, tmp_path: Path, context: dict[str, str], expected: str
) -> None:
    """Cookiecutter itself refuses a value outside a choice list (model, ci), before the hook runs."""
    result = bake(cookies, **context)

    assert isinstance(result.exception, ValueError)
    assert str(result.exception) == expected
    assert rendered_leftovers(tmp_path) == []


def test_pre_gen_reports_every_problem_on_its_own_line(
    cookies: Cookies, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = bake(
        cookies,
        __compute_name="a",
        __test_size="1",
        __random_seed="x",
        __azure_subscription_id="not-a-guid",
        __compute_min_instances="5",
        __compute_max_instances="2",
    )

    assert_hook_failed(result, tmp_path)
    assert sorted(error_lines(capfd)) == sorted(
        [
            invalid("__compute_name", "a", COMPUTE_RULE),
            invalid("__test_size", "1", FRACTION_RULE),
            seed("x"),
            invalid("__azure_subscription_id", "not-a-guid", GUID_RULE),
            "__compute_min_instances='5' is invalid: must not exceed __compute_max_instances='2'",
        ]
    )


@pytest.mark.parametrize(
    ("context", "file", "key", "expected"),
    [
        pytest.param({"__compute_name": "ab"}, "aml/compute.yml", "name", "ab", id="compute-2-chars"),
        pytest.param(
            {"__compute_name": "c" * 15 + "1"}, "aml/compute.yml", "name", "c" * 15 + "1", id="compute-16-chars"
        ),
        pytest.param({"__test_size": "0.5"}, "config.yml", "test_size", 0.5, id="test-size-half"),
        pytest.param(
            {"__compute_min_instances": "3", "__compute_max_instances": "3"},
            "aml/compute.yml",
            "min_instances",
            3,
            id="min-equals-max",
        ),
        pytest.param({"__azure_subscription_id": GUID}, "config.yml", "azure.subscription_id", GUID, id="subscription"),
    ],
)
def test_pre_gen_accepts_edge_value(
    cookies: Cookies,
    capfd: pytest.CaptureFixture[str],
    context: dict[str, str],
    file: str,
    key: str,
    expected: object,
) -> None:
    project = assert_rendered(bake(cookies, **context))

    assert error_lines(capfd) == []
    assert lookup(load_yaml(project / file), key) == expected


# --- post_gen_project: the training CSV -------------------------------------------------------------------------

PATH_RULE = "data_path={path!r} is invalid: "


@pytest.mark.parametrize(
    ("name", "content", "target", "expected"),
    [
        pytest.param("missing.csv", None, "price", PATH_RULE + "no such file", id="missing"),
        pytest.param("data.txt", "rooms,price\n1,2\n", "price", PATH_RULE + "must be a .csv file", id="not-csv"),
        pytest.param("data.csv", b"", "price", PATH_RULE + "the file is empty, a header row is required", id="empty"),
        pytest.param(
            "data.csv",
            "rooms,price\n",
            "price",
            PATH_RULE + "the file has a header but no data rows",
            id="header-only",
        ),
        pytest.param(
            "data.csv",
            "rooms,area\n1,2\n",
            "price",
            "target_column='price' is not a column of data.csv; columns are: rooms, area",
            id="target-missing",
        ),
        pytest.param(
            "data.csv",
            "rooms,grade\n1,high\n2,low\n",
            "grade",
            "target_column='grade' must be numeric, but data.csv holds 'high' on line 2",
            id="target-text",
        ),
        pytest.param(
            "data.csv",
            "price\n1\n2\n",
            "price",
            "target_column='price' is the only column of data.csv: no features are left to learn from",
            id="target-only-column",
        ),
        pytest.param(
            "data.csv",
            "rooms,rooms,price\n1,2,3\n",
            "price",
            PATH_RULE + "duplicate column names ['rooms']",
            id="duplicate-columns",
        ),
        pytest.param(
            "data.csv",
            b"\xff\xfe\x00\x81binary\x00\n",
            "price",
            PATH_RULE + "not a UTF-8 CSV file ('utf-8' codec can't decode byte 0xff in position 0: invalid start byte)",
            id="binary",
        ),
        pytest.param(
            "data.csv",
            "rooms,price\n1,1_000\n2,2_000\n",
            "price",
            "target_column='price' must be numeric, but data.csv holds '1_000' on line 2",
            id="target-python-only-number",
        ),
    ],
)
def test_post_gen_rejects_bad_data(
    cookies: Cookies,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    content: str | bytes | None,
    target: str,
    expected: str,
) -> None:
    path = tmp_path / "input" / name if content is None else write_input(tmp_path, name, content)

    result = bake(cookies, data_path=str(path), target_column=target)

    assert_hook_failed(result, tmp_path)
    assert error_lines(capfd) == [expected.format(path=str(path))]


def test_post_gen_brings_in_a_custom_csv(cookies: Cookies, capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = write_input(tmp_path, "houses.csv", GOOD_CSV)

    project = assert_rendered(bake(cookies, data_path=str(source), target_column="price"))

    assert error_lines(capfd) == []
    assert sorted(path.name for path in (project / "data").iterdir()) == ["houses.csv"]
    assert (project / "data" / "houses.csv").read_bytes() == source.read_bytes()
    assert load_yaml(project / "aml" / "data.yml")["path"] == "../data/houses.csv"
    assert load_yaml(project / "config.yml")["target_column"] == "price"
    assert load_yaml(project / "config.yml")["features"] == {"numeric": ["rooms", "area"], "categorical": ["city"]}
    assert '#   "house id": identifier (a distinct value on every row)' in (project / "config.yml").read_text()


@pytest.mark.parametrize(
    ("context", "features"),
    [
        ({"drop_columns": "rooms"}, {"numeric": ["area"], "categorical": ["city"]}),
        ({"feature_columns": "house id, city"}, {"numeric": ["house id"], "categorical": ["city"]}),
        ({"feature_columns": "area, city"}, {"numeric": ["area"], "categorical": ["city"]}),
    ],
)
def test_feature_overrides_shape_the_config(
    cookies: Cookies, tmp_path: Path, context: dict[str, str], features: dict[str, list[str]]
) -> None:
    source = write_input(tmp_path, "houses.csv", GOOD_CSV)
    project = assert_rendered(bake(cookies, data_path=str(source), target_column="price", **context))
    assert load_yaml(project / "config.yml")["features"] == features


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (
            {"drop_columns": "house id, nope"},
            "drop_columns: 'nope' is not a column of the CSV; columns are: house id, rooms, area, city, price",
        ),
        ({"feature_columns": "price"}, "no feature columns are left besides target_column='price'"),
    ],
)
def test_feature_overrides_naming_bad_columns_are_refused(
    cookies: Cookies, capfd: pytest.CaptureFixture[str], tmp_path: Path, context: dict[str, str], expected: str
) -> None:
    source = write_input(tmp_path, "houses.csv", GOOD_CSV)
    result = bake(cookies, data_path=str(source), target_column="price", **context)
    assert_hook_failed(result, tmp_path)
    assert error_lines(capfd) == [expected]


# --- free text ------------------------------------------------------------------------------------------------

PROJECT_NAME = """Zoë's "Pressure": #1 model"""
AUTHOR_NAME = """O'Brien: "Team" #2 \\ ops"""
TARGET = "blood: pressure"


@pytest.mark.parametrize(
    "description",
    [
        pytest.param("Line: with # hash and 'quotes' \\ backslash — ünïcödé", id="mixed"),
        # Python escapes and a trailing quote: harmful if the text ever lands in a .py string literal.
        pytest.param("Reads C:\\Users\\new data", id="unicode-escape"),
        pytest.param('Predicts "BP"', id="ends-with-quote"),
    ],
)
def test_free_text_renders_into_parseable_files(cookies: Cookies, tmp_path: Path, description: str) -> None:
    source = tmp_path / "input" / "pressure.csv"
    source.parent.mkdir()
    with source.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["age", TARGET], *([30 + (7 * i) % 13, 70 + i] for i in range(12))])

    project = assert_rendered(
        bake(
            cookies,
            project_name=PROJECT_NAME,
            description=description,
            author_name=AUTHOR_NAME,
            data_path=str(source),
            target_column=TARGET,
        )
    )

    assert project.name == "zoe-s-pressure-1-model"
    assert (project / "src" / "zoe_s_pressure_1_model").is_dir()
    for path in project.rglob("*.yml"):
        load_yaml(path)
    with warnings.catch_warnings():
        # An invalid escape sequence is a warning today and fails the rendered project's own `ruff check` (W605).
        warnings.simplefilter("error")
        for path in project.rglob("*.py"):
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == description
    assert pyproject["project"]["authors"] == [{"name": AUTHOR_NAME}]
    assert load_yaml(project / "config.yml")["target_column"] == TARGET
    readme = (project / "README.md").read_text(encoding="utf-8").splitlines()
    assert readme[:3] == [f"# {PROJECT_NAME}", "", description]
