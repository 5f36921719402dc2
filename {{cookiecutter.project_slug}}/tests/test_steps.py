"""The step scripts' own logic, called in-process on small frames."""

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.settings import COMPONENTS_DIR


def load_script(component: str, script: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"step_{script}", COMPONENTS_DIR / component / f"{script}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


prep = load_script("data_prep", "prep")
train = load_script("train", "train")


def messy_frame(rows: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": [f"p{index}" for index in range(rows)],
            "row_number": range(rows),
            "clinic": ["north"] * rows,
            "age": [20 + index % 30 for index in range(rows)],
            "smoker": ["yes" if index % 3 else "no" for index in range(rows)],
            "weight": [60.5 + index if index % 7 else None for index in range(rows)],
            "pressure": [70.0 + index % 10 if index % 9 else None for index in range(rows)],
        }
    )


def test_prep_drops_empty_targets_identifiers_and_constants(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = tmp_path / "data.csv"
    messy_frame().to_csv(source, index=False)
    features = prep.prepare(source, "pressure", 0.25, 7, tmp_path / "out")
    assert features["numeric"] == ["age", "weight"]
    assert features["categorical"] == ["smoker"]
    assert set(features["dropped"]) == {"patient_id", "row_number", "clinic"}
    train_rows = pd.read_parquet(tmp_path / "out" / "train.parquet")
    test_rows = pd.read_parquet(tmp_path / "out" / "test.parquet")
    assert len(train_rows) + len(test_rows) == 35
    assert len(test_rows) == 9
    assert json.loads((tmp_path / "out" / "features.json").read_text()) == features
    assert "dropped 5 of 40 rows with an empty 'pressure'" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("frame", "target", "message"),
    [
        (messy_frame(), "missing", "target column 'missing' not found; columns are: patient_id"),
        (messy_frame().assign(pressure="high"), "pressure", "'pressure' must be numeric, but holds 'high'"),
        (messy_frame()[["pressure"]], "pressure", "is the only column"),
        (messy_frame().head(5), "pressure", "at least 10 are needed"),
        (messy_frame()[["patient_id", "clinic", "pressure"]], "pressure", "no usable feature columns"),
    ],
)
def test_prep_refuses_unusable_data(tmp_path: Path, frame: pd.DataFrame, target: str, message: str) -> None:
    source = tmp_path / "data.csv"
    frame.to_csv(source, index=False)
    with pytest.raises(prep.DataError, match=message):
        prep.prepare(source, target, 0.2, 1, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_prep_cli_reports_bad_data_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert prep.main(["--input-data", str(empty), "--target-column", "y", "--prepped-data", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip() == f"error: {empty}: the file is empty, a header row is required"


@pytest.mark.parametrize("model_type", ["ridge", "random_forest", "hist_gradient_boosting"])
def test_every_model_fits_raw_rows_and_ignores_unknown_categories(tmp_path: Path, model_type: str) -> None:
    prepped = tmp_path / "prepped"
    prep.prepare(_write(messy_frame(60), tmp_path / "data.csv"), "pressure", 0.2, 3, prepped)
    argv = ["--prepped-data", str(prepped), "--model-type", model_type, "--model", str(tmp_path / "model")]
    args = train.build_parser().parse_args([*argv, "--n-estimators", "10", "--max-iter", "20"])
    x, y, features = train.load_split(args.prepped_data, "train")
    model = train.build_model(args, features["numeric"], features["categorical"]).fit(x, y)
    unseen = x.head(3).assign(smoker="sometimes")
    assert len(model.predict(unseen)) == 3


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path
