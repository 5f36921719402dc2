"""``aml-pipeline-kit serve``: MLflow's own scoring server for the latest local model, in this environment, on the
loopback interface; it answers as the model predicts, and a malformed request gets a 4xx without stopping it.
(``deploy``: test_azure_workspace.py; the render's online scoring script: the template's tests.)"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import mlflow.pyfunc
import pandas as pd
import pytest
from conftest import TrainedProject
from projects import ENV, load_project

from aml_pipeline_kit.cli import SERVE_HOST
from aml_pipeline_kit.local_runs import latest_local_model

# Runs the example's pipeline first, then MLflow's server: the full suite's, not `make test-fast`'s.
pytestmark = pytest.mark.slow

STARTUP_SECONDS = 60
# Loopback only: a proxy configured for this machine must not see the requests.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# A random forest sums its trees' predictions in parallel, in no fixed order: the last bits may differ run to run.
SAME = 1e-12


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((SERVE_HOST, 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained_example: TrainedProject) -> Iterator[tuple[str, str]]:
    """`aml-pipeline-kit serve --port <free port>` in the trained example; the URL and the line it printed first. The
    whole process group is stopped afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "aml_pipeline_kit", "serve", "--port", str(port)],
        cwd=trained_example.root,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # MLflow starts the server as a child: stop them together
    )
    url = f"http://{SERVE_HOST}:{port}"
    try:
        first_line = process.stdout.readline()
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(OSError), OPENER.open(f"{url}/ping", timeout=2) as response:  # OSError: not yet
                if response.status == 200:
                    break
            time.sleep(0.1)
        else:
            pytest.fail(f"no answer from {url}/ping (exit code {process.poll()}): {first_line}")
        yield url, first_line
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()


def invoke(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def csv_rows(trained_example: TrainedProject, count: int) -> pd.DataFrame:
    project = load_project(trained_example.root)
    return pd.read_csv(project.local_data_path).drop(columns=[project.setting("target_column")]).head(count)


def request_body(rows: pd.DataFrame) -> bytes:
    """``rows`` as MLflow's scoring server takes them."""
    return ('{"dataframe_split": ' + rows.to_json(orient="split", index=False) + "}").encode()


def test_serve_says_what_it_serves_where(server: tuple[str, str], trained_example: TrainedProject) -> None:
    url, first_line = server
    model = latest_local_model(load_project(trained_example.root))
    assert first_line == f"serving {model} at {url}/invocations (Ctrl-C stops it)\n"


def test_the_server_predicts_csv_rows_as_the_model_does(
    server: tuple[str, str], trained_example: TrainedProject
) -> None:
    rows = csv_rows(trained_example, 50)
    status, answer = invoke(server[0], request_body(rows))
    assert status == 200, answer
    model = latest_local_model(load_project(trained_example.root))  # the one it serves
    expected = mlflow.pyfunc.load_model(str(model)).predict(rows)
    assert answer["predictions"] == pytest.approx(list(expected), rel=SAME)


@pytest.mark.parametrize(
    "body",
    [b'{"dataframe_split": {"columns": ["no_such_column"], "data": [[1]]}}', b"{not json"],
    ids=["missing-columns", "invalid-json"],
)
def test_a_malformed_request_gets_a_4xx_with_a_message_and_the_server_keeps_serving(
    server: tuple[str, str], trained_example: TrainedProject, body: bytes
) -> None:
    status, answer = invoke(server[0], body)
    assert 400 <= status < 500
    assert answer["message"]
    assert invoke(server[0], request_body(csv_rows(trained_example, 2)))[0] == 200
