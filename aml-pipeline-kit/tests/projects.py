"""Helpers for the tests of the rendered project's machinery (plan, runner, step host, CLI), run from the template.

The machinery has no template variables; its thorough tests live here, run once against a bake of the
default project, rather than in every render.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

PACKAGE = "diabetes_blood_pressure"  # the default bake's package
MACHINERY = "aml_pipeline_kit"  # every bake's machinery package
# azure-ai-ml's own schemas use marshmallow APIs that marshmallow deprecates: not ours to fix.
AZURE_AI_ML_SCHEMA_WARNINGS = [
    pytest.mark.filterwarnings("ignore::marshmallow.warnings.RemovedInMarshmallow4Warning"),
    pytest.mark.filterwarnings("ignore::marshmallow.warnings.ChangedInMarshmallow4Warning"),
]
COPIED = ("config.yml", "aml", "components", "data", "src")
# A YAML mapping's body (indented by two) of nine levels of ten aliases: 10**9 strings in a few hundred bytes.
BILLION_LAUGHS = "".join(
    f"  {name}: &{name} [{', '.join([f'*{previous}' if previous else 'lol'] * 10)}]\n"
    for previous, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)
ENV = {
    **os.environ,
    "PYTHONDONTWRITEBYTECODE": "1",
    "AZURE_SUBSCRIPTION_ID": "",
    "AZURE_RESOURCE_GROUP": "",
    "AZUREML_WORKSPACE_NAME": "",
}


def copy_project(source: Path, destination: Path) -> Path:
    """A project of its own for a test that runs or edits it: the default bake, without runs or store."""
    destination.mkdir(parents=True)
    for part in COPIED:
        if (source / part).is_dir():
            shutil.copytree(source / part, destination / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source / part, destination / part)
    return destination


def cli(
    project: Path, *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", PACKAGE, *args],
        cwd=project,
        env={**ENV, "PYTHONPATH": str(project / "src"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_cli(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", PACKAGE, *args],
        cwd=project,
        env={**ENV, "PYTHONPATH": str(project / "src")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def step_hosts(project: Path) -> list[int]:
    """The step host processes serving ``project``, found by their command lines."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if f"{MACHINERY}.step_host" in command and str(project) in command:
                found.append(int(entry.name))
    return found


def no_step_host_left(project: Path, seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while step_hosts(project):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def latest_run(project: Path) -> dict:
    summaries = sorted((project / "runs").glob("2*/run.json"))
    return json.loads(summaries[-1].read_text())


def imported(project: Path, modules: dict[str, str]) -> SimpleNamespace:
    """``project``'s modules, imported in this process: name -> the package it is in (``MACHINERY`` or ``PACKAGE``)."""
    sys.path.insert(0, str(project / "src"))
    return SimpleNamespace(**{name: importlib.import_module(f"{package}.{name}") for name, package in modules.items()})
