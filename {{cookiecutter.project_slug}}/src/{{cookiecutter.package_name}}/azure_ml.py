"""Azure ML: workspace client, resources, pipeline jobs (training and batch scoring), online deployment.

Nothing here runs at import time; azure-ai-ml is imported by the functions that
need it, so the CLI starts fast for local commands.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from .settings import Settings, SettingsError

SAMPLE_REQUEST = Path("docs") / "sample-request.json"  # two rows of the CSV in the online endpoints' body format
WORKSPACE_VARIABLES = {
    "subscription_id": "AZURE_SUBSCRIPTION_ID",
    "resource_group": "AZURE_RESOURCE_GROUP",
    "workspace": "AZUREML_WORKSPACE_NAME",
}


def workspace_coordinates(settings: Settings) -> dict[str, str] | None:
    """Subscription, resource group and workspace from config.yml or the environment; None if incomplete."""
    found = {
        key: str(settings.setting("azure", key) or os.environ.get(variable, "")).strip()
        for key, variable in WORKSPACE_VARIABLES.items()
    }
    return found if all(found.values()) else None


def ml_client(settings: Settings) -> Any:
    """An ``MLClient`` for the workspace, signed in with ``DefaultAzureCredential``."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    coordinates = workspace_coordinates(settings)
    if coordinates:
        return MLClient(
            credential,
            subscription_id=coordinates["subscription_id"],
            resource_group_name=coordinates["resource_group"],
            workspace_name=coordinates["workspace"],
        )
    config_json = settings.root / "config.json"
    if not config_json.is_file():
        raise SettingsError(
            "no Azure ML workspace set: fill azure.subscription_id/resource_group/workspace in config.yml, "
            f"set {', '.join(WORKSPACE_VARIABLES.values())}, or download config.json from the portal to {config_json}"
        )
    return MLClient.from_config(credential, path=str(config_json))


def runtime_assets(settings: Settings) -> dict[str, list[Any]]:
    """What every job of this project runs on: the compute cluster and the environment."""
    from azure.ai.ml import load_compute, load_environment

    aml = settings.root / "aml"
    return {"compute": [load_compute(aml / "compute.yml")], "environments": [load_environment(aml / "environment.yml")]}


def workspace_assets(settings: Settings) -> dict[str, list[Any]]:
    """The resources the training pipeline needs in the workspace, by the ``MLClient`` operations that own them."""
    from azure.ai.ml import load_data

    from .pipeline import load_components

    return {
        **runtime_assets(settings),
        "data": [load_data(settings.root / "aml" / "data.yml")],
        "components": list(load_components(settings.root / "components").values()),
    }


def scoring_assets(settings: Settings) -> dict[str, list[Any]]:
    """The resources the scoring pipeline needs; its model and data are registered already, or uploaded."""
    from .pipeline import load_score_component

    return {**runtime_assets(settings), "components": [load_score_component(settings.root / "components")]}


def ensure_registered(operations: Any, entity: Any) -> bool:
    """Create ``entity`` unless the workspace has it already; True if it was created."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        if getattr(entity, "version", None):
            operations.get(name=entity.name, version=entity.version)
        else:
            operations.get(name=entity.name)
    except ResourceNotFoundError:
        if hasattr(operations, "begin_create_or_update"):
            operations.begin_create_or_update(entity).result()
        else:
            operations.create_or_update(entity)
        return True
    return False


def submit_job(client: Any, assets: dict[str, list[Any]], job: Any, stream: bool) -> Any:
    """Create the ``assets`` the workspace lacks, submit the pipeline ``job``, optionally stream it."""
    for operations_name, entities in assets.items():
        for entity in entities:
            if ensure_registered(getattr(client, operations_name), entity):
                print(f"created {operations_name} {entity.name}")
    submitted = client.jobs.create_or_update(job, experiment_name=job.experiment_name)
    print(f"submitted {submitted.name}: {submitted.studio_url}")
    if stream:
        client.jobs.stream(submitted.name)
    return submitted


def submit(settings: Settings, client: Any, overrides: dict[str, Any] | None = None, stream: bool = True) -> Any:
    """Submit the training pipeline; its register step registers the model, when it is better, in the workspace."""
    from .pipeline import azure_pipeline

    return submit_job(client, workspace_assets(settings), azure_pipeline(settings, overrides), stream)


def submit_scoring(settings: Settings, client: Any, data: str, model: str | None = None, stream: bool = True) -> Any:
    """Submit the scoring pipeline: ``model`` (default: the newest registered version) predicts the rows of ``data``.

    The predictions are the job's ``predictions`` output: ``az ml job download --name <job> --output-name predictions``.
    """
    from .pipeline import azure_score_pipeline

    return submit_job(client, scoring_assets(settings), azure_score_pipeline(settings, data, model), stream)


def deploy(settings: Settings, client: Any) -> Any:
    """Create or update the online endpoint of aml/endpoint.yml, deploy aml/deployment.yml's model to it (the newest
    registered version), then send the endpoint all its traffic: the deployment must exist before it gets any."""
    from azure.ai.ml import load_online_deployment, load_online_endpoint

    aml = settings.root / "aml"
    endpoint = load_online_endpoint(aml / "endpoint.yml")
    deployment = load_online_deployment(aml / "deployment.yml")
    if deployment.endpoint_name != endpoint.name:
        raise SettingsError(
            f"{aml / 'deployment.yml'}: endpoint_name {deployment.endpoint_name!r} must be the name of the endpoint "
            f"in endpoint.yml, {endpoint.name!r}"
        )
    client.online_endpoints.begin_create_or_update(endpoint).result()
    print(f"endpoint {endpoint.name} ready; deploying {deployment.model} as {deployment.name!r} (takes minutes)")
    client.online_deployments.begin_create_or_update(deployment).result()
    endpoint.traffic = {deployment.name: 100}
    deployed = client.online_endpoints.begin_create_or_update(endpoint).result()
    print(f"{deployment.name!r} takes all traffic of {endpoint.name}: {deployed.scoring_uri}")
    print(f"try it:\n  {invoke_command(client, endpoint.name, settings.root / SAMPLE_REQUEST)}")
    return deployed


def invoke_command(client: Any, endpoint_name: str, request_file: Path) -> str:
    """The Azure CLI line that sends ``request_file`` (an ``input_data`` body) to the endpoint."""
    return shlex.join(
        [
            *("az", "ml", "online-endpoint", "invoke", "--name", endpoint_name),
            *("--request-file", os.path.relpath(request_file)),
            *("--resource-group", client.resource_group_name, "--workspace-name", client.workspace_name),
        ]
    )
