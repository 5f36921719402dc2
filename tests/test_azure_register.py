"""The render's register step as Azure ML runs it: its command line, the real mlflow + azureml-mlflow +
azure-storage-blob, against the workspace simulated at HTTP level (aml_pipeline_kit.testing.azure_fake)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aml_pipeline_kit.testing.azure_fake import Failure, FakeAzureML
from azure_render import TrainedRender

# Runs the default render's pipeline first: the full suite's, not `make test-fast`'s.
pytestmark = pytest.mark.slow

MODEL_NAME = "bp-model"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeAzureML]:
    with FakeAzureML(tmp_path) as server:
        yield server


def register_on_azure(render: TrainedRender, fake: FakeAzureML, decision: Path, min_r2: float = 0.0):
    run = fake.start_job_run("diabetes-blood-pressure")
    inputs = {"model": render.model, "report": render.report, "model_name": MODEL_NAME, "min_r2": min_r2}
    result = render.run_step("register", inputs, {"decision": decision}, fake.step_environment(run))
    return run, result


def test_a_better_model_is_registered_in_the_workspace_with_its_files(
    trained_render: TrainedRender, fake: FakeAzureML, tmp_path: Path
) -> None:
    run, result = register_on_azure(trained_render, fake, tmp_path / "decision")
    assert result.returncode == 0, result.stderr[-3000:]
    decision = json.loads((tmp_path / "decision" / "decision.json").read_text())
    assert decision["registered"] is True and decision["version"] == "1"
    (version,) = fake.versions[MODEL_NAME]
    assert version.tags["test_rmse"] == str(trained_render.metrics["rmse"])
    assert version.tags["source_run_id"] == run.run_id
    uploaded = fake.files_of(version.source)
    model = trained_render.model
    local = {path.relative_to(model).as_posix(): path.read_bytes() for path in model.rglob("*") if path.is_file()}
    assert "MLmodel" in uploaded
    assert uploaded == local
    assert not any("logged-models" in path for _, path in fake.requests)
    assert run.tags["registered"] == "True"


def test_a_model_no_better_than_the_best_registered_version_is_not_registered(
    trained_render: TrainedRender, fake: FakeAzureML, tmp_path: Path
) -> None:
    better = trained_render.metrics["rmse"] - 0.5
    fake.add_version(MODEL_NAME, {"test_rmse": str(better)})
    _, result = register_on_azure(trained_render, fake, tmp_path / "decision")
    assert result.returncode == 0, result.stderr[-3000:]
    decision = json.loads((tmp_path / "decision" / "decision.json").read_text())
    assert decision["registered"] is False
    assert f"does not beat the best registered version's {better:.4f}" in decision["reason"]
    assert len(fake.versions[MODEL_NAME]) == 1


@pytest.mark.parametrize(
    ("operation", "failure"),
    [
        ("model-versions/search", Failure(403, {"error_code": "PERMISSION_DENIED", "message": "AuthorizationFailed"})),
        ("model-versions/create", Failure(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "bad source"})),
    ],
    ids=["search-fails", "create-fails"],
)
def test_a_registry_error_registers_nothing_and_fails_the_step_with_one_line(
    trained_render: TrainedRender, fake: FakeAzureML, tmp_path: Path, operation: str, failure: Failure
) -> None:
    fake.fail[operation] = failure
    _, result = register_on_azure(trained_render, fake, tmp_path / "decision")
    assert result.returncode != 0
    assert not (tmp_path / "decision" / "decision.json").exists()
    assert fake.versions.get(MODEL_NAME, []) == []
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("error: not registered: ")
    assert failure.body["message"] in line


# How the registry answers the creation of a registered model whose name exists (the fake says why both).
EXISTING_NAME_ANSWERS = {
    "400 RESOURCE_ALREADY_EXISTS": (400, "RESOURCE_ALREADY_EXISTS"),
    "409 ALREADY_EXISTS": (409, "ALREADY_EXISTS"),
}


@pytest.mark.parametrize("answer", list(EXISTING_NAME_ANSWERS))
def test_a_better_model_under_a_registered_name_becomes_its_next_version(
    trained_render: TrainedRender, fake: FakeAzureML, tmp_path: Path, answer: str
) -> None:
    fake.existing_name_answer = EXISTING_NAME_ANSWERS[answer]
    worse = trained_render.metrics["rmse"] + 0.5
    fake.add_version(MODEL_NAME, {"test_rmse": str(worse)})
    run, result = register_on_azure(trained_render, fake, tmp_path / "decision")
    assert result.returncode == 0, result.stderr[-3000:]
    decision = json.loads((tmp_path / "decision" / "decision.json").read_text())
    assert decision["registered"] is True and decision["version"] == "2"
    earlier, new = fake.versions[MODEL_NAME]
    assert earlier.tags == {"test_rmse": str(worse)}
    assert new.tags == {"source_run_id": run.run_id, "test_rmse": str(trained_render.metrics["rmse"])}
    assert "MLmodel" in fake.files_of(new.source)
