"""Monitoring on Azure ML: the monitoring pipeline submitted once, or on the schedule of aml/monitor-schedule.yml
(its recurrence from config.yml), the batch it reads made sure of first, and ``check``'s finding on that schedule's
spec.

Nothing here runs at import time; azure-ai-ml is imported by the functions that need it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .azure_ml import AzureAccessError, align_assets, ml_client, runtime_assets, submit_job
from .local_runs import UsageError, passed_check
from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from aml_pipeline_kit.check.report import Finding


def monitoring_assets(settings: Settings) -> dict[str, list[Any]]:
    """The resources the monitoring pipeline needs: the training data asset is its reference."""
    from azure.ai.ml import load_data

    from .pipeline import load_monitor_components

    return {
        **runtime_assets(settings),
        "data": [load_data(settings.root / "aml" / "data.yml")],
        "components": list(load_monitor_components(settings.root / "components").values()),
    }


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


def monitored_batch(settings: Settings, client: Any, batch: str | None, schedule: bool) -> str:
    """The batch a monitoring job reads on Azure ML, made sure of before anything is created in the workspace.

    config.yml's monitoring.batch_path is where new rows land: a datastore path whose content each collection
    replaces, so that a schedule reads the newest rows at every run. A local CSV given to a schedule is uploaded
    there (a schedule of the file itself would read that one upload forever); given once, it is the job's own
    input, which azure-ai-ml uploads. A datastore path that holds no batch is refused in one line (UsageError):
    the job would fail on it."""
    from azure.core.exceptions import AzureError

    landing = settings.setting("monitoring", "batch_path")
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
    settings: Settings, client: Any, batch: str | None = None, model: str | None = None, stream: bool = True
) -> Any:
    """Submit the monitoring pipeline once: ``batch`` (default: config.yml's monitoring.batch_path, see
    ``monitored_batch``) against the training data asset, with ``model`` (default: the newest registered version). It
    fails past a threshold; report.json and drift.png are its ``report`` output and in the monitor step's MLflow
    run."""
    from .pipeline import azure_monitor_pipeline

    job = azure_monitor_pipeline(settings, monitored_batch(settings, client, batch, schedule=False), model)
    return submit_job(client, monitoring_assets(settings), job, stream)


MONITOR_SCHEDULE = Path("aml") / "monitor-schedule.yml"
RECURRENCE_PATTERN = ("hours", "minutes", "week_days", "month_days")  # the trigger's `schedule:` fields
# azure-ai-ml's JobSchedule schema requires create_job, a job file or an existing job; the job is built by
# pipeline.py instead, so this reference stands in while the spec loads and the built job replaces it at once.
STAND_IN_JOB = "azureml:monitoring-pipeline"


def load_monitor_schedule(settings: Settings) -> Any:
    """aml/monitor-schedule.yml as azure-ai-ml loads it, with config.yml's monitoring.schedule as its recurrence and
    a stand-in for its job. SettingsError, in one line, if azure-ai-ml refuses them."""
    from azure.ai.ml.entities._load_functions import load_schedule

    from aml_pipeline_kit.check.report import one_line

    recurrence = settings.setting("monitoring", "schedule")
    if not isinstance(recurrence, dict):
        raise SettingsError(f"{settings.root / 'config.yml'}: monitoring.schedule must be a mapping")
    pattern = {key: value for key, value in recurrence.items() if key in RECURRENCE_PATTERN}
    fields = {f"trigger.{key}": value for key, value in recurrence.items() if key not in RECURRENCE_PATTERN}
    override = {**fields, **({"trigger.schedule": pattern} if pattern else {}), "create_job": STAND_IN_JOB}
    try:
        return load_schedule(settings.root / MONITOR_SCHEDULE, params_override=[override])
    except Exception as error:  # azure-ai-ml's schema and file errors alike
        raise SettingsError(
            f"{settings.root / MONITOR_SCHEDULE} with config.yml's monitoring.schedule: {one_line(error)}"
        ) from None


def monitor_schedule(settings: Settings, job: Any) -> Any:
    """The monitoring schedule of aml/monitor-schedule.yml and config.yml, starting ``job`` at each recurrence."""
    schedule = load_monitor_schedule(settings)
    schedule.create_job = job
    return schedule


def schedule_findings(settings: Settings) -> list[Finding]:
    """``check``'s finding on the monitoring schedule's spec, loaded as ``monitor --azure --schedule`` loads it."""
    from aml_pipeline_kit.check.report import Finding

    try:
        load_monitor_schedule(settings)
    except SettingsError as error:
        message = str(error).removeprefix(f"{settings.root / MONITOR_SCHEDULE} ")
        hint = "fix it against the spec's $schema; its recurrence is config.yml's monitoring.schedule"
        return [Finding(settings.root / MONITOR_SCHEDULE, "spec-load", message, hint)]
    return []


def schedule_monitoring(settings: Settings, client: Any, batch: str | None = None, model: str | None = None) -> Any:
    """Create or update the schedule of aml/monitor-schedule.yml, which runs the monitoring pipeline on ``batch``
    (default: config.yml's monitoring.batch_path, where a local CSV is uploaded: see ``monitored_batch``) with
    ``model`` at each recurrence. azure-ai-ml resolves ``@latest`` when the schedule is created: run this again after
    registering a better model."""
    from .pipeline import azure_monitor_pipeline

    batch = monitored_batch(settings, client, batch, schedule=True)
    align_assets(client, monitoring_assets(settings))
    schedule = monitor_schedule(settings, azure_monitor_pipeline(settings, batch, model))
    created = client.schedules.begin_create_or_update(schedule).result()
    trigger = created.trigger
    print(f"schedule {created.name}: every {trigger.interval} {trigger.frequency}(s), runs the monitoring pipeline")
    return created


def monitor_azure(settings: Settings, model: str | None, data: str | None, stream: bool, schedule: bool) -> int:
    passed_check(settings)
    if schedule:
        schedule_monitoring(settings, ml_client(settings), data, model)
    else:
        submit_monitoring(settings, ml_client(settings), data, model, stream=stream)
    return 0
