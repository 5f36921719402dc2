"""The sample requests follow the model: every local run that trains one writes them from its own feature columns
and the first rows of the project's CSV it can take, typed as it takes them; ``show sample-request`` and
``show sample-request-mlflow`` print where they are. (Answered by the served model: the render's test_serve.py; by
the online deployment's scoring script: the template's test_azure_deploy.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
import yaml
from pandas._libs.parsers import STR_NA_VALUES
from projects import command, copy_example, load_project

from aml_pipeline_kit.config_files import SettingsError
from aml_pipeline_kit.local_runs import run_pipeline_locally
from aml_pipeline_kit.project import Project
from aml_pipeline_kit.sample_requests import PANDAS_MISSING, SampleRequests, after_run, sample_requests
from aml_pipeline_kit.step_host import StepHost

# The example's first two rows, as the model takes them: numbers as JSON numbers (whole ones as written), the
# categorical column as text.
FIRST_ROWS = {
    "Pregnancies": [5, 7],
    "Glucose": [86, 195],
    "BloodPressure": [68.0, 70.0],
    "SkinThickness": [28.0, 33.0],
    "BMI": [30.2, 25.1],
    "DiabetesPedigreeFunction": [0.364, 0.163],
    "Age": [24, 55],
    "Diabetic": ["No", "Yes"],
}


def shown_request(capfd: pytest.CaptureFixture[str], root: Path, what: str) -> dict:
    """The request ``show <what>`` names: one absolute path, read as JSON."""
    shown = command(capfd, root, "show", what)
    assert shown.returncode == 0, shown.stderr
    (path,) = shown.stdout.splitlines()
    assert Path(path).is_absolute()
    return json.loads(Path(path).read_text())


def expected_table(columns: list[str]) -> dict:
    return {
        "columns": columns,
        "data": [list(row) for row in zip(*(FIRST_ROWS[name] for name in columns), strict=True)],
    }


@pytest.mark.slow  # trains a copy of the example
def test_the_sample_requests_follow_a_change_of_the_target(
    tmp_path: Path, empty_store: Path, step_host: StepHost, capfd: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: target_column changed in config.yml after rendering, and the features with it; the next run
    writes requests without the new target, with the old one among the features."""
    root = copy_example(tmp_path / "diabetes-blood-pressure", empty_store)
    config = root / "config.yml"
    edits = {
        'target_column: "BloodPressure"': 'target_column: "Age"',
        '"DiabetesPedigreeFunction", "Age"]': '"DiabetesPedigreeFunction", "BloodPressure"]',
        'type: "auto"': 'type: "ridge"',  # one model: the four steps of its graph
    }
    text = config.read_text()
    for old, new in edits.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    config.write_text(text)

    result = run_pipeline_locally(load_project(root), {}, check=True, host=step_host)

    written = sorted(path.name for path in (root / "runs").glob("sample-request*.json"))
    assert written == ["sample-request-mlflow.json", "sample-request.json"]  # by the run, before anyone asks
    features = ["Pregnancies", "Glucose", "SkinThickness", "BMI", "DiabetesPedigreeFunction", "BloodPressure"]
    columns = [name for name in FIRST_ROWS if name in {*features, "Diabetic"}]  # the CSV's order
    assert shown_request(capfd, root, "sample-request") == {"input_data": expected_table(columns)}
    assert shown_request(capfd, root, "sample-request-mlflow") == {"dataframe_split": expected_table(columns)}
    rows = pd.DataFrame(expected_table(columns)["data"], columns=columns)
    assert len(mlflow.pyfunc.load_model(str(result.outputs["model"])).predict(rows)) == 2
    assert not (root / "docs" / "sample-request.json").exists()  # no copy elsewhere to go stale


