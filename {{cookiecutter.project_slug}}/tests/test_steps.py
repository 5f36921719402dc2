"""The step scripts' own logic, called in-process on small frames."""

import argparse
import json
import math
import shutil
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from conftest import load_script
from mlflow.models import Model
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.metrics import root_mean_squared_error
from sklearn.model_selection import KFold

from aml_pipeline_kit.project import Project

from {{ cookiecutter.__package_name }}.parameters import encoded
from {{ cookiecutter.__package_name }}.pipeline import load_components

prep = load_script("data_prep", "prep")
train = load_script("train", "train")
training = load_script("train", "training")
register = load_script("register", "register")
evaluate = load_script("evaluate", "evaluate")
select = load_script("select", "select_model")


@pytest.mark.parametrize(("component", "script"), [("data_prep", prep), ("train", train)], ids=["data_prep", "train"])
def test_step_parsers_take_exactly_the_ranges_their_specs_declare(
    project: Project, component: str, script: object
) -> None:
    """What Azure ML accepts for an input (its min and max, inclusive), the step's parser accepts, and no more."""
    parser = script.build_parser()
    checked = []
    for name, declared in load_components(project, component)[component].inputs.items():
        if declared.type not in {"integer", "number"} or (declared.min is None and declared.max is None):
            continue
        convert = parser._option_string_actions["--" + name.replace("_", "-")].type
        kind, outside = (int, 1) if declared.type == "integer" else (float, 1e-6)
        for limit, beyond in ((declared.min, -outside), (declared.max, outside)):
            if limit is None:
                continue
            assert convert(str(kind(float(limit)))) == kind(float(limit)), (name, limit)
            with pytest.raises(argparse.ArgumentTypeError):
                convert(str(kind(float(limit)) + beyond))
        with pytest.raises(argparse.ArgumentTypeError):
            convert("nan")
        checked.append(name)
    assert checked


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
        (messy_frame().assign(pressure="high"), "pressure", "'pressure' must be numeric, but holds text: 'high'"),
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


def test_prep_uses_the_listed_features_and_reads_listed_categories_as_text(tmp_path: Path) -> None:
    source = _write(messy_frame().assign(ward=[index % 4 for index in range(40)]), tmp_path / "data.csv")
    features = prep.prepare(source, "pressure", 0.2, 1, tmp_path / "out", numeric=["age"], categorical=["ward"])
    assert features == {"target": "pressure", "numeric": ["age"], "categorical": ["ward"], "dropped": {}}
    train_rows = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert list(train_rows.columns) == ["age", "ward", "pressure"]
    assert set(train_rows["ward"]) <= {"0", "1", "2", "3"}


@pytest.mark.parametrize(
    ("numeric", "categorical", "message"),
    [
        (["age", "height"], [], "feature column 'height' not found; columns are: patient_id"),
        (
            ["smoker"],
            [],
            "feature column 'smoker' is listed as numeric in config.yml but holds text: 'yes'",
        ),
        (["pressure"], [], "the target column 'pressure' cannot also be a feature"),
    ],
)
def test_prep_refuses_listed_features_the_data_lacks(
    tmp_path: Path, numeric: list[str], categorical: list[str], message: str
) -> None:
    source = _write(messy_frame(), tmp_path / "data.csv")
    with pytest.raises(prep.DataError, match=message):
        prep.prepare(source, "pressure", 0.2, 1, tmp_path / "out", numeric=numeric, categorical=categorical)
    assert not (tmp_path / "out").exists()


def test_prep_cli_reports_bad_data_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    argv = ["--input-data", str(empty), "--target-column", encoded("y"), "--prepped-data", str(tmp_path / "o")]
    assert prep.main(argv) == 1
    assert capsys.readouterr().err.strip() == f"error: {empty}: the file is empty, a header row is required"


