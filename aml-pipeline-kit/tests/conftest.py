"""The engine's suite: its fixture project is a copy of the template's committed default render (projects.py), made
once per test module where tests only read it, and trained once per session (per xdist worker) where tests read what
a run leaves."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from projects import ENV, UNSET, copy_example, load_project

from aml_pipeline_kit.local_runs import run_pipeline_locally, start_step_host
from aml_pipeline_kit.step_host import StepHost
from aml_pipeline_kit.tracking import LocalTracking

# The commands these tests run in this process see the environment of those they start (projects.ENV).
for name in UNSET:
    os.environ.pop(name, None)
os.environ.update(ENV)


@dataclass(frozen=True)
class TrainedProject:
    """The example after one local run of its training pipeline."""

    root: Path
    model: Path
    report: Path


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
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow store with its tables created, for the copies of the example that a test runs: creating them costs
    two seconds of each run's step host."""
    path = tmp_path_factory.mktemp("store") / "mlruns.db"
    LocalTracking(f"sqlite:///{path}", "Default", path.parent / "mlartifacts")
    return path


@pytest.fixture(scope="session")
def step_host(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> Iterator[StepHost]:
    """One warm step host for the local runs of copies of the example that this process makes (each run names its own
    MLflow store): warming one up costs seconds."""
    root = copy_example(tmp_path_factory.mktemp("host") / "diabetes-blood-pressure", empty_store)
    host = start_step_host(load_project(root))
    yield host
    host.close()


@pytest.fixture(scope="session")
def trained_example(tmp_path_factory: pytest.TempPathFactory, empty_store: Path, step_host: StepHost) -> TrainedProject:
    """The example after a local run of its training pipeline (`aml-pipeline-kit run --local`), shared by the tests
    of the commands that read a trained model (score, serve, monitor) and of the error paths of a trained project: a
    test may add runs to it, or change a file for its own duration only. Its config.yml names one model type, ridge:
    the runs these tests make run the four steps of its graph rather than the eight of ``auto``'s (which the
    hostile-header project of test_runner_cases.py runs)."""
    root = copy_example(tmp_path_factory.mktemp("trained") / "diabetes-blood-pressure", empty_store)
    config, auto = root / "config.yml", '  type: "auto"'
    assert auto in config.read_text(), "the example's model type is no longer auto: update this fixture"
    config.write_text(config.read_text().replace(auto, '  type: "ridge"', 1))
    result = run_pipeline_locally(load_project(root), {}, check=True, host=step_host)
    return TrainedProject(root, result.outputs["model"], result.outputs["report"])
