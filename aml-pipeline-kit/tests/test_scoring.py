"""Batch scoring on this machine: the model of the latest completed local run by default, the project's CSV without
its target as the default rows, the scoring pipeline built on absolute paths and run by the local runner, and what
``score`` prints. (``score --azure``'s job: test_azure_workspace.py.)"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import TrainedProject
from projects import command, load_project

from aml_pipeline_kit.aml_graph import plan_from_job
from aml_pipeline_kit.cli import main
from aml_pipeline_kit.local_runs import UsageError, latest_local_model, local_job, rows_without_target
from aml_pipeline_kit.project import Project


@pytest.fixture(scope="module")
def project(example: Path) -> Project:
    return load_project(example)


def test_without_a_completed_run_there_is_no_default_model(project: Project) -> None:
    with pytest.raises(UsageError, match=r"no completed local run with a model in .*/runs: `make run` trains one"):
        latest_local_model(project)


@pytest.mark.slow  # trains the example
def test_the_latest_completed_local_run_provides_the_default_model(trained_example: TrainedProject) -> None:
    project = load_project(trained_example.root)
    # named by their start; other tests of the trained example add runs
    summaries = [json.loads(path.read_text()) for path in sorted(project.local_runs_dir.glob("2*/run.json"))]
    newest = [summary for summary in summaries if summary["status"] == "completed"][-1]
    assert latest_local_model(project) == Path(newest["outputs"]["model"])


def test_the_scoring_pipeline_runs_one_step_on_absolute_paths(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("model").mkdir()
    Path("rows.csv").write_text("x\n1\n")
    plan = plan_from_job(local_job(project, "scoring", model=Path("model"), data=Path("rows.csv")))
    assert [step.name for step in plan.steps] == ["score"]
    assert plan.inputs["model"] == str(tmp_path / "model")
    assert plan.inputs["data"] == str(tmp_path / "rows.csv")
    assert plan.outputs == {"predictions": ("score", "predictions")}


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.reader(handle))


def test_the_rows_to_score_are_the_csv_without_its_target_field_by_field(project: Project) -> None:
    original, scored = read_rows(project.local_data_path), read_rows(rows_without_target(project))
    target = original[0].index(project.setting("target_column"))
    assert scored == [row[:target] + row[target + 1 :] for row in original]
    assert rows_without_target(project).is_relative_to(project.local_runs_dir)


def test_scoring_on_azure_needs_data(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(example)
    assert main(["score", "--azure"]) == 2
    assert capsys.readouterr().err == (
        "error: score --azure needs --data: a data asset (azureml:<name>:<version>) or a local CSV\n"
    )


@pytest.mark.slow  # runs the scoring pipeline of the trained example
def test_score_local_predicts_every_row_of_the_csv_with_the_latest_model(
    trained_example: TrainedProject, capfd: pytest.CaptureFixture[str]
) -> None:
    project = load_project(trained_example.root)
    result = command(capfd, project.root, "score", "--local")
    assert (result.returncode, result.stderr) == (0, "")
    rows = len(read_rows(project.local_data_path)) - 1
    scored = project.local_runs_dir / "score-input" / "diabetes.csv"
    assert f"scored {rows} rows of {scored}\nwith model {latest_local_model(project)}\n" in result.stdout
    printed = result.stdout.split("predictions: ", 1)[1].splitlines()
    predictions = Path(printed[0])
    assert predictions.name == "predictions.csv"
    assert len(read_rows(predictions)) == rows + 1
    assert printed[1:] == predictions.read_text().splitlines()[:6]  # the header and the first five rows
