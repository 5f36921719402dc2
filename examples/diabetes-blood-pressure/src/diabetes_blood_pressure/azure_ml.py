"""Submit the pipeline to Azure ML: workspace client, resources, job.

Nothing here runs at import time; azure-ai-ml is imported by the functions that
need it, so the CLI starts fast for local commands.
"""

from __future__ import annotations

import os
from typing import Any

from .settings import Settings, SettingsError

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


def workspace_assets(settings: Settings) -> dict[str, list[Any]]:
    """The resources the pipeline needs in the workspace, by the ``MLClient`` operations that own them."""
    from azure.ai.ml import load_compute, load_data, load_environment

    from .pipeline import load_components

    aml = settings.root / "aml"
    return {
        "compute": [load_compute(aml / "compute.yml")],
        "data": [load_data(aml / "data.yml")],
        "environments": [load_environment(aml / "environment.yml")],
        "components": list(load_components(settings.root / "components").values()),
    }


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


def submit(settings: Settings, client: Any, overrides: dict[str, Any] | None = None, stream: bool = True) -> Any:
    """Create what the workspace lacks, submit the pipeline job, optionally stream it.

    The pipeline's register step registers the model, when it is better, in the workspace.
    """
    from .pipeline import azure_pipeline

    for operations_name, entities in workspace_assets(settings).items():
        for entity in entities:
            if ensure_registered(getattr(client, operations_name), entity):
                print(f"created {operations_name} {entity.name}")
    job = azure_pipeline(settings, overrides)
    submitted = client.jobs.create_or_update(job, experiment_name=settings.setting("azure", "experiment_name"))
    print(f"submitted {submitted.name}: {submitted.studio_url}")
    if stream:
        client.jobs.stream(submitted.name)
    return submitted
