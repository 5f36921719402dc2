"""The render's online deployment as Azure ML runs it: its scoring script in Azure ML's own inference server
(azureml-inference-server-http, the server of Azure ML's inference containers), installed from the deployment
environment's pins, serving a trained model and answering the sample request the run wrote for it.

The server runs from a venv of its own, made from the pins of the render's online/conda.yml by `make test` before
the tests start (tests/online_venv.py says why it is a venv of its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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
from azure_render import OFFLINE, TrainedRender
from online_venv import pip_pins, venv_for

# Runs the default render's pipeline first: the full suite's, not `make test-fast`'s.
pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
STARTUP_SECONDS = 120
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
# azmlinfsrv's own entry point, with the one change a test needs: it binds every interface (0.0.0.0, hard-coded in
# azureml_inference_server_http.constants.DEFAULT_HOST); here it listens on the loopback interface only.
LAUNCH_AZMLINFSRV = (
    "import sys; from azureml_inference_server_http import amlserver; "
    f"amlserver.DEFAULT_HOST = {HOST!r}; sys.argv[0] = 'azmlinfsrv'; sys.exit(amlserver.run())"
)


def deployment_venv(pins: list[str]) -> Path:
    """The venv with exactly the deployment environment's pip packages, which `make test` builds beforehand."""
    venv = venv_for(pins)
    if not (venv / ".installed").is_file():
        pytest.fail(f"no venv for the deployment environment's pins at {venv}: `make test` builds it")
    return venv


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def call(url: str, body: bytes | None = None) -> tuple[int, Any]:
    """GET (no ``body``) or POST; the answer's JSON, or its text when it is not JSON (the liveness route's)."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with OPENER.open(request, timeout=30) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


@pytest.fixture(scope="module")
def scoring_url(trained_render: TrainedRender, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The deployment's scoring script in azmlinfsrv, with the model mounted as Azure ML mounts a registered one."""
    venv = deployment_venv(pip_pins(trained_render.root / "online" / "conda.yml"))
    model_dir = tmp_path_factory.mktemp("azureml-model-dir")
    shutil.copytree(trained_render.model, model_dir / trained_render.model.name)
    port = free_port()
    arguments = ["--entry_script", str(trained_render.root / "online" / "score.py"), "--model_dir", str(model_dir)]
    log = model_dir.parent / "azmlinfsrv.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [str(venv / "bin" / "python"), "-c", LAUNCH_AZMLINFSRV, *arguments, "--port", str(port)],
            cwd=trained_render.root / "online",
            # gunicorn keeps its control socket in $XDG_RUNTIME_DIR, else in ~/.gunicorn/: here, beside its log
            env={**os.environ, **OFFLINE, "XDG_RUNTIME_DIR": str(log.parent)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # gunicorn and its worker: stopped together
        )
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and server.poll() is None:
            with contextlib.suppress(OSError):
                if call(url + "/")[0] == 200:
                    break
            time.sleep(0.2)
        else:
            pytest.fail(f"azmlinfsrv did not start (exit code {server.poll()}):\n{log.read_text()[-4000:]}")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def sample_request(trained_render: TrainedRender) -> Path:
    """The request in the online endpoints' body that the render's run wrote for its model (docs/model.md's)."""
    return trained_render.root / "runs" / "sample-request.json"


def test_the_sample_request_gets_the_models_own_predictions(scoring_url: str, trained_render: TrainedRender) -> None:
    body = json.loads(sample_request(trained_render).read_text())
    status, answer = call(scoring_url + "/score", json.dumps(body).encode())
    assert status == 200, answer
    rows = pd.DataFrame(body["input_data"]["data"], columns=body["input_data"]["columns"])
    expected = mlflow.pyfunc.load_model(str(trained_render.model)).predict(rows)
    assert answer["predictions"] == pytest.approx(list(expected), rel=1e-12)


@pytest.mark.parametrize(
    "body",
    [b'{"dataframe_split": {"columns": ["Age"], "data": [[1]]}}', b"{not json", b'{"input_data": {"columns": ["x"]}}'],
    ids=["mlflow-body", "not-json", "no-data"],
)
def test_a_request_not_in_the_endpoint_format_gets_a_400_naming_it(scoring_url: str, body: bytes) -> None:
    status, answer = call(scoring_url + "/score", body)
    assert status == 400, answer
    assert "input_data" in answer["message"] or "Expecting" in answer["message"]


def test_rows_the_model_cannot_score_get_a_400_and_the_server_keeps_serving(
    scoring_url: str, trained_render: TrainedRender
) -> None:
    status, answer = call(scoring_url + "/score", b'{"input_data": {"columns": ["no_such_column"], "data": [[1]]}}')
    assert status == 400, answer
    assert answer["message"]
    assert call(scoring_url + "/score", sample_request(trained_render).read_bytes())[0] == 200


def test_the_model_requirements_build_the_deployment_environment(trained_render: TrainedRender) -> None:
    """No-code deployments build their environment from the model's requirements: they must hold the server and
    the monitoring package Azure ML's generated scoring script imports, at the deployment environment's pins."""
    requirements = set((trained_render.model / "requirements.txt").read_text().split())
    deployment = set(pip_pins(trained_render.root / "online" / "conda.yml"))
    serving_packages = ("azureml-inference-server-http==", "azureml-ai-monitoring==")
    serving = {pin for pin in deployment if pin.startswith(serving_packages)}
    assert len(serving) == 2
    assert serving <= requirements
    loading = {pin for pin in requirements if pin.split("==")[0] in {"scikit-learn", "skops", "pandas", "numpy"}}
    assert len(loading) == 4
    assert loading <= deployment
