"""Monitoring: the drift statistics on the project's own CSV, the monitoring graph run on this machine by the local
runner (no drift on a held-back slice of the data, clear drift on a shifted copy), and its job and schedule for
Azure ML, built, validated and serialised offline."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from azure.ai.ml.entities import JobSchedule, PipelineJob, RecurrenceTrigger
from conftest import load_script
from test_submit import RecordingClient, RecordingOperations

from aml_pipeline_kit.aml_graph import command_nodes, serialised, step_from_node
from aml_pipeline_kit.check.command import command_findings
from aml_pipeline_kit.check.script import script_findings
from aml_pipeline_kit.job_yaml import component_folders
from aml_pipeline_kit.local_runner import RunResult, StepFailed, StepHost

from diabetes_blood_pressure import cli, local_runs
from diabetes_blood_pressure.azure_monitoring import (
    monitor_schedule,
    schedule_monitoring,
    submit_monitoring,
)
from diabetes_blood_pressure.pipeline import (
    MONITORING_THRESHOLDS,
    azure_monitor_pipeline,
    load_monitor_components,
    local_monitor_pipeline,
    registered_model_uri,
)
from diabetes_blood_pressure.settings import Settings, SettingsError

drift = load_script("monitor", "drift")
UNSEEN = "a category training never saw"


@pytest.fixture(scope="module")
def rows(settings: Settings) -> pd.DataFrame:
    return pd.read_csv(settings.local_data_path)


@pytest.fixture(scope="module")
def features(settings: Settings) -> dict[str, list[str]]:
    return {kind: settings.config["features"][kind] for kind in ("numeric", "categorical")}


def thresholds(settings: Settings) -> object:
    return drift.Thresholds(**settings.setting("monitoring", "thresholds"))


def held_back(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random fifth of the rows, and the rest: the same distribution."""
    slice_ = rows.sample(frac=0.2, random_state=7)
    return rows.drop(index=slice_.index), slice_


def shifted(rows: pd.DataFrame, features: dict[str, list[str]]) -> tuple[pd.DataFrame, list[str]]:
    """A copy with its first two numeric features moved by a standard deviation and a half, and a third of its first
    categorical feature's values replaced by a category training never saw; the names of what was changed."""
    copy = rows.copy()
    changed = [name for name in features["numeric"] if copy[name].std() > 0][:2]
    for name in changed:
        copy[name] = copy[name] + 1.5 * copy[name].std()
    if features["categorical"]:
        name = features["categorical"][0]
        copy[name] = copy[name].astype(object)
        copy.loc[copy.sample(frac=1 / 3, random_state=3).index, name] = UNSEEN
        changed.append(name)
    return copy, changed


def column_drifts(reference: pd.DataFrame, batch: pd.DataFrame, features: dict, limits: object) -> dict[str, object]:
    found = {name: drift.numeric_drift(name, reference[name], batch[name], limits) for name in features["numeric"]}
    for name in features["categorical"]:
        found[name] = drift.categorical_drift(name, reference[name], batch[name], limits)
    return found


def test_the_psi_is_zero_for_the_same_shares_and_follows_its_formula() -> None:
    assert drift.population_stability_index(np.array([10, 30, 60]), np.array([20, 60, 120])) == pytest.approx(0.0)
    expected = (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5)
    assert drift.population_stability_index(np.array([50, 50]), np.array([90, 10])) == pytest.approx(expected)


def test_a_held_back_slice_of_the_data_does_not_drift(settings: Settings, rows: pd.DataFrame, features: dict) -> None:
    reference, slice_ = held_back(rows)
    found = column_drifts(reference, slice_, features, thresholds(settings))
    # A PSI alone can come close to its threshold on a slice this small (10 bins, a few hundred rows): the test's
    # p-value is what keeps chance from being called drift.
    assert [name for name, column in found.items() if column.drifted] == []
    assert not any(column.missing_rate_increased or column.unseen_too_many for column in found.values())


def test_a_shifted_copy_drifts_in_exactly_the_shifted_features(
    settings: Settings, rows: pd.DataFrame, features: dict
) -> None:
    reference, slice_ = held_back(rows)
    batch, changed = shifted(slice_, features)
    found = column_drifts(reference, batch, features, thresholds(settings))
    assert [name for name, column in found.items() if column.drifted] == changed
    for name in changed[:2]:
        assert found[name].test == "ks" and found[name].p_value < 1e-6
    for name in features["categorical"][:1]:
        assert found[name].test == "chi2" and found[name].js_distance > 0
        assert found[name].unseen_too_many and found[name].unseen_values == (UNSEEN,)
        assert found[name].unseen_rate == pytest.approx(1 / 3, abs=0.01)


