"""Submission to Azure ML, offline: the real azure-ai-ml objects reach a recording stand-in for MLClient."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from azure.ai.ml._utils._asset_utils import get_object_hash
from azure.ai.ml.entities import AmlCompute, CommandComponent, Data, Environment, PipelineJob
from azure.core.exceptions import ResourceNotFoundError
from azure.identity import AzurePipelinesCredential, ClientAssertionCredential

from diabetes_blood_pressure import cli
from diabetes_blood_pressure.azure_credentials import (
    AZURE_PIPELINES_VARIABLES,
    azure_credential,
    github_oidc_token,
)
from diabetes_blood_pressure.azure_ml import (
    AzureAccessError,
    ml_client,
    submit,
    workspace_assets,
    workspace_coordinates,
)
from diabetes_blood_pressure.settings import PROJECT_ROOT, Settings, SettingsError


class RecordingOperations:
    """One ``MLClient`` operations group: holds the workspace's resources by name, records what is written."""

    def __init__(self, existing: dict[str, Any] | None = None) -> None:
        self.existing = existing or {}
        self.created: list[Any] = []
        self.updated: list[Any] = []

    def get(self, name: str, version: str | None = None) -> Any:
        if name not in self.existing:
            raise ResourceNotFoundError(f"{name} not found")
        return self.existing[name]

    def create_or_update(self, entity: Any, **kwargs: Any) -> Any:
        self.created.append(entity)
        return SimpleNamespace(name=getattr(entity, "name", None) or "job-1", version="1", studio_url="https://studio")

    def begin_create_or_update(self, entity: Any) -> Any:
        self.created.append(entity)
        return SimpleNamespace(result=lambda: entity)

    def begin_update(self, entity: Any) -> Any:
        self.updated.append(entity)
        return SimpleNamespace(result=lambda: entity)


class RecordingClient:
    def __init__(self, existing: dict[str, Any] | None = None) -> None:
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


def as_in_workspace(settings: Settings, **compute: Any) -> dict[str, Any]:
    """The workspace's copies of the project's resources, as azure-ai-ml gets them back after creating them."""
    assets = workspace_assets(settings)
    (data,) = assets["data"]
    uploaded = Data(
        name=data.name,
        version=data.version,
        type=data.type,
        path=f"azureml://datastores/workspaceblobstore/paths/LocalUpload/{get_object_hash(Path(data.path))}/x.csv",
    )
    (cluster,) = assets["compute"]
    for name, value in compute.items():
        setattr(cluster, name, value)
    return {entity.name: entity for entity in assets["components"] + assets["environments"] + [cluster]} | {
        data.name: uploaded
    }


def test_submit_leaves_resources_that_match_their_specs_alone(
    settings: Settings, capsys: pytest.CaptureFixture
) -> None:
    client = RecordingClient(as_in_workspace(settings))
    submit(settings, client, stream=False)
    assert client.compute.created == client.data.created == client.environments.created == []
    assert client.compute.updated == client.components.created == []
    assert len(client.jobs.created) == 1
    assert capsys.readouterr().out.startswith("submitted ")


def test_submit_updates_a_cluster_whose_scale_settings_differ_and_says_so(
    settings: Settings, capsys: pytest.CaptureFixture
) -> None:
    client = RecordingClient(as_in_workspace(settings, max_instances=99, idle_time_before_scale_down=5))
    submit(settings, client, stream=False)
    (updated,) = client.compute.updated
    assert updated.max_instances == settings.compute["max_instances"]
    line = capsys.readouterr().out.splitlines()[0]
    spec_max = settings.compute["max_instances"]
    assert line.startswith(f"updated (max_instances 99 in the workspace, {spec_max} in the spec")
    assert len(client.jobs.created) == 1


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"size": "Standard_NC6"}, r"size 'Standard_NC6' in the workspace, .*`az ml compute delete --name "),
        ({"tier": "low_priority"}, r"tier 'low_priority' in the workspace"),
    ],
    ids=["size", "tier"],
)
def test_submit_refuses_a_cluster_that_differs_in_what_azure_cannot_change(
    settings: Settings, change: dict[str, str], expected: str
) -> None:
    existing = as_in_workspace(settings, **change)
    if str(existing[settings.compute["name"]].tier).lower() == str(settings.compute["tier"]).lower() != "dedicated":
        pytest.skip("the spec's tier is the changed one")
    client = RecordingClient(existing)
    with pytest.raises(AzureAccessError, match=expected):
        submit(settings, client, stream=False)
    assert client.jobs.created == client.compute.updated == []


