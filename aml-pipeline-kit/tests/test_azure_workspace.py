"""The render's commands against its workspace, with the real azure-ai-ml ``MLClient`` (and azure-storage-blob)
against Azure Resource Manager and the workspace's storage simulated at HTTP level (aml_pipeline_kit.testing), which
answer as the service does (the VM size in capitals, the idle time as an ISO 8601 duration) and refuse what it refuses
(a PUT without ``location``): ``submit``'s get-or-create of the compute cluster and environment, run twice as two
submissions run it, and ``monitor --azure [--schedule]`` with the batch it reads."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from projects import copy_example, load_project

from aml_pipeline_kit import azure_monitoring
from aml_pipeline_kit.azure_ml import align_assets, runtime_assets
from aml_pipeline_kit.local_runs import UsageError
from aml_pipeline_kit.testing.azure_fake import (
    CONTAINER,
    LOCATION,
    OFFLINE,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WORKSPACE,
    FakeAzureML,
    FakeCredential,
)

# Seconds each (azure-ai-ml builds, uploads and resolves every asset): the full suite's, not `make test-fast`'s.
pytestmark = pytest.mark.slow

COMPUTE_SPEC = "aml/compute.yml"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzureML]:
    with FakeAzureML(tmp_path) as server:
        # The storage account's blob endpoint through the fake's proxy; anything else still goes nowhere.
        proxy = {"HTTPS_PROXY": server.proxy_url, "https_proxy": server.proxy_url}
        for name, value in {**OFFLINE, **proxy, "REQUESTS_CA_BUNDLE": str(server.cert)}.items():
            monkeypatch.setenv(name, value)
        # MLClient names its cloud (the fake's) in this process's environment: Azure's default again after the test.
        monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
        yield server


def workspace_client(fake: FakeAzureML) -> Any:
    from azure.ai.ml import MLClient  # at test time: its import warns of marshmallow's deprecations

    return MLClient(FakeCredential(), SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, show_progress=False, **fake.cloud)


def submit_assets(project: Path, fake: FakeAzureML) -> None:
    """What ``submit`` does to the workspace before it sends the job: its runtime assets aligned with their specs."""
    align_assets(workspace_client(fake), runtime_assets(load_project(project)))


# What changes in aml/compute.yml between the first submission and the second (None: nothing) -> what the second
# prints, and the scale settings its one PUT of the cluster sends (None: it sends nothing).
SECOND_SUBMIT: dict[str, tuple[tuple[str, str] | None, list[str], dict[str, Any] | None]] = {
    "nothing changed: the cluster as the service answers it matches its spec": (None, [], None),
    "a scale change is sent with the cluster's location": (
        ("max_instances: 4", "max_instances: 6"),
        ["updated (max_instances 4 in the workspace, 6 in the spec) AmlCompute cpu-cluster"],
        {"minNodeCount": 0, "maxNodeCount": 6, "nodeIdleTimeBeforeScaleDown": "PT2M"},
    ),
}


@pytest.mark.parametrize("case", list(SECOND_SUBMIT))
def test_a_second_submit_sends_only_what_its_specs_changed(
    fake: FakeAzureML, tmp_path: Path, capsys: Any, case: str
) -> None:
    edit, printed, scale_sent = SECOND_SUBMIT[case]
    project = copy_example(tmp_path / "project")
    submit_assets(project, fake)
    assert capsys.readouterr().out.splitlines() == [
        "created AmlCompute cpu-cluster",
        "created Environment diabetes-blood-pressure-env version 1",
    ]
    (_, _, created), _ = fake.arm_writes
    assert created["location"] == LOCATION
    if edit:
        spec = project / COMPUTE_SPEC
        assert edit[0] in spec.read_text(), f"{COMPUTE_SPEC} no longer holds {edit[0]!r}: update this test"
        spec.write_text(spec.read_text().replace(*edit))
    fake.arm_writes.clear()

    submit_assets(project, fake)
    assert capsys.readouterr().out.splitlines() == printed
    if scale_sent is None:
        assert fake.arm_writes == []
        return
    ((method, path, sent),) = fake.arm_writes
    assert (method, path) == ("PUT", "/computes/cpu-cluster")
    assert sent["location"] == LOCATION
    assert sent["properties"]["properties"]["scaleSettings"] == scale_sent
    assert fake.computes["cpu-cluster"]["properties"]["properties"]["scaleSettings"] == scale_sent
    fake.arm_writes.clear()
    submit_assets(project, fake)  # the update took: the third submission finds nothing to change
    assert (capsys.readouterr().out, fake.arm_writes) == ("", [])


LANDING = f"{CONTAINER}/diabetes-blood-pressure/monitoring/batch.csv"  # config.yml's monitoring.batch_path, as a blob
NO_BATCH = r"no batch at azureml://datastores/workspaceblobstore/paths/diabetes-blood-pressure/monitoring/batch\.csv "

# How monitoring starts on Azure ML (a schedule or once; with a local CSV or not) and what lies at
# monitoring.batch_path before (None: nothing) -> the one line it is refused with, or what lies at monitoring.batch_path
# after, where the schedule's job reads (NEW_ROWS: the local CSV given).
NEW_ROWS = b"the CSV given with --data"
MONITORING: dict[str, tuple[bool, bool, bytes | None, str | bytes]] = {
    "a schedule before any batch has landed is refused, nothing created": (True, False, None, NO_BATCH),
    "a schedule of a local CSV uploads it where the schedule reads": (True, True, None, NEW_ROWS),
    "a schedule of a local CSV replaces the batch there": (True, True, b"older rows", NEW_ROWS),
    "a schedule reads the batch that has landed": (True, False, b"rows collected", b"rows collected"),
    "once, before any batch has landed: refused, nothing created": (False, False, None, NO_BATCH),
}


@pytest.mark.parametrize("case", list(MONITORING))
def test_monitoring_on_azure_reads_a_batch_that_is_there(fake: FakeAzureML, tmp_path: Path, case: str) -> None:
    schedule, local_csv, landed, expected = MONITORING[case]
    project = load_project(copy_example(tmp_path / "project"))
    fake.add_version(project.setting("azure", "registered_model_name"), {})  # the schedule runs its @latest
    if landed is not None:
        fake.blobs[LANDING] = landed
    new_rows = tmp_path / "new_rows.csv"
    new_rows.write_bytes(NEW_ROWS)
    once = partial(azure_monitoring.submit_monitoring, stream=False)
    start = azure_monitoring.schedule_monitoring if schedule else once
    batch = str(new_rows) if local_csv else None
    if isinstance(expected, str):
        with pytest.raises(UsageError, match=expected):
            start(project, workspace_client(fake), batch)
        assert (fake.arm_writes, fake.schedules, fake.blobs.get(LANDING)) == ([], {}, landed)
        return
    start(project, workspace_client(fake), batch)
    assert fake.blobs[LANDING] == expected
    (created,) = fake.schedules.values()
    read = created["properties"]["action"]["jobDefinition"]["inputs"]["batch"]
    assert read["uri"] == project.setting("monitoring", "batch_path")
