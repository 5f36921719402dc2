"""Monitoring: the monitoring job the engine builds for Azure ML (the registered model, the training data asset, the
batch path, every step run anew) and its schedule from aml/monitor-schedule.yml with config.yml's recurrence, offline;
and ``monitor --local`` on the trained example. (Its batch and schedule against the workspace:
test_azure_workspace.py; the drift statistics: the render's own tests.)"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest
from azure.ai.ml.entities import JobSchedule, RecurrenceTrigger
from conftest import TrainedProject
from projects import command, load_project, rows_in_files

from aml_pipeline_kit.aml_graph import serialised
from aml_pipeline_kit.azure_monitoring import monitor_schedule, monitoring_job
from aml_pipeline_kit.cli import main
from aml_pipeline_kit.config_files import SettingsError
from aml_pipeline_kit.local_runs import latest_local_model
from aml_pipeline_kit.project import Project, registered_model_uri


@pytest.fixture(scope="module")
def project(example: Path) -> Project:
    return load_project(example)


def azure_monitoring_job(project: Project) -> object:
    return monitoring_job(project, project.setting("monitoring", "batch_path"))


def test_the_azure_monitoring_job_reads_the_registered_model_the_data_asset_and_the_batch_path(
    project: Project,
) -> None:
    job = azure_monitoring_job(project)
    assert job._validate().passed
    document = serialised(job)
    inputs = document["inputs"]
    assert inputs["model"] == {"type": "mlflow_model", "path": registered_model_uri(project)}
    assert inputs["training_data"]["path"] == project.data_asset_uri
    assert inputs["batch"]["path"] == project.setting("monitoring", "batch_path")
    thresholds = project.setting("monitoring", "thresholds")
    assert {name: inputs[name] for name in thresholds} == thresholds
    assert document["settings"]["force_rerun"] is True  # new rows behind the same path: nothing reused


def test_the_schedule_spec_loads_with_the_recurrence_of_config_yml_and_serialises(project: Project) -> None:
    job = azure_monitoring_job(project)
    schedule = monitor_schedule(project, job)
    assert isinstance(schedule, JobSchedule) and schedule.create_job is job
    assert isinstance(schedule.trigger, RecurrenceTrigger)
    recurrence = project.setting("monitoring", "schedule")
    assert (schedule.trigger.frequency, schedule.trigger.interval) == (recurrence["frequency"], recurrence["interval"])
    assert schedule.trigger.schedule.hours == recurrence["hours"]
    body = schedule._to_rest_object().as_dict()  # the body azure-ai-ml PUTs to .../schedules/<name>
    assert body["properties"]["trigger"]["triggerType"] == "Recurrence"
    assert body["properties"]["trigger"]["frequency"] == recurrence["frequency"]
    assert body["properties"]["action"]["actionType"] == "CreateJob"
    assert body["properties"]["action"]["jobDefinition"]["jobType"] == "Pipeline"


def test_a_recurrence_azure_ml_refuses_is_one_line_naming_the_spec(project: Project) -> None:
    monitoring = {**project.config["monitoring"], "schedule": {"frequency": "fortnight"}}
    broken = replace(project, config={**project.config, "monitoring": monitoring})
    with pytest.raises(
        SettingsError, match=r"monitor-schedule\.yml with config\.yml's monitoring\.schedule: .*fortnight"
    ):
        monitor_schedule(broken, azure_monitoring_job(project))


def test_schedule_is_for_azure_only(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(example)
    assert main(["monitor", "--local", "--schedule"]) == 2
    assert capsys.readouterr().err == (
        "error: --schedule is for --azure: locally, run `monitor --local` from cron or CI instead\n"
    )


@pytest.mark.slow  # runs the monitoring pipeline of the trained example
def test_monitor_local_compares_the_csv_with_the_training_data_and_prints_the_table(
    trained_example: TrainedProject, capfd: pytest.CaptureFixture[str]
) -> None:
    project = load_project(trained_example.root)
    result = command(capfd, project.root, "monitor", "--local")
    assert (result.returncode, result.stderr) == (0, "")
    assert f"monitored {project.local_data_path} with model {latest_local_model(project)}\n" in result.stdout
    report = Path(result.stdout.rsplit("report: ", 1)[1].strip())
    assert (report / "report.json").is_file()
    monitor_log = (report.parent / "step.log").read_text()
    assert monitor_log in result.stdout  # the monitor step's table, as it logged it


@pytest.mark.slow  # runs the monitoring pipeline of the trained example
def test_monitor_local_reads_a_folder_of_files_as_scoring_does(
    trained_example: TrainedProject, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = load_project(trained_example.root)
    half = (len(project.local_data_path.read_text().splitlines()) - 1) // 2
    batch = rows_in_files(project.local_data_path, tmp_path / "batch", half, ("first.csv", "second.csv"))
    result = command(capfd, project.root, "monitor", "--local", "--data", str(batch))
    assert (result.returncode, result.stderr) == (0, "")
    assert f"monitored {batch} with model {latest_local_model(project)}\n" in result.stdout
    with project.local_data_path.open(newline="") as handle:
        targets = sum(bool(row[project.setting("target_column")]) for row in csv.DictReader(handle))
    assert f"({targets} batch rows with a target)" in result.stdout  # the rows of both files, every one scored
