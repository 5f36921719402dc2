"""Batch scoring's parallel step: the entry script (components/score/score.py) as Azure ML and the local runner call
it, ``init()`` once then ``run()`` per mini-batch, and the parallel node the scoring graph gives Azure ML, with
config.yml's settings. How the local runner cuts mini-batches and runs workers is tested in the engine's suite."""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import mlflow.pyfunc
import pandas as pd
import pytest
import yaml
from azure.ai.ml import Input
from conftest import load_script

from aml_pipeline_kit.azure_ml import job_yaml
from aml_pipeline_kit.config_files import SettingsError
from aml_pipeline_kit.local_runner import RunResult
from aml_pipeline_kit.project import Project, model_input

from diabetes_blood_pressure.parameters import encoded
from diabetes_blood_pressure.pipeline import parallel_settings

SAME = 1e-12  # a random forest sums its trees in no fixed order: the last bits may differ


@pytest.fixture(scope="module")
def entry() -> ModuleType:
    return load_script("score", "score")


@pytest.fixture(scope="module")
def model(completed_run: tuple[Project, RunResult]) -> Path:
    return completed_run[1].outputs["model"]


@pytest.fixture(scope="module")
def rows(completed_run: tuple[Project, RunResult]) -> pd.DataFrame:
    project = completed_run[0]
    return pd.read_csv(project.local_data_path).drop(columns=[project.setting("target_column")]).head(30)


@pytest.fixture
def worker(entry: ModuleType, model: Path, tmp_path: Path) -> Iterator[Path]:
    """The entry script initialised as a worker is, with the runner's own options beside the program arguments; the
    folder its predictions go to."""
    predictions = tmp_path / "predictions"
    program = ["--model", str(model), "--id-column", encoded(None), "--predictions", str(predictions)]
    entry.init([*program, "--logging_level", "INFO"])
    yield predictions
    entry.SCORER = None


def written(predictions: Path) -> pd.DataFrame:
    return pd.concat([pd.read_csv(path) for path in sorted(predictions.glob("*.csv"))], ignore_index=True)


