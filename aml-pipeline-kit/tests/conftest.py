"""The engine's suite: its fixture project is a copy of the template's committed default render (projects.py), made
once per test module where tests only read it, and trained once per session (per xdist worker) where tests read what
a run leaves."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from projects import REPOSITORY, cli, copy_example

# MLflow posts usage data from every process that uses it unless told not to (and keeps an id in ~/.config):
# tests never touch the network, and every process they start inherits this.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

# The suite already keeps every core busy with processes of its own (xdist's workers, the local runner's steps side
# by side), so the OpenMP and BLAS pools of scikit-learn and numpy, one thread per core in each process, only
# oversubscribe the cores and spin while waiting for them. One thread per process, as scikit-learn limits its own
# test suite's xdist workers (sklearn/conftest.py).
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

# `make test` points HOME and the XDG folders at build/test-env; a plain `pytest` would still let the example's steps
# keep matplotlib's font cache in ~/.cache/matplotlib. Here it lands where `make test` puts it.
os.environ.setdefault("MPLCONFIGDIR", str(REPOSITORY / "build" / "test-env" / "cache" / "matplotlib"))


@dataclass(frozen=True)
class TrainedProject:
    """The example after one local run of its training pipeline through the engine's command."""

    root: Path
    model: Path
    report: Path
    run_output: str  # what the run printed


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first (pipelines), so that with xdist they start at once and the quick ones fill in around
    them. First of all those that share the trained example: xdist's worksteal hands each worker a contiguous half of
    this order and lets the other take work only from the end, so they stay together on the first worker and the
    example is trained once."""
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, "trained_example" not in item.fixturenames))


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example for a module's tests that read it, or change a file for their own duration only."""
    return copy_example(tmp_path_factory.mktemp("example") / "diabetes-blood-pressure")


@pytest.fixture(scope="session")
def trained_example(tmp_path_factory: pytest.TempPathFactory) -> TrainedProject:
    """The example after `aml-pipeline-kit run --local`, shared by the tests of the commands that read a trained
    model (score, serve, monitor) and of the error paths of a trained project: a test may add runs to it, or change a
    file for its own duration only."""
    root = copy_example(tmp_path_factory.mktemp("trained") / "diabetes-blood-pressure")
    result = cli(root, "run", "--local", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run_summary,) = root.glob("runs/*/run.json")
    outputs = json.loads(run_summary.read_text())["outputs"]
    return TrainedProject(root, Path(outputs["model"]), Path(outputs["report"]), result.stdout)
