"""``submit``'s get-or-create of the workspace's compute cluster and environment, run twice as two submissions run
it: the real azure-ai-ml ``MLClient`` against Azure Resource Manager simulated at HTTP level (tests/azure_fake.py),
which answers as the service does (the VM size in capitals, the idle time as an ISO 8601 duration) and refuses
what ARM refuses (a PUT without ``location``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure_fake import LOCATION, RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, FakeAzureML, FakeCredential
from azure_render import OFFLINE
from machinery import AZURE_AI_ML_SCHEMA_WARNINGS, PACKAGE, copy_project, imported

pytestmark = AZURE_AI_ML_SCHEMA_WARNINGS

COMPUTE_SPEC = "aml/compute.yml"


@pytest.fixture(scope="module")
def modules(default_project: Path) -> SimpleNamespace:
    return imported(default_project, dict.fromkeys(("azure_ml", "settings"), PACKAGE))


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzureML]:
    with FakeAzureML(tmp_path) as server:
        for name, value in {**OFFLINE, "REQUESTS_CA_BUNDLE": str(server.cert)}.items():
            monkeypatch.setenv(name, value)
        # MLClient names its cloud (the fake's) in this process's environment: Azure's default again after the test.
        monkeypatch.setenv("AZUREML_CURRENT_CLOUD", "AzureCloud")
        yield server


def workspace_client(fake: FakeAzureML) -> Any:
    from azure.ai.ml import MLClient  # at test time: its import warns of marshmallow's deprecations

    return MLClient(FakeCredential(), SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, **fake.cloud)


def submit_assets(modules: SimpleNamespace, project: Path, fake: FakeAzureML) -> None:
    """What ``submit`` does to the workspace before it sends the job: its runtime assets aligned with their specs."""
    settings = modules.settings.Settings.load(project)
    modules.azure_ml.align_assets(workspace_client(fake), modules.azure_ml.runtime_assets(settings))


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
    modules: SimpleNamespace, default_project: Path, fake: FakeAzureML, tmp_path: Path, capsys: Any, case: str
) -> None:
    edit, printed, scale_sent = SECOND_SUBMIT[case]
    project = copy_project(default_project, tmp_path / "project")
    submit_assets(modules, project, fake)
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

    submit_assets(modules, project, fake)
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
    submit_assets(modules, project, fake)  # the update took: the third submission finds nothing to change
    assert (capsys.readouterr().out, fake.arm_writes) == ("", [])