@pytest.mark.parametrize("model_type", list(train.REGRESSORS))
def test_every_model_fits_raw_rows_and_ignores_unknown_categories(tmp_path: Path, model_type: str) -> None:
    prepped = tmp_path / "prepped"
    prep.prepare(_write(messy_frame(60), tmp_path / "data.csv"), "pressure", 0.2, 3, prepped)
    argv = ["--prepped-data", str(prepped), "--model-type", model_type, "--model", str(tmp_path / "model")]
    args = train.build_parser().parse_args([*argv, "--n-estimators", "10", "--max-iter", "20"])
    x, y, features = training.load_split(args.prepped_data, "train")
    model = training.build_model(args, features["numeric"], features["categorical"]).fit(x, y)
    unseen = x.head(3).assign(smoker="sometimes")
    assert len(model.predict(unseen)) == 3


def test_every_candidate_is_scored_on_the_same_seeded_folds_of_the_train_split(tmp_path: Path) -> None:
    prepped = tmp_path / "prepped"
    prep.prepare(_write(messy_frame(60), tmp_path / "data.csv"), "pressure", 0.2, 3, prepped, cv_folds=4)
    x, y, features = training.load_split(prepped, "train")
    argv = ["--prepped-data", str(prepped), "--model", str(tmp_path / "model"), "--n-estimators", "10"]
    scores = {}
    for model_type in ("ridge", "random_forest"):
        args = train.build_parser().parse_args([*argv, "--model-type", model_type, "--random-seed", "3"])
        model = training.build_model(args, features["numeric"], features["categorical"])
        scores[model_type] = training.cross_validation(model, x, y, 4, 3)
        folds = KFold(4, shuffle=True, random_state=3).split(x)  # seeded as random_seed: the same rows for each
        fitted = [(clone(model).fit(x.iloc[kept], y.iloc[kept]), held_out) for kept, held_out in folds]
        by_hand = [root_mean_squared_error(y.iloc[rows], fit.predict(x.iloc[rows])) for fit, rows in fitted]
        assert scores[model_type]["fold_rmse"] == pytest.approx(by_hand)
        assert scores[model_type]["cv_rmse"] == pytest.approx(np.mean(by_hand))
        assert scores[model_type]["cv_rmse_std"] == pytest.approx(np.std(by_hand, ddof=1))
    assert scores["ridge"]["fold_rmse"] != scores["random_forest"]["fold_rmse"]


def saved_candidate(folder: Path, model_type: str, folds: int | None) -> Path:
    """A candidate's MLmodel file as train.py writes its metadata (select reads nothing else)."""
    metadata: dict = {"model_type": model_type, "hyperparameters": {}}
    if folds:
        scores = {"folds": folds, "cv_rmse": 1.0, "cv_rmse_std": 0.1, "cv_r2": 0.5, "fold_rmse": [1.0] * folds}
        metadata["cross_validation"] = scores
    folder.mkdir(parents=True)
    Model(metadata=metadata).save(folder / "MLmodel")
    return folder


