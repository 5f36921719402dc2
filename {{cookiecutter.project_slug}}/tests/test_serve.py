"""Serving the model: on this machine with MLflow's own scoring server, and online on Azure ML, offline."""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow.pyfunc
import pandas as pd
import pytest
from azure.ai.ml import load_online_deployment, load_online_endpoint
from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint

from aml_pipeline_kit.local_runner import RunResult

from {{ cookiecutter.package_name }}.azure_ml import deploy
from {{ cookiecutter.package_name }}.cli import SERVE_HOST, serve_command, serve_environment
from {{ cookiecutter.package_name }}.settings import PROJECT_ROOT, Settings, SettingsError

STARTUP_SECONDS = 60
# Loopback only: a proxy configured for this machine must not see the requests.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SAMPLE_REQUEST = PROJECT_ROOT / "docs" / "sample-request-mlflow.json"  # the README's curl sends it
# A random forest sums its trees' predictions in parallel, in no fixed order: the last bits may differ run to run.
SAME = 1e-12
ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((SERVE_HOST, 0))
        return probe.getsockname()[1]


def wait_until_serving(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with code {server.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), OPENER.open(f"{url}/ping", timeout=2) as response:  # OSError: not yet
            if response.status == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"no answer from {url}/ping within {STARTUP_SECONDS}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(completed_run: tuple[Settings, RunResult], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`make serve`'s command on a free port; the whole process group is stopped afterwards."""
    url = f"http://{SERVE_HOST}:{(port := free_port())}"
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            serve_command(completed_run[1].outputs["model"], port),
            env=serve_environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # MLflow starts the server as a child: stop them together
        )
    try:
        wait_until_serving(url, process, log)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def invoke(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def model_predictions(completed_run: tuple[Settings, RunResult], rows: pd.DataFrame) -> list[float]:
    return list(mlflow.pyfunc.load_model(str(completed_run[1].outputs["model"])).predict(rows))


def test_the_readme_sample_request_gets_the_models_predictions(
    server: str, completed_run: tuple[Settings, RunResult]
) -> None:
    body = SAMPLE_REQUEST.read_bytes()
    split = json.loads(body)["dataframe_split"]
    status, answer = invoke(server, body)
    assert status == 200, answer
    rows = pd.DataFrame(split["data"], columns=split["columns"])
    assert answer["predictions"] == pytest.approx(model_predictions(completed_run, rows), rel=SAME)


def test_the_server_predicts_csv_rows_as_the_model_does(server: str, completed_run: tuple[Settings, RunResult]) -> None:
    settings = completed_run[0]
    rows = pd.read_csv(settings.local_data_path).drop(columns=[settings.setting("target_column")]).head(50)
    body = '{"dataframe_split": ' + rows.to_json(orient="split", index=False) + "}"
    status, answer = invoke(server, body.encode())
    assert status == 200, answer
    assert answer["predictions"] == pytest.approx(model_predictions(completed_run, rows), rel=SAME)


@pytest.mark.parametrize(
    "body",
    [b'{"dataframe_split": {"columns": ["no_such_column"], "data": [[1]]}}', b"{not json"],
    ids=["missing-columns", "invalid-json"],
)
def test_a_malformed_request_gets_a_4xx_with_a_message_and_the_server_keeps_serving(server: str, body: bytes) -> None:
    status, answer = invoke(server, body)
    assert 400 <= status < 500
    assert answer["message"]
    assert invoke(server, SAMPLE_REQUEST.read_bytes())[0] == 200


def test_the_online_endpoint_specs_load_with_a_scoring_script_and_its_environment(settings: Settings) -> None:
    endpoint = load_online_endpoint(settings.root / "aml" / "endpoint.yml")
    deployment = load_online_deployment(settings.root / "aml" / "deployment.yml")
    assert isinstance(endpoint, ManagedOnlineEndpoint)
    assert isinstance(deployment, ManagedOnlineDeployment)
    assert endpoint.auth_mode == "key"
    assert ENDPOINT_NAME.match(endpoint.name)
    assert deployment.endpoint_name == endpoint.name
    registered = settings.setting("azure", "registered_model_name")
    assert str(deployment.model).removeprefix("azureml:") == f"{registered}@latest"
    # Not no-code: Azure ML's generated environment and scoring script break with MLflow 3 models.
    assert deployment.code_configuration.scoring_script == "score.py"
    assert (Path(deployment.base_path) / deployment.code_configuration.code).resolve() == settings.root / "online"
    assert deployment.environment.image.startswith("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04")
    assert "azureml-inference-server-http" in json.dumps(deployment.environment.conda_file)
    assert deployment.instance_type
    assert deployment.instance_count >= 1


class RecordingOnlineOperations:
    """``MLClient.online_endpoints`` or ``online_deployments``: records each call, with the traffic it sets then."""

    def __init__(self, calls: list[tuple[Any, dict[str, int]]]) -> None:
        self.calls = calls

    def begin_create_or_update(self, entity: Any) -> Any:
        self.calls.append((entity, dict(getattr(entity, "traffic", None) or {})))
        return SimpleNamespace(result=lambda: entity)


def recording_client() -> tuple[SimpleNamespace, list[tuple[Any, dict[str, int]]]]:
    calls: list[tuple[Any, dict[str, int]]] = []
    operations = RecordingOnlineOperations(calls)
    client = SimpleNamespace(
        online_endpoints=operations, online_deployments=operations, resource_group_name="rg", workspace_name="ws"
    )
    return client, calls


def test_deploy_creates_the_endpoint_deploys_the_model_then_sends_it_all_traffic(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(settings.root)
    client, calls = recording_client()
    deploy(settings, client)
    (endpoint, first_traffic), (deployment, _), (routed, traffic) = calls
    assert isinstance(endpoint, ManagedOnlineEndpoint)
    assert first_traffic == {}  # no traffic before the deployment exists
    assert isinstance(deployment, ManagedOnlineDeployment)
    assert deployment.endpoint_name == endpoint.name
    assert routed.name == endpoint.name
    assert traffic == {deployment.name: 100}
    # The line that works: the endpoint's name, the request in its input_data body, the workspace.
    invoke = capsys.readouterr().out.splitlines()[-1].split()
    assert invoke[:4] == ["az", "ml", "online-endpoint", "invoke"]
    assert dict(zip(invoke[4::2], invoke[5::2], strict=True)) == {
        "--name": endpoint.name,
        "--request-file": "docs/sample-request.json",
        "--resource-group": "rg",
        "--workspace-name": "ws",
    }
    assert "input_data" in json.loads((settings.root / "docs" / "sample-request.json").read_text())


def test_deploy_refuses_a_deployment_for_another_endpoint(project: Settings) -> None:
    spec = project.root / "aml" / "deployment.yml"
    spec.write_text(re.sub(r"(?m)^endpoint_name: .*$", "endpoint_name: some-other-endpoint", spec.read_text()))
    client, calls = recording_client()
    with pytest.raises(SettingsError, match="endpoint_name 'some-other-endpoint' must be the name of the endpoint"):
        deploy(project, client)
    assert calls == []
