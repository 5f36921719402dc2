"""The pipeline as config.yml sets it (`make run`), run end to end on this machine, offline: what its steps write,
what they log to MLflow, and the model they make. How the engine runs steps (reuse, failures, interruptions) is
tested in its own suite."""

import json

import mlflow
import mlflow.pyfunc
import pandas as pd
import pytest

from aml_pipeline_kit.local_runner import RunResult
from aml_pipeline_kit.project import Project

from {{ cookiecutter.__package_name }}.parameters import AUTO, model_candidates, regressors


def trains_candidates(project: Project) -> bool:
    return project.setting("model", "type") == AUTO


def expected_steps(project: Project) -> set[str]:
    if not trains_candidates(project):
        return {"data_prep", "train", "evaluate", "register"}
    candidates = {f"train_{name}" for name in model_candidates(project)}
    return {"data_prep", *candidates, "select", "evaluate", "register"}


def trained_step(project: Project, result: RunResult) -> str:
    """The step that trained the model the run evaluated: with auto, select's winner's."""
    if not trains_candidates(project):
        return "train"
    return f"train_{json.loads((result.outputs['selection'] / 'selection.json').read_text())['winner']}"


def child_runs(project: Project, result: RunResult) -> dict[str, mlflow.entities.Run]:
    """The MLflow runs of the pipeline run's steps, by step."""
    client = mlflow.MlflowClient(project.local_tracking_uri)
    experiment_id = client.get_run(result.mlflow_run_id).info.experiment_id
    children = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{result.mlflow_run_id}'")
    return {child.info.run_name: child for child in children}


def test_the_run_writes_a_consistent_report_and_logs(completed_run: tuple[Project, RunResult]) -> None:
    project, result = completed_run
    assert result.status == "completed"
    assert {step.name for step in result.steps} == expected_steps(project)
    assert {step.status for step in result.steps} == {"completed"}
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


def test_the_model_scores_raw_rows_of_the_original_csv(completed_run: tuple[Project, RunResult]) -> None:
    project, result = completed_run
    model = mlflow.pyfunc.load_model(str(result.outputs["model"]))
    rows = pd.read_csv(project.local_data_path).drop(columns=[project.setting("target_column")]).head(50)
    predictions = model.predict(rows)
    assert len(predictions) == len(rows)
    assert pd.Series(predictions).notna().all()


def test_mlflow_has_one_pipeline_run_with_a_child_run_per_step(completed_run: tuple[Project, RunResult]) -> None:
    project, result = completed_run
    parent = mlflow.MlflowClient(project.local_tracking_uri).get_run(result.mlflow_run_id)
    assert parent.info.status == "FINISHED"
    by_step = child_runs(project, result)
    assert set(by_step) == expected_steps(project)
    trained = by_step[trained_step(project, result)]
    assert trained.data.params["model_type"] in regressors(project).REGRESSORS
    assert "rmse" in by_step["evaluate"].data.metrics
    assert all(child.info.status == "FINISHED" for child in by_step.values())


def test_auto_selects_the_best_by_cross_validation_fitted_on_the_whole_train_split(
    completed_run: tuple[Project, RunResult],
) -> None:
    project, result = completed_run
    if not trains_candidates(project):
        pytest.skip("config.yml trains a single model type")
    selection = json.loads((result.outputs["selection"] / "selection.json").read_text())
    assert list(selection["candidates"]) == model_candidates(project)
    scores = {name: values["cv_rmse"] for name, values in selection["candidates"].items()}
    assert selection["winner"] == min(scores, key=scores.get)
    folds = project.setting("cv_folds")
    for values in selection["candidates"].values():
        assert len(values["fold_rmse"]) == values["folds"] == folds
        assert values["cv_rmse"] == pytest.approx(sum(values["fold_rmse"]) / folds)
        assert values["cv_rmse_std"] == pytest.approx(pd.Series(values["fold_rmse"]).std())  # the folds differ
    model = mlflow.pyfunc.load_model(str(result.outputs["model"])).metadata.metadata
    assert model["model_type"] == selection["winner"]
    assert model["hyperparameters"] == selection["candidates"][selection["winner"]]["hyperparameters"]
    train_rows = len(pd.read_parquet(result.run_dir / "data_prep" / "prepped_data" / "train.parquet"))
    client, by_step = mlflow.MlflowClient(project.local_tracking_uri), child_runs(project, result)
    for name, values in selection["candidates"].items():
        run = by_step[f"train_{name}"]  # scored on the folds, then fitted on every row of the train split
        assert int(run.data.params["n_train_rows"]) == train_rows
        assert run.data.metrics["cv_rmse_std"] == pytest.approx(values["cv_rmse_std"])
        logged = client.get_metric_history(run.info.run_id, "cv_fold_rmse")
        assert [entry.value for entry in logged] == pytest.approx(values["fold_rmse"])
    select = by_step["select"]
    assert select.data.tags["winner"] == selection["winner"]
    assert {f"{name}_cv_rmse_std" for name in scores} <= set(select.data.metrics)
