"""Batch scoring on this machine: the model of the latest completed local run by default, the project's CSV without
its target as the default rows, the scoring pipeline built on absolute paths and run by the local runner, and what
``score`` prints. (``score --azure``'s job: test_azure_workspace.py.)"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import TrainedProject
from projects import command, load_project, rows_in_files

from aml_pipeline_kit import azure_ml
from aml_pipeline_kit.aml_graph import plan_from_job
from aml_pipeline_kit.cli import main
from aml_pipeline_kit.local_runs import (
    UsageError,
    latest_local_model,
    local_job,
    local_model_and_rows,
    rows_without_target,
)
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


def rows_file(where: Path) -> Path:
    (where / "rows.csv").write_text("x\n1\n")
    return where / "rows.csv"


def rows_folder(where: Path) -> Path:
    (where / "rows").mkdir()
    rows_file(where / "rows")
    return where / "rows"


def rows_table(where: Path) -> Path:
    table = rows_folder(where)
    (table / "MLTable").write_text("paths:\n  - file: ./rows.csv\ntransformations:\n  - read_delimited: {}\n")
    return table


@pytest.mark.parametrize(
    ("make_rows", "data_type"), [(rows_file, "uri_file"), (rows_folder, "uri_folder"), (rows_table, "mltable")]
)
def test_the_scoring_pipeline_runs_one_step_on_absolute_paths_of_a_file_a_folder_or_an_mltable(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_rows: Callable[[Path], Path], data_type: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("model").mkdir()
    data = make_rows(Path()).relative_to(Path())
    job = local_job(project, "scoring", model=Path("model"), data=data)
    assert job.inputs["data"].type == data_type
    plan = plan_from_job(job)
    assert [step.name for step in plan.steps] == ["score"]
    assert plan.steps[0].inputs["data"].type == data_type
    assert plan.inputs["model"] == str(tmp_path / "model")
    assert plan.inputs["data"] == str(tmp_path / data)
    assert plan.outputs == {"predictions": ("score", "predictions")}


def test_rows_to_score_must_exist(project: Project, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "MLmodel").write_text("")
    with pytest.raises(UsageError, match=r"^--data .*/gone: no such file or folder \(a CSV, a folder of files or an"):
        local_model_and_rows(project, str(tmp_path / "model"), str(tmp_path / "gone"), lambda: tmp_path)


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


def test_score_azure_dry_run_serialises_the_parallel_scoring_job_without_contacting_azure(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_client(project: Project) -> None:
        raise AssertionError("score --azure --dry-run contacted Azure ML")

    monkeypatch.setattr(azure_ml, "ml_client", no_client)
    monkeypatch.chdir(example)
    (tmp_path / "batch").mkdir()
    (tmp_path / "batch" / "part-1.csv").write_text("x\n1\n")
    assert main(["score", "--azure", "--dry-run", "--data", str(tmp_path / "batch")]) == 0
    out = capsys.readouterr().out
    assert "would create, or update to match its spec, each of:" in out
    job = yaml.safe_load(out.split("pipeline job to experiment", 1)[1].split("\n", 1)[1])
    assert job["inputs"]["data"]["type"] == "uri_folder"  # a local folder, which azure-ai-ml would upload
    score = job["jobs"]["score"]
    parallel = load_project(example).setting("scoring", "parallel")
    assert (score["type"], score["task"]["type"], score["task"]["entry_script"]) == (
        "parallel",
        "run_function",
        "score.py",
    )
    assert score["input_data"] == "${{inputs.data}}"
    assert score["mini_batch_size"] == str(parallel["mini_batch_size"])
    assert score["resources"]["instance_count"] == parallel["instance_count"]
    assert score["retry_settings"] == {"max_retries": parallel["retries"], "timeout": parallel["timeout"]}


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
    predictions = Path(printed[0].removesuffix(" (a CSV per mini-batch)"))
    [written] = predictions.glob("*.csv")  # one file: one mini-batch
    assert len(read_rows(written)) == rows + 1
    assert printed[1:] == written.read_text().splitlines()[:6]  # the header and the first five rows


@pytest.mark.slow  # runs the scoring pipeline of the trained example
def test_score_local_predicts_every_row_of_a_folder_of_files_a_mini_batch_each(
    trained_example: TrainedProject, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = load_project(trained_example.root)
    # three rows in the first file: it shows them all
    folder = rows_in_files(project.local_data_path, tmp_path / "batch", 3, ("b.csv", "c.csv"))
    rows = len(project.local_data_path.read_text().splitlines()) - 1
    result = command(capfd, project.root, "score", "--local", "--data", str(folder))
    assert (result.returncode, result.stderr) == (0, "")
    assert f"scored {rows} rows of {folder}\n" in result.stdout
    printed = result.stdout.split("predictions: ", 1)[1].splitlines()
    predictions = Path(printed[0].removesuffix(" (a CSV per mini-batch)"))
    written = sorted(predictions.glob("*.csv"))
    assert len(written) == 2  # config.yml's mini_batch_size: one file each
    shown = [line for file in written for line in file.read_text().splitlines()[1:]][:5]
    assert printed[1:] == [written[0].read_text().splitlines()[0], *shown]  # the header, the first five rows of all
    assert {row[0] for file in written for row in read_rows(file)[1:]} == {"b.csv", "c.csv"}
