"""Batch scoring (`make score`): the scoring graph run on this machine with the model of the project's own run, on its
own rows. How the engine finds a model and submits the job to Azure ML is tested in its own suite."""

from dataclasses import replace
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow.models import Model

from aml_pipeline_kit.local_runner import RunResult, StepFailed
from aml_pipeline_kit.local_runs import rows_without_target, score_locally
from aml_pipeline_kit.project import Project
from aml_pipeline_kit.step_host import StepHost

# A random forest sums its trees' predictions in parallel, in no fixed order: the last bits may differ run to run.
SAME = 1e-12


@pytest.fixture(scope="module")
def model(completed_run: tuple[Project, RunResult]) -> Path:
    return completed_run[1].outputs["model"]


@pytest.fixture(scope="module")
def features(model: Path) -> dict:
    return Model.load(str(model)).metadata["features"]


def predictions_of(result: RunResult) -> pd.DataFrame:
    """The predictions of every mini-batch, in the order of the files they came from."""
    files = sorted(result.outputs["predictions"].glob("*.csv"))
    predictions = pd.concat([pd.read_csv(path, float_precision="round_trip") for path in files], ignore_index=True)
    return predictions.sort_values(["file", "row"], ignore_index=True) if "file" in predictions else predictions


def test_local_scoring_predicts_the_csv_without_its_target_as_the_model_does(
    scratch: Project, model: Path, step_host: StepHost
) -> None:
    target = scratch.setting("target_column")
    data = rows_without_target(scratch)
    rows = pd.read_csv(data)
    assert list(rows.columns) == list(pd.read_csv(scratch.local_data_path, nrows=0).columns.drop(target))
    result = score_locally(scratch, model, data, host=step_host)
    assert [step.status for step in result.steps] == ["completed"]
    predictions = predictions_of(result)
    assert list(predictions.columns) == ["file", "row", f"predicted_{target}"]
    assert set(predictions["file"]) == {data.name}
    assert predictions["row"].tolist() == list(range(len(rows)))
    expected = mlflow.pyfunc.load_model(str(model)).predict(rows)
    assert predictions[f"predicted_{target}"].tolist() == pytest.approx(list(expected), rel=SAME)


def test_the_id_column_of_config_yml_identifies_the_predictions(
    scratch: Project, model: Path, step_host: StepHost, tmp_path: Path
) -> None:
    rows = pd.read_csv(rows_without_target(scratch)).head(20)
    rows.insert(0, "record", [f"r-{number}" for number in range(len(rows))])
    rows.to_csv(tmp_path / "rows.csv", index=False)
    scoring = {**scratch.config["scoring"], "id_column": "record"}
    project = replace(scratch, config={**scratch.config, "scoring": scoring})
    predictions = predictions_of(score_locally(project, model, tmp_path / "rows.csv", host=step_host))
    assert predictions.columns[0] == "record"
    assert predictions["record"].tolist() == rows["record"].tolist()


def test_rows_the_model_cannot_score_fail_the_step_with_one_line_naming_the_columns(
    scratch: Project, model: Path, features: dict, step_host: StepHost, tmp_path: Path
) -> None:
    rows = pd.read_csv(rows_without_target(scratch)).head(20)
    missing = [*features["numeric"], *features["categorical"]][0]
    rows = rows.drop(columns=[missing])
    texts = [name for name in features["numeric"] if name != missing][:1]
    rows[texts] = rows[texts].astype(object)
    rows.loc[3, texts] = "unknown"
    rows.to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(StepFailed) as failure:
        score_locally(scratch, model, tmp_path / "rows.csv", host=step_host)
    assert failure.value.step == "score"
    log = failure.value.log.read_text().splitlines()
    (failed,) = [line for line in log if "failed after" in line]  # the mini-batch's line, after its last try
    assert "rows.csv: the model cannot score these rows: " in failed
    assert f"missing feature column {missing!r}" in failed
    for name in texts:
        assert f"column {name!r} must be numeric but holds 'unknown' in 1 row(s)" in failed
    assert log[-1].startswith("error: 1 mini-batch(es) failed, above mini_batch_error_threshold 0")
