"""A default render with a trained model, shared by the tests that run its Azure-side code against fakes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import bake

# No test reaches the network: MLflow's usage telemetry is off, and any request for an address other than
# the loopback fakes goes to a proxy on a closed loopback port, so it fails at once instead of leaving the machine.
CLOSED_LOOPBACK_PROXY = "http://127.0.0.1:9"
OFFLINE = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "HTTP_PROXY": CLOSED_LOOPBACK_PROXY,
    "HTTPS_PROXY": CLOSED_LOOPBACK_PROXY,
    "http_proxy": CLOSED_LOOPBACK_PROXY,
    "https_proxy": CLOSED_LOOPBACK_PROXY,
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


@dataclass(frozen=True)
class TrainedRender:
    root: Path
    package: str
    model: Path
    report: Path
    run_output: str  # what the run printed

    @property
    def metrics(self) -> dict[str, float]:
        return json.loads((self.report / "metrics.json").read_text())

    def step_command(self, component: str, inputs: dict[str, Any], outputs: dict[str, Path]) -> list[str]:
        """The component's command line as Azure ML fills it in: ``${{inputs.x}}`` and ``${{outputs.y}}`` replaced by
        the values' text, where the spec quotes what needs quoting, then split as a shell splits it."""
        spec = yaml.safe_load((self.root / "components" / component / f"{component}.yml").read_text())
        command = spec["command"]
        for name, value in inputs.items():
            command = command.replace(f"${{{{inputs.{name}}}}}", str(value))
        for name, path in outputs.items():
            command = command.replace(f"${{{{outputs.{name}}}}}", str(path))
        assert "${{" not in command, command
        return [sys.executable if word == "python" else word for word in shlex.split(command)]

    def run_step(
        self, component: str, inputs: dict[str, Any], outputs: dict[str, Path], env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.step_command(component, inputs, outputs),
            cwd=self.root / "components" / component,
            env={**os.environ, **OFFLINE, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )


def train_default_render(tmp_path_factory: pytest.TempPathFactory) -> TrainedRender:
    """The default render after one local run of its pipeline through its CLI: a trained MLflow model and its test
    metrics. conftest.py's ``trained_render`` makes it once per session (per xdist worker)."""
    root = bake({}, tmp_path_factory.mktemp("azure-side"))
    package = root.name.replace("-", "_")
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(root / "src")}
    for variable in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        env.pop(variable, None)
    command = [sys.executable, "-m", package, "run", "--local"]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run_summary,) = root.glob("runs/*/run.json")
    outputs = json.loads(run_summary.read_text())["outputs"]
    return TrainedRender(root, package, Path(outputs["model"]), Path(outputs["report"]), result.stdout)
