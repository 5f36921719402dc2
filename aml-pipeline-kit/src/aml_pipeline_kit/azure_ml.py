"""Azure ML: workspace client, resources, a project's pipeline jobs (training and tuning, batch scoring), online
deployment, and the ``submit``/``tune``/``score``/``deploy`` commands' Azure side. Sign-in: azure_credentials.py;
monitoring and its schedule: azure_monitoring.py.

Nothing here runs at import time; azure-ai-ml is imported by the functions that
need it, so the CLI starts fast for local commands.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

from .azure_credentials import AzureAccessError, azure_credential, signed_in
from .config_files import SettingsError
from .local_runs import UsageError, latest_sample_requests, passed_check
from .project import Project, model_input, rows
from .sample_requests import SampleRequests
from .tuning import write_tuned

WORKSPACE_VARIABLES = {
    "subscription_id": "AZURE_SUBSCRIPTION_ID",
    "resource_group": "AZURE_RESOURCE_GROUP",
    "workspace": "AZUREML_WORKSPACE_NAME",
}


def workspace_coordinates(project: Project) -> dict[str, str] | None:
    """Subscription, resource group and workspace from config.yml or the environment; None if incomplete."""
    found = {
        key: str(project.setting("azure", key) or os.environ.get(variable, "")).strip()
        for key, variable in WORKSPACE_VARIABLES.items()
    }
    return found if all(found.values()) else None


def ml_client(project: Project) -> Any:
    """An ``MLClient`` for the workspace, signed in (see ``azure_credentials``); the workspace is named first, so a
    missing name fails before any sign-in is tried."""
    from azure.ai.ml import MLClient

    coordinates = workspace_coordinates(project)
    if coordinates:
        return MLClient(
            signed_in(azure_credential()),
            subscription_id=coordinates["subscription_id"],
            resource_group_name=coordinates["resource_group"],
            workspace_name=coordinates["workspace"],
        )
    config_json = project.root / "config.json"
    if not config_json.is_file():
        raise SettingsError(
            "no Azure ML workspace set: fill azure.subscription_id/resource_group/workspace in config.yml, "
            f"set {', '.join(WORKSPACE_VARIABLES.values())}, or download config.json from the portal to {config_json}"
        )
    return MLClient.from_config(signed_in(azure_credential()), path=str(config_json))


def runtime_assets(project: Project) -> dict[str, list[Any]]:
    """What every job of this project runs on: the compute cluster and the environment."""
    from azure.ai.ml import load_compute, load_environment

    aml = project.root / "aml"
    return {"compute": [load_compute(aml / "compute.yml")], "environments": [load_environment(aml / "environment.yml")]}


def job_assets(project: Project, job: Any, data: bool = False) -> dict[str, list[Any]]:
    """The resources a pipeline ``job`` needs in the workspace, by the ``MLClient`` operations that own them: the
    cluster, the environment, the named components its nodes run (a sweep node's trial's, a pipeline component's
    own nodes'), and with ``data`` the project's data asset (aml/data.yml)."""
    from azure.ai.ml import load_data

    data_assets = {"data": [load_data(project.root / "aml" / "data.yml")]} if data else {}
    return {**runtime_assets(project), **data_assets, "components": named_components(job.jobs)}


def named_components(nodes: dict[str, Any]) -> list[Any]:
    """The components of ``nodes`` that have a name and a version, each once, pipeline components' nodes included."""
    from azure.ai.ml.entities import Component, PipelineComponent

    found: dict[tuple[str, str], Any] = {}
    for node in nodes.values():
        component = getattr(node, "trial", None) or getattr(node, "component", None)  # a sweep node sweeps its trial
        if isinstance(component, PipelineComponent):
            found.update({(part.name, part.version): part for part in named_components(component.jobs)})
        if isinstance(component, Component) and component.name and component.version:
            found.setdefault((component.name, component.version), component)
    return list(found.values())


COMPUTE_FIXED_FIELDS = ("size", "tier")  # Azure ML cannot change these on an existing cluster


def compute_settings(compute: Any) -> dict[str, Any]:
    """A cluster's settings as values, alike whether read from its spec or from the service, which answers
    (``AmlCompute._load_from_rest``) the VM size in capitals and the idle time as float seconds read from an ISO 8601
    duration: 120 in the spec comes back as 120.0."""
    return {
        "size": str(compute.size).lower(),
        "tier": str(compute.tier).lower(),
        "min_instances": compute.min_instances or 0,
        "max_instances": compute.max_instances,
        # azure-ai-ml sends no idle time for 0 (``AmlCompute._to_rest_object``): the service keeps its own.
        "idle_time_before_scale_down": compute.idle_time_before_scale_down or None,
    }


def differences(spec: Any, existing: Any) -> dict[str, tuple[Any, Any]]:
    """What the workspace's ``existing`` resource has other than its ``spec``: field -> (workspace's, spec's)."""
    from azure.ai.ml.entities import AmlCompute, Data, Environment

    if isinstance(spec, AmlCompute):
        wanted, found = compute_settings(spec), compute_settings(existing)
        return {
            name: (getattr(existing, name), getattr(spec, name))
            for name, value in wanted.items()
            if value is not None and value != found[name]
        }
    if isinstance(spec, Environment):
        found = {"image": (existing.image, spec.image), "conda_file": (existing.conda_file, spec.conda_file)}
        return {name: (old, new) for name, (old, new) in found.items() if old != new}
    if isinstance(spec, Data):
        from azure.ai.ml._utils._asset_utils import get_object_hash

        # azure-ai-ml uploads a local file under LocalUpload/<hash of its content>/: the hash tells if it changed.
        local = Path(spec.base_path or ".", spec.path)
        if local.exists() and get_object_hash(local) not in str(existing.path):
            return {"path": (existing.path, f"{local} (other content)")}
    return {}


def describe(entity: Any) -> str:
    version = getattr(entity, "version", None)
    return f"{type(entity).__name__} {entity.name}" + (f" version {version}" if version else "")


def how_to_apply(entity: Any) -> str:
    from azure.ai.ml.entities import AmlCompute

    if isinstance(entity, AmlCompute):
        return f"delete the cluster (`az ml compute delete --name {entity.name}`) and submit again to recreate it"
    return "bump `version` in its spec under aml/ (versions are immutable) and submit again"


def reconcile(operations: Any, entity: Any) -> str:
    """Bring the workspace's resource in line with its spec and say how: ``created``, ``updated (...)`` or
    ``unchanged``. A difference Azure ML cannot apply in place raises AzureAccessError saying how to apply it."""
    from azure.ai.ml.entities import AmlCompute
    from azure.core.exceptions import ResourceNotFoundError

    try:
        version = getattr(entity, "version", None)
        existing = operations.get(name=entity.name, version=version) if version else operations.get(name=entity.name)
    except ResourceNotFoundError:
        create_or_update(operations, entity)
        return "created"
    changed = differences(entity, existing)
    if not changed:
        return "unchanged"
    listed = "; ".join(f"{name} {old!r} in the workspace, {new!r} in the spec" for name, (old, new) in changed.items())
    fixed = isinstance(entity, AmlCompute) and any(name in COMPUTE_FIXED_FIELDS for name in changed)
    if fixed or not isinstance(entity, AmlCompute):
        raise AzureAccessError(f"{describe(entity)} differs from its spec: {listed}. To apply: {how_to_apply(entity)}")
    # Scale settings, which Azure ML changes on the running cluster. As azure-ai-ml's own sample updates one: the
    # cluster as the workspace has it (its location, which ARM requires of a PUT, its network and identity) with the
    # spec's values set on it.
    for name in changed:
        setattr(existing, name, getattr(entity, name))
    operations.begin_update(existing).result()
    return f"updated ({listed})"


def create_or_update(operations: Any, entity: Any) -> None:
    if hasattr(operations, "begin_create_or_update"):
        operations.begin_create_or_update(entity).result()
    else:
        operations.create_or_update(entity)


DIFFERENCE_CHECKED = ("compute", "environments", "data")  # components: registered anew with each job, by content


def submit_job(client: Any, assets: dict[str, list[Any]], job: Any, stream: bool) -> Any:
    """Bring the workspace's ``assets`` in line with their specs, submit the pipeline ``job``, optionally stream it."""
    align_assets(client, assets)
    submitted = client.jobs.create_or_update(job, experiment_name=job.experiment_name)
    print(f"submitted {submitted.name}: {submitted.studio_url}")
    if stream:
        client.jobs.stream(submitted.name)
    return submitted


def align_assets(client: Any, assets: dict[str, list[Any]]) -> None:
    """Create what the workspace lacks of ``assets``, and bring what it has in line with their specs."""
    for operations_name, entities in assets.items():
        for entity in entities:
            if operations_name in DIFFERENCE_CHECKED:
                outcome = reconcile(getattr(client, operations_name), entity)
            else:
                outcome = "created" if ensure_exists(getattr(client, operations_name), entity) else "unchanged"
            if outcome != "unchanged":
                print(f"{outcome} {describe(entity)}")


def ensure_exists(operations: Any, entity: Any) -> bool:
    """Create ``entity`` unless the workspace has it already; True if it was created."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        operations.get(name=entity.name, version=entity.version)
    except ResourceNotFoundError:
        create_or_update(operations, entity)
        return True
    return False


def dry_run(assets: dict[str, list[Any]], job: Any) -> str:
    """What ``submit`` would ensure in the workspace and the job it would send, without contacting Azure."""
    lines = ["would create, or update to match its spec, each of:"]
    for entities in assets.values():
        lines += [f"  {describe(entity)}" for entity in entities]
    lines += [f"then submit this pipeline job to experiment {job.experiment_name!r}:", job_yaml(job)]
    return "\n".join(lines)


def job_yaml(job: Any) -> str:
    import yaml

    return yaml.safe_dump(job._to_dict(), sort_keys=False)


def training_job(project: Project, overrides: dict[str, Any] | None = None, tune: bool = False) -> Any:
    """The project's training (with ``tune``, tuning) pipeline on its registered data asset."""
    return project.training_job(rows(project.data_asset_uri), overrides, tune)


def submit(
    project: Project, client: Any, overrides: dict[str, Any] | None = None, stream: bool = True, tune: bool = False
) -> Any:
    """Submit the training pipeline (with ``tune``, the tuning pipeline); its register step registers the model, when
    it is better, in the workspace."""
    job = training_job(project, overrides, tune)
    return submit_job(client, job_assets(project, job, data=True), job, stream)


def submit_dry_run(project: Project, overrides: dict[str, Any] | None = None, tune: bool = False) -> str:
    """What ``submit`` would do, built from the specs alone: no credentials, no request to Azure."""
    job = training_job(project, overrides, tune)
    return dry_run(job_assets(project, job, data=True), job)


def download_output(client: Any, job_name: str, output_name: str, destination: Path) -> Path:
    """A finished job's named output, downloaded into ``destination``; the folder that holds it."""
    client.jobs.download(job_name, download_path=str(destination), output_name=output_name)
    return destination / "named-outputs" / output_name


def scoring_job(project: Project, data: str, model: str | None = None) -> Any:
    """The scoring pipeline for Azure ML: ``model`` (default: the newest registered version) predicts the rows of
    ``data``: a data asset (``azureml:<name>:<version>``), or a local CSV, folder of files or MLTable folder, which
    azure-ai-ml uploads."""
    local = Path(data)
    return project.pipeline("scoring")(project, model_input(model, project), rows(local if local.exists() else data))


def submit_scoring(project: Project, client: Any, data: str, model: str | None = None, stream: bool = True) -> Any:
    """Submit the scoring pipeline (``scoring_job``).

    The predictions are the job's ``predictions`` output: ``az ml job download --name <job> --output-name predictions``.
    """
    job = scoring_job(project, data, model)
    return submit_job(client, job_assets(project, job), job, stream)


def scoring_dry_run(project: Project, data: str, model: str | None = None) -> str:
    """What ``score --azure`` would do, built from the specs alone: no credentials, no request to Azure."""
    job = scoring_job(project, data, model)
    return dry_run(job_assets(project, job), job)


def deploy(project: Project, client: Any) -> Any:
    """Create or update the online endpoint of aml/endpoint.yml, deploy aml/deployment.yml's model to it (the newest
    registered version), then send the endpoint all its traffic: the deployment must exist before it gets any."""
    from azure.ai.ml import load_online_deployment, load_online_endpoint

    aml = project.root / "aml"
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
    print(f"try it:\n  {invoke_command(client, endpoint.name, deployed_request(project))}")
    return deployed


def deployed_request(project: Project) -> Path:
    """The sample request for the latest local model (the registered ones come from the same training pipeline); none
    before a local run has trained one, which is said."""
    try:
        return latest_sample_requests(project).endpoint
    except UsageError:
        print("the sample request below is written by a local run (`run --local`): none has trained a model yet")
        return SampleRequests.of(project.local_runs_dir).endpoint


def invoke_command(client: Any, endpoint_name: str, request_file: Path) -> str:
    """The Azure CLI line that sends ``request_file`` (an ``input_data`` body) to the endpoint."""
    return shlex.join(
        [
            *("az", "ml", "online-endpoint", "invoke", "--name", endpoint_name),
            *("--request-file", os.path.relpath(request_file)),
            *("--resource-group", client.resource_group_name, "--workspace-name", client.workspace_name),
        ]
    )


# --- the commands' Azure side ------------------------------------------------------------------------------------


def run_azure(
    project: Project, overrides: dict[str, Any], stream: bool, dry_run: bool = False, tune: bool = False
) -> int:
    """The training pipeline (with ``tune``, the tuning pipeline) on Azure ML. A streamed tuning job's selection is
    downloaded and its winner written into config.yml."""
    passed_check(project)
    if dry_run:
        print(submit_dry_run(project, overrides, tune))
        return 0
    client = ml_client(project)
    submitted = submit(project, client, overrides, stream=stream, tune=tune)
    if tune and stream:
        with tempfile.TemporaryDirectory() as scratch:
            write_tuned(project, download_output(client, submitted.name, "selection", Path(scratch)))
    elif tune:
        fetch = f"az ml job download --name {submitted.name} --output-name selection"
        print(f"config.yml is not changed without streaming: the winner will be in selection.json (`{fetch}`)")
    return 0


def score_azure(project: Project, model: str | None, data: str | None, stream: bool, dry_run: bool = False) -> int:
    if not data:
        raise UsageError("score --azure needs --data: a data asset (azureml:<name>:<version>) or a local CSV")
    passed_check(project)
    if dry_run:
        print(scoring_dry_run(project, data, model))
        return 0
    submit_scoring(project, ml_client(project), data, model, stream=stream)
    return 0


def deploy_online(project: Project) -> int:
    deploy(project, ml_client(project))
    return 0