def test_missing_values_are_left_out_of_the_distribution_and_reported_on_their_own(settings: Settings) -> None:
    reference = pd.Series(np.arange(1000.0))
    batch = reference.sample(frac=0.4, random_state=1).reset_index(drop=True)
    batch[: len(batch) // 2] = np.nan  # half the batch missing: its other half still comes from the same values
    column = drift.numeric_drift("x", reference, batch, thresholds(settings))
    assert column.missing_rate_reference == 0.0 and column.missing_rate_batch == 0.5
    assert column.missing_rate_increased
    assert not column.drifted


def test_every_threshold_is_a_pipeline_input_the_component_and_its_script_take(settings: Settings) -> None:
    component = load_monitor_components()["monitor"]
    assert set(settings.setting("monitoring", "thresholds")) == set(MONITORING_THRESHOLDS)
    assert set(MONITORING_THRESHOLDS) <= set(component.inputs)
    monitor = load_script("monitor", "monitor")
    flags = set(monitor.build_parser()._option_string_actions)
    assert {"--" + name.replace("_", "-") for name in MONITORING_THRESHOLDS} <= flags


def test_thresholds_must_be_exactly_the_known_ones(project: Settings) -> None:
    config = {**project.config, "monitoring": {**project.config["monitoring"], "thresholds": {"psi": 0.2}}}
    broken = Settings(project.root, config, project.compute, project.data_asset)
    with pytest.raises(SettingsError, match=r"monitoring\.thresholds must set exactly psi, p_value"):
        local_monitor_pipeline(broken, Path("m"), Path("b"))


def test_the_monitoring_graph_keeps_the_contracts_check_verifies(settings: Settings, tmp_path: Path) -> None:
    job = local_monitor_pipeline(settings, tmp_path, settings.local_data_path)
    assert job._validate().passed
    nodes = command_nodes(serialised(job))
    assert set(nodes) == {"data_prep", "evaluate", "score", "monitor"}
    step = step_from_node("monitor", nodes["monitor"], component_folders(job)["monitor"])
    spec = settings.root / "components" / "monitor" / "monitor.yml"
    assert command_findings(step, spec) == [] and script_findings(step, spec) == []
    assert nodes["monitor"]["inputs"]["predictions"]["path"] == "${{parent.jobs.score.outputs.predictions}}"
    assert nodes["data_prep"]["inputs"]["validation_size"] == 0.0  # the reference is the whole train split


# --- Azure ML: the job and its schedule, offline -------------------------------------------------------------------


def test_the_azure_monitoring_job_reads_the_registered_model_the_data_asset_and_the_batch_path(
    settings: Settings,
) -> None:
    job = azure_monitor_pipeline(settings)
    assert job._validate().passed
    inputs = serialised(job)["inputs"]
    assert inputs["model"] == {"type": "mlflow_model", "path": registered_model_uri(settings)}
    assert inputs["training_data"]["path"] == settings.data_asset_uri
    assert inputs["batch"]["path"] == settings.setting("monitoring", "batch_path")
    assert {name: inputs[name] for name in MONITORING_THRESHOLDS} == settings.setting("monitoring", "thresholds")
    assert serialised(job)["settings"]["force_rerun"] is True  # new rows behind the same path: nothing reused


def test_the_schedule_spec_loads_with_the_recurrence_of_config_yml_and_serialises(settings: Settings) -> None:
    job = azure_monitor_pipeline(settings)
    schedule = monitor_schedule(settings, job)
    assert isinstance(schedule, JobSchedule) and schedule.create_job is job
    assert isinstance(schedule.trigger, RecurrenceTrigger)
    recurrence = settings.setting("monitoring", "schedule")
    assert (schedule.trigger.frequency, schedule.trigger.interval) == (recurrence["frequency"], recurrence["interval"])
    assert schedule.trigger.schedule.hours == recurrence["hours"]
    body = schedule._to_rest_object().as_dict()  # the body azure-ai-ml PUTs to .../schedules/<name>
    assert body["properties"]["trigger"]["triggerType"] == "Recurrence"
    assert body["properties"]["trigger"]["frequency"] == recurrence["frequency"]
    assert body["properties"]["action"]["actionType"] == "CreateJob"
    assert body["properties"]["action"]["jobDefinition"]["jobType"] == "Pipeline"


def test_a_recurrence_azure_ml_refuses_is_one_line_naming_the_spec(project: Settings) -> None:
    config = {**project.config, "monitoring": {**project.config["monitoring"], "schedule": {"frequency": "fortnight"}}}
    broken = Settings(project.root, config, project.compute, project.data_asset)
    expected = r"monitor-schedule\.yml with config\.yml's monitoring\.schedule: .*fortnight"
    with pytest.raises(SettingsError, match=expected):
        monitor_schedule(broken, azure_monitor_pipeline(project))


def test_submit_and_schedule_bring_the_workspace_in_line_then_send_the_job(settings: Settings) -> None:
    client = RecordingClient()
    submit_monitoring(settings, client, "azureml:new-rows:2", stream=False)
    assert {component.name for component in client.components.created} == {
        component.name for component in load_monitor_components().values()
    }
    (job,) = client.jobs.created
    assert isinstance(job, PipelineJob) and job.inputs["batch"].result().path == "azureml:new-rows:2"
    client.schedules = RecordingOperations()
    schedule_monitoring(settings, client, "azureml:new-rows:2")  # a datastore path's batch: the template's tests
    (schedule,) = client.schedules.created
    assert schedule.name == yaml.safe_load((settings.root / "aml" / "monitor-schedule.yml").read_text())["name"]
    assert schedule.create_job.inputs["batch"].result().path == "azureml:new-rows:2"


def test_schedule_is_for_azure_only(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["monitor", "--local", "--schedule"]) == 2
    assert capsys.readouterr().err.startswith("error: --schedule is for --azure")


# --- on this machine ------------------------------------------------------------------------------------------------


def batch_file(frame: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "batch.csv", index=False)
    return folder / "batch.csv"


def report_of(result: RunResult) -> dict:
    return json.loads((result.outputs["report"] / "report.json").read_text())


def test_a_held_back_slice_passes_monitoring_with_the_quality_beside_the_test_metrics(
    completed_run: tuple[Settings, RunResult], step_host: StepHost, rows: pd.DataFrame, tmp_path: Path
) -> None:
    settings, training = completed_run
    batch = batch_file(held_back(rows)[1], tmp_path)
    result = local_runs.monitor_locally(settings, training.outputs["model"], batch, host=step_host)
    assert [step.status for step in result.steps if step.name == "monitor"] == ["completed"]
    report = report_of(result)
    assert report["alerts"] == [] and report["drifted_features"] == []
    assert report["rows"]["batch"] == len(held_back(rows)[1])
    test_metrics = json.loads((training.outputs["report"] / "metrics.json").read_text())
    assert report["quality"]["test_rmse"] == pytest.approx(test_metrics["rmse"])
    assert report["quality"]["rmse"] > 0 and "r2" in report["quality"]
    assert (result.outputs["report"] / "drift.png").stat().st_size > 0


def test_a_shifted_copy_without_its_target_fails_monitoring_naming_the_shifted_features(
    completed_run: tuple[Settings, RunResult],
    step_host: StepHost,
    rows: pd.DataFrame,
    features: dict,
    tmp_path: Path,
) -> None:
    settings, training = completed_run
    batch, changed = shifted(held_back(rows)[1], features)
    batch = batch.drop(columns=[settings.setting("target_column")])
    with pytest.raises(StepFailed) as failure:
        local_runs.monitor_locally(settings, training.outputs["model"], batch_file(batch, tmp_path), host=step_host)
    assert failure.value.step == "monitor"
    log = failure.value.log.read_text()
    (error,) = [line for line in log.splitlines() if line.startswith("error:")]
    psi, p_value = (settings.setting("monitoring", "thresholds", key) for key in ("psi", "p_value"))
    named = ", ".join(repr(name) for name in changed)
    assert error.startswith(f"error: monitoring thresholds crossed: drift in {named} (PSI >= {psi} and p < {p_value})")
    if features["categorical"]:
        assert f"unseen categories above 5% of the rows in {features['categorical'][0]!r}" in error
    assert "Traceback" not in log and "batch rows with a target" not in log  # no target, no quality table
