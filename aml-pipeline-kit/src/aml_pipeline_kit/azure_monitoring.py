"""Monitoring on Azure ML: the monitoring pipeline submitted once, or on the schedule of aml/monitor-schedule.yml
(its recurrence from config.yml), the batch it reads made sure of first, and ``check``'s finding on that schedule's
spec.

Nothing here runs at import time; azure-ai-ml is imported by the functions that need it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .azure_credentials import AzureAccessError
from .azure_ml import align_assets, job_assets, ml_client, submit_job
from .config_files import SettingsError
from .local_runs import UsageError, passed_check
from .project import Project, model_input, rows

if TYPE_CHECKING:
    from .check.report import Finding


def monitoring_job(project: Project, batch: str, model: str | None = None) -> Any:
    """The project's monitoring pipeline on Azure ML, against its registered data asset: ``batch`` is a datastore
    path, a data asset or a local CSV that azure-ai-ml uploads; ``model`` a registered model, by default the newest
    version of the one the training pipeline registers."""
    job = project.pipeline("monitoring")(
        project, model_input(model, project), rows(project.data_asset_uri), rows(batch)
    )
    # A datastore path keeps its name while new rows replace its content, and a schedule resolves the model when it
    # is created: Azure ML must run every step anew rather than reuse an earlier run's outputs.
    job.settings.force_rerun = True
    return job


DATASTORE_PATH = re.compile(r"azureml://datastores/(?P<datastore>[^/]+)/paths/(?P<path>.+)")


def datastore_blob(client: Any, uri: str) -> Any:
    """The blob behind a datastore path ``azureml://datastores/<name>/paths/<path>``, reached as azure-ai-ml reaches
    a datastore when it uploads (``get_datastore_info``): with the datastore's SAS or key, or this sign-in when the
    datastore is identity-based."""
    from azure.ai.ml._artifacts._artifact_utilities import get_datastore_info
    from azure.storage.blob import BlobServiceClient

    found = DATASTORE_PATH.fullmatch(uri)
    datastore = get_datastore_info(client.datastores, found["datastore"])
    service = BlobServiceClient(datastore["account_url"], credential=datastore["credential"])
    return service.get_blob_client(datastore["container_name"], found["path"])


def monitored_batch(project: Project, client: Any, batch: str | None, schedule: bool) -> str:
    """The batch a monitoring job reads on Azure ML, made sure of before anything is created in the workspace.

    config.yml's monitoring.batch_path is where new rows land: a datastore path whose content each collection
    replaces, so that a schedule reads the newest rows at every run. A local CSV given to a schedule is uploaded
    there (a schedule of the file itself would read that one upload forever); given once, it is the job's own
    input, which azure-ai-ml uploads. A datastore path that holds no batch is refused in one line (UsageError):
    the job would fail on it."""
    from azure.core.exceptions import AzureError

    landing = project.setting("monitoring", "batch_path")
    local = batch is not None and Path(batch).is_file()
    if local and not schedule:
        return batch
    uri = landing if local else batch or landing
    if not DATASTORE_PATH.fullmatch(uri):
        if local:
            raise UsageError(
                f"--schedule uploads {batch} to config.yml's monitoring.batch_path, which is {uri!r}, not a datastore "
                "path (azureml://datastores/<name>/paths/<path>): set one there"
            )
        return uri  # a data asset: azure-ai-ml resolves it, and names it if it does not exist
    try:
        blob = datastore_blob(client, uri)
        if local:
            with open(batch, "rb") as rows:
                blob.upload_blob(rows, overwrite=True)
            print(f"uploaded {batch} to {uri}: the schedule reads the rows there at each run; put each new batch there")
        elif not blob.exists():
            raise UsageError(
                f"no batch at {uri} (new rows land there; config.yml's monitoring.batch_path): upload a CSV there "
                "first, e.g. `monitor --azure --schedule --data new_rows.csv`"
            )
    except AzureError as error:
        raise AzureAccessError(f"cannot reach the batch at {uri}: {' '.join(str(error).split())[:300]}") from None
    return uri


def submit_monitoring(
    project: Project, client: Any, batch: str | None = None, model: str | None = None, stream: bool = True
) -> Any:
    """Submit the monitoring pipeline once: ``batch`` (default: config.yml's monitoring.batch_path, see
    ``monitored_batch``) against the training data asset, with ``model`` (default: the newest registered version). It
    fails past a threshold; report.json and drift.png are its ``report`` output and in the monitor step's MLflow
    run."""
    job = monitoring_job(project, monitored_batch(project, client, batch, schedule=False), model)
    return submit_job(client, job_assets(project, job, data=True), job, stream)


MONITOR_SCHEDULE = Path("aml") / "monitor-schedule.yml"
RECURRENCE_PATTERN = ("hours", "minutes", "week_days", "month_days")  # the trigger's `schedule:` fields
# azure-ai-ml's JobSchedule schema requires create_job, a job file or an existing job; the job is built by
# the project's pipelines instead, so this reference stands in while the spec loads and the built job replaces it
# at once.
STAND_IN_JOB = "azureml:monitoring-pipeline"


def load_monitor_schedule(project: Project) -> Any:
    """aml/monitor-schedule.yml as azure-ai-ml loads it, with config.yml's monitoring.schedule as its recurrence and
    a stand-in for its job. SettingsError, in one line, if azure-ai-ml refuses them."""
    from azure.ai.ml.entities._load_functions import load_schedule

    from .check.report import one_line

    recurrence = project.setting("monitoring", "schedule")
    if not isinstance(recurrence, dict):
        raise SettingsError(f"{project.root / 'config.yml'}: monitoring.schedule must be a mapping")
    pattern = {key: value for key, value in recurrence.items() if key in RECURRENCE_PATTERN}
    fields = {f"trigger.{key}": value for key, value in recurrence.items() if key not in RECURRENCE_PATTERN}
    override = {**fields, **({"trigger.schedule": pattern} if pattern else {}), "create_job": STAND_IN_JOB}
    try:
        return load_schedule(project.root / MONITOR_SCHEDULE, params_override=[override])
    except Exception as error:  # azure-ai-ml's schema and file errors alike
        raise SettingsError(
            f"{project.root / MONITOR_SCHEDULE} with config.yml's monitoring.schedule: {one_line(error)}"
        ) from None


def monitor_schedule(project: Project, job: Any) -> Any:
    """The monitoring schedule of aml/monitor-schedule.yml and config.yml, starting ``job`` at each recurrence."""
    schedule = load_monitor_schedule(project)
    schedule.create_job = job
    return schedule


def schedule_findings(project: Project) -> list[Finding]:
    """``check``'s finding on the monitoring schedule's spec, loaded as ``monitor --azure --schedule`` loads it."""
    from .check.report import Finding

    try:
        load_monitor_schedule(project)
    except SettingsError as error:
        message = str(error).removeprefix(f"{project.root / MONITOR_SCHEDULE} ")
        hint = "fix it against the spec's $schema; its recurrence is config.yml's monitoring.schedule"
        return [Finding(project.root / MONITOR_SCHEDULE, "spec-load", message, hint)]
    return []


def schedule_monitoring(project: Project, client: Any, batch: str | None = None, model: str | None = None) -> Any:
    """Create or update the schedule of aml/monitor-schedule.yml, which runs the monitoring pipeline on ``batch``
    (default: config.yml's monitoring.batch_path, where a local CSV is uploaded: see ``monitored_batch``) with
    ``model`` at each recurrence. azure-ai-ml resolves ``@latest`` when the schedule is created: run this again after
    registering a better model."""
    job = monitoring_job(project, monitored_batch(project, client, batch, schedule=True), model)
    align_assets(client, job_assets(project, job, data=True))
    schedule = monitor_schedule(project, job)
    created = client.schedules.begin_create_or_update(schedule).result()
    trigger = created.trigger
    print(f"schedule {created.name}: every {trigger.interval} {trigger.frequency}(s), runs the monitoring pipeline")
    return created


def monitor_azure(project: Project, model: str | None, data: str | None, stream: bool, schedule: bool) -> int:
    passed_check(project)
    if schedule:
        schedule_monitoring(project, ml_client(project), data, model)
    else:
        submit_monitoring(project, ml_client(project), data, model, stream=stream)
    return 0
