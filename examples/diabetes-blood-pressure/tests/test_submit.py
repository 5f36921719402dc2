"""Submission to Azure ML, offline: the real azure-ai-ml objects reach a recording stand-in for MLClient."""

import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from azure.ai.ml.entities import AmlCompute, CommandComponent, Data, Environment, PipelineJob
from azure.core.exceptions import ResourceNotFoundError

from diabetes_blood_pressure import cli
from diabetes_blood_pressure.azure_ml import ml_client, submit, workspace_coordinates
from diabetes_blood_pressure.settings import PROJECT_ROOT, Settings, SettingsError


class RecordingOperations:
    """One ``MLClient`` operations group: knows the names in ``existing``, records what is created."""

    def __init__(self, existing: set[str] = frozenset()) -> None:
        self.existing = existing
        self.created: list[Any] = []

    def get(self, name: str, version: str | None = None) -> Any:
        if name not in self.existing:
            raise ResourceNotFoundError(f"{name} not found")
        return SimpleNamespace(name=name, version=version)

    def create_or_update(self, entity: Any, **kwargs: Any) -> Any:
        self.created.append(entity)
        return SimpleNamespace(name=getattr(entity, "name", None) or "job-1", version="1", studio_url="https://studio")

    def begin_create_or_update(self, entity: Any) -> Any:
        self.created.append(entity)
        return SimpleNamespace(result=lambda: entity)


class RecordingClient:
    def __init__(self, existing: set[str] = frozenset()) -> None:
        self.compute = RecordingOperations(existing)
        self.data = RecordingOperations(existing)
        self.environments = RecordingOperations(existing)
        self.components = RecordingOperations(existing)
        self.models = RecordingOperations(existing)
        self.jobs = RecordingOperations(existing)
        self.streamed: list[str] = []
        self.jobs.stream = self.streamed.append


def test_submit_creates_what_is_missing_then_submits_and_streams(settings: Settings) -> None:
    client = RecordingClient()
    submit(settings, client, {"model_type": "hist_gradient_boosting"})
    (compute,) = client.compute.created
    assert isinstance(compute, AmlCompute) and compute.name == settings.compute["name"]
    (data,) = client.data.created
    assert isinstance(data, Data) and data.name == settings.data_asset["name"]
    (environment,) = client.environments.created
    assert isinstance(environment, Environment)
    assert {type(component) for component in client.components.created} == {CommandComponent}
    assert len(client.components.created) == 5
    (job,) = client.jobs.created
    assert isinstance(job, PipelineJob)
    assert job.inputs["input_data"].result().path == settings.data_asset_uri
    assert job.inputs["model_type"].result() == "hist_gradient_boosting"
    assert job.settings.default_compute == settings.compute["name"]
    assert job.inputs["registered_model_name"].result() == settings.setting("azure", "registered_model_name")
    assert client.streamed == ["job-1"]


def test_submit_leaves_existing_resources_alone(settings: Settings) -> None:
    components = [settings.compute["name"], settings.data_asset["name"]]
    client = RecordingClient(existing={*components, *(_component_and_environment_names(settings))})
    submit(settings, client, stream=False)
    assert client.compute.created == client.data.created == client.environments.created == []
    assert client.components.created == []
    assert len(client.jobs.created) == 1


def _component_and_environment_names(settings: Settings) -> set[str]:
    from diabetes_blood_pressure.azure_ml import workspace_assets

    assets = workspace_assets(settings)
    return {entity.name for entity in assets["components"] + assets["environments"]}


WORKSPACE_VARIABLES = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME")


def with_workspace(settings: Settings, **azure: str) -> Settings:
    blank = {"subscription_id": "", "resource_group": "", "workspace": ""}
    config = {**settings.config, "azure": {**settings.config["azure"], **blank, **azure}}
    return Settings(settings.root, config, settings.compute, settings.data_asset)


def test_workspace_comes_from_config_yml_then_the_environment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in WORKSPACE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    assert workspace_coordinates(with_workspace(settings)) is None
    for variable, value in zip(WORKSPACE_VARIABLES, ("sub-env", "rg-env", "ws-env"), strict=True):
        monkeypatch.setenv(variable, value)
    assert workspace_coordinates(with_workspace(settings, workspace="ws-config")) == {
        "subscription_id": "sub-env",
        "resource_group": "rg-env",
        "workspace": "ws-config",
    }


def test_without_any_workspace_setting_the_error_says_where_to_put_one(
    project: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in WORKSPACE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(SettingsError, match=r"no Azure ML workspace set: fill azure\.subscription_id"):
        ml_client(with_workspace(project))


def test_importing_the_cli_does_not_import_azure_ml() -> None:
    code = f"import sys, {cli.__name__}; print('azure.ai.ml' in sys.modules, 'mlflow' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")}
    loaded = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert loaded.split() == ["False", "False"]
