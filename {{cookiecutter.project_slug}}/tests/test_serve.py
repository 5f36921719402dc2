"""Serving the project's model: on this machine with MLflow's own scoring server (`make serve`), answering the sample
request the run wrote for it; and the online endpoint's specs (aml/) that `make deploy` sends to Azure ML."""

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
from typing import Any

import mlflow.pyfunc
import pandas as pd
import pytest
from azure.ai.ml import load_online_deployment, load_online_endpoint
from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint

from aml_pipeline_kit.cli import SERVE_HOST, serve_command, serve_environment
from aml_pipeline_kit.local_runner import RunResult
from aml_pipeline_kit.project import Project

STARTUP_SECONDS = 60
# Loopback only: a proxy configured for this machine must not see the requests.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
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
def server(completed_run: tuple[Project, RunResult], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
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


def sample_request(completed_run: tuple[Project, RunResult]) -> bytes:
    """What docs/model.md's curl sends: the request in MLflow's body that the run wrote for its model."""
    return (completed_run[0].local_runs_dir / "sample-request-mlflow.json").read_bytes()


def model_predictions(completed_run: tuple[Project, RunResult], rows: pd.DataFrame) -> list[float]:
    return list(mlflow.pyfunc.load_model(str(completed_run[1].outputs["model"])).predict(rows))


def test_the_sample_request_gets_the_models_predictions(server: str, completed_run: tuple[Project, RunResult]) -> None:
    body = sample_request(completed_run)
    split = json.loads(body)["dataframe_split"]
    status, answer = invoke(server, body)
    assert status == 200, answer
    rows = pd.DataFrame(split["data"], columns=split["columns"])
    assert answer["predictions"] == pytest.approx(model_predictions(completed_run, rows), rel=SAME)


def test_the_server_predicts_csv_rows_as_the_model_does(server: str, completed_run: tuple[Project, RunResult]) -> None:
    project = completed_run[0]
    rows = pd.read_csv(project.local_data_path).drop(columns=[project.setting("target_column")]).head(50)
    body = '{"dataframe_split": ' + rows.to_json(orient="split", index=False) + "}"
    status, answer = invoke(server, body.encode())
    assert status == 200, answer
    assert answer["predictions"] == pytest.approx(model_predictions(completed_run, rows), rel=SAME)


@pytest.mark.parametrize(
    "body",
    [b'{"dataframe_split": {"columns": ["no_such_column"], "data": [[1]]}}', b"{not json"],
    ids=["missing-columns", "invalid-json"],
)
def test_a_malformed_request_gets_a_4xx_with_a_message_and_the_server_keeps_serving(
    server: str, completed_run: tuple[Project, RunResult], body: bytes
) -> None:
    status, answer = invoke(server, body)
    assert 400 <= status < 500
    assert answer["message"]
    assert invoke(server, sample_request(completed_run))[0] == 200


def test_the_online_endpoint_specs_load_with_a_scoring_script_and_its_environment(project: Project) -> None:
    endpoint = load_online_endpoint(project.root / "aml" / "endpoint.yml")
    deployment = load_online_deployment(project.root / "aml" / "deployment.yml")
    assert isinstance(endpoint, ManagedOnlineEndpoint)
    assert isinstance(deployment, ManagedOnlineDeployment)
    assert endpoint.auth_mode == "key"
    assert ENDPOINT_NAME.match(endpoint.name)
    assert deployment.endpoint_name == endpoint.name
    registered = project.setting("azure", "registered_model_name")
    assert str(deployment.model).removeprefix("azureml:") == f"{registered}@latest"
    # Not no-code: Azure ML's generated environment and scoring script break with MLflow 3 models.
    assert deployment.code_configuration.scoring_script == "score.py"
    assert (Path(deployment.base_path) / deployment.code_configuration.code).resolve() == project.root / "online"
    assert deployment.environment.image.startswith("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04")
    assert "azureml-inference-server-http" in json.dumps(deployment.environment.conda_file)
    assert deployment.instance_type
    assert deployment.instance_count >= 1