@pytest.mark.parametrize(
    ("second", "problem"),
    [
        (("ridge", 5), "a second one trained as 'ridge'"),
        (("random_forest", None), "trained without --cv-folds, so it has no scores to compare"),
        (("random_forest", 3), "scored on 3 folds, not as the others"),
    ],
)
def test_select_refuses_candidates_it_cannot_compare_in_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], second: tuple[str, int | None], problem: str
) -> None:
    first = saved_candidate(tmp_path / "first", "ridge", 5)
    other = saved_candidate(tmp_path / "second", *second)
    argv = ["--candidate", str(first), "--candidate", str(other)]
    assert select.main([*argv, "--selection", str(tmp_path / "selection"), "--model", str(tmp_path / "model")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: --candidate {other}: {problem}; each candidate must be of another model type, scored on the same folds"
    ]
    assert not (tmp_path / "selection").exists() and not (tmp_path / "model").exists()


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


# (test targets, the model's slope on x = 1, 2, 3) -> the one line evaluate prints instead of writing metrics.json
NOT_FINITE = {
    "targets whose squared errors overflow": (
        [1e200, -1e200, 3e200],
        0.0,
        "error: metrics.json not written: rmse, r2, baseline_rmse, baseline_r2 are not finite (inf, nan, inf, nan): "
        "the test split's targets or the model's predictions are too large for their squared errors to stay finite",
    ),
    "a model predicting infinity": (
        [70.0, 80.0, 75.0],
        math.inf,
        "error: metrics.json not written: the model predicts 3 values that are not finite numbers on the test split",
    ),
}


@pytest.mark.parametrize(("targets", "slope", "message"), NOT_FINITE.values(), ids=NOT_FINITE.keys())
def test_evaluate_writes_only_finite_metrics(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    empty_store: Path,
    targets: list[float],
    slope: float,
    message: str,
) -> None:
    """A target near 1e200 reached metrics.json as Infinity and NaN."""
    shutil.copy2(empty_store, tmp_path / "mlruns.db")  # a store with its tables: creating them logs to stderr
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns.db'}")
    prepped = tmp_path / "prepped"
    prepped.mkdir()
    (prepped / "features.json").write_text(json.dumps({"target": "y", "numeric": ["x"], "categorical": []}))
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 4.0]}).to_parquet(prepped / "train.parquet")
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": targets}).to_parquet(prepped / "test.parquet")
    model = LinearRegression().fit(pd.DataFrame({"x": [0.0, 1.0]}), [0.0, 0.0])
    model.coef_ = np.array([slope])
    mlflow.sklearn.save_model(model, tmp_path / "model", pip_requirements=[])  # none inferred: seconds per save
    argv = ["--model", str(tmp_path / "model"), "--prepped-data", str(prepped), "--report", str(tmp_path / "report")]
    assert evaluate.main(argv) == 1
    assert capsys.readouterr().err.splitlines() == [message]
    assert not (tmp_path / "report" / "metrics.json").exists()


METRICS = {"rmse": 10.0, "baseline_rmse": 12.0, "r2": 0.3}


@pytest.mark.parametrize(
    ("metrics", "min_r2", "best", "registered", "reason"),
    [
        (METRICS, 0.0, None, True, "beats the baseline's 12.0000 and every registered version"),
        (METRICS, 0.0, 10.5, True, "beats the baseline's"),
        (
            {**METRICS, "rmse": 12.5, "r2": -0.1},
            0.0,
            None,
            False,
            "does not beat the mean-predictor baseline's 12.0000",
        ),
        (METRICS, 0.5, None, False, "test R² 0.3000 is below the threshold min_r2=0.5"),
        (METRICS, 0.0, 9.5, False, "does not beat the best registered version's 9.5000"),
    ],
)
def test_the_registration_decision(
    metrics: dict, min_r2: float, best: float | None, registered: bool, reason: str
) -> None:
    decided, why = register.decide(metrics, min_r2, best)
    assert decided is registered
    assert reason in why


def test_register_step_registers_only_a_better_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns.db'}")
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    report = tmp_path / "report"
    report.mkdir()

    def run_step(rmse: float, min_r2: float, name: str) -> dict:
        (report / "metrics.json").write_text(json.dumps({"rmse": rmse, "baseline_rmse": 12.0, "r2": 0.3}))
        decision = tmp_path / name
        argv = ["--model", str(model), "--report", str(report), "--model-name", "bp", "--min-r2", str(min_r2)]
        assert register.main([*argv, "--decision", str(decision)]) == 0
        return json.loads((decision / "decision.json").read_text())

    assert run_step(10.0, 0.0, "first") == {
        "registered": True,
        "reason": "test RMSE 10.0000 beats the baseline's 12.0000 and every registered version",
        "model_name": "bp",
        "version": "1",
    }
    assert run_step(10.0, 0.9, "strict")["registered"] is False
    assert run_step(11.0, 0.0, "worse")["reason"].endswith("does not beat the best registered version's 10.0000")
    assert run_step(9.0, 0.0, "better")["version"] == "2"