def test_a_mini_batch_of_csv_and_parquet_files_is_scored_as_the_model_predicts_each_row(
    entry: ModuleType, worker: Path, model: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    rows.head(10).to_csv(tmp_path / "first.csv", index=False)
    rows.tail(20).to_parquet(tmp_path / "second.parquet", index=False)
    result = entry.run([str(tmp_path / "first.csv"), str(tmp_path / "second.parquet")])
    assert result == ["first.csv: 10 rows scored", "second.parquet: 20 rows scored"]
    predictions = written(worker)
    target = entry.SCORER.features["target"]
    assert list(predictions.columns) == ["file", "row", f"predicted_{target}"]
    assert predictions["file"].tolist() == ["first.csv"] * 10 + ["second.parquet"] * 20
    assert predictions["row"].tolist() == [*range(10), *range(20)]
    expected = mlflow.pyfunc.load_model(str(model)).predict(pd.concat([rows.head(10), rows.tail(20)]))
    assert predictions[f"predicted_{target}"].tolist() == pytest.approx(list(expected), rel=SAME)


def test_a_retried_mini_batch_rewrites_its_own_file_and_a_table_mini_batch_keeps_its_index(
    entry: ModuleType, worker: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    rows.to_csv(tmp_path / "rows.csv", index=False)
    entry.run([str(tmp_path / "rows.csv")])
    entry.run([str(tmp_path / "rows.csv")])
    table = rows.iloc[5:12]
    returned = entry.run(table)
    assert len(returned) == len(table)  # one item per row: what Azure ML counts against error_threshold
    assert len(list(worker.glob("*.csv"))) == 2
    assert len(written(worker)) == len(rows) + len(table)
    assert returned["row"].tolist() == list(range(5, 12))
    assert not list(worker.glob(".*"))  # no partial file left behind


def test_the_id_column_and_the_target_are_carried_into_the_predictions(
    entry: ModuleType, model: Path, completed_run: tuple[Project, RunResult], tmp_path: Path
) -> None:
    project = completed_run[0]
    labelled = pd.read_csv(project.local_data_path).head(8)
    labelled.insert(0, "record", [f"r-{number}" for number in range(len(labelled))])
    labelled.to_csv(tmp_path / "labelled.csv", index=False)
    entry.init(["--model", str(model), "--id-column", encoded("record"), "--predictions", str(tmp_path / "out")])
    entry.run([str(tmp_path / "labelled.csv")])
    predictions = written(tmp_path / "out")
    target = project.setting("target_column")
    assert list(predictions.columns) == ["record", target, f"predicted_{target}"]
    assert predictions["record"].tolist() == labelled["record"].tolist()
    assert predictions[target].tolist() == labelled[target].tolist()


def test_rows_the_model_cannot_score_fail_the_mini_batch_in_one_line_naming_the_file_and_columns(
    entry: ModuleType, worker: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    features = entry.SCORER.features
    missing = [*features["numeric"], *features["categorical"]][0]
    broken = rows.drop(columns=[missing])
    texts = [name for name in features["numeric"] if name != missing][:1]
    broken[texts] = broken[texts].astype(object)
    broken.loc[3, texts] = "unknown"
    broken.to_csv(tmp_path / "broken.csv", index=False)
    with pytest.raises(entry.ScoringError) as failure:
        entry.run([str(tmp_path / "broken.csv")])
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("broken.csv: the model cannot score these rows: ")
    assert f"missing feature column {missing!r}" in message
    assert f"column {texts[0]!r} must be numeric but holds 'unknown' in 1 row(s)" in message
    assert not worker.exists()  # nothing written for a failed mini-batch


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.txt", "a,b\n1,2\n", r"notes\.txt: not a CSV or Parquet file"),
        ("empty.csv", "", r"empty\.csv: the file is empty, a header row is required"),
        ("header.csv", "a,b\n", r"header\.csv: the file has a header but no rows to score"),
        ("fake.parquet", "not parquet", r"fake\.parquet: not a readable Parquet file"),
    ],
)
def test_unreadable_files_fail_in_one_line(
    entry: ModuleType, worker: Path, tmp_path: Path, name: str, content: str, expected: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(entry.ScoringError, match=expected):
        entry.run([str(tmp_path / name)])


def test_the_id_column_argument_must_be_a_column_name_or_null(entry: ModuleType) -> None:
    assert entry.id_column_name(encoded(None)) is None
    assert entry.id_column_name(encoded("id --help")) == "id --help"
    with pytest.raises(SystemExit):
        entry.build_parser().parse_args(["--model", "m", "--predictions", "p", "--id-column", encoded(["a"])])


def azure_job(project: Project, data_type: str) -> dict:
    """The scoring job `score --azure` submits, as azure-ai-ml serialises it, checked by azure-ai-ml offline."""
    data = Input(type=data_type, path="azureml://datastores/workspaceblobstore/paths/batch/")
    job = project.pipeline("scoring")(project, model_input(None, project), data)
    validation = job._validate()
    assert validation.passed, validation.error_messages
    return yaml.safe_load(job_yaml(job))


@pytest.mark.parametrize("data_type", ["uri_folder", "mltable", "uri_file"])
def test_the_serialised_scoring_job_has_a_parallel_node_with_the_settings_of_config_yml(
    project: Project, data_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project.root)  # parallel_run_function takes the working folder as its base path
    settings = project.setting("scoring", "parallel")
    job = azure_job(project, data_type)
    assert job["inputs"]["data"]["type"] == data_type
    node = job["jobs"]["score"]
    assert node["type"] == "parallel"
    assert node["component"]["inputs"]["data"]["type"] == data_type
    assert node["input_data"] == "${{inputs.data}}"
    assert node["mini_batch_size"] == str(settings["mini_batch_size"])
    assert node["resources"]["instance_count"] == settings["instance_count"]
    assert node["max_concurrency_per_instance"] == settings["max_concurrency_per_instance"]
    assert node["error_threshold"] == settings["error_threshold"]
    assert node["mini_batch_error_threshold"] == settings["mini_batch_error_threshold"]
    assert node["retry_settings"] == {"max_retries": settings["retries"], "timeout": settings["timeout"]}
    assert node["task"]["type"] == "run_function"
    assert node["task"]["entry_script"] == "score.py"
    assert Path(node["task"]["code"]) == project.root / "components" / "score"


def with_parallel(project: Project, **changed: object) -> Project:
    scoring = project.config["scoring"]
    config = {**project.config, "scoring": {**scoring, "parallel": {**scoring["parallel"], **changed}}}
    return replace(project, config=config)


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        ({"mini_batch_size": "ten"}, r"scoring\.parallel\.mini_batch_size 'ten' must be a number of files"),
        ({"mini_batch_size": 0}, r"mini_batch_size 0 must be a number of files \(e\.g\. 10\) or a size"),
        ({"instance_count": 0}, r"scoring\.parallel\.instance_count 0 must be a whole number, 1 or more"),
        ({"max_concurrency_per_instance": 1.5}, r"max_concurrency_per_instance 1\.5 must be a whole number"),
        ({"error_threshold": -2}, r"error_threshold -2 must be a whole number, -1 or more"),
        ({"retries": True}, r"retries True must be a whole number, 1 or more"),
        ({"timeout": 0}, r"timeout 0 must be a whole number, 1 or more"),
        ({"instance_count": 1000}, r"instance_count 1000 is more than the cluster's max_instances"),
        ({"workers": 2}, r"scoring\.parallel must set exactly mini_batch_size, instance_count, .* \(found: .*workers"),
    ],
)
def test_parallel_settings_are_refused_in_one_line(project: Project, changed: dict, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected) as refused:
        parallel_settings(with_parallel(project, **changed))
    assert "\n" not in str(refused.value)


def test_a_size_or_a_file_count_is_a_mini_batch_size(project: Project) -> None:
    for size in ("1", 10, "10MB", "512kb", "1 GB"):
        assert parallel_settings(with_parallel(project, mini_batch_size=size))["mini_batch_size"] == size
