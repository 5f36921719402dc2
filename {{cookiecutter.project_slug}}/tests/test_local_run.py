"""The default pipeline, run end to end on this machine, offline."""

import json
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pandas as pd
import pytest

from aml_pipeline_kit.local_runner import RunResult, StepFailed
from aml_pipeline_kit.step_host import StepHost

from {{ cookiecutter.__package_name }}.local_runs import run_pipeline_locally
from {{ cookiecutter.__package_name }}.settings import Settings


def test_the_run_writes_a_consistent_report_and_logs(completed_run: tuple[Settings, RunResult]) -> None:
    _, result = completed_run
    assert result.status == "completed"
    assert [step.status for step in result.steps] == ["completed"] * 4
    decision = json.loads((result.outputs["decision"] / "decision.json").read_text())
    assert decision["reason"]
    assert decision["registered"] == (decision["version"] is not None)
    metrics = json.loads((result.outputs["report"] / "metrics.json").read_text())
    assert set(metrics) >= {"rmse", "mae", "r2", "baseline_rmse", "baseline_mae", "baseline_r2", "n_test_rows"}
    assert 0 < metrics["mae"] <= metrics["rmse"]
    assert metrics["baseline_r2"] <= 0 < metrics["baseline_rmse"]  # a constant cannot explain any variance
    assert metrics["n_train_rows"] > metrics["n_test_rows"] > 0
    assert (result.outputs["report"] / "predicted_vs_actual.png").stat().st_size > 0
    for step in result.steps:
        assert (result.run_dir / step.name / "step.log").is_file()
    summary = json.loads((result.run_dir / "run.json").read_text())
    assert summary["status"] == "completed"


def test_the_model_scores_raw_rows_of_the_original_csv(completed_run: tuple[Settings, RunResult]) -> None:
    settings, result = completed_run
    model = mlflow.pyfunc.load_model(str(result.outputs["model"]))
    rows = pd.read_csv(settings.local_data_path).drop(columns=[settings.setting("target_column")]).head(50)
    predictions = model.predict(rows)
    assert len(predictions) == len(rows)
    assert pd.Series(predictions).notna().all()


def test_mlflow_has_one_pipeline_run_with_a_child_run_per_step(completed_run: tuple[Settings, RunResult]) -> None:
    settings, result = completed_run
    client = mlflow.MlflowClient(settings.local_tracking_uri)
    parent = client.get_run(result.mlflow_run_id)
    assert parent.info.status == "FINISHED"
    experiment_id = parent.info.experiment_id
    children = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{result.mlflow_run_id}'")
    by_step = {child.info.run_name: child for child in children}
    assert set(by_step) == {"data_prep", "train", "evaluate", "register"}
    assert by_step["train"].data.params["model_type"] in settings.regressors.REGRESSORS
    assert "rmse" in by_step["evaluate"].data.metrics
    assert all(child.info.status == "FINISHED" for child in children)


def test_a_second_run_reuses_every_step_and_a_script_change_reruns_downstream(
    project: Settings, step_host: StepHost, single_model: dict[str, str]
) -> None:
    first = run_pipeline_locally(project, single_model, host=step_host)
    second = run_pipeline_locally(project, single_model, host=step_host)
    # register is not deterministic (it depends on the registry), so it runs every time, as on Azure ML
    assert [step.status for step in second.steps] == ["reused", "reused", "reused", "completed"]
    assert all(step.reused_from == first.run_id for step in second.steps[:3])
    assert (second.outputs["report"] / "metrics.json").read_text() == (
        first.outputs["report"] / "metrics.json"
    ).read_text()
    train_script = project.root / "components" / "train" / "train.py"
    train_script.write_text(train_script.read_text() + "\n# a change to the step's code\n")
    third = run_pipeline_locally(project, single_model, host=step_host)
    assert [step.status for step in third.steps] == ["reused", "completed", "completed", "completed"]


def test_a_broken_step_fails_named_with_its_message(
    project: Settings, step_host: StepHost, single_model: dict[str, str]
) -> None:
    with pytest.raises(StepFailed) as failure:
        run_pipeline_locally(project, {**single_model, "target_column": "NoSuchColumn"}, host=step_host)
    assert failure.value.step == "data_prep"
    assert "target column 'NoSuchColumn' not found" in failure.value.last_line()
    run_dir = failure.value.log.parent.parent
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["status"] == "failed"
    assert [(step["name"], step["status"]) for step in summary["steps"]] == [("data_prep", "failed")]
    assert not (run_dir / "data_prep" / "prepped_data").exists()
    parent = mlflow.MlflowClient(project.local_tracking_uri).get_run(summary["mlflow_run_id"])
    assert parent.info.status == "FAILED"


def test_a_failing_later_step_leaves_the_earlier_steps_outputs(
    project: Settings, step_host: StepHost, single_model: dict[str, str]
) -> None:
    evaluate_script = project.root / "components" / "evaluate" / "evaluate.py"
    evaluate_script.write_text(evaluate_script.read_text().replace("def main(", "def main_unused(", 1))
    with pytest.raises(StepFailed) as failure:
        run_pipeline_locally(project, single_model, host=step_host)
    assert failure.value.step == "evaluate"
    run_dir: Path = failure.value.log.parent.parent
    assert (run_dir / "data_prep" / "prepped_data" / "train.parquet").is_file()
    assert (run_dir / "train" / "model" / "MLmodel").is_file()
    assert not (run_dir / "evaluate" / "report").exists()
    assert failure.value.last_line().startswith("NameError")


def test_auto_selects_the_best_on_validation_then_refits_it_on_the_whole_train_split(
    project: Settings, step_host: StepHost
) -> None:
    result = run_pipeline_locally(project, {"model_type": "auto"}, host=step_host)
    candidates = project.model_candidates()
    assert {step.name for step in result.steps} == {
        "data_prep",
        *(f"train_{name}" for name in candidates),
        "select",
        "refit",
        "evaluate",
        "register",
    }
    selection = json.loads((result.outputs["selection"] / "selection.json").read_text())
    assert list(selection["candidates"]) == candidates
    scores = {name: values["validation_rmse"] for name, values in selection["candidates"].items()}
    assert selection["winner"] == min(scores, key=scores.get)
    prepped = result.run_dir / "data_prep" / "prepped_data"
    train_rows, validation_rows = (
        len(pd.read_parquet(prepped / f"{name}.parquet")) for name in ("train", "validation")
    )
    refit = mlflow.pyfunc.load_model(str(result.outputs["model"])).metadata.metadata
    assert refit["model_type"] == selection["winner"]
    assert refit["hyperparameters"] == selection["candidates"][selection["winner"]]["hyperparameters"]
    client = mlflow.MlflowClient(project.local_tracking_uri)
    runs = client.search_runs([client.get_run(result.mlflow_run_id).info.experiment_id])
    rows = {
        run.info.run_name: int(run.data.params["n_train_rows"]) for run in runs if "n_train_rows" in run.data.params
    }
    assert rows[f"train_{selection['winner']}"] == train_rows  # chosen on rows it never saw...
    assert rows["refit"] == train_rows + validation_rows  # ...then trained on every row of the train split