def test_submit_refuses_an_environment_or_data_asset_version_with_other_content(settings: Settings) -> None:
    existing = as_in_workspace(settings)
    (environment,) = workspace_assets(settings)["environments"]
    existing[environment.name] = Environment(name=environment.name, version=environment.version, image="other:1")
    with pytest.raises(AzureAccessError, match=r"image 'other:1' in the workspace.* bump `version`"):
        submit(settings, RecordingClient(existing), stream=False)
    existing = as_in_workspace(settings)
    data_name = settings.data_asset["name"]
    existing[data_name] = Data(name=data_name, version="1", path="azureml://datastores/x/paths/LocalUpload/0/x.csv")
    with pytest.raises(AzureAccessError, match=r"Data .* differs from its spec: path .*other content.* bump `version`"):
        submit(settings, RecordingClient(existing), stream=False)


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


# Whatever a test starts must not leave this machine: any request for a non-loopback address goes to a proxy on a
# closed loopback port and fails at once. Only developer credentials are tried (no managed identity endpoint).
OFFLINE = {
    **{name: "http://127.0.0.1:9" for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
    "AZURE_TOKEN_CREDENTIALS": "dev",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def run_cli(arguments: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process, with an empty home (no `az login` session) and no CI sign-in variables."""
    removed = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "ACTIONS_ID_TOKEN_REQUEST_URL")
    base = {name: value for name, value in os.environ.items() if name not in removed}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    full = {**base, **OFFLINE, "HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT / "src"), **env}
    command = [sys.executable, "-m", cli.__name__.rpartition(".")[0], *arguments]
    return subprocess.run(command, cwd=PROJECT_ROOT, env=full, capture_output=True, text=True, timeout=120)


def test_submit_without_credentials_says_how_to_sign_in_in_one_line(tmp_path: Path) -> None:
    workspace = dict(zip(WORKSPACE_VARIABLES, ("00000000-0000-0000-0000-000000000000", "rg", "ws"), strict=True))
    result = run_cli(["submit"], tmp_path, **workspace)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("error: no Azure credentials: sign in with `az login`")


def test_submit_dry_run_prints_the_resources_and_the_job_without_contacting_azure(tmp_path: Path) -> None:
    result = run_cli(["submit", "--dry-run", "-p", "model_type=random_forest"], tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "would create, or update to match its spec, each of:" in out
    assert "AmlCompute " in out and "Environment " in out and "Data " in out
    job = yaml.safe_load(out.split("pipeline job to experiment", 1)[1].split("\n", 1)[1])
    assert job["type"] == "pipeline"
    assert job["inputs"]["model_type"] == "random_forest"
    assert set(job["jobs"]) >= {"data_prep", "train", "evaluate", "register"}


class GitHubTokenEndpoint(BaseHTTPRequestHandler):
    """GitHub Actions' OIDC token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL): a new token for each request."""

    issued: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        if self.headers.get("Authorization") != "bearer request-token":
            self.send_response(401)
            self.end_headers()
            return
        token = f"github-oidc-{len(self.issued)}-{query['audience'][0]}"
        self.issued.append(token)
        body = json.dumps({"value": token}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_in_github_actions_the_credential_asks_github_for_a_fresh_token_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), GitHubTokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/token?run=1"
        for name, value in {
            "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000002",
            "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000001",
            "ACTIONS_ID_TOKEN_REQUEST_URL": url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token",
            "NO_PROXY": "127.0.0.1",
        }.items():
            monkeypatch.setenv(name, value)
        credential = azure_credential()
        assert isinstance(credential, ClientAssertionCredential)
        assert [github_oidc_token(), github_oidc_token()] == [
            "github-oidc-0-api://AzureADTokenExchange",
            "github-oidc-1-api://AzureADTokenExchange",
        ]
    finally:
        server.shutdown()
        server.server_close()


def test_in_azure_pipelines_the_credential_renews_through_the_service_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for index, name in enumerate(AZURE_PIPELINES_VARIABLES):
        monkeypatch.setenv(name, f"00000000-0000-0000-0000-00000000000{index}")
    assert isinstance(azure_credential(), AzurePipelinesCredential)