# A CSV's fields -> the request's rows: the model's features only (the target and the identifier left out) in the
# CSV's order; gaps (any of pandas' markers, a short row's missing fields) as null; numbers of a numeric feature as
# JSON numbers, whole ones when written whole; a categorical feature's fields as the text they are, codes that read
# as numbers included; rows the model cannot take (text or an infinite number in a numeric feature) and the lines
# pandas skips left out.
CSV = """id,count,code,price,ratio,colour
1,?,A1,5,0.5,red
2,inf,A1,5,0.5,red

 \t
3,+7,007,6,NA,NA
4,1e3, dark blue ,7,2.50
5,9,B2,8,1.5,green
"""
FEATURES = {"target": "price", "numeric": ["ratio", "count"], "categorical": ["colour", "code"]}
TYPED = {
    "columns": ["count", "code", "ratio", "colour"],
    "data": [[7, "007", None, None], [1000.0, " dark blue ", 2.5, None]],
}


def test_pandas_missing_value_markers_are_the_gaps() -> None:
    assert frozenset(STR_NA_VALUES) == PANDAS_MISSING


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A copy of the example whose CSV is ``CSV``."""
    root = copy_example(tmp_path / "project")
    project = Project.load(root)
    project.local_data_path.write_text(CSV)
    return project


def saved_model(folder: Path, features: object) -> Path:
    """A model folder as far as the requests read it: its MLmodel file, with ``features`` in its metadata."""
    folder.mkdir()
    (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": {}, "metadata": {"features": features}}))
    return folder


def test_the_requests_take_the_models_features_and_the_first_rows_it_can_take(project: Project, tmp_path: Path) -> None:
    requests = sample_requests(project, saved_model(tmp_path / "model", FEATURES))
    assert requests == SampleRequests.of(project.local_runs_dir)
    assert json.loads(requests.endpoint.read_text()) == {"input_data": TYPED}
    assert json.loads(requests.mlflow.read_text()) == {"dataframe_split": TYPED}


def test_the_requests_are_written_again_only_for_another_model_or_when_missing(
    project: Project, tmp_path: Path
) -> None:
    model = saved_model(tmp_path / "model", FEATURES)
    requests = sample_requests(project, model)
    project.local_data_path.write_text(CSV.replace("+7", "8"))
    assert sample_requests(project, model) == requests
    assert json.loads(requests.endpoint.read_text()) == {"input_data": TYPED}  # the same model: not read again
    requests.mlflow.unlink()
    sample_requests(project, model)
    assert json.loads(requests.mlflow.read_text())["dataframe_split"]["data"][0][0] == 8
    other = saved_model(tmp_path / "other", {**FEATURES, "numeric": ["ratio"], "categorical": ["count"]})
    sample_requests(project, other)
    assert json.loads(requests.endpoint.read_text())["input_data"]["columns"] == ["count", "ratio"]


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (None, r"/MLmodel: its metadata records no features \(numeric and categorical columns\)$"),
        ({**FEATURES, "numeric": ["ratio", "weight"]}, r"/diabetes\.csv: no column 'weight', which the model takes$"),
    ],
    ids=["no-features", "a-column-gone"],
)
def test_a_model_the_requests_cannot_be_written_for_leaves_none_after_a_run(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str], features: object, message: str
) -> None:
    requests = sample_requests(project, saved_model(tmp_path / "before", FEATURES))
    model = saved_model(tmp_path / "model", features)
    with pytest.raises(SettingsError, match=message):
        sample_requests(project, model)
    after_run(project, model)
    assert not [path for path in (requests.endpoint, requests.mlflow) if path.exists()]  # none for another model
    (warning,) = capsys.readouterr().err.splitlines()
    assert warning.startswith("warning: no sample requests: ")


def test_show_writes_the_requests_of_the_latest_local_model_and_prints_where(
    project: Project, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    refused = command(capfd, project.root, "show", "sample-request")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert (
        refused.stderr
        == f"error: no completed local run with a model in {project.local_runs_dir}: `make run` trains one\n"
    )
    model = saved_model(tmp_path / "model", FEATURES)
    summary = project.local_runs_dir / "20250101-000000" / "run.json"
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"status": "completed", "outputs": {"model": str(model)}}))
    assert shown_request(capfd, project.root, "sample-request") == {"input_data": TYPED}
    assert shown_request(capfd, project.root, "sample-request-mlflow") == {"dataframe_split": TYPED}
