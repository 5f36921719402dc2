"""The engine's Azure side in the example, with the real azure-ai-ml ``MLClient`` (and azure-storage-blob) against
Azure Resource Manager and the workspace's storage simulated at HTTP level (aml_pipeline_kit.testing), which answer
as the service does (the VM size in capitals, the idle time as an ISO 8601 duration) and refuse what it refuses (a
PUT without ``location``, an asset version changed): ``submit``'s get-or-create of the compute cluster, environment,
data asset and components, run twice as two submissions run it, what it refuses to change, the job it sends and
streams; ``score --azure``'s job; ``deploy``'s endpoint, deployment and traffic; and ``monitor --azure [--schedule]``
with the batch it reads."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.ai.ml import load_data
from projects import PACKAGE, copy_example, load_project

from aml_pipeline_kit import azure_monitoring
from aml_pipeline_kit.azure_credentials import AzureAccessError
from aml_pipeline_kit.azure_ml import align_assets, deploy, runtime_assets, submit, submit_scoring
from aml_pipeline_kit.config_files import SettingsError
from aml_pipeline_kit.local_runs import UsageError
from aml_pipeline_kit.project import Project
from aml_pipeline_kit.testing.azure_fake import (
    CONTAINER,
    LOCATION,
    OFFLINE,
    RESOURCE_GROUP,
    SCOPE,
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


def example(tmp_path: Path) -> Project:
    return load_project(copy_example(tmp_path / "project"))


def spec_edited(project: Project, relative: str, old: str, new: str) -> None:
    spec = project.root / relative
    assert old in spec.read_text(), f"{relative} no longer holds {old!r}: update this test"
    spec.write_text(spec.read_text().replace(old, new))


def test_submit_creates_what_the_workspace_lacks_then_sends_the_job_and_streams_it(
    fake: FakeAzureML, tmp_path: Path, capsys: Any
) -> None:
    project = example(tmp_path)
    submitted = submit(project, workspace_client(fake), {"model_type": "hist_gradient_boosting"})
    printed = capsys.readouterr().out
    environment = yaml.safe_load((project.root / "aml" / "environment.yml").read_text())
    assert [line for line in printed.splitlines() if line.startswith("created ")] == [
        f"created AmlCompute {project.compute['name']}",
        f"created Environment {environment['name']} version {environment['version']}",
        f"created Data {project.data_asset['name']} version {project.data_asset['version']}",
        *(
            f"created CommandComponent {PACKAGE}_{step} version 1"
            for step in ("data_prep", "train", "evaluate", "register")
        ),
    ]
    (sent,) = fake.jobs.values()
    assert sent["name"] == submitted.name
    job = sent["properties"]
    assert (job["jobType"], job["experimentName"]) == ("Pipeline", project.setting("azure", "experiment_name"))
    data = f"{SCOPE}/data/{project.data_asset['name']}/versions/{project.data_asset['version']}"
    assert job["inputs"]["input_data"] == {"uri": data, "jobInputType": "uri_file"}
    assert job["inputs"]["model_type"]["value"] == "hist_gradient_boosting"
    assert job["inputs"]["registered_model_name"]["value"] == project.setting("azure", "registered_model_name")
    assert job["settings"]["default_compute"] == f"{SCOPE}/computes/{project.compute['name']}"
    assert ("GET", f"/history/v1.0{SCOPE}/runs/{submitted.name}/details") in fake.requests  # streamed to its end
    assert f"submitted {submitted.name}: " in printed and "Execution Summary" in printed


def test_a_second_submit_sends_the_job_and_leaves_what_matches_its_spec_alone(
    fake: FakeAzureML, tmp_path: Path, capsys: Any
) -> None:
    project, client = example(tmp_path), workspace_client(fake)
    submit(project, client, stream=False)
    fake.arm_writes.clear()
    capsys.readouterr()
    second = submit(project, client, stream=False)
    # The cluster, environment, data asset and named components are there as their specs say; the job's nodes are
    # registered with each job, by their content, as azure-ai-ml registers a pipeline's components.
    assert {path.split("/")[1] for _, path, _ in fake.arm_writes} == {"codes", "components", "jobs"}
    assert [line for line in capsys.readouterr().out.splitlines() if line.strip()] == [
        f"submitted {second.name}: {second.studio_url}"
    ]
    assert len(fake.jobs) == 2


# what changes in a spec under aml/ (or the CSV of its data asset) once the workspace has what the specs say, their
# versions unchanged -> the one line the next submission is refused with, before it sends anything
DRIFT = {
    "the cluster's size": (
        (COMPUTE_SPEC, "Standard_DS3_v2", "Standard_NC6"),
        r"AmlCompute cpu-cluster differs from its spec: size 'STANDARD_DS3_V2' in the workspace, 'Standard_NC6' in the "
        r"spec\. To apply: delete the cluster \(`az ml compute delete --name cpu-cluster`\) and submit again",
    ),
    "the cluster's tier": (
        (COMPUTE_SPEC, '"dedicated"', '"low_priority"'),
        r"AmlCompute cpu-cluster differs from its spec: tier 'dedicated' in the workspace, 'low_priority' in the spec",
    ),
    "the environment's image": (
        ("aml/environment.yml", ":20250701.v1", ":20250801.v1"),
        r"Environment diabetes-blood-pressure-env version 1 differs from its spec: image '.*:20250701\.v1' in the "
        r"workspace, '.*:20250801\.v1' in the spec\. To apply: bump `version` in its spec under aml/",
    ),
    "the data asset's CSV": (
        ("data/diabetes.csv", "\n", "\n0,"),
        r"Data diabetes-blood-pressure-data version 1 differs from its spec: path .* in the workspace, .*diabetes\.csv "
        r"\(other content\)' in the spec\. To apply: bump `version`",
    ),
}


@pytest.mark.parametrize(("edit", "refusal"), DRIFT.values(), ids=DRIFT.keys())
def test_a_resource_azure_ml_cannot_change_in_place_is_refused_before_the_job(
    fake: FakeAzureML, tmp_path: Path, edit: tuple[str, str, str], refusal: str
) -> None:
    project, client = example(tmp_path), workspace_client(fake)
    align_assets(client, {**runtime_assets(project), "data": [load_data(project.root / "aml" / "data.yml")]})
    spec_edited(project, *edit)
    with pytest.raises(AzureAccessError, match=refusal):
        submit(load_project(project.root), client, stream=False)
    assert fake.jobs == {}


def test_submit_scoring_sends_the_scoring_job_without_the_training_data(fake: FakeAzureML, tmp_path: Path) -> None:
    project = example(tmp_path)
    model = project.setting("azure", "registered_model_name")
    fake.add_version(model, {})
    fake.put_asset("data", "new-rows", "1", {"properties": {"dataType": "uri_file", "dataUri": "azureml://x.csv"}})
    submitted = submit_scoring(project, workspace_client(fake), "azureml:new-rows:1", stream=False)
    (sent,) = fake.jobs.values()
    assert sent["name"] == submitted.name
    job = sent["properties"]
    # the newest version (@latest) as azure-ai-ml resolves it, keeping its azureml: prefix, which the service takes off
    assert job["inputs"]["model"]["jobInputType"] == "mlflow_model"
    assert job["inputs"]["model"]["uri"].replace("/azureml:", "/") == f"{SCOPE}/models/{model}/versions/1"
    assert job["inputs"]["data"] == {"uri": f"{SCOPE}/data/new-rows/versions/1", "jobInputType": "uri_file"}
    assert job["settings"]["default_compute"] == f"{SCOPE}/computes/{project.compute['name']}"
    # a parallel node, its component (parallel_run_function's, unversioned) created anonymously with the job
    score = job["jobs"]["score"]
    assert (score["type"], score["task"]["type"], score["task"]["entry_script"]) == (
        "parallel",
        "run_function",
        "score.py",
    )
    assert score["componentId"].split("/components/")[1].startswith("azureml_anonymous/versions/")
    assert not [kind for kind, name, _ in fake.assets if (kind, name) == ("data", project.data_asset["name"])]


def test_deploy_creates_the_endpoint_deploys_the_model_then_sends_it_all_traffic(
    fake: FakeAzureML, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = example(tmp_path)
    model = project.setting("azure", "registered_model_name")
    fake.add_version(model, {})
    monkeypatch.chdir(project.root)
    deployed = deploy(project, workspace_client(fake))
    endpoint_spec = yaml.safe_load((project.root / "aml" / "endpoint.yml").read_text())
    deployment_spec = yaml.safe_load((project.root / "aml" / "deployment.yml").read_text())
    endpoint, name = endpoint_spec["name"], deployment_spec["name"]
    online = [(method, path, sent) for method, path, sent in fake.arm_writes if path.startswith("/onlineEndpoints/")]
    # the endpoint first, with no traffic; then the deployment; then all traffic to it
    assert [(method, path) for method, path, _ in online] == [
        ("PUT", f"/onlineEndpoints/{endpoint}"),
        ("PUT", f"/onlineEndpoints/{endpoint}/deployments/{name}"),
        ("PUT", f"/onlineEndpoints/{endpoint}"),
    ]
    assert not online[0][2]["properties"].get("traffic")
    assert online[2][2]["properties"]["traffic"] == {name: 100}
    sent = online[1][2]["properties"]
    assert sent["model"].replace("/azureml:", "/") == f"{SCOPE}/models/{model}/versions/1"  # @latest, resolved
    assert sent["codeConfiguration"]["scoringScript"] == "score.py"
    assert (sent["instanceType"], sent["endpointComputeType"]) == (deployment_spec["instance_type"], "Managed")
    assert deployed.scoring_uri == fake.endpoints[endpoint]["properties"]["scoringUri"]
    # the line that works: the endpoint's name, the request in its input_data body, the workspace; the request is a
    # local run's, for its model, and none has run here
    printed = capsys.readouterr().out.splitlines()
    assert "the sample request below is written by a local run (`run --local`)" in printed[-3]
    invoke = printed[-1].split()
    assert invoke[:4] == ["az", "ml", "online-endpoint", "invoke"]
    assert dict(zip(invoke[4::2], invoke[5::2], strict=True)) == {
        "--name": endpoint,
        "--request-file": "runs/sample-request.json",
        "--resource-group": RESOURCE_GROUP,
        "--workspace-name": WORKSPACE,
    }


def test_deploy_refuses_a_deployment_for_another_endpoint_before_any_request(fake: FakeAzureML, tmp_path: Path) -> None:
    project = example(tmp_path)
    spec_edited(project, "aml/deployment.yml", 'endpoint_name: "diabetes-blood-pressure-ep"', "endpoint_name: other")
    with pytest.raises(SettingsError, match=r"endpoint_name 'other' must be the name of the endpoint in endpoint\.yml"):
        deploy(project, workspace_client(fake))
    assert fake.arm_writes == []


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
