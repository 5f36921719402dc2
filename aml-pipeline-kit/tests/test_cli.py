"""The ``aml-pipeline-kit`` command: its parameters and output, the step host's preloading of what the example's step
scripts import, and the command standing alone, from a folder that is no project: ``check --job`` and
``run --local --job`` of a pipeline job file, ``--version``. (Its error paths: test_cli_cases.py.)"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from projects import DATA, ENV, PROG, cli, command, latest_run

from aml_pipeline_kit import __version__
from aml_pipeline_kit.cli import build_parser, main, parameter
from aml_pipeline_kit.local_runs import metrics_table, selection_table
from aml_pipeline_kit.project import find_project_root
from aml_pipeline_kit.step_imports import script_imports

ASSET = "fixture-asset@latest"  # the data asset substitute.yml reads


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model_type=random_forest", ("model_type", "random_forest")),
        ("alpha=0.5", ("alpha", 0.5)),
        ("max_depth=8", ("max_depth", 8)),
        ("max_depth=null", ("max_depth", None)),
        ("target_column=a: b", ("target_column", "a: b")),
    ],
)
def test_parameters_are_typed_like_yaml(text: str, expected: tuple) -> None:
    assert parameter(text) == expected


def test_a_malformed_parameter_is_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="'alpha' is not NAME=VALUE"):
        parameter("alpha")


def test_run_needs_to_be_told_where() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run"])
    assert build_parser().parse_args(["run", "--local", "-p", "alpha=2"]).param == [("alpha", 2)]


def test_an_unknown_parameter_exits_with_one_line(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(example)
    assert main(["run", "--local", "-p", "n_trees=3"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: unknown pipeline parameter 'n_trees'; parameters are: target_column")
    assert len(error.strip().splitlines()) == 1


def test_metrics_table_shows_model_and_baseline() -> None:
    metrics = {"rmse": 1.0, "mae": 0.5, "r2": 0.25, "baseline_rmse": 2.0, "baseline_mae": 1.5, "baseline_r2": 0.0}
    assert metrics_table(metrics).splitlines() == [
        "metric       model  baseline",
        "RMSE         1.000     2.000",
        "MAE          0.500     1.500",
        "R²           0.250     0.000",
    ]


def test_selection_table_shows_each_candidates_cross_validation_mean_beside_the_folds_spread() -> None:
    scores = {"cv_rmse": 11.05, "cv_rmse_std": 0.7034, "cv_r2": 0.166, "fold_rmse": [10.0, 12.1]}
    selection = {
        "winner": "ridge",
        "candidates": {
            "ridge": {**scores, "hyperparameters": {"alpha": 1.0}},
            "random_forest": {**scores, "cv_rmse": 11.127, "hyperparameters": {"max_depth": None}},
        },
    }
    assert selection_table(selection).splitlines() == [
        "candidate                  CV RMSE (mean ± sd)   CV R²  hyperparameters",
        "ridge                           11.050 ± 0.703   0.166  alpha=1.0  <- selected",
        "random_forest                   11.127 ± 0.703   0.166  max_depth=None",
    ]


# --- the step host's preloading ------------------------------------------------------------------------------------


def test_the_step_host_preloads_what_the_step_scripts_import(example: Path) -> None:
    folders = sorted(path for path in (example / "components").iterdir() if path.is_dir())
    imports = script_imports(folders)
    assert {"pandas", "mlflow", "sklearn.compose", "skops.io"} <= set(imports)
    assert not {name for name in imports if name.split(".")[0] in {"json", "argparse", "azure", "prep", "train"}}


def test_script_imports_skip_the_standard_library_and_local_modules(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("import os\n")
    (tmp_path / "step.py").write_text("import json, helper\nfrom numpy import array\nfrom . import sibling\n")
    assert script_imports([tmp_path]) == ["numpy"]


def test_the_step_host_preloads_submodules_imported_by_name_and_warms_mlflow(example: Path) -> None:
    """``from matplotlib import pyplot`` needs matplotlib.pyplot, which importing matplotlib does not load; and the
    table of installed distributions MLflow builds on a model's save or load is built once, before any step."""
    imports = script_imports([example / "components" / "evaluate"], imported_names=True)
    assert {"matplotlib", "matplotlib.pyplot", "mlflow", "sklearn.metrics.r2_score"} <= set(imports)
    code = (
        "import sys; from aml_pipeline_kit.step_imports import preload, warm_mlflow; "
        f"preload({imports!r}); warm_mlflow(); from mlflow.utils import requirements_utils as table; "
        "print('matplotlib.pyplot' in sys.modules, 'sklearn.metrics.r2_score' in sys.modules, "
        "bool(table._MODULES_TO_PACKAGES and table._PACKAGES_TO_MODULES))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True).stdout
    assert loaded.split() == ["True", "False", "True"]


# --- standing alone: a pipeline job file from a folder that is no project ------------------------------------------


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A folder that is no project (no config.yml and components/ in it or above), with a copy of the fixture jobs."""
    assert find_project_root(tmp_path, {}) is None
    shutil.copytree(DATA / "pipelines", tmp_path / "pipelines")
    return tmp_path


def test_the_version_is_the_distributions(scratch: Path) -> None:
    result = cli(scratch, "--version", timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{PROG} {__version__}\n", "")


def test_data_without_a_job_file_is_refused_in_one_line(scratch: Path) -> None:
    result = cli(scratch, "run", "--local", "--data", f"{ASSET}=data", timeout=60)
    assert result.returncode == 2
    assert result.stderr == (
        "error: --data REFERENCE=PATH is for --job; a project maps data in local.data_substitutes\n"
    )


def test_check_job_checks_a_job_file_from_a_folder_that_is_no_project_and_writes_nothing(
    scratch: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    result = command(capfd, scratch, "check", "--job", "pipelines/basic.yml")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "check: 3 components, 2 bindings, 2 scripts, 0 packages — no findings\n"
    assert sorted(path.name for path in scratch.iterdir()) == ["pipelines"]


def experiment_of(store: Path, run_id: str) -> str:
    with sqlite3.connect(store) as database:
        (name,) = database.execute(
            "SELECT experiments.name FROM runs JOIN experiments ON runs.experiment_id = experiments.experiment_id"
            " WHERE runs.run_uuid = ?",
            (run_id,),
        ).fetchone()
    return name


@pytest.mark.slow  # runs a pipeline twice
def test_run_job_runs_a_job_file_from_a_folder_that_is_no_project(
    scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Its runs under ./runs and MLflow in ./mlruns.db, filed under Azure ML's Default experiment (the job names
    none); a data asset from the local copy --data maps it to; MLFLOW_TRACKING_URI moves the store (of a run that runs
    its steps: one that reuses every step writes no MLflow run). The first run is the command in a process of its own,
    as a user starts it."""
    asset = scratch / "pipelines" / "data" / "asset"
    arguments = ["run", "--local", "--job", "pipelines/substitute.yml", "--data", f"{ASSET}={asset}"]
    result = cli(scratch, *arguments, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = latest_run(scratch)
    run_dir = scratch / "runs" / summary["run_id"]
    assert f"\nrun {summary['run_id']} completed: {run_dir}\n" in result.stdout
    seen = json.loads((run_dir / "read_asset" / "report" / "seen.json").read_text())
    assert (seen["folder"], seen["files"]) == (str(asset), ["readme.txt"])
    assert experiment_of(scratch / "mlruns.db", summary["mlflow_run_id"]) == "Default"
    assert sorted(path.name for path in scratch.iterdir()) == ["mlruns.db", "mlruns.db.lock", "pipelines", "runs"]

    elsewhere = tmp_path / "elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{elsewhere}")
    moved = command(capfd, scratch, *arguments, "--no-reuse")
    assert moved.returncode == 0, moved.stderr
    assert experiment_of(elsewhere, latest_run(scratch)["mlflow_run_id"]) == "Default"
