"""Real datasets of different shapes: each renders, its local pipeline run passes `check` and beats the
mean-predictor baseline, and monitoring its model scores every row of its CSV, finds no drift there, and names the
feature changed in new rows.

A render's own tests run the same code whatever the data: test_bake.py runs them on the default render; what depends
on the data (types, gaps, categories, width) and on the single model each of these trains is what runs here, with the
engine's API as `make run` and `make monitor` use it (its command line is tested in its own suite).
The data ship with the tests (tests/data/README.md says where from) or inside scikit-learn, so nothing is
fetched or unpacked outside pytest's temporary folders.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from aml_pipeline_kit.local_runner import StepFailed
from aml_pipeline_kit.local_runs import monitor_locally, run_pipeline_locally, start_step_host
from aml_pipeline_kit.project import Project
from conftest import TEMPLATE_DIR, bake

DATA_DIR = TEMPLATE_DIR / "tests" / "data"


def scikit_learn_frame(name: str) -> Callable[[Path], Path]:
    """A data set that ships inside scikit-learn, written as CSV into the given folder."""

    def write(folder: Path) -> Path:
        from sklearn import datasets  # only the tests of this module need it: seconds to import

        loaders = {"diabetes": datasets.load_diabetes, "digits": datasets.load_digits}
        options = {"scaled": False} if name == "diabetes" else {}
        csv = folder / f"{name}.csv"
        loaders[name](as_frame=True, **options).frame.to_csv(csv, index=False)
        return csv

    return write


def shipped(name: str) -> Callable[[Path], Path]:
    return lambda folder: DATA_DIR / name


# name: (the CSV, given a scratch folder; template values)
DATASETS: dict[str, tuple[Callable[[Path], Path], dict[str, str]]] = {
    # numeric only: scikit-learn's diabetes progression data, 442 rows x 10 features
    "numeric-only": (scikit_learn_frame("diabetes"), {"target_column": "target", "model": "ridge"}),
    # text categories, missing values (cars without air bags), identifier-like columns (Model, Make), price leaks
    "categorical-missing": (
        shipped("cars93.csv"),
        {"target_column": "Price", "drop_columns": "Min.Price, Max.Price, Cylinders", "model": "random_forest"},
    ),
    # wide: 64 pixel columns, many of them constant
    "wide": (scikit_learn_frame("digits"), {"target_column": "target", "model": "hist_gradient_boosting"}),
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=list(DATASETS))
def dataset_project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    write_csv, values = DATASETS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    csv = write_csv(folder)
    return bake({"project_name": f"Dataset {request.param}", "data_path": str(csv), **values}, folder / "out")


def test_the_local_run_beats_the_baseline_its_model_scores_every_row_and_monitoring_flags_new_rows(
    dataset_project: Path,
) -> None:
    project = Project.load(dataset_project)
    host = start_step_host(project)  # one warm step host for the project's three runs
    try:
        trained = run_pipeline_locally(project, {}, check=True, host=host)
        metrics = json.loads((trained.outputs["report"] / "metrics.json").read_text())
        assert metrics["r2"] > metrics["baseline_r2"]
        assert metrics["rmse"] < metrics["baseline_rmse"]

        model, data = trained.outputs["model"], project.local_data_path
        monitored = monitor_locally(project, model, data, host=host)  # its own CSV: no drift
        assert "no threshold crossed" in (monitored.run_dir / "monitor" / "step.log").read_text()
        assert_every_row_predicted(monitored.outputs["predictions"], data)

        changed, batch = changed_rows(dataset_project, data)  # without the target, as rows to score come
        with pytest.raises(StepFailed) as alarmed:
            monitor_locally(project, model, batch, host=host)
    finally:
        host.close()
    assert alarmed.value.step == "monitor"
    assert_every_row_predicted(alarmed.value.log.parent.parent / "score" / "predictions", batch)  # the step before
    error = alarmed.value.last_line()
    assert error.startswith("error: monitoring thresholds crossed: "), error
    assert f"unseen categories above 5% of the rows in {changed!r}" in error or f"drift in {changed!r} (" in error


def assert_every_row_predicted(predictions: Path, rows: Path) -> None:
    """The score step's predictions (a CSV per mini-batch) hold a finite prediction for every row of the CSV
    ``rows``."""
    predicted = pd.concat(map(pd.read_csv, sorted(predictions.glob("*.csv"))), ignore_index=True)
    assert len(predicted) == len(pd.read_csv(rows))
    assert predicted.columns[-1].startswith("predicted_")
    assert np.isfinite(predicted.iloc[:, -1]).all()


def changed_rows(project: Path, data: Path) -> tuple[str, Path]:
    """The project's CSV without its target, a third of its first categorical feature's values replaced by a category
    training never saw (or, without one, its first varying numeric feature shifted); the feature's name and the file."""
    config = yaml.safe_load((project / "config.yml").read_text())
    rows = pd.read_csv(data).drop(columns=[config["target_column"]])
    if config["features"]["categorical"]:
        changed = config["features"]["categorical"][0]
        rows[changed] = rows[changed].astype(object)
        rows.loc[rows.sample(frac=1 / 3, random_state=3).index, changed] = "a category training never saw"
    else:
        changed = next(name for name in config["features"]["numeric"] if rows[name].std() > 0)
        rows[changed] = rows[changed] + 2 * rows[changed].std()
    rows.to_csv(project / "new-rows.csv", index=False)
    return changed, project / "new-rows.csv"
