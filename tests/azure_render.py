"""A default render with a trained model, shared by the tests that use its model: its Azure-side steps against
Azure ML simulated at the HTTP level, its online deployment in Azure ML's inference server, its CLI run again."""

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
from conftest import OFFLINE, bake, kit


@dataclass(frozen=True)
class TrainedRender:
    root: Path
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
    root = bake({}, tmp_path_factory.mktemp("trained"))
    result = kit(root, "run", "--local")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run_summary,) = root.glob("runs/*/run.json")
    outputs = json.loads(run_summary.read_text())["outputs"]
    return TrainedRender(root, Path(outputs["model"]), Path(outputs["report"]), result.stdout)
