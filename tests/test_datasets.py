"""Real datasets of different shapes: each renders, its local pipeline run through the CLI passes `check` and
beats the mean-predictor baseline, and its model scores every row of its CSV through the CLI.

A render's own tests run the same code whatever the data: test_bake.py runs them on the default render (and the
fast ones on model=auto); what depends on the data (types, gaps, categories, width) is what runs here.
The data ship with the tests (tests/data/README.md says where from) or inside scikit-learn, so nothing is
fetched or unpacked outside pytest's temporary folders.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TEMPLATE_DIR, bake
from test_bake import run

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
    package = next((dataset_project / "src").iterdir()).name
    result = run([sys.executable, "-m", package, "run", "--local"], dataset_project)
    assert result.returncode == 0, result.stdout + result.stderr
    (report,) = dataset_project.glob("runs/*/evaluate/report/metrics.json")
    metrics = json.loads(report.read_text())
    assert metrics["r2"] > metrics["baseline_r2"]
    assert metrics["rmse"] < metrics["baseline_rmse"]

    scored = run([sys.executable, "-m", package, "score", "--local"], dataset_project)
    assert scored.returncode == 0, scored.stdout + scored.stderr
    (predictions_file,) = dataset_project.glob("runs/*/score/predictions/predictions.csv")
    predictions = pd.read_csv(predictions_file)
    (data,) = (dataset_project / "data").glob("*.csv")
    assert len(predictions) == len(pd.read_csv(data))
    assert predictions.columns[-1].startswith("predicted_")
    assert np.isfinite(predictions.iloc[:, -1]).all()

    monitored = run([sys.executable, "-m", package, "monitor", "--local"], dataset_project)  # its own CSV: no drift
    assert monitored.returncode == 0, monitored.stdout + monitored.stderr
    assert "no threshold crossed" in monitored.stdout
    changed, batch = changed_rows(dataset_project, data)
    alarmed = run([sys.executable, "-m", package, "monitor", "--local", "--data", str(batch)], dataset_project)
    assert alarmed.returncode == 1, alarmed.stdout + alarmed.stderr
    (error,) = alarmed.stderr.splitlines()
    assert error.startswith("error: step 'monitor' failed: monitoring thresholds crossed: "), error
    assert f"unseen categories above 5% of the rows in {changed!r}" in error or f"drift in {changed!r} (" in error


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
