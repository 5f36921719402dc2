"""Reaching Azure ML, before any request: the workspace named by config.yml or the environment, the credential of
the environment (a CI workload identity that renews its own sign-in, else DefaultAzureCredential), one line when
there is none, and what ``submit --dry-run`` / ``tune --azure --dry-run`` print without contacting anything. The
requests themselves go to the simulated workspace in test_azure_workspace.py."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from azure.identity import AzurePipelinesCredential, ClientAssertionCredential
from projects import ENV, cli, load_project

from aml_pipeline_kit.azure_credentials import AZURE_PIPELINES_VARIABLES, azure_credential, github_oidc_token
from aml_pipeline_kit.azure_ml import WORKSPACE_VARIABLES, ml_client, workspace_coordinates
from aml_pipeline_kit.cli import main
from aml_pipeline_kit.config_files import SettingsError
from aml_pipeline_kit.project import Project


@pytest.fixture(scope="module")
def project(example: Path) -> Project:
    return load_project(example)


def with_workspace(project: Project, **azure: str) -> Project:
    blank = dict.fromkeys(WORKSPACE_VARIABLES, "")
    return replace(project, config={**project.config, "azure": {**project.config["azure"], **blank, **azure}})


def test_the_workspace_comes_from_config_yml_then_the_environment(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in WORKSPACE_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    assert workspace_coordinates(with_workspace(project)) is None
    for variable, value in zip(WORKSPACE_VARIABLES.values(), ("sub-env", "rg-env", "ws-env"), strict=True):
        monkeypatch.setenv(variable, value)
    assert workspace_coordinates(with_workspace(project, workspace="ws-config")) == {
        "subscription_id": "sub-env",
        "resource_group": "rg-env",
        "workspace": "ws-config",
    }


def test_without_any_workspace_setting_the_error_says_where_to_put_one(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in WORKSPACE_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(SettingsError, match=r"no Azure ML workspace set: fill azure\.subscription_id"):
        ml_client(with_workspace(project))


def test_the_command_imports_neither_azure_ai_ml_nor_mlflow_before_a_command_needs_them() -> None:
    code = "import sys, aml_pipeline_kit.cli; print('azure.ai.ml' in sys.modules, 'mlflow' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True).stdout
    assert loaded.split() == ["False", "False"]


def test_submit_without_credentials_says_how_to_sign_in_in_one_line(example: Path, tmp_path: Path) -> None:
    """A fresh home (no `az login` session), no CI sign-in variables, developer credentials only (no managed identity
    endpoint to wait for)."""
    signed_out = dict.fromkeys(
        ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "ACTIONS_ID_TOKEN_REQUEST_URL"), ""
    )
    workspace = dict(
        zip(WORKSPACE_VARIABLES.values(), ("00000000-0000-0000-0000-000000000000", "rg", "ws"), strict=True)
    )
    env = {**signed_out, **workspace, "HOME": str(tmp_path), "AZURE_TOKEN_CREDENTIALS": "dev"}
    result = cli(example, "submit", env=env, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: no Azure credentials: sign in with `az login`")


def test_submit_dry_run_prints_the_resources_and_the_job_without_contacting_azure(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(example)
    assert main(["submit", "--dry-run", "-p", "model_type=random_forest"]) == 0
    out = capsys.readouterr().out
    assert "would create, or update to match its spec, each of:" in out
    assert "AmlCompute " in out and "Environment " in out and "Data " in out
    job = yaml.safe_load(out.split("pipeline job to experiment", 1)[1].split("\n", 1)[1])
    assert job["type"] == "pipeline"
    assert job["inputs"]["model_type"] == "random_forest"
    assert set(job["jobs"]) >= {"data_prep", "train", "evaluate", "register"}


def test_tune_azure_dry_run_prints_the_sweep_job_without_credentials(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(example)
    assert main(["tune", "--azure", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "type: sweep" in printed
    assert "primary_metric: cv_rmse" in printed


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
