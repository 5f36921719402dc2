"""The command line: parameters, errors, output, and the step host's preloading."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aml_pipeline_kit.step_imports import script_imports

from diabetes_blood_pressure.cli import build_parser, main, parameter
from diabetes_blood_pressure.local_runs import metrics_table
from diabetes_blood_pressure.settings import PROJECT_ROOT


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


def test_an_unknown_parameter_exits_with_one_line(capsys: pytest.CaptureFixture) -> None:
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


def test_the_step_host_preloads_what_the_step_scripts_import() -> None:
    folders = sorted(path for path in (PROJECT_ROOT / "components").iterdir() if path.is_dir())
    imports = script_imports(folders)
    assert {"pandas", "mlflow", "sklearn.compose", "skops.io"} <= set(imports)
    assert not {name for name in imports if name.split(".")[0] in {"json", "argparse", "azure", "prep", "train"}}


def test_script_imports_skip_the_standard_library_and_local_modules(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("import os\n")
    (tmp_path / "step.py").write_text("import json, helper\nfrom numpy import array\nfrom . import sibling\n")
    assert script_imports([tmp_path]) == ["numpy"]


def test_the_step_host_preloads_submodules_imported_by_name_and_warms_mlflow() -> None:
    """``from matplotlib import pyplot`` needs matplotlib.pyplot, which importing matplotlib does not load; and the
    table of installed distributions MLflow builds on a model's save or load is built once, before any step."""
    imports = script_imports([PROJECT_ROOT / "components" / "evaluate"], imported_names=True)
    assert {"matplotlib", "matplotlib.pyplot", "mlflow", "sklearn.metrics.r2_score"} <= set(imports)
    code = (
        "import sys; from aml_pipeline_kit.step_imports import preload, warm_mlflow; "
        f"preload({imports!r}); warm_mlflow(); from mlflow.utils import requirements_utils as table; "
        "print('matplotlib.pyplot' in sys.modules, 'sklearn.metrics.r2_score' in sys.modules, "
        "bool(table._MODULES_TO_PACKAGES and table._PACKAGES_TO_MODULES))"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")}
    loaded = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert loaded.split() == ["True", "False", "True"]
