"""The engine's tests run on a realistic project: a copy of the template's committed default render,
examples/diabetes-blood-pressure (no cookiecutter: the copy is the render, byte for byte). Helpers to copy it, run the
engine's command in it (in this process, or ``python -m aml_pipeline_kit`` in a process of its own, from the project's
folder), load it in this process, and read what its runs leave.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from aml_pipeline_kit.cli import main
from aml_pipeline_kit.project import ROOT_VARIABLE, Project
from aml_pipeline_kit.testing.azure_fake import OFFLINE

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLE = REPOSITORY / "examples" / "diabetes-blood-pressure"
PACKAGE = "diabetes_blood_pressure"  # the example's package, under its src/
PROG = "aml-pipeline-kit"
DATA = Path(__file__).resolve().parent / "data"
# What local runs and tools leave in a project: a copy starts without them, as a fresh clone does.
LEFT_BY_RUNS = ("runs", "mlruns.db*", "mlartifacts", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache")
# A YAML mapping's body (indented by two) of nine levels of ten aliases: 10**9 strings in a few hundred bytes.
BILLION_LAUGHS = "".join(
    f"  {name}: &{name} [{', '.join([f'*{previous}' if previous else 'lol'] * 10)}]\n"
    for previous, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)
# The engine's processes as a user's shell starts them: no project named by the environment (each test's is its
# cwd), no MLflow store but the project's, no workspace, MLflow's usage telemetry off and nothing leaving the machine.
UNSET = (ROOT_VARIABLE, "MLFLOW_TRACKING_URI")
ENV = {
    **{name: value for name, value in os.environ.items() if name not in UNSET},
    **OFFLINE,
    "PYTHONDONTWRITEBYTECODE": "1",
    "AZURE_SUBSCRIPTION_ID": "",
    "AZURE_RESOURCE_GROUP": "",
    "AZUREML_WORKSPACE_NAME": "",
    # The suite already keeps every core busy with processes of its own (xdist's workers, the local runner's steps
    # side by side), so the OpenMP and BLAS pools of scikit-learn and numpy, one thread per core in each process, only
    # oversubscribe the cores and spin while waiting for them. One thread per process, as scikit-learn limits its own
    # test suite's xdist workers (sklearn/conftest.py).
    **{name: os.environ.get(name, "1") for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
    # `make test` points HOME and the XDG folders at build/test-env; a plain `pytest` would still let the example's
    # steps keep matplotlib's font cache in ~/.cache/matplotlib. Here it lands where `make test` puts it.
    "MPLCONFIGDIR": os.environ.get("MPLCONFIGDIR", str(REPOSITORY / "build" / "test-env" / "cache" / "matplotlib")),
}


def copy_example(destination: Path, store: Path | None = None) -> Path:
    """A project of its own for a test that runs or edits it: the committed example, without runs; with ``store``
    (conftest's ``empty_store``) as its MLflow store, for a test that runs it."""
    shutil.copytree(EXAMPLE, destination, ignore=shutil.ignore_patterns(*LEFT_BY_RUNS))
    if store is not None:
        shutil.copy2(store, destination / "mlruns.db")
    return destination


def cli(
    cwd: Path, *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The engine's command, run in ``cwd`` (a project, or any folder)."""
    return subprocess.run(
        [sys.executable, "-m", "aml_pipeline_kit", *args],
        cwd=cwd,
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class Finished:
    """How a command run in this process ended: its exit code, and what it and the processes it started printed."""

    returncode: int
    stdout: str
    stderr: str


def command(capfd: pytest.CaptureFixture[str], cwd: Path, *args: str) -> Finished:
    """The engine's command run in this process, from ``cwd``: azure-ai-ml, which loads job files and builds graphs,
    is imported once per test process rather than once per command. ``capfd`` takes what the command and the
    processes it starts (the step host, the steps) print. What needs a process of its own (a signal, a resource
    limit, another environment) runs ``cli``."""
    capfd.readouterr()  # what came before is not this command's
    with contextlib.chdir(cwd):
        try:
            returncode = main(list(args))
        except SystemExit as exit_code:  # argparse, on an argument it refuses
            returncode = int(exit_code.code or 0)
    out, err = capfd.readouterr()
    return Finished(returncode, out, err)


def start_cli(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aml_pipeline_kit", *args],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def load_project(root: Path) -> Project:
    """``Project.load(root)`` in this process, its package imported from ``root``'s src/: a copy loaded before in
    this process, under the same package name, is forgotten first (Python imports a package once)."""
    for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]
    sys.path[:] = [entry for entry in sys.path if not (Path(entry) / PACKAGE).is_dir()]
    importlib.invalidate_caches()
    return Project.load(root)


def step_hosts(project: Path) -> list[int]:
    """The step host processes serving ``project``, found by their command lines."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "aml_pipeline_kit.step_host" in command and str(project) in command:
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


def rows_in_files(source: Path, folder: Path, first_rows: int, names: tuple[str, str]) -> Path:
    """``folder`` made to hold the rows of the CSV ``source`` in two files ``names``, each with the header: the first
    ``first_rows`` rows in one, the rest in the other."""
    header, *records = source.read_text().splitlines(keepends=True)
    folder.mkdir()
    for name, part in zip(names, (records[:first_rows], records[first_rows:]), strict=True):
        (folder / name).write_text(header + "".join(part))
    return folder
