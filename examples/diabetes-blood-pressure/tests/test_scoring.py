"""Batch scoring: the score pipeline, run on this machine by the training pipeline's runner, and on Azure ML."""

from dataclasses import replace
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
from azure.ai.ml.entities import PipelineJob
from mlflow.models import Model
from test_submit import RecordingClient

from aml_pipeline_kit.aml_graph import command_nodes, plan_from_job, serialised, step_from_node
from aml_pipeline_kit.check.command import command_findings
from aml_pipeline_kit.check.environment import environment_findings
from aml_pipeline_kit.check.script import script_findings
from aml_pipeline_kit.job_yaml import component_folders
from aml_pipeline_kit.local_runner import RunResult, StepFailed
from aml_pipeline_kit.step_host import StepHost

from diabetes_blood_pressure.azure_ml import submit_scoring
from diabetes_blood_pressure.cli import main
from diabetes_blood_pressure.local_runs import (
    UsageError,
    latest_local_model,
    rows_without_target,
    score_locally,
)
from diabetes_blood_pressure.pipeline import (
    azure_score_pipeline,
    load_score_component,
    local_score_pipeline,
)
from diabetes_blood_pressure.settings import Settings

# A random forest sums its trees' predictions in parallel, in no fixed order: the last bits may differ run to run.
SAME = 1e-12


@pytest.fixture(scope="module")
def model(completed_run: tuple[Settings, RunResult]) -> Path:
    return completed_run[1].outputs["model"]


@pytest.fixture(scope="module")
def features(model: Path) -> dict:
    return Model.load(str(model)).metadata["features"]


def predictions_of(result: RunResult) -> pd.DataFrame:
    return pd.read_csv(result.outputs["predictions"] / "predictions.csv", float_precision="round_trip")


def test_the_latest_completed_local_run_provides_the_default_model(completed_run: tuple[Settings, RunResult]) -> None:
    settings, result = completed_run
    assert latest_local_model(settings) == result.outputs["model"]


def test_without_a_completed_run_there_is_no_default_model(project: Settings) -> None:
    with pytest.raises(UsageError, match="no completed local run with a model"):
        latest_local_model(project)


def test_the_score_plan_runs_one_step_on_absolute_paths(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("model").mkdir()
    Path("rows.csv").write_text("x\n1\n")
    plan = plan_from_job(local_score_pipeline(settings, Path("model"), Path("rows.csv")))
    assert [step.name for step in plan.steps] == ["score"]
    assert plan.inputs["model"] == str(tmp_path / "model")
    assert plan.inputs["data"] == str(tmp_path / "rows.csv")
    assert plan.outputs == {"predictions": ("score", "predictions")}


def test_the_score_component_keeps_the_contracts_check_verifies(settings: Settings, tmp_path: Path) -> None:
    job = local_score_pipeline(settings, tmp_path, settings.local_data_path)
    assert job._validate().passed
    folders = component_folders(job)
    steps = [step_from_node(name, node, folders[name]) for name, node in command_nodes(serialised(job)).items()]
    spec = settings.root / "components" / "score" / "score.yml"
    for step in steps:
        assert command_findings(step, spec) == []
        assert script_findings(step, spec) == []
    assert environment_findings(settings.root / "aml" / "environment.yml", steps)[0] == []


def test_local_scoring_predicts_the_csv_without_its_target_as_the_model_does(
    project: Settings, model: Path, step_host: StepHost
) -> None:
    target = project.setting("target_column")
    data = rows_without_target(project)
    rows = pd.read_csv(data)
    assert list(rows.columns) == list(pd.read_csv(project.local_data_path, nrows=0).columns.drop(target))
    result = score_locally(project, model, data, host=step_host)
    assert [step.status for step in result.steps] == ["completed"]
    predictions = predictions_of(result)
    assert list(predictions.columns) == ["row", f"predicted_{target}"]
    assert predictions["row"].tolist() == list(range(len(rows)))
    expected = mlflow.pyfunc.load_model(str(model)).predict(rows)
    assert predictions[f"predicted_{target}"].tolist() == pytest.approx(list(expected), rel=SAME)


def test_the_id_column_of_config_yml_identifies_the_predictions(
    project: Settings, model: Path, step_host: StepHost, tmp_path: Path
) -> None:
    rows = pd.read_csv(rows_without_target(project)).head(20)
    rows.insert(0, "record", [f"r-{number}" for number in range(len(rows))])
    rows.to_csv(tmp_path / "rows.csv", index=False)
    settings = replace(project, config={**project.config, "scoring": {"id_column": "record"}})
    predictions = predictions_of(score_locally(settings, model, tmp_path / "rows.csv", host=step_host))
    assert predictions.columns[0] == "record"
    assert predictions["record"].tolist() == rows["record"].tolist()


def test_rows_the_model_cannot_score_fail_the_step_with_one_line_naming_the_columns(
    project: Settings, model: Path, features: dict, step_host: StepHost, tmp_path: Path
) -> None:
    rows = pd.read_csv(rows_without_target(project)).head(20)
    missing = [*features["numeric"], *features["categorical"]][0]
    rows = rows.drop(columns=[missing])
    texts = [name for name in features["numeric"] if name != missing][:1]
    rows[texts] = rows[texts].astype(object)
    rows.loc[3, texts] = "unknown"
    rows.to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(StepFailed) as failure:
        score_locally(project, model, tmp_path / "rows.csv", host=step_host)
    assert failure.value.step == "score"
    log = failure.value.log.read_text()
    (error,) = [line for line in log.splitlines() if line.startswith("error:")]
    assert f"missing feature column {missing!r}" in error
    for name in texts:
        assert f"column {name!r} must be numeric but holds 'unknown' in 1 row(s)" in error
    assert "Traceback" not in log


def test_submit_scoring_creates_the_score_component_and_submits_the_job(settings: Settings) -> None:
    client = RecordingClient()
    submit_scoring(settings, client, "azureml:new-rows:1")
    (component,) = client.components.created
    assert component.name == load_score_component().name
    assert client.data.created == []  # scoring reads its own rows, not the training data asset
    assert len(client.compute.created) == len(client.environments.created) == 1
    (job,) = client.jobs.created
    assert isinstance(job, PipelineJob)
    assert job._validate().passed
    registered = settings.setting("azure", "registered_model_name")
    assert job.inputs["model"].result().path == f"azureml:{registered}@latest"
    assert job.inputs["model"].result().type == "mlflow_model"
    assert job.inputs["data"].result().path == "azureml:new-rows:1"
    assert job.settings.default_compute == settings.compute["name"]
    assert client.streamed == ["job-1"]


def test_azure_scoring_takes_a_given_model_version(settings: Settings) -> None:
    job = azure_score_pipeline(settings, "azureml:new-rows:1", "azureml:some-model:3")
    assert job.inputs["model"].result().path == "azureml:some-model:3"


def test_scoring_on_azure_needs_data(capsys: pytest.CaptureFixture) -> None:
    assert main(["score", "--azure"]) == 2
    assert capsys.readouterr().err.startswith("error: score --azure needs --data")
